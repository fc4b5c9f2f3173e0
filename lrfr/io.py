"""Crash-safe file writing: every writer goes through a temporary file and ``os.replace``.

A reader therefore sees either the previous complete file or the new complete file, never a torn
one; after a failed write the temporary file is removed and the old file is left as it was.
Nothing here reads pickles: tensors use safetensors, and ``torch.load`` runs with
``weights_only=True``.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import secrets
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

_JSON_EXPECTED = (
    "expected str, int, finite float, bool, None, or lists/dicts of them "
    "(convert numpy or torch scalars with float()/int(), arrays with .tolist())"
)


class WriteError(OSError):
    """Writing a file failed (disk full, quota, permissions, a device error); the message names the
    file, the cause and the free space left on its file system. Nothing was replaced."""


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and move it onto ``path``.

    The temporary file (``.<name>.tmp-<random>``) is created empty; the caller writes it (any
    writer that opens a path will do). If the block raises, the temporary file is deleted and
    ``path`` is untouched; an ``OSError`` (such as a full disk) becomes a :class:`WriteError` naming
    ``path``. Parent directories are created.
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = final.with_name(f".{final.name}.tmp-{secrets.token_hex(8)}")
        os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except OSError as error:
        raise write_error(final, error) from error
    try:
        yield temporary
        _fsync(temporary)
        os.replace(temporary, final)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError) and not isinstance(error, WriteError):
            raise write_error(final, error) from error
        raise
    if os.name == "posix":  # make the rename itself durable
        _fsync(final.parent)


def write_error(path: Path, error: BaseException) -> WriteError:
    """A :class:`WriteError` naming ``path``, the cause and the space left where it was being written."""
    try:
        free = f"{shutil.disk_usage(next(p for p in (path, *path.parents) if p.exists())).free:,} bytes free there"
    except (OSError, StopIteration):
        free = "free space unknown"
    message = f"cannot write {path} ({type(error).__name__}: {error}; {free}); the previous file, if any, is unchanged"
    code = getattr(error, "errno", None)
    return WriteError(code, message) if code else WriteError(message)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY if path.is_dir() else os.O_RDWR)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Atomically replace ``path`` with UTF-8 ``text``."""
    with atomic_write(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def json_text(obj: Any, label: str = "value") -> str:
    """``obj`` as JSON (sorted keys, indent 2, trailing newline).

    NaN, infinities and non-JSON types raise ``ValueError`` naming the offending key, with
    ``label`` as the name of the root (e.g. ``"config['optimizer']['lr'] is nan"``).
    """
    try:
        return json.dumps(obj, sort_keys=True, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError, RecursionError) as error:
        problem = _json_problem(obj, label, ()) or f"{label}: {error}"
        raise ValueError(f"cannot write {label} as JSON: {problem}; {_JSON_EXPECTED}") from error


def _json_problem(obj: Any, where: str, ancestors: tuple[int, ...]) -> str | None:
    """Describe the first value under ``obj`` that ``json.dumps`` rejects, or None."""
    if obj is None or isinstance(obj, (str, bool, int)):
        return None
    if isinstance(obj, float):
        return None if math.isfinite(obj) else f"{where} is {obj!r}"
    if not isinstance(obj, (dict, list, tuple)):
        return f"{where} has type {type(obj).__name__} ({obj!r:.60})"
    if id(obj) in ancestors:
        return f"{where} contains itself"
    ancestors = (*ancestors, id(obj))
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not (key is None or isinstance(key, (str, int, float, bool))):
                return f"{where} has a key of type {type(key).__name__} ({key!r:.60})"
            problem = _json_problem(value, f"{where}[{key!r}]", ancestors)
            if problem:
                return problem
        return None
    for index, value in enumerate(obj):
        problem = _json_problem(value, f"{where}[{index}]", ancestors)
        if problem:
            return problem
    return None


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write ``obj`` as JSON; bad values raise before anything is touched."""
    write_text_atomic(path, json_text(obj, label=Path(path).name))


def save_tensors_atomic(
    path: str | os.PathLike[str],
    tensors: Mapping[str, torch.Tensor],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Atomically write ``tensors`` as safetensors (on CPU, contiguous, shared storage cloned)."""
    if metadata is not None:
        wrong = {key: type(value).__name__ for key, value in metadata.items() if not isinstance(value, str)}
        if wrong:
            raise ValueError(f"safetensors metadata must map str to str; non-str values: {wrong}")
    prepared = _independent_tensors(tensors)
    with atomic_write(path) as temporary:
        try:
            save_file(prepared, temporary, metadata=None if metadata is None else dict(metadata))
        except SafetensorError as error:  # its I/O errors (a full disk ...) are not OSError
            raise write_error(Path(path), error) from error


def _independent_tensors(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous copies-where-needed so that no two tensors share storage."""
    seen_storages: set[int] = set()
    prepared: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise TypeError(
                f"tensors[{name!r}] has type {type(tensor).__name__}; "
                "expected str names mapped to torch.Tensor"
            )
        tensor = tensor.detach().cpu().contiguous()
        storage = tensor.untyped_storage().data_ptr()
        if storage in seen_storages:
            tensor = tensor.clone()
        seen_storages.add(storage)
        prepared[name] = tensor
    return prepared


def load_tensors(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a safetensors file onto the CPU."""
    return load_file(path, device="cpu")


def save_torch_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically ``torch.save`` ``obj`` after checking it loads back with ``weights_only=True``.

    Fit for ``state_dict()`` outputs and RNG states: tensors, numbers, strings and containers.
    """
    with atomic_write(path) as temporary:
        try:
            torch.save(obj, temporary)
        except RuntimeError as error:  # torch's stream writer reports I/O errors (a full disk ...) so
            raise write_error(Path(path), error) from error
        try:
            load_torch(temporary)
        except pickle.UnpicklingError as error:
            raise ValueError(
                f"cannot save {Path(path).name}: the object would not load with weights_only=True "
                f"({_unpickling_reason(error)}); expected tensors, numbers, strings and "
                "containers of them, such as state_dict() outputs"
            ) from error


def _unpickling_reason(error: pickle.UnpicklingError) -> str:
    """The one informative sentence of torch's long weights-only refusal."""
    match = re.search(r"WeightsUnpickler error: ([^\n]*?\.)(?:\s|$)", str(error))
    return match.group(1) if match else str(error).splitlines()[0]


def load_torch(path: str | os.PathLike[str]) -> Any:
    """``torch.load`` on the CPU with ``weights_only=True`` (never unpickles arbitrary objects)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def leaves_folder(name: str) -> bool:
    """Whether the relative path ``name`` (from a list file or an archive) could reach outside the folder
    it is joined to: empty, absolute, with a drive letter, a NUL byte or a ``..`` part (``/`` or ``\\``)."""
    posix = PurePosixPath(name.replace("\\", "/"))
    return not name or "\0" in name or posix.is_absolute() or ".." in posix.parts or bool(re.match(r"^[A-Za-z]:", name))


@contextmanager
def atomic_folder(dst: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a hidden ``.<name>.partial`` sibling of ``dst`` to fill; rename it to ``dst`` on success.

    On an error the partial folder is removed; one left by a killed run is removed on the next call.
    """
    dst = Path(dst)
    if dst.exists():
        raise FileExistsError(f"{dst} already exists; remove it to write it again")
    work = dst.with_name(f".{dst.name}.partial")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    work.rename(dst)
