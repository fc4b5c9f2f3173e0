"""ResNet-34 and ResNet-50 (He et al., CVPR 2016) with a face head, the backbones of Ling et al. (AAAI 2023).

The standard ImageNet layout (conv7x7/2 + max-pool, then BasicBlock stages [3, 4, 6, 3] for ResNet-34 or
Bottleneck stages [3, 4, 6, 3] for ResNet-50) followed by the flatten head BN2d -> Dropout(0.4) -> Linear
-> BN1d; total stride 32, so a 4x4 map at 112x112. (The public code of Ling et al. uses a conv3x3/1 stem
with the max-pool instead, a 7x7 map at 112 px; the paper names the standard ResNet.)
"""

from __future__ import annotations

from functools import partial

from torch import Tensor, nn

from lrfr.models.base import (
    BACKBONES, Backbone, FlattenHead, Size, conv_bn, kaiming_init, residual_stage, shortcut, staged_body,
)

RESNET34_LAYERS = (3, 4, 6, 3)
RESNET50_LAYERS = (3, 4, 6, 3)
RESNET_WIDTHS = (64, 128, 256, 512)


class BasicBlock(nn.Module):
    """conv3x3(stride)-BN-ReLU-conv3x3-BN plus a (projection) shortcut, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            conv_bn(in_channels, out_channels, 3, stride=stride, activation=nn.ReLU(inplace=True)),
            conv_bn(out_channels, out_channels, 3),
        )
        self.shortcut = shortcut(in_channels, out_channels, stride)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.residual(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """conv1x1-BN-ReLU, conv3x3(stride)-BN-ReLU, conv1x1 (x4 width)-BN plus a (projection) shortcut, then
    ReLU; ``out_channels`` is the block's output width (4x its inner width), stride on the 3x3 (ResNet v1.5,
    as torchvision)."""

    expansion = 4

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        inner = out_channels // self.expansion
        self.residual = nn.Sequential(
            conv_bn(in_channels, inner, 1, activation=nn.ReLU(inplace=True)),
            conv_bn(inner, inner, 3, stride=stride, activation=nn.ReLU(inplace=True)),
            conv_bn(inner, out_channels, 1),
        )
        self.shortcut = shortcut(in_channels, out_channels, stride)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.residual(x) + self.shortcut(x))


class ResNet(Backbone):
    """ResNet face backbone (ImageNet stem and stages, face head); Kaiming-normal (fan_out) init of convs
    (as torchvision) and the linear."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: tuple[int, ...],
        *,
        input_size: int | Size = 112,
        embedding_size: int = 512,
        dropout: float = 0.4,
    ) -> None:
        stem = nn.Sequential(
            conv_bn(3, RESNET_WIDTHS[0], 7, stride=2, activation=nn.ReLU(inplace=True)),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        expansion = getattr(block, "expansion", 1)
        channels = (RESNET_WIDTHS[0], *(width * expansion for width in RESNET_WIDTHS))
        strides = (1, 2, 2, 2)
        stages = (
            residual_stage(block, c_in, c_out, n, s)
            for c_in, c_out, n, s in zip(channels, channels[1:], layers, strides)
        )
        super().__init__(
            staged_body(stem, stages),
            partial(FlattenHead, dropout=dropout),
            input_size=input_size,
            embedding_size=embedding_size,
            total_stride=32,
        )
        kaiming_init(self)


@BACKBONES.register("resnet34")
def resnet34(*, input_size: int | Size = 112, embedding_size: int = 512, dropout: float = 0.4) -> ResNet:
    """ResNet-34: BasicBlock stages [3, 4, 6, 3] (Ling et al.'s CASIA-WebFace backbone)."""
    return ResNet(BasicBlock, RESNET34_LAYERS, input_size=input_size, embedding_size=embedding_size, dropout=dropout)


@BACKBONES.register("resnet50")
def resnet50(*, input_size: int | Size = 112, embedding_size: int = 512, dropout: float = 0.4) -> ResNet:
    """ResNet-50: Bottleneck stages [3, 4, 6, 3], 2,048 channels at the end (Ling et al.'s MS1M backbone)."""
    return ResNet(Bottleneck, RESNET50_LAYERS, input_size=input_size, embedding_size=embedding_size, dropout=dropout)
