"""Distances between the embeddings of two views of the same faces (Ling et al. 2023, Sec. 3.2).

Each ``*_distance`` function takes two ``(B, D)`` tensors ``x`` and ``y`` and returns the ``(B,)``
distance of every sample; a loss is their batch mean. In Ling et al.'s total loss (Eq. 7) ``x`` and
``y`` are the L2-normalised HR and LR embeddings (the caller normalises; see
:class:`lrfr.training.FeatureDistanceTerm`).

* :func:`lp_distance`: ``L_p = 1/(pD) sum_i |x_i - y_i|^p`` (Eq. 1 for p = 1, Eq. 2 for p = 2).
* :func:`logexp_distance`: ``L_LogExp = 1/(pD) log(1 + sum_i (exp(|x_i - y_i|^p) - 1))`` (Eq. 3, Eq. 5),
  per sample, evaluated in a log-sum-exp form that neither overflows for large errors nor loses the
  small ones (see the function).
* :func:`logexp_batch_loss`: the public reference code's variant (named, for comparison): one log over
  the whole batch, without the 1/D, divided by the batch size.
* :func:`smooth_l1_distance`: ``1/D sum_i smoothL1(x_i - y_i)``, the third curve of Fig. 4.

:func:`logexp_gradient` is Eq. 4 (generalised to p) in closed form, so tests and figures can set it
beside autograd.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

_LARGE_EXPONENT = 20.0
"""Above this largest exponent |x_i - y_i|^p of a sample, LogExp is evaluated by log-sum-exp (exp(20) * D
stays far inside float32 below it, where log1p(sum expm1) keeps full precision for tiny errors)."""
_FLOOR = 1e-30


def _check_pair(x: Tensor, y: Tensor) -> None:
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"expected two (batch, dim) tensors of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[1] == 0:
        raise ValueError("the embeddings have no dimensions (D = 0)")


def _check_p(p: float) -> float:
    if not p >= 1.0 or not math.isfinite(p):
        raise ValueError(f"p must be a finite number >= 1 (Ling et al. use 1 and 2), got {p!r}")
    return float(p)


def _powered_errors(x: Tensor, y: Tensor, p: float) -> Tensor:
    """``|x - y|^p`` (B, D) in float32 or wider (the exponentials below are not safe in float16)."""
    _check_pair(x, y)
    difference = (x - y).float() if x.dtype in (torch.float16, torch.bfloat16) else x - y
    return difference.abs() if p == 1.0 else difference.abs().pow(p)


def lp_distance(x: Tensor, y: Tensor, p: float = 1.0) -> Tensor:
    """``(B,)`` ``1/(pD) sum_i |x_i - y_i|^p``: L1 of Eq. 1 for ``p = 1`` and L2 of Eq. 2 for ``p = 2``."""
    p = _check_p(p)
    errors = _powered_errors(x, y, p)
    return errors.sum(dim=1) / (p * errors.shape[1])


def logexp_distance(x: Tensor, y: Tensor, p: float = 1.0) -> Tensor:
    """``(B,)`` ``1/(pD) log(1 + sum_i (exp(|x_i - y_i|^p) - 1))`` per sample (Eq. 3 for p = 1, Eq. 5).

    With ``a_i = |x_i - y_i|^p``: a sample whose largest ``a_i`` exceeds 20 is evaluated as
    ``M + log(sum_i exp(a_i - M) - (D - 1) exp(-M))`` with ``M = max_i a_i`` (the same value; the
    argument of the log is at least ``1 - (D - 1) exp(-20)``), so no error overflows; every other sample
    uses ``log1p(sum_i expm1(a_i))``, which keeps the precision of errors near zero (where
    ``1 + sum`` would round them away). Each branch gets finite inputs in every row, so ``torch.where``
    passes a finite gradient (Eq. 4) to every sample.
    """
    p = _check_p(p)
    exponents = _powered_errors(x, y, p)
    dims = exponents.shape[1]
    largest = exponents.detach().amax(dim=1, keepdim=True)
    small = torch.log1p(torch.expm1(exponents.clamp(max=_LARGE_EXPONENT)).sum(dim=1))
    shift = largest.clamp(min=_LARGE_EXPONENT)
    rest = torch.exp(exponents - shift).sum(dim=1) - (dims - 1) * torch.exp(-shift.squeeze(1))
    large = shift.squeeze(1) + torch.log(rest.clamp(min=_FLOOR))  # the floor only binds in unselected rows
    return torch.where(largest.squeeze(1) > _LARGE_EXPONENT, large, small) / (p * dims)


def logexp_gradient(x: Tensor, y: Tensor, p: float = 1.0) -> Tensor:
    """``(B, D)`` closed-form ``dL_LogExp / dx`` of :func:`logexp_distance` for each sample (Eq. 4, any p):

    ``1/D * sign(x_i - y_i) |x_i - y_i|^(p-1) exp(a_i) / (1 + sum_j (exp(a_j) - 1))``, ``a_i = |x_i - y_i|^p``,
    computed as ``exp(a_i - log(1 + sum_j (exp(a_j) - 1)))``. With the remainder ``C = sum_{j != i}(exp(a_j) - 1)``
    the fraction is ``exp(a_i) / (C + exp(a_i))`` (Eq. 6): the L1 gradient 1/D when every other error is 0,
    smaller the larger the other errors. Zero where ``x_i = y_i`` (the subgradient
    autograd takes for p = 1).
    """
    p = _check_p(p)
    difference = x - y
    exponents = _powered_errors(x, y, p)
    log_sum = logexp_distance(x, y, p)[:, None] * (p * exponents.shape[1])
    magnitude = torch.ones_like(exponents) if p == 1.0 else difference.abs().pow(p - 1)
    return torch.sign(difference) * magnitude * torch.exp(exponents - log_sum) / exponents.shape[1]


def logexp_batch_loss(x: Tensor, y: Tensor, p: float = 1.0) -> Tensor:
    """Scalar ``1/(pB) log(1 + sum_{b,i} (exp(|x_bi - y_bi|^p) - 1))``: the public reference code's LogExp.

    The released training code (github.com/hurricanelx/LRFR, ``ExpDist``) differs from Eq. 5 in three
    ways: one log is taken over the errors of the *whole batch* rather than per sample; the sum is not
    divided by D; and the result is divided by the batch size B. Consequences: the gradient of one
    element is ``exp(a_bi) / (B (1 + sum over the batch))``, so every sample's pull is scaled by the
    errors of all the others (a batch with one badly matched pair shrinks the gradient of every
    other pair), and the loss grows like ``log(B) / B`` rather than staying a per-sample mean. Evaluated
    in the same stable form as :func:`logexp_distance`.
    """
    p = _check_p(p)
    batch = x.shape[0]
    _check_pair(x, y)
    flat_x, flat_y = x.reshape(1, -1), y.reshape(1, -1)
    return logexp_distance(flat_x, flat_y, p)[0] * flat_x.shape[1] / batch


def smooth_l1_distance(x: Tensor, y: Tensor, beta: float = 1.0) -> Tensor:
    """``(B,)`` ``1/D sum_i smoothL1(x_i - y_i)``: ``0.5 d^2 / beta`` below ``beta``, ``|d| - beta / 2`` above
    (Girshick 2015; Ling et al. Fig. 4's third distance)."""
    _check_pair(x, y)
    return F.smooth_l1_loss(x, y, reduction="none", beta=beta).mean(dim=1)


def _batch_mean(distance: Callable[..., Tensor]) -> Callable[..., Tensor]:
    def loss(x: Tensor, y: Tensor, **kwargs: Any) -> Tensor:
        return distance(x, y, **kwargs).mean()

    loss.__doc__ = f"Batch mean of :func:`{distance.__name__}`."
    return loss


FEATURE_DISTANCES: dict[str, Callable[..., Tensor]] = {
    "mse": lambda x, y: F.mse_loss(x, y),
    "l1": lambda x, y: (x - y).abs().sum(dim=1).mean(),
    "l2": lambda x, y: (x - y).norm(dim=1).mean(),
    "lp": _batch_mean(lp_distance),
    "logexp": _batch_mean(logexp_distance),
    "logexp_batch": logexp_batch_loss,
    "smooth_l1": _batch_mean(smooth_l1_distance),
}
"""Scalar losses of two ``(B, D)`` embeddings, by name. ``mse``: mean squared difference per element;
``l1`` / ``l2``: the per-sample L1 / Euclidean *norm* of the difference, batch mean; ``lp``: Ling et
al.'s ``1/(pD) sum |x - y|^p`` (keyword ``p``), batch mean; ``logexp``: Eq. 5 per sample, batch mean
(keyword ``p``); ``logexp_batch``: the public code's batch-level log (keyword ``p``); ``smooth_l1``:
per-element smooth L1 (keyword ``beta``), mean."""
