"""Ling et al. 2023's feature distances: L_p (Eq. 1-2), LogExp (Eq. 3-6) and the public code's variant."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lrfr.losses import (
    FEATURE_DISTANCES,
    logexp_batch_loss,
    logexp_distance,
    logexp_gradient,
    lp_distance,
    smooth_l1_distance,
)
from lrfr.training import FeatureDistanceTerm, StepContext


def naive_logexp(x: torch.Tensor, y: torch.Tensor, p: float) -> torch.Tensor:
    """Eq. 5 written out in float64 (fine as long as no exponent passes ~700)."""
    x, y = x.double(), y.double()
    return torch.log(1 + (torch.exp((x - y).abs() ** p) - 1).sum(dim=1)) / (p * x.shape[1])


def test_logexp_p1_value_and_gradient_by_hand():
    x = torch.tensor([[0.5, 0.0, -0.2]], requires_grad=True)
    y = torch.zeros(1, 3)
    # a = |x - y| = (0.5, 0, 0.2); S = sum(exp(a) - 1); L = log(1 + S) / 3 (Eq. 3)
    s = (math.exp(0.5) - 1) + 0.0 + (math.exp(0.2) - 1)
    expected = math.log(1 + s) / 3
    value = logexp_distance(x, y, p=1)
    assert value.item() == pytest.approx(expected, rel=1e-6)
    value.sum().backward()
    # Eq. 4: (1/D) * sign * exp(a_i) / (1 + S); sign(0) = 0 (autograd's subgradient of |.| at 0)
    by_hand = [math.exp(0.5) / (1 + s) / 3, 0.0, -math.exp(0.2) / (1 + s) / 3]
    assert x.grad[0].tolist() == pytest.approx(by_hand, rel=1e-6)
    assert logexp_gradient(x.detach(), y, p=1)[0].tolist() == pytest.approx(by_hand, rel=1e-6)


def test_logexp_p2_value_and_gradient_by_hand():
    x = torch.tensor([[0.5, -1.0]], requires_grad=True)
    y = torch.tensor([[0.1, 0.0]])
    # d = (0.4, -1.0), a = d^2 = (0.16, 1.0); L = log(1 + S) / (2 * 2) (Eq. 5)
    s = (math.exp(0.16) - 1) + (math.exp(1.0) - 1)
    value = logexp_distance(x, y, p=2)
    assert value.item() == pytest.approx(math.log(1 + s) / 4, rel=1e-6)
    value.sum().backward()
    # dL/dx_i = 1/(pD) * p |d_i|^(p-1) sign(d_i) exp(a_i) / (1 + S)
    by_hand = [0.5 * 0.4 * math.exp(0.16) / (1 + s), -0.5 * 1.0 * math.exp(1.0) / (1 + s)]
    assert x.grad[0].tolist() == pytest.approx(by_hand, rel=1e-6)
    assert logexp_gradient(x.detach(), y, p=2)[0].tolist() == pytest.approx(by_hand, rel=1e-6)


@pytest.mark.parametrize("p", [1.0, 2.0, 1.5])
def test_logexp_gradient_matches_autograd_and_gradcheck(p):
    generator = torch.Generator().manual_seed(int(p * 10))
    x = torch.randn(5, 16, dtype=torch.float64, generator=generator, requires_grad=True)
    y = torch.randn(5, 16, dtype=torch.float64, generator=generator)
    assert torch.autograd.gradcheck(lambda a: logexp_distance(a, y, p), (x,))
    logexp_distance(x, y, p).sum().backward()
    torch.testing.assert_close(x.grad, logexp_gradient(x.detach(), y, p))
    torch.testing.assert_close(logexp_distance(x, y, p), naive_logexp(x, y, p))


def test_eq6_remainder_term_sets_the_gradient_of_one_dimension():
    """Eq. 6: with C = sum_{j != i}(e^{a_j} - 1), dL/dx_i = (1/D) e^{a_i} / (C + e^{a_i}) (p = 1)."""
    error, dims = 0.3, 4
    for rest in (0.0, 0.5, 2.0):
        x = torch.tensor([[error, rest, 0.0, 0.0]])
        c = math.exp(rest) - 1
        expected = math.exp(error) / (c + math.exp(error)) / dims
        assert logexp_gradient(x, torch.zeros_like(x))[0, 0].item() == pytest.approx(expected, rel=1e-6)
    larger_rest = logexp_gradient(torch.tensor([[error, 2.0, 0, 0]]), torch.zeros(1, 4))[0, 0]
    smaller_rest = logexp_gradient(torch.tensor([[error, 0.5, 0, 0]]), torch.zeros(1, 4))[0, 0]
    assert larger_rest < smaller_rest  # a large error elsewhere shrinks this dimension's gradient
    alone = logexp_gradient(torch.tensor([[error, 0, 0, 0]]), torch.zeros(1, 4))[0, 0]
    assert alone.item() == pytest.approx(1 / dims)  # C = 0: the L1 gradient 1/D


@pytest.mark.parametrize("p", [1.0, 2.0])
def test_logexp_is_stable_at_d512_with_large_and_tiny_errors(p):
    generator = torch.Generator().manual_seed(3)
    base = torch.randn(8, 512, generator=generator)
    other = torch.randn(8, 512, generator=generator)
    for scale in (1e-7, 1.0, 30.0, 300.0):  # exp(300) overflows float32 (and float64 for p = 2)
        x = (base * scale).requires_grad_()
        y = other * scale
        value = logexp_distance(x, y, p)
        value.sum().backward()
        assert torch.isfinite(value).all() and torch.isfinite(x.grad).all(), scale
        torch.testing.assert_close(x.grad, logexp_gradient(x.detach(), y, p), rtol=1e-4, atol=1e-12)
        exponents = ((x.detach() - y).abs() ** p).double()
        if exponents.max() < 700:
            torch.testing.assert_close(value.double(), naive_logexp(x.detach(), y, p), rtol=1e-5, atol=1e-15)
        else:  # log(1 + sum(e^a - 1)) = max(a) + log(sum e^(a - max) - (D-1) e^-max) exactly
            top = exponents.max(dim=1).values
            reference = (top + torch.log(torch.exp(exponents - top[:, None]).sum(dim=1))) / (p * 512)
            torch.testing.assert_close(value.double(), reference, rtol=1e-6, atol=0.0)
    tiny = logexp_distance(base * 1e-7, other * 1e-7, 1.0)
    first_order = (base - other).abs().sum(dim=1) * 1e-7 / 512  # log(1 + S) ~ S for tiny errors
    torch.testing.assert_close(tiny, first_order, rtol=1e-4, atol=0.0)


def test_logexp_half_precision_inputs_are_evaluated_in_float32():
    x, y = torch.full((2, 512), 60.0, dtype=torch.float16), torch.zeros(2, 512, dtype=torch.float16)
    value = logexp_distance(x, y)
    assert value.dtype == torch.float32 and torch.isfinite(value).all()
    assert value[0].item() == pytest.approx((60 + math.log(512)) / 512, rel=1e-5)


def test_lp_is_l1_and_l2_of_eq1_eq2():
    x, y = torch.tensor([[1.0, -2.0, 0.5, 0.0]]), torch.tensor([[0.0, 0.0, 0.0, 1.0]])
    assert lp_distance(x, y, 1).item() == pytest.approx((1 + 2 + 0.5 + 1) / 4)
    assert lp_distance(x, y, 2).item() == pytest.approx((1 + 4 + 0.25 + 1) / (2 * 4))
    xg = x.clone().requires_grad_()
    lp_distance(xg, y, 2).sum().backward()
    torch.testing.assert_close(xg.grad, (x - y) / 4)  # Eq. 2: (1/D)(x_i - y_i)
    xg.grad = None
    lp_distance(xg, y, 1).sum().backward()
    torch.testing.assert_close(xg.grad, torch.sign(x - y) / 4)  # Eq. 1: (1/D)(+-1)


def test_smooth_l1_switches_from_quadratic_to_linear_at_beta():
    x, y = torch.tensor([[0.5, 3.0]]), torch.zeros(1, 2)
    assert smooth_l1_distance(x, y).item() == pytest.approx((0.5 * 0.25 + (3.0 - 0.5)) / 2)


def test_public_code_variant_takes_one_log_over_the_batch():
    x = torch.tensor([[0.5, 0.0, -0.2], [1.0, 1.0, 1.0]])
    y = torch.zeros(2, 3)
    total = (math.exp(0.5) - 1) + (math.exp(0.2) - 1) + 3 * (math.exp(1.0) - 1)
    assert logexp_batch_loss(x, y).item() == pytest.approx(math.log(1 + total) / 2, rel=1e-6)
    assert logexp_batch_loss(x, y, p=2).item() == pytest.approx(
        math.log(1 + (math.exp(0.25) - 1) + (math.exp(0.04) - 1) + 3 * (math.exp(1.0) - 1)) / (2 * 2), rel=1e-6
    )
    # a badly matched pair shrinks the gradient of every other pair (not so per sample)
    far = torch.cat([x, torch.full((1, 3), 5.0)])
    near_grad = torch.autograd.functional.jacobian(lambda a: logexp_batch_loss(a, torch.zeros(2, 3)), x)[0]
    far_grad = torch.autograd.functional.jacobian(lambda a: logexp_batch_loss(a, torch.zeros(3, 3)), far)[0]
    assert far_grad.abs().sum() < 0.2 * near_grad.abs().sum()
    per_sample = lambda a: logexp_distance(a, torch.zeros(len(a), 3)).sum()  # noqa: E731
    torch.testing.assert_close(torch.func.grad(per_sample)(far)[0], torch.func.grad(per_sample)(x)[0])


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="p must be a finite number >= 1"):
        logexp_distance(torch.zeros(1, 2), torch.zeros(1, 2), p=0.5)
    with pytest.raises(ValueError, match="two \\(batch, dim\\) tensors of one shape"):
        lp_distance(torch.zeros(2, 3), torch.zeros(2, 4))


class _Views:
    """A StepContext stand-in serving fixed embeddings for two input keys."""

    def __init__(self, **embeddings: torch.Tensor) -> None:
        self.embeddings = embeddings

    def embed(self, key: str):
        return type("Out", (), {"embedding": self.embeddings[key]})()


def test_feature_distance_term_normalises_then_applies_eq5():
    hr, lr = torch.randn(4, 8) * 3, torch.randn(4, 8)
    term = FeatureDistanceTerm("dist", a="main.hr", b="main.lr", distance="logexp",
                               distance_kwargs={"p": 2}, normalize=True)
    ctx: StepContext = _Views(**{"main.hr": hr, "main.lr": lr})  # type: ignore[assignment]
    expected = logexp_distance(F.normalize(hr, dim=1), F.normalize(lr, dim=1), 2).mean()
    torch.testing.assert_close(term(ctx), expected)
    assert set(FEATURE_DISTANCES) >= {"lp", "logexp", "logexp_batch", "smooth_l1", "mse", "l1", "l2"}
