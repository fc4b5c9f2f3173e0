"""Grad-CAM for face embeddings (Chai et al. 2023, Fig. 5) on a hand-built backbone with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lrfr.models import build_backbone
from lrfr.models.base import Backbone
from lrfr.protocols.gradcam import grad_cam


class PoolLinearHead(nn.Sequential):
    """Global average pool -> dropout -> Linear(2, 2) with identity weight and bias (0, 1)."""

    def __init__(self, channels: int, map_size: tuple[int, int], embedding_size: int) -> None:
        linear = nn.Linear(channels, embedding_size)
        with torch.no_grad():
            linear.weight.copy_(torch.eye(embedding_size, channels))
            linear.bias.copy_(torch.tensor([0.0, 1.0]))
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), linear)


def tiny_backbone(pool: int = 1) -> Backbone:
    """Feature map = image channels 0 and 1 (average-pooled by ``pool``); embedding = (mean A_0, mean A_1 + 1).

    For target (1, 0) and A_1 = 0, d cos / d A_0 > 0 everywhere and A_1 contributes nothing, so the
    Grad-CAM map is A_0 / max(A_0) (upsampled).
    """
    select = nn.Conv2d(3, 2, 1, bias=False)
    with torch.no_grad():
        select.weight.copy_(torch.eye(2, 3)[:, :, None, None])
    body = nn.Sequential(select, nn.AvgPool2d(pool)) if pool > 1 else nn.Sequential(select)
    return Backbone(body, PoolLinearHead, input_size=8, embedding_size=2, total_stride=pool)


def pattern_images() -> torch.Tensor:
    """Two 8x8 images whose channel 0 holds a known non-negative pattern and channel 1 is zero."""
    images = torch.zeros(2, 3, 8, 8)
    images[0, 0, 2:5, 3:6] = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
    images[1, 0] = torch.linspace(0, 3, 8)[None, :].expand(8, 8)
    images[:, 2] = torch.randn(2, 8, 8)  # ignored by the body
    return images


def test_known_pattern_is_recovered_exactly() -> None:
    images = pattern_images()
    cam = grad_cam(tiny_backbone(), images, torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    expected = images[:, 0] / images[:, 0].amax(dim=(1, 2), keepdim=True)
    np.testing.assert_allclose(cam, expected.numpy(), atol=1e-6)


def test_coarse_map_is_upsampled_bilinearly() -> None:
    images = pattern_images()
    cam = grad_cam(tiny_backbone(pool=2), images, torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    coarse = F.avg_pool2d(images[:, :1], 2)
    expected = F.interpolate(coarse, size=(8, 8), mode="bilinear", align_corners=False)[:, 0]
    expected = expected / expected.amax(dim=(1, 2), keepdim=True)
    assert cam.shape == (2, 8, 8)
    np.testing.assert_allclose(cam, expected.numpy(), atol=1e-6)


def test_no_positive_evidence_gives_an_all_zero_map() -> None:
    # Target (0, 1): the gradient on A_0 is negative, A_1 is zero, so ReLU leaves nothing.
    cam = grad_cam(tiny_backbone(), pattern_images(), torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
    assert np.all(cam == 0)


def test_a_score_function_sees_the_image_indices() -> None:
    images = pattern_images()
    targets = np.array([[1.0, 0.0], [0.0, 1.0]])
    by_vector = grad_cam(tiny_backbone(), images, targets, batch_size=1)
    by_function = grad_cam(
        tiny_backbone(), images, lambda e, i: F.cosine_similarity(e, torch.tensor(targets, dtype=torch.float32)[i]),
        batch_size=1,
    )
    np.testing.assert_allclose(by_function, by_vector, atol=1e-6)
    assert by_vector[0].max() == 1 and np.all(by_vector[1] == 0)


def test_real_backbone_shape_range_mode_and_gradients() -> None:
    torch.manual_seed(0)
    backbone = build_backbone("quick", embedding_size=8, widths=(8, 16), blocks=(1, 1))
    backbone.train()
    images = torch.randn(5, 3, 32, 32)
    with torch.no_grad():  # the caller's grad mode must not matter
        cam = grad_cam(backbone, images, torch.randn(5, 8), batch_size=2)
    assert cam.shape == (5, 32, 32) and cam.dtype == np.float32
    assert cam.min() >= 0 and cam.max() <= 1
    assert np.all((cam.max(axis=(1, 2)) == 1) | (cam.max(axis=(1, 2)) == 0))
    assert all(module.training for module in backbone.modules())
    assert all(parameter.grad is None for parameter in backbone.parameters())


def test_an_explicit_layer_is_explained() -> None:
    backbone = tiny_backbone()
    images = pattern_images()
    cam = grad_cam(backbone, images, torch.tensor([[1.0, 0.0], [1.0, 0.0]]), layer=backbone.body[0])
    np.testing.assert_allclose(cam, grad_cam(backbone, images, torch.tensor([[1.0, 0.0], [1.0, 0.0]])), atol=1e-6)


def test_targets_must_match_the_images() -> None:
    with pytest.raises(ValueError, match="one per image"):
        grad_cam(tiny_backbone(), pattern_images(), torch.ones(3, 2))
