"""Streamlit app: browse the run folders under a results root.

``make dashboard`` runs ``streamlit run dashboard/app.py -- --results DIR`` (or set ``LRFR_RESULTS``).
This first version shows a run's parameters, its training curves and a projection of any stored
embedding set coloured by identity. The UI-center views (RI, distance to the UI center, ERC, Eq. 8
control) come with the dashboard issue.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import plotly.express as px
import streamlit as st

from lrfr.plots import PROJECTIONS, project
from lrfr.runs import RunFolder, RunFolderError, find_runs


def results_root() -> Path:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--results", default=os.environ.get("LRFR_RESULTS", "results"))
    return Path(parser.parse_known_args()[0].results)


@st.cache_data(show_spinner="projecting embeddings ...")
def cached_projection(run_path: str, embedding_set: str, method: str):
    embeddings = RunFolder.open(run_path).load_embeddings(embedding_set)
    return project(embeddings.embeddings, method), embeddings.labels


def show_training(run: RunFolder) -> None:
    history = run.metrics().get("train_history")
    if not history:
        st.caption("no training history in metrics.json")
        return
    terms = [k for k in history[0] if k not in ("epoch", "seconds", "images_per_second", "lr")]
    rows = [{"epoch": h["epoch"], "term": t, "value": h[t]} for h in history for t in terms]
    st.plotly_chart(px.line(rows, x="epoch", y="value", color="term", title="training loss terms"))


def show_embeddings(run: RunFolder) -> None:
    sets = run.embedding_sets()
    if not sets:
        st.caption("no embeddings stored in this run")
        return
    embedding_set = st.selectbox("embedding set", sets)
    method = st.radio("projection", PROJECTIONS, horizontal=True)
    points, labels = cached_projection(str(run.path), embedding_set, method)
    figure = px.scatter(x=points[:, 0], y=points[:, 1], color=labels.astype(str),
                        labels={"x": f"{method} 1", "y": f"{method} 2", "color": "identity"})
    st.plotly_chart(figure)


def main() -> None:
    st.set_page_config(page_title="lrfr runs", layout="wide")
    root = results_root()
    st.title("lrfr runs")
    runs = find_runs(root)
    if not runs:
        st.info(f"No run folders under {root.resolve()}. Run `make book` or `lrfr train` first.")
        return
    choice = st.selectbox("run", runs, format_func=lambda p: str(p.relative_to(root)))
    try:
        run = RunFolder.open(choice)
    except RunFolderError as error:
        st.error(str(error))
        return
    with st.expander("parameters"):
        st.json(run.info)
    show_training(run)
    show_embeddings(run)


main()
