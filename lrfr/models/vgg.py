"""VGG-style backbone for the VggFace baseline (Parkhi, Vedaldi & Zisserman, BMVC 2015; Cheng Table 3).

VGG-Face (Sec. 4.3, Table 3) is VGG-16 (Simonyan & Zisserman 2015, configuration D): five stages of
3x3 convolutions (64, 128, 256, 512, 512 filters; 2, 2, 3, 3, 3 layers) with ReLU, each followed by
2x2 max-pooling, then fc6 and fc7 (4096, ReLU, dropout 0.5) and the classifier fc8; the face
descriptor is fc7. Trained as an N-way classifier (softmax), then fine-tuned with a triplet loss on an
embedding projection of fc7 (Sec. 4.1).

Here ``widths`` and ``fc_size`` scale the network down for the CPU quick mode (the default is VGG-16's),
the descriptor is the ``embedding_size`` output of a linear layer after fc6 (standing in for fc7 /
the triplet projection), and the network is trained with the softmax stage only: an approximation of
VggFace, documented where the book uses it.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from lrfr.models.base import BACKBONES, Backbone, Size, kaiming_init

VGG16_WIDTHS = (64, 128, 256, 512, 512)
VGG16_LAYERS = (2, 2, 3, 3, 3)


def vgg_head(channels: int, map_size: Size, embedding_size: int, fc_size: int, dropout: float) -> nn.Sequential:
    """flatten -> fc6 (ReLU, dropout) -> linear to the embedding."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(channels * map_size[0] * map_size[1], fc_size),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(fc_size, embedding_size),
    )


@BACKBONES.register("vgg")
class VGG(Backbone):
    """VGG stages (``layers[i]`` 3x3 convs of ``widths[i]`` filters + 2x2 max-pool) and the fc head."""

    def __init__(
        self,
        *,
        input_size: int | Size = 112,
        embedding_size: int = 512,
        widths: Sequence[int] = VGG16_WIDTHS,
        layers: Sequence[int] = VGG16_LAYERS,
        fc_size: int = 4096,
        dropout: float = 0.5,
    ) -> None:
        if len(widths) != len(layers) or min(layers, default=0) < 1:
            raise ValueError(f"need one positive layer count per width {tuple(widths)}, got {tuple(layers)}")
        body: list[nn.Module] = []
        channels = 3
        for width, count in zip(widths, layers):
            for _ in range(count):
                body += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
                channels = width
            body.append(nn.MaxPool2d(2))
        super().__init__(
            nn.Sequential(*body),
            lambda c, size, d: vgg_head(c, size, d, fc_size, dropout),
            input_size=input_size,
            embedding_size=embedding_size,
            total_stride=2 ** len(widths),
        )
        kaiming_init(self)
