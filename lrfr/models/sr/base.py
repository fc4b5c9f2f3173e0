"""The super-resolution interface: LR faces ``(B, 3, h, w)`` in [-1, 1] -> SR faces ``(B, 3, H, W)``.

Two families, as the SR literature splits them:

* **pre-upsampling** (:class:`InterpolatedSR`: SRCNN, VDSR, DRRN) first bicubic-upsamples the LR
  image to the output size (the "interpolated LR", ILR) and then restores detail at that size. The
  upsampling is :func:`lrfr.data.degrade.resize`, the library's one bicubic resizer, so one network
  serves any scale factor (VDSR Sec. 3.3 trains a single network for several). An input already at the
  output size (a dataset that resized it to the recognition model's input) is restored as is.
* **post-upsampling** (:class:`~lrfr.models.sr.edsr.EDSR`) works at the LR size and upsamples with
  learned sub-pixel convolutions at the end: a fixed factor per network.

Outputs are not clipped to [-1, 1]: the pixel loss and the recognition model see the network's own
values (clip for display).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from lrfr.data.degrade import resize
from lrfr.models.base import Size, as_size
from lrfr.registry import Registry


class SRNetwork(nn.Module):
    """Base of every SR network; ``scale`` is the default magnification (output / input side)."""

    scale: float

    def output_size(self, input_size: Size) -> Size:
        """The ``(H, W)`` this network produces from an ``(h, w)`` input."""
        raise NotImplementedError

    @staticmethod
    def _check(images: Tensor) -> None:
        if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3:
            got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(f"expected LR images of shape (B, 3, h, w), got {got}")


class InterpolatedSR(SRNetwork):
    """A pre-upsampling SR network: bicubic upsampling to the output size, then :meth:`restore`.

    The output size is ``size`` if given to :meth:`forward`, else ``output_size`` fixed at
    construction (e.g. the recognition model's input, for LR faces of any size), else ``scale`` times
    the input (rounded). ``scale`` may be any real factor >= 1.
    """

    def __init__(self, scale: float = 4.0, output_size: int | Size | None = None) -> None:
        super().__init__()
        if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not scale >= 1:
            raise ValueError(f"scale must be a number >= 1, got {scale!r}")
        self.scale = float(scale)
        self.fixed_size = as_size(output_size) if output_size is not None else None

    def output_size(self, input_size: Size) -> Size:
        if self.fixed_size is not None:
            return self.fixed_size
        return tuple(max(1, round(side * self.scale)) for side in input_size)  # type: ignore[return-value]

    def forward(self, images: Tensor, size: int | Size | None = None) -> Tensor:
        self._check(images)
        target = as_size(size) if size is not None else self.output_size(tuple(images.shape[-2:]))
        return self.restore(resize(images, target))

    def restore(self, interpolated: Tensor) -> Tensor:
        """The SR image from the bicubic-upsampled input (same size)."""
        raise NotImplementedError


def conv3x3(in_channels: int, out_channels: int, bias: bool = True) -> nn.Conv2d:
    """3x3 convolution with zero padding 1 (the SR networks keep the spatial size)."""
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)


def he_init(module: nn.Module) -> None:
    """He-normal (fan_in, ReLU gain) conv weights with zero biases (He et al. 2015; VDSR Sec. 4.1)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def check_positive(**values: int | Sequence[int]) -> None:
    """ValueError naming the first argument that is not a positive int (or a sequence of them)."""
    for name, value in values.items():
        items = value if isinstance(value, Sequence) else [value]
        if not items or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in items):
            raise ValueError(f"{name} must be a positive int (or a non-empty sequence of them), got {value!r}")


SR_NETWORKS: Registry[SRNetwork] = Registry("super-resolution network")
