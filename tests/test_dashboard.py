"""The dashboard opens run folders made by the library (AppTest, no browser)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lrfr.plots import project
from lrfr.runs import RunFolder

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


def make_run(root: Path) -> RunFolder:
    run = RunFolder.create(root, "demo", {"backbone": "quick"}, seed=0)
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 16))
    labels = np.repeat(np.arange(3), 10)
    run.save_embeddings("test", centers[labels] + 0.05 * rng.normal(size=(30, 16)), labels)
    run.write_metrics({"train_history": [{"epoch": 1, "cls/ce": 2.0, "loss": 2.0}, {"epoch": 2, "cls/ce": 1.0, "loss": 1.0}]})
    return run


def test_pca_projection_separates_clusters_and_is_repeatable():
    rng = np.random.default_rng(1)
    points = np.concatenate([rng.normal(size=(20, 8)) * 0.01 + [5, 0, 0, 0, 0, 0, 0, 0],
                             rng.normal(size=(20, 8)) * 0.01 + [0, 5, 0, 0, 0, 0, 0, 0]])
    projected = project(points, "pca")
    assert projected.shape == (40, 2)
    gap = abs(projected[:20, 0].mean() - projected[20:, 0].mean())
    assert gap > 1.0 and projected[:20, 0].std() < 0.05  # unit vectors e1, e2 are sqrt(2) apart
    np.testing.assert_array_equal(projected, project(points, "pca"))
    with pytest.raises(ValueError, match="unknown projection 'mds'"):
        project(points, "mds")


def test_app_shows_a_run_and_its_projection(tmp_path, monkeypatch):
    make_run(tmp_path)
    monkeypatch.setenv("LRFR_RESULTS", str(tmp_path))
    app = AppTest.from_file(APP, default_timeout=120).run()
    assert not app.exception
    assert app.selectbox[0].value == tmp_path / "demo"
    assert len(app.get("plotly_chart")) == 2  # training curves and the projection


def test_app_without_runs_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("LRFR_RESULTS", str(tmp_path / "empty"))
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    assert "No run folders" in app.info[0].value
