"""Projections and figures shared by the book chapters and the dashboard."""

from lrfr.plots.display import show
from lrfr.plots.figures import (
    UI_CENTER,
    embedding_scatter,
    erc_figure,
    group_scatter,
    heatmap_overlays,
    histograms,
    image_grid,
    interval_curves,
    line_sweep,
    roc_figure,
)
from lrfr.plots.projections import PROJECTIONS, project

__all__ = [
    "PROJECTIONS",
    "UI_CENTER",
    "embedding_scatter",
    "erc_figure",
    "group_scatter",
    "heatmap_overlays",
    "histograms",
    "image_grid",
    "interval_curves",
    "line_sweep",
    "project",
    "roc_figure",
    "show",
]
