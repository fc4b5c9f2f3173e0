"""EDSR-style face super-resolution (Lim, Son, Kim, Nah & Lee, CVPRW 2017), x2 / x4 / x8.

Sec. 3.1-3.2 and Fig. 2-3: a head convolution, ``R`` residual blocks conv -> ReLU -> conv without batch
normalisation, each residual scaled by ``res_scale`` (0.1 in the large EDSR, 1 in the baseline), a
convolution closing the body with a long skip from the head, then the upsampler (x2: conv to 4F
channels + pixel shuffle, repeated for x4 and x8; x3: one 9F + shuffle) and a tail convolution to RGB.
EDSR baseline: R = 16, F = 64; trained with the L1 loss. It works at the LR size and upsamples at the
end, so the factor is fixed per network. The face SR network of Grm et al. (2023) is an EDSR variant
at x2/x4/x8.

Choice: no mean-shift layer (EDSR subtracts the DIV2K RGB mean; lrfr images are already centred in
[-1, 1]).

Option ``bicubic_skip`` (Grm et al. call theirs "a variant of the EDSR" without details): the network
predicts a residual added to the bicubic interpolation of its input (the global residual of VDSR), with
the tail's last convolution zero-initialised, so an untrained network is bicubic interpolation and a short
training (the book's quick mode) can only start from there.
"""

from __future__ import annotations

from torch import Tensor, nn

from lrfr.data.degrade import resize
from lrfr.models.base import Size
from lrfr.models.sr.base import SR_NETWORKS, SRNetwork, check_positive, conv3x3


def upsampler(channels: int, scale: int) -> nn.Sequential:
    """Sub-pixel convolutions (Shi et al. 2016) for ``scale`` = 2^k (k x2 steps) or 3."""
    steps: list[int] = []
    remaining = scale
    while remaining % 2 == 0:
        steps.append(2)
        remaining //= 2
    if remaining == 3 and not steps:
        steps.append(3)
    elif remaining != 1:
        raise ValueError(f"EDSR upsamples by 2, 3, 4, 8, ... (2^k or 3), got scale {scale!r}")
    layers: list[nn.Module] = []
    for factor in steps:
        layers += [conv3x3(channels, channels * factor * factor), nn.PixelShuffle(factor)]
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """``x + res_scale * conv(relu(conv(x)))`` (EDSR Fig. 2c: no batch normalisation)."""

    def __init__(self, channels: int, res_scale: float) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3x3(channels, channels), nn.ReLU(inplace=True), conv3x3(channels, channels))
        self.res_scale = res_scale

    def forward(self, x: Tensor) -> Tensor:
        return x + self.res_scale * self.body(x)


@SR_NETWORKS.register("edsr")
class EDSR(SRNetwork):
    """head -> ``blocks`` residual blocks + conv (long skip) -> upsampler (x ``scale``) -> tail."""

    def __init__(self, *, scale: int = 4, blocks: int = 16, channels: int = 64, res_scale: float = 1.0,
                 bicubic_skip: bool = False) -> None:
        super().__init__()
        check_positive(scale=scale, blocks=blocks, channels=channels)
        self.scale = scale
        self.head = conv3x3(3, channels)
        self.body = nn.Sequential(*(ResidualBlock(channels, res_scale) for _ in range(blocks)), conv3x3(channels, channels))
        self.tail = nn.Sequential(upsampler(channels, scale), conv3x3(channels, 3))
        self.bicubic_skip = bicubic_skip
        if bicubic_skip:
            nn.init.zeros_(self.tail[-1].weight)
            nn.init.zeros_(self.tail[-1].bias)

    def output_size(self, input_size: Size) -> Size:
        return (input_size[0] * self.scale, input_size[1] * self.scale)

    def forward(self, images: Tensor) -> Tensor:
        self._check(images)
        features = self.head(images)
        restored = self.tail(features + self.body(features))
        return resize(images, tuple(restored.shape[-2:])) + restored if self.bicubic_skip else restored
