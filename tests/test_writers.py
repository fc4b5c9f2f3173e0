"""``lrfr data synth``: every layout written, read back by the real loaders, deterministic, crash-safe."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from lrfr.cli import main
from lrfr.data import (
    load_folder,
    load_pairs,
    load_scface,
    load_survface_identification,
    load_survface_train,
    load_survface_verification,
    load_tinyface_test,
    load_tinyface_train,
    load_unlabelled,
)
from lrfr.data.base import read_image
from lrfr.data.synthetic import VERSION as SYNTHFACE_VERSION
from lrfr.data.synthetic import SynthFace
from lrfr.data.writers import PLANNERS, PRESETS, Preset, write_synthetic

SEED = 3


def file_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "tiny"
    assert main(["data", "synth", "--preset", "tiny", "--out", str(out), "--seed", str(SEED)]) == 0
    return out


@pytest.fixture(scope="module")
def manifest(tiny) -> dict:
    return json.loads((tiny / "manifest.json").read_text())


def read_all(root: Path) -> dict[str, dict[str, object]]:
    """Every dataset read back by its loader, as the manifest's ``datasets`` section counts it."""
    tinyface_test = load_tinyface_test(root / "tinyface")
    scface = load_scface(root / "scface")
    ident = load_survface_identification(root / "survface")
    verification = load_survface_verification(root / "survface")
    splits = {
        "hr": {"train": load_folder(root / "hr").records},
        "tinyface": {
            "train": load_tinyface_train(root / "tinyface").records,
            "probe": tinyface_test.probe,
            "gallery": tinyface_test.gallery,
            "distractor": tinyface_test.distractors,
        },
        "scface": {"mugshot": scface.mugshots, **{f"distance_{d}": scface.probes_at(d) for d in (1, 2, 3)}},
        "survface": {
            "train": load_survface_train(root / "survface").records,
            "verification": verification.records,
            "gallery": ident.gallery,
            "mated_probe": ident.mated_probe,
            "unmated_probe": ident.unmated_probe,
        },
        "lfw": {"test": load_pairs(root / "lfw").records},
        "xqlfw": {"test": load_pairs(root / "xqlfw", "XQLFW").records},
        "ui": {"ui": load_unlabelled(root / "ui").records},
    }
    counts = {
        name: {split: {"images": len(records), "identities": len({r.identity for r in records if r.identity is not None})} for split, records in parts.items()}
        for name, parts in splits.items()
    }
    counts["survface"]["verification"]["identities"] = len({r.path.name.split("_")[0] for r in verification.records})
    counts["survface"]["verification"].update(genuine_pairs=int(verification.is_same.sum()), impostor_pairs=int((~verification.is_same).sum()))
    for name in ("lfw", "xqlfw"):
        pairs = load_pairs(root / name, name.upper())
        counts[name]["test"].update(genuine_pairs=int(pairs.is_same.sum()), impostor_pairs=int((~pairs.is_same).sum()), folds=len(set(pairs.folds.tolist())))
    return counts


def test_every_loader_reads_the_counts_of_the_manifest(tiny, manifest):
    assert read_all(tiny) == manifest["datasets"]
    assert manifest["seed"] == SEED and manifest["preset"] == "tiny" and manifest["sizes"]["scface_subjects"] == 3
    assert manifest["generator_version"] == SYNTHFACE_VERSION
    images = sum(s["images"] for parts in manifest["datasets"].values() for s in parts.values())
    assert images == sum(1 for p in tiny.rglob("*.jpg"))


def test_layout_and_side_files(tiny):
    test = tiny / "tinyface" / "Testing_Set"
    probe = scipy.io.loadmat(test / "probe_img_ID_pairs.mat")
    assert probe["probe_set"].shape == (10, 1) and probe["probe_ids"].shape == (10, 1)
    assert str(probe["probe_set"][0, 0][0]) == "6_1.jpg" and probe["probe_ids"][0, 0] == 6.0
    assert sorted(p.name for p in (test / "Gallery_Distractor").iterdir())[:3] == ["1.jpg", "2.jpg", "3.jpg"]
    assert (tiny / "scface" / "mugshot_frontal_cropped_all" / "003_frontal.jpg").is_file()
    assert (tiny / "scface" / "surveillance_cameras_distance_1" / "cam5" / "002_cam5_1.jpg").is_file()
    assert (tiny / "lfw" / "pairs.txt").read_text().splitlines()[:4] == [
        "10 2", "Synth_00001\t1\t2", "Synth_00002\t1\t2", "Synth_00001\t1\tSynth_00002\t3"
    ]
    assert (tiny / "xqlfw" / "pairs.txt").read_text() == (tiny / "lfw" / "pairs.txt").read_text()
    assert read_image(tiny / "hr" / "0000005" / "002.jpg").shape == (112, 112, 3)
    assert not list(tiny.parent.glob(".*partial*"))


def test_tinyface_test_basenames_are_unique_across_probe_gallery_and_distractors(tiny):
    """The public TinyFace evaluator keys images by basename: as in the release, no two test files share
    one (a gallery file named like a probe would be scored as that probe's match)."""
    test = tiny / "tinyface" / "Testing_Set"
    names = [p.name for part in ("Probe", "Gallery_Match", "Gallery_Distractor") for p in (test / part).iterdir()]
    assert len(names) == len(set(names)) == sum(s["images"] for k, s in json.loads(
        (tiny / "manifest.json").read_text())["datasets"]["tinyface"].items() if k != "train")
    gallery = scipy.io.loadmat(test / "gallery_match_img_ID_pairs.mat")
    assert str(gallery["gallery_set"][0, 0][0]) == "6_3.jpg" and gallery["gallery_ids"][0, 0] == 6.0  # probes 6_1, 6_2
    assert sorted(p.name for p in (test / "Gallery_Match").iterdir() if p.name.startswith("6_")) == ["6_3.jpg", "6_4.jpg"]


def test_native_sizes(tiny):
    """TinyFace-like heights at native size; SCface faces grow from distance 1 (4.2 m) to 3 (1.0 m)."""
    train = load_tinyface_train(tiny / "tinyface")
    heights = [r.metadata["native_size"][0] for r in train.records]
    assert 6 <= min(heights) and max(heights) <= 32
    scface = load_scface(tiny / "scface")
    mean = {d: np.mean([r.metadata["native_size"][0] for r in scface.probes_at(d)]) for d in (1, 2, 3)}
    assert 8 <= mean[1] <= 12 and 13 <= mean[2] <= 19 and 26 <= mean[3] <= 32
    assert {r.metadata["native_size"] for r in scface.mugshots} == {(112, 112)}
    assert max(r.metadata["native_size"][0] for r in load_unlabelled(tiny / "ui").records) <= 12


def _detail(image: np.ndarray) -> float:
    """Mean absolute Laplacian of the grey image: the fine detail that down-sampling removes."""
    g = image.astype(np.float64).mean(axis=2)
    return float(np.abs(4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]).mean())


def test_xqlfw_pairs_have_an_hr_and_a_degraded_side(tiny):
    lfw, xq = load_pairs(tiny / "lfw"), load_pairs(tiny / "xqlfw", "XQLFW")
    assert np.array_equal(lfw.pairs, xq.pairs) and np.array_equal(lfw.is_same, xq.is_same)
    for first, second in xq.pairs[:8]:
        hr, lr = xq.records[first], xq.records[second]
        assert hr.metadata["image_number"] == 1 and lr.metadata["image_number"] in (2, 3)
        assert (tiny / "lfw" / hr.metadata["source"]).read_bytes() == hr.path.read_bytes()  # HR side as in LFW
        original = read_image(tiny / "lfw" / lr.metadata["source"])
        assert lr.metadata["native_size"] == (112, 112)
        assert _detail(read_image(lr.path)) < 0.6 * _detail(original)


def test_same_seed_same_files_other_seed_other_files(tiny, tmp_path):
    again = tmp_path / "again"
    write_synthetic(again, "tiny", seed=SEED)
    assert file_hashes(again) == file_hashes(tiny)
    small = Preset(**{**PRESETS["tiny"].__dict__, "hr_identities": 2, "tinyface_distractors": 3})
    first, other = tmp_path / "first", tmp_path / "other"
    write_synthetic(first, small, seed=SEED)
    write_synthetic(other, small, seed=SEED + 1)
    hashes, reference = file_hashes(other), file_hashes(first)
    assert hashes.keys() == reference.keys()
    images = {k: v for k, v in reference.items() if k.endswith(".jpg")}
    assert images.items() <= file_hashes(tiny).items()  # a smaller preset: a subset of the same images
    different = [k for k in hashes if k.endswith(".jpg") and hashes[k] != reference[k]]
    assert len(different) > 0.9 * sum(k.endswith(".jpg") for k in hashes)


@pytest.mark.slow
def test_parallel_workers_write_identical_files(tiny, tmp_path):
    sizes = Preset(**{**PRESETS["tiny"].__dict__, "hr_identities": 2, "tinyface_distractors": 3})
    one, two = tmp_path / "one", tmp_path / "two"
    write_synthetic(one, sizes, seed=SEED)
    write_synthetic(two, sizes, seed=SEED, workers=2)
    assert file_hashes(one) == file_hashes(two)
    assert json.loads((one / "manifest.json").read_text())["preset"] == "custom"


def test_interrupted_write_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    calls = {"count": 0}
    original = SynthFace.native_lr

    def failing(self, *args, **kwargs):
        calls["count"] += 1
        if calls["count"] == 2:
            raise RuntimeError("generator crashed midway")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SynthFace, "native_lr", failing)
    out = tmp_path / "data" / "synth"
    with pytest.raises(RuntimeError, match="crashed midway"):
        write_synthetic(out, "tiny", seed=SEED)
    assert calls["count"] == 2
    assert not out.exists()
    assert list((tmp_path / "data").iterdir()) == []  # the staging folder is gone too
    assert not list(tmp_path.rglob("manifest.json"))


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_plans_have_unique_files_and_disjoint_identities(preset):
    """Every file written once; no generator identity shared between datasets (open-set), except that
    XQLFW degrades LFW's identities as the real XQLFW does."""
    plans = {name: planner(PRESETS[preset], 0) for name, planner in PLANNERS.items()}
    paths = [job.path for plan in plans.values() for job in plan.jobs]
    assert len(paths) == len(set(paths))
    faces = {name: {j.identity for j in plan.jobs} for name, plan in plans.items() if name not in ("ui", "xqlfw")}
    assert sum(map(len, faces.values())) == len(set().union(*faces.values()))
    assert {j.identity for j in plans["xqlfw"].jobs} == faces["lfw"]
    parts = {part: {j.identity for j in plans["tinyface"].jobs if j.path.split("/")[1] == part} for part in ("Training_Set", "Testing_Set")}
    assert parts["Training_Set"] and not parts["Training_Set"] & parts["Testing_Set"]
    tinyface = plans["tinyface"].counts
    assert tinyface["probe"]["identities"] == tinyface["gallery"]["identities"] == PRESETS[preset].tinyface_test_identities


def test_refuses_a_non_empty_output_folder_and_unknown_preset(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match=f"{tmp_path / 'out'} already exists and is not an empty folder"):
        write_synthetic(tmp_path / "out", "tiny")
    assert (tmp_path / "out" / "keep.txt").read_text() == "user data"
    with pytest.raises(ValueError, match="unknown preset 'huge'; expected one of tiny, quick, full"):
        write_synthetic(tmp_path / "new", "huge")
    with pytest.raises(SystemExit):
        main(["data", "synth", "--preset", "huge", "--out", str(tmp_path / "new")])


@pytest.mark.slow
def test_quick_preset(tmp_path, capsys):
    out = tmp_path / "quick"
    start = time.perf_counter()
    assert main(["data", "synth", "--preset", "quick", "--out", str(out)]) == 0
    elapsed = time.perf_counter() - start
    manifest = json.loads((out / "manifest.json").read_text())
    assert read_all(out) == manifest["datasets"]
    assert "written to" in capsys.readouterr().out
    print(f"quick preset written in {elapsed:.1f} s")
