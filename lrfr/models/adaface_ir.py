"""AdaFace's IR backbones (Kim et al., AdaFace, CVPR 2022; ``mk-minchul/AdaFace`` ``net.py``) as their own variant.

The same improved residual network as insightface's IResNet (:mod:`lrfr.models.iresnet`: BN-conv-BN-
PReLU-conv(stride)-BN blocks, four stride-2 stages, BN2d -> Dropout -> Linear -> BN1d head), with the
two differences that make its checkpoints incompatible with an IResNet:

- a block whose input and output widths are equal takes ``MaxPool2d(1, stride)`` as its shortcut
  (plain subsampling; the identity at stride 1), where IResNet has a 1x1 conv + BN whenever a block
  strides: the first block of the first stage (64 -> 64, stride 2) has no shortcut parameters;
- the output ``BatchNorm1d`` has no affine parameters (``affine=False``).

Dropout before the linear layer is 0.4 and conv/linear weights are He-normal (fan_out), as in
AdaFace's ``Backbone``. AdaFace checkpoints expect **BGR** input in (x - 0.5) / 0.5; that belongs to
the model's input spec (:mod:`lrfr.models.pretrained`), not to the network.
"""

from __future__ import annotations

from functools import partial

from torch import nn

from lrfr.models.base import BACKBONES, Size, conv_bn, kaiming_init
from lrfr.models.iresnet import IRESNET_LAYERS, IResNet

ADAFACE_LAYERS: dict[str, tuple[int, int, int, int]] = {
    "adaface_ir18": IRESNET_LAYERS["iresnet18"],
    "adaface_ir34": IRESNET_LAYERS["iresnet34"],
    "adaface_ir50": IRESNET_LAYERS["iresnet50"],
    "adaface_ir101": IRESNET_LAYERS["iresnet100"],  # AdaFace's IR_101 is built with num_layers=100
}


def pooled_shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """AdaFace's shortcut: ``MaxPool2d(1, stride)`` where widths are equal, else 1x1 conv(stride) + BN."""
    if in_channels == out_channels:
        return nn.MaxPool2d(1, stride) if stride > 1 else nn.Identity()
    return conv_bn(in_channels, out_channels, 1, stride=stride)


class AdaFaceIR(IResNet):
    """AdaFace's IR-18/34/50/101: ``layers`` blocks per stage of widths 64, 128, 256, 512."""

    def __init__(
        self, layers: tuple[int, int, int, int], *, input_size: int | Size = 112, embedding_size: int = 512,
        dropout: float = 0.4,
    ) -> None:
        super().__init__(
            layers, input_size=input_size, embedding_size=embedding_size, dropout=dropout,
            shortcut_factory=pooled_shortcut, affine_output=False,
        )
        kaiming_init(self)


for _name, _layers in ADAFACE_LAYERS.items():
    BACKBONES.register(_name)(partial(AdaFaceIR, _layers))
