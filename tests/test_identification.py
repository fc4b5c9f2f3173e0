"""Closed-set identification (CMC, mAP) on hand-computed cases, properties, and a full-sort reference."""

from __future__ import annotations

import numpy as np
import pytest

from lrfr.bench.search_eval import naive_mate_ranks
from lrfr.protocols.identification import average_precision, cmc, evaluate_identification
from tests.test_search import GALLERY, GALLERY_LABELS, PROBE_LABELS, PROBES


def test_cmc_by_hand():
    assert cmc(np.array([1, 3, 7, 60])) == {1: 0.25, 5: 0.5, 10: 0.75, 20: 0.75, 50: 0.75}
    assert cmc(np.array([2, 2]), ranks=(1, 2)) == {1: 0.0, 2: 1.0}


def test_average_precision_by_hand():
    # probe 0: mates at ranks 1 and 3 -> (1/1 + 2/3) / 2; probe 1: one mate at rank 2 -> 1/2
    np.testing.assert_allclose(average_precision(np.array([[1, 3], [2, 0]]), np.array([2, 1])), [5 / 6, 1 / 2])


def test_evaluate_identification_by_hand_with_and_without_distractors():
    # test_search's case: p0's mates at ranks 1 and 3, p1's single mate at rank 5 (4 without the
    # distractor g3, which scores 0 for p1 and comes before g4 at the tie); p2 has no mate.
    result = evaluate_identification(PROBES, GALLERY, PROBE_LABELS, GALLERY_LABELS, ranks=(1, 4, 5))
    assert result.cmc == {1: 0.5, 4: 0.5, 5: 1.0}
    assert result.mean_average_precision == pytest.approx((5 / 6 + 1 / 5) / 2)  # 31/60
    assert (result.num_mated_probes, result.num_probes, result.gallery_size) == (2, 3, 5)
    clean = evaluate_identification(PROBES, GALLERY, PROBE_LABELS, GALLERY_LABELS, ranks=(1, 4), distractors=False)
    assert clean.cmc == {1: 0.5, 4: 1.0}
    assert clean.mean_average_precision == pytest.approx((5 / 6 + 1 / 4) / 2)  # 13/24
    assert clean.gallery_size == 4


def _random(seed: int, probes: int = 60, gallery: int = 211, identities: int = 25):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((identities, 32)).astype(np.float32)
    probe_labels = rng.integers(0, identities, probes)
    gallery_labels = np.concatenate([rng.integers(0, identities, gallery // 2), np.full(gallery - gallery // 2, -1)])
    noise = lambda n: rng.standard_normal((n, 32)).astype(np.float32)  # noqa: E731
    probe_rows = centres[probe_labels] + noise(probes)
    gallery_rows = np.where((gallery_labels >= 0)[:, None], centres[gallery_labels] + noise(gallery), noise(gallery))
    return probe_rows, gallery_rows.astype(np.float32), probe_labels, gallery_labels


def test_perfect_embeddings_give_100_percent():
    labels = np.array([0, 1, 2, 3])
    gallery_labels = np.array([0, 0, 1, 2, 3, 3, 3, -1])
    basis = np.eye(5, dtype=np.float32)
    gallery = basis[np.where(gallery_labels >= 0, gallery_labels, 4)]
    result = evaluate_identification(basis[labels] * 3, gallery, labels, gallery_labels)
    assert result.cmc == {1: 1.0, 5: 1.0, 10: 1.0, 20: 1.0, 50: 1.0}
    assert result.mean_average_precision == 1.0


def test_cmc_is_non_decreasing_in_rank():
    probes, gallery, probe_labels, gallery_labels = _random(1)
    curve = evaluate_identification(probes, gallery, probe_labels, gallery_labels, ranks=range(1, 60)).cmc
    assert all(curve[r] <= curve[r + 1] for r in range(1, 59))
    assert 0 < curve[1] < curve[59]


def test_permuting_the_gallery_changes_nothing():
    probes, gallery, probe_labels, gallery_labels = _random(2)
    permutation = np.random.default_rng(0).permutation(len(gallery))
    before = evaluate_identification(probes, gallery, probe_labels, gallery_labels)
    after = evaluate_identification(probes, gallery[permutation], probe_labels, gallery_labels[permutation])
    assert before.cmc == after.cmc
    assert before.mean_average_precision == pytest.approx(after.mean_average_precision, abs=1e-12)


@pytest.mark.parametrize("probe_chunk, gallery_chunk", [(7, 13), (16, 100), (60, 211), (1000, 37)])
@pytest.mark.parametrize("distractors", [True, False])
def test_agrees_with_the_full_sort_reference(probe_chunk, gallery_chunk, distractors):
    probes, gallery, probe_labels, gallery_labels = _random(3)
    result = evaluate_identification(
        probes, gallery, probe_labels, gallery_labels, distractors=distractors, probe_chunk=probe_chunk, gallery_chunk=gallery_chunk
    )
    keep = np.ones(len(gallery), bool) if distractors else gallery_labels >= 0
    mated, counts, ranks = naive_mate_ranks(probes, gallery[keep], probe_labels, gallery_labels[keep])
    first = ranks[:, 0]
    assert result.cmc == {r: float(np.mean(first <= r)) for r in (1, 5, 10, 20, 50)}
    assert result.mean_average_precision == pytest.approx(float(np.mean([
        np.mean(np.arange(1, n + 1) / ranks[q, :n]) for q, n in enumerate(counts)
    ])), abs=1e-12)
    assert result.num_mated_probes == len(mated)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="rank 0 is not valid"):
        cmc(np.array([1, 2]), ranks=(0,))
    with pytest.raises(ValueError, match="strictly increasing"):
        average_precision(np.array([[3, 3]]), np.array([2]))
    with pytest.raises(ValueError, match="no probe has a mate"):
        evaluate_identification(PROBES, GALLERY, [1, 2, 3], GALLERY_LABELS)
    with pytest.raises(ValueError, match="no labelled image"):
        evaluate_identification(PROBES, GALLERY, PROBE_LABELS, np.full(5, -1), distractors=False)
