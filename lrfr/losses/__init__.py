"""Classification heads / losses for face recognition, built by name from :data:`HEADS`.

Registered: ``softmax``, ``normface``, ``cosface``, ``arcface``, ``curricularface``, ``mv_softmax``,
``magface``, ``adaface``, ``centerface``, ``sphereface`` (A-Softmax), ``deepid2`` (softmax + verification).
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
from lrfr.losses.deepid2 import DeepID2Loss, contrastive_verification
from lrfr.losses.feature_distances import (
    FEATURE_DISTANCES,
    logexp_batch_loss,
    logexp_distance,
    logexp_gradient,
    lp_distance,
    smooth_l1_distance,
)
from lrfr.losses.margin_heads import ArcFace, CosFace, CurricularFace, MVSoftmax, NormFace, SoftmaxHead
from lrfr.losses.pixel import pixel_loss
from lrfr.losses.recognizability_index import (
    RecognizabilityTerms,
    attention_mse,
    index_diversion_loss,
    project_away_from_ui,
    recognizability_index,
    ri_regression_loss,
    ui_ri_statistics,
)
from lrfr.losses.sphereface import SphereFace, angular_margin_psi, chebyshev_cosine


def build_head(name: str, **kwargs: Any) -> ClassificationHead:
    """Build the head registered as ``name`` (e.g. ``embedding_size=512, num_classes=10572``)."""
    return HEADS.build(name, **kwargs)


__all__ = [
    "FEATURE_DISTANCES",
    "HEADS",
    "AdaFace",
    "ArcFace",
    "CenterFace",
    "ClassificationHead",
    "CosFace",
    "CosineMarginHead",
    "CurricularFace",
    "DeepID2Loss",
    "HardNegativeHead",
    "HeadOutput",
    "MVSoftmax",
    "MagFace",
    "NormFace",
    "RecognizabilityTerms",
    "SoftmaxHead",
    "SphereFace",
    "additive_angular_cosine",
    "angular_margin_psi",
    "attention_mse",
    "build_head",
    "chebyshev_cosine",
    "contrastive_verification",
    "index_diversion_loss",
    "logexp_batch_loss",
    "logexp_distance",
    "logexp_gradient",
    "lp_distance",
    "pixel_loss",
    "project_away_from_ui",
    "recognizability_index",
    "ri_regression_loss",
    "smooth_l1_distance",
    "ui_ri_statistics",
]
