"""The classification-head interface shared by every face-recognition loss in ``lrfr.losses``.

A head maps unnormalised embeddings ``(B, D)`` and int64 labels ``(B,)`` to the logits the
cross-entropy is taken on plus named, already-weighted loss terms (:class:`HeadOutput`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lrfr.registry import Registry

_MIN_SIN_SQUARED = 1e-9
"""Floor of ``1 - cos^2`` under the square root of ``sin(theta)``: keeps its gradient finite at theta = 0."""


class HeadOutput(NamedTuple):
    """The margin logits and the named scalar loss terms, each already multiplied by its coefficient."""

    logits: Tensor
    terms: dict[str, Tensor]

    @property
    def loss(self) -> Tensor:
        """The sum of all terms."""
        return torch.stack(tuple(self.terms.values())).sum()


class ClassificationHead(nn.Module):
    """Base head: validates inputs, computes the logits in full precision and adds the cross-entropy.

    Subclasses implement :meth:`_compute_logits` and, for terms beyond the cross-entropy,
    :meth:`_extra_terms`. Running state (EMA buffers, centres) advances only in ``training`` mode,
    so evaluation and gradient checks see a fixed function.
    """

    def __init__(self, embedding_size: int, num_classes: int) -> None:
        super().__init__()
        for name, value in (("embedding_size", embedding_size), ("num_classes", num_classes)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.embedding_size = embedding_size
        self.num_classes = num_classes

    def forward(self, embeddings: Tensor, labels: Tensor) -> HeadOutput:
        logits = self.logits(embeddings, labels)
        embeddings = self._full_precision(embeddings)
        with torch.autocast(embeddings.device.type, enabled=False):
            terms = {"ce": F.cross_entropy(logits, labels), **self._extra_terms(embeddings, labels)}
        return HeadOutput(logits, terms)

    def logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """The ``(B, C)`` margin logits (as in ``forward``; in training mode running state advances)."""
        self._check_inputs(embeddings, labels)
        embeddings = self._full_precision(embeddings)
        with torch.autocast(embeddings.device.type, enabled=False):
            return self._compute_logits(embeddings, labels)

    def _compute_logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        raise NotImplementedError

    def _extra_terms(self, embeddings: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """Weighted loss terms added to the cross-entropy (none by default)."""
        return {}

    def _full_precision(self, embeddings: Tensor) -> Tensor:
        """Embeddings in the parameters' dtype: margins are not computed in fp16/bf16 under AMP."""
        return embeddings.to(next(self.parameters()).dtype)

    def _check_inputs(self, embeddings: Tensor, labels: Tensor) -> None:
        if not isinstance(embeddings, Tensor) or not embeddings.is_floating_point():
            got = embeddings.dtype if isinstance(embeddings, Tensor) else type(embeddings).__name__
            raise ValueError(f"embeddings must be a floating-point tensor, got {got}")
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embedding_size:
            raise ValueError(
                f"embeddings must have shape (batch, {self.embedding_size}), got {tuple(embeddings.shape)}"
            )
        if embeddings.shape[0] == 0:
            raise ValueError("embeddings hold an empty batch; expected at least one sample")
        if not isinstance(labels, Tensor) or labels.dtype != torch.int64:
            got = labels.dtype if isinstance(labels, Tensor) else type(labels).__name__
            raise ValueError(f"labels must be an int64 (torch.long) tensor, got {got}")
        if labels.ndim != 1:
            raise ValueError(f"labels must have shape (batch,), got {tuple(labels.shape)}")
        if labels.shape[0] != embeddings.shape[0]:
            raise ValueError(
                f"batch size mismatch: {embeddings.shape[0]} embeddings but {labels.shape[0]} labels"
            )
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= self.num_classes:
            raise ValueError(
                f"labels must lie in [0, {self.num_classes - 1}] (num_classes={self.num_classes}), "
                f"got values in [{low}, {high}]"
            )


class CosineMarginHead(ClassificationHead):
    """Logits ``s * psi`` on the cosines between normalised features and class prototypes ``weight``.

    Subclasses define the target cosine ``psi(theta_y)`` (:meth:`target_cosine`) and may re-weight the
    non-target cosines (:meth:`non_target_cosine`); the logits are ``scale`` times both.
    """

    def __init__(self, embedding_size: int, num_classes: int, scale: float) -> None:
        super().__init__(embedding_size, num_classes)
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.scale = scale
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_size))
        nn.init.normal_(self.weight, std=0.01)

    def cosine(self, embeddings: Tensor) -> Tensor:
        """``(B, C)`` cosines between the normalised embeddings and normalised prototypes."""
        return F.linear(F.normalize(embeddings, dim=1), F.normalize(self.weight, dim=1))

    def target_cosine(self, cos_y: Tensor, norms: Tensor) -> Tensor:
        """``psi``: the margin-applied target cosine ``(B,)`` from ``cos(theta_y)`` and the feature norms."""
        raise NotImplementedError

    def non_target_cosine(self, cos: Tensor, target: Tensor, cos_y: Tensor) -> Tensor:
        """The ``(B, C)`` cosines used for the non-target classes (unchanged by default), given the
        target cosine ``psi`` and the unmodified ``cos(theta_y)``."""
        return cos

    def _compute_logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        cos = self.cosine(embeddings)
        index = labels[:, None]
        cos_y = cos.gather(1, index).squeeze(1)
        target = self.target_cosine(cos_y, embeddings.norm(dim=1))
        return self.scale * self.non_target_cosine(cos, target, cos_y).scatter(1, index, target[:, None])

    def extra_repr(self) -> str:
        return f"embedding_size={self.embedding_size}, num_classes={self.num_classes}, scale={self.scale}"


class HardNegativeHead(CosineMarginHead):
    """A cosine head that re-weights the hard (mis-classified) negatives ``cos_j > psi(theta_y)``.

    Shared by CurricularFace (Huang et al. 2020) and MV-Softmax (Wang et al. 2020).
    """

    def hard_negative_cosine(self, cos: Tensor) -> Tensor:
        """The re-weighted cosine of a hard negative."""
        raise NotImplementedError

    def hard_threshold(self, cos_y: Tensor, target: Tensor) -> Tensor:
        """The cosine a negative must exceed to be hard: the target ``psi`` by default."""
        return target

    def non_target_cosine(self, cos: Tensor, target: Tensor, cos_y: Tensor) -> Tensor:
        hard = cos > self.hard_threshold(cos_y, target)[:, None]
        return torch.where(hard, self.hard_negative_cosine(cos), cos)


def additive_angular_cosine(cos: Tensor, margin: float | Tensor, easy_margin: bool = False) -> Tensor:
    """``cos(theta + m)`` (ArcFace, Deng et al. 2019, Eq. 3), differentiable in ``cos`` and in ``m``.

    Computed as ``cos * cos(m) - sin * sin(m)`` with ``sin = sqrt(max(1 - cos^2, 1e-9))``; ``margin``
    may be a per-sample tensor (MagFace). Where ``theta + m > pi`` (``cos < cos(pi - m)``) the target
    falls back to ``cos - m * sin(m)`` so it keeps decreasing in theta; with ``easy_margin`` the margin
    is applied only where ``cos > 0`` and the target is ``cos`` elsewhere.
    """
    m = torch.as_tensor(margin, dtype=cos.dtype, device=cos.device)
    sin = torch.sqrt(torch.clamp(1.0 - cos * cos, min=_MIN_SIN_SQUARED))
    shifted = cos * torch.cos(m) - sin * torch.sin(m)
    if easy_margin:
        return torch.where(cos > 0, shifted, cos)
    return torch.where(cos > torch.cos(math.pi - m), shifted, cos - torch.sin(math.pi - m) * m)


HEADS: Registry[ClassificationHead] = Registry("head")
