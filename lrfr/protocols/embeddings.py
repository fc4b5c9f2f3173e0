"""Embedding extraction: stream images through an embedder and keep only the embeddings.

:func:`image_batches` is the one path by which images reach a model: a ``Dataset`` (or face records,
read as a :class:`~lrfr.data.base.FaceDataset`) goes through a ``DataLoader`` in bounded batches, with
worker processes and pinned memory on a GPU, so that no more than a few batches of images are ever
in memory, whatever the size of the set. :func:`extract_embeddings` runs an
:class:`~lrfr.models.embedder.Embedder` (or a backbone) over them; its result holds the (N, D)
embeddings, their norms and the labels, and nothing per image besides.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from lrfr.data.base import FaceDataset, FaceRecord
from lrfr.models.embedder import Embedder, as_embedder

Images = Dataset | DataLoader | Tensor | Sequence[FaceRecord]
_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
_SAMPLE_FORMS = "a Tensor image, a tuple (image, label, ...), or a dict with 'image' and optionally 'label'"


@dataclass(frozen=True)
class ExtractedEmbeddings:
    """Embeddings of N images.

    ``embeddings``: (N, D) float32, each row of unit L2 norm.
    ``norms``: (N,) float32 L2 norms before normalisation; with flip fusion the norm of the sum
    f(x) + f(flip(x)), so about twice a single view's norm when both views agree.
    ``labels``: (N,) int64 when the input carried labels, else None.
    """

    embeddings: np.ndarray
    norms: np.ndarray
    labels: np.ndarray | None


def extract_embeddings(
    model: Embedder | nn.Module,
    images: Images,
    *,
    batch_size: int = 256,
    num_workers: int = 0,
    input_size: int | tuple[int, int] | None = None,
    flip_fusion: bool | None = None,
    progress: bool = True,
    desc: str = "extract",
) -> ExtractedEmbeddings:
    """Embed ``images`` with ``model``: an :class:`~lrfr.models.embedder.Embedder`, or a backbone (any
    ``nn.Module`` mapping lrfr images (B, 3, H, W) to (B, D), wrapped by
    :class:`~lrfr.models.embedder.BackboneEmbedder`).

    ``images``: see :func:`image_batches`; face records are read at ``input_size`` (default: the
    embedder's input size) and the embedder resizes whatever it gets to its own. Order is preserved.
    ``flip_fusion`` None uses the embedder's own setting. Each module's train/eval mode is restored.
    """
    embedder = as_embedder(model)
    if _is_records(images):
        size = input_size or embedder.spec.size
        if size is None:
            raise ValueError("the model has no input size; pass input_size to read face records")
        images = FaceDataset(images, size)
    batches = image_batches(images, batch_size=batch_size, num_workers=num_workers, device=embedder.device)
    embedded: list[Tensor] = []
    norms: list[Tensor] = []
    labels: list[Tensor] = []
    for batch, batch_labels in tqdm(batches, desc=desc, unit="batch", disable=not progress):
        unit, norm = embedder.embed(batch, flip_fusion)
        embedded.append(unit.cpu())
        norms.append(norm.cpu())
        if batch_labels is not None:
            labels.append(batch_labels)
    if not sum(len(batch) for batch in embedded):
        raise ValueError("images is empty; expected at least one image")
    if labels and len(labels) != len(embedded):
        raise ValueError("some batches have labels and some do not; expected all or none")
    return ExtractedEmbeddings(
        embeddings=torch.cat(embedded).numpy(),
        norms=torch.cat(norms).numpy(),
        labels=torch.cat(labels).numpy() if labels else None,
    )


def image_batches(
    images: Dataset | DataLoader | Tensor,
    *,
    batch_size: int = 256,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
) -> Iterator[tuple[Tensor, Tensor | None]]:
    """``(images (B, C, H, W) on device, labels (B,) int64 on the CPU or None)`` in the input's order.

    ``images``: a (N, C, H, W) tensor (split into batches), a Dataset whose items are a Tensor image
    (C, H, W), a tuple (image, label, ...) or a dict with "image" and optionally "label" (read by a
    ``DataLoader`` with ``batch_size``, ``num_workers`` worker processes and, for a CUDA ``device``,
    pinned memory), or a DataLoader whose batches take the same forms (its own batching is used).
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size {batch_size!r} is not valid; expected an int >= 1")
    device = torch.device(device)
    for batch, labels in _checked_batches(_batches(images, batch_size, num_workers, device.type == "cuda")):
        yield batch.to(device, non_blocking=True), labels


def _is_records(images: object) -> bool:
    return isinstance(images, (list, tuple)) and all(isinstance(record, FaceRecord) for record in images)


def _batches(images: Dataset | DataLoader | Tensor, batch_size: int, num_workers: int, pin: bool) -> Iterable[Any]:
    """Batches in the input's order, in one of the sample forms."""
    if isinstance(images, Tensor):
        if images.ndim != 4:
            raise ValueError(f"images tensor has shape {tuple(images.shape)}; expected (N, C, H, W)")
        return images.split(batch_size)
    if isinstance(images, DataLoader):
        return images
    if isinstance(images, Dataset):
        return DataLoader(
            images, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=_collate, pin_memory=pin
        )
    raise TypeError(
        f"images has type {type(images).__name__}; expected a Tensor, Dataset or DataLoader (or face records)"
    )


def _split(sample: Any) -> tuple[Any, Any]:
    """(image or images, label or labels or None) of one sample or batch."""
    if isinstance(sample, Tensor):
        return sample, None
    if isinstance(sample, (tuple, list)) and sample:
        return sample[0], sample[1] if len(sample) > 1 else None
    if isinstance(sample, dict) and "image" in sample:
        return sample["image"], sample.get("label")
    raise TypeError(f"a sample has type {type(sample).__name__}; expected {_SAMPLE_FORMS}")


def _collate(samples: list[Any]) -> tuple[Tensor, Tensor | None]:
    """Stack dataset items into (images, labels or None)."""
    pairs = [_split(sample) for sample in samples]
    labelled = {label is not None for _, label in pairs}
    if len(labelled) > 1:
        raise ValueError("some dataset items have a label and some do not; expected all or none")
    images = torch.stack([torch.as_tensor(image) for image, _ in pairs])
    labels = torch.stack([torch.as_tensor(label) for _, label in pairs]) if labelled == {True} else None
    return images, labels


def _checked_batches(batches: Iterable[Any]) -> Iterator[tuple[Tensor, Tensor | None]]:
    """Each batch as a (B, C, H, W) tensor and (B,) int64 labels or None."""
    for batch in batches:
        images, labels = _split(batch)
        if not isinstance(images, Tensor) or images.ndim != 4:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(f"a batch of images is {shape}; expected a (B, C, H, W) tensor")
        if labels is not None:
            labels = torch.as_tensor(labels).cpu()
            if labels.shape != images.shape[:1] or labels.dtype not in _INTEGER_DTYPES:
                raise ValueError(
                    f"batch labels have shape {tuple(labels.shape)} and dtype {labels.dtype}; "
                    f"expected ({images.shape[0]},) integers"
                )
            labels = labels.long()
        yield images, labels
