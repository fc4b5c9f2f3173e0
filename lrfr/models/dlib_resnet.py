"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``) in torch.

The architecture of dlib's ``examples/dnn_face_recognition_ex.cpp`` (King, 2017; a ResNet-34 variant
with 29 conv layers and half the filters, 150x150 RGB input, 128-d descriptor, trained with dlib's
metric loss on about 3 million faces):

- stem: conv 7x7/2 (32 filters, no padding) -> affine -> ReLU -> max-pool 3x3/2 (no padding);
- five levels of residual blocks ``relu(block(x) + shortcut(x))`` with ``block`` = conv 3x3 (stride)
  -> affine -> ReLU -> conv 3x3 -> affine; 32 channels x 3 blocks, then 64 x 4, 128 x 3, 256 x 3 and
  256 x 1, the first block of each of the last four downsampling;
- a downsampling block convolves with stride 2 *without padding* and its shortcut is a 2x2/2 average
  pool of ``x``. dlib's ``add_prev`` adds tensors of different shapes by zero-padding both to the
  larger one (channels and the bottom/right border): the pooled shortcut has the old channel count,
  and where the sizes differ (8x8 -> 3x3 block vs 4x4 pool) the sum takes the larger map;
- head: mean over the last (2x2 at 150 px) map, then a 256 -> 128 linear layer without bias.

dlib stores its trained batch norms folded into ``affine`` layers (``y = gamma x + beta``). Here each is
a ``BatchNorm2d`` with dlib's epsilon whose running statistics make eval mode that same affine map, so
the port reproduces dlib in eval mode and normalises batches as dlib's training did when fine-tuned.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lrfr.models.base import BACKBONES, Backbone, Size, as_size, staged_body

#: (channels, blocks, whether the first block downsamples) per level, input to output.
DLIB_LEVELS: tuple[tuple[int, int, bool], ...] = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))
STEM_CHANNELS = 32
DLIB_INPUT_SIZE = 150
DLIB_BN_EPS = 1e-4
"""dlib's ``DEFAULT_BATCH_NORM_EPS``."""
DLIB_MIN_INPUT = 103
"""The smallest side whose last block still sees a 3x3 map (the unpadded stride-2 convs shrink fast)."""


def padded_add(a: Tensor, b: Tensor) -> Tensor:
    """``a + b`` for ``(B, C, H, W)`` tensors of different C/H/W: both zero-padded to the larger size
    at the end of each dimension, as dlib's ``add_prev`` layer adds them."""
    if a.shape == b.shape:
        return a + b
    size = [max(m, n) for m, n in zip(a.shape[1:], b.shape[1:])]

    def pad(x: Tensor) -> Tensor:
        return F.pad(x, (0, size[2] - x.shape[3], 0, size[1] - x.shape[2], 0, size[0] - x.shape[1]))

    return pad(a) + pad(b)


def affine_norm(channels: int) -> nn.BatchNorm2d:
    """A BatchNorm2d that stands for a dlib ``affine``/``bn_con`` layer (dlib's epsilon)."""
    return nn.BatchNorm2d(channels, eps=DLIB_BN_EPS)


def conv(in_channels: int, out_channels: int, kernel_size: int, stride: int) -> nn.Conv2d:
    """dlib's ``con`` default padding: ``kernel // 2`` at stride 1, none otherwise; with a bias."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2 if stride == 1 else 0)


class DlibBlock(nn.Module):
    """``relu(block(x) + shortcut(x))``; a downsampling block's shortcut is a 2x2/2 average pool."""

    def __init__(self, in_channels: int, out_channels: int, downsample: bool) -> None:
        super().__init__()
        stride = 2 if downsample else 1
        self.residual = nn.Sequential(
            conv(in_channels, out_channels, 3, stride),
            affine_norm(out_channels),
            nn.ReLU(inplace=True),
            conv(out_channels, out_channels, 3, 1),
            affine_norm(out_channels),
        )
        self.shortcut = nn.AvgPool2d(2, 2) if downsample else nn.Identity()
        if not downsample and in_channels != out_channels:
            raise ValueError(f"a block without downsampling keeps its channels, got {in_channels} -> {out_channels}")

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(padded_add(self.residual(x), self.shortcut(x)))


class MeanLinearHead(nn.Sequential):
    """dlib's ``avg_pool_everything`` then ``fc_no_bias``: spatial mean -> Linear without bias."""

    def __init__(self, channels: int, map_size: Size, embedding_size: int) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, embedding_size, bias=False))


@BACKBONES.register("dlib_resnet")
class DlibResNet(Backbone):
    """dlib's face-recognition ResNet; untrained here: load dlib's weights with
    :func:`lrfr.models.pretrained.dlib.load_dlib_resnet`. Takes dlib's input scaling
    ``(pixel - mean_rgb) / 256`` on RGB ``(B, 3, 150, 150)``."""

    def __init__(self, *, input_size: int | Size = DLIB_INPUT_SIZE, embedding_size: int = 128) -> None:
        if min(as_size(input_size)) < DLIB_MIN_INPUT:
            raise ValueError(f"input_size={input_size} is too small for the dlib ResNet: both sides must be >= {DLIB_MIN_INPUT}")
        stem = nn.Sequential(
            conv(3, STEM_CHANNELS, 7, 2), affine_norm(STEM_CHANNELS), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2)
        )
        levels, channels = [], STEM_CHANNELS
        for width, blocks, downsample in DLIB_LEVELS:
            levels.append(nn.Sequential(*(DlibBlock(channels if i == 0 else width, width, downsample and i == 0) for i in range(blocks))))
            channels = width
        super().__init__(
            staged_body(stem, levels),
            MeanLinearHead,
            input_size=input_size,
            embedding_size=embedding_size,
            total_stride=2 ** (2 + sum(downsample for *_, downsample in DLIB_LEVELS)),
        )


@torch.no_grad()
def set_affine(norm: nn.BatchNorm2d, gamma: Tensor, beta: Tensor) -> None:
    """Make ``norm`` compute ``gamma * x + beta`` in eval mode (running mean 0, variance 1 - eps)."""
    norm.weight.copy_(gamma)
    norm.bias.copy_(beta)
    norm.running_mean.zero_()
    norm.running_var.fill_(1.0 - norm.eps)
