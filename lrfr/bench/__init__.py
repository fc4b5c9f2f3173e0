"""Benchmarks: ``lrfr bench <name>`` prints one JSON object per measurement, one per line."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

from lrfr.registry import Registry

BENCHMARKS: Registry[Callable[[list[str]], None]] = Registry("benchmark")


def emit(record: dict[str, Any]) -> None:
    """Print one measurement as a JSON line (flushed, so partial results survive an interrupt)."""
    print(json.dumps(record, sort_keys=True), flush=True)
    sys.stdout.flush()


def _register_all() -> None:
    from lrfr.bench import train  # noqa: F401  (registers "train")
    from lrfr.bench import synth, calibration  # noqa: F401  (registers "synth", "calibration")
    from lrfr.bench import search_eval  # noqa: F401  (registers "eval")
    from lrfr.bench import book  # noqa: F401  (registers "book")
    from lrfr.bench import dashboard  # noqa: F401  (registers "dashboard")
    from lrfr.bench import scale  # noqa: F401  (registers "scale")
    from lrfr.bench import stats  # noqa: F401  (registers "stats")
    from lrfr.bench import embed  # noqa: F401  (registers "embed")
    from lrfr.bench import fit  # noqa: F401  (registers "fit")
    from lrfr.bench import hypotheses  # noqa: F401  (registers "hypotheses")


_register_all()
