"""Run folders: one directory per experiment, shared by the book chapters, the trainer and the dashboard.

Layout of a run folder (format version 1)::

    <root>/<name>/
        config.json                      parameters, seed, git revision, library versions
        metrics.json                     flat or nested JSON metrics (optional)
        embeddings/<set>.parquet         label, metadata columns, embedding: fixed_size_list<float32>[D]
        checkpoints/epoch_0007.state.pt  optimizer/scheduler/RNG state (loaded with weights_only=True)
        checkpoints/epoch_0007.safetensors  model weights, written last: a checkpoint is complete
                                         only when both files exist
        checkpoints/corrupt/             unreadable checkpoints, set aside (never deleted) on resume
        <anything else>                  figures, projections ... via artifact_path / write_json

Every file is written atomically (see ``lrfr.io``), so a crash never leaves a torn file behind.
"""

from __future__ import annotations

import copy
import json
import platform
import re
import subprocess
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

import lrfr
from lrfr.io import (
    ReadError,
    atomic_write,
    json_text,
    load_tensors,
    load_torch,
    save_tensors_atomic,
    save_torch_atomic,
    write_json_atomic,
)

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
EMBEDDINGS_DIR = "embeddings"
CHECKPOINTS_DIR = "checkpoints"

_CONFIG_KEYS = ("format_version", "name", "created", "seed", "config", "git_revision", "versions")
_LAYOUT = f"{CONFIG_FILE}, and optionally {METRICS_FILE}, {EMBEDDINGS_DIR}/, {CHECKPOINTS_DIR}/"
_RESERVED_COLUMNS = ("label", "embedding")
_METADATA_TYPES = "expected str, int, float or bool entries"
_DIM_KEY = b"lrfr.embedding_dim"
_VERSION_KEY = b"lrfr.format_version"
_CHECKPOINT_WEIGHTS = re.compile(r"epoch_(\d{4,})\.safetensors")
_TEMPORARY = re.compile(r"\.epoch_\d{4,}\.(safetensors|state\.pt)\.tmp-[0-9a-f]+")  # lrfr.io.atomic_write's names
CORRUPT_DIR = "corrupt"  # under checkpoints/: unreadable checkpoints set aside on resume
_PACKAGE_DIR = Path(__file__).resolve().parent


class RunFolderError(ValueError):
    """A run folder, or something asked of it, is missing or malformed."""


class CorruptCheckpointError(RunFolderError):
    """A checkpoint file exists but cannot be read (truncated, garbled); the message names the file."""


class CheckpointWarning(UserWarning):
    """Resuming skipped something: a corrupt checkpoint set aside, or stale temporary files removed."""


@dataclass(frozen=True)
class Embeddings:
    """One embedding set of a run; arrays read zero-copy from parquet are read-only (``.copy()`` them)."""

    embeddings: np.ndarray  # (N, D) float32
    labels: np.ndarray  # (N,) int64
    metadata: dict[str, np.ndarray]  # column name -> (N,) array; strings come back as object arrays


def git_revision(directory: str | Path = _PACKAGE_DIR) -> str | None:
    """HEAD's commit hash of the git checkout containing ``directory``, plus ``-dirty`` when tracked
    files have uncommitted changes (untracked files are ignored, as in ``git describe --dirty``).

    None when ``directory`` is not in a git checkout, the repository has no commits, or git is missing.
    """
    head = _git(directory, "rev-parse", "--verify", "HEAD")
    if head is None:
        return None
    status = _git(directory, "status", "--porcelain", "--untracked-files=no")
    return head if status == "" else f"{head}-dirty"  # status None: unknown, so not claimed clean


def _git(directory: str | Path, *args: str) -> str | None:
    """Stripped stdout of a git command, or None when git is missing or the command fails."""
    try:
        result = subprocess.run(
            ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def library_versions() -> dict[str, str | None]:
    """Versions of Python, lrfr and the libraries a run's numbers depend on."""
    return {
        "python": platform.python_version(),
        "lrfr": lrfr.__version__,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "numpy": np.__version__,
        "pyarrow": pa.__version__,
        "platform": platform.platform(),
        "executable": sys.executable,
    }


def _check_dict(value: Any, what: str) -> None:
    if not isinstance(value, dict):
        raise RunFolderError(f"{what} has type {type(value).__name__}; expected a dict")


def _check_name(name: Any, what: str) -> None:
    if not isinstance(name, str) or not name or name.startswith(".") or re.search(r"[/\\]", name):
        raise RunFolderError(
            f"{what} {name!r} is not a valid name; expected a non-empty string without '/' or '\\' "
            "that does not start with '.'"
        )


class RunFolder:
    """A run folder on disk. Make one with :meth:`create` or :meth:`open`, not the constructor."""

    def __init__(self, path: Path, info: dict[str, Any]) -> None:
        self.path = path
        self.info = info  # the parsed config.json

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # ----------------------------------------------------------------------------- create / open

    @classmethod
    def create(
        cls, root: str | Path, name: str, config: dict[str, Any], seed: int, *, exist_ok: bool = False
    ) -> RunFolder:
        """Make ``root/name`` and record ``config``, ``seed``, the git revision and library versions.

        With ``exist_ok`` an existing run is reopened (to resume it) provided its recorded config
        and seed equal the given ones; a different config raises rather than mixing two runs.
        """
        _check_name(name, "run name")
        _check_dict(config, "config")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise RunFolderError(f"seed {seed!r} has type {type(seed).__name__}; expected an int")
        try:
            json_text(config, label="config")
        except ValueError as error:
            raise RunFolderError(str(error)) from error
        path = Path(root) / name
        if (path / CONFIG_FILE).exists():
            if not exist_ok:
                raise RunFolderError(
                    f"run folder {path} already exists; pass exist_ok=True to resume it or pick another name"
                )
            run = cls.open(path)
            run.check_identity(config, seed)
            return run
        if path.is_dir() and any(path.iterdir()):
            raise RunFolderError(
                f"run folder {path} holds files but no {CONFIG_FILE}, so which run they belong to is unknown; "
                "remove the folder or pick another name (its checkpoints are never adopted)"
            )
        info = {
            "format_version": FORMAT_VERSION,
            "name": name,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seed": seed,
            "config": config,
            "git_revision": git_revision(),
            "versions": library_versions(),
        }
        write_json_atomic(path / CONFIG_FILE, info)
        return cls.open(path)

    def check_identity(self, config: dict[str, Any], seed: int) -> None:
        """Raise :class:`RunFolderError` unless this run recorded ``config`` (as JSON stores it) and ``seed``:
        a run folder's identity is its config."""
        recorded = self.info["config"]
        normalised = json.loads(json_text(config))  # tuples -> lists etc., as it would be stored
        keys = recorded.keys() | normalised.keys()
        differing = sorted(key for key in keys if recorded.get(key) != normalised.get(key))
        if differing or self.info["seed"] != seed:
            raise RunFolderError(
                f"run folder {self.path} holds a different run (config keys differing: {differing}, "
                f"seed {self.info['seed']} vs {seed}); expected the same config and seed to resume it"
            )

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        """Open an existing run folder, checking config.json and its format version."""
        path = Path(path)
        if not path.is_dir():
            state = "is not a directory" if path.exists() else "does not exist"
            raise RunFolderError(f"run folder {path} {state} (expected a directory holding {_LAYOUT})")
        config_path = path / CONFIG_FILE
        if not config_path.is_file():
            raise RunFolderError(f"run folder {path} is missing {CONFIG_FILE} (expected {_LAYOUT})")
        return cls(path, _validated_info(_read_json(config_path)))

    @property
    def name(self) -> str:
        return self.info["name"]

    @property
    def seed(self) -> int:
        return self.info["seed"]

    @property
    def config(self) -> dict[str, Any]:
        """A copy of the run's parameters."""
        return copy.deepcopy(self.info["config"])

    # ----------------------------------------------------------------------------- metrics

    def metrics(self) -> dict[str, Any]:
        """The recorded metrics; an empty dict before any were written."""
        path = self.path / METRICS_FILE
        if not path.exists():
            return {}
        metrics = _read_json(path)
        if not isinstance(metrics, dict):
            kind = type(metrics).__name__
            raise RunFolderError(f"{path} holds JSON of type {kind}; expected a JSON object")
        return metrics

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        """Replace metrics.json with ``metrics`` (NaN/inf or non-JSON values raise, file untouched)."""
        _check_dict(metrics, "metrics")
        write_json_atomic(self.path / METRICS_FILE, metrics)

    def update_metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """Merge ``metrics`` into metrics.json (top-level keys replaced) and return the result.

        A read-modify-write: safe against crashes, not against two processes updating at once.
        """
        _check_dict(metrics, "metrics")
        merged = {**self.metrics(), **metrics}
        self.write_metrics(merged)
        return merged

    # ----------------------------------------------------------------------------- embeddings

    def save_embeddings(
        self,
        name: str,
        embeddings: np.ndarray | torch.Tensor,
        labels: np.ndarray | torch.Tensor | list[int],
        metadata: Mapping[str, Any] | None = None,
    ) -> Path:
        """Write ``embeddings/<name>.parquet``: columns ``label``, each metadata column, ``embedding``.

        ``embeddings`` is (N, D) floating (stored as float32), ``labels`` (N,) integers, and each
        metadata value an array-like of N str, int, float or bool entries.
        """
        _check_name(name, "embedding set")
        vectors = _as_numpy(embeddings)
        if vectors.ndim != 2 or vectors.shape[1] == 0 or not np.issubdtype(vectors.dtype, np.floating):
            raise RunFolderError(
                f"embeddings has shape {vectors.shape} and dtype {vectors.dtype}; "
                "expected (N, D) floats with D >= 1"
            )
        count, dim = vectors.shape
        columns = {"label": _label_column(labels, count)}
        for column, values in (metadata or {}).items():
            columns[column] = _metadata_column(column, values, count)
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
        columns["embedding"] = pa.FixedSizeListArray.from_arrays(flat, dim)
        table = pa.table(columns).replace_schema_metadata(
            {_DIM_KEY: str(dim), _VERSION_KEY: str(FORMAT_VERSION)}
        )
        path = self._embeddings_path(name)
        with atomic_write(path) as temporary:
            pq.write_table(table, temporary)
        return path

    def load_embeddings(self, name: str) -> Embeddings:
        """Read an embedding set written by :meth:`save_embeddings`."""
        _check_name(name, "embedding set")
        path = self._embeddings_path(name)
        if not path.is_file():
            raise RunFolderError(
                f"run folder {self.path} has no embedding set {name!r} (expected {path}); "
                f"available: {self.embedding_sets()}"
            )
        try:
            table = pq.read_table(path, memory_map=True)
        except (pa.ArrowException, OSError) as error:
            raise RunFolderError(
                f"{path} is not a readable parquet file ({error}); expected a file written by save_embeddings"
            ) from error
        dim = _check_embedding_schema(table.schema, path)
        vectors = table.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        return Embeddings(
            embeddings=vectors.reshape(table.num_rows, dim),
            labels=table.column("label").to_numpy().astype(np.int64, copy=False),
            metadata={
                column: table.column(column).to_numpy()
                for column in table.column_names
                if column not in _RESERVED_COLUMNS
            },
        )

    def embedding_sets(self) -> list[str]:
        """Names of the saved embedding sets, sorted."""
        return sorted(path.stem for path in (self.path / EMBEDDINGS_DIR).glob("*.parquet"))

    def _embeddings_path(self, name: str) -> Path:
        return self.path / EMBEDDINGS_DIR / f"{name}.parquet"

    # ----------------------------------------------------------------------------- checkpoints

    def save_checkpoint(
        self,
        epoch: int,
        model_state: Mapping[str, torch.Tensor],
        training_state: dict[str, Any],
        *,
        keep_last: int | None = None,
    ) -> None:
        """Write the training state, then the weights (last: their presence marks completion).

        ``training_state`` (optimizer, scheduler, RNG ...) must load with ``weights_only=True``.
        ``keep_last`` then deletes all but the newest ``keep_last`` complete checkpoints up to ``epoch``.
        """
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise RunFolderError(f"epoch {epoch!r} is not valid; expected an int >= 0")
        if keep_last is not None and (not isinstance(keep_last, int) or keep_last < 1):
            raise RunFolderError(f"keep_last {keep_last!r} is not valid; expected None or an int >= 1")
        weights, state = self._checkpoint_paths(epoch)
        weights.unlink(missing_ok=True)  # an overwritten epoch is incomplete until its new weights land
        save_torch_atomic(state, training_state)
        metadata = {"epoch": str(epoch), "format_version": str(FORMAT_VERSION)}
        save_tensors_atomic(weights, model_state, metadata)
        if keep_last is not None:
            older = [kept for kept in self.checkpoint_epochs() if kept <= epoch]
            for stale in older[:-keep_last]:
                self._delete_checkpoint(stale)

    def checkpoint_epochs(self) -> list[int]:
        """Epochs with a complete checkpoint (weights and state both present), ascending."""
        directory = self.path / CHECKPOINTS_DIR
        epochs = []
        for path in directory.glob("epoch_*.safetensors"):
            match = _CHECKPOINT_WEIGHTS.fullmatch(path.name)
            if match and self._checkpoint_paths(int(match.group(1)))[1].is_file():
                epochs.append(int(match.group(1)))
        return sorted(epochs)

    def latest_checkpoint(self) -> int | None:
        """The highest epoch with a complete checkpoint, or None."""
        epochs = self.checkpoint_epochs()
        return epochs[-1] if epochs else None

    def load_checkpoint(self, epoch: int | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """``(model_state, training_state)`` of ``epoch`` (default: the latest complete one)."""
        available = self.checkpoint_epochs()
        chosen = (available[-1] if available else None) if epoch is None else epoch
        if chosen not in available:
            wanted = "no complete checkpoint" + ("" if epoch is None else f" for epoch {epoch}")
            raise RunFolderError(
                f"run folder {self.path} has {wanted} (expected {CHECKPOINTS_DIR}/epoch_NNNN.safetensors "
                f"with its epoch_NNNN.state.pt); complete epochs: {available}"
            )
        weights, state = self._checkpoint_paths(chosen)
        loaded = []
        for path, load in ((weights, load_tensors), (state, load_torch)):
            try:
                loaded.append(load(path))
            except ReadError as error:
                raise CorruptCheckpointError(
                    f"unreadable checkpoint: {error}; expected a complete {path.suffix} file as save_checkpoint writes it"
                ) from None
        return loaded[0], loaded[1]

    def load_latest_intact_checkpoint(self) -> tuple[int, dict[str, torch.Tensor], dict[str, Any]] | None:
        """``(epoch, model_state, training_state)`` of the newest checkpoint that reads, or None.

        A newer checkpoint that does not read is moved, both of its files, into ``checkpoints/corrupt/``
        (never deleted) with a :class:`CheckpointWarning` naming it and the epoch resumed instead.
        """
        for epoch in reversed(self.checkpoint_epochs()):
            try:
                return (epoch, *self.load_checkpoint(epoch))
            except CorruptCheckpointError as error:
                moved = self._set_aside(epoch)
                older = [e for e in self.checkpoint_epochs() if e < epoch]
                then = f"trying epoch {older[-1]}" if older else "no older checkpoint: starting from scratch"
                warnings.warn(
                    f"skipped the checkpoint of epoch {epoch}: {error}. Moved {', '.join(moved)} to "
                    f"{self.path / CHECKPOINTS_DIR / CORRUPT_DIR}; {then}",
                    CheckpointWarning, stacklevel=2,
                )
        return None

    def _set_aside(self, epoch: int) -> list[str]:
        """Move both files of ``epoch``'s checkpoint into ``checkpoints/corrupt/`` (a numbered name if taken)."""
        aside = self.path / CHECKPOINTS_DIR / CORRUPT_DIR
        aside.mkdir(exist_ok=True)
        moved = []
        for path in self._checkpoint_paths(epoch)[::-1]:  # state first: weights mark completion until the end
            if path.exists():
                target, copy_number = aside / path.name, 1
                while target.exists():
                    target, copy_number = aside / f"{path.name}.{copy_number}", copy_number + 1
                path.rename(target)
                moved.append(path.name)
        return moved

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete the hidden ``checkpoints/.epoch_NNNN.*.tmp-*`` files a killed checkpoint write left behind.

        Call only while no other process writes checkpoints of this run (the trainer does, on start);
        each removal is reported in a :class:`CheckpointWarning`. Returns the removed paths.
        """
        stale = sorted(path for path in (self.path / CHECKPOINTS_DIR).glob(".epoch_*.tmp-*") if _TEMPORARY.fullmatch(path.name))
        if stale:
            sizes = sum(path.stat().st_size for path in stale)
            for path in stale:
                path.unlink(missing_ok=True)
            warnings.warn(
                f"removed {len(stale)} temporary checkpoint file(s) of an interrupted write ({sizes:,} bytes) from "
                f"{self.path / CHECKPOINTS_DIR}: {', '.join(path.name for path in stale)}",
                CheckpointWarning, stacklevel=2,
            )
        return stale

    def _checkpoint_paths(self, epoch: int) -> tuple[Path, Path]:
        stem = self.path / CHECKPOINTS_DIR / f"epoch_{epoch:04d}"
        return stem.with_name(f"{stem.name}.safetensors"), stem.with_name(f"{stem.name}.state.pt")

    def _delete_checkpoint(self, epoch: int) -> None:
        for path in self._checkpoint_paths(epoch):  # weights first: the checkpoint turns incomplete
            path.unlink(missing_ok=True)

    # ----------------------------------------------------------------------------- other artifacts

    def artifact_path(self, relative: str | Path) -> Path:
        """``path/relative`` with its parent directories made; must stay inside the run folder."""
        relative = Path(relative)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise RunFolderError(
                f"artifact path {str(relative)!r} is not valid; "
                "expected a relative path inside the run folder"
            )
        if relative in (Path(CONFIG_FILE), Path(METRICS_FILE)):
            raise RunFolderError(
                f"artifact path {str(relative)!r} is reserved; "
                "use create() for config, write_metrics() for metrics"
            )
        path = self.path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write_json(self, relative: str | Path, obj: Any) -> Path:
        """Atomically write ``obj`` as JSON to an artifact path; returns that path."""
        path = self.artifact_path(relative)
        write_json_atomic(path, obj)
        return path


# --------------------------------------------------------------------------------- helpers


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunFolderError(
            f"{path} is not valid JSON ({error}); expected a file written by lrfr.runs"
        ) from error


def _validated_info(info: Any) -> dict[str, Any]:
    """config.json's content, checked for the keys and format version this code reads."""
    if not isinstance(info, dict):
        kind = type(info).__name__
        raise RunFolderError(f"{CONFIG_FILE} holds JSON of type {kind}; expected a JSON object")
    missing = [key for key in _CONFIG_KEYS if key not in info]
    if missing:
        raise RunFolderError(f"{CONFIG_FILE} is missing keys {missing} (expected {', '.join(_CONFIG_KEYS)})")
    _check_format_version(info["format_version"], CONFIG_FILE)
    return info


def _check_format_version(version: Any, where: str) -> None:
    if not isinstance(version, int) or isinstance(version, bool):
        raise RunFolderError(f"{where}: format_version {version!r} is not an int; expected {FORMAT_VERSION}")
    if version < FORMAT_VERSION:
        raise RunFolderError(f"{where}: format_version {version} is older than supported {FORMAT_VERSION}")
    if version > FORMAT_VERSION:
        raise RunFolderError(
            f"{where}: format_version {version} is newer than supported {FORMAT_VERSION}; upgrade lrfr"
        )


def _as_numpy(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        return (values.float() if values.dtype == torch.bfloat16 else values).numpy()
    return np.asarray(values)


def _label_column(labels: Any, count: int) -> pa.Array:
    values = _as_numpy(labels)
    if values.shape != (count,) or values.dtype.kind not in "iu":
        raise RunFolderError(
            f"labels has shape {values.shape} and dtype {values.dtype}; expected ({count},) integers"
        )
    return pa.array(values.astype(np.int64, copy=False))


def _metadata_column(column: str, values: Any, count: int) -> pa.Array:
    if not isinstance(column, str) or column in _RESERVED_COLUMNS:
        raise RunFolderError(
            f"metadata column name {column!r} is not allowed; expected a str other than {_RESERVED_COLUMNS}"
        )
    array = _as_numpy(values)
    if array.ndim != 1 or len(array) != count:
        raise RunFolderError(
            f"metadata column {column!r} has shape {array.shape}; "
            f"expected ({count},), one entry per embedding"
        )
    if array.dtype.kind in "biufU":
        return pa.array(array)
    if array.dtype.kind == "O":
        try:
            return pa.array(array, type=pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise RunFolderError(
                f"metadata column {column!r} holds non-string objects ({error}); {_METADATA_TYPES}"
            ) from error
    raise RunFolderError(f"metadata column {column!r} has dtype {array.dtype}; {_METADATA_TYPES}")


def _check_embedding_schema(schema: pa.Schema, path: Path) -> int:
    """The embedding dimension D, after checking the columns and file metadata."""
    metadata = schema.metadata or {}
    if _VERSION_KEY not in metadata or _DIM_KEY not in metadata:
        raise RunFolderError(f"{path} lacks lrfr schema metadata; expected a file written by save_embeddings")
    try:
        version, dim = int(metadata[_VERSION_KEY]), int(metadata[_DIM_KEY])
    except ValueError:
        raise RunFolderError(f"{path} has lrfr schema metadata that is not numeric; expected a file written by save_embeddings") from None
    _check_format_version(version, str(path))
    missing = [column for column in _RESERVED_COLUMNS if column not in schema.names]
    embedding_type = schema.field("embedding").type if "embedding" in schema.names else None
    if missing or not (
        pa.types.is_fixed_size_list(embedding_type)
        and embedding_type.list_size == dim
        and embedding_type.value_type == pa.float32()
    ):
        raise RunFolderError(
            f"{path} has columns {schema.names} with embedding type {embedding_type}; expected 'label' and "
            f"'embedding' as fixed_size_list<float32>[{dim}]"
        )
    return dim


def find_runs(root: str | Path) -> list[Path]:
    """Every run folder (a directory holding config.json) under ``root``, sorted by path."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(config.parent for config in root.rglob(CONFIG_FILE) if config.is_file())
