"""Bootstrap over identities, paired differences and verdicts (lrfr.stats) against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrfr import stats
from lrfr.protocols.verification import tpr_at_far

Z95 = 1.959964


def test_bernoulli_rank1_interval_matches_the_normal_closed_form():
    # one probe per identity, hit with p = 0.3: the interval is p_hat +- 1.96 sqrt(p_hat (1 - p_hat) / n)
    rng = np.random.default_rng(1)
    n = 4000
    hits = (rng.random(n) < 0.3).astype(float)
    boot = stats.Bootstrap(np.arange(n), resamples=4000, seed=0)
    estimate = boot.estimate(stats.mean(hits, scale=100))
    p = hits.mean()
    half = 100 * Z95 * math.sqrt(p * (1 - p) / n)
    assert estimate.value == pytest.approx(100 * p)
    assert estimate.low == pytest.approx(100 * p - half, abs=0.1 * half)
    assert estimate.high == pytest.approx(100 * p + half, abs=0.1 * half)
    assert estimate.units == n and estimate.resamples == 4000


def test_identities_not_probes_are_resampled():
    # three probes per identity that always succeed or fail together: the standard error is that of
    # n identities, sqrt(3) wider than a bootstrap over the 3n probes would give
    rng = np.random.default_rng(2)
    n = 3000
    per_identity = rng.random(n) < 0.4
    hits, labels = np.repeat(per_identity, 3).astype(float), np.repeat(np.arange(n), 3)
    samples = stats.Bootstrap(labels, resamples=3000, seed=0).samples(stats.mean(hits))
    p = per_identity.mean()
    assert samples.std() == pytest.approx(math.sqrt(p * (1 - p) / n), rel=0.08)


def test_paired_difference_of_identical_inputs_is_exactly_zero_with_zero_width():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 50, 300)
    ranks = rng.integers(1, 30, 300)
    a, b = stats.mean(stats.rank_hits(ranks, 1), 100), stats.mean(stats.rank_hits(ranks.copy(), 1), 100)
    delta = stats.Bootstrap(labels, seed=7).estimate(a - b)
    assert (delta.value, delta.low, delta.high) == (0.0, 0.0, 0.0)
    assert stats.verdict(delta, "greater") == "inconclusive"


def test_paired_difference_is_narrower_than_the_unpaired_one():
    # method b = method a plus a few extra successes: the per-identity outcomes are strongly
    # correlated, so the paired interval is far narrower than independent resampling gives
    rng = np.random.default_rng(4)
    n = 2000
    a = (rng.random(n) < 0.5).astype(float)
    b = np.maximum(a, rng.random(n) < 0.05)
    boot = stats.Bootstrap(np.arange(n), seed=0)
    paired = boot.estimate(stats.mean(b) - stats.mean(a))
    unpaired = stats.independent_difference(boot, stats.mean(b), boot, stats.mean(a))
    assert paired.value == pytest.approx(unpaired.value) == pytest.approx(b.mean() - a.mean())
    assert paired.width < 0.5 * unpaired.width
    assert stats.verdict(paired, "greater") == "reproduced"


def test_same_seed_same_interval_and_other_seed_other_resamples():
    labels, values = np.arange(200) % 40, np.linspace(0, 1, 200)
    first = stats.Bootstrap(labels, seed=5).estimate(stats.mean(values))
    assert stats.Bootstrap(labels, seed=5).estimate(stats.mean(values)) == first
    assert stats.Bootstrap(labels, seed=6).estimate(stats.mean(values)) != first


def test_unlabelled_items_are_each_their_own_unit():
    np.testing.assert_array_equal(stats.units([3, -1, 3, -1, 0]), [3, 4, 3, 5, 0])
    assert stats.Bootstrap([3, -1, 3, -1, 0]).groups == 4


def test_group_weights_resample_every_identity_count_with_replacement():
    weights = stats.Bootstrap(np.arange(30), resamples=500, seed=1).group_weights()
    assert weights.shape == (500, 30) and (weights.sum(1) == 30).all()
    assert weights.mean() == pytest.approx(1.0) and weights.var() == pytest.approx(1 - 1 / 30, rel=0.1)


def test_rate_at_with_unit_weights_is_tpr_at_far():
    rng = np.random.default_rng(8)
    genuine = rng.random(5000) < 0.3
    scores = np.round(rng.normal(size=5000) + 1.5 * genuine, 2)  # rounded: ties at the threshold
    for far in (0.1, 0.01, 0.001):
        assert stats.rate_at(scores, genuine, far).value() == pytest.approx(tpr_at_far(scores, genuine, (far,))[far])


def test_rate_at_counts_a_doubly_drawn_negative_twice():
    # negatives 0.9, 0.5, 0.1; rate 0.25 of 4 weighted negatives (0.9 drawn twice): k = 1 copy may
    # pass, the 2nd-largest copy is 0.9 itself -> positives above 0.9: none
    scores = np.array([0.95, 0.7, 0.9, 0.5, 0.1])
    positive = np.array([True, True, False, False, False])
    statistic = stats.rate_at(scores, positive, 0.25)
    # unit weights: 3 negatives, k = 0 -> t = 0.9 -> positives > 0.9: 0.95 -> 1/2
    assert statistic.value() == 0.5
    np.testing.assert_allclose(statistic(np.array([[1.0, 1.0, 2.0, 1.0, 0.0]])), [0.5])
    # weights 0.9 x1, 0.5 x3: k = floor(0.25 * 4) = 1 -> t = 0.5 -> positives 0.95 and 0.7 pass
    np.testing.assert_allclose(statistic(np.array([[1.0, 1.0, 1.0, 3.0, 0.0]])), [1.0])


def test_subset_mean_by_hand_with_weights():
    """Items 0, 1 chosen (values 1, 0), item 2 not (value 5): weights (2, 1, 7) give (2*1 + 1*0) / 3; a resample
    without a chosen item is NaN."""
    statistic = stats.subset_mean([1.0, 0.0, 5.0], np.array([True, True, False]), 100)
    assert statistic.value() == pytest.approx(50.0)
    result = statistic(np.array([[2.0, 1.0, 7.0], [0.0, 0.0, 3.0]]))
    assert result[0] == pytest.approx(200 / 3)
    assert math.isnan(result[1])
    with pytest.raises(ValueError, match="chosen"):
        stats.subset_mean([1.0, 0.0], np.array([False, False]))


def test_tpir_scores_never_identify_a_mate_beyond_the_rank():
    np.testing.assert_array_equal(stats.tpir_scores(np.array([1, 25, 3]), np.array([0.8, 0.9, 0.2]), rank=20),
                                  [0.8, -np.inf, 0.2])


def test_auc_by_hand_with_ties_and_weights():
    scores = np.array([0.9, 0.5, 0.5, 0.1])
    positive = np.array([True, True, False, False])
    # pairs (pos, neg): 0.9>0.5, 0.9>0.1, 0.5=0.5 (half), 0.5>0.1 -> 3.5 / 4
    assert stats.auc(scores, positive).value() == pytest.approx(3.5 / 4)
    # weights: the tied negative drawn twice -> (2 + 1 + 2 * 0.5 + 1) / (2 * 3) = 5 / 6
    np.testing.assert_allclose(stats.auc(scores, positive)(np.array([[1.0, 1.0, 2.0, 1.0]])), [5 / 6])


@pytest.mark.parametrize(
    ("low", "high", "direction", "expected"),
    [
        (0.5, 2.0, "greater", "reproduced"),
        (-2.0, -0.5, "greater", "contradicted"),
        (-0.5, 2.0, "greater", "inconclusive"),
        (0.0, 2.0, "greater", "inconclusive"),  # touching 0 does not exclude it
        (-2.0, -0.5, "less", "reproduced"),
        (0.5, 2.0, "less", "contradicted"),
        (-0.1, 0.1, "less", "inconclusive"),
    ],
)
def test_verdict_from_the_interval_in_the_papers_direction(low, high, direction, expected):
    assert stats.verdict(stats.Estimate((low + high) / 2, low, high), direction) == expected


def test_verdict_against_a_non_zero_null_and_undefined_intervals():
    assert stats.verdict(stats.Estimate(0.6, 0.55, 0.65), "greater", null=0.5) == "reproduced"
    assert stats.verdict(stats.Estimate(0.52, 0.45, 0.6), "greater", null=0.5) == "inconclusive"
    assert stats.verdict(stats.Estimate(math.nan, math.nan, math.nan), "greater") == "inconclusive"
    with pytest.raises(ValueError, match="direction"):
        stats.verdict(stats.Estimate(1, 0, 2), "bigger")


def test_difference_of_differences_and_arithmetic_share_the_resamples():
    rng = np.random.default_rng(9)
    labels = np.arange(500)
    a, b, c = (stats.mean(rng.random(500)) for _ in range(3))
    boot = stats.Bootstrap(labels, seed=0)
    combined = boot.samples((a - b) - (b - c))
    np.testing.assert_allclose(combined, boot.samples(a) - 2 * boot.samples(b) + boot.samples(c))
    np.testing.assert_allclose(boot.samples(a / b), boot.samples(a) / boot.samples(b))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="statistic is over 3 items"):
        stats.Bootstrap(np.arange(5)).estimate(stats.mean([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="cannot be combined"):
        _ = stats.mean([1.0, 2.0]) - stats.mean([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="labels"):
        stats.Bootstrap(np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match="values"):
        stats.mean([1.0, np.nan])
    with pytest.raises(ValueError, match="rate"):
        stats.rate_at([0.1, 0.2], [True, False], 1.5)


def test_estimate_formats_with_its_interval():
    assert stats.Estimate(1.5, -0.25, 3.0).format(1, signed=True) == "+1.5 [-0.2, +3.0]"
    assert str(stats.Estimate(12.345, 10.1, 14.5)) == "12.35 [10.10, 14.50]"
