"""The toy 2-D embedding experiment of Chai et al. 2023, Fig. 4 (ArcFace, AdaFace and "ours")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lrfr.data.degrade import synthetic_lr
from lrfr.data.synthetic import SynthFace
from lrfr.experiments import toy_embedding_experiment
from lrfr.experiments.toy_embedding import HARD_IDS, NUM_IDENTITIES, ToyEmbedding, toy_config, toy_faces, toy_ui
from lrfr.runs import RunFolder

TINY = {"images_per_identity": 4, "epochs": 2, "batch_size": 16, "ui_images": 16}


def check_shapes(result: ToyEmbedding, images_per_identity: int, ui_images: int) -> None:
    count = NUM_IDENTITIES * images_per_identity
    assert result.points.shape == (count, 2) and result.labels.shape == (count,)
    assert result.ui_points.shape == (ui_images, 2) and result.ui_center.shape == (2,)
    np.testing.assert_allclose(np.linalg.norm(result.points, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(result.ui_center), 1, atol=1e-6)
    assert np.array_equal(np.unique(result.labels[result.hard]), HARD_IDS)
    assert np.array_equal(result.hard, np.isin(result.labels, [1, 4, 6]))
    assert len(result.identity_names) == NUM_IDENTITIES and "\u2713" in result.identity_names[1]


def test_arcface_defaults_put_the_hard_identities_near_the_ui_center(tmp_path: Path) -> None:
    # Holds by a wide margin for seeds 0-2 (easy / hard mean cosine -0.10 / 0.95, -0.31 / 0.88, -0.56 / 0.83).
    result = toy_embedding_experiment("arcface", seed=0, root=tmp_path)
    check_shapes(result, 16, 64)
    cosine = result.mean_cosine_to_ui()
    assert cosine["easy"] + 0.5 < cosine["hard"]
    assert (result.run_path / "config.json").exists() and result.run_path.parent == tmp_path


def test_same_seed_gives_the_same_points(tmp_path: Path) -> None:
    first = toy_embedding_experiment("arcface", seed=1, root=tmp_path / "a", **TINY)
    second = toy_embedding_experiment("arcface", seed=1, root=tmp_path / "b", **TINY)
    assert np.array_equal(first.points, second.points) and np.array_equal(first.ui_center, second.ui_center)
    other = toy_embedding_experiment("arcface", seed=2, root=tmp_path / "a", **TINY)
    assert not np.array_equal(first.points, other.points)
    resumed = toy_embedding_experiment("arcface", seed=1, root=tmp_path / "a", **TINY)
    assert resumed.run_path == first.run_path and np.array_equal(resumed.points, first.points)
    longer = toy_embedding_experiment("arcface", seed=1, root=tmp_path / "a", **{**TINY, "epochs": 3})
    assert longer.run_path != first.run_path


@pytest.mark.parametrize("method", ["adaface", "ours"])
def test_other_methods_train_through_their_configs(method: str, tmp_path: Path) -> None:
    result = toy_embedding_experiment(method, seed=0, root=tmp_path, **TINY)
    check_shapes(result, TINY["images_per_identity"], TINY["ui_images"])
    config = RunFolder.open(result.run_path).config
    assert config["model"]["heads"]["main"]["kind"] == ("adaface" if method == "adaface" else "arcface")
    kinds = [term["kind"] for term in config["model"]["terms"]]
    assert kinds == (["classification", "recognizability"] if method == "ours" else ["classification"])
    assert ("ui" in config["data"]) == (method == "ours")


def test_hard_identities_are_degraded_and_the_ui_stream_is_unlabelled() -> None:
    faces = toy_faces(seed=0, images_per_identity=2)
    assert faces.images.shape == (16, 32, 32, 3) and faces.num_classes == NUM_IDENTITIES
    ids = faces.labels.numpy()
    clean = synthetic_lr(SynthFace(seed=0, similar_fraction=0.0).render_hr(ids, np.tile([0, 1], 8)), 32)
    change = np.abs(faces.images.astype(float) - clean).mean(axis=(1, 2, 3)) / 127.5
    hard = np.isin(ids, HARD_IDS)
    assert np.all(change[~hard] == 0) and np.all(change[hard] > 0.05)
    assert set(toy_ui(seed=0, count=3)[0]) == {"image"}


def test_unknown_method_is_rejected() -> None:
    with pytest.raises(ValueError, match="expected one of"):
        toy_config("softmax", images_per_identity=4, epochs=1, seed=0, ui_images=16, batch_size=16)
