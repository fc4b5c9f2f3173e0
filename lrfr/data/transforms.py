"""Training-time transforms named in a config: ``DataSpec(..., transforms=[TransformSpec("hflip", {"p": 0.5})])``.

The contract (what a transform registered in :data:`TRANSFORMS` must do):

* It is built once per data stream, ``TRANSFORMS.build(name, **kwargs)``, and then called as
  ``transform(sample, rng) -> sample``.
* ``sample`` is the dataset item as a dict of tensors: ``"image"`` a float ``(3, H, W)`` tensor in
  [-1, 1] at the dataset's input size (what lrfr datasets yield), ``"label"``, ``"index"`` and whatever
  else the dataset or an earlier transform put there (a ``(image, label)`` pair arrives as
  ``{"image", "label"}``). It returns the sample to pass on: the same dict with entries replaced or
  added (e.g. a low-resolution copy under ``"lr"`` for paired HR/LR batches), never a tensor modified in
  place (the dataset may serve it again from memory).
* ``rng`` is a ``torch.Generator`` on the CPU, seeded from (the run's seed, the epoch, the sample's
  index); every random draw must come from it (``torch.rand(..., generator=rng)``), so that an epoch's
  augmentations are the same with any number of workers and after a resume, and differ between epochs.

:class:`TransformedDataset` applies a list of transforms in order; the trainer tells it the epoch.
Resolution augmentations build on :func:`lrfr.data.degrade.synthetic_lr`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from lrfr.registry import Registry

Sample = dict[str, Any]
Transform = Callable[[Sample, torch.Generator], Sample]
TRANSFORMS: Registry[Transform] = Registry("transform")
_MASK = (1 << 63) - 1


@TRANSFORMS.register("hflip")
class RandomHorizontalFlip:
    """Mirror ``keys`` (default the image) left-right with probability ``p``; one draw per sample, so
    paired entries (e.g. HR and LR copies) are flipped together."""

    def __init__(self, p: float = 0.5, keys: Sequence[str] = ("image",)) -> None:
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
            raise ValueError(f"p {p!r} is not valid; expected a probability in [0, 1]")
        self.p, self.keys = float(p), tuple(keys)

    def __call__(self, sample: Sample, rng: torch.Generator) -> Sample:
        if torch.rand((), generator=rng).item() >= self.p:
            return sample
        return {key: value.flip(-1) if key in self.keys else value for key, value in sample.items()}


class TransformedDataset(Dataset):
    """``dataset``'s items (as sample dicts) passed through ``transforms`` with a per-sample RNG seeded
    from (``seed``, epoch, index); :meth:`set_epoch` (called by the trainer) changes the draws."""

    def __init__(self, dataset: Dataset, transforms: Sequence[Transform], seed: int) -> None:
        self.dataset, self.transforms, self.seed, self.epoch = dataset, list(transforms), int(seed), 0

    @property
    def num_classes(self) -> int:
        """The wrapped dataset's ``num_classes`` (AttributeError if it has none)."""
        return self.dataset.num_classes

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Sample:
        item = self.dataset[index]
        sample = dict(item) if isinstance(item, dict) else _pair(item)
        rng = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, int(index)))
        for transform in self.transforms:
            sample = transform(sample, rng)
        return sample


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed that is a pure function of (seed, epoch, index) (splitmix64-style mixing)."""
    value = 0
    for part in (seed, epoch, index):
        value = (value ^ (part & _MASK)) * 0x9E3779B97F4A7C15 & _MASK
        value ^= value >> 31
    return value


def _pair(item: Any) -> Sample:
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return {"image": item[0], "label": item[1]}
    if isinstance(item, Tensor):
        return {"image": item}
    raise TypeError(f"a dataset item has type {type(item).__name__}; expected a dict, an (image, label) pair or an image")
