"""Face-recognition backbones, built by name: ``build_backbone("iresnet50", input_size=32)``."""

from __future__ import annotations

from typing import Any

from lrfr.models import (  # noqa: F401  (registers the backbones)
    adaface_ir, deepid2, dlib_resnet, iresnet, mobilefacenet, quick, resnet, tail, vgg,
)
from lrfr.models.base import BACKBONES, Backbone, BackboneOutput
from lrfr.models.perceptibility import AttentionOutput, PerceptibilityAttention, PerceptibilityRegression


def image_backbones() -> list[str]:
    """The registered backbones that read images: all but ``"tail"`` (:mod:`lrfr.models.tail`, which reads
    the feature maps of a frozen backbone prefix)."""
    return [name for name in BACKBONES.names() if name != "tail"]


def build_backbone(name: str, **kwargs: Any) -> Backbone:
    """The backbone registered as ``name`` (see ``BACKBONES.names()``), with keyword overrides."""
    return BACKBONES.build(name, **kwargs)


__all__ = [
    "BACKBONES", "AttentionOutput", "Backbone", "BackboneOutput", "PerceptibilityAttention",
    "PerceptibilityRegression", "build_backbone", "image_backbones",
]
