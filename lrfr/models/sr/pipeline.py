"""SR-then-FR: a recognition backbone reading the output of an SR network.

Cheng et al. 2018 (Fig. 5b, Sec. 5.2) super-resolve each face and recognise the result; CSRI deploys
its native-LR branch the same way (Sec. 3, "Model Training and Deployment"). :class:`SRThenFR` is that
composition with the backbone's interface (``input_size``, ``embedding_size``, ``forward(images,
return_feature_map)``), so the protocols embed with it as with a backbone. The SR network is asked for
the backbone's input size, whatever the size of the LR face it is given.
"""

from __future__ import annotations

from torch import Tensor, nn

from lrfr.models.base import BackboneOutput
from lrfr.models.sr.base import InterpolatedSR, SRNetwork


class SRThenFR(nn.Module):
    """``backbone(sr(images))``; ``super_resolve(images)`` alone gives the SR faces."""

    def __init__(self, sr: SRNetwork, backbone: nn.Module) -> None:
        super().__init__()
        self.sr, self.backbone = sr, backbone

    @property
    def input_size(self) -> tuple[int, int]:
        return self.backbone.input_size

    @property
    def embedding_size(self) -> int:
        return self.backbone.embedding_size

    def super_resolve(self, images: Tensor) -> Tensor:
        """The SR faces at the backbone's input size."""
        if isinstance(self.sr, InterpolatedSR):
            return self.sr(images, size=self.backbone.input_size)
        restored = self.sr(images)
        if tuple(restored.shape[-2:]) != tuple(self.backbone.input_size):
            raise ValueError(
                f"{type(self.sr).__name__} turns {tuple(images.shape[-2:])} faces into {tuple(restored.shape[-2:])}, "
                f"but the backbone reads {tuple(self.backbone.input_size)}: give it LR faces of "
                f"1/{self.sr.scale} of that size"
            )
        return restored

    def forward(self, images: Tensor, return_feature_map: bool = False) -> Tensor | BackboneOutput:
        return self.backbone(self.super_resolve(images), return_feature_map=return_feature_map)
