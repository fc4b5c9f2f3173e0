"""DeepID2-style backbone (Sun, Chen, Wang & Tang, NIPS 2014), a generic FR baseline of Cheng et al. Table 3.

Sec. 2 / Fig. 1: four convolutional layers (20 filters 4x4, 40 3x3, 60 3x3, 80 2x2), max-pooling 2x2
after the first three, ReLU throughout, and the 160-d DeepID2 layer fully connected to *both* the third
pooling layer and the fourth convolution (multi-scale features), with ReLU. Input 55x47 in the paper.

Approximations, because this backbone reads one aligned face at the book's input size: the fourth layer
is an ordinary (weight-shared) convolution where the paper's is locally connected; the paper's 200
patch-specific networks and their PCA / Joint Bayesian combination are not built. Here the "last
feature map" (for Grad-CAM and the recognizability modules) is the third pooling layer; the head holds
the fourth convolution and the multi-scale DeepID2 layer. Its identification + verification loss is the
``deepid2`` head (:mod:`lrfr.losses.deepid2`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lrfr.models.base import BACKBONES, Backbone, Size, kaiming_init


class MultiScaleHead(nn.Module):
    """conv4 (2x2) + ReLU on the pooled conv3 map; the embedding = ReLU(FC([pool3, conv4]))."""

    def __init__(self, channels: int, map_size: Size, embedding_size: int, conv4_channels: int) -> None:
        super().__init__()
        self.conv4 = nn.Sequential(nn.Conv2d(channels, conv4_channels, 2), nn.ReLU(inplace=True))
        conv4_size = (map_size[0] - 1) * (map_size[1] - 1)
        self.fc = nn.Linear(channels * map_size[0] * map_size[1] + conv4_channels * conv4_size, embedding_size)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, pool3: Tensor) -> Tensor:
        features = torch.cat([pool3.flatten(1), self.conv4(pool3).flatten(1)], dim=1)
        return self.activation(self.fc(features))


@BACKBONES.register("deepid2")
class DeepID2(Backbone):
    """DeepID2's ConvNet on one face: conv-pool x3 (``widths[:3]``), then the multi-scale 160-d head."""

    def __init__(
        self,
        *,
        input_size: int | Size = 64,
        embedding_size: int = 160,
        widths: Sequence[int] = (20, 40, 60, 80),
        kernels: Sequence[int] = (4, 3, 3),
    ) -> None:
        if len(widths) != 4 or len(kernels) != 3:
            raise ValueError(f"DeepID2 takes 4 widths and 3 kernel sizes, got {tuple(widths)}, {tuple(kernels)}")
        layers: list[nn.Module] = []
        channels = 3
        for width, kernel in zip(widths[:3], kernels):
            layers += [nn.Conv2d(channels, width, kernel), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            channels = width
        conv4 = widths[3]
        super().__init__(
            nn.Sequential(*layers),
            lambda c, size, d: MultiScaleHead(c, size, d, conv4),
            input_size=input_size,
            embedding_size=embedding_size,
            total_stride=32,  # valid convolutions: the smallest input that leaves conv4 a 1x1 map
        )
        kaiming_init(self)
