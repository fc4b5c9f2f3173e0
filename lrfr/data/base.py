"""What every dataset loader returns: face records with metadata, and a torch Dataset over them.

A loader reads a real dataset's own layout (or the synthetic one written in it) into a list of
:class:`FaceRecord` (the image file, identity, split and per-image metadata such as the native size,
camera and distance). :class:`FaceDataset` turns records into training/evaluation items; resizing to
the model's input size is its job (:func:`lrfr.data.degrade.resize`), so the native size stays in the
metadata.
"""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from lrfr.data.degrade import resize


class LayoutError(FileNotFoundError):
    """A dataset folder, or one of its list files (pair list, ``.mat`` table, ``.idx`` index, record
    header), is missing or not in the expected form; the message names the file (and line or key) and
    what was expected. Also raised for a dataset that holds no images and for broken symbolic links."""


class CorruptImageError(OSError):
    """An image cannot be decoded, or is larger than :data:`MAX_IMAGE_PIXELS`; the message names the file.

    Loaders with ``skip_corrupt=True`` drop such images and list them instead of raising.
    """


#: Largest image (width x height) a loader decodes: far above any face crop or mugshot (SCface's
#: 3072 x 2048 mugshots are 6.3 megapixels), far below what fits in memory. A larger image is
#: treated as corrupt (a decompression bomb: a few hundred kilobytes of PNG can declare 144
#: megapixels), before any pixel is decoded.
MAX_IMAGE_PIXELS = 40_000_000


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

    :class:`CorruptImageError` naming the file if it cannot be decoded or is over :data:`MAX_IMAGE_PIXELS`.
    """
    with _opened(path, name) as image:
        try:
            return np.array(image.convert("RGB"))  # a writable copy (torch.from_numpy warns on read-only arrays)
        except Exception as error:  # Pillow's decoders raise many types on malformed data
            raise CorruptImageError(f"cannot read image {name or path}: {type(error).__name__}: {error}") from None


def image_size(path: Path | BinaryIO, name: str | None = None) -> tuple[int, int]:
    """``(height, width)`` from the image header alone (no decoding); :class:`CorruptImageError` naming the file."""
    with _opened(path, name) as image:
        width, height = image.size
    return height, width


@contextmanager
def _opened(path: Path | BinaryIO, name: str | None) -> Iterator[Image.Image]:
    """The image with its header read and its size checked against :data:`MAX_IMAGE_PIXELS` (pixels not decoded)."""
    try:
        image = Image.open(path)
    except Exception as error:  # UnidentifiedImageError, DecompressionBombError, struct/Value errors ...
        raise CorruptImageError(f"cannot read image {name or path}: {type(error).__name__}: {error}") from None
    with image:
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise CorruptImageError(
                f"cannot read image {name or path}: {width} x {height} pixels is over the limit of "
                f"{MAX_IMAGE_PIXELS:,} (lrfr.data.base.MAX_IMAGE_PIXELS; a decompression bomb or not a face image)"
            )
        yield image


def to_tensor(images: np.ndarray) -> Tensor:
    """uint8 ``(H, W, 3)`` -> float32 ``(3, H, W)`` in [-1, 1] (the insightface convention); a batch
    ``(N, H, W, 3)`` -> ``(N, 3, H, W)``."""
    return torch.from_numpy(np.ascontiguousarray(images)).movedim(-1, -3).float().div(127.5).sub(1.0).contiguous()


def cropped(image: np.ndarray, record: FaceRecord) -> np.ndarray:
    """``image`` cut to the record's ``crop`` box ``(top, left, height, width)`` when its metadata has one
    (a loader's centre crop of a non-square image, see :func:`lrfr.data.loaders.folder.load_folder`)."""
    if "crop" not in record.metadata:
        return image
    top, left, height, width = record.metadata["crop"]
    return image[top : top + height, left : left + width]


class FaceDataset(Dataset):
    """Records -> ``{"image", "label", "index"}`` items, images cut to a record's ``crop`` box if it has
    one and resized to ``input_size`` (:func:`lrfr.data.degrade.resize`).

    ``transform`` is a fixed image function applied after the resize (e.g. evaluation on synthetic LR,
    :class:`lrfr.data.degrade.SyntheticLR`); random training augmentation is a config's ``transforms``
    (:mod:`lrfr.data.transforms`). ``num_classes`` counts the distinct non-negative labels; ``corrupt``
    lists the files a loader skipped as unreadable. After :meth:`keep_in_memory` each resized image is decoded once and then
    served from memory (a copy, so that a training transform, :mod:`lrfr.data.transforms`, applied
    after it stays random per epoch and cannot alter the kept image).
    """

    def __init__(
        self,
        records: Sequence[FaceRecord],
        input_size: int | tuple[int, int] = 112,
        transform: Callable[[Tensor], Tensor] | None = None,
        corrupt: Sequence[Path] = (),
    ) -> None:
        self.records = list(records)
        self.input_size = input_size
        self.transform = transform
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
            image = resize(to_tensor(cropped(read_image(record.path), record)), self.input_size)
            if self._memory is not None:
                self._memory[index] = image
        if self._memory is not None:
            image = image.clone()  # transforms after this must not alter the kept image
        if self.transform is not None:
            image = self.transform(image)
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
    """Image files directly in ``folder``, sorted by name (deterministic order).

    A symbolic link with an image suffix that leads nowhere (dangling, or a loop) raises
    :class:`LayoutError` naming it rather than being skipped.
    """
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in extensions)
    check_links(images)
    return [p for p in images if p.is_file()]


def check_links(paths: Sequence[Path]) -> None:
    """:class:`LayoutError` naming the first symbolic link in ``paths`` that is a loop or leads nowhere."""
    for path in paths:
        if not path.is_symlink():
            continue
        try:
            path.resolve(strict=True)
        except RuntimeError:  # Python < 3.13 reports loops so
            raise LayoutError(f"{path} is a symbolic link loop (expected an image file or a link to one)") from None
        except OSError as error:
            kind = "a symbolic link loop" if error.errno == errno.ELOOP else "a symbolic link to nothing"
            raise LayoutError(f"{path} is {kind} ({os.readlink(path)!r}; expected an image file or a link to one)") from None


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
