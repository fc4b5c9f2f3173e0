"""Benchmark protocols on the tiny synthetic layouts: known answers from fake embedders, the cache, a real model."""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from lrfr.data import (
    load_pairs,
    load_scface,
    load_survface_identification,
    load_survface_verification,
    load_tinyface_test,
)
from lrfr.data.base import FaceRecord
from lrfr.data.writers import write_synthetic
from lrfr.models import build_backbone
from lrfr.protocols.benchmarks import (
    BenchmarkError,
    evaluate_pairs,
    evaluate_scface,
    evaluate_scface_splits,
    evaluate_survface,
    evaluate_tinyface,
    scface_outcomes,
    scface_splits,
    survface_outcomes,
)
from lrfr.runs import RunFolder

DIM = 64


class FakeEmbedder:
    """One-hot of the record's identity (for SurvFace verification images, the file-name prefix);
    a random unit vector for images without identity; ``-onehot`` for records that ``wrong`` picks."""

    def __init__(self, wrong: Callable[[FaceRecord], bool] = lambda record: False) -> None:
        self.wrong = wrong
        self.slots: dict[str, int] = {}
        self.calls = 0

    def __call__(self, records: Sequence[FaceRecord]) -> np.ndarray:
        self.calls += 1
        return np.stack([self.vector(record) for record in records])

    def vector(self, record: FaceRecord) -> np.ndarray:
        stem = record.path.stem
        identity = record.identity or (stem.split("_")[0] if "_" in stem else None)
        if identity is None:
            rng = np.random.default_rng(zlib.crc32(str(record.path).encode()))
            vector = rng.normal(size=DIM)
            return vector / np.linalg.norm(vector)
        vector = np.zeros(DIM)
        vector[self.slots.setdefault(identity, len(self.slots))] = 1.0
        return -vector if self.wrong(record) else vector


def odd_probe(record: FaceRecord) -> bool:
    return record.split == "probe" and record.label % 2 == 1


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("benchmarks") / "synth"
    write_synthetic(root, preset="tiny", seed=0)
    return root


@pytest.fixture(scope="module")
def data(synth: Path) -> dict:
    return {
        "tinyface": load_tinyface_test(synth / "tinyface"),
        "scface": load_scface(synth / "scface"),
        "verification": load_survface_verification(synth / "survface"),
        "identification": load_survface_identification(synth / "survface"),
        "lfw": load_pairs(synth / "lfw"),
        "xqlfw": load_pairs(synth / "xqlfw", dataset="XQLFW"),
    }


def table(rows: list[dict]) -> dict[tuple[str, str], float]:
    return {(row["setting"], row["metric"]): row["value"] for row in rows}


def run_all(embed, data: dict, run: RunFolder | None = None, **options) -> list[dict]:
    return [
        *evaluate_tinyface(embed, data["tinyface"], run=run, **options),
        *evaluate_scface(embed, data["scface"], run=run, **options),
        *evaluate_survface(embed, data["verification"], data["identification"], run=run, **options),
        *evaluate_pairs(embed, data["lfw"], "LFW", run=run, **options),
        *evaluate_pairs(embed, data["xqlfw"], "XQLFW", run=run, **options),
    ]


# ----------------------------------------------------------------------------- known answers


def test_tinyface_perfect_embedder(data: dict) -> None:
    rows = evaluate_tinyface(FakeEmbedder(), data["tinyface"])
    assert {row["benchmark"] for row in rows} == {"TinyFace"}
    assert table(rows) == {
        (setting, metric): 1.0
        for setting in ("without distractors", "with distractors")
        for metric in ("rank-1", "rank-5", "rank-20", "rank-50", "mAP")
    }


def test_tinyface_wrong_for_odd_identities(data: dict) -> None:
    probes = data["tinyface"].probe
    assert sorted(r.label for r in probes) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]  # 4 of 10 probes are odd
    result = table(evaluate_tinyface(FakeEmbedder(odd_probe), data["tinyface"]))
    # a wrong probe scores -1 with its 2 mates and more with every other image: they rank last of N
    for setting, gallery_size in (("without distractors", 10), ("with distractors", 18)):
        wrong_ap = (1 / (gallery_size - 1) + 2 / gallery_size) / 2
        assert result[setting, "rank-1"] == pytest.approx(0.6)
        assert result[setting, "mAP"] == pytest.approx((6 * 1.0 + 4 * wrong_ap) / 10)
    assert result["without distractors", "rank-20"] == 1.0  # all 10 gallery images within rank 20


def test_tinyface_without_loaded_distractors(synth: Path) -> None:
    rows = evaluate_tinyface(FakeEmbedder(odd_probe), load_tinyface_test(synth / "tinyface", distractors=False))
    assert {row["setting"] for row in rows} == {"without distractors"}
    assert table(rows)["without distractors", "rank-1"] == pytest.approx(0.6)


def test_scface_perfect_and_wrong_for_odd_subjects(data: dict) -> None:
    assert [r.label for r in data["scface"].mugshots] == [0, 1, 2]  # subject 1 of 3 is odd
    settings = ("d1", "d2", "d3", "mean")
    assert table(evaluate_scface(FakeEmbedder(), data["scface"])) == {(s, "rank-1"): 1.0 for s in settings}
    result = table(evaluate_scface(FakeEmbedder(odd_probe), data["scface"]))
    assert result == pytest.approx({(s, "rank-1"): 2 / 3 for s in settings})


def test_survface_perfect_embedder(data: dict) -> None:
    rows = evaluate_survface(FakeEmbedder(), data["verification"], data["identification"])
    expected = {("verification", f"TPR@FAR={far}"): 1.0 for far in ("0.3", "0.1", "0.01", "0.001")}
    expected["verification", "AUC"] = 1.0
    expected.update({("open-set identification", f"TPIR20@FPIR={f}"): 1.0 for f in ("0.3", "0.2", "0.1")})
    assert table(rows) == expected


def test_survface_wrong_for_odd_mated_probes(data: dict) -> None:
    """Mated probes of labels 0, 1, 2 (2 each); those of label 1 score -1 with their template, below
    every FPIR threshold, so TPIR20 = 4/6; verification is untouched."""
    assert sorted(r.label for r in data["identification"].mated_probe) == [0, 0, 1, 1, 2, 2]
    wrong = FakeEmbedder(lambda record: record.split == "mated_probe" and record.label % 2 == 1)
    result = table(evaluate_survface(wrong, data["verification"], data["identification"]))
    for fpir in ("0.3", "0.2", "0.1"):
        assert result["open-set identification", f"TPIR20@FPIR={fpir}"] == pytest.approx(4 / 6)
    assert result["verification", "AUC"] == 1.0


def test_survface_chance_verification(data: dict) -> None:
    """Every image the same vector: all scores tie, so no genuine pair beats any threshold and AUC = 1/2."""
    constant = lambda records: np.ones((len(records), 4))  # noqa: E731
    result = table(evaluate_survface(constant, data["verification"], data["identification"]))
    assert result["verification", "AUC"] == 0.5
    assert result["verification", "TPR@FAR=0.3"] == 0.0


def test_scface_outcomes_resample_subjects_not_probes(data: dict) -> None:
    """Subject 1 of 3 always wrong, each subject with the same probes per distance: a resample's rank-1 is the
    share of its 3 drawn subjects that are not subject 1, Binomial(3, 2/3) / 3, whose 2.5 % and 97.5 %
    quantiles are 0 and 1 (P(0) = 1/27 > 2.5 %, P(1) = 8/27). Resampling the probes would give a narrow interval."""
    outcomes = scface_outcomes(FakeEmbedder(odd_probe), data["scface"])
    assert {row["setting"]: row["value"] for row in outcomes.rows()} == pytest.approx(
        {row["setting"]: row["value"] for row in evaluate_scface(FakeEmbedder(odd_probe), data["scface"])})
    for (benchmark, setting, metric), estimate in outcomes.estimates(resamples=2000).items():
        assert (benchmark, metric) == ("SCface", "rank-1")
        assert (estimate.value, estimate.low, estimate.high, estimate.units) == pytest.approx((2 / 3, 0.0, 1.0, 3))
    perfect = scface_outcomes(FakeEmbedder(), data["scface"]).estimates(resamples=100)
    assert all((e.value, e.low, e.high) == (1.0, 1.0, 1.0) for e in perfect.values())


def test_survface_outcomes_give_the_rows_with_identity_intervals(data: dict) -> None:
    """Mated probes of label 1 score -1 with their template: TPIR20 = 4/6, varying with how often identity 1 is
    drawn (an interval of positive width around it); verification stays perfect (a zero-width interval at 1)."""
    wrong = FakeEmbedder(lambda record: record.split == "mated_probe" and record.label % 2 == 1)
    outcomes = survface_outcomes(wrong, data["verification"], data["identification"])
    rows = [row for part in outcomes.values() for row in part.rows()]
    assert table(rows) == pytest.approx(table(evaluate_survface(wrong, data["verification"], data["identification"])))
    open_set = outcomes["open-set identification"]
    assert sorted(open_set.units[open_set.units >= 0]) == [0, 0, 1, 1, 2, 2]
    for key, estimate in open_set.estimates(resamples=500).items():
        assert estimate.value == pytest.approx(4 / 6)
        assert estimate.low < 4 / 6 < estimate.high, key
    for key, estimate in outcomes["verification"].estimates(resamples=100).items():
        assert (estimate.value, estimate.low, estimate.high) == (1.0, 1.0, 1.0), key


@pytest.mark.parametrize("benchmark", ["LFW", "XQLFW"])
def test_pairs_perfect_embedder(data: dict, benchmark: str) -> None:
    rows = evaluate_pairs(FakeEmbedder(), data[benchmark.lower()], benchmark)
    assert rows == [
        {"benchmark": benchmark, "setting": "10-fold", "metric": "accuracy", "value": 1.0},
        {"benchmark": benchmark, "setting": "10-fold", "metric": "accuracy std", "value": 0.0},
    ]


def test_pairs_one_fold_wrong(data: dict) -> None:
    """Fold 0's genuine pairs made opposite (score -1): that fold scores 1/2 at the threshold of the
    other folds (between 0 and 1), the others 1, so accuracy 0.95 +- 0.15 over 10 folds."""
    pairs = data["lfw"]
    fold0 = {pairs.records[i].path for i in pairs.pairs[(pairs.folds == 0) & pairs.is_same, 1]}
    rows = table(evaluate_pairs(FakeEmbedder(lambda record: record.path in fold0), pairs))
    assert rows["10-fold", "accuracy"] == pytest.approx(0.95)
    assert rows["10-fold", "accuracy std"] == pytest.approx(math.sqrt(0.1 * 0.45**2 + 0.9 * 0.05**2))


# ----------------------------------------------------------------------------- SCface splits


def test_scface_splits_are_seeded_disjoint_partitions() -> None:
    subjects = [f"{i:03d}" for i in range(1, 131)]
    splits = scface_splits(subjects, seed=3)
    assert len(splits) == 10 and splits == scface_splits(subjects, seed=3) != scface_splits(subjects, seed=4)
    for test, train in splits:
        assert (len(test), len(train)) == (80, 50)
        assert sorted(test + train) == subjects
    assert len({test for test, _ in splits}) == 10


def test_scface_split_protocol(data: dict) -> None:
    subjects = [r.identity for r in data["scface"].mugshots]
    splits = scface_splits(subjects, n_test=2, repeats=3, seed=0)
    tuned: list[tuple[str, ...]] = []

    def fine_tune(train: tuple[str, ...]) -> FakeEmbedder:
        tuned.append(train)
        return FakeEmbedder(odd_probe)

    rows = evaluate_scface_splits(fine_tune, data["scface"], splits)
    assert tuned == [train for _, train in splits]
    # subject "002" (label 1) is wrong: rank-1 is 1/2 when it is a test subject, else 1
    expected = [0.5 if "002" in test else 1.0 for test, _ in splits]
    for index, value in enumerate(expected):
        assert {(r["setting"], r["value"]) for r in rows if r.get("split") == index} == {
            (s, value) for s in ("d1", "d2", "d3", "mean")
        }
    summary = {(r["setting"], r["split"]): r["value"] for r in rows if r["split"] in ("mean", "std")}
    assert summary["d2", "mean"] == pytest.approx(np.mean(expected))
    assert summary["mean", "std"] == pytest.approx(np.std(expected))


@pytest.mark.parametrize("n_test, repeats", [(3, 10), (0, 10), (80, 10), (2, 0)])
def test_scface_splits_bad_input(n_test: int, repeats: int) -> None:
    with pytest.raises(BenchmarkError, match="n_test|repeats"):
        scface_splits(["001", "002", "003"], n_test=n_test, repeats=repeats)


def test_scface_split_protocol_rejects_overlap_and_unknown(data: dict) -> None:
    with pytest.raises(BenchmarkError, match="both"):
        evaluate_scface_splits(lambda train: FakeEmbedder(), data["scface"], [(("001", "002"), ("002", "003"))])
    with pytest.raises(BenchmarkError, match="no mugshot"):
        evaluate_scface_splits(lambda train: FakeEmbedder(), data["scface"], [(("001", "999"), ("003",))])


# ----------------------------------------------------------------------------- cache and errors


def test_cache_reuses_embeddings(data: dict, tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path, "run", {}, seed=0)
    first = FakeEmbedder()
    rows = run_all(first, data, run)
    assert first.calls == 10  # TinyFace 3 sets, SCface 2, SurvFace 3, LFW 1, XQLFW 1
    assert "tinyface_probe" in run.embedding_sets()
    again = FakeEmbedder()
    assert run_all(again, data, run) == rows
    assert again.calls == 0


def test_cache_skips_fine_tuning(data: dict, tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path, "run", {}, seed=0)
    splits = scface_splits([r.identity for r in data["scface"].mugshots], n_test=2, repeats=2, seed=1)
    tuned: list[tuple[str, ...]] = []

    def fine_tune(train: tuple[str, ...]) -> FakeEmbedder:
        tuned.append(train)
        return FakeEmbedder()

    rows = evaluate_scface_splits(fine_tune, data["scface"], splits, run=run)
    assert evaluate_scface_splits(fine_tune, data["scface"], splits, run=run) == rows
    assert len(tuned) == 2


def test_cache_of_other_images_is_an_error(data: dict, tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path, "run", {}, seed=0)
    evaluate_pairs(FakeEmbedder(), data["lfw"], "LFW", run=run)
    with pytest.raises(BenchmarkError, match="other images"):
        evaluate_pairs(FakeEmbedder(), data["xqlfw"], "LFW", run=run)


def test_bad_embedder_output_and_flip_without_model(data: dict) -> None:
    with pytest.raises(BenchmarkError, match="shape"):
        evaluate_pairs(lambda records: np.ones((len(records) - 1, 4)), data["lfw"])
    with pytest.raises(BenchmarkError, match="flip_fusion"):
        evaluate_pairs(FakeEmbedder(), data["lfw"], flip_fusion=True)


# ----------------------------------------------------------------------------- a real model


def test_untrained_backbone_end_to_end_with_flip_fusion(data: dict, tmp_path: Path) -> None:
    model = build_backbone("quick", input_size=32)
    run = RunFolder.create(tmp_path, "run", {}, seed=0)
    rows = run_all(model, data, run, flip_fusion=True, batch_size=16)
    assert len(rows) == 10 + 4 + 8 + 2 + 2
    assert all(0.0 <= row["value"] <= 1.0 for row in rows)
    assert "scface_all_probes_flip" in run.embedding_sets()
    assert run_all(model, data, run, flip_fusion=True) == rows  # from the cache
