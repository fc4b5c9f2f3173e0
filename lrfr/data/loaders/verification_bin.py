"""insightface verification sets (``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin``...), read without trusting pickle.

Each file is a pickle of ``(bins, issame_list)``: the JPEG bytes of 2n images (pair i is images 2i
and 2i+1) and n booleans. insightface scores them in 10 contiguous folds. A restricted unpickler
builds only bytes, lists, tuples, booleans (and numpy arrays of them): any other global a pickle
names, such as ``os.system``, is refused, and every unreadable file is a :class:`VerificationBinError`
(a :class:`pickle.UnpicklingError` and ``ValueError``) naming it.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from lrfr.data.base import LayoutError, read_image, to_tensor
from lrfr.data.degrade import resize

_ALLOWED = {
    ("builtins", "bytes"),
    ("builtins", "bytearray"),
    ("builtins", "list"),
    ("builtins", "tuple"),
    ("builtins", "bool"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
}


class VerificationBinError(pickle.UnpicklingError, ValueError):
    """A verification ``.bin`` cannot be read: not a pickle, truncated, a global the restricted unpickler
    refuses, or not ``(images, issame)``; the message names the file and what was expected."""


def _latin1_encode(text: str, encoding: str) -> bytes:
    """``_codecs.encode`` as protocol-2 pickles written by Python 3 use it for bytes (latin-1 only)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode({type(text).__name__}, {encoding!r}): only latin1 text encodes bytes")
    return text.encode("latin1")


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler resolving only the globals in ``_ALLOWED`` (and latin-1 ``_codecs.encode``); anything else,
    such as ``os.system``, is a :class:`pickle.UnpicklingError` naming it."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: a verification .bin holds only image bytes and booleans"
            )
        return super().find_class(module, name)


@dataclass(frozen=True)
class VerificationBin:
    """Encoded images (2 per pair) and ``is_same`` per pair; ``pairs`` and ``folds`` as in :class:`PairSet`."""

    images: tuple[bytes, ...]
    is_same: np.ndarray
    source: Path

    @property
    def pairs(self) -> np.ndarray:
        return np.arange(len(self.images), dtype=np.int64).reshape(-1, 2)

    @property
    def folds(self) -> np.ndarray:
        """insightface's 10 contiguous folds (``KFold(10, shuffle=False)``)."""
        count = len(self.is_same)
        return np.arange(count, dtype=np.int64) * 10 // max(count, 1)

    def image(self, index: int) -> np.ndarray:
        """Image ``index`` decoded to RGB uint8 ``(H, W, 3)``."""
        return read_image(io.BytesIO(self.images[index]), f"{self.source} image {index}")


class BinImages(Dataset):
    """The images of a :class:`VerificationBin` as ``{"image", "index"}`` items, decoded when read and
    resized to ``input_size`` (:func:`lrfr.data.degrade.resize`), for a DataLoader."""

    def __init__(self, data: VerificationBin, input_size: int | tuple[int, int] = 112) -> None:
        self.data, self.input_size = data, input_size

    def __len__(self) -> int:
        return len(self.data.images)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        image = resize(to_tensor(self.data.image(index)), self.input_size)
        return {"image": image, "index": torch.tensor(index)}


def load_verification_bin(path: str | Path) -> VerificationBin:
    """Read a verification ``.bin`` with :class:`RestrictedUnpickler`; anything else than a pickled
    ``(images, issame)`` pair of encoded images and booleans is a :class:`VerificationBinError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise LayoutError(f"verification set {path} does not exist (expected an insightface .bin file)")
    expected = "expected an insightface .bin: a pickled (images, issame) pair of encoded images and booleans"
    try:  # from memory: a length field of the file can then never make the unpickler read or allocate more
        content = RestrictedUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except Exception as error:  # the unpickler raises many types on malformed bytes; none is trusted
        raise VerificationBinError(f"cannot read {path} ({type(error).__name__}: {error}); {expected}") from None
    if not (isinstance(content, (tuple, list)) and len(content) == 2):
        raise VerificationBinError(f"{path}: found a pickled {type(content).__name__}; {expected}")
    images, is_same = (_images(content[0], path, expected), _booleans(content[1], path, expected))
    if len(images) != 2 * len(is_same):
        raise VerificationBinError(f"{path}: {len(images)} images for {len(is_same)} pairs (expected 2 images per pair)")
    return VerificationBin(images, is_same, path)


def _images(values: Any, path: Path, expected: str) -> tuple[bytes, ...]:
    """The encoded images: bytes, bytearrays or uint8 arrays (insightface's numpy variant)."""
    if not isinstance(values, (list, tuple)):
        raise VerificationBinError(f"{path}: images are a {type(values).__name__}; {expected}")
    images = []
    for index, value in enumerate(values):
        if isinstance(value, np.ndarray) and value.dtype == np.uint8:
            value = value.tobytes()
        if not isinstance(value, (bytes, bytearray)):
            kind = f"{type(value).__name__}" + (f" of {value.dtype}" if isinstance(value, np.ndarray) else "")
            raise VerificationBinError(f"{path}: image {index} is of type {kind}; {expected}")
        images.append(bytes(value))
    return tuple(images)


def _booleans(values: Any, path: Path, expected: str) -> np.ndarray:
    """``issame``: a list or array of booleans."""
    if isinstance(values, np.ndarray) and values.dtype == bool:
        return values.ravel()
    if not (isinstance(values, (list, tuple)) and all(isinstance(v, (bool, np.bool_)) for v in values)):
        raise VerificationBinError(f"{path}: issame is not a list of booleans; {expected}")
    return np.array(values, dtype=bool)
