"""Cheng et al. Table 3's generic FR baselines: A-Softmax (SphereFace), DeepID2 and VGG-style backbones."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lrfr.losses import SphereFace, angular_margin_psi, build_head, chebyshev_cosine, contrastive_verification
from lrfr.models import build_backbone


def test_chebyshev_cosine_is_cos_of_m_theta():
    theta = torch.linspace(0, math.pi, 50, dtype=torch.float64)
    for m in range(0, 6):
        assert torch.allclose(chebyshev_cosine(torch.cos(theta), m), torch.cos(m * theta), atol=1e-12)


def test_psi_is_continuous_decreasing_and_ends_at_minus_2m_plus_1():
    theta = torch.linspace(0, math.pi, 20001, dtype=torch.float64)
    psi = angular_margin_psi(torch.cos(theta), 4)
    assert psi[0].item() == pytest.approx(1.0) and psi[-1].item() == pytest.approx(-7.0)
    steps = psi.diff()
    assert (steps <= 1e-9).all()  # monotonically decreasing on [0, pi]
    assert steps.abs().max() < 1e-2  # no jumps at the k pi / m boundaries
    manual = torch.stack([(-1) ** k * torch.cos(4 * t) - 2 * k for t in theta[::1000] for k in [min(3, int(4 * t / math.pi))]])
    assert torch.allclose(psi[::1000], manual, atol=1e-9)


def _head(weight: torch.Tensor, **kwargs) -> SphereFace:
    head = SphereFace(weight.shape[1], weight.shape[0], **kwargs).double()
    with torch.no_grad():
        head.weight.copy_(weight)
    return head


def test_a_softmax_logits_and_loss_by_hand():
    head = _head(torch.tensor([[3.0, 3.0], [0.0, 5.0]], dtype=torch.float64)).eval()
    embeddings = torch.tensor([[2.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    labels = torch.tensor([0, 1])
    # sample 0: theta_0 = 45 deg, m theta = 180 deg, psi = -1 -> logit -2; cos theta_1 = 0 -> 0
    # sample 1: theta_1 = 0, psi = 1 -> logit 3; theta_0 = 45 deg, no margin -> 3 cos 45
    expected_logits = torch.tensor([[-2.0, 0.0], [3 / math.sqrt(2), 3.0]], dtype=torch.float64)
    output = head(embeddings, labels)
    assert torch.allclose(output.logits, expected_logits, atol=1e-9)
    expected_ce = (math.log(1 + math.exp(2.0)) + math.log(1 + math.exp(3 / math.sqrt(2) - 3))) / 2
    assert output.terms["ce"].item() == pytest.approx(expected_ce, abs=1e-9)


def test_a_softmax_gradient_matches_finite_differences():
    torch.manual_seed(0)
    head = SphereFace(5, 4).double().eval()
    embeddings = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    assert torch.autograd.gradcheck(lambda e, w: _loss(head, e, w, labels), (embeddings, head.weight.detach().clone().requires_grad_()))


def _loss(head: SphereFace, embeddings: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    norms = embeddings.norm(dim=1, keepdim=True)
    cos = F.linear(F.normalize(embeddings, dim=1), F.normalize(weight, dim=1))
    target = angular_margin_psi(cos.gather(1, labels[:, None]), head.margin)
    return F.cross_entropy(norms * cos.scatter(1, labels[:, None], target), labels)


def test_a_softmax_head_gradient_equals_the_functional_form():
    torch.manual_seed(1)
    head = SphereFace(5, 4).double().eval()
    embeddings = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    (grad_head,) = torch.autograd.grad(head(embeddings, labels).loss, embeddings)
    (grad_form,) = torch.autograd.grad(_loss(head, embeddings, head.weight, labels), embeddings)
    assert torch.allclose(grad_head, grad_form)


def test_official_annealing_blends_in_the_plain_cosine_and_decays():
    head = _head(torch.tensor([[3.0, 3.0], [0.0, 5.0]], dtype=torch.float64), annealing=True)
    assert head.current_lambda() == pytest.approx(1000.0)
    logits = head.logits(torch.tensor([[2.0, 0.0]], dtype=torch.float64), torch.tensor([0]))
    blended = (1000 * 2 * math.cos(math.pi / 4) + 2 * -1.0) / 1001  # (lambda ||x|| cos + ||x|| psi) / (1 + lambda)
    assert logits[0, 0].item() == pytest.approx(blended)
    assert head.current_lambda() == pytest.approx(1000 / 1.12)  # one training step taken
    head.iteration.fill_(10**6)
    assert head.current_lambda() == 5.0
    assert build_head("sphereface", embedding_size=4, num_classes=3).margin == 4


def test_deepid2_verification_by_hand():
    embeddings = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    # (0,1) same, d = 5 -> 12.5; (0,2) different, d = 1 -> (2 - 1)^2 / 2; (1,2) different, d > 2 -> 0
    assert contrastive_verification(embeddings, labels, margin=2.0).item() == pytest.approx(13.0 / 3)
    head = build_head("deepid2", embedding_size=2, num_classes=2, margin=2.0)
    terms = head(embeddings, labels).terms
    assert terms["verification"].item() == pytest.approx(0.05 * 13.0 / 3)
    assert set(terms) == {"ce", "verification"}


@pytest.mark.parametrize("name, kwargs", [
    ("deepid2", {}),
    ("vgg", {"widths": (8, 8, 16, 16, 16), "fc_size": 32}),
])
@pytest.mark.parametrize("size", [64, 112])
def test_table3_backbones_embed_faces(name, kwargs, size):
    backbone = build_backbone(name, input_size=size, embedding_size=24, **kwargs).eval()
    output = backbone(torch.zeros(2, 3, size, size), return_feature_map=True)
    assert output.embedding.shape == (2, 24)
    assert output.feature_map.shape[1:] == (backbone.feature_channels, *backbone.feature_map_size)


def test_deepid2_embedding_reads_both_pool3_and_conv4():
    backbone = build_backbone("deepid2", input_size=64)
    pool3 = backbone.features(torch.zeros(1, 3, 64, 64))
    assert pool3.shape[1] == 60 and backbone.embedding_size == 160
    conv4_size = (pool3.shape[2] - 1) * (pool3.shape[3] - 1)
    assert backbone.head.fc.in_features == 60 * pool3.shape[2] * pool3.shape[3] + 80 * conv4_size
    with pytest.raises(ValueError, match="too small"):
        build_backbone("deepid2", input_size=24)
    vgg16 = build_backbone("vgg", input_size=112)
    assert len([m for m in vgg16.body if isinstance(m, torch.nn.Conv2d)]) == 13


@pytest.mark.parametrize("name, kwargs", [("deepid2", {}), ("vgg", {"widths": (8, 8, 16, 16, 16), "fc_size": 32})])
def test_table3_backbones_keep_the_backbone_contract(name, kwargs):
    model = build_backbone(name, input_size=(48, 80), embedding_size=12, **kwargs).train()
    output = model(torch.randn(2, 3, 48, 80), return_feature_map=True)
    assert output.embedding.shape == (2, 12)
    output.feature_map.retain_grad()
    (output.embedding * torch.randn_like(output.embedding)).sum().backward()
    assert output.feature_map.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"input_size="):
        model.eval()(torch.zeros(2, 3, 64, 64))
