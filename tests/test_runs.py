"""Run folders (lrfr.runs) and the atomic writers under them (lrfr.io)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import lrfr
import lrfr.io
import lrfr.runs
from lrfr.io import atomic_write, json_text, load_torch, save_tensors_atomic, write_json_atomic
from lrfr.runs import FORMAT_VERSION, RunFolder, RunFolderError, git_revision

REVISION = re.compile(r"[0-9a-f]{40}(-dirty)?")
CONFIG = {"model": {"name": "iresnet18", "width": 64}, "lr": 0.1, "milestones": [8, 12], "tag": None}


@pytest.fixture
def run(tmp_path: Path) -> RunFolder:
    return RunFolder.create(tmp_path, "run", CONFIG, seed=7)


def leftovers(directory: Path) -> list[str]:
    """Temporary files left behind anywhere under ``directory``."""
    return [path.name for path in directory.rglob("*") if ".tmp-" in path.name]


# --------------------------------------------------------------------------------- config / open


def test_create_records_config_seed_and_provenance(tmp_path: Path, run: RunFolder) -> None:
    info = json.loads((tmp_path / "run" / "config.json").read_text())
    assert info["format_version"] == FORMAT_VERSION == 1
    assert (info["name"], info["seed"], info["config"]) == ("run", 7, CONFIG)
    created = datetime.fromisoformat(info["created"])
    assert created.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - created) < timedelta(minutes=1)
    assert info["versions"]["torch"] == torch.__version__
    assert info["versions"]["numpy"] == np.__version__
    assert info["versions"]["lrfr"] == lrfr.__version__
    assert {"python", "platform"} <= info["versions"].keys()
    assert info["git_revision"] == git_revision()
    assert info["git_revision"] is None or REVISION.fullmatch(info["git_revision"])
    reopened = RunFolder.open(tmp_path / "run")
    assert (reopened.name, reopened.seed, reopened.config) == ("run", 7, CONFIG)
    assert reopened.info == info


def test_config_property_is_a_copy(run: RunFolder) -> None:
    run.config["model"]["width"] = 1
    assert run.config["model"]["width"] == 64


def test_create_refuses_existing_run_unless_resuming_the_same(tmp_path: Path, run: RunFolder) -> None:
    with pytest.raises(RunFolderError, match="already exists; pass exist_ok=True"):
        RunFolder.create(tmp_path, "run", CONFIG, seed=7)
    assert RunFolder.create(tmp_path, "run", CONFIG, seed=7, exist_ok=True).info == run.info
    with pytest.raises(RunFolderError, match=r"config keys differing: \['lr'\]"):
        RunFolder.create(tmp_path, "run", {**CONFIG, "lr": 0.2}, seed=7, exist_ok=True)
    with pytest.raises(RunFolderError, match="seed 7 vs 8"):
        RunFolder.create(tmp_path, "run", CONFIG, seed=8, exist_ok=True)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"model": {"weights": torch.zeros(2)}}, r"config\['model'\]\['weights'\] has type Tensor"),
        ({"lr": float("nan")}, r"config\['lr'\] is nan"),
        ({"steps": [1, np.int64(2)]}, r"config\['steps'\]\[1\] has type int64"),
    ],
)
def test_create_rejects_non_json_config_naming_the_key(tmp_path: Path, config: dict, message: str) -> None:
    with pytest.raises(RunFolderError, match=message):
        RunFolder.create(tmp_path, "bad", config, seed=0)
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "a\\b", 3])
def test_create_rejects_bad_names(tmp_path: Path, name: object) -> None:
    with pytest.raises(RunFolderError, match="is not a valid name"):
        RunFolder.create(tmp_path, name, CONFIG, seed=0)  # type: ignore[arg-type]


def test_create_rejects_non_int_seed(tmp_path: Path) -> None:
    with pytest.raises(RunFolderError, match="seed 1.5 has type float; expected an int"):
        RunFolder.create(tmp_path, "run", CONFIG, seed=1.5)  # type: ignore[arg-type]


def test_open_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(RunFolderError, match=f"run folder {tmp_path / 'nope'} does not exist"):
        RunFolder.open(tmp_path / "nope")


def test_open_file_instead_of_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="is not a directory"):
        RunFolder.open(tmp_path / "file")


def test_open_missing_config(tmp_path: Path) -> None:
    with pytest.raises(RunFolderError) as error:
        RunFolder.open(tmp_path)
    assert str(error.value).startswith(f"run folder {tmp_path} is missing config.json (expected config.json")
    assert "metrics.json" in str(error.value)


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (0, "format_version 0 is older than supported 1"),
        (2, "format_version 2 is newer than supported 1; upgrade lrfr"),
        ("1", "format_version '1' is not an int"),
    ],
)
def test_open_unknown_format_version(tmp_path: Path, run: RunFolder, version: object, message: str) -> None:
    write_json_atomic(run.path / "config.json", {**run.info, "format_version": version})
    with pytest.raises(RunFolderError, match=message):
        RunFolder.open(run.path)


def test_open_config_not_json(run: RunFolder) -> None:
    (run.path / "config.json").write_text("{not json")
    with pytest.raises(RunFolderError, match=r"config.json is not valid JSON \(Expecting"):
        RunFolder.open(run.path)


def test_open_config_missing_keys(run: RunFolder) -> None:
    write_json_atomic(run.path / "config.json", {"format_version": 1, "name": "run"})
    missing = r"missing keys \['created', 'seed', 'config', 'git_revision', 'versions'\]"
    with pytest.raises(RunFolderError, match=missing):
        RunFolder.open(run.path)


def test_open_config_not_an_object(run: RunFolder) -> None:
    (run.path / "config.json").write_text("[1, 2]")
    with pytest.raises(RunFolderError, match="holds JSON of type list; expected a JSON object"):
        RunFolder.open(run.path)


# --------------------------------------------------------------------------------- git revision


def git(directory: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(directory), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_revision_of_a_temporary_repository(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "tracked.txt").write_text("one")
    assert git_revision(tmp_path) is None  # no commits yet: HEAD does not resolve
    git(tmp_path, "add", "tracked.txt")
    git(tmp_path, "commit", "-q", "-m", "first")
    head = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert git_revision(tmp_path) == head and re.fullmatch(r"[0-9a-f]{40}", head)
    (tmp_path / "untracked.txt").write_text("ignored")
    assert git_revision(tmp_path) == head
    (tmp_path / "tracked.txt").write_text("two")
    assert git_revision(tmp_path) == f"{head}-dirty"


def test_git_revision_outside_a_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert git_revision(tmp_path) is None


def test_git_revision_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing_git(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError("git")

    monkeypatch.setattr(lrfr.runs.subprocess, "run", missing_git)
    assert git_revision() is None
    assert RunFolder.create(tmp_path, "run", CONFIG, seed=0).info["git_revision"] is None


# --------------------------------------------------------------------------------- metrics


def test_metrics_write_update_read(run: RunFolder) -> None:
    assert run.metrics() == {}
    run.write_metrics({"lfw": {"accuracy": 0.99}, "epoch": 3})
    merged = {"lfw": {"accuracy": 0.99}, "epoch": 4, "loss": 0.5}
    assert run.update_metrics({"epoch": 4, "loss": 0.5}) == merged
    assert RunFolder.open(run.path).metrics() == merged
    run.write_metrics({"only": 1})
    assert run.metrics() == {"only": 1}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), np.float32(0.5)])
def test_bad_metric_raises_and_keeps_previous_file(run: RunFolder, bad: object) -> None:
    run.write_metrics({"lfw": {"accuracy": 0.99}})
    before = (run.path / "metrics.json").read_bytes()
    with pytest.raises(ValueError, match=r"metrics.json\['lfw'\]\['eer'\] (is|has type) "):
        run.update_metrics({"lfw": {"eer": bad}})
    assert (run.path / "metrics.json").read_bytes() == before
    assert leftovers(run.path) == []


def test_metrics_and_config_must_be_dicts(tmp_path: Path, run: RunFolder) -> None:
    with pytest.raises(RunFolderError, match="metrics has type list; expected a dict"):
        run.update_metrics([("loss", 1.0)])  # type: ignore[arg-type]
    with pytest.raises(RunFolderError, match="config has type str; expected a dict"):
        RunFolder.create(tmp_path, "other", "lr=0.1", seed=0)  # type: ignore[arg-type]


def test_metrics_file_that_is_not_an_object(run: RunFolder) -> None:
    (run.path / "metrics.json").write_text("3")
    with pytest.raises(RunFolderError, match="holds JSON of type int; expected a JSON object"):
        run.metrics()


# --------------------------------------------------------------------------------- embeddings


def test_embeddings_round_trip_exactly(run: RunFolder) -> None:
    generator = np.random.default_rng(0)
    vectors = generator.standard_normal((5, 3)).astype(np.float32)
    metadata = {
        "path": np.array(["a.png", "b.png", "c.png", "d.png", "é.png"]),
        "resolution": np.array([8, 16, 16, 32, 112], dtype=np.int32),
        "quality": np.array([0.1, 0.25, np.nan, 1.0, -2.5]),
        "probe": [True, False, True, True, False],
    }
    path = run.save_embeddings("tinyface", vectors, np.array([3, 1, 4, 1, 5], dtype=np.int32), metadata)
    assert path == run.path / "embeddings" / "tinyface.parquet"
    loaded = RunFolder.open(run.path).load_embeddings("tinyface")
    assert loaded.embeddings.dtype == np.float32 and loaded.embeddings.shape == (5, 3)
    np.testing.assert_array_equal(loaded.embeddings, vectors)
    assert loaded.labels.dtype == np.int64
    np.testing.assert_array_equal(loaded.labels, [3, 1, 4, 1, 5])
    assert list(loaded.metadata) == ["path", "resolution", "quality", "probe"]
    assert loaded.metadata["path"].tolist() == metadata["path"].tolist()
    assert loaded.metadata["resolution"].dtype == np.int32
    np.testing.assert_array_equal(loaded.metadata["resolution"], metadata["resolution"])
    assert loaded.metadata["quality"].dtype == np.float64
    np.testing.assert_array_equal(loaded.metadata["quality"], metadata["quality"])  # NaN == NaN here
    assert loaded.metadata["probe"].dtype == np.bool_
    np.testing.assert_array_equal(loaded.metadata["probe"], metadata["probe"])
    assert run.embedding_sets() == ["tinyface"]


def test_embeddings_file_layout(run: RunFolder) -> None:
    path = run.save_embeddings("set", torch.ones(2, 4, dtype=torch.float64), torch.tensor([0, 1]))
    table = pq.read_table(path)
    assert table.column_names == ["label", "embedding"]
    assert str(table.schema.field("embedding").type) == "fixed_size_list<element: float>[4]"
    assert table.schema.metadata == {b"lrfr.embedding_dim": b"4", b"lrfr.format_version": b"1"}
    loaded = run.load_embeddings("set")
    assert loaded.embeddings.dtype == np.float32 and loaded.metadata == {}
    np.testing.assert_array_equal(loaded.embeddings, np.ones((2, 4), np.float32))


def test_embedding_sets_ignore_temporary_files(run: RunFolder) -> None:
    run.save_embeddings("b", np.zeros((1, 2)), [0])
    run.save_embeddings("a", np.zeros((1, 2)), [0])
    (run.path / "embeddings" / ".c.parquet.tmp-0123").write_bytes(b"partial")
    assert run.embedding_sets() == ["a", "b"]


VALID = (np.zeros((3, 2)), [0, 1, 2])


@pytest.mark.parametrize(
    ("embeddings", "labels", "metadata", "message"),
    [
        (*VALID, {"path": ["a", "b"]}, r"metadata column 'path' has shape \(2,\); expected \(3,\)"),
        (*VALID, {"label": [0, 1, 2]}, "metadata column name 'label' is not allowed"),
        (*VALID, {"embedding": [0, 1, 2]}, "metadata column name 'embedding' is not allowed"),
        (*VALID, {"when": np.array(["2024-01-01"] * 3, dtype="datetime64[D]")}, "has dtype datetime64"),
        (*VALID, {"mixed": np.array(["a", 1, None], dtype=object)}, "holds non-string objects"),
        (VALID[0], [0, 1], None, r"labels has shape \(2,\) and dtype int64; expected \(3,\) integers"),
        (VALID[0], [0.0, 1.0, 2.0], None, r"dtype float64; expected \(3,\) integers"),
        (np.zeros(3), VALID[1], None, r"embeddings has shape \(3,\) and dtype float64; expected \(N, D\)"),
        (np.zeros((3, 2), dtype=np.int64), VALID[1], None, "dtype int64; expected"),
    ],
)
def test_save_embeddings_rejects_bad_input(
    run: RunFolder, embeddings: object, labels: object, metadata: object, message: str
) -> None:
    with pytest.raises(RunFolderError, match=message):
        run.save_embeddings("bad", embeddings, labels, metadata)  # type: ignore[arg-type]
    assert run.embedding_sets() == []


def test_load_missing_embedding_set_lists_available(run: RunFolder) -> None:
    run.save_embeddings("lfw", np.zeros((1, 2)), [0])
    with pytest.raises(RunFolderError, match=r"no embedding set 'cfp' .*available: \['lfw'\]"):
        run.load_embeddings("cfp")


# --------------------------------------------------------------------------------- checkpoints


def tiny_model_and_optimizer() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return model, optimizer


def sgd_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    optimizer.zero_grad()
    model(torch.arange(6.0).reshape(2, 3)).square().sum().backward()
    optimizer.step()


def test_checkpoint_round_trip_and_optimizer_resumes_identically(run: RunFolder) -> None:
    model, optimizer = tiny_model_and_optimizer()
    sgd_step(model, optimizer)
    rng = torch.get_rng_state()
    assert run.latest_checkpoint() is None
    run.save_checkpoint(1, model.state_dict(), {"optimizer": optimizer.state_dict(), "rng": rng, "step": 1})
    assert run.latest_checkpoint() == 1

    weights, state = RunFolder.open(run.path).load_checkpoint()
    assert weights.keys() == model.state_dict().keys()
    for name, tensor in model.state_dict().items():
        assert torch.equal(weights[name], tensor)
    assert torch.equal(state["rng"], rng) and state["step"] == 1
    resumed, resumed_optimizer = tiny_model_and_optimizer()
    resumed.load_state_dict(weights)
    resumed_optimizer.load_state_dict(state["optimizer"])
    assert torch.equal(
        resumed_optimizer.state_dict()["state"][0]["momentum_buffer"],
        optimizer.state_dict()["state"][0]["momentum_buffer"],
    )
    sgd_step(model, optimizer)
    sgd_step(resumed, resumed_optimizer)
    for original, restored in zip(model.parameters(), resumed.parameters()):
        assert torch.equal(original, restored)


def test_checkpoint_with_shared_and_non_contiguous_tensors(run: RunFolder) -> None:
    base = torch.arange(12.0).reshape(3, 4)
    state = {"embed": base, "tied": base, "row": base[1], "transposed": base.t()}
    run.save_checkpoint(0, state, {})
    weights, _ = run.load_checkpoint(0)
    for name, tensor in state.items():
        assert torch.equal(weights[name], tensor), name
    assert weights["embed"].untyped_storage().data_ptr() != weights["tied"].untyped_storage().data_ptr()
    assert base.is_contiguous() and state["tied"] is base  # the caller's tensors are untouched


def test_checkpoint_files_and_metadata(run: RunFolder) -> None:
    run.save_checkpoint(12, {"w": torch.ones(1)}, {"epoch": 12})
    names = sorted(path.name for path in (run.path / "checkpoints").iterdir())
    assert names == ["epoch_0012.safetensors", "epoch_0012.state.pt"]
    assert load_torch(run.path / "checkpoints" / "epoch_0012.state.pt") == {"epoch": 12}


def test_latest_checkpoint_ignores_incomplete_and_temporary_files(run: RunFolder) -> None:
    run.save_checkpoint(2, {"w": torch.full((2,), 2.0)}, {"epoch": 2})
    run.save_checkpoint(3, {"w": torch.full((2,), 3.0)}, {"epoch": 3})
    (run.path / "checkpoints" / "epoch_0003.safetensors").unlink()  # crash before the weights landed
    checkpoints = run.path / "checkpoints"
    (checkpoints / ".epoch_0009.safetensors.tmp-abcd").write_bytes(b"partial")
    (checkpoints / ".epoch_0009.state.pt.tmp-abcd").write_bytes(b"partial")
    (checkpoints / "epoch_0010.safetensors").write_bytes(b"weights without state")
    (checkpoints / "notes.txt").write_text("x")
    assert run.checkpoint_epochs() == [2]
    assert run.latest_checkpoint() == 2
    weights, state = run.load_checkpoint()
    assert torch.equal(weights["w"], torch.full((2,), 2.0)) and state == {"epoch": 2}
    with pytest.raises(RunFolderError, match=r"no complete checkpoint for epoch 3 .*complete epochs: \[2\]"):
        run.load_checkpoint(3)


def test_load_checkpoint_when_there_is_none(run: RunFolder) -> None:
    with pytest.raises(RunFolderError, match=r"has no complete checkpoint \(expected checkpoints/epoch_NNNN"):
        run.load_checkpoint()


def test_keep_last_prunes_older_complete_checkpoints(run: RunFolder) -> None:
    for epoch in range(5):
        run.save_checkpoint(epoch, {"w": torch.tensor([float(epoch)])}, {"epoch": epoch}, keep_last=2)
    assert run.checkpoint_epochs() == [3, 4]
    assert sorted(path.name for path in (run.path / "checkpoints").iterdir()) == [
        "epoch_0003.safetensors",
        "epoch_0003.state.pt",
        "epoch_0004.safetensors",
        "epoch_0004.state.pt",
    ]
    run.save_checkpoint(1, {"w": torch.tensor([1.0])}, {"epoch": 1}, keep_last=1)  # never prunes itself
    assert run.checkpoint_epochs() == [1, 3, 4]


def test_overwriting_an_epoch_replaces_both_files(run: RunFolder) -> None:
    run.save_checkpoint(1, {"w": torch.tensor([1.0])}, {"version": "old"})
    run.save_checkpoint(1, {"w": torch.tensor([2.0])}, {"version": "new"})
    weights, state = run.load_checkpoint(1)
    assert torch.equal(weights["w"], torch.tensor([2.0])) and state == {"version": "new"}


@pytest.mark.parametrize(("epoch", "keep_last"), [(-1, None), (True, None), (1.0, None), (1, 0)])
def test_save_checkpoint_rejects_bad_arguments(run: RunFolder, epoch: object, keep_last: object) -> None:
    with pytest.raises(RunFolderError, match="is not valid; expected"):
        run.save_checkpoint(epoch, {"w": torch.ones(1)}, {}, keep_last=keep_last)  # type: ignore[arg-type]


def test_training_state_that_needs_pickle_is_refused(run: RunFolder) -> None:
    with pytest.raises(ValueError, match="would not load with weights_only=True .*Unsupported global"):
        run.save_checkpoint(1, {"w": torch.ones(1)}, {"scheduler": object()})
    assert run.latest_checkpoint() is None
    assert list((run.path / "checkpoints").iterdir()) == []


def test_crash_while_writing_weights_leaves_previous_checkpoint_latest(
    run: RunFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    run.save_checkpoint(1, {"w": torch.tensor([1.0])}, {"epoch": 1})

    def crash_half_way(tensors: dict, filename: Path, metadata: dict | None = None) -> None:
        Path(filename).write_bytes(b"\x00" * 64)
        raise KeyboardInterrupt

    monkeypatch.setattr(lrfr.io, "save_file", crash_half_way)
    with pytest.raises(KeyboardInterrupt):
        run.save_checkpoint(2, {"w": torch.tensor([2.0])}, {"epoch": 2})
    monkeypatch.undo()
    checkpoints = run.path / "checkpoints"
    assert (checkpoints / "epoch_0002.state.pt").exists()
    assert not (checkpoints / "epoch_0002.safetensors").exists()
    assert leftovers(run.path) == []
    assert run.latest_checkpoint() == 1
    assert torch.equal(run.load_checkpoint()[0]["w"], torch.tensor([1.0]))


# --------------------------------------------------------------------------------- artifacts


def test_artifact_path_and_write_json(run: RunFolder) -> None:
    figure = run.artifact_path("figures/roc/lfw.png")
    assert figure == run.path / "figures" / "roc" / "lfw.png" and figure.parent.is_dir()
    path = run.write_json("projections/umap.json", {"b": [1, 2], "a": None})
    assert path.read_text() == '{\n  "a": null,\n  "b": [\n    1,\n    2\n  ]\n}\n'


@pytest.mark.parametrize(
    ("relative", "message"),
    [
        ("/etc/passwd", "expected a relative path inside the run folder"),
        ("../other/x.json", "expected a relative path inside the run folder"),
        ("", "expected a relative path inside the run folder"),
        ("config.json", "is reserved"),
        ("metrics.json", "use create\\(\\) for config, write_metrics\\(\\) for metrics"),
    ],
)
def test_artifact_path_rejects_escapes_and_reserved(run: RunFolder, relative: str, message: str) -> None:
    with pytest.raises(RunFolderError, match=message):
        run.artifact_path(relative)


# --------------------------------------------------------------------------------- lrfr.io


def test_atomic_write_uses_a_hidden_temporary_in_the_same_directory(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.bin"
    with atomic_write(target) as temporary:
        assert temporary.parent == target.parent
        assert re.fullmatch(r"\.out\.bin\.tmp-[0-9a-f]{16}", temporary.name)
        temporary.write_bytes(b"complete")
        assert not target.exists()
    assert target.read_bytes() == b"complete"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("existing", [None, b"old complete version"])
def test_crash_inside_atomic_write_keeps_old_file(tmp_path: Path, existing: bytes | None) -> None:
    target = tmp_path / "data.bin"
    if existing is not None:
        target.write_bytes(existing)
    payload = b"x" * 1000
    with pytest.raises(RuntimeError, match="crash"):
        with atomic_write(target) as temporary:
            with temporary.open("wb") as handle:
                handle.write(payload[: len(payload) // 2])
            raise RuntimeError("crash")
    assert (target.read_bytes() if target.exists() else None) == existing
    assert leftovers(tmp_path) == []


def test_failed_replace_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "metrics.json"
    write_json_atomic(target, {"old": 1})

    def failing_replace(source: object, destination: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(lrfr.io.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_json_atomic(target, {"new": 2})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"old": 1}
    assert leftovers(tmp_path) == []


def test_new_files_follow_the_umask(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "a.json", {})
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_json_text_is_sorted_and_indented() -> None:
    text = json_text({"b": 1, "a": {"d": 2, "c": 3}})
    assert text == '{\n  "a": {\n    "c": 3,\n    "d": 2\n  },\n  "b": 1\n}\n'


def test_json_text_names_self_containing_values() -> None:
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match=r"cannot write value as JSON: value\[0\] contains itself"):
        json_text(loop)


def test_save_tensors_rejects_bad_metadata_and_non_tensors(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    with pytest.raises(ValueError, match=r"non-str values: \{'epoch': 'int'\}"):
        save_tensors_atomic(path, {"w": torch.ones(1)}, {"epoch": 3})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"tensors\['w'\] has type list; expected str names mapped to"):
        save_tensors_atomic(path, {"w": [1.0]})  # type: ignore[dict-item]
    assert list(tmp_path.iterdir()) == []
