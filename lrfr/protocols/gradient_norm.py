"""Gradient norms: per input resolution (Ling et al. 2023, Fig. 3b) and per loss term.

Ling et al. compute "the gradient norm sum of the parameters of the model after back-propagation for
different resolution inputs". Here, for every size ``r``: the images are bicubic-down-sampled to ``r``
px and back up to the model input (sizes at or above the input are the input images themselves), the
classification loss of the model's own head is averaged over all of them, and the gradient of that
mean loss is taken with respect to every trainable backbone parameter tensor; the value is the sum over
those tensors of their gradient's L2 norm (``reduction="sum"``, our reading of "norm sum"), or the
L2 norm of all of them together (``"total"``). Choices the paper leaves open:

* the loss is the classification loss (the head's cross-entropy, e.g. CosFace) of the degraded images
  with their training labels -- the term every model of Fig. 3a has, the HR baseline included;
* the model is in eval mode (batch-norm running statistics, no dropout), so the value does not depend
  on how the images are batched and no buffer is updated; parameters' ``.grad`` are not touched;
* only the backbone's parameters count (the head's class prototypes are part of the loss).

:func:`gradient_norm_by_term` measures how much each weighted term of a composed objective pulls on
the backbone in one batch (e.g. Eq. 8's ``lambda L_dist`` against its two classification halves).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lrfr.data.resolution import down_up
from lrfr.models.modes import eval_mode

REDUCTIONS = ("sum", "total")


def gradient_norm_by_resolution(
    objective: nn.Module,
    images: Tensor,
    labels: Tensor,
    sizes: Sequence[int],
    *,
    head: str = "main",
    batch_size: int = 128,
    reduction: str = "sum",
) -> dict[int, float]:
    """``{size: gradient norm}`` of the mean classification loss of ``images`` (N, 3, H, W) degraded to
    each size (see the module docstring). ``objective`` has a ``backbone`` and ``heads[head]``;
    ``labels`` (N,) are the images' training classes."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if images.ndim != 4 or len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"expected (N, 3, H, W) images with N labels, got {tuple(images.shape)} and {len(labels)} labels")
    backbone, classifier = objective.backbone, objective.heads[head]
    parameters = [p for p in backbone.parameters() if p.requires_grad]
    device = parameters[0].device
    norms: dict[int, float] = {}
    with eval_mode(backbone, classifier):
        for size in sizes:
            gradients = [torch.zeros_like(p) for p in parameters]
            for batch, batch_labels in zip(images.split(batch_size), labels.split(batch_size)):
                degraded = down_up(batch, int(size)).to(device)
                loss = classifier(backbone(degraded), batch_labels.to(device)).terms["ce"] * (len(batch) / len(images))
                for total, gradient in zip(gradients, torch.autograd.grad(loss, parameters)):
                    total += gradient
            norms[int(size)] = _reduce(gradients, reduction)
    return norms


def _reduce(gradients: list[Tensor], reduction: str) -> float:
    per_tensor = torch.stack([g.norm() for g in gradients])
    return float(per_tensor.sum() if reduction == "sum" else per_tensor.norm())


def gradient_norm_by_term(objective: nn.Module, batch: Mapping[str, Any]) -> dict[str, float]:
    """``{term: L2 norm of its gradient}`` over every trainable backbone parameter, for each weighted term
    the objective returns on ``batch`` (keys as ``objective(batch)``), in eval mode; ``.grad`` untouched."""
    backbone = objective.backbone
    parameters = [p for p in backbone.parameters() if p.requires_grad]
    with eval_mode(objective):
        terms = objective(batch)
        norms = {}
        for index, (name, value) in enumerate(terms.items()):
            gradients = torch.autograd.grad(value, parameters, retain_graph=index < len(terms) - 1, allow_unused=True)
            norms[name] = _reduce([g if g is not None else torch.zeros_like(p) for g, p in zip(gradients, parameters)], "total")
    return norms
