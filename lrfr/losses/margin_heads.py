"""Fixed-margin heads: Softmax, NormFace, CosFace, ArcFace, CurricularFace and MV-Softmax.

Every cosine head's logits are ``s * psi(theta_y)`` for the target class and ``s * cos(theta_j)``
(possibly re-weighted) for the others, on L2-normalised features and prototypes.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from lrfr.losses.base import (
    HEADS,
    ClassificationHead,
    CosineMarginHead,
    HardNegativeHead,
    additive_angular_cosine,
)


@HEADS.register("softmax")
class SoftmaxHead(ClassificationHead):
    """Plain softmax: a biased ``Linear(embedding_size, num_classes)`` on the raw embedding + cross-entropy."""

    def __init__(self, embedding_size: int, num_classes: int) -> None:
        super().__init__(embedding_size, num_classes)
        self.classifier = nn.Linear(embedding_size, num_classes, bias=True)

    def _compute_logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return self.classifier(embeddings)


@HEADS.register("normface")
class NormFace(CosineMarginHead):
    """NormFace (Wang et al. 2017): logits ``s * cos(theta_j)`` for every class, no margin.

    NormFace learns ``s`` or fixes it above a bound that grows with the number of classes; the
    default ``s = 64`` is the scale shared by the margin heads of Chai et al.'s loss ablation
    (their Table 4), so that this head differs from them only by the margin.
    """

    def __init__(self, embedding_size: int, num_classes: int, scale: float = 64.0) -> None:
        super().__init__(embedding_size, num_classes, scale)

    def target_cosine(self, cos_y: Tensor, norms: Tensor) -> Tensor:
        return cos_y


@HEADS.register("cosface")
class CosFace(CosineMarginHead):
    """CosFace / LMCL (Wang et al. 2018, Eq. 4): target ``s * (cos(theta_y) - m)``; s = 64, m = 0.35."""

    def __init__(self, embedding_size: int, num_classes: int, scale: float = 64.0, margin: float = 0.35) -> None:
        super().__init__(embedding_size, num_classes, scale)
        self.margin = margin

    def target_cosine(self, cos_y: Tensor, norms: Tensor) -> Tensor:
        return cos_y - self.margin


@HEADS.register("arcface")
class ArcFace(CosineMarginHead):
    """ArcFace (Deng et al. 2019, Eq. 3): target ``s * cos(theta_y + m)``; s = 64, m = 0.5.

    The gradient flows through ``cos(theta_y + m)``; past ``theta_y + m > pi`` the target falls back
    to ``cos - m sin m`` (see :func:`additive_angular_cosine`), or with ``easy_margin`` the margin is
    dropped where ``theta_y > pi / 2``.
    """

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        scale: float = 64.0,
        margin: float = 0.5,
        easy_margin: bool = False,
    ) -> None:
        super().__init__(embedding_size, num_classes, scale)
        self.margin = margin
        self.easy_margin = easy_margin

    def target_cosine(self, cos_y: Tensor, norms: Tensor) -> Tensor:
        return additive_angular_cosine(cos_y, self.margin, self.easy_margin)


@HEADS.register("curricularface")
class CurricularFace(HardNegativeHead):
    """CurricularFace (Huang et al. 2020): s = 64, m = 0.5.

    Target ``T(cos theta_y) = cos(theta_y + m)`` (ArcFace fallback past pi). The paper's
    ``N(t, cos theta_j)`` turns a hard negative, ``cos_j > T(cos theta_y)``, into
    ``cos_j * (t + cos_j)``. ``t`` is a buffer (init 0) moved each training step, before the negatives
    are modulated, to ``0.01 * mean_i cos(theta_{y_i}) + 0.99 * t`` (no gradient); ``t`` is
    frozen in eval mode.
    """

    t: Tensor

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        scale: float = 64.0,
        margin: float = 0.5,
        momentum: float = 0.01,
    ) -> None:
        super().__init__(embedding_size, num_classes, scale)
        self.margin = margin
        self.momentum = momentum
        self.register_buffer("t", torch.zeros(()))

    def target_cosine(self, cos_y: Tensor, norms: Tensor) -> Tensor:
        if self.training:
            self.t.lerp_(cos_y.detach().mean().to(self.t), self.momentum)
        return additive_angular_cosine(cos_y, self.margin)

    def hard_negative_cosine(self, cos: Tensor) -> Tensor:
        return cos * (self.t + cos)


@HEADS.register("mv_softmax")
class MVSoftmax(HardNegativeHead):
    """Mis-classified Vector guided Softmax, MV-Softmax (Wang et al. 2020): s = 32, t = 0.2.

    Target ``f(m, theta_y)``: ``cos - m`` (``mode="am"``, m = 0.35) or ``cos(theta_y + m)`` with the
    ArcFace fallback (``mode="arc"``, m = 0.5). A negative is mis-classified (``I_k = 1``) when
    ``cos_k > f(m, theta_y)``; its term is weighted by ``h(t, theta_k, I_k)``, ``e^{s t I_k}`` (fixed)
    or ``e^{s t (cos_k + 1) I_k}`` (adaptive), i.e. its logit becomes ``s * (cos_k + t)`` or
    ``s * ((t + 1) cos_k + t)``.

    ``easy_margin`` (default False: the paper's Eq. applies the margin everywhere) is the official
    implementation's default (SV-X-Softmax's ``FC``, ``easy_margin=True``): the target logit keeps the
    margin only where ``cos theta_y > 0`` and is ``cos theta_y`` elsewhere, while the mis-classified
    test still compares with the margined ``f(m, theta_y)``, as there.
    """

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        scale: float = 32.0,
        mode: Literal["am", "arc"] = "am",
        margin: float | None = None,
        t: float = 0.2,
        adaptive: bool = True,
        easy_margin: bool = False,
    ) -> None:
        super().__init__(embedding_size, num_classes, scale)
        if mode not in ("am", "arc"):
            raise ValueError(f"mode must be 'am' or 'arc', got {mode!r}")
        self.mode = mode
        self.margin = margin if margin is not None else {"am": 0.35, "arc": 0.5}[mode]
        self.t = t
        self.adaptive = adaptive
        self.easy_margin = easy_margin

    def margined_cosine(self, cos_y: Tensor) -> Tensor:
        """``f(m, theta_y)``: the target with its margin, everywhere."""
        if self.mode == "am":
            return cos_y - self.margin
        return additive_angular_cosine(cos_y, self.margin)

    def target_cosine(self, cos_y: Tensor, norms: Tensor) -> Tensor:
        margined = self.margined_cosine(cos_y)
        return torch.where(cos_y > 0, margined, cos_y) if self.easy_margin else margined

    def hard_threshold(self, cos_y: Tensor, target: Tensor) -> Tensor:
        return self.margined_cosine(cos_y)

    def hard_negative_cosine(self, cos: Tensor) -> Tensor:
        if self.adaptive:
            return (self.t + 1.0) * cos + self.t
        return cos + self.t
