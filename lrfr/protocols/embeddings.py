"""Embedding extraction: run a backbone over images and return L2-normalised embeddings."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

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
    model: nn.Module,
    images: Dataset | DataLoader | Tensor,
    *,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    flip_fusion: bool = False,
    progress: bool = True,
    desc: str = "extract",
    num_workers: int = 0,
) -> ExtractedEmbeddings:
    """Embed ``images`` with ``model`` ((B, C, H, W) -> (B, D) unnormalised embeddings).

    ``images`` is a (N, C, H, W) tensor, a Dataset whose items are a Tensor image (C, H, W), a tuple
    (image, label, ...) or a dict with "image" and optionally "label", or a DataLoader whose
    batches take the same forms (its own batch size and workers are used; ``batch_size`` and
    ``num_workers`` apply to the other inputs). Order is preserved. The model runs in eval mode
    under ``torch.inference_mode`` on ``device`` (default: where its parameters are); each
    module's train/eval mode is restored afterwards. ``flip_fusion`` embeds
    normalise(f(x) + f(x flipped along the width)), the AdaFace/insightface convention.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size {batch_size!r} is not valid; expected an int >= 1")
    device = torch.device(device) if device is not None else _model_device(model)
    batches = _batches(images, batch_size, num_workers)
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.inference_mode(), tqdm(batches, desc=desc, unit="batch", disable=not progress) as bar:
            embedded, labels = _embed_all(model, bar, device, flip_fusion)
    finally:
        for module, training in modes.items():
            module.training = training
    norms = torch.linalg.vector_norm(embedded, dim=1)
    return ExtractedEmbeddings(
        embeddings=F.normalize(embedded, dim=1).numpy(),
        norms=norms.numpy(),
        labels=None if labels is None else labels.numpy(),
    )


def _model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); CPU for a stateless model."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _batches(images: Dataset | DataLoader | Tensor, batch_size: int, num_workers: int) -> Iterable[Any]:
    """Batches in the input's order, in one of the sample forms."""
    if isinstance(images, Tensor):
        if images.ndim != 4:
            raise ValueError(f"images tensor has shape {tuple(images.shape)}; expected (N, C, H, W)")
        return images.split(batch_size)
    if isinstance(images, DataLoader):
        return images
    if isinstance(images, Dataset):
        return DataLoader(
            images, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=_collate
        )
    raise TypeError(f"images has type {type(images).__name__}; expected a Tensor, Dataset or DataLoader")


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


def _embed_all(
    model: nn.Module, batches: Iterable[Any], device: torch.device, flip_fusion: bool
) -> tuple[Tensor, Tensor | None]:
    """Concatenated (N, D) float32 CPU embeddings and (N,) int64 labels (None if unlabelled)."""
    embedded: list[Tensor] = []
    labels: list[Tensor] = []
    for images, batch_labels in _checked_batches(batches):
        embedded.append(_embed(model, images.to(device, non_blocking=True), flip_fusion).cpu())
        if batch_labels is not None:
            labels.append(batch_labels)
    if not sum(len(batch) for batch in embedded):
        raise ValueError("images is empty; expected at least one image")
    if labels and len(labels) != len(embedded):
        raise ValueError("some batches have labels and some do not; expected all or none")
    return torch.cat(embedded), torch.cat(labels) if labels else None


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


def _embed(model: nn.Module, images: Tensor, flip_fusion: bool) -> Tensor:
    """Unnormalised (B, D) embeddings, summed over the image and its mirror with flip fusion."""
    embedded = _forward(model, images).float()
    return embedded + _forward(model, images.flip(-1)).float() if flip_fusion else embedded


def _forward(model: nn.Module, images: Tensor) -> Tensor:
    output = model(images)
    if not isinstance(output, Tensor) or output.ndim != 2 or output.shape[0] != images.shape[0]:
        got = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        count = images.shape[0]
        raise ValueError(
            f"model output is {got} for a batch of {count} images; expected a ({count}, D) tensor"
        )
    return output
