"""Plotly figures and HTML galleries of the dashboard (no Streamlit state here)."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from PIL import Image

from dash_explore import Neighbours, shared_histogram

from lrfr.data.base import read_image

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
CATEGORY_COLOURS = {"correct": "#2ca02c", "wrong": "#d62728", "n/a": "#bbbbbb"}
WEBGL_ABOVE = 5000  # points; SVG below (selection and rendering work without WebGL)
THUMB = 56
SR_BORDER = "#9467bd"  # the super-resolved version of a selected face (SR-then-FR and CSRI runs)
GALLERY_LEGEND = ('<div style="font-size:12px">gallery borders: <b style="color:#1f77b4">selected face</b>, '
                  '<b style="color:#2ca02c">neighbour of the same identity</b>, '
                  '<b style="color:#d62728">neighbour of another identity (or none)</b>, '
                  '<b style="color:#9467bd">super-resolved version of the selected face</b> (SR runs)</div>')


@dataclass(frozen=True)
class Colouring:
    """What the points are coloured by: per-row ``values`` and whether they are categories."""

    name: str
    values: np.ndarray
    categorical: bool


def scatter(points: np.ndarray, rows: np.ndarray, colouring: Colouring, hover: np.ndarray,
            center: np.ndarray | None, axis: str) -> tuple[go.Figure, list[np.ndarray]]:
    """The projection of ``rows`` (and the UI center marker); returns the figure and each trace's rows."""
    three_d = points.shape[1] == 3
    groups = _groups(rows, colouring)
    figure, trace_rows = go.Figure(), []
    for name, members, marker in groups:
        figure.add_trace(_points(points[members].astype(np.float32), name, marker, hover[members], three_d, len(rows)))
        trace_rows.append(members)
    if center is not None:
        figure.add_trace(_center_marker(center, three_d))
    figure.update_layout(height=520, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"itemsizing": "constant"},
                         dragmode=False if three_d else "select", uirevision="keep")
    if not three_d:
        figure.update_xaxes(title=f"{axis} 1")
        figure.update_yaxes(title=f"{axis} 2")
    return figure, trace_rows


def _groups(rows: np.ndarray, colouring: Colouring) -> list[tuple[str, np.ndarray, dict]]:
    values = colouring.values[rows]
    if colouring.name == "identity":
        labelled = values >= 0
        hue = {"color": (values[labelled] % len(PALETTE)).astype(np.float32), "colorscale": _steps(PALETTE),
               "cmin": 0, "cmax": len(PALETTE) - 1, "showscale": False}
        return [("identities", rows[labelled], hue), ("no identity", rows[~labelled], {"color": "#bbbbbb"})]
    if colouring.categorical:
        names = sorted(set(values.tolist()))
        return [(str(name), rows[values == name],
                 {"color": CATEGORY_COLOURS.get(str(name), PALETTE[number % len(PALETTE)])})
                for number, name in enumerate(names)]
    finite = np.isfinite(values)
    scale = {"color": values[finite].astype(np.float32), "colorscale": "Viridis", "showscale": True, "colorbar": {"title": colouring.name}}
    return [(colouring.name, rows[finite], scale), ("missing", rows[~finite], {"color": "#bbbbbb"})]


def _steps(colours: tuple[str, ...]) -> list[list]:
    """A colour scale that maps the integers 0..n-1 (cmin 0, cmax n-1) to ``colours`` one each."""
    edges = np.linspace(0, 1, len(colours) + 1)
    return [[float(edge), colour] for number, colour in enumerate(colours) for edge in edges[number:number + 2]]


def _points(points: np.ndarray, name: str, marker: dict, hover: np.ndarray, three_d: bool, total: int) -> go.BaseTraceType:
    template = ("face %{customdata[0]}<br>identity %{customdata[1]}<br>RI %{customdata[2]:.3f}"
                "<br>distance to UI %{customdata[3]:.3f}<br>height %{customdata[4]} px<extra></extra>")
    common = {"name": name, "mode": "markers", "customdata": hover, "hovertemplate": template}
    if three_d:
        return go.Scatter3d(x=points[:, 0], y=points[:, 1], z=points[:, 2], marker={"size": 2.5, **marker}, **common)
    kind = go.Scattergl if total > WEBGL_ABOVE else go.Scatter
    return kind(x=points[:, 0], y=points[:, 1], marker={"size": 5, **marker}, **common)


def _center_marker(center: np.ndarray, three_d: bool) -> go.BaseTraceType:
    marker = {"symbol": "x", "size": 16 if not three_d else 8, "color": "black", "line": {"width": 2}}
    common = {"name": "UI center", "mode": "markers", "marker": marker, "hovertemplate": "UI center<extra></extra>"}
    if three_d:
        return go.Scatter3d(x=[center[0]], y=[center[1]], z=[center[2]], **common)
    return go.Scatter(x=[center[0]], y=[center[1]], **common)


def histogram(values: np.ndarray, selected: np.ndarray, title: str) -> go.Figure:
    """All faces' ``values`` with the ``selected`` rows highlighted, over shared bins."""
    edges, counts, chosen = shared_histogram(values, selected)
    middle, width = (edges[1:] + edges[:-1]) / 2, np.diff(edges)
    figure = go.Figure([go.Bar(x=middle, y=counts, width=width, name="all faces", marker_color="#c7c7c7")])
    if len(selected):
        figure.add_trace(go.Bar(x=middle, y=chosen, width=width, name="selection", marker_color="#d62728"))
    figure.update_layout(barmode="overlay", height=300, title=title, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return figure


def compare_histogram(before: np.ndarray, after: np.ndarray, strength: float) -> go.Figure:
    """Distance to the UI center before and after Eq. 8, over shared bins."""
    edges = np.histogram_bin_edges(np.concatenate([before, after]), bins=40)
    middle, width = (edges[1:] + edges[:-1]) / 2, np.diff(edges)
    figure = go.Figure([go.Bar(x=middle, y=np.histogram(before, edges)[0], width=width, name="a = 0", opacity=0.6)])
    if strength:
        figure.add_trace(go.Bar(x=middle, y=np.histogram(after, edges)[0], width=width, name=f"a = {strength:.2f}", opacity=0.6))
    figure.update_layout(barmode="overlay", height=300, title="distance to the UI center (1 - cos)",
                         margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return figure


def erc_figure(curves: pd.DataFrame) -> go.Figure:
    figure = go.Figure([go.Scatter(x=part["reject fraction"], y=part["FNMR"], name=name, mode="lines+markers")
                        for name, part in curves.groupby("quality", sort=False)])
    figure.update_layout(height=300, title="ERC: FNMR at FMR 1e-3 vs fraction rejected", xaxis_title="fraction rejected",
                         yaxis_title="FNMR", margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return figure


def thumbnail_uri(path: str, largest: int = 48) -> str | None:
    """A PNG data URI of the image at ``path``, shrunk to at most ``largest`` px (small faces stay native; the
    page scales them up with visible pixels), or None (a 'no image' placeholder) if it cannot be shown for any
    reason: missing, undecodable, over lrfr's pixel limit (a decompression bomb) ..."""
    try:
        small = Image.fromarray(read_image(Path(path)))
        small.thumbnail((largest, largest))
        buffer = io.BytesIO()
        small.save(buffer, format="PNG", optimize=True)
    except Exception:  # one unreadable face must never break the page
        return None
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def training_figure(history: object) -> tuple[go.Figure | None, list[str]]:
    """The loss terms per epoch of a run's ``train_history`` and what in it could not be read.

    Entries that are not objects with a numeric ``epoch`` and values that are not numbers are left out
    and named in the returned problems; the figure is None when nothing is left to draw.
    """
    if not isinstance(history, list):
        return None, [f"train_history is a {type(history).__name__}; expected a list of per-epoch objects"]
    rows, problems = [], []
    for position, entry in enumerate(history):
        epoch = entry.get("epoch") if isinstance(entry, dict) else None
        if not _number(epoch):
            problems.append(f"train_history[{position}] has no numeric 'epoch'; left out")
            continue
        for term, value in entry.items():
            if term in ("epoch", "seconds", "images_per_second", "lr"):
                continue
            if _number(value):
                rows.append({"epoch": epoch, "term": term, "value": value})
            else:
                problems.append(f"train_history[{position}][{term!r}] is {value!r}, not a number; left out")
    if not rows:
        return None, problems
    figure = px.line(pd.DataFrame(rows), x="epoch", y="value", color="term", title="training loss terms", height=250)
    return figure, problems


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def face_card(uri: str | None, caption: str, border: str = "#999") -> str:
    """One thumbnail (or a 'no image' box) with a caption, as HTML."""
    style = f"width:{THUMB}px;height:{THUMB}px;border:3px solid {border};image-rendering:pixelated"
    picture = (f'<img class="lrfr-thumb" src="{uri}" style="{style}"/>' if uri
               else f'<div style="{style};font-size:10px;display:flex;align-items:center">no image</div>')
    return (f'<div style="display:inline-block;margin:2px;text-align:center;font-size:11px;vertical-align:top">'
            f'{picture}<br>{html.escape(caption)}</div>')


def gallery_html(queries: pd.DataFrame, found: Neighbours, uris: dict[int, str | None], labels: np.ndarray,
                 super_resolved: dict[int, str | None] | None = None) -> str:
    """One line per selected face: its card (and, where ``super_resolved`` has one, its super-resolved
    version beside it), then its k neighbours (green border: same identity, red: not)."""
    lines = []
    for position, row in enumerate(queries.itertuples()):
        cards = [face_card(uris[row.row], f"#{row.row} id {row.label}", "#1f77b4")]
        if (super_resolved or {}).get(row.row):
            cards.append(face_card(super_resolved[row.row], f"#{row.row} SR", SR_BORDER))
        cards += [
                  f'<div style="display:inline-block;font-size:11px;width:120px;vertical-align:top">{html.escape(row.summary)}</div>']
        for index, score, same in zip(found.indices[position], found.scores[position], found.same_identity[position]):
            cards.append(face_card(uris[int(index)], f"#{index} id {labels[index]} cos {score:.2f}",
                                   "#2ca02c" if same else "#d62728"))
        lines.append(f'<div class="lrfr-face">{"".join(cards)}</div>')
    return "".join(lines)
