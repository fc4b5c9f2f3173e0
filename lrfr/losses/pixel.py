"""Pixel losses of super-resolution: MSE (SRCNN Eq. 4, VDSR Sec. 3.2, CSRI Eq. 1) and L1 (EDSR Sec. 4).

``reduction="mean"`` averages over every element (the usual SR training loss, independent of the image
size); ``reduction="sum"`` sums over the pixels of each image and averages over the batch: CSRI's
``L_sr = ||I^asr - I^ahr||_2^2`` (Eq. 1) as printed, whose weight ``lambda_sr = 0.003`` is set against
that per-image sum (Caffe's Euclidean loss, which the paper's models were trained with, also sums per
image; it halves the sum, which the weight absorbs).
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor

PIXEL_LOSSES = ("mse", "l1")
REDUCTIONS = ("mean", "sum")


def pixel_loss(
    restored: Tensor, target: Tensor, kind: Literal["mse", "l1"] = "mse", reduction: Literal["mean", "sum"] = "mean"
) -> Tensor:
    """Squared (``"mse"``) or absolute (``"l1"``) pixel error of ``restored`` against ``target`` (B, C, H, W)."""
    if kind not in PIXEL_LOSSES or reduction not in REDUCTIONS:
        raise ValueError(f"pixel loss must be one of {PIXEL_LOSSES} with a reduction in {REDUCTIONS}, "
                         f"got {kind!r}, {reduction!r}")
    if restored.shape != target.shape:
        raise ValueError(f"restored images have shape {tuple(restored.shape)} but the targets {tuple(target.shape)}")
    error = restored.float() - target.float()
    error = error.square() if kind == "mse" else error.abs()
    return error.mean() if reduction == "mean" else error.flatten(1).sum(1).mean()
