"""Streamlit app: explore a run's embeddings relative to the UI center (Chai et al. 2023).

``make dashboard`` runs ``streamlit run dashboard/app.py -- --results DIR`` (or set ``LRFR_RESULTS``).
Only run folders under that results root can be opened (the sidebar, or ``?run=<relative path>``
and ``?compare=...`` in the address). Per run: a 2-D/3-D projection coloured and filtered by identity,
RI, distance to the UI center, resolution, split and rank-1 correctness; a box/lasso/click
selection lists the faces with their k nearest neighbours; the RI histogram (selection highlighted),
the ERC, and the Eq. 8 control v' = v - a <v, u> u with its effect on rank-1 and the neighbours.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dash_data as data_  # noqa: E402
import dash_views as views  # noqa: E402
from dash_explore import center_position, neighbours  # noqa: E402
from lrfr.plots.projections import PROJECTIONS, stored_methods  # noqa: E402
from lrfr.losses.recognizability_index import project_away_from_ui  # noqa: E402
from lrfr.protocols.quality import ers_quality  # noqa: E402
from lrfr.runs import RunFolder, RunFolderError, find_runs  # noqa: E402

COLOURS = {"identity": "label", "RI (learned)": "ri_learned", "RI (target)": "ri_target",
           "distance to UI center": "ui_distance", "native resolution": "native_height", "split": "split",
           "rank-1 correct": data_.RANK1}
CATEGORICAL = ("identity", "split", "rank-1 correct")
GALLERY_MAX = 24
NONE = "(none)"


def results_root() -> Path:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--results", default=os.environ.get("LRFR_RESULTS", "results"))
    return Path(parser.parse_known_args()[0].results)


def pick_run(label: str, key: str, root: Path, runs: list[Path], optional: bool) -> Path | None:
    """A run chosen in the sidebar; ``?key=<relative path>`` preselects one if it is under ``root``."""
    names = [str(path.relative_to(root)) for path in runs]
    options = ([NONE] if optional else []) + names
    index = 0
    if key in st.query_params:
        try:
            index = options.index(str(data_.allowed_run(root, st.query_params[key]).relative_to(root.resolve())))
        except data_.PROBLEMS as error:
            st.sidebar.error(str(error))
    choice = st.sidebar.selectbox(label, options, index=index, key=key)
    return None if choice == NONE else root / choice


def sidebar(root: Path, runs: list[Path]) -> dict:
    """The controls shared by both panels."""
    st.sidebar.header("runs")
    chosen = {"primary": pick_run("run", "run", root, runs, False),
              "compare": pick_run("compare with", "compare", root, runs, True)}
    st.sidebar.header("view")
    controls = {
        "runs": {prefix: path for prefix, path in chosen.items() if path is not None},
        "method": st.sidebar.radio("projection", PROJECTIONS, index=PROJECTIONS.index(
            (stored_methods(chosen["primary"]) or ["pca"])[0]), horizontal=True, key="method"),
        "dims": st.sidebar.radio("dimensions", (2, 3), horizontal=True, key="dims"),
        "colour": st.sidebar.selectbox("colour by", list(COLOURS), key="colour"),
        "k": st.sidebar.number_input("neighbours k", 1, 20, 5, key="k"),
    }
    st.sidebar.header("Eq. 8: projection away from the UI center")
    controls["strength"] = st.sidebar.slider("a in v' = v - a <v, u> u", 0.0, 1.0, 0.0, 0.05, key="strength")
    return controls


def show_run(prefix: str, path: Path, root: Path, controls: dict) -> None:
    """One run's panel; a bad run folder gets an error message naming the file, never a traceback."""
    st.subheader(str(path.relative_to(root)))
    try:
        run = RunFolder.open(path)
        with st.expander("parameters and training"):
            st.json(run.info, expanded=False)
            show_training(prefix, run)
        sets = run.embedding_sets()
        if not sets:
            st.info(f"no embeddings stored in this run (expected {path / 'embeddings'}/<set>.parquet)")
            return
        embedding_set = st.selectbox("embedding set", sets, key=f"{prefix}:set")
        version = data_.stamp(str(path), embedding_set)
        data = data_.load_run(str(path), embedding_set, version)
        for problem in data.problems:
            st.error(problem)
        st.caption(" · ".join(data.notes))
        explore(prefix, data, version, controls)
    except data_.PROBLEMS as error:
        st.error(f"cannot show run folder {path}: {error}")


def show_training(prefix: str, run: RunFolder) -> None:
    """The training loss curves; an unreadable metrics.json or history is named, never hides the run."""
    try:
        history = run.metrics().get("train_history")
    except RunFolderError as error:
        st.warning(f"training history not shown: {error}")
        return
    if not history:
        st.caption("no training history in metrics.json")
        return
    figure, problems = views.training_figure(history)
    for problem in problems[:5]:
        st.warning(f"{run.path / 'metrics.json'}: {problem}")
    if len(problems) > 5:
        st.warning(f"... and {len(problems) - 5} more problems in {run.path / 'metrics.json'}")
    if figure is not None:
        st.plotly_chart(figure, key=f"{prefix}:training")


def explore(prefix: str, data: data_.RunData, version: tuple, controls: dict) -> None:
    strength = controls["strength"]
    base = data_.rescored(data.path, data.embedding_set, version, 0.0)
    current = data_.rescored(data.path, data.embedding_set, version, strength) if data.center is not None else base
    frame = data.frame.assign(**{data_.RANK1: rank1_labels(current, len(data.labels))})
    visible = filters(f"{prefix}:{data.path}:{data.embedding_set}", frame)
    selected = projection_view(prefix, data, version, controls, frame, visible)
    show_scores(base, current, strength, visible, selected)
    left, right = st.columns(2)
    with left:
        ri_histogram(prefix, frame, selected)
    with right:
        show_erc(prefix, data, version)
    moved = eq8_view(prefix, data, strength)
    show_gallery(prefix, data, frame, selected, moved, controls["k"])


def show_erc(prefix: str, data: data_.RunData, version: tuple) -> None:
    try:
        curves = data_.erc(data.path, data.embedding_set, version)
    except ValueError as error:
        st.caption(f"no ERC: {error}")
        return
    if curves is None:
        st.caption("no ERC: the run has neither 'ri_learned' nor a UI center")
    else:
        st.plotly_chart(views.erc_figure(curves), key=f"{prefix}:erc")


def rank1_labels(scores, count: int) -> np.ndarray:
    """'correct' / 'wrong' per mated probe, 'n/a' for every other face."""
    labels = np.full(count, "n/a", dtype=object)
    if scores is not None:
        scored = ~np.isnan(scores.correct)
        labels[scored] = np.where(scores.correct[scored] == 1, "correct", "wrong")
    return labels


def filters(key: str, frame: pd.DataFrame) -> np.ndarray:
    """(N,) mask of the faces kept by the filters of every available attribute."""
    keep = np.ones(len(frame), dtype=bool)
    with st.expander("filters"):
        for column in ("split", data_.RANK1):
            if column in frame:
                options = sorted(frame[column].unique().tolist())
                chosen = st.multiselect(column.replace("rank1", "rank-1"), options, options, key=f"{key}:{column}")
                keep &= frame[column].isin(chosen).to_numpy()
        wanted = st.text_input("identities (comma-separated labels; empty: all)", key=f"{key}:identity")
        if wanted.strip():
            try:
                keep &= frame["label"].isin([int(part) for part in wanted.split(",") if part.strip()]).to_numpy()
            except ValueError:
                st.warning(f"identities {wanted!r}: expected integers separated by commas")
        for column in data_.NUMERIC:
            if column in frame:
                keep &= numeric_filter(key, frame[column].to_numpy(np.float64), column)
    return keep


def numeric_filter(key: str, values: np.ndarray, column: str) -> np.ndarray:
    finite = values[np.isfinite(values)]
    if len(finite) < 2 or finite.min() == finite.max():
        return np.ones(len(values), dtype=bool)
    low, high = float(finite.min()), float(finite.max())
    chosen = st.slider(column, low, high, (low, high), key=f"{key}:{column}")
    if chosen == (low, high):
        return np.ones(len(values), dtype=bool)
    return (values >= chosen[0]) & (values <= chosen[1])


def projection_view(prefix: str, data: data_.RunData, version: tuple, controls: dict, frame: pd.DataFrame,
                    visible: np.ndarray) -> np.ndarray:
    """The projection with the UI center; returns the selected rows (visible ones only)."""
    method, dims = controls["method"], controls["dims"]
    with st.spinner(f"projecting {len(frame)} embeddings with {method} ({dims}-D) ..."):
        points, how = data_.projection(data.path, data.embedding_set, version, method, dims)
    forget_other_runs(prefix, data)
    colouring = colour(frame, controls["colour"])
    center = None if data.center is None else center_position(data.embeddings, points, data.center.center)
    figure, trace_rows = views.scatter(points, np.flatnonzero(visible), colouring, data.hover, center, method.upper())
    st.caption(f"{method} {dims}-D projection {how}; {int(visible.sum())} of {len(frame)} faces shown; "
               f"coloured by {colouring.name}" + ("" if data.center is not None else "; no UI center in this run"))
    if dims == 3:
        st.plotly_chart(figure, key=f"chart3d:{prefix}")
        st.caption("3-D: rotate and hover; box/lasso selection works in 2-D.")
        return remembered(prefix, None, None, trace_rows, visible)
    event = st.plotly_chart(figure, key=f"chart:{prefix}", on_select="rerun", selection_mode=("box", "lasso", "points"))
    st.caption("Hover a point for its identity, RI and distance; click it (or drag a box / lasso) to see the faces "
               "and their neighbours below.")
    signature = hash((data.path, data.embedding_set, method, controls["colour"], controls["strength"], visible.tobytes()))
    return remembered(prefix, event, signature, trace_rows, visible)


def forget_other_runs(prefix: str, data: data_.RunData) -> None:
    """Drop a kept selection that was made on another run or embedding set."""
    owner, here = f"selected-run:{prefix}", f"{data.path}:{data.embedding_set}"
    if st.session_state.get(owner, here) != here:
        st.session_state[f"selected:{prefix}"] = []
    st.session_state[owner] = here


def colour(frame: pd.DataFrame, name: str) -> views.Colouring:
    column = COLOURS[name]
    if column not in frame:
        st.caption(f"no {name} in this run; coloured by identity")
        name, column = "identity", "label"
    values = frame[column].to_numpy()
    return views.Colouring(name, values if name in CATEGORICAL else values.astype(np.float64), name in CATEGORICAL)


def remembered(prefix: str, event, signature: int | None, trace_rows: list[np.ndarray], visible: np.ndarray) -> np.ndarray:
    """The selection: the chart's, else the last one kept in ``st.session_state['selected:<prefix>']``.

    A figure that changes (colour, filters, a) is a new chart with an empty selection; the kept one
    stays until the user clears the selection of the chart it came from.
    """
    store, origin = f"selected:{prefix}", f"selected-origin:{prefix}"
    points = event.selection.points if event is not None else []
    rows = [_row(point, trace_rows) for point in points]
    rows = [row for row in rows if row is not None]
    if rows:
        st.session_state[store], st.session_state[origin] = rows, signature
    elif signature is not None and st.session_state.get(origin) == signature:
        st.session_state[store], st.session_state[origin] = [], None
    kept = np.asarray(st.session_state.get(store, []), dtype=np.int64)
    kept = kept[(kept >= 0) & (kept < len(visible))]
    return kept[visible[kept]]


def _row(point: dict, trace_rows: list[np.ndarray]) -> int | None:
    curve, index = point.get("curve_number"), point.get("point_index")
    if curve is None or index is None or curve >= len(trace_rows) or index >= len(trace_rows[curve]):
        return None  # the UI center marker
    return int(trace_rows[curve][index])


def show_scores(base, current, strength: float, visible: np.ndarray, selected: np.ndarray) -> None:
    columns = st.columns(3)
    columns[0].metric("faces shown", int(visible.sum()))
    columns[1].metric("selected", len(selected))
    if base is None:
        columns[2].metric("rank-1", "n/a", help="needs faces of split 'probe' and 'gallery'/'distractor'")
        return
    delta = None if strength == 0 or current is None else f"{100 * (current.rank1 - base.rank1):+.1f} pts"
    value = base if current is None else current
    columns[2].metric(f"rank-1 (a = {strength:.2f})", f"{100 * value.rank1:.1f}%", delta,
                      help=f"{value.num_mated_probes} mated probes of {value.num_probes}; gallery: splits gallery + distractor")


def ri_histogram(prefix: str, frame: pd.DataFrame, selected: np.ndarray) -> None:
    present = [column for column in data_.RI_COLUMNS if column in frame]
    if not present:
        st.caption("no RI in this run (expected columns 'ri_learned' / 'ri_target')")
        return
    column = st.radio("RI histogram", present, format_func=data_.RI_COLUMNS.get, horizontal=True, key=f"{prefix}:ri")
    values = frame[column].to_numpy(np.float64)
    if not np.isfinite(values).any():
        st.caption(f"no finite {data_.RI_COLUMNS[column]} value in this embedding set")
        return
    figure = views.histogram(values, selected, f"{data_.RI_COLUMNS[column]}: {len(selected)} selected in red")
    st.plotly_chart(figure, key=f"{prefix}:ri-histogram")


def eq8_view(prefix: str, data: data_.RunData, strength: float) -> np.ndarray | None:
    """The distance-to-UI histogram before/after Eq. 8; returns the projected embeddings (None at a = 0)."""
    st.markdown(f"**Eq. 8, a = {strength:.2f}**: v' = v - a <v, u> u")
    if data.center is None:
        st.info("no UI center in this run (expected ui_center.json or faces of split 'ui'): Eq. 8 needs one")
        return None
    moved = project_away_from_ui(data.embeddings, data.center.center, strength) if strength else None
    before = ers_quality(data.embeddings, data.center.center)
    after = before if moved is None else ers_quality(moved, data.center.center)
    st.plotly_chart(views.compare_histogram(before, after, strength), key=f"{prefix}:eq8")
    return moved


def show_gallery(prefix: str, data: data_.RunData, frame: pd.DataFrame, selected: np.ndarray, moved: np.ndarray | None,
                 k: int) -> None:
    st.html(views.GALLERY_LEGEND)  # always drawn, so the browser has st.html ready before the first selection
    if not len(selected):
        st.caption("select faces in the projection to see them here with their nearest neighbours")
        return
    shown = selected[:GALLERY_MAX]
    st.markdown(f"**selected faces** ({len(shown)} of {len(selected)} shown) and their {k} nearest neighbours (cosine"
                + (", after Eq. 8)" if moved is not None else ")"))
    k = min(int(k), len(data.labels) - 1)
    found = neighbours(data.embeddings if moved is None else moved, data.labels, shown, k)
    paths = frame["path"].to_numpy() if "path" in frame else None
    rows = set(shown.tolist()) | set(found.indices.ravel().tolist())
    uris = {row: None if paths is None else data_.thumbnail(paths[row]) for row in rows}
    queries = frame.iloc[shown].assign(row=shown, summary=[summary(frame, row) for row in shown])
    sr_paths = frame["sr_path"].to_numpy() if "sr_path" in frame else None
    super_resolved = {row: data_.thumbnail(sr_paths[row]) for row in shown if sr_paths[row]} if sr_paths is not None else None
    st.html(views.gallery_html(queries, found, uris, data.labels, super_resolved))
    if paths is None:
        st.caption("no 'path' column in this embedding set: no face images")
    before = neighbours(data.embeddings, data.labels, shown, k) if moved is not None else None
    table = neighbour_table(data.labels, shown, found, before)
    if before is not None:
        kept = table["neighbour at a = 0"]
        st.caption(f"after Eq. 8: {int((~kept).sum())} of {len(kept)} neighbours are new; same identity "
                   f"{int(before.same_identity.sum())} at a = 0 -> {int(found.same_identity.sum())} now")
    with st.expander("the selected faces and their neighbours as tables"):  # static tables: light to render
        st.table(selected_table(frame, shown).set_index("face"))
        st.table(table.set_index(["face", "rank"]))


def summary(frame: pd.DataFrame, row: int) -> str:
    parts = [f"{name} {frame[column].iat[row]:.3g}" for column, name in
             (("ri_learned", "RI"), ("ri_target", "RI*"), ("ui_distance", "d_UI"), ("native_height", "px")) if column in frame]
    extra = [str(frame[column].iat[row]) for column in ("split",) if column in frame]
    return " · ".join(parts + extra + [f"rank-1 {frame[data_.RANK1].iat[row]}"])


def selected_table(frame: pd.DataFrame, shown: np.ndarray) -> pd.DataFrame:
    columns = [c for c in ("label", "split", "ri_learned", "ri_target", "ui_distance", "native_height", data_.RANK1) if c in frame]
    return frame.iloc[shown][columns].assign(face=shown).set_index("face").reset_index()


def neighbour_table(labels: np.ndarray, shown: np.ndarray, found, before) -> pd.DataFrame:
    """One row per (selected face, neighbour); with a > 0 also whether the neighbour was one at a = 0."""
    k = found.indices.shape[1]
    table = pd.DataFrame({
        "face": np.repeat(shown, k), "rank": np.tile(np.arange(1, k + 1), len(shown)),
        "neighbour": found.indices.ravel(), "neighbour identity": labels[found.indices.ravel()],
        "same identity": found.same_identity.ravel(), "cosine": found.scores.ravel(),
    })
    if before is not None:
        table["neighbour at a = 0"] = [bool(np.isin(n, row)) for n, row in zip(found.indices.ravel(), np.repeat(before.indices, k, axis=0))]
    return table


def main() -> None:
    st.set_page_config(page_title="lrfr runs", layout="wide")
    root = results_root()
    st.title("lrfr runs")
    runs = find_runs(root)
    if not runs:
        st.info(f"No run folders under {root.resolve()}. Run `make book` or `lrfr train` first, "
                "or point the dashboard at another results directory (README).")
        return
    controls = sidebar(root, runs)
    panels = list(controls["runs"].items())
    for (prefix, path), column in zip(panels, st.columns(len(panels))):
        with column:
            show_run(prefix, path, root, controls)


main()
