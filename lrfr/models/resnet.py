"""ResNet-34 (He et al., CVPR 2016) with a face head, the backbone of Ling et al. (AAAI 2023).

The standard ImageNet layout (conv7x7/2 + max-pool, BasicBlock stages [3, 4, 6, 3]) followed by the
flatten head BN2d -> Dropout(0.4) -> Linear -> BN1d; total stride 32, so a 4x4 map at 112x112.
"""

from __future__ import annotations

from functools import partial

from torch import Tensor, nn

from lrfr.models.base import (
    BACKBONES, Backbone, FlattenHead, Size, conv_bn, kaiming_init, residual_stage, shortcut, staged_body,
)

RESNET34_LAYERS = (3, 4, 6, 3)
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


@BACKBONES.register("resnet34")
class ResNet34(Backbone):
    """ResNet-34 face backbone; Kaiming-normal (fan_out) init of convs (as torchvision) and the linear."""

    def __init__(
        self, *, input_size: int | Size = 112, embedding_size: int = 512, dropout: float = 0.4
    ) -> None:
        stem = nn.Sequential(
            conv_bn(3, RESNET_WIDTHS[0], 7, stride=2, activation=nn.ReLU(inplace=True)),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        channels = (RESNET_WIDTHS[0], *RESNET_WIDTHS)
        strides = (1, 2, 2, 2)
        stages = (
            residual_stage(BasicBlock, c_in, c_out, n, s)
            for c_in, c_out, n, s in zip(channels, channels[1:], RESNET34_LAYERS, strides)
        )
        super().__init__(
            staged_body(stem, stages),
            partial(FlattenHead, dropout=dropout),
            input_size=input_size,
            embedding_size=embedding_size,
            total_stride=32,
        )
        kaiming_init(self)
