"""MobileFaceNet (Chen et al., CCBR 2018) as insightface ``arcface_torch`` builds it (``get_mbf``).

Inverted-residual ``DepthWise`` blocks on 64*scale / 128*scale channels, a 1x1 ``conv_sep`` to 512
channels (the feature map) and the global depthwise convolution (GDC) head.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

from torch import Tensor, nn

from lrfr.models.base import BACKBONES, Backbone, Size, conv_bn, kaiming_init

FEATURE_CHANNELS = 512


class DepthWise(nn.Module):
    """1x1 expand to ``groups`` channels -> 3x3 depthwise (stride) -> linear 1x1 projection."""

    def __init__(self, in_channels: int, out_channels: int, groups: int, stride: int, residual: bool) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            conv_bn(in_channels, groups, 1, activation=nn.PReLU(groups)),
            conv_bn(groups, groups, 3, stride=stride, groups=groups, activation=nn.PReLU(groups)),
            conv_bn(groups, out_channels, 1),
        )
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        return x + self.layers(x) if self.residual else self.layers(x)


def depthwise_stage(channels: int, blocks: int, groups: int) -> nn.Sequential:
    """insightface's ``Residual``: ``blocks`` stride-1 DepthWise blocks with identity shortcuts."""
    return nn.Sequential(*(DepthWise(channels, channels, groups, 1, residual=True) for _ in range(blocks)))


class GDCHead(nn.Sequential):
    """Global depthwise conv (kernel = whole map, conv + BN) -> flatten -> Linear (no bias) -> BN1d."""

    def __init__(self, channels: int, map_size: Size, embedding_size: int) -> None:
        super().__init__(
            conv_bn(channels, channels, map_size, padding=0, groups=channels),
            nn.Flatten(),
            nn.Linear(channels, embedding_size, bias=False),
            nn.BatchNorm1d(embedding_size),
        )


@BACKBONES.register("mobilefacenet")
class MobileFaceNet(Backbone):
    """insightface's MobileFaceNet; ``blocks`` and ``scale`` as in ``get_mbf``.

    2.06M parameters at 112x112 with the defaults; ``scale=1, embedding_size=128`` is the paper's
    0.99M-parameter model.
    """

    def __init__(
        self,
        *,
        input_size: int | Size = 112,
        embedding_size: int = 512,
        blocks: Sequence[int] = (1, 4, 6, 2),
        scale: int = 2,
    ) -> None:
        if len(blocks) != 4 or min(blocks) < 1 or scale < 1:
            raise ValueError(f"need four positive block counts and scale >= 1, got {tuple(blocks)}, {scale}")
        narrow, wide = 64 * scale, 128 * scale
        body = nn.Sequential(
            OrderedDict(
                stem=conv_bn(3, narrow, 3, stride=2, activation=nn.PReLU(narrow)),
                stage1=self._first_stage(narrow, blocks[0]),
                down2=DepthWise(narrow, narrow, 128, 2, residual=False),
                stage2=depthwise_stage(narrow, blocks[1], groups=128),
                down3=DepthWise(narrow, wide, 256, 2, residual=False),
                stage3=depthwise_stage(wide, blocks[2], groups=256),
                down4=DepthWise(wide, wide, 512, 2, residual=False),
                stage4=depthwise_stage(wide, blocks[3], groups=256),
                conv_sep=conv_bn(wide, FEATURE_CHANNELS, 1, activation=nn.PReLU(FEATURE_CHANNELS)),
            )
        )
        super().__init__(body, GDCHead, input_size=input_size, embedding_size=embedding_size, total_stride=16)
        kaiming_init(self)

    @staticmethod
    def _first_stage(channels: int, blocks: int) -> nn.Module:
        """One grouped 3x3 ConvBlock (groups=64 whatever the width, as insightface) or a residual stage."""
        if blocks == 1:
            return conv_bn(channels, channels, 3, groups=64, activation=nn.PReLU(channels))
        return depthwise_stage(channels, blocks, groups=128)
