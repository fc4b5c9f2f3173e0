"""HR faces paired with synthetic LR copies of themselves, for SR training and joint SR-FR learning.

Cheng et al. 2018 (Sec. 3 (I)): the synthetic-LR branch of CSRI and every SR-then-FR baseline train on
auxiliary faces with "artificially down-sampled LR/HR pairs" ``{(I^alr, I^ahr)}`` and identity labels;
Ling et al. 2023 (Sec. 3.3, Eq. 7-8) feed each HR face and its resolution-augmented copy through one
backbone in the same step. :class:`LRPairs` wraps a labelled face dataset (the HR identity set) and
yields its items with ``image`` replaced by ``{"hr", "lr", "lr_size"}``: ``lr`` is the HR face
bicubic-down-sampled to a size drawn from ``lr_sizes`` with probabilities proportional to ``weights``
(equal by default; :class:`lrfr.data.resolution.ResolutionAugmentation`), then, with ``upsample``
(pre-upsampling SR networks, CSRI's VDSR, and Ling et al.'s augmentations), bicubic-up-sampled back to
the HR size -- the "interpolated LR"; a size at or above the HR size leaves the face as it is -- or kept
at its LR size (post-upsampling networks such as EDSR; one size only, so that batches stack). Each row of
a batch of LR copies is the copy of the same row of the HR batch: same face, same identity.

``patch`` crops the same random ``patch`` x ``patch`` window from both images (SR networks are fully
convolutional and train on patches: SRCNN 33 px, VDSR 41 px, DRRN 31 px); the size and the crop are
drawn from torch's global generator, which the trainer seeds.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from lrfr.data import DATASETS
from lrfr.data.base import FaceDataset
from lrfr.data.degrade import synthetic_lr
from lrfr.data.resolution import ResolutionAugmentation, down_up


class LRPairs(Dataset):
    """``base``'s faces as HR targets with synthetic LR inputs (see the module docstring)."""

    def __init__(
        self,
        base: Dataset,
        lr_sizes: int | Sequence[int] = 20,
        upsample: bool = True,
        patch: int | None = None,
        weights: Sequence[float] | None = None,
    ) -> None:
        sizes = [lr_sizes] if isinstance(lr_sizes, int) else list(lr_sizes)
        if not sizes or not all(isinstance(s, int) and s >= 1 for s in sizes):
            raise ValueError(f"lr_sizes must be a positive int or a non-empty list of them, got {lr_sizes!r}")
        if not upsample and (len(sizes) > 1 or patch is not None):
            raise ValueError("LR faces kept at their own size (upsample=False) take one lr_size and no patch")
        if patch is not None and (not isinstance(patch, int) or patch < 1):
            raise ValueError(f"patch must be a positive int, got {patch!r}")
        self.base, self.lr_sizes, self.upsample, self.patch = base, sizes, upsample, patch
        self.augmentation = ResolutionAugmentation(tuple(sizes), tuple(weights) if weights is not None else (1.0,) * len(sizes))
        self.num_classes = base.num_classes

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        item = self.base[index]
        if not isinstance(item, dict) or "image" not in item:
            raise TypeError(f"the base dataset yields {type(item).__name__}; expected a dict with an 'image'")
        hr = item["image"]
        size = int(self.augmentation.draw()[0]) if len(self.lr_sizes) > 1 else self.lr_sizes[0]
        lr = down_up(hr, size) if self.upsample else synthetic_lr(hr, size)
        if self.patch is not None:
            hr, lr = self._crop(hr, lr)
        rest = {key: value for key, value in item.items() if key != "image"}
        return {**rest, "hr": hr, "lr": lr, "lr_size": torch.tensor(size)}

    def _crop(self, hr: Tensor, lr: Tensor) -> tuple[Tensor, Tensor]:
        height, width = hr.shape[-2:]
        if self.patch > min(height, width):
            raise ValueError(f"patch {self.patch} is larger than the faces ({height} x {width})")
        top = int(torch.randint(height - self.patch + 1, ()))
        left = int(torch.randint(width - self.patch + 1, ()))
        window = (..., slice(top, top + self.patch), slice(left, left + self.patch))
        return hr[window], lr[window]


@DATASETS.register("lr_pairs")
def load_lr_pairs(
    dataset: str,
    lr_sizes: int | Sequence[int] = 20,
    upsample: bool = True,
    patch: int | None = None,
    keep_in_memory: bool = True,
    weights: Sequence[float] | None = None,
    **kwargs: object,
) -> LRPairs:
    """LR/HR pairs of the faces that factory ``dataset`` reads with ``kwargs`` (e.g. ``"folder"`` on the
    HR identity set, ``input_size`` = the HR size); ``keep_in_memory`` keeps the decoded HR faces (a
    :class:`FaceDataset` only), ``weights`` the probabilities of ``lr_sizes`` (e.g. Ling et al.'s MAug:
    ``lr_sizes=[7, 14, 20], weights=[1, 1, 2]``)."""
    base = DATASETS.build(dataset, **kwargs)
    if keep_in_memory:
        if not isinstance(base, FaceDataset):
            raise ValueError(f"dataset factory {dataset!r} built a {type(base).__name__}; keep_in_memory needs a "
                             "FaceDataset (pass keep_in_memory=False)")
        base = base.keep_in_memory()
    return LRPairs(base, lr_sizes, upsample, patch, weights)
