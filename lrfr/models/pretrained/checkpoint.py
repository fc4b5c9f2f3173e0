"""Reading public checkpoints without unpickling code, and matching their keys to a model.

A checkpoint is a safetensors file, or a ``torch.save`` file read with ``weights_only=True``: tensors,
numbers, strings and containers only. PyTorch Lightning checkpoints (AdaFace's ``.ckpt``) also hold
training metadata of a few Lightning and standard-library types; those names are allowlisted, the
Lightning ones mapped to inert stand-ins (a plain dict, an empty class) so that Lightning is
neither needed nor imported. Anything else, e.g. a callable reached through ``__reduce__``, is refused
before it can run.
"""

from __future__ import annotations

import argparse
import collections
import pickle
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import Tensor


class CheckpointError(ValueError):
    """A checkpoint cannot be read safely or does not fit the expected model; the message says why."""


class LightningClassReference:
    """Inert stand-in for a Lightning class stored by reference (older callbacks-state keys)."""


_LIGHTNING_DICTS = (
    "pytorch_lightning.utilities.parsing.AttributeDict",
    "lightning.fabric.utilities.data.AttributeDict",
    "lightning_fabric.utilities.data.AttributeDict",
    "lightning.pytorch.utilities.parsing.AttributeDict",
)
_LIGHTNING_CLASSES = (
    "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint",
    "pytorch_lightning.callbacks.early_stopping.EarlyStopping",
    "pytorch_lightning.callbacks.lr_monitor.LearningRateMonitor",
)
#: What a training checkpoint may hold besides tensors: argparse namespaces (hyper-parameters),
#: Counters (``MultiStepLR`` milestones) and the Lightning names above: its ``AttributeDict`` (a dict
#: subclass) read as a plain dict, class references as an inert class.
METADATA_GLOBALS: list[Any] = [
    argparse.Namespace,
    collections.Counter,
    *((dict, name) for name in _LIGHTNING_DICTS),
    *((LightningClassReference, name) for name in _LIGHTNING_CLASSES),
]
_SAFETENSORS_MAX_HEADER = 100 << 20


def is_safetensors(path: Path) -> bool:
    """Whether ``path`` starts like a safetensors file (a little-endian header length, then ``{``)."""
    with path.open("rb") as handle:
        head = handle.read(9)
    return len(head) == 9 and 0 < int.from_bytes(head[:8], "little") < _SAFETENSORS_MAX_HEADER and head[8:9] == b"{"


def read_checkpoint(path: str | Path) -> Any:
    """The object stored at ``path``, read without executing pickled code (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if is_safetensors(path):
        return load_file(path, device="cpu")
    try:
        with torch.serialization.safe_globals(METADATA_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"(?:unsupported GLOBAL|Unsupported global: GLOBAL) ([\w.]+)", str(error))
        what = f"the pickled object {found.group(1)}" if found else "pickled objects"
        raise CheckpointError(
            f"refusing to load {path}: it holds {what}, which a weights-only load does not allow (it could run "
            "code). lrfr reads tensors, containers of them and Lightning training metadata; if you trust the "
            "file, re-save only its weights: torch.save(checkpoint['state_dict'], 'weights.pth')"
        ) from None
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"cannot read {path} as a PyTorch or safetensors checkpoint: {error}") from None


def state_dict_of(checkpoint: Any, path: str | Path) -> dict[str, Tensor]:
    """The tensors of a checkpoint: the object itself if it maps names to tensors, else its ``state_dict``
    entry (Lightning). A ``module.`` prefix on every key (saved from DistributedDataParallel) is removed."""
    if isinstance(checkpoint, Mapping) and not _all_tensors(checkpoint) and isinstance(checkpoint.get("state_dict"), Mapping):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, Mapping) or not checkpoint or not _all_tensors(checkpoint):
        raise CheckpointError(
            f"{path} holds no state dict: expected a mapping of parameter names to tensors, or a Lightning "
            f"checkpoint with one under 'state_dict'; found {_describe(checkpoint)}"
        )
    state = {str(key): value for key, value in checkpoint.items()}
    if all(key.startswith("module.") for key in state):
        state = {key[len("module."):]: value for key, value in state.items()}
    return state


def _all_tensors(mapping: Mapping) -> bool:
    return all(isinstance(value, Tensor) for value in mapping.values())


def _describe(obj: Any) -> str:
    if isinstance(obj, Mapping):
        return f"a mapping with keys {list(obj)[:8]}"
    return f"a {type(obj).__name__}"


def _first(keys: Iterable[str], count: int = 5) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:count])
    return shown + (f" (+{len(keys) - count} more)" if len(keys) > count else "")


def match_state_dict(
    source: Mapping[str, Tensor],
    target: Mapping[str, Tensor],
    publisher_key: Callable[[str], str],
    family: str,
    path: str | Path,
    optional: Callable[[str], bool] = lambda key: key.endswith("num_batches_tracked"),
) -> dict[str, Tensor]:
    """``target``'s keys filled from ``source``, whose key for each is ``publisher_key(target key)``.

    Every source key must be used and every target key found with the same shape (``optional`` target
    keys may be absent and keep ``target``'s value), else one :class:`CheckpointError` naming
    ``family`` and the first keys that differ.
    """
    wanted = {publisher_key(key): key for key in target}
    missing = [theirs for theirs, ours in wanted.items() if theirs not in source and not optional(ours)]
    unexpected = [key for key in source if key not in wanted]
    shapes = [
        f"{theirs} {tuple(source[theirs].shape)} (expected {tuple(target[ours].shape)})"
        for theirs, ours in wanted.items()
        if theirs in source and source[theirs].shape != target[ours].shape
    ]
    if missing or unexpected or shapes:
        problems = [
            f"missing {_first(missing)}" if missing else "",
            f"unexpected {_first(unexpected)}" if unexpected else "",
            f"shapes differ: {_first(shapes, 3)}" if shapes else "",
        ]
        raise CheckpointError(
            f"{path} is not a {family} checkpoint: " + "; ".join(p for p in problems if p)
            + f" ({len(source)} tensors in the file, {len(target)} in the model)"
        )
    return {ours: source[theirs] if theirs in source else target[ours] for theirs, ours in wanted.items()}
