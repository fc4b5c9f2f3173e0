"""SRCNN (Dong, Loy, He & Tang, ECCV 2014), one of Cheng et al.'s SR-then-FR baselines (Table 5).

Sec. 3.1-3.2: on the bicubic-interpolated image, patch extraction ``F1 = max(0, W1 * Y + B1)`` (f1 = 9,
n1 = 64), non-linear mapping ``F2 = max(0, W2 * F1 + B2)`` (f2 = 1, n2 = 32) and reconstruction
``F = W3 * F2 + B3`` (f3 = 5); trained with the per-pixel MSE (Eq. 4).

Choices: the convolutions are zero-padded so that the output keeps the input size (the paper's valid
convolutions shrink it by 12 px and score only the centre); the network reads and writes RGB (the
paper's main model works on the Y channel; its Sec. 4.4 shows RGB training). The paper initialises
from N(0, 0.001^2) and trains with SGD at 1e-4 (1e-5 in the last layer) for about 10^8
back-propagations: ``init_std=0.001`` gives that initialisation; the default is He's, which trains in
a CPU budget.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from lrfr.models.base import Size
from lrfr.models.sr.base import SR_NETWORKS, InterpolatedSR, check_positive, he_init


@SR_NETWORKS.register("srcnn")
class SRCNN(InterpolatedSR):
    """Three convolutions 9-1-5 (64, 32 filters) on the interpolated image; no global residual."""

    def __init__(
        self,
        *,
        channels: Sequence[int] = (64, 32),
        kernels: Sequence[int] = (9, 1, 5),
        scale: float = 4.0,
        output_size: int | Size | None = None,
        init_std: float | None = None,
    ) -> None:
        super().__init__(scale, output_size)
        check_positive(channels=channels, kernels=kernels)
        if len(channels) != 2 or len(kernels) != 3 or any(k % 2 == 0 for k in kernels):
            raise ValueError(f"SRCNN takes 2 channel widths and 3 odd kernel sizes, got {channels!r}, {kernels!r}")
        widths = (3, *channels, 3)
        layers: list[nn.Module] = []
        for i, kernel in enumerate(kernels):
            layers.append(nn.Conv2d(widths[i], widths[i + 1], kernel, padding=kernel // 2))
            if i < 2:
                layers.append(nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*layers)
        if init_std is None:
            he_init(self)
        else:
            for conv in self.layers:
                if isinstance(conv, nn.Conv2d):
                    nn.init.normal_(conv.weight, std=init_std)
                    nn.init.zeros_(conv.bias)

    def restore(self, interpolated: Tensor) -> Tensor:
        return self.layers(interpolated)
