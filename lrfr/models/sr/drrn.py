"""DRRN (Tai, Yang & Liu, CVPR 2017), one of Cheng et al.'s SR-then-FR baselines (Table 5).

Sec. 3: on the interpolated LR image ``x``, ``B`` recursive blocks; block b starts with a convolution
``H_0^b = f_b(H^{b-1})`` and then applies one residual unit ``U`` times with **shared weights**,
multi-path local residual learning ``H_u^b = F(H_{u-1}^b, W_b) + H_0^b`` (Eq. 6); each unit is two
pre-activation convolutions (BN -> ReLU -> 3x3 conv, Fig. 5). A final pre-activation convolution
reconstructs the residual image, added to ``x`` (global residual learning, Eq. 7). DRRN_B1U25 (52
layers, 128 filters) is the paper's model: depth = (1 + 2U) B + 1.

Choice: the two convolutions of the residual unit are shared across the U recursions, as the paper
says ("the corresponding convolutional layers in the residual units ... share the same weights"); the
batch-norm layers are not shared (one per recursion), since their running statistics differ from one
recursion to the next. ``batch_norm=False`` leaves them out (pre-activation is then ReLU -> conv).
"""

from __future__ import annotations

from torch import Tensor, nn

from lrfr.models.base import Size
from lrfr.models.sr.base import SR_NETWORKS, InterpolatedSR, check_positive, conv3x3, he_init


def pre_activation(channels: int, batch_norm: bool) -> nn.Sequential:
    """BN (optional) -> ReLU, the pre-activation before each of DRRN's convolutions."""
    return nn.Sequential(*([nn.BatchNorm2d(channels)] if batch_norm else []), nn.ReLU(inplace=True))


class RecursiveBlock(nn.Module):
    """``H_0 = conv(act(input))``, then ``H_u = conv2(act(conv1(act(H_{u-1})))) + H_0`` for u = 1..U,
    conv1 and conv2 shared by every u (Eq. 6)."""

    def __init__(self, in_channels: int, channels: int, units: int, batch_norm: bool, first: bool) -> None:
        super().__init__()
        self.entry_activation = nn.Identity() if first else pre_activation(in_channels, batch_norm)
        self.entry = conv3x3(in_channels, channels)
        self.conv1, self.conv2 = conv3x3(channels, channels), conv3x3(channels, channels)
        self.activations1 = nn.ModuleList(pre_activation(channels, batch_norm) for _ in range(units))
        self.activations2 = nn.ModuleList(pre_activation(channels, batch_norm) for _ in range(units))

    def forward(self, x: Tensor) -> Tensor:
        h0 = self.entry(self.entry_activation(x))
        h = h0
        for first, second in zip(self.activations1, self.activations2):
            h = self.conv2(second(self.conv1(first(h)))) + h0
        return h


@SR_NETWORKS.register("drrn")
class DRRN(InterpolatedSR):
    """``x + reconstruct(blocks(x))`` with ``blocks`` recursive blocks of ``units`` shared residual units."""

    def __init__(
        self,
        *,
        blocks: int = 1,
        units: int = 25,
        channels: int = 128,
        batch_norm: bool = True,
        scale: float = 4.0,
        output_size: int | Size | None = None,
    ) -> None:
        super().__init__(scale, output_size)
        check_positive(blocks=blocks, units=units, channels=channels)
        self.blocks = nn.Sequential(*(
            RecursiveBlock(3 if b == 0 else channels, channels, units, batch_norm, first=b == 0) for b in range(blocks)
        ))
        self.reconstruction = nn.Sequential(pre_activation(channels, batch_norm), conv3x3(channels, 3))
        he_init(self)

    @property
    def depth(self) -> int:
        """Convolution layers on the longest path: (1 + 2U) B + 1."""
        block = self.blocks[0]
        return (1 + 2 * len(block.activations1)) * len(self.blocks) + 1

    def restore(self, interpolated: Tensor) -> Tensor:
        return interpolated + self.reconstruction(self.blocks(interpolated))
