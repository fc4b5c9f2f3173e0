"""Margin heads (lrfr.losses): hand-computed logits, gradients, invariants, validation and registry.

The hand-computed cases use 2-D embeddings and 3 class prototypes at known angles (0, 60 and 150
degrees, with different lengths so that the prototype normalisation is exercised), so every
``theta_j`` is a difference of angles and the expected logits are written out with ``math``.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import functional_call

from lrfr.losses import HEADS, CenterFace, ClassificationHead, CosineMarginHead, HeadOutput, build_head

DEG = math.pi / 180
PROTOTYPE_ANGLES = (0.0, 60 * DEG, 150 * DEG)
PROTOTYPE_LENGTHS = (1.0, 2.5, 0.4)
ALL_HEADS = (
    "softmax", "normface", "cosface", "arcface", "curricularface", "mv_softmax", "magface", "adaface", "centerface",
    "sphereface", "deepid2",
)
COSINE_HEADS = tuple(name for name in ALL_HEADS if name not in ("softmax", "centerface", "sphereface", "deepid2"))
PLAIN_NON_TARGET_HEADS = ("normface", "cosface", "arcface", "magface", "adaface")
STATEFUL_HEADS = ("curricularface", "adaface", "centerface", "sphereface")


def polar(angle: float, length: float = 1.0) -> list[float]:
    return [length * math.cos(angle), length * math.sin(angle)]


def cosine_head(name: str, **overrides) -> CosineMarginHead:
    """A float64 head in eval mode with the three hand-set prototypes."""
    head = build_head(name, embedding_size=2, num_classes=3, **overrides).double().eval()
    prototypes = [polar(a, n) for a, n in zip(PROTOTYPE_ANGLES, PROTOTYPE_LENGTHS)]
    with torch.no_grad():
        head.weight.copy_(torch.tensor(prototypes, dtype=torch.float64))
    return head


def embeddings(*points: tuple[float, float]) -> torch.Tensor:
    """``(angle, norm)`` pairs -> a float64 ``(B, 2)`` batch."""
    return torch.tensor([polar(angle, norm) for angle, norm in points], dtype=torch.float64)


def cos_to(angle: float, k: int) -> float:
    return math.cos(angle - PROTOTYPE_ANGLES[k])


def logits_row(head: ClassificationHead, angle: float, label: int, norm: float = 5.0) -> list[float]:
    return head.logits(embeddings((angle, norm)), torch.tensor([label]))[0].tolist()


# --------------------------------------------------------------------------------------------------
# Hand-computed logits
# --------------------------------------------------------------------------------------------------


def test_softmax_is_a_biased_linear_layer_with_cross_entropy():
    head = build_head("softmax", embedding_size=2, num_classes=3).double()
    with torch.no_grad():
        head.classifier.weight.copy_(torch.tensor([[1.0, 2.0], [0.0, -1.0], [3.0, 0.5]]))
        head.classifier.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    out = head(torch.tensor([[2.0, -1.0]], dtype=torch.float64), torch.tensor([1]))
    expected = [0.1, 0.8, 5.8]
    assert out.logits[0].tolist() == pytest.approx(expected)
    ce = -0.8 + math.log(sum(math.exp(z) for z in expected))
    assert out.terms.keys() == {"ce"}
    assert out.loss.item() == pytest.approx(ce)


def test_normface_is_scaled_cosine_on_normalised_features_and_prototypes():
    head = cosine_head("normface")
    assert head.scale == 64.0
    assert logits_row(head, 20 * DEG, 0) == pytest.approx([64 * cos_to(20 * DEG, k) for k in range(3)])


def test_cosface_subtracts_the_margin_from_the_target_cosine():
    row = logits_row(cosine_head("cosface"), 20 * DEG, 0)
    assert row == pytest.approx([64 * (math.cos(20 * DEG) - 0.35), 64 * math.cos(40 * DEG), 64 * math.cos(130 * DEG)])


def test_arcface_adds_the_angular_margin():
    row = logits_row(cosine_head("arcface"), 20 * DEG, 0)
    assert row == pytest.approx([64 * math.cos(20 * DEG + 0.5), 64 * math.cos(40 * DEG), 64 * math.cos(130 * DEG)])


def test_arcface_fallback_when_theta_plus_margin_exceeds_pi():
    theta = 170 * DEG  # embedding at -20 degrees, target prototype at 150 degrees
    assert theta + 0.5 > math.pi
    row = logits_row(cosine_head("arcface"), -20 * DEG, 2)
    assert row[2] == pytest.approx(64 * (math.cos(theta) - 0.5 * math.sin(0.5)))
    assert row[:2] == pytest.approx([64 * math.cos(20 * DEG), 64 * math.cos(80 * DEG)])
    # the fallback stays below the value of cos(theta + m) at the switch, cos(pi) = -1
    assert row[2] / 64 < -1


def test_arcface_easy_margin_drops_the_margin_past_ninety_degrees():
    head = cosine_head("arcface", easy_margin=True)
    assert logits_row(head, -20 * DEG, 2)[2] == pytest.approx(64 * math.cos(170 * DEG))
    assert logits_row(head, 20 * DEG, 0)[0] == pytest.approx(64 * math.cos(20 * DEG + 0.5))


def test_curricularface_modulates_hard_negatives_and_updates_t():
    head = cosine_head("curricularface").train()
    assert head.t.item() == 0.0
    # step 1: one sample at 40 degrees, label 0; class 1 (cos 20deg) is hard, class 2 (cos 110deg) is not
    row = logits_row(head, 40 * DEG, 0)
    t1 = 0.01 * math.cos(40 * DEG)
    assert head.t.item() == pytest.approx(t1)
    target = math.cos(40 * DEG + 0.5)
    hard = math.cos(20 * DEG)
    assert hard > target > math.cos(110 * DEG)
    assert row == pytest.approx([64 * target, 64 * hard * (t1 + hard), 64 * math.cos(110 * DEG)])

    # step 2: a batch of two; t moves by the mean target cosine before the negatives are modulated
    x = embeddings((40 * DEG, 3.0), (100 * DEG, 7.0))
    logits = head.logits(x, torch.tensor([0, 1]))
    t2 = 0.01 * (math.cos(40 * DEG) + math.cos(40 * DEG)) / 2 + 0.99 * t1
    assert head.t.item() == pytest.approx(t2)
    # sample 2: theta_y = 40deg; class 2 (cos 50deg) exceeds cos(40deg + 0.5) -> hard; class 0 (cos 100deg) easy
    hard2 = math.cos(50 * DEG)
    assert logits[1].tolist() == pytest.approx(
        [64 * math.cos(100 * DEG), 64 * target, 64 * hard2 * (t2 + hard2)]
    )

    head.eval()
    logits_row(head, 40 * DEG, 0)
    assert head.t.item() == pytest.approx(t2)  # frozen in eval mode


@pytest.mark.parametrize("mode", ["am", "arc"])
@pytest.mark.parametrize("adaptive", [True, False])
def test_mv_softmax_reweights_misclassified_negatives(mode, adaptive):
    head = cosine_head("mv_softmax", mode=mode, adaptive=adaptive)
    assert head.scale == 32.0 and head.t == 0.2
    margin = {"am": 0.35, "arc": 0.5}[mode]

    def target(theta: float) -> float:
        return math.cos(theta) - margin if mode == "am" else math.cos(theta + margin)

    def reweighted(cos: float) -> float:
        return 1.2 * cos + 0.2 if adaptive else cos + 0.2

    # at 40 degrees: class 1 (cos 20deg) is mis-classified in both modes, class 2 (cos 110deg) is not
    row = logits_row(head, 40 * DEG, 0)
    assert row == pytest.approx(
        [32 * target(40 * DEG), 32 * reweighted(math.cos(20 * DEG)), 32 * math.cos(110 * DEG)]
    )
    # at 10 degrees: class 1 (cos 50deg = 0.643) beats cos10 - 0.35 = 0.635 but not cos(10deg + 0.5) = 0.781
    row = logits_row(head, 10 * DEG, 0)
    class1 = math.cos(50 * DEG)
    assert (class1 > target(10 * DEG)) == (mode == "am")
    expected1 = reweighted(class1) if mode == "am" else class1
    assert row == pytest.approx([32 * target(10 * DEG), 32 * expected1, 32 * math.cos(140 * DEG)])


def test_magface_margin_depends_on_the_clamped_norm_and_adds_g():
    head = cosine_head("magface")
    x = embeddings((20 * DEG, 40.0), (-20 * DEG, 5.0), (20 * DEG, 200.0))
    out = head(x, torch.tensor([0, 2, 0]))
    m40 = (0.8 - 0.45) / (110 - 10) * (40 - 10) + 0.45  # 0.555
    assert out.logits[0, 0].item() == pytest.approx(64 * math.cos(20 * DEG + m40))
    # norm 5 is clamped to l_a = 10 -> m = 0.45; theta = 170deg + 0.45 > pi -> per-sample fallback
    assert out.logits[1, 2].item() == pytest.approx(64 * (math.cos(170 * DEG) - 0.45 * math.sin(0.45)))
    # norm 200 is clamped to u_a = 110 -> m = 0.8
    assert out.logits[2, 0].item() == pytest.approx(64 * math.cos(20 * DEG + 0.8))
    assert out.logits[0, 1:].tolist() == pytest.approx([64 * math.cos(40 * DEG), 64 * math.cos(130 * DEG)])

    def g(a: float) -> float:
        return a / 110**2 + 1 / a

    assert out.terms["magface_g"].item() == pytest.approx(35 * (g(40) + g(10) + g(110)) / 3)
    assert out.loss.item() == pytest.approx(out.terms["ce"].item() + out.terms["magface_g"].item())


@pytest.mark.parametrize("easy_margin", [False, True])
def test_magface_easy_margin_keeps_the_margin_only_where_the_target_cosine_is_positive(easy_margin):
    head = cosine_head("magface", easy_margin=easy_margin)
    m40 = (0.8 - 0.45) / (110 - 10) * (40 - 10) + 0.45  # norm 40 -> m = 0.555
    out = head(embeddings((20 * DEG, 40.0), (100 * DEG, 40.0)), torch.tensor([0, 0]))
    assert out.logits[0, 0].item() == pytest.approx(64 * math.cos(20 * DEG + m40))  # cos > 0: margin either way
    # cos(100 deg) < 0: the official default drops the margin; the paper's loss keeps it (100 deg + m < pi)
    expected = math.cos(100 * DEG) if easy_margin else math.cos(100 * DEG + m40)
    assert out.logits[1, 0].item() == pytest.approx(64 * expected)
    assert out.logits[1, 1:].tolist() == pytest.approx([64 * math.cos(40 * DEG), 64 * math.cos(50 * DEG)])


@pytest.mark.parametrize("mode", ["am", "arc"])
@pytest.mark.parametrize("easy_margin", [False, True])
def test_mv_softmax_easy_margin_drops_the_target_margin_but_not_the_misclassified_test(mode, easy_margin):
    head = build_head("mv_softmax", embedding_size=2, num_classes=3, mode=mode, easy_margin=easy_margin).double().eval()
    with torch.no_grad():  # the target 95 deg away (cos < 0), class 1 at 110 deg, class 2 at 180 deg
        head.weight.copy_(torch.tensor([polar(95 * DEG), polar(110 * DEG), polar(180 * DEG)], dtype=torch.float64))
    cos_y, cos_1 = math.cos(95 * DEG), math.cos(110 * DEG)
    margined = cos_y - 0.35 if mode == "am" else math.cos(95 * DEG + 0.5)
    assert margined < cos_1 < cos_y  # class 1 is mis-classified against the margined target only
    row = logits_row(head, 0.0, 0)
    target = cos_y if easy_margin else margined
    assert row == pytest.approx([32 * target, 32 * (1.2 * cos_1 + 0.2), 32 * -1.0])
    # where cos(theta_y) > 0 the option changes nothing
    with torch.no_grad():
        head.weight.copy_(torch.tensor([polar(40 * DEG), polar(60 * DEG), polar(180 * DEG)], dtype=torch.float64))
    plain = build_head("mv_softmax", embedding_size=2, num_classes=3, mode=mode).double().eval()
    plain.load_state_dict(head.state_dict())
    assert logits_row(head, 0.0, 0) == pytest.approx(logits_row(plain, 0.0, 0))


def test_magface_gradient_reaches_the_norm_through_margin_and_g():
    head = cosine_head("magface")
    norm = torch.tensor(40.0, dtype=torch.float64, requires_grad=True)
    out = head(torch.tensor([polar(20 * DEG)], dtype=torch.float64) * norm, torch.tensor([0]))
    (grad_g,) = torch.autograd.grad(out.terms["magface_g"], norm, retain_graph=True)
    (grad_ce,) = torch.autograd.grad(out.terms["ce"], norm)
    assert grad_g.item() == pytest.approx(35 * (1 / 110**2 - 1 / 40**2))
    # only the target logit depends on the norm: d ce / d a = (p_y - 1) * (-s sin(theta + m)) * m'(a)
    m, slope = (0.8 - 0.45) / 100 * 30 + 0.45, (0.8 - 0.45) / 100
    z = [64 * math.cos(20 * DEG + m), 64 * math.cos(40 * DEG), 64 * math.cos(130 * DEG)]
    p_y = math.exp(z[0]) / sum(math.exp(v) for v in z)
    assert grad_ce.item() == pytest.approx((p_y - 1) * -64 * math.sin(20 * DEG + m) * slope)


def test_adaface_margin_at_high_low_and_intermediate_norms():
    head = cosine_head("adaface")
    with torch.no_grad():
        head.batch_mean.fill_(10.0)
        head.batch_std.fill_(1.0)
    theta = 40 * DEG
    x = embeddings((theta, 50.0), (theta, 1.0), (theta, 11.0), (10 * DEG, 50.0))
    logits = head.logits(x, torch.zeros(4, dtype=torch.long))
    # high norm: scaler clipped to +1 -> s * (cos(theta - m) - 2m)
    assert logits[0, 0].item() == pytest.approx(64 * (math.cos(theta - 0.4) - 0.8))
    # low norm: scaler clipped to -1 -> s * cos(theta + m)
    assert logits[1, 0].item() == pytest.approx(64 * math.cos(theta + 0.4))
    # norm 11: scaler = (11 - 10) / (1 + 1e-3) * 0.333
    scaler = 1 / 1.001 * 0.333
    assert logits[2, 0].item() == pytest.approx(64 * (math.cos(theta - 0.4 * scaler) - 0.4 * (1 + scaler)))
    # theta - m < eps is clamped to eps
    assert logits[3, 0].item() == pytest.approx(64 * (math.cos(1e-3) - 0.8))
    assert logits[0, 1:].tolist() == pytest.approx([64 * math.cos(20 * DEG), 64 * math.cos(110 * DEG)])


def test_adaface_updates_running_stats_before_the_scaler_in_training_only():
    head = cosine_head("adaface").train()
    assert (head.batch_mean.item(), head.batch_std.item()) == (20.0, 100.0)
    logits = head.logits(embeddings((40 * DEG, 3.0), (100 * DEG, 5.0)), torch.tensor([0, 1]))
    mean = 0.99 * 20 + 0.01 * 4.0
    std = 0.99 * 100 + 0.01 * math.sqrt(2.0)  # unbiased std of (3, 5)
    assert head.batch_mean.item() == pytest.approx(mean)
    assert head.batch_std.item() == pytest.approx(std)
    for i, norm in enumerate((3.0, 5.0)):
        scaler = (norm - mean) / (std + 1e-3) * 0.333
        assert logits[i, i].item() == pytest.approx(64 * (math.cos(40 * DEG - 0.4 * scaler) - 0.4 * (1 + scaler)))
    head.eval()
    head.logits(embeddings((40 * DEG, 3.0)), torch.tensor([0]))
    assert head.batch_mean.item() == pytest.approx(mean)


def centerface_example() -> tuple[CenterFace, torch.Tensor, torch.Tensor]:
    head = build_head("centerface", embedding_size=2, num_classes=3).double().train()
    with torch.no_grad():
        head.classifier.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
        head.classifier.bias.zero_()
        head.centers.copy_(torch.tensor([[1.0, 1.0], [5.0, 5.0], [0.0, 0.0]]))
    x = torch.tensor([[1.0, 2.0], [3.0, 0.0], [-1.0, 1.0]], dtype=torch.float64, requires_grad=True)
    return head, x, torch.tensor([0, 0, 2])


def test_centerface_loss_and_center_update():
    head, x, labels = centerface_example()
    out = head(x, labels)
    # logits rows: x W^T = (1, 2, -3), (3, 0, -3), (-1, 1, 0)
    rows = [([1.0, 2.0, -3.0], 0), ([3.0, 0.0, -3.0], 0), ([-1.0, 1.0, 0.0], 2)]
    ce = sum(math.log(sum(math.exp(z) for z in row)) - row[y] for row, y in rows) / 3
    assert out.terms["ce"].item() == pytest.approx(ce)
    # ||x - c_y||^2 = 1, 5, 2 (centres before the update) -> 0.003 / 2 * 8 / 3
    assert out.terms["center"].item() == pytest.approx(0.003 / 2 * 8 / 3)
    # c_0: delta = ((0, -1) + (-2, 1)) / (1 + 2) = (-2/3, 0); c_2: delta = (1, -1) / 2; c_1 untouched
    expected = [[1 + 0.5 * 2 / 3, 1.0], [5.0, 5.0], [-0.25, 0.25]]
    assert head.centers.tolist() == [pytest.approx(row) for row in expected]
    head.eval()
    head(x, labels)
    assert head.centers.tolist() == [pytest.approx(row) for row in expected]


def test_centerface_center_gradient_is_lambda_times_offset_over_batch():
    head, x, labels = centerface_example()
    centers = head.centers.clone()
    (grad,) = torch.autograd.grad(head(x, labels).terms["center"], x)
    torch.testing.assert_close(grad, 0.003 * (x.detach() - centers[labels]) / 3)
    assert not any(p is head.centers for p in head.parameters())
    assert "centers" in head.state_dict()


# --------------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------------


GRADCHECK_CASES = [pytest.param(name, {}, id=name) for name in ALL_HEADS] + [
    pytest.param("mv_softmax", {"mode": "arc", "adaptive": False}, id="mv_softmax-arc-fixed")
]


@pytest.mark.parametrize(("name", "overrides"), GRADCHECK_CASES)
def test_gradcheck(name, overrides):
    """Float64 gradcheck w.r.t. the embeddings and every parameter.

    Heads with running buffers (CurricularFace t, AdaFace mean/std, CenterFace centres) run in eval
    mode, where the buffers are frozen, so every call evaluates the same function. Norms lie in
    (20, 80), inside MagFace's [l_a, u_a]; the seed keeps every cosine away from the fallback switch,
    the hard-negative masks and the clamps by far more than gradcheck's step. AdaFace detaches the
    norms by design (its scaler gets no gradient), so for it the norms are held fixed: the input is
    a direction ``u`` and the embedding ``normalize(u) * norm``.
    """
    generator = torch.Generator().manual_seed(0)
    head = build_head(name, embedding_size=4, num_classes=5, **overrides).double().train(name not in STATEFUL_HEADS)
    direction = F.normalize(torch.randn(3, 4, generator=generator, dtype=torch.float64), dim=1)
    norms = 20 + 60 * torch.rand(3, 1, generator=generator, dtype=torch.float64)
    x = (direction * norms).requires_grad_()
    labels = torch.tensor([0, 3, 4])
    names = [n for n, _ in head.named_parameters()]
    noise = [0.3 * torch.randn(p.shape, generator=generator, dtype=torch.float64) for p in head.parameters()]
    params = [(p.detach() + e).requires_grad_() for p, e in zip(head.parameters(), noise)]

    def f(x: torch.Tensor, *values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if name == "adaface":
            x = F.normalize(x, dim=1) * norms
        out = functional_call(head, dict(zip(names, values)), (x, labels))
        return out.logits, out.loss

    assert torch.autograd.gradcheck(f, (x, *params))


def test_arcface_gradient_flows_through_the_margin():
    """d loss / d phi (embedding angle) matches finite differences and the analytic derivative of
    -log softmax with target s cos(theta_y + m). A margin computed under no_grad and added as a
    constant offset would instead give the target's term (p_y - 1) * (-s sin(theta_y)): ``blocked``."""
    head = cosine_head("arcface")
    s, m, r = 64.0, 0.5, 3.0
    phi0 = 0.3  # theta_0 = phi, theta_1 = 60deg - phi, theta_2 = 150deg - phi

    def loss(phi: float | torch.Tensor) -> torch.Tensor:
        phi = torch.as_tensor(phi, dtype=torch.float64)
        x = r * torch.stack([torch.cos(phi), torch.sin(phi)])[None]
        return head(x, torch.tensor([0])).loss

    phi = torch.tensor(phi0, dtype=torch.float64, requires_grad=True)
    (autograd,) = torch.autograd.grad(loss(phi), phi)
    h = 1e-6
    finite = (loss(phi0 + h) - loss(phi0 - h)) / (2 * h)

    thetas = [phi0, PROTOTYPE_ANGLES[1] - phi0, PROTOTYPE_ANGLES[2] - phi0]
    dtheta_dphi = [1.0, -1.0, -1.0]
    z = [s * math.cos(thetas[0] + m), s * math.cos(thetas[1]), s * math.cos(thetas[2])]
    p = [math.exp(v - max(z)) for v in z]
    p = [v / sum(p) for v in p]
    dz_dtheta = [-s * math.sin(thetas[0] + m), -s * math.sin(thetas[1]), -s * math.sin(thetas[2])]
    analytic = sum((p[k] - (k == 0)) * dz_dtheta[k] * dtheta_dphi[k] for k in range(3))
    blocked = analytic - (p[0] - 1) * dz_dtheta[0] + (p[0] - 1) * -s * math.sin(thetas[0])

    assert autograd.item() == pytest.approx(analytic, rel=1e-9)
    assert finite.item() == pytest.approx(analytic, rel=1e-6)
    assert abs(autograd.item() - blocked) > 1.0


# --------------------------------------------------------------------------------------------------
# Invariants
# --------------------------------------------------------------------------------------------------


@settings(max_examples=120, deadline=None)
@given(name=st.sampled_from(COSINE_HEADS), training=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_target_logit_never_exceeds_the_scaled_cosine(name, training, seed):
    """psi(theta_y) <= cos(theta_y) (1e-5 slack, in cosine units) for random float32 batches whose
    norms span MagFace's and AdaFace's clamps, plus features exactly on +/- their prototype (the
    slack covers AdaFace's acos clamp, which at theta = pi exceeds cos by 1 - cos(eps) = 5e-7)."""
    generator = torch.Generator().manual_seed(seed)
    head = build_head(name, embedding_size=3, num_classes=4).train(training)
    labels = torch.randint(0, 4, (8,), generator=generator)
    direction = F.normalize(torch.randn(8, 3, generator=generator), dim=1)
    direction[:2] = F.normalize(head.weight.detach()[labels[:2]], dim=1) * torch.tensor([[1.0], [-1.0]])
    norms = torch.exp(torch.empty(8, 1).uniform_(math.log(0.1), math.log(300.0), generator=generator))
    x = direction * norms
    with torch.no_grad():
        logits = head.logits(x, labels)
        cos = head.cosine(x)
    target = logits.gather(1, labels[:, None]).squeeze(1) / head.scale
    assert torch.all(target <= cos.gather(1, labels[:, None]).squeeze(1) + 1e-5)
    if name in PLAIN_NON_TARGET_HEADS:
        others = F.one_hot(labels, 4) == 0
        torch.testing.assert_close(logits[others], head.scale * cos[others])


@pytest.mark.parametrize("name", ALL_HEADS)
def test_forward_matches_logits_and_loss_sums_terms(name):
    head = build_head(name, embedding_size=4, num_classes=5).eval()
    x = 30 * torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    out = head(x, labels)
    assert isinstance(out, HeadOutput)
    torch.testing.assert_close(out.logits, head.logits(x, labels))
    torch.testing.assert_close(out.terms["ce"], F.cross_entropy(out.logits, labels))
    torch.testing.assert_close(out.loss, sum(out.terms.values()))


def test_logits_are_float32_under_autocast():
    head = build_head("arcface", embedding_size=4, num_classes=5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = head(torch.randn(2, 4).bfloat16(), torch.tensor([0, 1]))
    assert out.logits.dtype == torch.float32 and out.loss.dtype == torch.float32


def test_running_state_is_checkpointed_as_buffers():
    expected = {"curricularface": {"t"}, "adaface": {"batch_mean", "batch_std"}, "centerface": {"centers"},
                "sphereface": {"iteration"}}
    for name, buffers in expected.items():
        head = build_head(name, embedding_size=4, num_classes=5)
        assert {n for n, _ in head.named_buffers()} == buffers
        assert buffers <= head.state_dict().keys()


# --------------------------------------------------------------------------------------------------
# Validation and registry
# --------------------------------------------------------------------------------------------------

BAD_INPUTS = {
    "wrong embedding dim": (torch.randn(2, 3), torch.tensor([0, 1]), r"shape \(batch, 4\), got \(2, 3\)"),
    "1-D embeddings": (torch.randn(4), torch.tensor([0]), r"shape \(batch, 4\), got \(4,\)"),
    "integer embeddings": (torch.ones(2, 4, dtype=torch.long), torch.tensor([0, 1]), "floating-point"),
    "empty batch": (torch.randn(0, 4), torch.tensor([], dtype=torch.long), "empty batch"),
    "int32 labels": (torch.randn(2, 4), torch.tensor([0, 1], dtype=torch.int32), r"int64 .*got torch.int32"),
    "2-D labels": (torch.randn(2, 4), torch.tensor([[0], [1]]), r"labels must have shape \(batch,\)"),
    "batch mismatch": (torch.randn(2, 4), torch.tensor([0, 1, 2]), "2 embeddings but 3 labels"),
    "label too large": (torch.randn(2, 4), torch.tensor([0, 5]), r"\[0, 4\].*got values in \[0, 5\]"),
    "negative label": (torch.randn(2, 4), torch.tensor([-1, 1]), r"\[0, 4\].*got values in \[-1, 1\]"),
}


@pytest.mark.parametrize("name", ALL_HEADS)
@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_inputs_raise_value_error(name, case):
    x, labels, message = BAD_INPUTS[case]
    head = build_head(name, embedding_size=4, num_classes=5)
    with pytest.raises(ValueError, match=message):
        head(x, labels)
    with pytest.raises(ValueError, match=message):
        head.logits(x, labels)


def test_bad_construction_arguments_raise_value_error():
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        build_head("arcface", embedding_size=4, num_classes=0)
    with pytest.raises(ValueError, match="scale must be positive"):
        build_head("cosface", embedding_size=4, num_classes=2, scale=0.0)
    with pytest.raises(ValueError, match="mode must be 'am' or 'arc'"):
        build_head("mv_softmax", embedding_size=4, num_classes=2, mode="cos")
    with pytest.raises(ValueError, match="lower_norm < upper_norm"):
        build_head("magface", embedding_size=4, num_classes=2, lower_norm=50.0, upper_norm=10.0)
    with pytest.raises(ValueError, match="at least 2 samples"):
        build_head("adaface", embedding_size=4, num_classes=2).train()(torch.randn(1, 4), torch.tensor([0]))


PAPER_DEFAULTS = {
    "softmax": {},
    "normface": {"scale": 64.0},
    "cosface": {"scale": 64.0, "margin": 0.35},
    "arcface": {"scale": 64.0, "margin": 0.5, "easy_margin": False},
    "curricularface": {"scale": 64.0, "margin": 0.5, "momentum": 0.01},
    "mv_softmax": {"scale": 32.0, "mode": "am", "margin": 0.35, "t": 0.2, "adaptive": True},
    "magface": {"scale": 64.0, "lower_norm": 10.0, "upper_norm": 110.0, "lower_margin": 0.45,
                "upper_margin": 0.8, "lambda_g": 35.0},
    "adaface": {"scale": 64.0, "margin": 0.4, "h": 0.333, "eps": 1e-3, "t_alpha": 0.01},
    "centerface": {"lambda_c": 0.003, "alpha": 0.5},
    "sphereface": {"margin": 4, "annealing": False, "lambda_base": 1000.0, "lambda_gamma": 0.12, "lambda_min": 5.0},
    "deepid2": {"lambda_ve": 0.05},
}
OVERRIDES = {
    "softmax": {},
    "normface": {"scale": 30.0},
    "cosface": {"margin": 0.4},
    "arcface": {"margin": 0.45, "easy_margin": True},
    "curricularface": {"margin": 0.4},
    "mv_softmax": {"mode": "arc", "adaptive": False},
    "magface": {"lambda_g": 20.0},
    "adaface": {"h": 0.5},
    "centerface": {"lambda_c": 0.01},
    "sphereface": {"margin": 2, "annealing": True},
    "deepid2": {"lambda_ve": 0.1, "margin": 2.0},
}


def test_registry_holds_every_head():
    assert set(HEADS.names()) == set(ALL_HEADS)


@pytest.mark.parametrize("name", ALL_HEADS)
def test_build_head_defaults_and_overrides(name):
    head = build_head(name, embedding_size=8, num_classes=7)
    assert isinstance(head, ClassificationHead)
    assert (head.embedding_size, head.num_classes) == (8, 7)
    for key, value in PAPER_DEFAULTS[name].items():
        assert getattr(head, key) == value, key
    if isinstance(head, CosineMarginHead):
        assert head.weight.shape == (7, 8)
        assert 0.005 < head.weight.std().item() < 0.02
    built = build_head(name, embedding_size=8, num_classes=7, **OVERRIDES[name])
    for key, value in OVERRIDES[name].items():
        assert getattr(built, key) == value, key


def test_mv_softmax_arc_mode_defaults_to_margin_half():
    assert build_head("mv_softmax", embedding_size=2, num_classes=2, mode="arc").margin == 0.5


def test_unknown_head_raises_key_error():
    with pytest.raises(KeyError, match="unknown head 'a_softmax'"):
        build_head("a_softmax", embedding_size=8, num_classes=7)
