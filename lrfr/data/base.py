"""What every dataset loader returns: face records with metadata, and a torch Dataset over them.

A loader reads a real dataset's own layout (or the synthetic one written in it) into a list of
:class:`FaceRecord` (the image file, identity, split and per-image metadata such as the native size,
camera and distance). :class:`FaceDataset` turns records into training/evaluation items; resizing to
the model's input size is its job (:func:`lrfr.data.degrade.resize`), so the native size stays in the
metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from lrfr.data.degrade import resize


class LayoutError(FileNotFoundError):
    """A dataset folder does not have the expected layout; the message lists what is missing."""


class CorruptImageError(OSError):
    """An image file cannot be decoded; the message names the file."""


@dataclass(frozen=True)
class FaceRecord:
    """One image of a dataset. ``label`` is -1 for images without identity (distractors, UI set)."""

    path: Path
    label: int
    identity: str | None
    split: str
    metadata: dict[str, Any] = field(default_factory=dict)


def check_layout(dataset: str, root: Path, required: Sequence[str]) -> None:
    """Raise :class:`LayoutError` listing every ``required`` relative path missing under ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f"{dataset}: data folder {root} does not exist (expected {', '.join(required)} in it)")
    missing = [entry for entry in required if not (root / entry).exists()]
    if missing:
        raise LayoutError(
            f"{dataset}: {root} does not have the expected layout; missing {', '.join(missing)} "
            f"(expected {', '.join(required)})"
        )


def read_image(path: Path | BinaryIO, name: str | None = None) -> np.ndarray:
    """An RGB ``(H, W, 3)`` uint8 array from a file or an open binary stream (``name`` names the stream in errors).

    :class:`CorruptImageError` naming the file if it cannot be decoded.
    """
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))  # a writable copy (torch.from_numpy warns on read-only arrays)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise CorruptImageError(f"cannot read image {name or path}: {error}") from None


def image_size(path: Path | BinaryIO, name: str | None = None) -> tuple[int, int]:
    """``(height, width)`` from the image header alone (no decoding); :class:`CorruptImageError` naming the file."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise CorruptImageError(f"cannot read image {name or path}: {error}") from None
    return height, width


def to_tensor(images: np.ndarray) -> Tensor:
    """uint8 ``(H, W, 3)`` -> float32 ``(3, H, W)`` in [-1, 1] (the insightface convention); a batch
    ``(N, H, W, 3)`` -> ``(N, 3, H, W)``."""
    return torch.from_numpy(np.ascontiguousarray(images)).movedim(-1, -3).float().div(127.5).sub(1.0).contiguous()


class FaceDataset(Dataset):
    """Records -> ``{"image", "label", "index"}`` items, images resized to ``input_size``
    (:func:`lrfr.data.degrade.resize`).

    ``num_classes`` counts the distinct non-negative labels; ``corrupt`` lists the files a loader
    skipped as unreadable. After :meth:`keep_in_memory` each resized image is decoded once and then
    served from memory (a copy, so that a training transform, :mod:`lrfr.data.transforms`, applied
    after it stays random per epoch and cannot alter the kept image).
    """

    def __init__(
        self,
        records: Sequence[FaceRecord],
        input_size: int | tuple[int, int] = 112,
        corrupt: Sequence[Path] = (),
    ) -> None:
        self.records = list(records)
        self.input_size = input_size
        self.corrupt = tuple(corrupt)
        self.num_classes = len({r.label for r in self.records if r.label >= 0})
        self._memory: dict[int, Tensor] | None = None

    def keep_in_memory(self) -> "FaceDataset":
        """Keep every resized image after its first read (for small sets read for many epochs)."""
        self._memory = {} if self._memory is None else self._memory
        return self

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        record = self.records[index]
        image = self._memory.get(index) if self._memory is not None else None
        if image is None:
            image = resize(to_tensor(read_image(record.path)), self.input_size)
            if self._memory is not None:
                self._memory[index] = image
        if self._memory is not None:
            image = image.clone()  # transforms after this must not alter the kept image
        return {"image": image, "label": torch.tensor(record.label), "index": torch.tensor(index)}

    @property
    def labels(self) -> np.ndarray:
        return np.array([r.label for r in self.records], dtype=np.int64)


class FaceArray(Dataset):
    """In-memory uint8 images ``(N, H, W, 3)`` (and optional labels) -> ``{"image"[, "label"]}`` items,
    each image a float ``(3, H, W)`` tensor in [-1, 1] converted when read; ``num_classes`` as
    :class:`FaceDataset` (0 without labels)."""

    def __init__(self, images: np.ndarray, labels: Sequence[int] | np.ndarray | None = None) -> None:
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images have shape {getattr(images, 'shape', None)}; expected (N, H, W, 3) uint8")
        self.images = images
        self.labels = None if labels is None else torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        if self.labels is not None and self.labels.shape != (len(images),):
            raise ValueError(f"labels have shape {tuple(self.labels.shape)}; expected ({len(images)},)")
        self.num_classes = 0 if self.labels is None else len(torch.unique(self.labels[self.labels >= 0]))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        item = {"image": to_tensor(self.images[index])}
        return item if self.labels is None else {**item, "label": self.labels[index]}


def scan_images(folder: Path, extensions: Sequence[str] = (".jpg", ".jpeg", ".png", ".bmp")) -> list[Path]:
    """Image files directly in ``folder``, sorted by name (deterministic order)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in extensions)


def validate_images(records: Sequence[FaceRecord], skip_corrupt: bool = False) -> tuple[list[FaceRecord], list[Path]]:
    """Decode every image once; fail on the first unreadable one, or drop and list them with ``skip_corrupt``."""
    kept, corrupt = [], []
    for record in records:
        try:
            read_image(record.path)
        except CorruptImageError:
            if not skip_corrupt:
                raise
            corrupt.append(record.path)
        else:
            kept.append(record)
    return kept, corrupt
