"""Plotly figure builders for the book's chapters: image grids, histograms, ERCs, embeddings, sweeps.

Each returns a ``go.Figure``; show it with :func:`lrfr.plots.display.show` so it stays interactive in
the built book. Histograms are binned here (numpy) so that a page carries bin heights, not raw samples.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from PIL import Image

UI_CENTER = "UI center"
DEFAULT_COLOURS = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880")


def _rgb_images(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Check that every image is an (H, W, 3) uint8 array."""
    arrays = [np.asarray(image) for image in images]
    for index, image in enumerate(arrays):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image {index} must be an (H, W, 3) uint8 array, got {image.shape} {image.dtype}")
    return arrays


def png_data_uri(image: np.ndarray) -> str:
    """An (H, W, 3) uint8 image as a base64 PNG data URI (a few hundred bytes for a small face,
    where plotly's ``z`` would write every pixel value as JSON text)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _image_trace(image: np.ndarray, name: str) -> go.Image:
    return go.Image(source=png_data_uri(image), name=name)


def _image_subplots(count: int, titles: Sequence[str], columns: int) -> go.Figure:
    """An empty grid of ``count`` image panels (``columns`` per row) with hidden axes."""
    if len(titles) != count:
        raise ValueError(f"expected one title per image ({count}), got {len(titles)}")
    if count == 0 or columns < 1:
        raise ValueError(f"need at least one image and one column, got {count} images, {columns} columns")
    rows = math.ceil(count / columns)
    fig = make_subplots(rows=rows, cols=min(columns, count), subplot_titles=list(titles),
                        horizontal_spacing=0.02, vertical_spacing=0.3 / rows)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=160 * rows + 60, margin=dict(l=10, r=10, t=40, b=10), showlegend=False)
    return fig


def image_grid(
    images: Sequence[np.ndarray], titles: Sequence[str], columns: int = 8, row_titles: Sequence[str] | None = None
) -> go.Figure:
    """(H, W, 3) uint8 images in a grid, one titled panel each (HR / LR samples, lowest-RI faces);
    ``row_titles`` (one per row) are written left of the rows, so the panel titles can stay short."""
    arrays = _rgb_images(images)
    fig = _image_subplots(len(arrays), titles, columns)
    for index, image in enumerate(arrays):
        fig.add_trace(_image_trace(image, titles[index]), row=index // columns + 1, col=index % columns + 1)
    if row_titles is not None:
        _label_rows(fig, list(row_titles), len(arrays), columns)
    return fig


def _label_rows(fig: go.Figure, row_titles: list[str], count: int, columns: int) -> None:
    """Right-aligned labels left of each row of ``count`` panels (at the height of its first panel)."""
    rows = math.ceil(count / columns)
    if len(row_titles) != rows:
        raise ValueError(f"expected one row title per row ({rows}), got {len(row_titles)}")
    for row, title in enumerate(row_titles):
        axis = fig.layout[f"yaxis{row * columns + 1 if row * columns else ''}"]
        fig.add_annotation(text=title, x=0, xref="paper", xanchor="right", xshift=-8, showarrow=False,
                           y=sum(axis.domain) / 2, yref="paper", yanchor="middle", align="right")
    fig.update_layout(margin=dict(l=40 + 7 * max(map(len, row_titles))))


def histograms(groups: dict[str, np.ndarray], title: str, xaxis: str, bins: int = 40) -> go.Figure:
    """Overlaid density histograms of each group on shared bins (one bar trace per group)."""
    values = {name: np.asarray(group, dtype=float).ravel() for name, group in groups.items()}
    empty = [name for name, group in values.items() if not len(group)]
    if not values or empty:
        raise ValueError(f"every histogram group needs at least one value; empty: {empty or 'no groups'}")
    edges = np.histogram_bin_edges(np.concatenate(list(values.values())), bins=bins)
    centers, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    fig = go.Figure()
    for name, group in values.items():
        density, _ = np.histogram(group, bins=edges, density=True)
        fig.add_trace(go.Bar(x=centers, y=density, width=widths, name=f"{name} (n={len(group)})", opacity=0.55))
    fig.update_layout(barmode="overlay", bargap=0, title=title, xaxis_title=xaxis, yaxis_title="density")
    return fig


def erc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], fmr: float) -> go.Figure:
    """Error-versus-reject curves: FNMR at the threshold of ``fmr`` against the fraction rejected."""
    fig = go.Figure()
    for name, (rejected, fnmr) in curves.items():
        fig.add_trace(go.Scatter(x=np.asarray(rejected), y=np.asarray(fnmr), mode="lines", name=name))
    fig.update_layout(title=f"Error versus reject, FMR = {fmr:g}", xaxis_title="fraction of pairs rejected",
                      yaxis_title="FNMR")
    return fig


def roc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> go.Figure:
    """ROC curves (TPR against FPR, FPR on a log axis) of several methods; ``curves``: name -> (fpr, tpr)."""
    fig = go.Figure()
    for name, (fpr, tpr) in curves.items():
        fig.add_trace(go.Scatter(x=np.asarray(fpr), y=np.asarray(tpr), mode="lines", name=name))
    fig.update_layout(title=title, xaxis_title="false positive rate", yaxis_title="true positive rate")
    fig.update_xaxes(type="log")
    return fig


def group_scatter(points: np.ndarray, groups: Sequence[str], title: str) -> go.Figure:
    """2-D points, one colour per group (e.g. a resolution), each group's centre as a large marker."""
    points, groups = np.asarray(points, dtype=float), np.asarray(groups)
    if points.ndim != 2 or points.shape[1] != 2 or len(groups) != len(points):
        raise ValueError(f"expected (N, 2) points and N group names, got {points.shape} and {len(groups)} names")
    fig = go.Figure()
    for index, group in enumerate(dict.fromkeys(groups.tolist())):
        chosen = points[groups == group]
        colour = DEFAULT_COLOURS[index % len(DEFAULT_COLOURS)]
        fig.add_trace(go.Scattergl(x=chosen[:, 0], y=chosen[:, 1], mode="markers", name=str(group),
                                   marker=dict(size=4, color=colour, opacity=0.6)))
        centre = chosen.mean(axis=0)
        fig.add_trace(go.Scatter(x=[centre[0]], y=[centre[1]], mode="markers", name=f"{group} centre", showlegend=False,
                                 marker=dict(size=16, color=colour, line=dict(width=2, color="black"))))
    fig.update_layout(title=title, legend=dict(orientation="h"))
    return fig


def _marker(color: np.ndarray, color_title: str) -> dict:
    """Continuous colouring for numbers; categories (e.g. identities) coloured by their index."""
    if np.issubdtype(color.dtype, np.number):
        return dict(color=color, colorscale="Viridis", colorbar=dict(title=color_title), size=5)
    _, codes = np.unique(color, return_inverse=True)
    return dict(color=codes, colorscale="Turbo", size=5)


def embedding_scatter(
    points: np.ndarray, color: np.ndarray, hover: Sequence[str], ui_center_point: np.ndarray | None = None,
    title: str = "", color_title: str = "",
) -> go.Figure:
    """Projected embeddings ((N, 2) or (N, 3)) coloured by ``color``; the UI center as a black cross."""
    points, color = np.asarray(points, dtype=float), np.asarray(color)
    if points.ndim != 2 or points.shape[1] not in (2, 3) or len(color) != len(points) or len(hover) != len(points):
        raise ValueError(f"expected (N, 2|3) points with N colors and hover texts, got {points.shape}, "
                         f"{len(color)} colors, {len(hover)} hover texts")
    scatter = go.Scatter3d if points.shape[1] == 3 else go.Scattergl
    axes = dict(zip("xyz", points.T))
    fig = go.Figure(scatter(**axes, mode="markers", name="faces", text=list(hover), hoverinfo="text",
                            marker=_marker(color, color_title)))
    if ui_center_point is not None:
        center = np.asarray(ui_center_point, dtype=float).reshape(1, -1)
        if center.shape[1] != points.shape[1]:
            raise ValueError(f"the UI center has {center.shape[1]} coordinates, the points {points.shape[1]}")
        fig.add_trace(scatter(**dict(zip("xyz", center.T)), mode="markers", name=UI_CENTER, text=[UI_CENTER],
                              hoverinfo="text", marker=dict(symbol="x", size=14, color="black")))
    fig.update_layout(title=title, legend=dict(orientation="h"))
    return fig


def line_sweep(x: Sequence[float], series: dict[str, Sequence[float]], title: str, xaxis: str, yaxis: str) -> go.Figure:
    """One line (with markers) per series over the swept values ``x`` (hyper-parameter sweeps)."""
    fig = go.Figure()
    for name, y in series.items():
        if len(y) != len(x):
            raise ValueError(f"series {name!r} has {len(y)} values for {len(x)} x values")
        fig.add_trace(go.Scatter(x=list(x), y=list(y), mode="lines+markers", name=name))
    fig.update_layout(title=title, xaxis_title=xaxis, yaxis_title=yaxis)
    return fig


def heatmap_overlays(images: Sequence[np.ndarray], maps: Sequence[np.ndarray], titles: Sequence[str],
                     columns: int = 6, opacity: float = 0.45, row_titles: Sequence[str] | None = None) -> go.Figure:
    """Each face with its (h, w) attention / Grad-CAM map stretched over it, on one shared colour
    scale; ``row_titles`` as in :func:`image_grid`."""
    arrays = _rgb_images(images)
    if len(maps) != len(arrays):
        raise ValueError(f"expected one map per image ({len(arrays)}), got {len(maps)}")
    fig = _image_subplots(len(arrays), titles, columns)
    for index, (image, heat) in enumerate(zip(arrays, maps)):
        heat = np.asarray(heat, dtype=float)
        dy, dx = image.shape[0] / heat.shape[0], image.shape[1] / heat.shape[1]
        cell = dict(row=index // columns + 1, col=index % columns + 1)
        fig.add_trace(_image_trace(image, titles[index]), **cell)
        fig.add_trace(go.Heatmap(z=heat, x0=dx / 2 - 0.5, dx=dx, y0=dy / 2 - 0.5, dy=dy, opacity=opacity,
                                 coloraxis="coloraxis", name=titles[index]), **cell)
    fig.update_layout(coloraxis=dict(colorscale="Jet"))
    if row_titles is not None:
        _label_rows(fig, list(row_titles), len(arrays), columns)
    return fig


def interval_curves(x: Sequence[float], curves: dict[str, Sequence[tuple[float, float, float]]], title: str,
                    xaxis: str, yaxis: str) -> go.Figure:
    """One line per curve of (value, low, high) points with its interval as a shaded band (e.g. CMC
    curves with their bootstrap intervals, Cheng et al. Fig. 7)."""
    fig = go.Figure()
    for number, (name, points) in enumerate(curves.items()):
        if len(points) != len(x):
            raise ValueError(f"curve {name!r} has {len(points)} points for {len(x)} x values")
        value, low, high = (np.asarray(column, dtype=float) for column in zip(*points))
        colour = _PALETTE[number % len(_PALETTE)]
        fig.add_trace(go.Scatter(x=[*x, *x[::-1]], y=[*high, *low[::-1]], fill="toself", line={"width": 0},
                                 fillcolor=colour, opacity=0.15, hoverinfo="skip", showlegend=False, name=name))
        fig.add_trace(go.Scatter(x=list(x), y=value, mode="lines", name=name, line={"color": colour}))
    fig.update_layout(title=title, xaxis_title=xaxis, yaxis_title=yaxis)
    return fig


_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
