"""Show a plotly figure so that it is interactive both in JupyterLab and in the built book.

jupyter-book 1.x (myst-nb) drops the ``application/vnd.plotly.v1+json`` output that ``fig.show()``
writes, so a chapter calls :func:`show` instead: it publishes one output bundle holding the plotly
JSON (rendered by JupyterLab's plotly extension) and an HTML fragment (rendered by the book). The
fragment does not carry plotly.js; it calls the global ``Plotly`` that the book loads once per page
from its own ``_static/plotly.min.js`` (see :mod:`lrfr.book`), so no page fetches anything from a CDN.
"""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go

PLOTLY_MIMETYPE = "application/vnd.plotly.v1+json"


def figure_bundle(fig: go.Figure) -> dict[str, Any]:
    """The output bundle of ``fig``: plotly JSON, an HTML fragment using the global ``Plotly``, plain text."""
    payload = json.loads(fig.to_json())
    html = fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})
    title = fig.layout.title.text or "untitled"
    return {
        PLOTLY_MIMETYPE: {**payload, "config": {"displaylogo": False}},
        "text/html": html,
        "text/plain": f"<plotly figure: {title}>",
    }


def show(fig: go.Figure) -> None:
    """Display ``fig`` as one output that JupyterLab and the built book both render interactively."""
    from IPython.display import display

    display(figure_bundle(fig), raw=True)
