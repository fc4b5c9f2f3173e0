"""Grad-CAM (Selvaraju et al. 2017) for face embeddings: the class activation maps of Chai et al. 2023, Fig. 5.

A face model has no class logit at test time, so the score explained for face ``i`` is the cosine
between its embedding and a target vector ``t_i``: its identity's prototype (the row ``y_i`` of a margin
head's ``weight``, as the model was trained to match) or the embedding of its gallery mate. Then, as in
Grad-CAM, the weight of channel ``c`` of the last feature map ``A`` is the spatial mean of
``d score / d A_c``, the map is ``ReLU(sum_c w_c A_c)``, bilinearly upsampled to the image size and
divided by its maximum (an image with no positive evidence keeps an all-zero map).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from lrfr.models import BackboneOutput
from lrfr.models.modes import eval_mode, module_device
from lrfr.protocols.embeddings import image_batches

ScoreFunction = Callable[[Tensor, Tensor], Tensor]
"""``(embeddings (B, D) unnormalised, indices (B,) of those images in the input) -> (B,)`` scores, each
depending on its own row only (e.g. ``lambda e, i: head.cosine(e)[torch.arange(len(i)), labels[i]]``)."""


def grad_cam(
    backbone: nn.Module,
    images: Dataset | Tensor,
    targets: Tensor | np.ndarray | ScoreFunction,
    layer: nn.Module | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
) -> np.ndarray:
    """(N, H, W) float32 Grad-CAM maps in [0, 1] of ``images`` (Chai et al. 2023, Fig. 5): a Dataset
    of images at the backbone's input, or a (N, C, H, W) tensor, streamed in batches by
    :func:`~lrfr.protocols.embeddings.image_batches` (only the maps are kept).

    ``targets``: (N, D) vectors (score ``cos(embedding_i, targets_i)``) or a :data:`ScoreFunction`,
    called once per batch of up to ``batch_size`` images. For Fig. 5 with class prototypes:
    ``targets = objective.heads["main"].weight[labels]``.
    ``layer``: the module whose output is explained; by default the backbone's last feature map
    (``backbone(x, return_feature_map=True)``, see :class:`lrfr.models.base.Backbone`). The model runs
    in eval mode (batch-norm statistics fixed, so each score depends on its own image only); every
    module's mode is restored and no parameter gradient is accumulated.
    """
    score = _score_function(targets, len(images))
    device = module_device(backbone)
    maps, start = [], 0
    with eval_mode(backbone):
        for batch, _ in image_batches(images, batch_size=batch_size, num_workers=num_workers, device=device):
            maps.append(_batch_cam(backbone, batch, score, start, layer).cpu())
            start += len(batch)
    if not maps:
        raise ValueError("images is empty; expected at least one image")
    return torch.cat(maps).numpy()


def _score_function(targets: Tensor | np.ndarray | ScoreFunction, count: int) -> ScoreFunction:
    """The caller's score function, or the cosine to each image's target row."""
    if callable(targets):
        return targets
    vectors = torch.as_tensor(targets, dtype=torch.float32).detach()
    if vectors.ndim != 2 or len(vectors) != count:
        raise ValueError(f"targets have shape {tuple(vectors.shape)}; expected ({count}, D), one per image")
    return lambda embeddings, indices: F.cosine_similarity(embeddings, vectors[indices].to(embeddings), dim=1)


def _batch_cam(
    backbone: nn.Module, images: Tensor, score: ScoreFunction, start: int, layer: nn.Module | None
) -> Tensor:
    """Grad-CAM of the images ``start, start + 1, ...``: channel weights from the gradient of the summed scores."""
    with torch.enable_grad():
        embeddings, feature_map = _forward(backbone, images.detach().requires_grad_(True), layer)
        scores = score(embeddings, torch.arange(start, start + len(images)))
        if scores.shape != (len(images),):
            raise ValueError(f"the score function returned shape {tuple(scores.shape)}; expected ({len(images)},)")
        (gradient,) = torch.autograd.grad(scores.sum(), feature_map)
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * feature_map.detach()).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=images.shape[2:], mode="bilinear", align_corners=False)[:, 0].clamp_(min=0)
    peak = cam.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, cam / peak.clamp(min=torch.finfo(cam.dtype).tiny), torch.zeros_like(cam)).float()


def _forward(backbone: nn.Module, images: Tensor, layer: nn.Module | None) -> tuple[Tensor, Tensor]:
    """(embeddings, explained activation): the backbone's feature map, or ``layer``'s output via a hook."""
    if layer is None:
        output = backbone(images, return_feature_map=True)
        return output.embedding, output.feature_map
    captured: list[Tensor] = []
    handle = layer.register_forward_hook(lambda module, inputs, output: captured.append(output))
    try:
        output = backbone(images)
    finally:
        handle.remove()
    if len(captured) != 1 or not isinstance(captured[0], Tensor) or captured[0].ndim != 4:
        raise ValueError("layer must run exactly once per forward pass and output a (B, C, h, w) tensor")
    return (output.embedding if isinstance(output, BackboneOutput) else output), captured[0]
