"""Chapter 2's evidence: the ERC area as a bootstrap statistic, probe-vs-gallery pairs, per-probe search."""

from __future__ import annotations

import numpy as np
import pytest

from lrfr.experiments.chai2023 import ExploreSet, erc_area_statistic, per_row, probe_gallery_pairs, tinyface_identification
from lrfr.protocols.erc import REJECT_FRACTIONS, erc_area, error_versus_reject
from lrfr.stats import Bootstrap


def _pairs(seed: int = 0, n: int = 3000):
    rng = np.random.default_rng(seed)
    genuine = rng.random(n) < 0.2
    quality = rng.random(n)
    scores = np.where(genuine, 0.3 + 0.6 * quality, 0.0) + rng.normal(0, 0.2, n)
    quality = np.round(quality, 1)  # many ties
    return scores, genuine, quality


@pytest.mark.parametrize("fmr", [1e-2, 1e-3])
def test_erc_area_statistic_equals_the_protocol_with_unit_weights(fmr):
    scores, genuine, quality = _pairs()
    curve = error_versus_reject(scores, genuine, quality, fmrs=(fmr,), seed=4)
    span = REJECT_FRACTIONS[-1] - REJECT_FRACTIONS[0]
    statistic = erc_area_statistic(scores, genuine, quality, fmr, seed=4)
    assert statistic.value() == pytest.approx(100 * erc_area(curve)[0] / span, abs=1e-9)


def test_erc_area_of_a_useful_quality_is_lower_and_the_paired_interval_says_so():
    scores, genuine, quality = _pairs(1)
    useless = np.zeros_like(quality)  # a constant quality rejects at random: a flat curve
    good = erc_area_statistic(scores, genuine, quality, 1e-2)
    flat = erc_area_statistic(scores, genuine, useless, 1e-2)
    plain_fnmr = 100 * error_versus_reject(scores, genuine, useless, fmrs=(1e-2,)).fnmr[0, 0]
    assert flat.value() == pytest.approx(plain_fnmr, abs=4.0)  # random rejection keeps the FNMR
    boot = Bootstrap(np.arange(len(scores)) // 10, resamples=200, seed=0)
    difference = boot.estimate(good - flat)
    assert difference.high < 0 and good.value() < flat.value() - 10


def _explore(labels, split, embeddings) -> ExploreSet:
    n = len(labels)
    return ExploreSet(records=(), split=np.array(split), labels=np.array(labels), embeddings=np.array(embeddings, float),
                      norms=np.ones(n), center=np.zeros(2), ui_distance=np.zeros(n), ri_target=np.zeros(n),
                      ri_learned=None, attended=None)


def test_tinyface_search_with_and_without_distractors():
    # probe 0 (identity 0) is nearest its mate; probe 1 (identity 1) is nearer a distractor than its mate
    data = _explore([0, 1, 0, 1, -1], ["probe", "probe", "gallery", "gallery", "distractor"],
                    [[1, 0], [0, 1], [1, 0.1], [0.7, 1], [0.1, 1]])
    assert tinyface_identification(data).first_ranks.tolist() == [1, 1]
    assert tinyface_identification(data, distractors=True).first_ranks.tolist() == [1, 2]


def test_probe_gallery_pairs_are_probe_vs_gallery_and_capped_at_the_genuine_available():
    data = _explore([0, 1, 0, 0, 1, 2], ["probe", "probe", "gallery", "gallery", "gallery", "gallery"],
                    np.eye(6)[:, :2] + 0.1)
    pairs = probe_gallery_pairs(data, n_genuine=100, n_impostor=4, seed=0)
    assert pairs.is_genuine.sum() == 3 and (~pairs.is_genuine).sum() == 4  # 2 + 1 genuine pairs exist
    probe_labels, gallery_labels = np.array([0, 1]), np.array([0, 0, 1, 2])
    same = probe_labels[pairs.pairs[:, 0]] == gallery_labels[pairs.pairs[:, 1]]
    assert np.array_equal(same, pairs.is_genuine) and np.array_equal(pairs.units, probe_labels[pairs.pairs[:, 0]])


def test_table4_rows_run_as_the_issue_fixes_them(tmp_path):
    """MagFace and MV-Softmax with their official easy_margin; row I's ID loss on the embedding's RI."""
    from lrfr.experiments.chai2023 import FineTuning, finetune_config, table4_methods

    methods, setting = table4_methods(), FineTuning(data_root=str(tmp_path), pretrained=str(tmp_path / "pre"))
    for row in ("MagFace", "MV-Softmax"):
        assert finetune_config(row, methods[row], setting).model.heads["main"].kwargs == {"easy_margin": True}
    terms = {t.name: t.kwargs for t in finetune_config("I", methods["I"], setting).model.terms}
    assert terms["ri"]["id_source"] == "embedding" and (terms["ri"]["alpha"], terms["ri"]["gamma"]) == (0.0, 0.0)
    ours = {t.name: t.kwargs for t in finetune_config("Ours", methods["Ours"], setting).model.terms}
    assert "id_source" not in ours["ri"]  # Ours keeps the paper's learned-RI path


def test_per_row_spreads_the_masked_faces_qualities_over_every_row():
    spread = per_row({"q": np.array([0.5, 2.0])}, np.array([False, True, False, True]))
    np.testing.assert_array_equal(spread["q"], [np.nan, 0.5, np.nan, 2.0])
