"""Error-versus-reject curves and pair sampling (lrfr.protocols.erc), by hand."""

from __future__ import annotations

import numpy as np
import pytest

from lrfr.protocols.erc import cross_pair_counts, cross_resolution_pairs, erc_area, error_versus_reject, pair_quality, sample_pairs
from lrfr.protocols.verification import tpr_at_far

# pairs:    g0    g1    g2    g3    i0    i1    i2    i3
SCORES = [0.9, 0.8, 0.3, 0.45, 0.85, 0.5, 0.4, 0.1]
QUALITY = [0.9, 0.8, 0.1, 0.7, 0.2, 0.6, 0.95, 0.3]
GENUINE = np.array([True] * 4 + [False] * 4)
# rejection order (quality ascending): g2, i0, i3, i1, g3, g1, g0, i2
FRACTIONS = (0, 0.25, 0.5, 0.75)  # reject 0, 2, 4, 6 pairs


def test_fixed_threshold_erc_by_hand():
    # FMR 0.25: k = 1 -> t = 2nd impostor 0.5; FMR 0.5: k = 2 -> t = 0.4 (all impostors, once)
    # r=0: genuine <= 0.5: 0.3, 0.45 -> 2/4; <= 0.4: 0.3 -> 1/4
    # r=0.25 (g2, i0 out) and r=0.5 (also i3, i1): genuine 0.9 0.8 0.45 -> 1/3 and 0
    # r=0.75: genuine 0.9 -> 0
    curve = error_versus_reject(SCORES, GENUINE, QUALITY, fmrs=(0.25, 0.5), reject_fractions=FRACTIONS)
    np.testing.assert_allclose(curve.fnmr, [[1 / 2, 1 / 4], [1 / 3, 0], [1 / 3, 0], [0, 0]])
    np.testing.assert_allclose(curve.thresholds, [[0.5, 0.4]] * 4)
    np.testing.assert_allclose(erc_area(curve), [0.25 * (5 / 12 + 1 / 3 + 1 / 6), 0.25 * 1 / 8])  # 11/48, 1/32


def test_recomputed_threshold_erc_by_hand():
    # kept impostors: r=0.25: 0.5 0.4 0.1 (FMR 0.25: k=0 -> 0.5; 0.5: k=1 -> 0.4);
    # r=0.5: 0.4 (k=0 -> 0.4 both); r=0.75: 0.4
    curve = error_versus_reject(SCORES, GENUINE, QUALITY, fmrs=(0.25, 0.5), reject_fractions=FRACTIONS, variant="recomputed")
    np.testing.assert_allclose(curve.thresholds, [[0.5, 0.4], [0.5, 0.4], [0.4, 0.4], [0.4, 0.4]])
    np.testing.assert_allclose(curve.fnmr, [[1 / 2, 1 / 4], [1 / 3, 0], [0, 0], [0, 0]])
    np.testing.assert_allclose(erc_area(curve), [0.25 * (5 / 12 + 1 / 6), 0.25 * 1 / 8])  # 7/48, 1/32


@pytest.mark.parametrize("variant", ["fixed", "recomputed"])
def test_no_rejection_is_the_plain_fnmr_at_that_fmr(variant):
    rng = np.random.default_rng(0)
    genuine = rng.random(3000) < 0.2
    scores = rng.normal(size=3000) + 2 * genuine
    fmrs = (1e-2, 1e-3)
    curve = error_versus_reject(scores, genuine, rng.random(3000), fmrs=fmrs, variant=variant)
    plain = tpr_at_far(scores, genuine, fars=fmrs)
    np.testing.assert_allclose(curve.fnmr[0], [1 - plain[f] for f in fmrs])


@pytest.mark.parametrize("variant", ["fixed", "recomputed"])
def test_a_constant_quality_rejects_without_regard_to_the_label_so_its_curve_stays_flat(variant):
    # pairs listed genuine-first, all of one quality: rejecting in pair order would drop the genuine
    # pairs first (FNMR undefined past 10 %); ties broken at random keep the curve flat within noise
    rng = np.random.default_rng(0)
    genuine = np.arange(6000) < 600
    scores = rng.normal(size=6000) + 2.5 * genuine
    curve = error_versus_reject(scores, genuine, np.ones(6000), fmrs=(1e-2,), variant=variant,
                                reject_fractions=(0, 0.2, 0.4, 0.6, 0.8))
    start = curve.fnmr[0, 0]
    assert np.isfinite(curve.fnmr).all()
    assert np.abs(curve.fnmr[:, 0] - start).max() < 0.08  # binomial noise of >= 120 kept genuine pairs
    again = error_versus_reject(scores, genuine, np.ones(6000), fmrs=(1e-2,), variant=variant, reject_fractions=(0, 0.2, 0.4, 0.6, 0.8))
    np.testing.assert_array_equal(curve.fnmr, again.fnmr)  # seeded


def test_cross_resolution_pairs_join_each_probe_to_gallery_images_and_mix_the_classes():
    probe_labels = np.array([0, 0, 1, 2, -1, 3])
    gallery_labels = np.array([0, 1, 1, 2, -1, 4])
    # genuine (probe, gallery): (0,0) (1,0) (2,1) (2,2) (3,3); impostors: 5 labelled probes x 5 labelled gallery - 5
    pairs, genuine = cross_resolution_pairs(probe_labels, gallery_labels, 5, 20, seed=0)
    assert sorted(map(tuple, pairs[genuine].tolist())) == [(0, 0), (1, 0), (2, 1), (2, 2), (3, 3)]
    impostors = pairs[~genuine]
    assert len({tuple(p) for p in impostors.tolist()}) == 20
    assert (probe_labels[impostors[:, 0]] != gallery_labels[impostors[:, 1]]).all()
    assert (probe_labels[pairs[:, 0]] >= 0).all() and (gallery_labels[pairs[:, 1]] >= 0).all()
    assert not genuine[:5].all()  # shuffled: not genuine-first
    again, _ = cross_resolution_pairs(probe_labels, gallery_labels, 5, 20, seed=0)
    np.testing.assert_array_equal(pairs, again)
    with pytest.raises(ValueError, match="n_impostor 21 .* \\[0, 20\\]"):
        cross_resolution_pairs(probe_labels, gallery_labels, 5, 21, seed=0)
    assert cross_pair_counts(probe_labels, gallery_labels) == (5, 20)


def test_undefined_levels_are_nan():
    # the two genuine pairs have the lowest quality: rejecting half leaves no genuine pair
    curve = error_versus_reject([0.9, 0.8, 0.1, 0.2], [True, True, False, False], [0, 0, 1, 1], fmrs=(0.5,), reject_fractions=(0, 0.5))
    assert curve.fnmr[0, 0] == 0 and np.isnan(curve.fnmr[1, 0])
    assert erc_area(curve).tolist() == [0.0]


def test_pair_quality_is_the_lower_of_the_two():
    np.testing.assert_array_equal(pair_quality([0.5, 0.2, 0.9], np.array([[0, 1], [2, 0]])), [0.2, 0.5])


def test_sample_pairs_by_hand():
    labels = [0, 0, 0, 1, 1, -1, 2]
    pairs, genuine = sample_pairs(labels, 4, 11, seed=0)
    # all 4 genuine pairs, then all C(6, 2) - 4 = 11 impostor pairs of the labelled images
    assert pairs[:4].tolist() == [[0, 1], [0, 2], [1, 2], [3, 4]]
    impostor = {(0, 3), (0, 4), (0, 6), (1, 3), (1, 4), (1, 6), (2, 3), (2, 4), (2, 6), (3, 6), (4, 6)}
    assert set(map(tuple, pairs[4:].tolist())) == impostor and len(pairs) == 15
    assert genuine.tolist() == [True] * 4 + [False] * 11


def test_sample_pairs_is_seeded_and_without_replacement():
    labels = np.random.default_rng(0).integers(0, 50, 400)
    first, _ = sample_pairs(labels, 300, 2000, seed=3)
    again, _ = sample_pairs(labels, 300, 2000, seed=3)
    other, _ = sample_pairs(labels, 300, 2000, seed=4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert len(np.unique(first, axis=0)) == len(first) and (first[:, 0] < first[:, 1]).all()
    same = labels[first[:, 0]] == labels[first[:, 1]]
    assert same[:300].all() and not same[300:].any()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"n_impostor 12 is not valid; expected an int in \[0, 11\]"):
        sample_pairs([0, 0, 0, 1, 1, -1, 2], 1, 12, seed=0)
    with pytest.raises(ValueError, match="variant 'iso' is not valid"):
        error_versus_reject(SCORES, GENUINE, QUALITY, variant="iso")
    with pytest.raises(ValueError, match="FMR 0 is not valid"):
        error_versus_reject(SCORES, GENUINE, QUALITY, fmrs=(0,))
    with pytest.raises(ValueError, match="reject_fractions"):
        error_versus_reject(SCORES, GENUINE, QUALITY, reject_fractions=(0, 1.0))
    with pytest.raises(ValueError, match="quality has shape"):
        error_versus_reject(SCORES, GENUINE, QUALITY[:3])
