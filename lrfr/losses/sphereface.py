"""A-Softmax (SphereFace, Liu et al. CVPR 2017), one of Cheng et al.'s generic FR baselines (Table 3).

Eq. 7 (A-Softmax loss): with class weights normalised (``||W_j|| = 1``, no bias) and the raw feature
``x``, the target logit is ``||x|| psi(theta_y)`` and every other logit ``||x|| cos(theta_j)``, where

    psi(theta) = (-1)^k cos(m theta) - 2k,   theta in [k pi / m, (k + 1) pi / m],  k = 0 .. m - 1

(monotonically decreasing on [0, pi]), m = 4. ``cos(m theta)`` is the Chebyshev polynomial
``T_m(cos theta)`` so that the gradient flows through ``cos theta`` without an ``arccos``.

The official Caffe implementation (not in the paper) anneals the target logit towards psi:
``(lambda ||x|| cos theta_y + ||x|| psi(theta_y)) / (1 + lambda)`` with
``lambda = max(lambda_min, base (1 + gamma t)^(-power))`` at training iteration t (base 1000,
gamma 0.12, power 1, lambda_min 5): ``annealing=True``. Without it (the paper's Eq. 7) the loss is
hard to optimise from scratch -- Cheng et al. report that SphereFace failed to converge when
fine-tuned on TinyFace (their footnote 4).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lrfr.losses.base import HEADS, ClassificationHead


def chebyshev_cosine(cos: Tensor, m: int) -> Tensor:
    """``cos(m theta)`` from ``cos theta`` by the Chebyshev recurrence T_{n+1} = 2 c T_n - T_{n-1}."""
    previous, current = torch.ones_like(cos), cos
    if m == 0:
        return previous
    for _ in range(m - 1):
        previous, current = current, 2 * cos * current - previous
    return current


def angular_margin_psi(cos: Tensor, m: int) -> Tensor:
    """SphereFace's ``psi(theta) = (-1)^k cos(m theta) - 2k`` with k = floor(m theta / pi), from cos theta."""
    theta = torch.acos(cos.detach().clamp(-1.0, 1.0))
    k = torch.floor(m * theta / math.pi).clamp(max=m - 1)
    sign = 1.0 - 2.0 * torch.remainder(k, 2)
    return sign * chebyshev_cosine(cos, m) - 2.0 * k


@HEADS.register("sphereface")
class SphereFace(ClassificationHead):
    """A-Softmax with angular margin ``m`` (default 4); ``annealing`` = the official lambda schedule."""

    iteration: Tensor

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        margin: int = 4,
        annealing: bool = False,
        lambda_base: float = 1000.0,
        lambda_gamma: float = 0.12,
        lambda_power: float = 1.0,
        lambda_min: float = 5.0,
    ) -> None:
        super().__init__(embedding_size, num_classes)
        if not isinstance(margin, int) or margin < 1:
            raise ValueError(f"margin must be a positive int (SphereFace's m), got {margin!r}")
        self.margin, self.annealing = margin, annealing
        self.lambda_base, self.lambda_gamma = lambda_base, lambda_gamma
        self.lambda_power, self.lambda_min = lambda_power, lambda_min
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_size))
        nn.init.xavier_uniform_(self.weight)
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))

    def current_lambda(self) -> float:
        """The annealing weight at the current iteration (0 without annealing)."""
        if not self.annealing:
            return 0.0
        decayed = self.lambda_base * (1 + self.lambda_gamma * float(self.iteration)) ** (-self.lambda_power)
        return max(self.lambda_min, decayed)

    def _compute_logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        norms = embeddings.norm(dim=1, keepdim=True)
        cos = F.linear(F.normalize(embeddings, dim=1), F.normalize(self.weight, dim=1))
        index = labels[:, None]
        cos_y = cos.gather(1, index)
        target = angular_margin_psi(cos_y, self.margin)
        blend = self.current_lambda()
        if blend:
            target = (blend * cos_y + target) / (1 + blend)
        if self.training:
            self.iteration += 1
        return norms * cos.scatter(1, index, target)

    def extra_repr(self) -> str:
        return f"embedding_size={self.embedding_size}, num_classes={self.num_classes}, margin={self.margin}"
