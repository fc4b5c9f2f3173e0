"""Classification heads / losses for face recognition, built by name from :data:`HEADS`.

Registered: ``softmax``, ``normface``, ``cosface``, ``arcface``, ``curricularface``, ``mv_softmax``,
``magface``, ``adaface``, ``centerface``.
"""

from __future__ import annotations

from typing import Any

from lrfr.losses.adaptive_heads import AdaFace, MagFace
from lrfr.losses.base import (
    HEADS,
    ClassificationHead,
    CosineMarginHead,
    HardNegativeHead,
    HeadOutput,
    additive_angular_cosine,
)
from lrfr.losses.center_loss import CenterFace
from lrfr.losses.margin_heads import ArcFace, CosFace, CurricularFace, MVSoftmax, NormFace, SoftmaxHead
from lrfr.losses.recognizability_index import (
    RecognizabilityTerms,
    attention_mse,
    index_diversion_loss,
    project_away_from_ui,
    recognizability_index,
    ri_regression_loss,
    ui_ri_statistics,
)


def build_head(name: str, **kwargs: Any) -> ClassificationHead:
    """Build the head registered as ``name`` (e.g. ``embedding_size=512, num_classes=10572``)."""
    return HEADS.build(name, **kwargs)


__all__ = [
    "HEADS",
    "AdaFace",
    "ArcFace",
    "CenterFace",
    "ClassificationHead",
    "CosFace",
    "CosineMarginHead",
    "CurricularFace",
    "HardNegativeHead",
    "HeadOutput",
    "MVSoftmax",
    "MagFace",
    "NormFace",
    "RecognizabilityTerms",
    "SoftmaxHead",
    "additive_angular_cosine",
    "attention_mse",
    "build_head",
    "index_diversion_loss",
    "project_away_from_ui",
    "recognizability_index",
    "ri_regression_loss",
    "ui_ri_statistics",
]
