"""DeepID2's identification + verification loss (Sun, Chen, Wang & Tang, NIPS 2014, Eq. 1-3).

``Ident(f, t) = -log p_t`` (softmax over the classes, Eq. 1) and, for pairs of features in the batch,
``Verif(f_i, f_j) = 1/2 ||f_i - f_j||^2`` for the same identity and ``1/2 max(0, m - ||f_i - f_j||)^2``
otherwise (Eq. 3), weighted by lambda (0.05, the paper's best, Fig. 3). The paper draws pairs of
training samples; here every pair in the mini-batch counts (mean over pairs). The paper learns the
margin m with the other parameters; here it is fixed (``margin``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lrfr.losses.base import HEADS
from lrfr.losses.margin_heads import SoftmaxHead


def contrastive_verification(embeddings: Tensor, labels: Tensor, margin: float) -> Tensor:
    """Mean of DeepID2's Eq. 3 over all pairs i < j of the batch (0 for a batch of one)."""
    distances = torch.cdist(embeddings, embeddings)
    upper = torch.triu(torch.ones_like(distances, dtype=torch.bool), diagonal=1)
    same = labels[:, None] == labels[None, :]
    terms = torch.where(same, distances.square(), (margin - distances).clamp(min=0).square()) / 2
    return terms[upper].mean() if upper.any() else embeddings.sum() * 0


@HEADS.register("deepid2")
class DeepID2Loss(SoftmaxHead):
    """Softmax identification + ``lambda_ve`` x contrastive verification on the raw features."""

    def __init__(self, embedding_size: int, num_classes: int, lambda_ve: float = 0.05, margin: float = 1.0) -> None:
        super().__init__(embedding_size, num_classes)
        self.lambda_ve, self.margin = lambda_ve, margin

    def _extra_terms(self, embeddings: Tensor, labels: Tensor) -> dict[str, Tensor]:
        return {"verification": self.lambda_ve * contrastive_verification(embeddings, labels, self.margin)}
