"""SCface rank-1 one chapter records for another (lrfr.experiments.scface_records)."""

import os

import pytest

from lrfr.experiments.scface_records import KEY, record_scface, recorded_scface
from lrfr.runs import RunFolder, RunFolderError
from lrfr.stats import Estimate


def estimate(value: float) -> Estimate:
    return Estimate(value, value - 2.0, value + 2.0, units=130)


def test_records_are_read_back_for_the_same_mode_and_scface_folder_only(tmp_path):
    scface, other = tmp_path / "data" / "scface", tmp_path / "elsewhere" / "scface"
    results = tmp_path / "results"
    ours = RunFolder.create(results, "ri-ours", {}, seed=0)
    record_scface(ours, "Chai et al. 2023 (Ours)", "chapter 2", "quick", scface, {"d1": estimate(10.0), "d2": estimate(20.0)})
    record_scface(RunFolder.create(results, "smoke-run", {}, seed=0), "X", "chapter 3", "smoke", scface, {"d1": estimate(1.0)})
    record_scface(RunFolder.create(results, "other-data", {}, seed=0), "Y", "chapter 3", "quick", other, {"d1": estimate(2.0)})
    RunFolder.create(results, "no-record", {}, seed=0).write_metrics({"rank1": 3.0})
    (results / "not-a-run").mkdir()
    (results / "not-a-run" / "metrics.json").write_text("{}")

    [found] = recorded_scface(results, "quick", tmp_path / "data" / ".." / "data" / "scface")
    assert (found.method, found.chapter, found.mode) == ("Chai et al. 2023 (Ours)", "chapter 2", "quick")
    assert found.rank1 == {"d1": estimate(10.0), "d2": estimate(20.0)}
    assert found.row(2) == "Chai et al. 2023 (Ours) (this book, chapter 2), d2"
    assert ours.metrics()[KEY]["rank1"]["d2"]["value"] == 20.0
    assert recorded_scface(results, "full", scface) == []


def test_of_two_records_of_one_method_the_newer_is_read(tmp_path):
    results = tmp_path / "results"
    old = RunFolder.create(results, "b-old", {}, seed=0)
    new = RunFolder.create(results, "a-new", {}, seed=0)
    record_scface(old, "M", "chapter 3", "quick", tmp_path, {"d1": estimate(5.0)})
    record_scface(new, "M", "chapter 3", "quick", tmp_path, {"d1": estimate(7.0)})
    os.utime(old.path / "metrics.json", (1e9, 1e9))
    [found] = recorded_scface(results, "quick", tmp_path)
    assert found.rank1["d1"].value == 7.0


def test_a_malformed_record_names_its_file(tmp_path):
    run = RunFolder.create(tmp_path, "broken", {}, seed=0)
    run.write_metrics({KEY: {"mode": "quick", "scface": str(tmp_path.resolve())}})
    with pytest.raises(RunFolderError, match=r"broken/metrics.json: 'scface_rank1' is not a record"):
        recorded_scface(tmp_path, "quick", tmp_path)
