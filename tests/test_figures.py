"""Figure builders (lrfr.plots.figures) and the book-friendly display (lrfr.plots.display): figure content."""

from __future__ import annotations

import json

import base64
import io

import numpy as np
from PIL import Image
import plotly.graph_objects as go
import pytest

from lrfr.plots import (
    UI_CENTER,
    embedding_scatter,
    erc_figure,
    group_scatter,
    heatmap_overlays,
    histograms,
    image_grid,
    line_sweep,
    roc_figure,
)
from lrfr.plots.display import PLOTLY_MIMETYPE, figure_bundle, show


def faces(count: int, size: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(count)]


def decode(source: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert source.startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(source[len(prefix):]))))


def test_image_grid_has_one_titled_image_panel_per_face():
    images = faces(5)
    fig = image_grid(images, [f"face {i}" for i in range(5)], columns=3)
    assert [trace.type for trace in fig.data] == ["image"] * 5
    np.testing.assert_array_equal(decode(fig.data[4].source), images[4])  # lossless PNG data URI
    assert [a.text for a in fig.layout.annotations] == [f"face {i}" for i in range(5)]
    assert fig.data[4].xaxis == "x5"  # second row, second column of a 3-column grid


def test_image_grid_rejects_bad_images_and_titles():
    with pytest.raises(ValueError, match=r"image 1 must be an \(H, W, 3\) uint8"):
        image_grid([faces(1)[0], np.zeros((8, 8), np.uint8)], ["a", "b"])
    with pytest.raises(ValueError, match="one title per image"):
        image_grid(faces(2), ["only one"])


def test_histograms_share_bins_and_are_densities():
    rng = np.random.default_rng(1)
    groups = {"recognizable": rng.normal(2, 1, 500), "UI": rng.normal(0, 0.5, 200)}
    fig = histograms(groups, "distance to the UI center", "distance", bins=20)
    assert [trace.name for trace in fig.data] == ["recognizable (n=500)", "UI (n=200)"]
    np.testing.assert_array_equal(fig.data[0].x, fig.data[1].x)
    for trace in fig.data:
        assert len(trace.y) == 20
        assert np.sum(np.asarray(trace.y) * np.asarray(trace.width)) == pytest.approx(1.0)
    assert fig.layout.barmode == "overlay" and fig.layout.xaxis.title.text == "distance"
    with pytest.raises(ValueError, match=r"empty: \['UI'\]"):
        histograms({"a": np.ones(3), "UI": np.array([])}, "t", "x")


def test_erc_figure_has_one_line_per_quality_index():
    rejected = np.linspace(0, 0.9, 10)
    fig = erc_figure({"RI": (rejected, 1 - rejected), "norm": (rejected, np.ones(10))}, fmr=1e-3)
    assert [trace.name for trace in fig.data] == ["RI", "norm"]
    np.testing.assert_allclose(fig.data[0].y, 1 - rejected)
    assert "0.001" in fig.layout.title.text


@pytest.mark.parametrize("dims", [2, 3])
def test_embedding_scatter_draws_the_ui_center_as_its_own_trace(dims):
    points = np.random.default_rng(2).normal(size=(30, dims))
    center = np.full(dims, 0.5)
    fig = embedding_scatter(points, np.linspace(0, 1, 30), [f"face {i}" for i in range(30)], center, "RI")
    assert [trace.name for trace in fig.data] == ["faces", UI_CENTER]
    faces_trace, center_trace = fig.data
    assert faces_trace.type == ("scatter3d" if dims == 3 else "scattergl")
    np.testing.assert_allclose(faces_trace.x, points[:, 0])
    assert [center_trace[axis][0] for axis in "xyz"[:dims]] == [0.5] * dims
    assert center_trace.marker.symbol == "x" and center_trace.marker.symbol != faces_trace.marker.symbol


def test_embedding_scatter_colours_categories_by_index_and_checks_shapes():
    fig = embedding_scatter(np.zeros((4, 2)), np.array(["b", "a", "b", "c"]), ["1", "2", "3", "4"])
    assert len(fig.data) == 1 and list(fig.data[0].marker.color) == [1, 0, 1, 2]
    with pytest.raises(ValueError, match=r"expected \(N, 2\|3\) points"):
        embedding_scatter(np.zeros((4, 5)), np.zeros(4), ["1", "2", "3", "4"])
    with pytest.raises(ValueError, match="UI center has 3 coordinates"):
        embedding_scatter(np.zeros((4, 2)), np.zeros(4), ["1", "2", "3", "4"], np.zeros(3))


def test_group_scatter_marks_each_groups_centre():
    points = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [12.0, 14.0]])
    fig = group_scatter(points, ["112 px", "112 px", "7 px", "7 px"], "t")
    assert [trace.name for trace in fig.data] == ["112 px", "112 px centre", "7 px", "7 px centre"]
    assert (fig.data[1].x[0], fig.data[1].y[0]) == (1.0, 0.0) and (fig.data[3].x[0], fig.data[3].y[0]) == (11.0, 12.0)
    assert fig.data[0].marker.color == fig.data[1].marker.color != fig.data[2].marker.color
    with pytest.raises(ValueError, match="expected \\(N, 2\\) points and N group names"):
        group_scatter(points, ["a"], "t")


def test_roc_figure_has_one_curve_per_method_on_a_log_fpr_axis():
    fig = roc_figure({"a": (np.array([0.01, 1.0]), np.array([0.5, 1.0])), "b": (np.array([0.1, 1.0]), np.array([0.2, 1.0]))}, "t")
    assert [trace.name for trace in fig.data] == ["a", "b"] and fig.layout.xaxis.type == "log"
    assert list(fig.data[0].y) == [0.5, 1.0]


def test_line_sweep_has_one_series_per_line():
    fig = line_sweep([1, 5, 10], {"alpha": [70.1, 71.9, 70.5], "beta": [70.0, 71.0, 70.2]}, "sweep", "weight", "IR")
    assert [trace.name for trace in fig.data] == ["alpha", "beta"]
    assert list(fig.data[0].y) == [70.1, 71.9, 70.5] and list(fig.data[1].x) == [1, 5, 10]
    with pytest.raises(ValueError, match="series 'beta' has 2 values for 3 x values"):
        line_sweep([1, 2, 3], {"beta": [1, 2]}, "t", "x", "y")


def test_heatmap_overlays_stretch_each_map_over_its_face():
    images = faces(2, size=16)
    maps = [np.arange(16.0).reshape(4, 4), np.ones((4, 4))]
    fig = heatmap_overlays(images, maps, ["a", "b"])
    assert [trace.type for trace in fig.data] == ["image", "heatmap", "image", "heatmap"]
    heat = fig.data[1]
    np.testing.assert_array_equal(heat.z, maps[0])
    assert (heat.dx, heat.dy, heat.x0) == (4.0, 4.0, 1.5)  # 4x4 cells over a 16x16 face, pixel centres
    assert heat.coloraxis == fig.data[3].coloraxis == "coloraxis"
    with pytest.raises(ValueError, match="one map per image"):
        heatmap_overlays(images, maps[:1], ["a", "b"])


def test_show_publishes_plotly_json_and_an_html_fragment_without_plotly_js(monkeypatch):
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]), layout=dict(title="toy"))
    bundle = figure_bundle(fig)
    assert bundle[PLOTLY_MIMETYPE]["data"][0]["type"] == "scatter"
    assert json.dumps(bundle[PLOTLY_MIMETYPE])  # plain JSON
    html = bundle["text/html"]
    assert 'class="plotly-graph-div"' in html and "Plotly.newPlot" in html
    assert "cdn.plot.ly" not in html and len(html) < 100_000  # the 4 MB plotly.js is not inlined
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *args, **kwargs: shown.append((args, kwargs)))
    show(fig)
    assert len(shown) == 1 and shown[0][1] == {"raw": True} and set(shown[0][0][0]) == set(bundle)


def test_image_grid_row_titles_sit_left_of_each_row():
    fig = image_grid(faces(6), ["a"] * 6, columns=3, row_titles=["HR faces", "native LR"])
    labels = [a for a in fig.layout.annotations if a.text in ("HR faces", "native LR")]
    assert [a.text for a in labels] == ["HR faces", "native LR"]
    assert all(a.xanchor == "right" and a.x == 0 for a in labels)
    assert labels[0].y == pytest.approx(sum(fig.layout.yaxis.domain) / 2)
    assert labels[1].y == pytest.approx(sum(fig.layout.yaxis4.domain) / 2) and labels[1].y < labels[0].y
    with pytest.raises(ValueError, match="one row title per row"):
        image_grid(faces(6), ["a"] * 6, columns=3, row_titles=["only one"])
    overlays = heatmap_overlays(faces(4), [np.zeros((2, 2))] * 4, ["a"] * 4, columns=2, row_titles=["ArcFace", "Ours"])
    assert [a.text for a in overlays.layout.annotations if a.text in ("ArcFace", "Ours")] == ["ArcFace", "Ours"]


def test_interval_curves_draw_a_band_and_a_line_per_curve():
    from lrfr.plots import interval_curves

    fig = interval_curves([1, 2, 3], {"a": [(1, 0, 2), (2, 1, 3), (3, 2, 4)], "b": [(0, 0, 0)] * 3}, "t", "x", "y")
    bands, lines = fig.data[0::2], fig.data[1::2]
    assert [trace.name for trace in lines] == ["a", "b"] and all(band.fill == "toself" for band in bands)
    assert list(bands[0].y) == [2, 3, 4, 2, 1, 0]  # upper bound forwards, lower bound back
    with pytest.raises(ValueError, match="3 x values"):
        interval_curves([1, 2, 3], {"a": [(1, 0, 2)]}, "t", "x", "y")
