"""Bicubic resizing and synthetic low resolution: the one resizer of lrfr.

Every resize in the library (a dataset bringing an image to the model input, SynthFace's camera chain
and synthetic LR, the writers' XQLFW-style degradations, an embedder's input spec) goes through
:func:`resize`, so that the same picture is never down-sampled two ways.

The filter is PIL's ``Image.resize(BICUBIC)``: an antialiased bicubic (Keys, a = -0.5; the support
widens with the down-sampling factor), applied as two passes, width first, then height. After each
pass values are clipped to the pixel range (PIL's intermediate image is 8-bit, which clips the
bicubic overshoot), and:

* **uint8 images** (NumPy ``(H, W, 3)`` / ``(N, H, W, 3)``, as stored) are rounded to grey levels
  after each pass, exactly as PIL does (to within one grey level: torch's and PIL's fixed-point
  arithmetic differ); SynthFace's output is written this way;
* **float images** (torch ``(3, H, W)`` / ``(N, 3, H, W)`` in [-1, 1], what lrfr datasets yield) are
  not quantised, only clipped to [-1, 1].

Synthetic LR (Cheng et al. 2018, Sec. 5.1; Ling et al. 2023, Sec. 3.1) is :func:`synthetic_lr`:
bicubic down-sampling to ``size`` px, optionally bicubic up-sampling back. :class:`SyntheticLR` is the
same as a transform of one dataset image (float CHW tensor or uint8 HWC array).

Resizing runs on however many torch threads are set; torch's bicubic kernels round differently with
other thread counts, so code that must give identical bytes everywhere (the SynthFace writers) sets
one thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

Image = TypeVar("Image", np.ndarray, Tensor)
Size = int | tuple[int, int]


def resize(images: Image, size: Size) -> Image:
    """``images`` bicubic-resized to ``size`` (an int for a square, or ``(height, width)``).

    A uint8 NumPy array ``(H, W, 3)`` or ``(N, H, W, 3)`` gives uint8 (rounded as PIL does); a float
    torch tensor ``(C, H, W)`` or ``(N, C, H, W)`` in [-1, 1] gives a float tensor in [-1, 1]. An image
    already at ``size`` is returned as is.
    """
    height, width = _size(size)
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8 or images.ndim not in (3, 4) or images.shape[-1] != 3:
            raise ValueError(f"images have shape {images.shape} and dtype {images.dtype}; "
                             "expected (H, W, 3) or (N, H, W, 3) uint8")
        if images.shape[-3:-1] == (height, width):
            return images
        tensor = torch.from_numpy(np.require(images, requirements=["C", "W"])).movedim(-1, -3).float()
        resized = _two_pass(tensor, height, width, low=0.0, high=255.0, quantise=True)
        return resized.to(torch.uint8).movedim(-3, -1).contiguous().numpy()
    if isinstance(images, Tensor):
        if not images.is_floating_point() or images.ndim not in (3, 4):
            raise ValueError(f"images have shape {tuple(images.shape)} and dtype {images.dtype}; expected a float "
                             "(C, H, W) or (N, C, H, W) tensor in [-1, 1]")
        if tuple(images.shape[-2:]) == (height, width):
            return images
        return _two_pass(images, height, width, low=-1.0, high=1.0, quantise=False)
    raise TypeError(f"images have type {type(images).__name__}; expected a uint8 NumPy array or a float tensor")


def synthetic_lr(images: Image, size: Size, upsample_to: Size | None = None) -> Image:
    """Bicubic down-sampling of ``images`` to ``size`` (synthetic LR); with ``upsample_to``, bicubic
    up-sampling back to that size (the "LR at HR size" of XQLFW and of resolution augmentation).
    Types and shapes as :func:`resize`."""
    small = resize(images, size)
    return small if upsample_to is None else resize(small, upsample_to)


@dataclass(frozen=True)
class SyntheticLR:
    """Transform: one image down to ``size`` px and back up to its own size (or to ``upsample_to``).

    Works on a float ``(C, H, W)`` tensor (what lrfr datasets yield) and on a uint8 ``(H, W, 3)`` array.
    """

    size: Size
    upsample_to: Size | None = None

    def __post_init__(self) -> None:
        _size(self.size)
        if self.upsample_to is not None:
            _size(self.upsample_to)

    def __call__(self, image: Image) -> Image:
        own = tuple(image.shape[-2:]) if isinstance(image, Tensor) else tuple(image.shape[:2])
        return synthetic_lr(image, self.size, own if self.upsample_to is None else self.upsample_to)


def _size(size: Size) -> tuple[int, int]:
    pair = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    if len(pair) != 2 or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 for n in pair):
        raise ValueError(f"size {size!r} is not valid; expected an int >= 1 or a (height, width) pair of them")
    return int(pair[0]), int(pair[1])


def _two_pass(images: Tensor, height: int, width: int, low: float, high: float, quantise: bool) -> Tensor:
    """Width pass, then height pass (antialiased bicubic), each clipped to [low, high] and rounded if ``quantise``."""
    batched = images if images.ndim == 4 else images[None]
    for target in ((batched.shape[-2], width), (height, width)):
        if tuple(batched.shape[-2:]) == target:
            continue
        batched = F.interpolate(batched, size=target, mode="bicubic", antialias=True, align_corners=False)
        if quantise:
            batched = batched.round_()
        batched = batched.clamp_(low, high)
    return batched if images.ndim == 4 else batched[0]
