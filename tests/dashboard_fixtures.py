"""Run folders for the dashboard tests: a complete synthetic run and the broken or partial ones the app must explain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lrfr.bench.dashboard import write_synthetic_run
from lrfr.runs import RunFolder

__all__ = ["make_run", "make_bare_run", "make_old_format_run", "make_foreign_parquet_run", "make_truncated_run",
           "make_bad_center_run", "write_synthetic_run"]


def make_run(root: Path, name: str = "ri-model", **options) -> RunFolder:
    """160 faces: 12 identities x (3 probes + 5 gallery), 40 distractors, 24 UI faces; PNG faces, UI center, PCA."""
    return write_synthetic_run(root, name, **options)


def make_bare_run(root: Path, name: str = "bare") -> RunFolder:
    """Embeddings and labels only: no metadata, no UI center, no stored projection."""
    run = RunFolder.create(root, name, {"kind": "bare"}, seed=0)
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(4), 6)
    run.save_embeddings("test", rng.normal(size=(4, 8))[labels] + 0.1 * rng.normal(size=(24, 8)), labels)
    return run


def make_old_format_run(root: Path, name: str = "old") -> Path:
    """A run folder whose config.json says format_version 0."""
    run = make_bare_run(root, name)
    info = json.loads((run.path / "config.json").read_text())
    (run.path / "config.json").write_text(json.dumps({**info, "format_version": 0}))
    return run.path


def make_foreign_parquet_run(root: Path, name: str = "foreign") -> Path:
    """A run whose embedding file was not written by save_embeddings (no lrfr schema metadata)."""
    run = RunFolder.create(root, name, {"kind": "foreign"}, seed=0)
    path = run.artifact_path("embeddings/test.parquet")
    pq.write_table(pa.table({"label": [0, 1], "vector": [[0.1, 0.2], [0.3, 0.4]]}), path)
    return run.path


def make_truncated_run(root: Path, name: str = "truncated") -> Path:
    """A run whose embedding file was cut short (a crashed copy)."""
    path = make_bare_run(root, name).path / "embeddings" / "test.parquet"
    path.write_bytes(path.read_bytes()[:200])
    return path.parent.parent


def make_bad_center_run(root: Path, name: str = "bad-center") -> Path:
    """A complete run except that ui_center.json has the wrong dimension."""
    run = make_run(root, name, images=20, projection=False)
    run.write_json("ui_center.json", {"center": [1.0, 0.0, 0.0], "embedding_set": "test", "source": "broken"})
    return run.path
