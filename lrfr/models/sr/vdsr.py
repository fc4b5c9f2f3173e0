"""VDSR (Kim, Lee & Lee, CVPR 2016): the SR component of CSRI (Cheng et al. 2018, Sec. 3).

Sec. 3.1-3.2: ``d`` = 20 layers of 3x3 convolutions with 64 filters (ReLU after all but the last), zero
padding so every feature map keeps the image size, applied to the interpolated LR image ``x``; the
network predicts the residual ``r = y - x`` and outputs ``x + r`` (global residual learning). Trained
with the MSE ``1/2 ||y - (x + f(x))||^2`` at a high learning rate (0.1, /10 every 20 epochs, momentum 0.9,
weight decay 1e-4) made stable by **adjustable gradient clipping** (Sec. 3.3): each gradient element is
clipped to ``[-theta / gamma, theta / gamma]`` with gamma the current learning rate -- set
``TrainConfig.clip_grad_adjustable = theta`` (:func:`lrfr.training.optim.clip_gradients_adjustable`).
One network serves several scale factors (Sec. 3.3, multi-scale training): the scale only sets the
interpolation.

Choices: RGB in and out (the paper restores the Y channel; the recognition model downstream reads RGB);
He initialisation (Sec. 4.1).
"""

from __future__ import annotations

from torch import Tensor, nn

from lrfr.models.base import Size
from lrfr.models.sr.base import SR_NETWORKS, InterpolatedSR, check_positive, conv3x3, he_init


@SR_NETWORKS.register("vdsr")
class VDSR(InterpolatedSR):
    """``x + f(x)``: ``depth`` 3x3 conv layers (``channels`` wide, ReLU between) on the interpolated ``x``."""

    def __init__(
        self, *, depth: int = 20, channels: int = 64, scale: float = 4.0, output_size: int | Size | None = None
    ) -> None:
        super().__init__(scale, output_size)
        check_positive(depth=depth, channels=channels)
        if depth < 2:
            raise ValueError(f"VDSR needs depth >= 2 (first and last layer), got {depth}")
        layers: list[nn.Module] = [conv3x3(3, channels), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [conv3x3(channels, channels), nn.ReLU(inplace=True)]
        layers.append(conv3x3(channels, 3))
        self.residual = nn.Sequential(*layers)
        he_init(self)

    def restore(self, interpolated: Tensor) -> Tensor:
        return interpolated + self.residual(interpolated)
