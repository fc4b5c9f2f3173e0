"""The dashboard's data: run folders read once per file version and cached in the server process.

Run folders are only read; nothing is written into them (they may be read-only or shared). A
projection that a chapter did not store is computed here and kept in Streamlit's cache
(``st.cache_data``) for the life of the server process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import streamlit as st

import dash_views as views
from dash_explore import UICenter, Rescored, rescore, resolve_ui_center, run_erc

from lrfr.plots.projections import load_projection, project
from lrfr.losses.recognizability_index import project_away_from_ui
from lrfr.protocols.quality import ers_quality
from lrfr.runs import RunFolder, RunFolderError, find_runs

PROBLEMS = (RunFolderError, ValueError, KeyError, TypeError, OSError, pa.ArrowException)  # bad run folders, shown as st.error
RI_COLUMNS = {"ri_learned": "RI (learned)", "ri_target": "RI (target)"}
NUMERIC = ("ri_learned", "ri_target", "ui_distance", "native_height")
RANK1 = "rank1"


@dataclass
class RunData:
    """One embedding set of a run with its per-face table (``frame``: label, metadata, ui_distance)."""

    path: str
    embedding_set: str
    embeddings: np.ndarray
    labels: np.ndarray
    frame: pd.DataFrame
    center: UICenter | None
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    hover: np.ndarray | None = None  # (N, 5) numbers for the projection's hover box


def allowed_run(root: Path, wanted: str) -> Path:
    """The run folder ``root/wanted`` if it is one of :func:`find_runs` under ``root``, else RunFolderError."""
    runs = {path.resolve() for path in find_runs(root)}
    candidate = (root / wanted).resolve()
    if not candidate.is_relative_to(root.resolve()) or candidate not in runs:
        raise RunFolderError(f"{wanted!r} is not a run folder under the results root {root.resolve()}; "
                             "expected a folder holding config.json below it")
    return candidate


def stamp(run_path: str, embedding_set: str) -> tuple[float, ...]:
    """Modification times of the files a view depends on (cache keys change when a run is rewritten)."""
    files = [Path(run_path) / "embeddings" / f"{embedding_set}.parquet", Path(run_path) / "ui_center.json"]
    return tuple(path.stat().st_mtime if path.exists() else 0.0 for path in files)


@st.cache_resource(max_entries=4, show_spinner="loading the run ...")
def load_run(run_path: str, embedding_set: str, version: tuple[float, ...]) -> RunData:
    """The embedding set, its metadata and the UI center (shared read-only between sessions)."""
    stored = RunFolder.open(run_path).load_embeddings(embedding_set)
    embeddings = np.array(stored.embeddings, dtype=np.float32)
    frame = pd.DataFrame({"label": stored.labels})
    for column, values in stored.metadata.items():
        frame[column] = values.astype(str) if column in ("split", "path") else values
    data = RunData(run_path, embedding_set, embeddings, stored.labels, frame, None)
    split = frame["split"].to_numpy() if "split" in frame else None
    if split is None:
        data.notes.append("no 'split' column: rank-1 needs probe/gallery splits, so it is not shown")
    try:
        data.center = resolve_ui_center(RunFolder.open(run_path), embeddings, split)
    except RunFolderError as error:
        data.problems.append(str(error))
    if data.center is not None:
        data.notes.append(f"UI center: {data.center.source}")
        if "ui_distance" not in frame:
            frame["ui_distance"] = ers_quality(embeddings, data.center.center)
            data.notes.append("distance to the UI center computed here (no 'ui_distance' column)")
    for column in NUMERIC:
        if column in frame and not pd.api.types.is_numeric_dtype(frame[column]):
            data.problems.append(f"column {column!r} of {embedding_set}.parquet is {frame[column].dtype}; expected numbers")
            frame.drop(columns=column, inplace=True)
    data.hover = _hover_table(frame)
    return data


def _hover_table(frame: pd.DataFrame) -> np.ndarray:
    """(N, 5) float32: face index, identity, RI, distance to UI and height per face (NaN when absent)."""
    ri = "ri_learned" if "ri_learned" in frame else "ri_target"
    columns = [np.arange(len(frame))] + [frame[c].to_numpy(np.float64) if c in frame else np.full(len(frame), np.nan)
                                         for c in ("label", ri, "ui_distance", "native_height")]
    return np.stack(columns, axis=1).astype(np.float32)


@st.cache_data(max_entries=20000, show_spinner=False)
def thumbnail(path: str) -> str | None:
    """The face image at ``path`` as a small PNG data URI (None if unreadable)."""
    return views.thumbnail_uri(path)


@st.cache_resource(max_entries=16, show_spinner="re-scoring rank-1 ...")
def rescored(run_path: str, embedding_set: str, version: tuple[float, ...], strength: float) -> Rescored | None:
    """Rank-1 of the probes after Eq. 8 with ``strength`` (None without splits or mates)."""
    data = load_run(run_path, embedding_set, version)
    if "split" not in data.frame or (strength and data.center is None):
        return None
    embeddings = project_away_from_ui(data.embeddings, data.center.center, strength) if strength else data.embeddings
    try:
        return rescore(embeddings, data.labels, data.frame["split"].to_numpy())
    except ValueError:
        return None


@st.cache_data(max_entries=32, show_spinner=False)
def projection(run_path: str, embedding_set: str, version: tuple[float, ...], method: str, dims: int) -> tuple[np.ndarray, str]:
    """(points, how they were obtained): the stored projection, else computed here (cached, not written)."""
    data = load_run(run_path, embedding_set, version)
    try:
        points = load_projection(RunFolder.open(run_path), embedding_set, method, dims)
    except RunFolderError as error:
        return _computed(data, method, dims, f"the stored one is unreadable ({error})")
    if points is None:
        return _computed(data, method, dims, "not stored in the run folder")
    if len(points) != len(data.labels):
        return _computed(data, method, dims, f"the stored one has {len(points)} rows for {len(data.labels)} embeddings")
    return points, "stored in the run folder"


def _computed(data: RunData, method: str, dims: int, why: str) -> tuple[np.ndarray, str]:
    return project(data.embeddings, method, dims).astype(np.float32), f"{why}; computed here and cached"


@st.cache_data(max_entries=8, show_spinner="computing the ERC ...")
def erc(run_path: str, embedding_set: str, version: tuple[float, ...]) -> pd.DataFrame | None:
    """FNMR at FMR 1e-3 versus reject fraction for the learned RI and the distance to the UI center."""
    data = load_run(run_path, embedding_set, version)
    qualities = {RI_COLUMNS["ri_learned"]: "ri_learned", "distance to UI center": "ui_distance"}
    qualities = {name: data.frame[column].to_numpy(np.float64) for name, column in qualities.items() if column in data.frame}
    split = data.frame["split"].to_numpy() if "split" in data.frame else None
    if not qualities:
        return None
    curves = run_erc(data.embeddings, data.labels, split, {name: _lowest_if_nan(q) for name, q in qualities.items()})
    return pd.DataFrame([
        {"quality": name, "reject fraction": fraction, "FNMR": fnmr}
        for name, curve in curves.items() for fraction, fnmr in zip(curve.reject_fractions, curve.fnmr[:, 0])
    ])


def _lowest_if_nan(quality: np.ndarray) -> np.ndarray:
    """Missing qualities (NaN) count as the lowest: those faces are rejected first."""
    finite = quality[np.isfinite(quality)]
    return np.where(np.isfinite(quality), quality, (finite.min() - 1) if len(finite) else 0.0)
