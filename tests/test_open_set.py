"""Open-set identification (SurvFace TPIR at FPIR) and identity templates, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from lrfr.protocols.open_set import identity_templates, open_set_identification, tpir_at_fpir


def test_identity_templates_are_renormalised_means_of_normalised_rows():
    templates, identities = identity_templates(np.array([[1, 0], [0, 3], [5, 0], [1, 1]], np.float32), [4, 4, 2, -1])
    assert identities.tolist() == [2, 4]
    np.testing.assert_allclose(templates, [[1, 0], [np.sqrt(0.5), np.sqrt(0.5)]], rtol=1e-6)


def test_tpir_at_fpir_by_hand():
    first_ranks = np.array([1, 2, 30, 1])
    first_scores = np.array([0.9, 0.5, 0.95, 0.3])
    unmated_best = np.array([0.8, 0.6, 0.4, 0.2, 0.1])
    # FPIR 0.1: k = 0, t = 0.8 -> only probe 0;  0.2 and 0.3: k = 1, t = 0.6 -> probe 0
    # FPIR 0.4: k = 2, t = 0.4 -> probes 0 and 1 (probe 2 is beyond rank 20, probe 3 below t)
    tpir, thresholds = tpir_at_fpir(first_ranks, first_scores, unmated_best, fpirs=(0.1, 0.2, 0.3, 0.4))
    assert thresholds == {0.1: 0.8, 0.2: 0.6, 0.3: 0.6, 0.4: 0.4}
    assert tpir == {0.1: 0.25, 0.2: 0.25, 0.3: 0.25, 0.4: 0.5}
    assert tpir_at_fpir(first_ranks, first_scores, unmated_best, fpirs=(0.4,), rank=50)[0] == {0.4: 0.75}


def test_open_set_identification_by_hand():
    templates = np.eye(4, dtype=np.float32)
    template_labels = [10, 11, 12, 13]
    probes = np.array(
        [
            [1, 0, 0, 0],  # label 10: mate score 1, rank 1
            [0.6, 0.8, 0, 0],  # label 11: mate score 0.8, rank 1
            [0.8, 0, 0.6, 0],  # label 12: mate score 0.6, rank 2 (behind template 10 at 0.8)
            [0, 0, 0.28, 0.96],  # unlabelled: best 0.96
            [0.5, 0.5, 0.5, 0.5],  # identity 99 is not enrolled: unmated, best 0.5
            [-1, 0, 0, 0],  # unlabelled: best 0
        ],
        np.float32,
    )
    labels = [10, 11, 12, -1, 99, -1]
    # FPIR 0.34: k = 1, t = 0.5 -> all mated probes within rank 20 (2 of 3 within rank 1)
    # FPIR 0.1: k = 0, t = 0.96 -> only the probe with mate score 1
    result = open_set_identification(probes, labels, templates, template_labels, fpirs=(0.34, 0.1))
    assert result.tpir == pytest.approx({0.34: 1.0, 0.1: 1 / 3})
    assert result.thresholds == pytest.approx({0.34: 0.5, 0.1: 0.96})
    assert (result.num_mated, result.num_unmated, result.rank) == (3, 3, 20)
    top1 = open_set_identification(probes, labels, templates, template_labels, fpirs=(0.34,), rank=1, gallery_chunk=3)
    assert top1.tpir == pytest.approx({0.34: 2 / 3})


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="FPIR 1.5 is not valid"):
        tpir_at_fpir(np.array([1]), np.array([0.5]), np.array([0.1]), fpirs=(1.5,))
    with pytest.raises(ValueError, match="expected unmated probes"):
        open_set_identification(np.eye(2, dtype=np.float32), [0, 1], np.eye(2, dtype=np.float32), [0, 1])
    with pytest.raises(ValueError, match="no probe has a mate"):
        open_set_identification(np.eye(2, dtype=np.float32), [5, 6], np.eye(2, dtype=np.float32), [0, 1])
    with pytest.raises(ValueError, match="no non-negative label"):
        identity_templates(np.eye(2), [-1, -1])
