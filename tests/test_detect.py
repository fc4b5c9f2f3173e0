"""MTCNN in plain torch: layer names/shapes of the converted weights, NMS, pyramid, box maths, loading.

The real-weight test runs only where the facenet-pytorch wheel's data is installed (or
``LRFR_MTCNN_WEIGHTS`` points at a folder with pnet.pt, rnet.pt, onet.pt); everything else uses
random weights.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from lrfr.data import detect
from lrfr.data.detect import (
    MTCNN,
    DetectorUnavailable,
    crops,
    load_nets,
    nms,
    onet,
    pnet,
    proposals,
    pyramid_scales,
    regress,
    rnet,
    square,
    weights_dir,
)

# Parameter shapes of facenet-pytorch 2.6.0's data/{pnet,rnet,onet}.pt, read from the wheel.
PRELUS = {"pnet": (10, 16, 32), "rnet": (28, 48, 64, 128), "onet": (32, 64, 64, 128, 256)}
WEIGHT_SHAPES = {
    "pnet": {
        "conv1.weight": (10, 3, 3, 3), "conv2.weight": (16, 10, 3, 3), "conv3.weight": (32, 16, 3, 3),
        "conv4_1.weight": (2, 32, 1, 1), "conv4_2.weight": (4, 32, 1, 1),
    },
    "rnet": {
        "conv1.weight": (28, 3, 3, 3), "conv2.weight": (48, 28, 3, 3), "conv3.weight": (64, 48, 2, 2),
        "dense4.weight": (128, 576), "dense5_1.weight": (2, 128), "dense5_2.weight": (4, 128),
    },
    "onet": {
        "conv1.weight": (32, 3, 3, 3), "conv2.weight": (64, 32, 3, 3), "conv3.weight": (64, 64, 3, 3),
        "conv4.weight": (128, 64, 2, 2), "dense5.weight": (256, 1152), "dense6_1.weight": (2, 256),
        "dense6_2.weight": (4, 256), "dense6_3.weight": (10, 256),
    },
}


@pytest.mark.parametrize("name,factory", [("pnet", pnet), ("rnet", rnet), ("onet", onet)])
def test_state_dict_matches_the_converted_weights(name, factory):
    state = {k: tuple(v.shape) for k, v in factory().state_dict().items()}
    expected = dict(WEIGHT_SHAPES[name])
    for key, shape in WEIGHT_SHAPES[name].items():
        expected[key.replace("weight", "bias")] = shape[:1]
    for i, channels in enumerate(PRELUS[name], 1):
        expected[f"prelu{i}.weight"] = (channels,)
    assert state == expected


def test_output_shapes():
    torch.manual_seed(0)
    prob, offsets = pnet()(torch.randn(2, 3, 12, 12))
    assert prob.shape == (2, 1, 1) and offsets.shape == (2, 4, 1, 1)
    prob, offsets = pnet()(torch.randn(1, 3, 40, 30))  # 40 -> 38 -> 19 -> 17 -> 15; 30 -> 28 -> 14 -> 12 -> 10
    assert prob.shape == (1, 15, 10) and offsets.shape == (1, 4, 15, 10)
    prob, offsets = rnet()(torch.randn(5, 3, 24, 24))
    assert prob.shape == (5,) and offsets.shape == (5, 4)
    prob, offsets, marks = onet()(torch.randn(5, 3, 48, 48))
    assert prob.shape == (5,) and offsets.shape == (5, 4) and marks.shape == (5, 10)
    assert ((prob >= 0) & (prob <= 1)).all()


BOXES = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 5, 5]], dtype=torch.float32)
SCORES = torch.tensor([0.9, 0.8, 0.7, 0.95])


def test_nms_union_by_hand():
    # D (0.95) first; A overlaps D by IoU 25/100 and B by 16/109: both stay; B overlaps A by 81/119 > 0.5.
    assert nms(BOXES, SCORES, 0.5).tolist() == [3, 0, 2]
    assert nms(BOXES, SCORES, 0.7).tolist() == [3, 0, 1, 2]  # 81/119 = 0.68 is under 0.7


def test_nms_min_by_hand():
    # A contains D: overlap over the smaller area is 25/25 = 1 (dropped); B covers 16/25 of D (kept).
    assert nms(BOXES, SCORES, 0.7, mode="min").tolist() == [3, 1, 2]


def test_nms_empty_and_bad_mode():
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []
    with pytest.raises(ValueError, match="'union' or 'min', got 'max'"):
        nms(BOXES, SCORES, 0.5, mode="max")


def test_pyramid_scales_by_hand():
    assert pyramid_scales(100, 200, min_face_size=20, factor=0.5) == pytest.approx([0.6, 0.3, 0.15])
    assert pyramid_scales(12, 50, min_face_size=12) == [1.0]
    assert pyramid_scales(10, 10, min_face_size=12) == []
    with pytest.raises(ValueError, match="0 < factor < 1, got 20 and 1.5"):
        pyramid_scales(10, 10, 20, 1.5)


def test_regression_and_square_by_hand():
    box = torch.tensor([[10.0, 20.0, 30.0, 60.0]])
    moved = regress(box, torch.tensor([[0.1, -0.1, 0.5, 0.25]]))  # width 20, height 40
    assert moved.tolist() == [pytest.approx([12.0, 16.0, 40.0, 70.0])]
    assert square(box).tolist() == [[0.0, 20.0, 40.0, 60.0]]


def test_proposals_map_cells_to_image_windows():
    prob = torch.zeros(3, 4)
    prob[1, 2] = 0.9
    offsets = torch.arange(48, dtype=torch.float32).reshape(4, 3, 4)
    boxes, scores = proposals(prob, offsets, scale=0.5, threshold=0.6)
    # cell (row 1, col 2): window at (4, 2) of the half-size image, 12 wide -> (8, 4, 32, 28) in the image
    assert boxes[:, :4].tolist() == [[8.0, 4.0, 32.0, 28.0]]
    assert boxes[:, 4:].tolist() == [offsets[:, 1, 2].tolist()]
    assert scores.tolist() == [pytest.approx(0.9)]


def test_crops_pad_outside_with_zeros():
    image = torch.arange(1, 101, dtype=torch.float32).reshape(1, 10, 10).repeat(3, 1, 1)
    out = crops(image, torch.tensor([[-2.0, -2.0, 2.0, 2.0], [0.0, 0.0, 10.0, 10.0]]), 4)
    assert out.shape == (2, 3, 4, 4)
    assert out[0, 0].tolist() == [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 2], [0, 0, 11, 12]]
    assert out[1, 0, 0, 0] == pytest.approx(image[0, :3, :3].mean().item(), rel=0.1)


def test_cascade_runs_with_random_weights():
    torch.manual_seed(0)
    detector = MTCNN((pnet(), rnet(), onet()), min_face_size=20, thresholds=(0.0, 0.0, 0.0))
    image = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    faces = detector.detect(image)
    assert faces and all(f.box.shape == (4,) and f.landmarks.shape == (5, 2) for f in faces)
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
    assert detector.detect(np.zeros((15, 30, 3), np.uint8)) == []  # smaller than min_face_size
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        detector.detect(np.zeros((40, 40), np.uint8))


def test_missing_weights_say_how_to_install(tmp_path, monkeypatch):
    monkeypatch.delenv(detect.WEIGHTS_ENV, raising=False)
    with pytest.raises(DetectorUnavailable, match=r"lacks the MTCNN weights pnet.pt, rnet.pt, onet.pt.*pip install --no-deps facenet-pytorch"):
        weights_dir(tmp_path)
    monkeypatch.setattr(detect.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DetectorUnavailable, match="not installed: install them with `pip install --no-deps facenet-pytorch`"):
        weights_dir()


def test_load_nets_reads_plain_state_dicts(tmp_path, monkeypatch):
    torch.manual_seed(1)
    saved = (pnet(), rnet(), onet())
    for net, filename in zip(saved, detect.WEIGHT_FILES.values()):
        torch.save(net.state_dict(), tmp_path / filename)
    monkeypatch.setenv(detect.WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(DetectorUnavailable, match=r"pnet\.pt has sha256 [0-9a-f]{64}, expected a2a71925"):
        load_nets()
    for net, loaded in zip(saved, load_nets(verify=False)):
        assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), loaded.state_dict().values()))
        assert not loaded.training


def cartoon_face(size: int = 320) -> Image.Image:
    """A drawn frontal face: eyes at (130, 132) and (190, 132), mouth from x 130 to 190 at y 210."""
    image = Image.new("RGB", (size, size), (90, 120, 160))
    draw = ImageDraw.Draw(image)
    draw.ellipse([90, 60, 230, 250], fill=(224, 180, 150))
    draw.ellipse([116, 124, 144, 140], fill=(40, 30, 30))
    draw.ellipse([176, 124, 204, 140], fill=(40, 30, 30))
    draw.polygon([(160, 144), (148, 184), (172, 184)], fill=(200, 150, 120))
    draw.ellipse([130, 200, 190, 220], fill=(150, 60, 60))
    return image


def real_weights_or_skip():
    try:
        return weights_dir()
    except DetectorUnavailable as error:
        pytest.skip(str(error))


def test_real_weights_find_the_drawn_face_and_its_landmarks():
    folder = real_weights_or_skip()
    detector = MTCNN(load_nets(folder))
    faces = detector.detect(np.asarray(cartoon_face()))
    assert len(faces) == 1 and faces[0].score > 0.7
    expected = np.array([[130, 132], [190, 132], [160, 176], [132, 208], [188, 208]])
    assert np.abs(faces[0].landmarks - expected).max() < 8
    assert detector.detect(np.full((200, 200, 3), 128, np.uint8)) == []


def test_face_crop_is_the_square_around_the_box():
    image = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    face = detect.Face(np.array([2.0, 2.0, 6.0, 8.0], np.float32), 0.9, np.zeros((5, 2)))
    # box 4 wide, 6 high -> the 6x6 square (1, 2, 7, 8)
    np.testing.assert_array_equal(detect.face_crop(image, face), image[2:8, 1:7])


class FixedDetector:
    """Finds one face, the 10x10 square at (5, 4), in every image (the cascade is tested above)."""

    def detect(self, image: np.ndarray) -> list[detect.Face]:
        return [detect.Face(np.array([5.0, 4.0, 15.0, 14.0], np.float32), 0.99, np.zeros((5, 2)))]


def test_extract_faces_writes_a_flat_ui_folder(tmp_path):
    from lrfr.data.loaders import load_unlabelled

    rng = np.random.default_rng(3)
    for tag, count in (("lpw", 3), ("mars", 4)):
        folder = tmp_path / tag / "0001"
        folder.mkdir(parents=True)
        for k in range(count):
            Image.fromarray(rng.integers(0, 256, (48, 24, 3), dtype=np.uint8)).save(folder / f"f{k}.jpg")
    detector = FixedDetector()
    sources = {"lpw": tmp_path / "lpw", "mars": tmp_path / "mars"}
    written = detect.extract_faces(sources, tmp_path / "ui", detector, every=2)
    names = sorted(p.name for p in (tmp_path / "ui").iterdir())
    assert written == 4 and names == ["lpw__0001__f0.png", "lpw__0001__f2.png", "mars__0001__f0.png", "mars__0001__f2.png"]
    assert len(load_unlabelled(tmp_path / "ui", verify=False)) == 4
    crop = np.asarray(Image.open(tmp_path / "ui" / "mars__0001__f2.png"))
    np.testing.assert_array_equal(crop, np.asarray(Image.open(tmp_path / "mars" / "0001" / "f2.jpg"))[4:14, 5:15])
    assert detect.extract_faces(sources, tmp_path / "ui2", detector, limit=2) == 2
    with pytest.raises(FileNotFoundError, match="mars: .*nowhere is not a folder of person images"):
        detect.extract_faces({"mars": tmp_path / "nowhere"}, tmp_path / "ui3", detector)
    assert not (tmp_path / "ui3").exists()


def test_align_dataset_falls_back_to_centre_crop(tmp_path):
    (tmp_path / "raw" / "A").mkdir(parents=True)
    Image.fromarray(np.full((250, 250, 3), 128, np.uint8)).save(tmp_path / "raw" / "A" / "A_0001.jpg")
    (tmp_path / "raw" / "pairs.txt").write_text("1 1\n")
    detector = MTCNN((pnet(), rnet(), onet()), thresholds=(1.1, 1.1, 1.1))  # finds nothing
    report = detect.align_dataset(tmp_path / "raw", tmp_path / "out", detector)
    assert (report.aligned, report.centre_crop) == ([], ["A/A_0001.jpg"])
    assert "1 no face found, centre crop written instead:\n  A/A_0001.jpg" in report.summary()
    assert Image.open(tmp_path / "out" / "A" / "A_0001.jpg").size == (112, 112)
    assert (tmp_path / "out" / "pairs.txt").read_text() == "1 1\n"


def test_box_crop_enlarges_the_box_about_its_centre_at_native_resolution():
    image = np.arange(20 * 20 * 3, dtype=np.uint8).reshape(20, 20, 3)
    box = np.array([6.0, 4.0, 10.0, 12.0])  # 4 wide, 8 high, centre (8, 8)
    np.testing.assert_array_equal(detect.box_crop(image, box), image[4:12, 6:10])
    # x1.5: 6 x 12 about (8, 8) -> x 5..11, y 2..14 (Grm et al.'s crops are not squared)
    np.testing.assert_array_equal(detect.box_crop(image, box, 1.5), image[2:14, 5:11])
    corner = detect.box_crop(image, np.array([-2.0, -2.0, 2.0, 2.0]))  # zero where the box leaves the image
    assert corner.shape == (4, 4, 3) and not corner[:2].any() and not corner[:, :2].any()
    np.testing.assert_array_equal(corner[2:, 2:], image[:2, :2])


def test_crop_dataset_writes_enlarged_boxes_and_lists_faceless_images(tmp_path):
    class OneBigImageFace:
        def detect(self, image):
            return FixedDetector().detect(image) if image.shape[0] > 20 else []

    (tmp_path / "raw" / "cam1").mkdir(parents=True)
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    Image.fromarray(big).save(tmp_path / "raw" / "cam1" / "a.png")
    Image.fromarray(big[:10, :10]).save(tmp_path / "raw" / "cam1" / "b.png")
    report = detect.crop_dataset(tmp_path / "raw", tmp_path / "out", OneBigImageFace(), 1.3)
    assert (report.aligned, report.no_face, report.size) == (["cam1/a.png"], ["cam1/b.png"], None)
    # the 10x10 box at (5, 4) enlarged 1.3 times about (10, 9): x 3.5..16.5, y 2.5..15.5, rounded half to even
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "cam1" / "a.png")), big[2:16, 4:16])
    assert not (tmp_path / "out" / "cam1" / "b.png").exists()
    assert "at native resolution" in report.summary() and "1 no face found, left out" in report.summary()


def test_crop_scale_is_checked_when_parsed():
    import argparse

    parser = argparse.ArgumentParser()
    detect.add_crop_arguments(parser)
    assert parser.parse_args(["--crop-scale", "1.3"]).crop_scale == 1.3
    assert detect.crop_prepared("scface", Path("nowhere"), parser.parse_args([])) is None
    for bad in ("0.8", "x"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--crop-scale", bad])


def test_align_prepared_writes_a_checked_copy(tmp_path, monkeypatch):
    import argparse

    torch.manual_seed(2)
    weights = tmp_path / "weights"
    weights.mkdir()
    for net, filename in zip((pnet(), rnet(), onet()), detect.WEIGHT_FILES.values()):
        torch.save(net.state_dict(), weights / filename)
    root = tmp_path / "lfw"
    for name, number in (("A_B", 1), ("A_B", 2), ("C_D", 1)):
        (root / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((250, 250, 3), 60 * number, np.uint8)).save(root / name / f"{name}_{number:04d}.jpg")
    (root / "pairs.txt").write_text("1\t1\nA_B\t1\t2\nA_B\t1\tC_D\t1\n")
    checksums = {name: hashlib.sha256((weights / name).read_bytes()).hexdigest() for name in detect.WEIGHT_SHA256}
    monkeypatch.setattr(detect, "WEIGHT_SHA256", checksums)
    args = argparse.Namespace(align=True, weights=weights, min_face_size=40.0)
    assert detect.align_prepared("lfw", root, args) == tmp_path / "lfw_112"
    assert Image.open(tmp_path / "lfw_112" / "C_D" / "C_D_0001.jpg").size == (112, 112)
    assert detect.align_prepared("lfw", root, argparse.Namespace(align=False)) is None
    with pytest.raises(SystemExit, match="error: .*lacks the MTCNN weights"):
        detect.align_prepared("lfw", root, argparse.Namespace(align=True, weights=tmp_path, min_face_size=20.0))


def test_weights_found_in_installed_package_without_importing_it(tmp_path, monkeypatch):
    package = tmp_path / "site" / "facenet_pytorch"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('torchvision is missing')\n")
    for filename in detect.WEIGHT_FILES.values():
        (package / "data" / filename).write_bytes(b"")
    monkeypatch.delenv(detect.WEIGHTS_ENV, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert weights_dir() == package / "data"
