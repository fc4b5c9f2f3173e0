"""CentreFace: softmax + center loss (Wen et al. 2016), the recognition loss of Cheng et al.'s CSRI."""

from __future__ import annotations

import torch
from torch import Tensor

from lrfr.losses.base import HEADS
from lrfr.losses.margin_heads import SoftmaxHead


@HEADS.register("centerface")
class CenterFace(SoftmaxHead):
    """Softmax cross-entropy plus the center loss of Wen et al. 2016: lambda = 0.003, alpha = 0.5.

    ``"center" = lambda / 2 * mean_i ||x_i - c_{y_i}||^2`` on the raw embeddings, so its gradient is
    ``lambda * (x_i - c_{y_i}) / B``: the paper's ``lambda * L_C`` with the sum over the mini-batch
    replaced by a mean, like the cross-entropy's. The centres ``centers`` (C, D) are a zero-initialised
    buffer, not an optimiser parameter: in training mode, after the loss is computed, each is moved by
    the paper's rule (Algorithm 1) ``c_j <- c_j - alpha * sum_{i: y_i = j} (c_j - x_i) / (1 + n_j)``.
    Eval mode leaves them unchanged.
    """

    centers: Tensor

    def __init__(
        self, embedding_size: int, num_classes: int, lambda_c: float = 0.003, alpha: float = 0.5
    ) -> None:
        super().__init__(embedding_size, num_classes)
        self.lambda_c = lambda_c
        self.alpha = alpha
        self.register_buffer("centers", torch.zeros(num_classes, embedding_size))

    def _extra_terms(self, embeddings: Tensor, labels: Tensor) -> dict[str, Tensor]:
        distance = (embeddings - self.centers[labels]).pow(2).sum(dim=1).mean()
        terms = {"center": self.lambda_c / 2 * distance}
        if self.training:
            self.update_centers(embeddings.detach(), labels)
        return terms

    @torch.no_grad()
    def update_centers(self, embeddings: Tensor, labels: Tensor) -> None:
        """One step of Wen et al.'s centre update on a mini-batch."""
        embeddings = embeddings.to(self.centers)
        delta = torch.zeros_like(self.centers).index_add_(0, labels, self.centers[labels] - embeddings)
        counts = torch.bincount(labels, minlength=self.num_classes).to(self.centers)
        self.centers -= self.alpha * delta / (1.0 + counts)[:, None]
