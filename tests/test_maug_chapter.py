"""Chapter 3's plan, statistics and claims (lrfr.experiments.maug) and the per_identity factory."""

from __future__ import annotations

import numpy as np
import pytest

from lrfr import stats
from lrfr.data import DATASETS
from lrfr.experiments.maug import (
    CLAIM_CELLS, ChapterPlan, Method, PairOutcomes, RankOutcomes, RowEvaluation, Setting, chapter_methods, decide_claims,
    distinct_methods, evaluation_sizes, method_config, paper_beside_ours, row_statistics, run_name, bootstrap_units,
)
from tests.fixtures_data import write_image


def test_per_identity_keeps_the_first_images_of_every_identity(tmp_path):
    for identity in range(3):
        for image in range(identity + 2):  # 2, 3, 4 images
            write_image(tmp_path / f"id{identity}" / f"{image}.jpg", 16, 16, seed=identity * 10 + image)
    data = DATASETS.build("per_identity", base="folder", images=3, root=str(tmp_path), input_size=16)
    assert [r.label for r in data.records] == [0, 0, 1, 1, 1, 2, 2, 2]
    assert [r.path.name for r in data.records if r.label == 2] == ["0.jpg", "1.jpg", "2.jpg"]
    assert data.num_classes == 3
    with pytest.raises(ValueError, match="images 0 is not valid"):
        DATASETS.build("per_identity", base="folder", images=0, root=str(tmp_path), input_size=16)


def test_configs_flip_both_views_together_and_read_a_subset():
    setting = Setting(images_per_identity=4, keep_in_memory=True, dataset="folder", folder="hr")
    paired = method_config("m", Method("maug", "logexp"), setting, "/data")
    spec = paired.data["main"]
    assert spec.name == "lr_pairs" and spec.kwargs["dataset"] == "per_identity" and spec.kwargs["images"] == 4
    assert spec.kwargs["root"] == "/data/hr" and spec.kwargs["base"] == "folder"
    assert [(t.name, t.kwargs) for t in spec.transforms] == [("hflip", {"p": 0.5, "keys": ["hr", "lr"]})]
    baseline = method_config("b", Method(), setting, "/data").data["main"]
    assert baseline.name == "in_memory" and baseline.kwargs["dataset"] == "per_identity"
    assert baseline.transforms[0].kwargs["keys"] == ["image"]
    assert not method_config("b", Method(), Setting(flip=0.0), "/data").data["main"].transforms


def test_rows_that_train_the_same_model_share_one_run():
    rows = chapter_methods(ChapterPlan(lambdas=(1.0, 5.0)))
    models, owner = distinct_methods(rows)
    assert owner["1:1:2"] == owner["λ = 1"] == "MAug+Ours(1)"
    assert owner["reference code (50/0/50)"] == "1:0:1"  # the public code's draw is the 1:0:1 distribution
    assert owner["Single-14"] == "Aug+Ours(1)"  # 14-px copies and HR with LogExp (p = 1)
    assert owner["λ = 5"] == "λ = 5" and owner["MAug"] == "MAug" and owner["Aug+L1"] == "Aug+L1"
    assert owner["Aug+Ours(2)"] != owner["Aug+Ours(1)"]
    assert len(models) == len(set(owner.values())) == len(rows) - 4
    assert run_name("λ = 5") == "c3-lambda-5" and run_name("MAug+Ours(1)") == "c3-maug-plus-ours-1"
    with pytest.raises(ValueError, match="not rows of this kind"):
        chapter_methods(ChapterPlan(table4=("Nope",)))


def test_evaluation_sizes_follow_the_figures():
    rows = chapter_methods(ChapterPlan())
    _, owner = distinct_methods(rows)
    sizes = evaluation_sizes(rows, owner, (7, 14, 28, 112))
    assert sizes["Baseline"] == (7, 14, 20, 28, 112) and sizes["Aug+Ours(1)"] == sizes["Baseline"]  # Single-14
    assert sizes["MAug+L2"] == sizes["Aug+L1"] == (7, 14, 20) and set(sizes) == set(owner.values())


def _row(xq: list[bool], lfw: list[bool], d1: list[float], d2: list[float], d3: list[float]) -> RowEvaluation:
    def pairs(correct):
        n = len(correct)
        return PairOutcomes(np.zeros(n), np.ones(n, bool), np.array(correct), np.arange(n) // 2)

    scface = {f"d{i}": RankOutcomes(np.array(h, float), np.arange(len(h))) for i, h in enumerate((d1, d2, d3), 1)}
    return RowEvaluation(pairs(lfw), pairs(xq), scface, {112: pairs(lfw), 14: pairs(xq)}, None, None, {})


def test_row_statistics_are_the_tables_cells():
    row = _row([True, False, True, True], [True] * 4, [1, 0], [1, 1], [0, 0])
    cells = {k: s.value() for k, s in row_statistics(row).items()}
    assert cells[("XQLFW", "Accuracy")] == pytest.approx(75.0) and cells[("LFW", "Accuracy")] == 100.0
    assert cells[("SCface d1", "Rank-1")] == pytest.approx(50.0) and cells[("SCface d3", "Rank-1")] == 0.0
    assert cells[("SCface Avg", "Rank-1")] == pytest.approx(50.0)  # the mean of 50, 100 and 0
    assert cells[("LFW 14 px", "Accuracy")] == pytest.approx(75.0)
    units = bootstrap_units(row, np.array([0, 0, 1]))
    assert units["SCface"].tolist() == [0, 1, 0, 1, 0, 1] and units["XQLFW"].tolist() == [0, 0, 1, 1]


def test_claims_are_decided_from_the_paired_difference_of_two_cells():
    n = 40
    good, poor = _row([True] * n, [True] * n, [1] * 10, [1] * 10, [1] * 10), _row([False] * n, [True] * n, [0] * 10, [1] * 10, [1] * 10)
    statistics = {"MAug+Ours(1)": row_statistics(good), "Baseline": row_statistics(poor), "MAug": row_statistics(good)}
    boots = {test: stats.Bootstrap(units, resamples=200, seed=0) for test, units in bootstrap_units(good, np.arange(3)).items()}
    results = {r.claim.id: r for r in decide_claims(statistics, boots)}
    assert set(results) == {"ling2023.ours_beats_baseline_xqlfw", "ling2023.ours_beats_baseline_scface_d1",
                            "ling2023.logexp_beats_maug_alone", "ling2023.logexp_beats_maug_alone_scface",
                            "ling2023.logexp_costs_little_hr"}
    xq = results["ling2023.ours_beats_baseline_xqlfw"]
    assert xq.estimate.value == pytest.approx(100.0) and xq.verdict == "reproduced"
    assert set(xq.parts) == {"MAug+Ours(1), XQLFW", "Baseline, XQLFW"}
    same = results["ling2023.logexp_beats_maug_alone"]  # identical rows: exactly 0 with a zero-width interval
    assert (same.estimate.value, same.estimate.low, same.estimate.high) == (0.0, 0.0, 0.0) and same.verdict == "inconclusive"
    assert results["ling2023.logexp_costs_little_hr"].verdict == "reproduced"  # 0 > the -1 margin
    assert all(cells[0][0] and cells[1][0] for cells in CLAIM_CELLS.values())


def test_paper_beside_ours_shows_both_without_a_difference():
    estimate = stats.Estimate(61.0, 58.5, 63.5)
    text = paper_beside_ours({"Baseline": {("XQLFW", "Accuracy"): estimate}}, 4, ["Baseline", "Aug"], [("XQLFW", "Accuracy")])
    assert "| Baseline | 68.95 | 61.0 [58.5, 63.5] |" in text and "| Aug | 84.33 | – |" in text
    assert "difference" not in text


def test_scface_fine_tuning_takes_50_of_130_subjects_and_tests_on_the_rest():
    from lrfr.data.base import FaceRecord
    from lrfr.data.loaders import SCFaceSet
    from lrfr.experiments.maug import scface_subjects

    def record(i, probe):
        return FaceRecord(f"{i}_{probe}.jpg", i, f"{i:03d}", "probe" if probe else "mugshot", {"distance": 1})

    full = SCFaceSet(tuple(record(i, False) for i in range(130)), tuple(record(i, True) for i in range(130)))
    subjects, test = scface_subjects(full)
    assert subjects == [f"{i:03d}" for i in range(50)] and len(test.mugshots) == len(test.probes) == 80
    assert not set(subjects) & {r.identity for r in test.probes}
    assert len(scface_subjects(SCFaceSet(full.mugshots[:3], full.probes[:3]))[0]) == 1
