"""insightface verification sets (``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin``...), read without trusting pickle.

Each file is a pickle of ``(bins, issame_list)``: the JPEG bytes of 2n images (pair i is images 2i
and 2i+1) and n booleans. insightface scores them in 10 contiguous folds. A restricted unpickler
builds only bytes, lists, tuples, booleans (and numpy arrays of them): any other global a pickle
names, such as ``os.system``, is refused with :class:`pickle.UnpicklingError`.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lrfr.data.base import LayoutError, read_image

_ALLOWED = {
    ("builtins", "bytes"),
    ("builtins", "bytearray"),
    ("builtins", "list"),
    ("builtins", "tuple"),
    ("builtins", "bool"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler resolving only the globals in ``_ALLOWED``; everything else is an error naming it."""

    def find_class(self, module: str, name: str) -> Any:
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


def load_verification_bin(path: str | Path) -> VerificationBin:
    """Read a verification ``.bin`` with :class:`RestrictedUnpickler`; a wrong structure is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise LayoutError(f"verification set {path} does not exist (expected an insightface .bin file)")
    with open(path, "rb") as handle:
        try:
            content = RestrictedUnpickler(handle, encoding="bytes").load()
        except (EOFError, ValueError) as error:
            raise pickle.UnpicklingError(f"{path} is not a readable pickle: {error}") from None
    if not (isinstance(content, (tuple, list)) and len(content) == 2):
        raise ValueError(f"{path}: expected a pickled (images, issame) pair, found {type(content).__name__}")
    images, is_same = content
    images = tuple(bytes(np.asarray(b, dtype=np.uint8)) if isinstance(b, np.ndarray) else bytes(b) for b in images)
    is_same = np.asarray(is_same, dtype=bool).ravel()
    if len(images) != 2 * len(is_same):
        raise ValueError(f"{path}: {len(images)} images for {len(is_same)} pairs (expected 2 images per pair)")
    return VerificationBin(images, is_same, path)
