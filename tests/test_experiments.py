"""The chapters' shared workflow (data, cached runs) and the chapter-1/2 experiment helpers."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import stats

from lrfr.data import DATASETS
from lrfr.data.base import FaceDataset, FaceRecord
from lrfr.data.loaders import TinyFaceTest
from lrfr.experiments.chai2023 import (
    ExploreSet, _target_ri, finetune_config, FineTuning, paper_cells, ser_fiq_quality, table4_methods, tinyface_rank1,
    tinyface_subset, with_weights,
)
from lrfr.experiments.ui_cluster import bimodality_coefficient, probe_gallery_split
from lrfr.experiments import workflow
from lrfr.experiments.workflow import cached_run, config_hash, load_model, synthetic_data
from lrfr.losses.recognizability_index import recognizability_index
from lrfr.models import build_backbone
from lrfr.protocols.quality import ser_fiq
from lrfr.references import reference_values
from lrfr.runs import RunFolder, RunFolderError
from lrfr.training.config import DataSpec, ExperimentConfig, ModelSpec, TrainConfig


def toy_config(epochs: int = 2) -> ExperimentConfig:
    return ExperimentConfig(
        name="toy",
        train=TrainConfig(epochs=epochs, batch_size=16, progress=False, device="cpu"),
        model=ModelSpec(backbone="quick", backbone_kwargs={"input_size": 32, "embedding_size": 16}),
        data={"main": DataSpec("tests.toy:make_toy", {"num_classes": 3, "per_class": 8})},
    )


# ----------------------------------------------------------------------------- workflow


def test_synthetic_data_is_written_once_and_a_different_set_is_refused(tmp_path):
    root = tmp_path / "synth"
    assert synthetic_data(root, "tiny", seed=3) == root
    manifest = (root / "manifest.json").read_text()
    before = (root / "manifest.json").stat().st_mtime_ns
    synthetic_data(root, "tiny", seed=3)  # reused, not rewritten
    assert (root / "manifest.json").stat().st_mtime_ns == before
    assert json.loads(manifest)["seed"] == 3
    with pytest.raises(FileExistsError, match="preset 'tiny' with seed 3; expected preset 'tiny' with seed 4"):
        synthetic_data(root, "tiny", seed=4)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file.txt").write_text("x")
    with pytest.raises(FileExistsError, match="has no manifest.json"):
        synthetic_data(tmp_path / "other", "tiny", seed=0)
    with pytest.raises(ValueError, match="unknown synthetic preset 'huge'"):
        synthetic_data(tmp_path / "new", "huge", seed=0)


@pytest.mark.parametrize("version", ["generator_version", "writer_version"])
def test_synthetic_data_from_another_generator_or_writer_version_is_written_again(tmp_path, capsys, version):
    root = synthetic_data(tmp_path / "synth", "tiny", seed=3)
    manifest = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").write_text(json.dumps({**manifest, version: "old"}))
    (root / "stale.txt").write_text("from the old version")
    synthetic_data(root, "tiny", seed=3)
    assert "writing it again" in capsys.readouterr().out
    assert json.loads((root / "manifest.json").read_text()) == manifest
    assert not (root / "stale.txt").exists() and not (tmp_path / ".synth.rewrite").exists()


def test_config_hash_follows_the_version_of_the_synthetic_data_it_reads(tmp_path):
    root = tmp_path / "synth"
    (root / "hr").mkdir(parents=True)
    config = ExperimentConfig(name="x", data={"main": DataSpec("folder", {"root": str(root / "hr")})})
    plain = config_hash(config)  # no manifest: data not written by lrfr data synth
    (root / "manifest.json").write_text(json.dumps({"generator_version": "a", "writer_version": 1}))
    first = config_hash(config)
    (root / "manifest.json").write_text(json.dumps({"generator_version": "b", "writer_version": 1}))
    assert len({plain, first, config_hash(config)}) == 3


def test_config_hash_is_the_one_recorded_before_validation_and_the_guard_setting_existed():
    """Adding TrainConfig.validation and finite_check_every (at their defaults) leaves a config's hash, and so
    every cached run, as it was: 703bdc35 is toy_config()'s hash computed by the code before them (b4447fa)."""
    assert config_hash(toy_config()) == "703bdc35"
    checked = ExperimentConfig.from_dict({**toy_config().to_dict(), "train": {**toy_config().to_dict()["train"], "finite_check_every": 5}})
    assert config_hash(checked) != "703bdc35"


def test_config_hash_ignores_the_name_and_follows_every_setting():
    config = toy_config()
    renamed = ExperimentConfig.from_dict({**config.to_dict(), "name": "other"})
    longer = toy_config(epochs=3)
    assert config_hash(config) == config_hash(renamed)
    assert config_hash(config) != config_hash(longer)
    assert len(config_hash(config)) == 8


def test_cached_run_trains_once_and_reloads_the_same_model(tmp_path):
    run, model = cached_run(toy_config(), tmp_path)
    assert run.path.name == f"toy-{config_hash(toy_config())}" and not model.training
    weights = run.path / "checkpoints" / "epoch_0001.safetensors"
    stamp = weights.stat().st_mtime_ns
    again, reloaded = cached_run(toy_config(), tmp_path)
    assert again.path == run.path and weights.stat().st_mtime_ns == stamp  # not re-trained
    for key, value in model.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[key], value)
    other, _ = cached_run(toy_config(epochs=1), tmp_path)
    assert other.path != run.path
    torch.testing.assert_close(load_model(run.path).state_dict()["heads.main.weight"], model.state_dict()["heads.main.weight"])


def test_cached_run_reuses_a_finished_run_without_training(tmp_path, monkeypatch):
    """A finished run (its final epoch's checkpoint is there) is loaded, never re-entered into training."""
    run, model = cached_run(toy_config(), tmp_path)
    assert run.latest_checkpoint() == 2
    monkeypatch.setattr(workflow, "run_experiment", lambda *a, **k: pytest.fail("a finished run was trained again"))
    again, reloaded = cached_run(toy_config(), tmp_path)
    assert again.path == run.path
    torch.testing.assert_close(reloaded.state_dict(), model.state_dict())


def test_cached_run_trains_the_last_epoch_of_a_run_killed_during_it(tmp_path):
    """Killed during its last epoch, a run has only epoch_0001 of 2: it must train epoch 2, not be taken
    as complete."""
    run, finished = cached_run(toy_config(), tmp_path)
    for suffix in ("safetensors", "state.pt"):
        (run.path / "checkpoints" / f"epoch_0002.{suffix}").unlink()
    assert run.latest_checkpoint() == 1
    again, model = cached_run(toy_config(), tmp_path)
    assert again.latest_checkpoint() == 2
    torch.testing.assert_close(model.state_dict(), finished.state_dict())  # resumed exactly


def test_a_run_folder_without_config_is_an_error_not_an_adoption(tmp_path):
    """A folder holding checkpoints but no config.json is never resumed under another config."""
    run, _ = cached_run(toy_config(), tmp_path)
    (run.path / "config.json").unlink()
    with pytest.raises(RunFolderError, match="config.json"):
        cached_run(toy_config(), tmp_path)
    with pytest.raises(RunFolderError, match="config.json"):
        RunFolder.create(tmp_path, run.path.name, toy_config().to_dict(), seed=0, exist_ok=True)
    assert not (run.path / "config.json").exists()


@pytest.mark.parametrize("epochs_kept", [2, 1])
def test_a_run_folder_is_identified_by_its_recorded_config(tmp_path, epochs_kept):
    """A run whose recorded config differs from the requested one is refused, complete or not."""
    run, _ = cached_run(toy_config(), tmp_path)
    info = json.loads((run.path / "config.json").read_text())
    info["config"]["train"]["optimizer"]["lr"] = 0.05
    (run.path / "config.json").write_text(json.dumps(info))
    for epoch in range(epochs_kept + 1, 3):
        for suffix in ("safetensors", "state.pt"):
            (run.path / "checkpoints" / f"epoch_{epoch:04d}.{suffix}").unlink()
    with pytest.raises(RunFolderError, match="different run"):
        cached_run(toy_config(), tmp_path)


def test_keep_in_memory_reads_each_image_once_and_serves_a_copy(tmp_path):
    from PIL import Image

    path = tmp_path / "face.png"
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(path)
    dataset = FaceDataset([FaceRecord(path, 0, "a", "train")], 4).keep_in_memory()
    first = dataset[0]["image"]
    first.mul_(0)  # an in-place transform must not corrupt the kept image
    path.unlink()  # served from memory from now on
    second = dataset[0]["image"]
    assert float(first.abs().sum()) == 0
    assert float(second.mean()) == pytest.approx(200 / 127.5 - 1, abs=1e-5)
    assert float(dataset._memory[0].mean()) == pytest.approx(200 / 127.5 - 1, abs=1e-5)


def test_the_in_memory_factory_wraps_face_datasets_only(tmp_path):
    with pytest.raises(ValueError, match="built a ToyFaces; expected a FaceDataset"):
        DATASETS.build("in_memory", dataset="tests.toy:make_toy")


# ----------------------------------------------------------------------------- chapter 1


def test_bimodality_coefficient_by_hand_and_against_scipy():
    # [0, 0, 1, 1]: skewness 0; sample excess kurtosis 3/(2*1) * (5 * (0.0625/0.25^2 - 3) + 6) = -6;
    # b = (0 + 1) / (-6 + 3 * 9 / (2 * 1)) = 1 / 7.5.
    assert bimodality_coefficient(np.array([0.0, 0.0, 1.0, 1.0])) == pytest.approx(1 / 7.5)
    values = np.random.default_rng(0).normal(size=500)
    g, k, n = stats.skew(values, bias=False), stats.kurtosis(values, bias=False), len(values)
    assert bimodality_coefficient(values) == pytest.approx((g**2 + 1) / (k + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))))
    two_modes = np.concatenate([np.random.default_rng(1).normal(0, 0.1, 500), np.random.default_rng(2).normal(1, 0.1, 500)])
    assert bimodality_coefficient(two_modes) > 5 / 9 > bimodality_coefficient(values)
    with pytest.raises(ValueError, match="expected >= 4 values"):
        bimodality_coefficient(np.ones(10))


def test_probe_gallery_split_halves_each_identity():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 2])
    probe, gallery = probe_gallery_split(labels, seed=0)
    assert (probe ^ gallery).all()
    assert [int(probe[labels == k].sum()) for k in (0, 1, 2)] == [2, 1, 0]  # 4 // 2, 3 // 2, single -> gallery


# ----------------------------------------------------------------------------- chapter 2


def test_table4_methods_are_the_papers_rows_with_eq10_weights():
    methods = table4_methods(alpha=5, beta=2, gamma=1)
    assert list(methods) == list(dict.fromkeys(r.row for r in reference_values("chai2023", 4)))
    assert methods["I"].ri_weights == (0, 2, 0) and methods["II"].ri_weights == (0, 0, 1)
    assert methods["III"].ri_weights == (5, 0, 0) and methods["Ours"].ri_weights == (5, 2, 1)
    assert methods["MagFace"].ri_weights is None and methods["MagFace"].head == "magface"
    assert with_weights(methods["Ours"], 1, 2, 3).ri_weights == (1, 2, 3)


def test_finetune_config_adds_the_ui_stream_and_term_only_for_ri_methods(tmp_path):
    setting = FineTuning(data_root=str(tmp_path), pretrained=str(tmp_path / "pre"), ri_kwargs={"tau": 1.0})
    ours = finetune_config("ours", table4_methods()["Ours"], setting)
    assert [t.kind for t in ours.model.terms] == ["classification", "recognizability"]
    assert ours.model.terms[1].kwargs == {"alpha": 5.0, "beta": 2.0, "gamma": 1.0, "tau": 1.0}
    assert ours.data["ui"].kwargs["root"] == str(tmp_path / "ui") and ours.model.pretrained == str(tmp_path / "pre")
    cosface = finetune_config("cosface", table4_methods()["CosFace"], setting)
    assert set(cosface.data) == {"main"} and [t.kind for t in cosface.model.terms] == ["classification"]
    assert cosface.data["main"].kwargs == {"dataset": "tinyface_train", "root": str(tmp_path / "tinyface"), "input_size": 32}
    assert cosface.train.schedule.milestones == [4]


def explore(embeddings: np.ndarray, labels: list[int], split: list[str]) -> ExploreSet:
    n = len(labels)
    center = np.array([0.0, 0.0, 1.0])
    return ExploreSet(
        records=(), split=np.array(split), labels=np.array(labels), embeddings=embeddings, norms=np.ones(n),
        center=center, ui_distance=np.zeros(n), ri_target=np.zeros(n), ri_learned=None, attended=None,
    )


def test_tinyface_rank1_with_and_without_distractors_by_hand():
    # probe 0 (id 0) is nearest its mate; probe 1 (id 1) is nearest the distractor, then its mate.
    vectors = np.array([[1, 0, 0], [0, 1, 0.1], [1, 0.1, 0], [0, 1, 0], [0, 1, 0.12]], dtype=np.float32)
    data = explore(vectors, [0, 1, 0, 1, -1], ["probe", "probe", "gallery", "gallery", "distractor"])
    assert tinyface_rank1(data) == {"w/ dis": 50.0, "w/o dis": 100.0}


def test_target_ri_uses_gallery_templates_as_prototypes():
    vectors = np.array([[1, 0.2, 0], [1, 0, 0], [0, 1, 0], [0.5, 0.5, 0.7]], dtype=np.float32)
    labels, split = np.array([0, 0, 1, -1]), np.array(["probe", "gallery", "gallery", "distractor"])
    center = np.array([0.0, 0.0, 1.0])
    ri = _target_ri(vectors, labels, split, center)
    templates = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])  # one gallery face per identity
    expected = recognizability_index(torch.as_tensor(vectors[:3]), torch.tensor([0, 0, 1]), templates, torch.as_tensor(center)).ri
    np.testing.assert_allclose(ri[:3], expected.numpy(), rtol=1e-6)
    assert np.isnan(ri[3])
    # probe 0 by hand: d_P = 1 - 1/sqrt(1.04), d_N = 1 - 0.2/sqrt(1.04), d_UI = 1
    d_p, d_n = 1 - 1 / np.sqrt(1.04), 1 - 0.2 / np.sqrt(1.04)
    assert ri[0] == pytest.approx(d_n / (d_p + 1e-7), rel=1e-4)


def test_paper_cells_map_protocol_results_to_tables_2_and_3():
    values = {
        ("SCface", "d1", "rank-1"): 50.0, ("SCface", "mean", "rank-1"): 25.0,
        ("SurvFace", "verification", "TPR@FAR=0.001"): 10.0, ("SurvFace", "verification", "AUC"): 90.0,
        ("SurvFace", "open-set identification", "TPIR20@FPIR=0.3"): 20.0,
    }
    assert paper_cells(values, "Ours") == {
        ("Ours", "4.2m", "Rank-1 IR"): 50.0, ("Ours", "Avg.", "Rank-1 IR"): 25.0,
        ("Ours", "0.001", "TPR@FAR"): 10.0, ("Ours", "0.3", "TPIR20@FPIR"): 20.0,
    }


def test_ser_fiq_quality_runs_the_trunk_once_and_equals_whole_model_passes():
    """The dropout is in the head: feature maps once + head passes = SER-FIQ of the whole backbone (same seed)."""
    torch.manual_seed(0)
    backbone = build_backbone("quick", input_size=16, embedding_size=8, widths=[4, 8, 8], blocks=[1, 1, 1]).eval()
    images = torch.randn(10, 3, 16, 16)
    dropout = next(m for m in backbone.head.modules() if isinstance(m, torch.nn.Dropout))
    cheap = ser_fiq_quality(SimpleNamespace(backbone=backbone), images, passes=6, rate=0.5, seed=3, batch_size=4)
    assert dropout.p == 0.0
    dropout.p = 0.5
    whole = ser_fiq(backbone, images, dropout, passes=6, seed=3, batch_size=4)
    np.testing.assert_allclose(cheap, whole, rtol=1e-5)
    assert np.ptp(whole) > 0  # the passes differ, so the scores are not trivially equal


def test_tinyface_subset_keeps_chosen_identities_and_first_distractors(tmp_path):
    record = lambda label, split: FaceRecord(tmp_path / f"{split}{label}.png", label, None, split)  # noqa: E731
    test = TinyFaceTest(probe=tuple(record(i, "probe") for i in range(5)),
                        gallery=tuple(record(i, "gallery") for i in range(5)),
                        distractors=tuple(record(-1, f"d{i}") for i in range(4)))
    subset = tinyface_subset(test, identities=2, distractors=3, seed=1)
    assert [r.label for r in subset.probe] == [r.label for r in subset.gallery] and len(subset.probe) == 2
    assert subset.distractors == test.distractors[:3]
    assert tinyface_subset(test, identities=2, seed=1) == replace(subset, distractors=test.distractors)
    with pytest.raises(ValueError, match="identities 6"):
        tinyface_subset(test, identities=6)


def test_density_modes_counts_separated_modes_not_skew():
    from lrfr.experiments.ui_cluster import density_modes

    rng = np.random.default_rng(0)
    assert density_modes(rng.normal(size=2000)) == 1
    assert density_modes(rng.exponential(size=2000)) == 1  # skewed, one mode (at the left end)
    assert density_modes(np.concatenate([rng.normal(0, 0.1, 1000), rng.normal(1, 0.1, 1000)])) == 2
    assert density_modes(np.concatenate([rng.normal(0, 0.1, 1000), rng.normal(1, 0.1, 10)])) == 1  # below the floor
    with pytest.raises(ValueError, match="expected >= 4 values"):
        density_modes(np.zeros(3))
