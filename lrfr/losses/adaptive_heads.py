"""Norm-adaptive margin heads: MagFace and AdaFace, whose target margin depends on the feature norm."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lrfr.losses.base import HEADS, CosineMarginHead, additive_angular_cosine


@HEADS.register("magface")
class MagFace(CosineMarginHead):
    """MagFace (Meng et al. 2021): s = 64, l_a = 10, u_a = 110, l_m = 0.45, u_m = 0.8, lambda_g = 35.

    With ``a = clamp(||x||, l_a, u_a)``, the target is ``cos(theta_y + m(a))`` (per-sample ArcFace
    fallback past pi) with the linear margin ``m(a) = (u_m - l_m) / (u_a - l_a) * (a - l_a) + l_m``;
    the regulariser ``g(a) = a / u_a^2 + 1 / a`` is averaged over the batch and returned as
    ``"magface_g" = lambda_g * g``. The norm receives gradient through both ``m(a)`` and ``g(a)``.

    ``easy_margin`` (default False, the paper's loss) is the official implementation's default
    (``easy_margin=True``): the margin ``m(a)`` is applied only where ``cos theta_y > 0`` and the target
    is ``cos theta_y`` elsewhere (no ArcFace fallback; see :func:`additive_angular_cosine`).
    """

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        scale: float = 64.0,
        lower_norm: float = 10.0,
        upper_norm: float = 110.0,
        lower_margin: float = 0.45,
        upper_margin: float = 0.8,
        lambda_g: float = 35.0,
        easy_margin: bool = False,
    ) -> None:
        super().__init__(embedding_size, num_classes, scale)
        if not 0 < lower_norm < upper_norm:
            raise ValueError(f"need 0 < lower_norm < upper_norm, got {lower_norm} and {upper_norm}")
        if lower_margin > upper_margin:
            raise ValueError(f"need lower_margin <= upper_margin, got {lower_margin} and {upper_margin}")
        self.lower_norm, self.upper_norm = lower_norm, upper_norm
        self.lower_margin, self.upper_margin = lower_margin, upper_margin
        self.lambda_g = lambda_g
        self.easy_margin = easy_margin

    def magnitude(self, norms: Tensor) -> Tensor:
        """``a``: the feature norms clamped to ``[l_a, u_a]``."""
        return norms.clamp(self.lower_norm, self.upper_norm)

    def margin(self, magnitude: Tensor) -> Tensor:
        """``m(a)``, linear from ``l_m`` at ``l_a`` to ``u_m`` at ``u_a``."""
        slope = (self.upper_margin - self.lower_margin) / (self.upper_norm - self.lower_norm)
        return slope * (magnitude - self.lower_norm) + self.lower_margin

    def regulariser(self, magnitude: Tensor) -> Tensor:
        """``g(a) = a / u_a^2 + 1 / a`` per sample."""
        return magnitude / self.upper_norm**2 + 1.0 / magnitude

    def target_cosine(self, cos_y: Tensor, norms: Tensor) -> Tensor:
        return additive_angular_cosine(cos_y, self.margin(self.magnitude(norms)), self.easy_margin)

    def _extra_terms(self, embeddings: Tensor, labels: Tensor) -> dict[str, Tensor]:
        g = self.regulariser(self.magnitude(embeddings.norm(dim=1))).mean()
        return {"magface_g": self.lambda_g * g}


@HEADS.register("adaface")
class AdaFace(CosineMarginHead):
    """AdaFace (Kim et al. 2022): s = 64, m = 0.4, h = 0.333, eps = 1e-3, t_alpha = 0.01.

    The detached norms ``clamp(||x||, 0.001, 100)`` are standardised by running ``batch_mean``
    (init 20) and ``batch_std`` (init 100) buffers into the scaler
    ``clip((||x|| - mean) / (std + eps) * h, -1, 1)``; the target is
    ``cos(clamp(theta_y + g_angle, eps, pi - eps)) - g_add`` with ``g_angle = -m * scaler`` and
    ``g_add = m + m * scaler`` (``theta_y = acos(clamp(cos, -1 + eps, 1 - eps))``); non-targets stay
    ``cos``. In training mode the buffers first move by an EMA (momentum ``t_alpha``) toward the
    batch's mean and unbiased std of the norms (so a training batch needs two samples); eval mode
    uses them frozen.
    """

    batch_mean: Tensor
    batch_std: Tensor

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        scale: float = 64.0,
        margin: float = 0.4,
        h: float = 0.333,
        eps: float = 1e-3,
        t_alpha: float = 0.01,
    ) -> None:
        super().__init__(embedding_size, num_classes, scale)
        self.margin, self.h, self.eps, self.t_alpha = margin, h, eps, t_alpha
        self.register_buffer("batch_mean", torch.tensor(20.0))
        self.register_buffer("batch_std", torch.tensor(100.0))

    def margin_scaler(self, norms: Tensor) -> Tensor:
        """The image-quality proxy in ``[-1, 1]``; in training mode it first updates the running stats."""
        norms = norms.detach().clamp(0.001, 100.0)
        if self.training:
            self.batch_mean.lerp_(norms.mean().to(self.batch_mean), self.t_alpha)
            self.batch_std.lerp_(norms.std().to(self.batch_std), self.t_alpha)
        return ((norms - self.batch_mean) / (self.batch_std + self.eps) * self.h).clamp(-1.0, 1.0)

    def target_cosine(self, cos_y: Tensor, norms: Tensor) -> Tensor:
        scaler = self.margin_scaler(norms)
        theta = torch.acos(cos_y.clamp(-1.0 + self.eps, 1.0 - self.eps))
        theta = (theta - self.margin * scaler).clamp(self.eps, math.pi - self.eps)
        return torch.cos(theta) - (self.margin + self.margin * scaler)

    def _check_inputs(self, embeddings: Tensor, labels: Tensor) -> None:
        super()._check_inputs(embeddings, labels)
        if self.training and embeddings.shape[0] < 2:
            raise ValueError(
                f"AdaFace needs at least 2 samples per training batch to estimate the norm std, "
                f"got {embeddings.shape[0]}"
            )
