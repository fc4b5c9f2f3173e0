"""Super-resolution networks, built by name: ``build_sr_network("vdsr", output_size=64)``.

Registered: ``srcnn``, ``vdsr``, ``drrn`` (pre-upsampling: bicubic to the output size, then restore;
any scale) and ``edsr`` (post-upsampling, x2/x3/x4/x8). See :mod:`lrfr.models.sr.base`.
"""

from __future__ import annotations

from typing import Any

from lrfr.models.sr import drrn, edsr, srcnn, vdsr  # noqa: F401  (registers the networks)
from lrfr.models.sr.base import SR_NETWORKS, InterpolatedSR, SRNetwork
from lrfr.models.sr.drrn import DRRN
from lrfr.models.sr.edsr import EDSR
from lrfr.models.sr.pipeline import SRThenFR
from lrfr.models.sr.srcnn import SRCNN
from lrfr.models.sr.vdsr import VDSR


def build_sr_network(name: str, **kwargs: Any) -> SRNetwork:
    """The SR network registered as ``name`` (see ``SR_NETWORKS.names()``), with keyword overrides."""
    return SR_NETWORKS.build(name, **kwargs)


__all__ = ["DRRN", "EDSR", "SRCNN", "SR_NETWORKS", "InterpolatedSR", "SRNetwork", "SRThenFR", "VDSR", "build_sr_network"]
