"""Resolution augmentations (Ling et al. 2023, Sec. 3.1) and paired HR/LR training items.

A resolution augmentation draws a face size ``r`` from a list of sizes with given weights, then
bicubic-down-samples the image to ``r`` px and bicubic-up-samples it back to its own size ("the
resolution augmentations use interpolation ... to downsample and then upsample HR images to reduce
the image resolution but keep the input dimension"). The named settings:

=================== ===================== ============ ============================================
name                sizes (px)            weights      where
=================== ===================== ============ ============================================
``aug``             14                    1            Table 4 "Aug": 14 px only
``maug``            7, 14, 20             1 : 1 : 2    Sec. 3.1 / 4.1, Table 6 (ratio a parameter)
``maug_reference``  7, 14, 20             50 / 0 / 50  the public code's draw (see below)
``paug``            7, 14, 28, 56         1 : 1 : 1 : 1 Table 4 "PAug": ST-M (Knoche et al. 2021)
``single``          one size ``x``        1            Fig. 3a "Single-x"
=================== ===================== ============ ============================================

The public reference code (github.com/hurricanelx/LRFR, ``Pair_webface_multi``) draws ``u ~ U(0, 1)``
and takes 7 px for ``u <= 0.5``, 14 px for ``0.5 < u <= 0.5`` (never) and 20 px otherwise, with
``prob=[0.5, 0.5, 1.1]``: 7 / 14 / 20 px at 50 / 0 / 50 %, not the paper's 1 : 1 : 2. ``maug`` is the
paper's; ``maug_reference`` the code's. That code also flips the HR and LR copies independently;
here the LR copy is made from the (possibly flipped) HR image, so the pair shows the same picture.

The sizes are face sizes of the 112-px aligned crop, as in the paper. An image already resized to a
smaller model input (e.g. 64 px) is down-sampled from there to ``r`` px: the face then holds ``r`` px
of detail whatever the input size. A size at or above the input leaves the image as it is (it has no
detail to lose), so e.g. PAug's 56 px is a copy of the HR image at a 32-px input.

Paired HR/LR training items (each HR face and its LR copy in the same step, Eq. 7's ``f_HR`` and
``f_LR``) are :class:`lrfr.data.lr_pairs.LRPairs` with an augmentation's sizes and weights
(:func:`lr_pairs_kwargs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from lrfr.data.degrade import synthetic_lr

MAUG_SIZES = (7, 14, 20)  # extremely hard / hard / semi-hard (Sec. 3.1, Fig. 3a regions A, B, C)
MAUG_RATIO = (1.0, 1.0, 2.0)  # Sec. 4.1 and Table 6's chosen row
REFERENCE_CODE_RATIO = (0.5, 0.0, 0.5)  # what the public code's prob=[0.5, 0.5, 1.1] draws
AUG_SIZE = 14  # Table 4 "Aug"
PAUG_SIZES = (7, 14, 28, 56)  # ST-M's multi-resolution set (Table 4 "PAug")


def down_up(images: Tensor, size: int) -> Tensor:
    """Float ``(C, H, W)`` or ``(N, C, H, W)`` images bicubic-down-sampled to ``size`` px and bicubic-
    up-sampled back to (H, W) (:func:`lrfr.data.degrade.synthetic_lr`); unchanged where ``size`` is not
    below them (a face shown at a smaller input holds no more detail than the input)."""
    if size >= min(images.shape[-2:]):
        return images
    return synthetic_lr(images, size, upsample_to=tuple(images.shape[-2:]))


@dataclass(frozen=True)
class ResolutionAugmentation:
    """Bicubic down to a size drawn from ``sizes`` with probabilities proportional to ``weights``,
    then bicubic up to the image's own size. Calling it on a float ``(C, H, W)`` image returns the
    degraded image; :meth:`pair` also returns the drawn size. Draws use torch's global generator
    (seeded by the trainer, and per worker by the DataLoader)."""

    sizes: tuple[int, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        sizes, weights = tuple(self.sizes), tuple(float(w) for w in self.weights)
        if not sizes or len(sizes) != len(weights):
            raise ValueError(f"sizes {sizes} and weights {weights} must be non-empty and of one length")
        if any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in sizes):
            raise ValueError(f"sizes {sizes} must be ints >= 1 (face sizes in px)")
        if len(set(sizes)) != len(sizes):
            raise ValueError(f"sizes {sizes} repeat a size; give each size once with its weight")
        if any(not w >= 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"weights {weights} must be >= 0 with a positive sum")
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "weights", weights)

    @property
    def probabilities(self) -> tuple[float, ...]:
        """The weights normalised to sum to 1, one per size."""
        total = sum(self.weights)
        return tuple(w / total for w in self.weights)

    def draw(self, count: int = 1, generator: torch.Generator | None = None) -> Tensor:
        """``(count,)`` sizes drawn independently with :attr:`probabilities`."""
        probabilities = torch.tensor(self.weights, dtype=torch.float64)
        choice = torch.multinomial(probabilities, count, replacement=True, generator=generator)
        return torch.tensor(self.sizes)[choice]

    def pair(self, image: Tensor) -> tuple[Tensor, int]:
        """The degraded copy of ``image`` (C, H, W) and the size it was drawn at."""
        size = int(self.draw()[0])
        return down_up(image, size), size

    def __call__(self, image: Tensor) -> Tensor:
        return self.pair(image)[0]


def aug() -> ResolutionAugmentation:
    """Table 4 "Aug": 14-px LR copies only."""
    return ResolutionAugmentation((AUG_SIZE,), (1.0,))


def maug(ratio: Sequence[float] = MAUG_RATIO, sizes: Sequence[int] = MAUG_SIZES) -> ResolutionAugmentation:
    """MAug: 7 / 14 / 20 px at ``ratio`` (the paper's 1 : 1 : 2 by default; Table 6 sweeps it)."""
    return ResolutionAugmentation(tuple(sizes), tuple(ratio))


def maug_reference() -> ResolutionAugmentation:
    """MAug as the public reference code draws it: 7 / 14 / 20 px at 50 / 0 / 50 % (module docstring)."""
    return maug(REFERENCE_CODE_RATIO)


def paug() -> ResolutionAugmentation:
    """PAug: ST-M's 7 / 14 / 28 / 56 px in equal proportions (Table 4)."""
    return ResolutionAugmentation(PAUG_SIZES, (1.0,) * len(PAUG_SIZES))


def single(size: int) -> ResolutionAugmentation:
    """Fig. 3a "Single-x": LR copies at ``size`` px only."""
    return ResolutionAugmentation((size,), (1.0,))


NAMED = {"aug": aug, "maug": maug, "maug_reference": maug_reference, "paug": paug, "single": single}


def resolution_augmentation(spec: str | Mapping[str, Any] | ResolutionAugmentation) -> ResolutionAugmentation:
    """An augmentation from a name (``"maug"``), a mapping ``{"name": "maug", "ratio": [1, 1, 1]}`` /
    ``{"name": "single", "size": 14}`` / ``{"sizes": [...], "weights": [...]}``, or an instance."""
    if isinstance(spec, ResolutionAugmentation):
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping):
        raise TypeError(f"resolution augmentation {spec!r} must be a name, a mapping or a ResolutionAugmentation")
    kwargs = dict(spec)
    name = kwargs.pop("name", None)
    if name is None:
        return ResolutionAugmentation(tuple(kwargs.pop("sizes", ())), tuple(kwargs.pop("weights", ())), **kwargs)
    if name not in NAMED:
        raise ValueError(f"unknown resolution augmentation {name!r}; expected one of {sorted(NAMED)} "
                         "or a mapping with 'sizes' and 'weights'")
    try:
        return NAMED[name](**kwargs)
    except TypeError as error:
        raise ValueError(f"resolution augmentation {name!r}: {error}") from None


def lr_pairs_kwargs(spec: str | Mapping[str, Any] | ResolutionAugmentation) -> dict[str, list]:
    """``lr_sizes`` and ``weights`` of the augmentation ``spec`` for :class:`lrfr.data.lr_pairs.LRPairs`
    (and the ``lr_pairs`` dataset factory), so a config records the sizes and ratio it trained with."""
    augmentation = resolution_augmentation(spec)
    return {"lr_sizes": list(augmentation.sizes), "weights": list(augmentation.weights)}
