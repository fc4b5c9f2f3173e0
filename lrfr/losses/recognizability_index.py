"""The losses of Chai et al. 2023, "Recognizability Embedding Enhancement for Very Low-Resolution Face
Recognition and Quality Estimation" (CVPR), Sec. 3, as plain batched functions.

- :func:`recognizability_index`: the recognizability index (RI) xi of Eq. 1-3;
- :func:`ri_regression_loss`: the smooth L1 loss of Eq. 4 between the learned RI and xi;
- :func:`ui_ri_statistics`, :func:`index_diversion_loss`: the UI RI distribution (Eq. 6) and the
  index diversion (ID) loss (Eq. 5, 7);
- :func:`project_away_from_ui`, :func:`attention_mse`: the projection away from the UI center (Eq. 8)
  and the perceptibility attention loss (Eq. 9).

Every function keeps its inputs' dtype (at least float32: float16 inputs under AMP are promoted), so
it runs in float64 for gradient checks. The modules these losses train are in
:mod:`lrfr.models.perceptibility`; the training term combining them (Eq. 10) is
:class:`lrfr.training.recognizability_term.RecognizabilityTerm`.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

ONE_SIDED_95 = 1.645
"""Default tau of the ID loss: the one-sided 95% quantile of the standard normal (see
:func:`index_diversion_loss`)."""

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, Tensor)


class RecognizabilityTerms(NamedTuple):
    """Per-sample ``(B,)`` proximities of Eq. 1-2 and the RI of Eq. 3."""

    d_p: Tensor
    d_n: Tensor
    d_ui: Tensor
    ri: Tensor


def _float(*tensors: Tensor) -> tuple[Tensor, ...]:
    """The tensors in their common floating dtype, at least float32 (float16 under AMP is promoted)."""
    dtype = torch.float32
    for tensor in tensors:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return tuple(tensor.to(dtype) for tensor in tensors)


def recognizability_index(
    embeddings: Tensor, labels: Tensor, prototypes: Tensor, ui_center: Tensor, eps: float = 1e-7
) -> RecognizabilityTerms:
    """The RI ``xi = d_UI * d_N / (d_P + eps)`` (Eq. 3) of each embedding, with its parts.

    On the L2-normalised embedding v, class prototypes w and UI center c (Eq. 1-2):
    ``d_P = 1 - cos(v, w_y)``, ``d_N = 1 - max_{j != y} cos(v, w_j)`` (the nearest negative prototype),
    ``d_UI = 1 - cos(v, c)``; ``eps = 1e-7`` is the paper's. ``embeddings`` (B, D), ``labels`` (B,)
    integers in [0, C), ``prototypes`` (C >= 2, D) (a cosine head's ``weight``), ``ui_center`` (D,),
    none of them needs to be normalised. The cosines are clamped to [-1, 1] so that a rounding error
    of one ulp (about 6e-8 in float32, the order of eps) cannot make ``d_P + eps`` vanish or change
    sign. Differentiable in all tensors except at ties of the nearest negative (and where the clamp acts).
    """
    _check_ri_inputs(embeddings, labels, prototypes, ui_center)
    embeddings, prototypes, ui_center = _float(embeddings, prototypes, ui_center)
    rows = F.normalize(embeddings, dim=1)
    cos = (rows @ F.normalize(prototypes, dim=1).T).clamp(-1.0, 1.0)
    own = labels.long()[:, None]
    d_p = 1 - cos.gather(1, own)[:, 0]
    d_n = 1 - cos.scatter(1, own, -torch.inf).amax(1)
    d_ui = 1 - (rows @ F.normalize(ui_center, dim=0)).clamp(-1.0, 1.0)
    return RecognizabilityTerms(d_p, d_n, d_ui, d_ui * d_n / (d_p + eps))


def _check_ri_inputs(embeddings: Tensor, labels: Tensor, prototypes: Tensor, ui_center: Tensor) -> None:
    if embeddings.ndim != 2 or embeddings.shape[0] == 0:
        raise ValueError(f"embeddings have shape {tuple(embeddings.shape)}; expected (B, D) with B >= 1")
    batch, dim = embeddings.shape
    if prototypes.ndim != 2 or prototypes.shape[1] != dim or prototypes.shape[0] < 2:
        raise ValueError(
            f"prototypes have shape {tuple(prototypes.shape)}; expected (C, {dim}) with C >= 2 classes "
            "(d_N needs a negative prototype)"
        )
    if ui_center.shape != (dim,):
        raise ValueError(f"ui_center has shape {tuple(ui_center.shape)}; expected ({dim},)")
    if labels.shape != (batch,) or labels.is_floating_point() or labels.is_complex():
        raise ValueError(
            f"labels have shape {tuple(labels.shape)} and dtype {labels.dtype}; expected ({batch},) integers"
        )
    classes = prototypes.shape[0]
    if bool(((labels < 0) | (labels >= classes)).any()):
        raise ValueError(
            f"labels must lie in [0, {classes - 1}] ({classes} prototypes), "
            f"got values in [{int(labels.min())}, {int(labels.max())}]"
        )


def ri_regression_loss(predicted: Tensor, target: Tensor, beta: float = 0.75) -> Tensor:
    """Smooth L1 loss of Eq. 4, batch mean: ``0.5 e^2 / beta`` if ``|e| < beta``, else ``|e| - 0.5 beta``.

    ``e = target - predicted``; ``beta = 0.75`` is the paper's. Both are (B,); a shape mismatch is an
    error rather than a silent broadcast.
    """
    if predicted.shape != target.shape:
        raise ValueError(f"predicted RI has shape {tuple(predicted.shape)} but the target {tuple(target.shape)}")
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    return F.smooth_l1_loss(*_float(predicted, target), beta=beta)


def ui_ri_statistics(ui_ri_values: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and unbiased standard deviation (divisor K - 1) of K UI RIs (Eq. 6; the paper's K = 5,000)."""
    (values,) = _float(ui_ri_values.reshape(-1))
    if values.numel() < 2:
        raise ValueError(f"got {values.numel()} UI RI value(s); Eq. 6 needs at least 2")
    return values.mean(), values.std(correction=1)


def index_diversion_loss(
    predicted_ri: Tensor,
    mu_ui: float | Tensor = 0.0,
    sigma_ui: float | Tensor = 1.0,
    tau: float = ONE_SIDED_95,
) -> Tensor:
    """ID loss ``max(0, tau - div)``, ``div = (xi_hat - mu_UI) / sigma_UI`` (Eq. 5, 7), batch mean.

    ``(mu_UI, sigma_UI) = (0, 1)`` is the paper's choice (RI of the UIs assumed standard normal);
    :func:`ui_ri_statistics` gives the estimated alternative. ``tau``: the paper calls it a
    "confidence interval hyperparameter" without a value, and reads the loss as "a statistically
    significant deviation of mu_UI from xi_hat in the upper tail"; the default 1.645 is the one-sided
    95% quantile of the standard normal, i.e. that reading at the usual 5% level.
    """
    if float(sigma_ui) <= 0:
        raise ValueError(f"sigma_ui must be positive, got {float(sigma_ui)}")
    (predicted,) = _float(predicted_ri)
    div = (predicted - mu_ui) / sigma_ui
    return torch.clamp(tau - div, min=0).mean()


def project_away_from_ui(embeddings: ArrayOrTensor, ui_center: ArrayOrTensor, amount: float = 1.0) -> ArrayOrTensor:
    """``v' = v - a <v, u> u`` with u the L2-normalised UI center (Eq. 8 at ``a = 1``).

    ``embeddings`` (..., D) are used as given (Eq. 8 writes the raw v, not v-hat). ``amount`` a in
    [0, 1] removes that fraction of the component along u (0: unchanged, 1: orthogonal to u).
    NumPy in, NumPy out; Tensor in, Tensor out.
    """
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"amount must lie in [0, 1], got {amount}")
    if isinstance(embeddings, np.ndarray):
        center = torch.as_tensor(np.asarray(ui_center, dtype=embeddings.dtype))
        return project_away_from_ui(torch.from_numpy(embeddings), center, amount).numpy()
    center = torch.as_tensor(ui_center, device=embeddings.device).to(embeddings.dtype)
    if center.shape != embeddings.shape[-1:]:
        raise ValueError(f"ui_center has shape {tuple(center.shape)}; expected ({embeddings.shape[-1]},)")
    norm = torch.linalg.vector_norm(center)
    if not bool(norm > 0):
        raise ValueError("ui_center is the zero vector; expected a non-zero center")
    unit = center / norm
    return embeddings - amount * (embeddings @ unit)[..., None] * unit


def attention_mse(attended: Tensor, projected: Tensor, reduction: Literal["sum", "mean"] = "sum") -> Tensor:
    """Eq. 9 between attended embeddings ``v_attn`` and projected ones ``v'`` (both (B, D)).

    ``"sum"`` (default) is Eq. 9 as printed, ``(1/B) sum_i ||v'_i - v_attn_i||^2``: squared error
    summed over the D dimensions, averaged over the batch. ``"mean"`` is the per-element mean of
    ``F.mse_loss`` (PyTorch's "mean squared error"), D times smaller.
    """
    if attended.shape != projected.shape or attended.ndim != 2:
        raise ValueError(
            f"attended {tuple(attended.shape)} and projected {tuple(projected.shape)}: expected equal (B, D) shapes"
        )
    projected, attended = _float(projected, attended)
    squared = (projected - attended).pow(2)
    if reduction == "sum":
        return squared.sum(1).mean()
    if reduction == "mean":
        return squared.mean()
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
