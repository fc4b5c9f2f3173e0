"""Five-point similarity alignment: exact recovery of known transforms, and warping back a known pattern."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lrfr.data.align import (
    ARCFACE_TEMPLATE, align_face, align_folder, centre_landmarks, landmark_aligner, similarity_transform, template,
)


def similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    angle = np.deg2rad(angle_deg)
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.hstack([rotation, [[tx], [ty]]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_template_is_insightface_arcface_dst():
    assert ARCFACE_TEMPLATE.shape == (5, 2)
    np.testing.assert_allclose(ARCFACE_TEMPLATE[0], [38.2946, 51.6963])
    np.testing.assert_allclose(ARCFACE_TEMPLATE[4], [70.7299, 92.2041])
    np.testing.assert_allclose(template(224), ARCFACE_TEMPLATE * 2)


@pytest.mark.parametrize("angle,scale,tx,ty", [(0, 1, 0, 0), (17, 2.5, 40, -12), (-130, 0.3, 5.5, 80), (180, 1.7, -3, 9)])
def test_known_similarity_is_recovered_exactly(angle, scale, tx, ty):
    truth = similarity(angle, scale, tx, ty)
    found = similarity_transform(ARCFACE_TEMPLATE, apply(truth, ARCFACE_TEMPLATE))
    np.testing.assert_allclose(found, truth, atol=1e-9)


def test_least_squares_fit_has_no_reflection():
    mirrored = ARCFACE_TEMPLATE * [-1, 1]
    matrix = similarity_transform(ARCFACE_TEMPLATE, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_noisy_points_give_the_least_squares_fit():
    truth = similarity(25, 1.8, 10, 20)
    noise = np.random.default_rng(0).normal(0, 0.5, (5, 2))
    dst = apply(truth, ARCFACE_TEMPLATE) + noise
    found = similarity_transform(ARCFACE_TEMPLATE, dst)
    residual = ((apply(found, ARCFACE_TEMPLATE) - dst) ** 2).sum()
    for perturbed in (truth, found + 1e-3, found - np.array([[0, 0, 1e-2], [0, 0, 0]])):
        assert residual <= ((apply(perturbed, ARCFACE_TEMPLATE) - dst) ** 2).sum() + 1e-12


def pattern(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A smooth RGB pattern defined on continuous template coordinates, in [0, 255]."""
    return np.stack(
        [127.5 + 100 * np.sin(x / 9.0), 127.5 + 100 * np.cos(y / 11.0), 127.5 + 100 * np.sin((x + y) / 14.0)], axis=-1
    )


def test_align_returns_the_pattern_warped_by_a_known_transform():
    # The face image is the pattern seen through a known similarity (template -> image), sampled at
    # integer pixel centres; aligning with the transformed template must give the pattern back.
    truth = similarity(20, 2.0, 100, 15)  # keeps the whole 112x112 crop inside the 360x360 image
    inverse = np.linalg.inv(np.vstack([truth, [0, 0, 1]]))[:2]
    ys, xs = np.mgrid[0:360, 0:360].astype(np.float64)
    source = apply(inverse, np.stack([xs.ravel(), ys.ravel()], axis=1))
    image = pattern(source[:, 0], source[:, 1]).reshape(360, 360, 3).round().astype(np.uint8)
    aligned = align_face(image, apply(truth, ARCFACE_TEMPLATE))
    oy, ox = np.mgrid[0:112, 0:112].astype(np.float64)
    expected = pattern(ox, oy)
    error = np.abs(aligned.astype(np.float64) - expected)
    assert aligned.shape == (112, 112, 3) and aligned.dtype == np.uint8
    # measured: mean 0.50, max 1.47 (uint8 rounding + bilinear); half a pixel off would give 1.8 / 4.7
    assert error.mean() < 0.7
    assert error.max() < 2.0


def test_align_identity_landmarks_keep_the_image():
    image = np.random.default_rng(1).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    difference = align_face(image, ARCFACE_TEMPLATE).astype(int) - image
    assert np.abs(difference).max() <= 1  # PIL's fixed-point bilinear filter rounds down now and then


@pytest.mark.parametrize("landmarks", [np.zeros((4, 2)), np.zeros(10), np.zeros((5, 3))])
def test_bad_landmark_shapes_raise(landmarks):
    image = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(ValueError, match=r"src_points must have shape \(5, 2\).*got shape"):
        align_face(image, landmarks)


def test_bad_landmarks_and_image_raise():
    with pytest.raises(ValueError, match="must be finite"):
        similarity_transform(np.full((5, 2), np.nan), ARCFACE_TEMPLATE)
    with pytest.raises(ValueError, match="all the same point"):
        similarity_transform(np.ones((5, 2)), ARCFACE_TEMPLATE)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8.*shape \(50, 50\)"):
        align_face(np.zeros((50, 50), np.uint8), ARCFACE_TEMPLATE)


def test_align_folder_writes_atomically_and_lists_skipped(tmp_path):
    src = tmp_path / "raw"
    (src / "person").mkdir(parents=True)
    rng = np.random.default_rng(2)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)).save(src / "person" / name)
    finder = lambda image: None if image[0, 0, 0] == 255 else ARCFACE_TEMPLATE  # noqa: E731
    first = np.asarray(Image.open(src / "person" / "b.png")).copy()
    first[0, 0, 0] = 255
    Image.fromarray(first).save(src / "person" / "b.png")
    (src / "pairs.txt").write_text("1 1\n")
    report = align_folder(src, tmp_path / "aligned", landmark_aligner(finder))
    assert (tmp_path / "aligned" / "pairs.txt").read_text() == "1 1\n"
    assert (report.aligned, report.no_face, report.centre_crop) == (["person/a.png"], ["person/b.png"], [])
    assert json.loads((tmp_path / "aligned" / "alignment.json").read_text())["no_face"] == ["person/b.png"]
    assert not (tmp_path / "aligned" / "person" / "b.png").exists()
    out = tmp_path / "aligned" / "person" / "a.png"
    difference = np.asarray(Image.open(out)).astype(int) - np.asarray(Image.open(src / "person" / "a.png"))
    assert np.abs(difference).max() <= 1
    assert not (tmp_path / ".aligned.partial").exists()


def test_centre_landmarks_give_a_centre_crop():
    image = np.zeros((250, 250, 3), np.uint8)
    image[50:200, 50:200] = 200  # the central 150x150 square, what fraction 0.6 crops
    aligned = align_face(image, centre_landmarks(250, 250, fraction=0.6))
    assert aligned[2:-2, 2:-2].min() == 200 and aligned.max() == 200
    np.testing.assert_allclose(centre_landmarks(100, 300, 1.0), ARCFACE_TEMPLATE * (100 / 112) + [100, 0])
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\], got 0"):
        centre_landmarks(10, 10, 0)
