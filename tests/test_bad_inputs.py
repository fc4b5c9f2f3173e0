"""The bad-input corpus (issue 17): files and arguments a user may meet, each written here, small.

Every case asserts the error type (the project's own, documented), that the message names the file or
key at fault, and that nothing outside the intended output changed (a snapshot of the folder before and
after). The dashboard's cases are in ``test_dashboard.py``, the download cases in ``test_fetch.py``, and
random/mutated parser inputs in ``test_fuzz_parsers.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import resource
import shutil
import signal
import struct
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch
from PIL import Image

from lrfr.book import build
from lrfr.cli import main
from lrfr.data import (
    CorruptImageError,
    LayoutError,
    RecordIODataset,
    VerificationBinError,
    load_folder,
    load_pairs,
    load_survface_verification,
    load_tinyface_test,
    load_verification_bin,
)
from lrfr.data.base import MAX_IMAGE_PIXELS
from lrfr.io import WriteError
from lrfr.runs import CheckpointWarning, CorruptCheckpointError, RunFolder
from lrfr.training import ExperimentConfig, ModelSpec, HeadSpec, ScheduleConfig, Trainer
from lrfr.training.config import DataSpec, OptimizerConfig, TrainConfig
from tests.fixtures_data import (
    cell,
    jpeg_bytes,
    pack,
    write_image,
    write_malicious_bin,
    write_mat,
    write_recordio,
    write_verification_bin,
)
from tests.test_book import copy_book
from tests.test_training import quick_config, resumable_objective
from tests.toy import ToyFaces


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (links not followed) with its content digest, link target or 'dir'."""
    entries = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                entries[key] = "link -> " + os.readlink(path)
            elif path.is_dir():
                entries[key] = "dir"
            else:
                entries[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return entries


@contextmanager
def unchanged(root: Path, *expected_new: str) -> Iterator[None]:
    """Assert that the block changes nothing under ``root`` but the ``expected_new`` relative paths."""
    before = snapshot(root)
    yield
    after = snapshot(root)
    changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
    assert changed <= set(expected_new), sorted(changed - set(expected_new))


# ------------------------------------------------------------------------------- pair lists
def lfw(root: Path, pairs: str | bytes) -> Path:
    for name in ("Ann", "Bob"):
        write_image(root / name / f"{name}_0001.jpg")
    (root / "pairs.txt").write_bytes(pairs if isinstance(pairs, bytes) else pairs.encode())
    return root


@pytest.mark.parametrize(
    "pairs, named",
    [
        ("1 1\nAnn 1 1\nAnn 1 ../secret 1\n", r"pairs.txt line 3: name '../secret' is not a folder name"),
        ("1 1\n/etc 1 1\nAnn 1 Bob 1\n", r"pairs.txt line 2: name '/etc' is not a folder name"),
        ("1 1\nAnn 1 1\nAnn 1 .. 1\n", r"pairs.txt line 3: name '..' is not a folder name"),
        (b"1 1\nAnn 1 1\n\xff\xfeAnn 1 Bob 1\n", r"pairs.txt is not UTF-8 text"),
        ("\u00b2 1\nAnn 1 1\nAnn 1 Bob 1\n", r"pairs.txt line 1: expected '<folds> <pairs per class per fold>'"),
        ("0 0\n", r"pairs.txt line 1: expected .*two integers >= 1"),
        ("1 1\nAnn 1 -1\nAnn 1 Bob 1\n", r"pairs.txt line 2: image number '-1' is not an integer >= 0"),
        ("1 1\nAnn 1 1_0\nAnn 1 Bob 1\n", r"pairs.txt line 2: image number '1_0' is not an integer"),
    ],
)
def test_pair_list_names_that_leave_the_root_or_do_not_parse(tmp_path, pairs, named):
    root = lfw(tmp_path / "lfw", pairs)
    (tmp_path / "secret").mkdir()
    write_image(tmp_path / "secret" / "secret_0001.jpg")  # what '../secret 1' would have read
    with unchanged(tmp_path), pytest.raises(LayoutError, match=named):
        load_pairs(root)


# ------------------------------------------------------------------------------- .mat tables
def tinyface(root: Path) -> Path:
    for split, names in (("Probe", ["1_1.jpg"]), ("Gallery_Match", ["1_2.jpg"])):
        for name in names:
            write_image(root / "Testing_Set" / split / name)
    (root / "Testing_Set" / "Gallery_Distractor").mkdir(parents=True)
    write_image(root / "Testing_Set" / "Gallery_Distractor" / "9.jpg")
    return root


@pytest.mark.parametrize(
    "content, named",
    [
        (b"", r"cannot read .mat file .*probe_img_ID_pairs.mat: 0 bytes is shorter than the 128-byte MAT header"),
        (b"MATLAB 5.0 MAT-file" + bytes(200), r"cannot read .mat file .*probe_img_ID_pairs.mat: no MAT v5 header"),
        ("dims tag of 0 bytes", r"probe_img_ID_pairs.mat: an array at byte \d+ has no dimensions element"),
        ("v7.3", r"probe_img_ID_pairs.mat: a MATLAB v7.3 \(HDF5\) file, which this reader does not decode"),
        ("cell of 2**24 names", r"probe_img_ID_pairs.mat: an array at byte \d+ declares dimensions \(16777216, 2\)"),
        ({"names": cell(["../../outside.jpg"]), "ids": np.array([1])}, r"probe_img_ID_pairs.mat names '../../outside.jpg'"),
        ({"names": cell(["/etc/passwd"]), "ids": np.array([1])}, r"probe_img_ID_pairs.mat names '/etc/passwd'"),
        ({"names": cell(["1_1.jpg"]), "ids": np.array([np.nan])}, r"probe_img_ID_pairs.mat variable ids: id nan of row 1"),
        ({"names": np.empty((0, 1), dtype=object), "ids": np.zeros(0)}, r"probe_img_ID_pairs.mat lists no images"),
    ],
)
def test_garbled_or_escaping_mat_tables(tmp_path, content, named):
    root = tinyface(tmp_path / "tinyface")
    mat = root / "Testing_Set" / "probe_img_ID_pairs.mat"
    if isinstance(content, bytes):
        mat.write_bytes(content)
    elif isinstance(content, str):
        mat.write_bytes(damaged_mat(mat, content))
    else:
        write_mat(mat, **content)
    with unchanged(tmp_path), pytest.raises(LayoutError, match=named):
        load_tinyface_test(root)


def damaged_mat(path: Path, damage: str) -> bytes:
    """A valid probe list with one header field changed; scipy 1.17's loadmat crashes the process
    (segmentation fault) on the first, and would allocate 2**25 cells for the last."""
    valid = write_mat(path, probe_set=cell(["1_1.jpg", "1_2.jpg", "2_1.jpg"]), probe_ids=np.array([1, 1, 2])).read_bytes()
    if damage == "v7.3":
        return valid[:124] + b"\x00\x02" + valid[126:]
    dims = struct.pack("<IIii", 5, 8, 3, 1)  # the cell array's dimensions tag: int32, 8 bytes, (3, 1)
    if damage == "cell of 2**24 names":
        return valid.replace(dims, struct.pack("<IIii", 5, 8, 1 << 24, 2), 1)
    third_name = struct.pack("<IIii", 5, 8, 1, 7)  # each name's dimensions (1, 7); the third one's size -> 0
    at = [i for i in range(len(valid)) if valid.startswith(third_name, i)][2]
    return valid[:at] + struct.pack("<II", 5, 0) + valid[at + 8 :]


def test_survface_pair_names_cannot_leave_the_root(tmp_path):
    base = tmp_path / "survface" / "Face_Verification_Test_Set"
    write_image(base / "verification_images" / "a.jpg")
    write_mat(base / "positive_pairs_names.mat", pairs=cell(["a.jpg", "../../../x.jpg"], columns=2))
    write_mat(base / "negative_pairs_names.mat", pairs=cell(["a.jpg", "a.jpg"], columns=2))
    with unchanged(tmp_path), pytest.raises(LayoutError, match=r"names '../../../x.jpg', which is not a path inside"):
        load_survface_verification(tmp_path / "survface")


# ------------------------------------------------------------------------------- empty datasets and links
def test_empty_identity_folders_are_an_error_naming_the_folder(tmp_path):
    (tmp_path / "casia" / "0001").mkdir(parents=True)
    (tmp_path / "casia" / "0002").mkdir()
    with unchanged(tmp_path), pytest.raises(LayoutError, match=r"casia holds no images \(expected images in its 2 identity"):
        load_folder(tmp_path / "casia")


def test_an_empty_probe_folder_is_an_error_naming_it(tmp_path):
    root = tinyface(tmp_path / "tinyface")
    (root / "Testing_Set" / "Probe" / "1_1.jpg").unlink()
    with unchanged(tmp_path), pytest.raises(LayoutError, match=r"Testing_Set/Probe holds no images"):
        load_tinyface_test(root)


@pytest.mark.parametrize("kind", ["loop", "dangling", "folder loop"])
def test_broken_symbolic_links_are_reported(tmp_path, kind):
    identity = tmp_path / "set" / "id1"
    write_image(identity / "good.jpg")
    if kind == "loop":
        os.symlink("b.jpg", identity / "a.jpg")
        os.symlink("a.jpg", identity / "b.jpg")
        named, link = r"a symbolic link loop", "a.jpg"
    elif kind == "dangling":
        os.symlink("gone.jpg", identity / "a.jpg")
        named, link = r"a symbolic link to nothing \('gone.jpg'", "a.jpg"
    else:
        os.symlink("id3", tmp_path / "set" / "id2")
        os.symlink("id2", tmp_path / "set" / "id3")
        named, link = r"a symbolic link loop", "id[23]"
    with unchanged(tmp_path), pytest.raises(LayoutError, match=rf"{link} is {named}"):
        load_folder(tmp_path / "set")


def test_a_split_whose_images_are_all_corrupt_is_an_error_even_when_skipping(tmp_path):
    (tmp_path / "set" / "id1").mkdir(parents=True)
    (tmp_path / "set" / "id1" / "a.jpg").write_bytes(b"not a jpeg")
    with unchanged(tmp_path), pytest.raises(CorruptImageError, match=r"every image of the train split.*id1/a.jpg"):
        load_folder(tmp_path / "set", skip_corrupt=True)


# ------------------------------------------------------------------------------- decompression bombs
def test_a_decompression_bomb_is_a_named_skippable_corrupt_image(tmp_path):
    write_image(tmp_path / "set" / "id1" / "face.jpg", 16, 16)  # square: load_folder refuses to stretch
    bomb = tmp_path / "set" / "id1" / "bomb.png"
    Image.new("L", (12000, 12000)).save(bomb, optimize=True)  # 144 megapixels in ~140 kB
    assert bomb.stat().st_size < 200_000 and 12000 * 12000 > MAX_IMAGE_PIXELS
    with unchanged(tmp_path):
        with pytest.raises(CorruptImageError, match=r"bomb.png: 12000 x 12000 pixels is over the limit of 40,000,000"):
            load_folder(tmp_path / "set")
        with pytest.raises(CorruptImageError, match=r"bomb.png: 12000 x 12000 pixels"):
            load_folder(tmp_path / "set", verify=False)  # the header alone tells
        data = load_folder(tmp_path / "set", skip_corrupt=True)
    assert data.corrupt == (bomb,) and len(data) == 1


# ------------------------------------------------------------------------------- RecordIO
def recordio_with_header(root: Path, header: list[float]) -> Path:
    """A two-image RecordIO set whose header record 0 says ``header``."""
    write_recordio(root, [0, 1], [jpeg_bytes(10, 10), jpeg_bytes(10, 10, seed=1)])
    index = [line.split("\t") for line in (root / "train.idx").read_text().splitlines()]
    data = (root / "train.rec").read_bytes()
    first, rest = data[: int(index[1][1])], data[int(index[1][1]):]
    new_header = pack(header)
    framed = struct.pack("<II", 0xCED7230A, len(new_header)) + new_header + b"\0" * (-len(new_header) % 4)
    (root / "train.rec").write_bytes(framed + rest)
    shift = len(framed) - len(first)
    (root / "train.idx").write_text("".join(f"{k}\t{int(o) + (shift if int(k) else 0)}\n" for k, o in index))
    return root


@pytest.mark.parametrize(
    "header, named",
    [
        ([5, 2], r"train.rec: header record 0 has label \[5.0, 2.0\]; expected \(a, b\)"),
        ([1e9, 2e9], r"but 999999995 of its 999999999 image records 1..999999999 are not in the index"),
        ([float("nan"), 3], r"header record 0 has label \[nan, 3.0\]"),
        ([2.5, 4], r"header record 0 has label \[2.5, 4.0\]"),
        ([3], r"header record 0 has label \[3.0\]"),
    ],
)
def test_recordio_header_record_is_checked_against_the_index(tmp_path, header, named):
    root = recordio_with_header(tmp_path / "casia", header)
    with unchanged(tmp_path), pytest.raises(LayoutError, match=named):
        RecordIODataset(root)


def test_recordio_labels_outside_the_declared_classes_name_the_record(tmp_path):
    root = recordio_with_header(tmp_path / "casia", [3, 4])  # 2 images, 1 class: label 1 does not fit
    data = RecordIODataset(root)
    assert data.num_classes == 1 and data[0]["label"].item() == 0
    with pytest.raises(CorruptImageError, match=r"train.rec record 2: label 1 is not a class index \(expected 0..0\)"):
        data[1]


def test_recordio_index_that_is_not_text(tmp_path):
    write_recordio(tmp_path / "casia", [0, 1], [jpeg_bytes(10, 10), jpeg_bytes(10, 10, seed=1)])
    (tmp_path / "casia" / "train.idx").write_bytes(b"0\t0\n\xff\xfe\t40\n")
    with unchanged(tmp_path), pytest.raises(LayoutError, match=r"train.idx is not ASCII text"):
        RecordIODataset(tmp_path / "casia")


def test_an_empty_recordio_index_is_an_error(tmp_path):
    write_recordio(tmp_path / "casia", [0], [jpeg_bytes(10, 10)], header=False)
    (tmp_path / "casia" / "train.idx").write_text("")
    with unchanged(tmp_path), pytest.raises(LayoutError, match=r"train.rec has no records \(its index .*train.idx is empty\)"):
        RecordIODataset(tmp_path / "casia")


# ------------------------------------------------------------------------------- verification .bin
class _Codec:
    """Pickles as ``_codecs.encode(text, codec)``: a call protocol-2 pickles use, here with another codec."""

    def __init__(self, codec: str) -> None:
        self.codec = codec

    def __reduce__(self):
        import _codecs

        return (_codecs.encode, ("x" * 64, self.codec))


@pytest.mark.parametrize(
    "content, named",
    [
        ("truncated", r"cannot read .*lfw.bin \(UnpicklingError: pickle data was truncated\)"),
        ("malicious", r"cannot read .*lfw.bin \(UnpicklingError: refusing to load global (posix|os|nt)\.system"),
        (pickle.dumps(([_Codec("zlib_codec")], [True]), protocol=2), r"lfw.bin .*refusing _codecs.encode\(str, 'zlib_codec'\)"),
        (pickle.dumps(([10**6, b"x"], [True])), r"lfw.bin: image 0 is of type int; expected"),
        (pickle.dumps(([b"x", b"y"], ["yes"])), r"lfw.bin: issame is not a list of booleans"),
        (pickle.dumps(([b"x", np.zeros(3, np.float32)], [True])), r"lfw.bin: image 1 is of type ndarray of float32"),
        (b"\x80\x05not a pickle", r"cannot read .*lfw.bin \("),
    ],
)
def test_verification_bins_that_are_not_what_they_claim(tmp_path, content, named):
    path = tmp_path / "lfw.bin"
    marker = tmp_path / "pwned"
    if content == "truncated":
        write_verification_bin(path, [jpeg_bytes(8, 8)] * 4, [True, False])
        path.write_bytes(path.read_bytes()[:-40])
    elif content == "malicious":
        write_malicious_bin(path, marker)
    else:
        path.write_bytes(content)
    with unchanged(tmp_path), pytest.raises(VerificationBinError, match=named) as raised:
        load_verification_bin(path)
    assert isinstance(raised.value, pickle.UnpicklingError) and isinstance(raised.value, ValueError)
    assert not marker.exists()


# ------------------------------------------------------------------------------- checkpoints
def trained_run(tmp_path: Path, name: str, epochs: int = 3) -> tuple[RunFolder, dict]:
    """A run with a checkpoint per epoch and the final weights of the uninterrupted run."""
    run = RunFolder.create(tmp_path, name, {"test": 1}, seed=0)
    objective = resumable_objective()
    config = quick_config(epochs=epochs, keep_checkpoints=None, schedule=ScheduleConfig(name="poly", power=2.0))
    Trainer(config, objective, {"main": ToyFaces(num_classes=4, per_class=4)}, run).fit()
    return run, objective.state_dict()


def test_resume_skips_corrupt_checkpoints_sets_them_aside_and_ends_as_an_uninterrupted_run(tmp_path):
    straight, reference = trained_run(tmp_path, "straight")
    damaged = RunFolder.open(shutil.copytree(straight.path, tmp_path / "damaged"))
    checkpoints = damaged.path / "checkpoints"
    weights3 = checkpoints / "epoch_0003.safetensors"
    weights3.write_bytes(weights3.read_bytes()[:100])  # a copy cut short
    (checkpoints / "epoch_0002.state.pt").write_bytes(b"PK\x03\x04 garbled")
    corrupt_bytes = {name: (checkpoints / name).read_bytes() for name in
                     ("epoch_0003.safetensors", "epoch_0003.state.pt", "epoch_0002.safetensors", "epoch_0002.state.pt")}
    with pytest.raises(CorruptCheckpointError, match=r"checkpoint .*epoch_0003.safetensors cannot be read"):
        damaged.load_checkpoint()

    torch.manual_seed(1234)
    resumed = resumable_objective()
    config = quick_config(epochs=3, keep_checkpoints=None, schedule=ScheduleConfig(name="poly", power=2.0))
    with pytest.warns(CheckpointWarning) as caught:
        history = Trainer(config, resumed, {"main": ToyFaces(num_classes=4, per_class=4)}, damaged).fit()
    messages = [str(w.message) for w in caught if w.category is CheckpointWarning]
    assert re.search(r"skipped the checkpoint of epoch 3: checkpoint .*epoch_0003.safetensors cannot be read.*"
                     r"Moved epoch_0003.state.pt, epoch_0003.safetensors to .*checkpoints/corrupt; trying epoch 2", messages[0])
    assert re.search(r"skipped the checkpoint of epoch 2: checkpoint .*epoch_0002.state.pt cannot be read.*trying epoch 1",
                     messages[1])
    assert [epoch["epoch"] for epoch in history] == [1, 2, 3]
    for key, value in reference.items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    for name, content in corrupt_bytes.items():  # set aside, never deleted
        assert (checkpoints / "corrupt" / name).read_bytes() == content
    assert damaged.checkpoint_epochs() == [1, 2, 3]


def test_no_intact_checkpoint_starts_from_scratch_with_a_warning(tmp_path):
    run, _ = trained_run(tmp_path, "run", epochs=1)
    (run.path / "checkpoints" / "epoch_0001.safetensors").write_bytes(b"")
    with pytest.warns(CheckpointWarning, match=r"no older checkpoint: starting from scratch"):
        assert run.load_latest_intact_checkpoint() is None
    assert sorted(p.name for p in (run.path / "checkpoints" / "corrupt").iterdir()) == [
        "epoch_0001.safetensors", "epoch_0001.state.pt"]


def test_stale_temporaries_of_a_killed_checkpoint_write_are_removed_on_start(tmp_path):
    run, _ = trained_run(tmp_path, "run", epochs=1)
    checkpoints = run.path / "checkpoints"
    stale = [checkpoints / ".epoch_0002.state.pt.tmp-0123456789abcdef", checkpoints / ".epoch_0002.safetensors.tmp-00ff"]
    for path in stale:
        path.write_bytes(b"x" * 4500)
    keep = [checkpoints / ".notes.tmp-1", checkpoints / "epoch_0002.state.pt.tmp-1", run.path / ".metrics.json.tmp-ab"]
    for path in keep:
        path.write_bytes(b"not ours")
    config = quick_config(epochs=1, keep_checkpoints=None, schedule=ScheduleConfig(name="poly", power=2.0))
    with unchanged(run.path, *(str(p.relative_to(run.path)) for p in stale)):
        with pytest.warns(CheckpointWarning, match=r"removed 2 temporary checkpoint file\(s\) .*\(9,000 bytes\).*"
                          r"\.epoch_0002\.safetensors\.tmp-00ff, \.epoch_0002\.state\.pt\.tmp-0123456789abcdef"):
            Trainer(config, resumable_objective(), {"main": ToyFaces(num_classes=4, per_class=4)}, run).fit()
    assert not any(path.exists() for path in stale) and all(path.exists() for path in keep)


# ------------------------------------------------------------------------------- a full disk
@contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Writes past ``limit`` bytes fail with EFBIG in this process (how a full disk looks to a writer)."""
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


@pytest.mark.parametrize(
    "write, named",
    [
        (lambda run: run.write_metrics({"values": list(range(5000))}), r"cannot write .*run/metrics.json \(OSError"),
        (lambda run: run.save_embeddings("test", np.random.default_rng(0).normal(size=(500, 64)), np.zeros(500, dtype=int)),
         r"cannot write .*run/embeddings/test.parquet"),
        (lambda run: run.save_checkpoint(2, {"w": torch.ones(1)}, {"big": torch.ones(5000)}),
         r"cannot write .*checkpoints/epoch_0002.state.pt \(RuntimeError"),
        (lambda run: run.save_checkpoint(2, {"w": torch.ones(5000)}, {"small": 1}),
         r"cannot write .*checkpoints/epoch_0002.safetensors \(SafetensorError"),
    ],
)
def test_a_full_disk_is_a_write_error_naming_the_file_and_nothing_is_lost(tmp_path, write, named):
    run = RunFolder.create(tmp_path, "run", {"test": 1}, seed=0)
    run.write_metrics({"kept": 1})
    run.save_embeddings("test", np.ones((2, 4)), np.zeros(2, dtype=int))
    run.save_checkpoint(1, {"w": torch.ones(1)}, {"small": 1})
    with unchanged(tmp_path, "run/checkpoints/epoch_0002.state.pt"), file_size_limit(8192):
        with pytest.raises(WriteError, match=named + r".*bytes free there\); the previous file, if any, is unchanged"):
            write(run)
    assert run.metrics() == {"kept": 1} and run.checkpoint_epochs() == [1]
    assert not list(tmp_path.rglob("*.tmp-*"))


# ------------------------------------------------------------------------------- the lrfr command
def test_cli_errors_are_one_line_messages_with_a_non_zero_exit(tmp_path, capsys):
    missing = tmp_path / "nowhere.json"
    with unchanged(tmp_path):
        assert main(["train", "--config", str(missing), "--out", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err
    assert f"lrfr train: FileNotFoundError: experiment config {missing} does not exist" in err
    assert "Traceback" not in err and "--debug" in err
    with pytest.raises(FileNotFoundError, match="nowhere.json"):
        main(["train", "--config", str(missing), "--debug"])
    with pytest.raises(FileNotFoundError, match="nowhere.json"):
        main(["--debug", "train", "--config", str(missing)])


def test_a_config_naming_os_system_runs_nothing(tmp_path, capsys, monkeypatch):
    import lrfr.registry

    monkeypatch.setattr(lrfr.registry, "_allowed", set())  # a user's shell: the tests' own allowance is off
    monkeypatch.delenv("LRFR_ALLOW_IMPORTS", raising=False)
    marker = tmp_path / "pwned"
    config = ExperimentConfig(
        name="evil", train=TrainConfig(epochs=1, batch_size=2, device="cpu", progress=False,
                                       optimizer=OptimizerConfig(lr=0.1), schedule=ScheduleConfig(name="constant")),
        model=ModelSpec(backbone="quick", heads={"main": HeadSpec("cosface", "main", {})}),
        data={"main": DataSpec("os:system", {"command": f"touch {marker}"})},
    )
    (tmp_path / "evil.json").write_text(json.dumps(config.to_dict()))
    assert main(["train", "--config", str(tmp_path / "evil.json"), "--out", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err
    assert "ImportNotAllowedError: dataset 'os:system' is not registered, and importing module 'os' is not allowed" in err
    assert not marker.exists()


# ------------------------------------------------------------------------------- lrfr book
@pytest.fixture
def book(tmp_path) -> Path:
    """A toy book with an earlier build in _build/ that a refused command must leave as it was."""
    root = copy_book(tmp_path, {"toy": ["print(value)"]})
    for page in ("_build/src/book/toy.ipynb", "_build/html/index.html", "_build/timings.jsonl"):
        (root / page).parent.mkdir(parents=True, exist_ok=True)
        (root / page).write_text("from the previous build")
    return root


@pytest.mark.parametrize(
    "arguments, params, error, named",
    [
        (["--chapters", "nonexistent"], None, "ValueError", r"unknown chapter\(s\) \['nonexistent'\]; the book has \['toy'\]"),
        ([], "value: 1\nvalu: 2\nseed: 3\n", "ParameterError",
         r"toy.quick.yaml: chapter 'toy' has no parameter\(s\) 'seed', 'valu'; its parameters are value"),
        ([], "value: abc\n", "ParameterError",
         r"toy.quick.yaml: parameter 'value' of chapter 'toy' is str 'abc'; expected int \(declared as value: int = 1\)"),
        ([], "value: true\n", "ParameterError", r"parameter 'value' of chapter 'toy' is bool True; expected int"),
        ([], "- value\n", "ParameterError", r"toy.quick.yaml holds a YAML list; expected a mapping"),
        ([], "value: [1\n", "ParameterError", r"toy.quick.yaml is not readable YAML"),
        (["--mode", "full", "--chapters", "toy"], "", "FileNotFoundError", r"chapter 'toy' has no full parameter file"),
    ],
)
def test_lrfr_book_checks_every_argument_before_touching_the_build(book, capsys, arguments, params, error, named):
    if params is not None:
        (book / "book" / "params" / "toy.quick.yaml").write_text(params)
        if "full" in arguments:
            (book / "book" / "params" / "toy.full.yaml").unlink()
    with unchanged(book):
        assert main(["book", "--root", str(book), *arguments]) == 1
    assert re.search(rf"lrfr book: {error}: .*{named}", capsys.readouterr().err)


def test_build_refuses_a_root_that_is_not_the_book(tmp_path):
    (tmp_path / "_build" / "src").mkdir(parents=True)
    with unchanged(tmp_path), pytest.raises(FileNotFoundError, match=r"is not the book's repository root: it has no _config.yml, _toc.yml, book"):
        build(tmp_path)
    with unchanged(tmp_path), pytest.raises(ValueError, match=r"mode must be one of"):
        build(tmp_path, mode="fast")
