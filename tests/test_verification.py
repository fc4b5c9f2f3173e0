"""Verification metrics (ROC, TPR@FAR, EER, AUC, 10-fold accuracy) on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from lrfr.protocols.verification import auc, eer, kfold_accuracy, mixed_folds, pair_scores, roc, tpr_at_far

# genuine 0.9, 0.8, 0.4; impostor 0.7, 0.3, 0.2, 0.1
SCORES = np.array([0.9, 0.7, 0.8, 0.3, 0.4, 0.2, 0.1])
GENUINE = np.array([True, False, True, False, True, False, False])


def test_roc_by_hand():
    curve = roc(SCORES, GENUINE)
    np.testing.assert_array_equal(curve.thresholds, [np.inf, 0.9, 0.8, 0.7, 0.4, 0.3, 0.2, 0.1])
    np.testing.assert_allclose(curve.far, [0, 0, 0, 1 / 4, 1 / 4, 2 / 4, 3 / 4, 1])
    np.testing.assert_allclose(curve.tpr, [0, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1, 1])


def test_auc_by_hand():
    # 11 of the 12 (genuine, impostor) pairs are ordered correctly (only 0.4 < 0.7 is not)
    assert auc(SCORES, GENUINE) == pytest.approx(11 / 12)
    assert auc([0.5, 0.5], [True, False]) == pytest.approx(0.5)


def test_tpr_at_far_by_hand():
    # FAR 0.1: k = 0, threshold = highest impostor 0.7 -> genuine above: 0.9, 0.8
    # FAR 0.25: k = 1, threshold = 2nd impostor 0.3 -> all genuine; FAR 0.5: k = 2 -> 0.2 -> all
    assert tpr_at_far(SCORES, GENUINE, fars=(0.1, 0.25, 0.5)) == pytest.approx({0.1: 2 / 3, 0.25: 1.0, 0.5: 1.0})


def test_tpr_at_far_is_the_best_roc_point_within_the_far():
    rng = np.random.default_rng(0)
    scores, genuine = rng.normal(size=500).round(2), rng.random(500) < 0.3  # rounding: many ties
    scores[genuine] += 1
    curve = roc(scores, genuine)
    for far, tpr in tpr_at_far(scores, genuine, fars=(0.3, 0.1, 0.01, 0.001)).items():
        assert tpr == pytest.approx(curve.tpr[curve.far <= far].max())


def test_eer_by_hand():
    # ROC (FAR, TPR): (0,0) (0,1/3) (0,2/3) (1/2,2/3) (1/2,1) (1,1); FAR = FRR on the segment
    # from (0, 2/3) to (1/2, 2/3), where FRR = 1/3: EER = 1/3
    assert eer([0.9, 0.8, 0.7, 0.75, 0.1], [True, True, True, False, False]) == pytest.approx(1 / 3)
    assert eer(SCORES, GENUINE) == pytest.approx(1 / 4)  # FAR stays 1/4 while FRR falls from 1/3 to 0
    assert eer([0.9, 0.1], [True, False]) == 0.0


def test_kfold_accuracy_by_hand():
    scores = [0.9, 0.5, 0.6, 0.4, 0.3, 0.8]
    genuine = [True, False, True, False, True, False]
    folds = [0, 0, 1, 1, 2, 2]
    # fold 0: training 0.3G 0.4I 0.6G 0.8I is best (2 of 4) first at -inf -> test 0.9G ok, 0.5I wrong
    # fold 1: training 0.3G 0.5I 0.8I 0.9G best at 0.85 (3 of 4) -> 0.6G wrong, 0.4I right
    # fold 2: training 0.4I 0.5I 0.6G 0.9G best at 0.55 (4 of 4) -> 0.3G wrong, 0.8I wrong
    result = kfold_accuracy(scores, np.array(genuine), folds=folds)
    np.testing.assert_allclose(result.accuracies, [0.5, 0.5, 0.0])
    np.testing.assert_allclose(result.thresholds, [-np.inf, 0.85, 0.55])
    assert result.mean == pytest.approx(1 / 3)
    assert result.std == pytest.approx(np.sqrt(1 / 18))


def test_kfold_default_folds_mix_both_classes_and_separable_scores_are_perfect():
    rng = np.random.default_rng(1)
    genuine = rng.random(23) < 0.5
    genuine[:2] = [True, False]
    scores = np.where(genuine, 1.0, 0.0) + rng.random(23) * 0.5
    default = kfold_accuracy(scores, genuine)
    assert default.mean == 1.0 and len(default.accuracies) == 10
    folds = mixed_folds(genuine, 10, seed=0)
    assert np.bincount(folds).tolist() == [3, 3, 3] + [2] * 7  # every fold within one pair of N / 10
    for members in (genuine, ~genuine):  # each class dealt evenly: per-fold counts differ by at most one
        counts = np.bincount(folds[members], minlength=10)
        assert counts.max() - counts.min() <= 1
    np.testing.assert_array_equal(default.accuracies, kfold_accuracy(scores, genuine, folds=folds).accuracies)


def test_kfold_on_genuine_first_pairs_is_at_chance_not_below_when_scores_carry_no_information():
    # 600 genuine then 600 impostor pairs with scores independent of the class: contiguous folds would
    # each hold one class; the threshold learnt on the other folds then misclassifies most of the held-out
    # fold (accuracy far below 50 %). Mixed folds give chance.
    rng = np.random.default_rng(3)
    genuine = np.arange(1200) < 600
    scores = rng.random(1200)
    contiguous = kfold_accuracy(scores, genuine, folds=np.repeat(np.arange(10), 120))
    mixed = kfold_accuracy(scores, genuine)
    assert contiguous.mean < 0.45  # the trap this default avoids
    assert abs(mixed.mean - 0.5) < 0.05
    assert kfold_accuracy(scores[::-1], genuine[::-1]).mean == pytest.approx(mixed.mean, abs=0.05)


def test_pair_scores_by_hand():
    np.testing.assert_allclose(pair_scores(np.array([[1.0, 0], [0, 1]]), np.array([[2.0, 0], [1, 1]])), [1, np.sqrt(0.5)], rtol=1e-6)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="FAR 0 is not valid"):
        tpr_at_far(SCORES, GENUINE, fars=(0,))
    with pytest.raises(ValueError, match="FAR 1.0 is not valid"):
        tpr_at_far(SCORES, GENUINE, fars=(1.0,))
    with pytest.raises(ValueError, match="3 genuine and 0 impostor"):
        roc([0.1, 0.2, 0.3], np.ones(3, bool))
    with pytest.raises(ValueError, match="expected \\(N,\\) floats and \\(N,\\) bools"):
        eer([0.1, 0.2], [True])
    with pytest.raises(ValueError, match="folds has shape"):
        kfold_accuracy(SCORES, GENUINE, folds=[0, 1])
    with pytest.raises(ValueError, match="non-finite"):
        auc([np.nan, 0.2], [True, False])
    with pytest.raises(ValueError, match="first has shape"):
        pair_scores(np.ones((2, 3)), np.ones((3, 3)))
