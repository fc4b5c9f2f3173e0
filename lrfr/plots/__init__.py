"""Projections and figures shared by the book chapters and the dashboard."""

from lrfr.plots.projections import PROJECTIONS, project

__all__ = ["PROJECTIONS", "project"]
