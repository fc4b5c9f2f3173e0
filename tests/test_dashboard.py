"""The dashboard (AppTest, no browser) and the exploration logic it shows (dashboard/dash_explore.py)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lrfr.losses.recognizability_index import project_away_from_ui
from lrfr.plots.projections import load_projection, project, save_projection, stored_methods
from lrfr.protocols import evaluate_identification, ui_center
from lrfr.runs import RunFolder, RunFolderError
from tests.dashboard_fixtures import (
    make_bad_center_run,
    make_bare_run,
    make_foreign_parquet_run,
    make_old_format_run,
    make_run,
    make_truncated_run,
)

DASHBOARD = Path(__file__).resolve().parents[1] / "dashboard"
sys.path.insert(0, str(DASHBOARD))
from dash_explore import (  # noqa: E402  (the dashboard's own module, beside app.py)
    center_position,
    neighbours,
    rescore,
    resolve_ui_center,
    run_erc,
    shared_histogram,
)

APP = str(DASHBOARD / "app.py")


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    make_run(root)
    return root


def embeddings_of(root: Path, name: str = "ri-model"):
    stored = RunFolder.open(root / name).load_embeddings("test")
    return type(stored)(stored.embeddings.copy(), stored.labels.copy(), stored.metadata)


def app_on(root: Path, monkeypatch, **query) -> AppTest:
    monkeypatch.setenv("LRFR_RESULTS", str(root))
    app = AppTest.from_file(APP, default_timeout=120)
    for key, value in query.items():
        app.query_params[key] = value
    return app.run()


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def brute_neighbours(embeddings: np.ndarray, query: int, k: int) -> list[int]:
    scores = unit(embeddings) @ unit(embeddings)[query]
    scores[query] = -np.inf
    return np.argsort(-scores, kind="stable")[:k].tolist()


def rank1_by_protocol(stored, strength: float, center: np.ndarray) -> float:
    moved = project_away_from_ui(stored.embeddings, center, strength)
    split = stored.metadata["split"]
    probe, gallery = split == "probe", np.isin(split, ["gallery", "distractor"])
    return evaluate_identification(moved[probe], moved[gallery], stored.labels[probe], stored.labels[gallery]).cmc[1]


# ------------------------------------------------------------------------------ dashboard/dash_explore.py


def test_rescore_equals_the_identification_protocol(results):
    stored = embeddings_of(results)
    center = resolve_ui_center(RunFolder.open(results / "ri-model"), stored.embeddings, stored.metadata["split"]).center
    for strength in (0.0, 0.5, 1.0):
        scored = rescore(project_away_from_ui(stored.embeddings, center, strength), stored.labels, stored.metadata["split"])
        assert scored.rank1 == pytest.approx(rank1_by_protocol(stored, strength, center))
        probes = stored.metadata["split"] == "probe"
        assert np.isnan(scored.correct[~probes]).all() and not np.isnan(scored.correct[probes]).any()
    with pytest.raises(ValueError, match="no faces of split"):
        rescore(stored.embeddings, stored.labels, np.full(len(stored.labels), "train"))


def test_neighbours_exclude_the_query_and_match_a_full_sort(results):
    stored = embeddings_of(results)
    found = neighbours(stored.embeddings, stored.labels, np.array([0, 7, 150]), 4)
    for row, query in enumerate((0, 7, 150)):
        assert found.indices[row].tolist() == brute_neighbours(stored.embeddings, query, 4)
        same = stored.labels[found.indices[row]] == stored.labels[query]
        assert found.same_identity[row].tolist() == (same & (stored.labels[query] >= 0)).tolist()


def test_histogram_center_position_and_erc():
    values = np.array([0.0, 1.0, 2.0, 3.0, np.nan])
    edges, counts, chosen = shared_histogram(values, np.array([1, 4]), bins=3)
    assert counts.tolist() == [1, 1, 2] and chosen.tolist() == [0, 1, 0] and edges[0] == 0 and edges[-1] == 3
    embeddings = np.eye(4, dtype=np.float32)
    points = np.arange(8, dtype=np.float32).reshape(4, 2)
    np.testing.assert_allclose(center_position(embeddings, points, np.array([0, 0, 1, 0]), k=1), points[2])
    labels = np.repeat(np.arange(20), 6)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(20, 16))[labels] + 0.8 * rng.normal(size=(120, 16))
    quality = rng.uniform(size=120)
    curves = run_erc(vectors, labels, None, {"q": quality}, n_genuine=200, n_impostor=2000)
    assert curves["q"].fnmr.shape == (19, 1) and curves["q"].fmrs == (1e-3,)


def test_erc_with_splits_pairs_probes_with_the_gallery_only():
    """Probes that collapse together (cosine 0.64 to each other, 0.6 to their own gallery face, 0 to
    others) make pooled impostor pairs outscore every genuine pair; probe-vs-gallery pairs do not."""
    ids = np.arange(10)
    gallery = np.eye(20)[ids]
    probes = 0.6 * gallery + 0.8 * np.eye(20)[19]
    embeddings, labels = np.concatenate([probes, gallery]), np.concatenate([ids, ids])
    split = np.array(["probe"] * 10 + ["gallery"] * 10)
    quality = {"q": np.zeros(20)}
    assert run_erc(embeddings, labels, split, quality)["q"].fnmr[0, 0] == 0.0
    assert run_erc(embeddings, labels, None, quality)["q"].fnmr[0, 0] == 1.0


def test_ui_center_from_file_from_ui_faces_or_none(tmp_path):
    run = make_bare_run(tmp_path)
    stored = run.load_embeddings("test")
    assert resolve_ui_center(run, stored.embeddings, None) is None
    split = np.array(["ui"] * 6 + ["gallery"] * 18)
    found = resolve_ui_center(run, stored.embeddings, split)
    np.testing.assert_allclose(found.center, ui_center(stored.embeddings[:6].copy()), atol=1e-6)
    assert "split 'ui'" in found.source
    run.write_json("ui_center.json", {"center": [2.0] + [0.0] * 7, "embedding_set": "test", "source": "unit"})
    assert resolve_ui_center(run, stored.embeddings, split).center.tolist() == [1.0] + [0.0] * 7
    run.write_json("ui_center.json", {"center": [1.0, 0.0]})
    with pytest.raises(RunFolderError, match="expected 8 finite floats"):
        resolve_ui_center(run, stored.embeddings, split)


# ------------------------------------------------------------------------------ lrfr.plots.projections


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


def test_projections_are_stored_and_read_back(tmp_path):
    run = make_bare_run(tmp_path)
    assert load_projection(run, "test", "umap", 3) is None
    points = np.random.default_rng(0).normal(size=(24, 3))
    path = save_projection(run, "test", "umap", 3, points)
    assert path == run.path / "projections" / "test.umap.3d.parquet"
    np.testing.assert_allclose(load_projection(run, "test", "umap", 3), points, rtol=1e-6)
    with pytest.raises(ValueError, match="expected finite \\(2-column\\)"):
        save_projection(run, "test", "pca", 2, points)
    path.write_bytes(b"not parquet")
    with pytest.raises(RunFolderError, match="not a readable parquet"):
        load_projection(run, "test", "umap", 3)


# ------------------------------------------------------------------------------ the app (AppTest)


def test_app_loads_a_run_and_switches_colourings_and_projections(results, monkeypatch):
    app = app_on(results, monkeypatch)
    assert not app.exception and not app.error
    assert app.selectbox(key="run").value == "ri-model"
    captions = " ".join(caption.value for caption in app.caption)
    assert "UI center: ui_center.json" in captions and "projection stored in the run folder" in captions
    for colouring in app.selectbox(key="colour").options:
        app.selectbox(key="colour").select(colouring).run()
        assert not app.exception and not app.error, colouring
        assert f"coloured by {colouring}" in " ".join(caption.value for caption in app.caption)
    app.radio(key="method").set_value("tsne").run()
    assert not app.exception and "computed here and cached" in " ".join(c.value for c in app.caption)
    app.radio(key="dims").set_value(3).run()
    assert not app.exception and "tsne 3-D projection" in " ".join(c.value for c in app.caption)


def test_a_selection_lists_faces_neighbours_and_the_eq8_rescore(results, monkeypatch):
    stored = embeddings_of(results)
    center = np.array(json.loads((results / "ri-model" / "ui_center.json").read_text())["center"], dtype=np.float32)
    app = app_on(results, monkeypatch)
    picked = [0, 9, 130]
    app.session_state["selected:primary"] = picked
    app.number_input(key="k").set_value(3)
    app.run()
    assert not app.exception
    gallery = app.get("html")[1].value
    assert gallery.count('class="lrfr-thumb"') == len(picked) * (1 + 3)
    selected, table = app.table[0].value, app.table[1].value.reset_index()
    assert selected.index.tolist() == picked
    np.testing.assert_allclose(selected["ri_learned"], stored.metadata["ri_learned"][picked])
    for query in picked:
        rows = table[table["face"] == query]
        assert rows["neighbour"].tolist() == brute_neighbours(stored.embeddings, query, 3)
        expected = (stored.labels[rows["neighbour"]] == stored.labels[query]) & (stored.labels[query] >= 0)
        assert rows["same identity"].tolist() == expected.tolist()
    for strength in (0.0, 1.0):
        app.slider(key="strength").set_value(strength).run()
        metric = next(m for m in app.metric if m.label.startswith("rank-1"))
        assert metric.label == f"rank-1 (a = {strength:.2f})"
        assert metric.value == f"{100 * rank1_by_protocol(stored, strength, center):.1f}%"
    moved = project_away_from_ui(stored.embeddings, center, 1.0)
    table = app.table[1].value.reset_index()
    assert table[table["face"] == 9]["neighbour"].tolist() == brute_neighbours(moved, 9, 3)
    assert "neighbour at a = 0" in table


def test_selection_survives_a_new_colouring_and_respects_filters(results, monkeypatch):
    app = app_on(results, monkeypatch)
    app.session_state["selected:primary"] = [0, 150]
    app.selectbox(key="colour").select("split").run()
    assert app.table[0].value.index.tolist() == [0, 150]
    split_filter = next(widget for widget in app.multiselect if widget.label == "split")
    split_filter.set_value(["probe"]).run()
    assert app.table[0].value.index.tolist() == [0]  # face 150 is a UI face, now hidden
    assert next(m for m in app.metric if m.label == "faces shown").value == "36"


def test_two_runs_side_by_side(tmp_path, monkeypatch):
    make_run(tmp_path, "arcface", images=10, seed=1)
    make_run(tmp_path, "ri-model", images=10)
    app = app_on(tmp_path, monkeypatch)
    app.selectbox(key="compare").select("ri-model").run()
    assert not app.exception and not app.error
    assert [s.value for s in app.subheader] == ["arcface", "ri-model"]
    assert len([m for m in app.metric if m.label.startswith("rank-1")]) == 2


def test_bad_run_folders_get_messages_not_tracebacks(tmp_path, monkeypatch):
    make_old_format_run(tmp_path)
    make_foreign_parquet_run(tmp_path)
    make_bad_center_run(tmp_path)
    make_truncated_run(tmp_path)
    make_bare_run(tmp_path)
    app = app_on(tmp_path, monkeypatch)
    messages = {}
    for name in app.selectbox(key="run").options:
        app.selectbox(key="run").select(name).run()
        assert not app.exception, name
        messages[name] = " ".join(e.value for e in app.error) + " ".join(i.value for i in app.info)
    assert "format_version 0 is older than supported" in messages["old"]
    assert "lacks lrfr schema metadata" in messages["foreign"]
    assert "ui_center.json holds a center of shape (3,)" in messages["bad-center"]
    assert "no UI center in this run" in messages["bare"]
    assert "cannot show run folder" in messages["truncated"] and "Parquet" in messages["truncated"]


def test_missing_face_images_are_shown_as_such(tmp_path, monkeypatch):
    make_run(tmp_path, images=10)
    for image in (tmp_path / "faces" / "ri-model").glob("*.png"):
        image.unlink()
    app = app_on(tmp_path, monkeypatch)
    app.session_state["selected:primary"] = [1]
    app.run()
    assert not app.exception and not app.error
    assert "no image" in app.get("html")[1].value and "lrfr-thumb" not in app.get("html")[1].value


def test_only_runs_under_the_results_root_open(tmp_path, monkeypatch):
    make_run(tmp_path / "results", "inside", images=5)
    make_run(tmp_path, "outside", images=5)
    app = app_on(tmp_path / "results", monkeypatch, run="../outside")
    assert not app.exception
    assert "is not a run folder under the results root" in app.sidebar.error[0].value
    assert app.selectbox(key="run").value == "inside"
    assert app_on(tmp_path / "results", monkeypatch, run="inside").selectbox(key="run").value == "inside"


def test_app_without_runs_says_so(tmp_path, monkeypatch):
    app = app_on(tmp_path / "empty", monkeypatch)
    assert not app.exception
    assert "No run folders" in app.info[0].value


def test_bench_dashboard_prints_one_json_line_per_measurement(capsys, monkeypatch):
    from lrfr.bench import BENCHMARKS

    BENCHMARKS.get("dashboard")(["--identities", "10", "--distractors", "20", "--ui", "10", "--dim", "16", "--selected", "6"])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["measure"] for r in records] == ["load_run", "select", "recolour", "eq8_rescore", "select_again"]
    assert all(r["bench"] == "dashboard" and r["embeddings"] == 110 and r["seconds"] > 0 for r in records)


def test_a_selection_belongs_to_its_run(tmp_path, monkeypatch):
    make_run(tmp_path, "arcface", images=5, seed=1)
    make_run(tmp_path, "ri-model", images=5)
    app = app_on(tmp_path, monkeypatch)
    app.session_state["selected:primary"] = [3, 4]
    app.run()
    assert app.table[0].value.index.tolist() == [3, 4]
    app.selectbox(key="run").select("ri-model").run()
    assert not app.exception and not app.table
    assert "select faces in the projection" in " ".join(c.value for c in app.caption)


def test_a_stored_projection_of_the_wrong_length_is_recomputed(tmp_path, monkeypatch):
    run = make_run(tmp_path, images=5, projection=False)
    save_projection(run, "test", "pca", 2, np.zeros((5, 2)))
    app = app_on(tmp_path, monkeypatch)
    assert not app.exception and not app.error
    assert "the stored one has 5 rows for 160 embeddings; computed here" in " ".join(c.value for c in app.caption)


def test_stored_methods_list_the_stored_projections_in_order(tmp_path):
    run = tmp_path / "run"
    assert stored_methods(None) == [] and stored_methods(run) == []
    (run / "projections").mkdir(parents=True)
    for name in ("explore.umap.2d.parquet", "explore.tsne.3d.parquet", "test.pca.2d.parquet"):
        (run / "projections" / name).write_bytes(b"")
    assert stored_methods(run) == ["pca", "umap"] and stored_methods(run, dims=3) == ["tsne"]


def test_a_selected_face_is_shown_beside_its_super_resolved_version(tmp_path, monkeypatch):
    run = make_run(tmp_path, images=10)
    stored = run.load_embeddings("test")
    faces = sorted((tmp_path / "faces" / "ri-model").glob("*.png"))
    sr_path = np.array([str(faces[0]) if row == 1 else "" for row in range(len(stored.labels))])
    run.save_embeddings("test", stored.embeddings, stored.labels, {**stored.metadata, "sr_path": sr_path})
    app = app_on(tmp_path, monkeypatch)
    app.number_input(key="k").set_value(2)
    app.session_state["selected:primary"] = [1, 2]
    app.run()
    assert not app.exception
    gallery = app.get("html")[1].value
    assert gallery.count("#1 SR") == 1 and "#2 SR" not in gallery  # only the face with an SR image gets one
    assert gallery.count('class="lrfr-thumb"') == 2 * (1 + 2) + 1
    assert "super-resolved version" in app.get("html")[0].value


def _bad_images(folder: Path) -> None:
    """Replace the run's face files by what a user may meet: a 144-megapixel PNG of ~140 kB (a decompression
    bomb), a truncated PNG, text named .png, and a folder where a file should be."""
    from PIL import Image

    faces = sorted(folder.glob("*.png"))
    Image.new("L", (12000, 12000)).save(faces[0], optimize=True)
    for index, face in enumerate(faces[1:], start=1):
        if index % 3 == 0:
            face.write_bytes(face.read_bytes()[:60])
        elif index % 3 == 1:
            face.write_text("not an image")
        else:
            face.unlink()
            face.mkdir()


def test_faces_that_fail_to_decode_for_any_reason_show_a_placeholder(tmp_path, monkeypatch):
    make_run(tmp_path, images=6)
    _bad_images(tmp_path / "faces" / "ri-model")
    app = app_on(tmp_path, monkeypatch)
    app.session_state["selected:primary"] = [0, 1, 2, 3]
    app.run()
    assert not app.exception and not app.error
    gallery = app.get("html")[1].value
    assert gallery.count("no image") >= 4 and "lrfr-thumb" not in gallery


@pytest.mark.parametrize(
    "metrics, warned",
    [
        ('{"train_history": [{"epoch": 1, "loss"', r"metrics.json is not valid JSON"),
        ('["a list"]', r"metrics.json holds JSON of type list; expected a JSON object"),
        ('{"train_history": {"epoch": 1}}', r"train_history is a dict; expected a list"),
        ('{"train_history": [{"loss": 1.0}, {"epoch": 2, "loss": "nan?", "ce": 0.5}, 3]}',
         r"train_history\[0\] has no numeric 'epoch'.*train_history\[1\]\['loss'\] is 'nan\?'.*train_history\[2\] has no"),
    ],
)
def test_garbled_metrics_json_shows_the_rest_of_the_run(tmp_path, monkeypatch, metrics, warned):
    """The run's embeddings stay explorable; what metrics.json lacks is said, naming the file."""
    run = make_run(tmp_path, images=5)
    (run.path / "metrics.json").write_text(metrics)
    app = app_on(tmp_path, monkeypatch)
    assert not app.exception and not app.error
    warnings = " ".join(w.value for w in app.warning)
    assert re.search(warned, warnings) and "metrics.json" in warnings
    assert app.get("plotly_chart"), "the projection is shown"
