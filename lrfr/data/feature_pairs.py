"""Faces as precomputed feature maps at several sizes, served like :class:`lrfr.data.lr_pairs.LRPairs`.

A model whose first stages are frozen (:mod:`lrfr.models.tail`) sees a face at a given size only through
the frozen prefix's feature map of it. A features file (safetensors) holds, for N faces, that map of the
HR face (key ``"hr"``) and of its bicubic down-and-up copy at each size ``r`` (key ``"size_<r>"``), and
the faces' ``"labels"`` (N,). :class:`FeaturePairs` serves them as training items: ``{"image", "label"}``
(HR only) or, with LR sizes, ``{"hr", "lr", "label", "lr_size"}`` where ``lr`` is the map of the same
face at a size drawn with the given weights (:class:`lrfr.data.resolution.ResolutionAugmentation`, from
torch's global generator, which the trainer seeds) -- Ling et al.'s paired HR / LR views (Eq. 7).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from lrfr.data import DATASETS
from lrfr.data.resolution import ResolutionAugmentation
from lrfr.io import load_tensors

HR_KEY, LABELS_KEY = "hr", "labels"


def feature_key(size: int | None) -> str:
    """The file key of the maps at ``size`` px (None: the HR faces)."""
    return HR_KEY if size is None else f"size_{int(size)}"


class FeaturePairs(Dataset):
    """Items of precomputed maps ``features`` (key -> (N, ...)) with ``labels`` (N,) (module docstring)."""

    def __init__(self, features: Mapping[str, Tensor], labels: Tensor, lr_sizes: Sequence[int] = (),
                 weights: Sequence[float] | None = None) -> None:
        sizes = [int(s) for s in lr_sizes]
        missing = [feature_key(s) for s in [None, *sizes] if feature_key(s) not in features]
        if missing:
            raise ValueError(f"the features have no maps {missing}; they have {sorted(features)}")
        if any(len(features[feature_key(s)]) != len(labels) for s in [None, *sizes]):
            raise ValueError(f"every map set must have one map per label ({len(labels)})")
        self.features, self.labels, self.lr_sizes = features, labels.long(), sizes
        self.augmentation = ResolutionAugmentation(tuple(sizes), tuple(weights or (1.0,) * len(sizes))) if sizes else None
        self.num_classes = len(torch.unique(self.labels[self.labels >= 0]))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        hr, label = self.features[HR_KEY][index], self.labels[index]
        if self.augmentation is None:
            return {"image": hr, "label": label}
        size = int(self.augmentation.draw()[0]) if len(self.lr_sizes) > 1 else self.lr_sizes[0]
        return {"hr": hr, "lr": self.features[feature_key(size)][index], "label": label, "lr_size": torch.tensor(size)}


@DATASETS.register("feature_pairs")
def load_feature_pairs(path: str, lr_sizes: Sequence[int] = (), weights: Sequence[float] | None = None) -> FeaturePairs:
    """:class:`FeaturePairs` of the features file ``path`` (see the module docstring)."""
    tensors = load_tensors(Path(path))
    if LABELS_KEY not in tensors:
        raise ValueError(f"features file {path} has no {LABELS_KEY!r}; expected one written by lrfr.experiments.frozen_body")
    labels = tensors.pop(LABELS_KEY)
    try:
        return FeaturePairs(tensors, labels, lr_sizes, weights)
    except ValueError as error:
        raise ValueError(f"features file {path}: {error}") from None
