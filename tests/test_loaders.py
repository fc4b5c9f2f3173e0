"""Loaders on small hand-made layouts: labels, metadata, .mat tables, pair lists, RecordIO, .bin pickles, bad input."""

from __future__ import annotations

import io
import pickle
import shutil

import numpy as np
import pytest
import torch

from lrfr.data import (
    DATASETS,
    CorruptImageError,
    LayoutError,
    RecordIODataset,
    VerificationBinError,
    load_folder,
    load_pairs,
    load_scface,
    load_survface_identification,
    load_survface_verification,
    load_tinyface_test,
    load_tinyface_train,
    load_unlabelled,
    load_verification_bin,
    parse_pairs_file,
    scface_dataset,
)
from lrfr.data.base import read_image, to_tensor
from lrfr.data.degrade import resize
from tests.fixtures_data import (
    cell,
    jpeg_bytes,
    truncate,
    write_image,
    write_malicious_bin,
    write_mat,
    write_recordio,
    write_verification_bin,
)


# ------------------------------------------------------------------------------ folder sets
@pytest.fixture
def folder_set(tmp_path):
    write_image(tmp_path / "10" / "a.jpg", 20, 16, seed=1)
    write_image(tmp_path / "2" / "b.jpg", 8, 8, seed=2)
    write_image(tmp_path / "2" / "c.png", 30, 24, seed=3)
    (tmp_path / "2" / "notes.txt").write_text("not an image")
    return tmp_path


def test_folder_labels_in_natural_order_with_native_sizes(folder_set):
    data = load_folder(folder_set, input_size=32, non_square="stretch")
    assert [(r.identity, r.label, r.path.name) for r in data.records] == [("2", 0, "b.jpg"), ("2", 0, "c.png"), ("10", 1, "a.jpg")]
    assert [r.metadata["native_size"] for r in data.records] == [(8, 8), (30, 24), (20, 16)]
    assert data.records[1].metadata["source"] == "2/c.png"
    assert data.num_classes == 2 and data.corrupt == ()
    item = data[2]
    assert item["image"].shape == (3, 32, 32) and item["label"].item() == 1
    native = load_folder(folder_set, input_size=(20, 16), non_square="stretch")[2]["image"]  # no resize at the native size
    expected = torch.from_numpy(read_image(folder_set / "10" / "a.jpg")).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.equal(native, expected)


def test_registry_builds_folder_dataset(folder_set):
    data = DATASETS.build("folder", root=str(folder_set), non_square="stretch")
    assert len(data) == 3 and data.num_classes == 2
    assert {"folder", "tinyface_train", "survface_train", "scface", "recordio", "ui"} <= set(DATASETS.names())


def test_non_square_images_are_refused_cropped_or_stretched_never_silently(folder_set):
    """Resizing a 30x24 crop to 32x32 would distort the face (issue 14: 11.8 % instead of 78 % rank-1)."""
    with pytest.raises(LayoutError, match=r"2 of 3 images .* not 32x32-shaped, e\.g\. 2/c\.png \(30x24\), 10/a\.jpg \(20x16\).*lrfr data align"):
        load_folder(folder_set, input_size=32)
    cropped = load_folder(folder_set, input_size=32, non_square="centre_crop")
    boxes = {r.path.name: r.metadata.get("crop") for r in cropped.records}
    assert boxes == {"b.jpg": None, "c.png": (3, 0, 24, 24), "a.jpg": (2, 0, 16, 16)}
    centre = read_image(folder_set / "2" / "c.png")[3:27]
    torch.testing.assert_close(cropped[1]["image"], resize(to_tensor(centre), 32))
    assert load_folder(folder_set, input_size=(20, 16), non_square="centre_crop").records[0].metadata["crop"] == (0, 1, 8, 6)
    with pytest.raises(ValueError, match="non_square 'pad' is not valid"):
        load_folder(folder_set, non_square="pad")
    with pytest.raises(LayoutError, match=r"1 of 3 images .* not 20x16-shaped, e\.g\. 2/b\.jpg \(8x8\)"):
        load_folder(folder_set, input_size=(20, 16))


def test_unlabelled_folder(tmp_path):
    for n in range(3):
        write_image(tmp_path / f"{n + 1}.jpg", 5 + n, 5 + n, seed=n)
    data = load_unlabelled(tmp_path)
    assert data.labels.tolist() == [-1, -1, -1] and data.num_classes == 0
    assert [r.metadata["native_size"] for r in data.records] == [(5, 5), (6, 6), (7, 7)]


def test_missing_folder_names_path(tmp_path):
    with pytest.raises(LayoutError, match=f"folder: data folder {tmp_path / 'absent'} does not exist"):
        load_folder(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LayoutError, match="no identity folders"):
        load_folder(tmp_path / "empty")


def test_truncated_jpeg_fails_by_default_and_is_listed_with_skip_corrupt(folder_set):
    bad = truncate(write_image(folder_set / "2" / "d.jpg", 64, 64, seed=9), keep=0.4)
    with pytest.raises(CorruptImageError, match=f"cannot read image {bad}.*skip_corrupt=True"):
        load_folder(folder_set)
    data = load_folder(folder_set, skip_corrupt=True, non_square="stretch")
    assert data.corrupt == (bad,)
    assert [r.path.name for r in data.records] == ["b.jpg", "c.png", "a.jpg"]


def test_header_only_reading_defers_the_decode_error_to_the_item(folder_set):
    bad = truncate(write_image(folder_set / "2" / "d.jpg", 64, 64, seed=9), keep=0.8)
    data = load_folder(folder_set, verify=False, non_square="stretch")
    index = [r.path for r in data.records].index(bad)
    assert data.records[index].metadata["native_size"] == (64, 64)  # the header is intact
    with pytest.raises(CorruptImageError, match=str(bad)):
        data[index]


def test_non_image_file_is_corrupt_even_header_only(folder_set):
    bad = folder_set / "2" / "e.jpg"
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(CorruptImageError, match=str(bad)):
        load_folder(folder_set, verify=False)


# ---------------------------------------------------------------------------------- TinyFace
def _tinyface(root, with_mat=True):
    test = root / "Testing_Set"
    for identity, n in [("7", 2), ("3", 1)]:
        for k in range(n):
            write_image(root / "Training_Set" / identity / f"{identity}_{k + 1}.jpg", 10 + k, 9, seed=k)
    write_image(test / "Probe" / "5_1.jpg", 12, 10)
    write_image(test / "Probe" / "40_2.jpg", 14, 11)
    write_image(test / "Gallery_Match" / "5_2.jpg", 16, 12)
    write_image(test / "Gallery_Match" / "40_1.jpg", 18, 13)
    write_image(test / "Gallery_Distractor" / "1.jpg", 20, 15)
    write_image(test / "Gallery_Distractor" / "2.jpg", 22, 17)
    if with_mat:  # ids deliberately differ from the file-name prefixes: the .mat file wins
        write_mat(test / "probe_img_ID_pairs.mat", probe_set=cell(["5_1.jpg", "40_2.jpg"]), probe_ids=np.array([[105.0], [140.0]]))
        write_mat(test / "gallery_match_img_ID_pairs.mat", gallery_set=cell(["40_1.jpg", "5_2.jpg"]), gallery_ids=np.array([[140.0], [105.0]]))
    return root


def test_tinyface_train(tmp_path):
    data = load_tinyface_train(_tinyface(tmp_path))
    assert [(r.identity, r.label) for r in data.records] == [("3", 0), ("7", 1), ("7", 1)]
    assert data.records[2].metadata == {"native_size": (11, 9), "source": "Training_Set/7/7_2.jpg"}


def test_tinyface_test_reads_ids_from_mat_files(tmp_path):
    test = load_tinyface_test(_tinyface(tmp_path))
    assert [(r.path.name, r.identity, r.label) for r in test.probe] == [("5_1.jpg", "105", 0), ("40_2.jpg", "140", 1)]
    assert [(r.path.name, r.identity, r.label) for r in test.gallery] == [("40_1.jpg", "140", 1), ("5_2.jpg", "105", 0)]
    assert [(r.path.name, r.label, r.identity) for r in test.distractors] == [("1.jpg", -1, None), ("2.jpg", -1, None)]
    assert test.distractors[1].metadata["native_size"] == (22, 17)
    assert {r.split for r in test.probe} == {"probe"}


def test_tinyface_test_without_mat_uses_name_prefix(tmp_path):
    test = load_tinyface_test(_tinyface(tmp_path, with_mat=False), distractors=False)
    assert [(r.identity, r.label) for r in test.probe] == [("40", 1), ("5", 0)]
    assert [(r.identity, r.label) for r in test.gallery] == [("40", 1), ("5", 0)]
    assert test.distractors == ()


def test_tinyface_missing_folders_are_listed(tmp_path):
    (tmp_path / "Testing_Set" / "Probe").mkdir(parents=True)
    with pytest.raises(LayoutError) as error:
        load_tinyface_test(tmp_path)
    message = str(error.value)
    assert message.startswith(f"TinyFace: {tmp_path} does not have the expected layout")
    assert "missing Testing_Set/Gallery_Match, Testing_Set/Gallery_Distractor" in message


def test_mat_listing_a_missing_image(tmp_path):
    root = _tinyface(tmp_path)
    write_mat(root / "Testing_Set" / "probe_img_ID_pairs.mat", probe_set=cell(["5_1.jpg", "99_9.jpg"]), probe_ids=np.array([[1.0], [2.0]]))
    with pytest.raises(LayoutError, match=r"1 image files listed in .*probe_img_ID_pairs.mat are missing: .*99_9.jpg"):
        load_tinyface_test(root)


def test_mat_with_ambiguous_variables(tmp_path):
    root = _tinyface(tmp_path)
    write_mat(root / "Testing_Set" / "probe_img_ID_pairs.mat", a=cell(["5_1.jpg"]), b=cell(["40_2.jpg"]))
    with pytest.raises(LayoutError, match=r"probe_img_ID_pairs.mat should hold one cell array of image names.*found a \(object"):
        load_tinyface_test(root)


def test_mat_ids_count_must_match_names(tmp_path):
    root = _tinyface(tmp_path)
    write_mat(root / "Testing_Set" / "probe_img_ID_pairs.mat", probe_set=cell(["5_1.jpg", "40_2.jpg"]), probe_ids=np.array([[1.0]]))
    with pytest.raises(LayoutError, match="has 2 image names but 1 ids"):
        load_tinyface_test(root)


def test_garbage_mat_file(tmp_path):
    root = _tinyface(tmp_path)
    (root / "Testing_Set" / "probe_img_ID_pairs.mat").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(LayoutError, match="cannot read .mat file .*probe_img_ID_pairs.mat"):
        load_tinyface_test(root)


# ------------------------------------------------------------------------------------ SCface
def _scface(root, subjects=("001", "002")):
    for s, subject in enumerate(subjects):
        write_image(root / "mugshot_frontal_cropped_all" / f"{subject}_frontal.JPG", 60, 48, seed=s)
        for d, height in ((1, 10), (2, 16), (3, 30)):
            for k in (1, 2):
                write_image(root / f"surveillance_cameras_distance_{d}" / f"cam{k}" / f"{subject}_cam{k}_{d}.jpg", height + k, height, seed=k)
    return root


def test_scface_mugshots_and_probe_metadata(tmp_path):
    data = load_scface(_scface(tmp_path))
    assert [(r.identity, r.label, r.metadata["native_size"]) for r in data.mugshots] == [("001", 0, (60, 48)), ("002", 1, (60, 48))]
    assert len(data.probes) == 12
    far = data.probes_at(1)
    assert [(r.identity, r.metadata["camera"], r.metadata["distance_m"], r.metadata["native_size"]) for r in far] == [
        ("001", 1, 4.2, (11, 10)),
        ("002", 1, 4.2, (11, 10)),
        ("001", 2, 4.2, (12, 10)),
        ("002", 2, 4.2, (12, 10)),
    ]
    assert {r.metadata["distance_m"] for r in data.probes_at(3)} == {1.0}
    assert [r.label for r in far] == [0, 1, 0, 1]


def test_scface_only_some_distances(tmp_path):
    root = _scface(tmp_path)
    data = load_scface(root, distances=(1,))
    assert {r.metadata["distance"] for r in data.probes} == {1}


def test_scface_dataset_relabels_chosen_subjects(tmp_path):
    data = scface_dataset(_scface(tmp_path, ("001", "002", "003")), subjects=["003", "002"])
    assert sorted({(r.identity, r.label) for r in data.records}) == [("002", 0), ("003", 1)]
    assert len(data) == 14 and data.num_classes == 2
    with pytest.raises(ValueError, match="subjects 999 are not in"):
        scface_dataset(tmp_path, subjects=["999"])


def test_scface_bad_names(tmp_path):
    root = _scface(tmp_path)
    write_image(root / "surveillance_cameras_distance_2" / "cam1" / "001_cam2_2.jpg")
    with pytest.raises(LayoutError, match=r"001_cam2_2.jpg is in the wrong folder \(expected <id>_cam1_2.jpg\)"):
        load_scface(root)
    (root / "surveillance_cameras_distance_2" / "cam1" / "001_cam2_2.jpg").unlink()
    write_image(root / "mugshot_frontal_cropped_all" / "001.jpg")
    with pytest.raises(LayoutError, match=r"unexpected file name .*001.jpg \(expected <id>_frontal.jpg\)"):
        load_scface(root)


def test_scface_missing_distance_folder(tmp_path):
    root = _scface(tmp_path)
    shutil.rmtree(root / "surveillance_cameras_distance_3")
    with pytest.raises(LayoutError, match="SCface: .* missing surveillance_cameras_distance_3 "):
        load_scface(root)


# ------------------------------------------------------------------------------ QMUL-SurvFace
def _survface(root):
    ver = root / "Face_Verification_Test_Set"
    for name in ("1_1.jpg", "1_2.jpg", "2_1.jpg", "2_2.jpg"):
        write_image(ver / "verification_images" / name, 12, 10)
    write_mat(ver / "positive_pairs_names.mat", positive_pairs_names=cell(["1_1.jpg", "1_2.jpg", "2_1.jpg", "2_2.jpg"], 2))
    write_mat(ver / "negative_pairs_names.mat", negative_pairs_names=cell(["1_1.jpg", "2_2.jpg"], 2))
    ident = root / "Face_Identification_Test_Set"
    write_image(ident / "gallery" / "8_1.jpg")
    write_image(ident / "gallery" / "9_1.jpg")
    write_image(ident / "mated_probe" / "9_2.jpg")
    write_image(ident / "unmated_probe" / "1.jpg")
    write_mat(ident / "gallery_img_ID_pairs.mat", gallery_set=cell(["8_1.jpg", "9_1.jpg"]), gallery_ids=np.array([[8.0], [9.0]]))
    write_mat(ident / "mated_probe_img_ID_pairs.mat", mated_probe_set=cell(["9_2.jpg"]), mated_probe_ids=np.array([[9.0]]))
    return root


def test_survface_verification_pairs(tmp_path):
    data = load_survface_verification(_survface(tmp_path))
    assert [r.path.name for r in data.records] == ["1_1.jpg", "1_2.jpg", "2_1.jpg", "2_2.jpg"]
    assert data.pairs.tolist() == [[0, 1], [2, 3], [0, 3]]
    assert data.is_same.tolist() == [True, True, False]


def test_survface_verification_skips_pairs_of_corrupt_images(tmp_path):
    root = _survface(tmp_path)
    bad = truncate(write_image(root / "Face_Verification_Test_Set" / "verification_images" / "2_2.jpg", 64, 64), 0.4)
    data = load_survface_verification(root, skip_corrupt=True)
    assert data.corrupt == (bad,)
    assert [[data.records[i].path.name for i in pair] for pair in data.pairs] == [["1_1.jpg", "1_2.jpg"]]
    assert data.is_same.tolist() == [True]


def test_survface_identification(tmp_path):
    data = load_survface_identification(_survface(tmp_path))
    assert [(r.identity, r.label) for r in data.gallery] == [("8", 0), ("9", 1)]
    assert [(r.identity, r.label, r.split) for r in data.mated_probe] == [("9", 1, "mated_probe")]
    assert [(r.identity, r.label) for r in data.unmated_probe] == [(None, -1)]


def test_survface_missing_pair_file(tmp_path):
    root = _survface(tmp_path)
    (root / "Face_Verification_Test_Set" / "negative_pairs_names.mat").unlink()
    with pytest.raises(LayoutError, match="QMUL-SurvFace: .*missing Face_Verification_Test_Set/negative_pairs_names.mat"):
        load_survface_verification(root)


# --------------------------------------------------------------------------------- LFW pairs
PAIRS = "2 1\nAnn\t1\t2\nAnn\t1\tBob\t1\nBob\t1\t2\nBob   2   Ann 2\n"


def _lfw(root, text=PAIRS):
    for name in ("Ann", "Bob"):
        for n in (1, 2):
            write_image(root / name / f"{name}_{n:04d}.jpg", 20 + n, 20, seed=n)
    (root / "pairs.txt").write_text(text)
    return root


def test_lfw_pairs_folds_and_records(tmp_path):
    data = load_pairs(_lfw(tmp_path))
    assert [(r.identity, r.metadata["image_number"], r.label) for r in data.records] == [("Ann", 1, 0), ("Ann", 2, 0), ("Bob", 1, 1), ("Bob", 2, 1)]
    assert data.pairs.tolist() == [[0, 1], [0, 2], [2, 3], [3, 1]]
    assert data.is_same.tolist() == [True, False, True, False]
    assert data.folds.tolist() == [0, 0, 1, 1]
    assert data.records[3].metadata["source"] == "Bob/Bob_0002.jpg"


@pytest.mark.parametrize(
    "text, message",
    [
        ("2 1\nAnn\t1\t2\nAnn\t1\nBob\t1\t2\nBob\t2\tAnn\t2\n", r"pairs.txt line 3: expected 3 fields .* or 4 fields .*, found 2"),
        ("2 1\nAnn\t1\t2\nAnn\t1\tBob\t1\nBob\t1\t2\tx\ty\n Bob\t2\tAnn\t2\n", r"line 4: expected 3 fields .*found 5"),
        ("2 1\nAnn\tone\t2\nAnn\t1\tBob\t1\nBob\t1\t2\nBob\t2\tAnn\t2\n", r"line 2: image number 'one' is not an integer"),
        ("ten\nAnn\t1\t2\n", r"line 1: expected '<folds> <pairs per class per fold>'"),
        ("2 2\nAnn\t1\t2\nAnn\t1\tBob\t1\n", r"expected 8 pair lines \(2 folds x 2 x 2\), found 2"),
    ],
)
def test_malformed_pairs_file(tmp_path, text, message):
    _lfw(tmp_path, text)
    with pytest.raises(LayoutError, match=message):
        parse_pairs_file(tmp_path / "pairs.txt")


def test_pairs_naming_a_missing_image(tmp_path):
    _lfw(tmp_path, "1 1\nAnn\t1\t3\nAnn\t1\tBob\t1\n")
    with pytest.raises(LayoutError, match=r"XQLFW: 1 image files named by .*pairs.txt are missing: .*Ann/Ann_0003.jpg"):
        load_pairs(tmp_path, "XQLFW")


def test_pairs_missing_pair_file(tmp_path):
    (tmp_path / "Ann").mkdir()
    with pytest.raises(LayoutError, match="LFW: .* missing pairs.txt"):
        load_pairs(tmp_path)


# ---------------------------------------------------------------------------------- RecordIO
def test_recordio_with_insightface_header(tmp_path):
    images = [jpeg_bytes(20 + i, 16 + i, seed=i) for i in range(5)]
    labels = [0, 0, 1, 2, 2]
    write_recordio(tmp_path, labels, images)
    data = RecordIODataset(tmp_path, input_size=24)
    assert len(data) == 5 and data.num_classes == 3
    assert data.labels.tolist() == labels
    assert data.native_size(3) == (23, 19)
    expected = read_image(io.BytesIO(images[3]))
    assert np.array_equal(data.image(3), expected)
    item = data[3]
    assert item["image"].shape == (3, 24, 24) and item["label"].item() == 2 and item["index"].item() == 3
    assert DATASETS.build("recordio", root=tmp_path).num_classes == 3


def test_recordio_record_split_around_the_magic(tmp_path):
    """A record whose data contains the magic number at an aligned offset is stored in parts."""
    images = [jpeg_bytes(12, 12, seed=1), jpeg_bytes(13, 12, seed=2)]
    write_recordio(tmp_path, [0, 1], images, record_ids=[0xCED7230A, 0])
    raw = (tmp_path / "train.rec").read_bytes()
    assert raw.count((0xCED7230A).to_bytes(4, "little")) > 2 + 2 + 1  # more record headers than records
    data = RecordIODataset(tmp_path)
    assert np.array_equal(data.image(0), read_image(io.BytesIO(images[0])))
    assert data.labels.tolist() == [0, 1]


def test_recordio_without_header_record(tmp_path):
    write_recordio(tmp_path, [3, 1, 3], [jpeg_bytes(10, 10, seed=i) for i in range(3)], header=False)
    data = RecordIODataset(tmp_path)
    # labels index the classifier's rows: 4 classes (0 and 2 without images), so that label 3 fits
    assert len(data) == 3 and data.labels.tolist() == [3, 1, 3] and data.num_classes == 4


def test_recordio_bad_input(tmp_path):
    with pytest.raises(LayoutError, match="RecordIO: .*missing train.rec, train.idx"):
        RecordIODataset(tmp_path)
    write_recordio(tmp_path, [0, 1], [jpeg_bytes(10, 10), jpeg_bytes(10, 10, seed=1)])
    rec = tmp_path / "train.rec"
    offsets = [int(line.split("\t")[1]) for line in (tmp_path / "train.idx").read_text().splitlines()]
    raw = bytearray(rec.read_bytes())
    raw[offsets[2]] ^= 0xFF  # break the magic of image record 2
    rec.write_bytes(bytes(raw))
    data = RecordIODataset(tmp_path)
    with pytest.raises(CorruptImageError, match=r"train.rec record 2: .*does not start with magic 0xced7230a"):
        data[1]
    (tmp_path / "train.idx").write_text("0\t0\n1 24\n")
    with pytest.raises(LayoutError, match=r"train.idx line 2: expected '<key>\\t<offset>'"):
        RecordIODataset(tmp_path)


def test_recordio_corrupt_jpeg_names_the_record(tmp_path):
    write_recordio(tmp_path, [0, 1], [jpeg_bytes(32, 32)[:200], jpeg_bytes(8, 8)])
    with pytest.raises(CorruptImageError, match=r"cannot read image .*train.rec record 1"):
        RecordIODataset(tmp_path)[0]
    with pytest.raises(CorruptImageError, match=r"cannot read image .*train.rec record 1"):
        RecordIODataset(tmp_path, verify=True)
    data = RecordIODataset(tmp_path, verify=True, skip_corrupt=True)
    assert data.corrupt == (f"{tmp_path / 'train.rec'} record 1",)
    assert len(data) == 1 and data[0]["label"].item() == 1 and data.native_size(0) == (8, 8)


# -------------------------------------------------------------------------- verification .bin
@pytest.mark.parametrize("protocol", [2, 4])
def test_verification_bin(tmp_path, protocol):
    images = [jpeg_bytes(16, 16, seed=i) for i in range(40)]
    is_same = [i % 2 == 0 for i in range(20)]
    data = load_verification_bin(write_verification_bin(tmp_path / "lfw.bin", images, is_same, protocol))
    assert data.images == tuple(images)
    assert data.is_same.tolist() == is_same
    assert data.pairs[:2].tolist() == [[0, 1], [2, 3]] and data.pairs.shape == (20, 2)
    assert data.folds.tolist() == [i // 2 for i in range(20)]
    assert np.array_equal(data.image(5), read_image(io.BytesIO(images[5])))


def test_verification_bin_with_numpy_bool_array(tmp_path):
    images = [jpeg_bytes(8, 8, seed=i) for i in range(4)]
    data = load_verification_bin(write_verification_bin(tmp_path / "x.bin", images, np.array([True, False])))
    assert data.is_same.tolist() == [True, False]


def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = write_malicious_bin(tmp_path / "evil.bin", marker)
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load global (posix|os|nt)\.system"):
        load_verification_bin(path)
    assert not marker.exists()


def test_verification_bin_bad_structure(tmp_path):
    (tmp_path / "a.bin").write_bytes(pickle.dumps({"images": []}))
    with pytest.raises(VerificationBinError, match=r"a.bin: found a pickled dict; expected .*\(images, issame\) pair"):
        load_verification_bin(tmp_path / "a.bin")
    write_verification_bin(tmp_path / "b.bin", [b"x"] * 3, [True])
    with pytest.raises(ValueError, match="3 images for 1 pairs"):
        load_verification_bin(tmp_path / "b.bin")
    with pytest.raises(LayoutError, match="c.bin does not exist"):
        load_verification_bin(tmp_path / "c.bin")
    (tmp_path / "d.bin").write_bytes(b"")
    with pytest.raises(pickle.UnpicklingError, match=r"cannot read .*d.bin \(EOFError"):
        load_verification_bin(tmp_path / "d.bin")
