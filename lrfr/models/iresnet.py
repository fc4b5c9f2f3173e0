"""IResNet (Deng et al., ArcFace, CVPR 2019; insightface ``arcface_torch/backbones/iresnet.py``).

A ResNet for 112x112 faces: a stride-1 conv3x3 stem (no max-pool), four stride-2 stages of
``IBasicBlock`` (BN-conv-BN-PReLU-conv-BN, no activation after the sum) and the flatten head
BN2d -> Dropout -> Linear -> BN1d (affine weight fixed to 1).
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

from torch import Tensor, nn

from lrfr.models.base import (
    BACKBONES, Backbone, FlattenHead, Size, conv_bn, residual_stage, shortcut, staged_body,
)

IRESNET_LAYERS: dict[str, tuple[int, int, int, int]] = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
}
"""IBasicBlocks per stage for each insightface depth."""


ShortcutFactory = Callable[[int, int, int], nn.Module]
"""``(in_channels, out_channels, stride) -> shortcut`` of a residual block."""


class IBasicBlock(nn.Module):
    """insightface's improved basic block; the second conv carries the stride."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, shortcut_factory: ShortcutFactory = shortcut
    ) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            conv_bn(in_channels, out_channels, 3, activation=nn.PReLU(out_channels)),
            conv_bn(out_channels, out_channels, 3, stride=stride),
        )
        self.shortcut = shortcut_factory(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.residual(x) + self.shortcut(x)


class IResNet(Backbone):
    """IResNet with ``layers[i]`` blocks of width ``widths[i]`` per stage.

    The defaults are insightface's; ``stem_channels``/``stem_stride`` exist for the CPU miniature
    (``lrfr.models.quick``), ``shortcut_factory``/``affine_output`` for AdaFace's variant
    (``lrfr.models.adaface_ir``). With insightface's N(0, 0.1) conv init, an untrained deep IResNet
    (r100) overflows in eval mode until its BatchNorm running statistics have been estimated.
    """

    def __init__(
        self,
        layers: Sequence[int],
        *,
        input_size: int | Size = 112,
        embedding_size: int = 512,
        dropout: float = 0.0,
        widths: Sequence[int] = (64, 128, 256, 512),
        stem_channels: int = 64,
        stem_stride: int = 1,
        shortcut_factory: ShortcutFactory = shortcut,
        affine_output: bool = True,
    ) -> None:
        if len(layers) != len(widths) or min(layers, default=0) < 1:
            raise ValueError(f"need one positive block count per width {tuple(widths)}, got {tuple(layers)}")
        channels = (stem_channels, *widths)
        stem = conv_bn(3, stem_channels, 3, stride=stem_stride, activation=nn.PReLU(stem_channels))
        stages = (
            residual_stage(partial(IBasicBlock, shortcut_factory=shortcut_factory), c_in, c_out, n, stride=2)
            for c_in, c_out, n in zip(channels, channels[1:], layers)
        )
        super().__init__(
            staged_body(stem, stages),
            partial(FlattenHead, dropout=dropout, freeze_output_scale=True, affine_output=affine_output),
            input_size=input_size,
            embedding_size=embedding_size,
            total_stride=stem_stride * 2 ** len(layers),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        """insightface's init: conv weights N(0, 0.1); BatchNorm weight 1, bias 0 (PyTorch default)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.1)


for _name, _layers in IRESNET_LAYERS.items():
    BACKBONES.register(_name)(partial(IResNet, _layers))
