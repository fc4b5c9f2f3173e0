"""Any model on any images, as run folders: ``lrfr embed`` (embeddings of a folder or a dataset, which the
dashboard opens) and ``lrfr eval`` (the benchmark protocols on the datasets under a data root).

Images go to the model through :func:`lrfr.protocols.embeddings.extract_embeddings`, read at the
model's input size, and the model applies its input spec (channel order, normalisation); faces must be
aligned to the model's template beforehand (``lrfr data align``). When the images carry the
``alignment.json`` that ``lrfr data align`` writes, a template other than the model's is an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from lrfr.data.align import REPORT_FILE
from lrfr.data.base import FaceDataset, FaceRecord, LayoutError
from lrfr.data.fetch.download import digests
from lrfr.data.loaders import (
    load_folder, load_pairs, load_scface, load_survface_identification, load_survface_verification, load_tinyface_test,
    load_unlabelled,
)
from lrfr.models.embedder import Embedder
from lrfr.models.pretrained.zoo import weights_file
from lrfr.protocols.benchmarks import Row, evaluate_pairs, evaluate_scface, evaluate_survface, evaluate_tinyface
from lrfr.protocols.embeddings import extract_embeddings
from lrfr.runs import RunFolder

EMBEDDING_SET = "images"


def _tinyface(root: Path) -> list[FaceRecord]:
    test = load_tinyface_test(root)
    return [*test.probe, *test.gallery, *test.distractors]


def _scface(root: Path) -> list[FaceRecord]:
    data = load_scface(root)
    return [*data.mugshots, *data.probes]


def _survface(root: Path) -> list[FaceRecord]:
    data = load_survface_identification(root)
    return [*data.gallery, *data.mated_probe, *data.unmated_probe]


DATASET_RECORDS: dict[str, Callable[[Path], list[FaceRecord]]] = {
    "hr": lambda root: list(load_folder(root).records),
    "tinyface": _tinyface,
    "scface": _scface,
    "survface": _survface,
    "lfw": lambda root: list(load_pairs(root, "LFW").records),
    "xqlfw": lambda root: list(load_pairs(root, "XQLFW").records),
    "ui": lambda root: list(load_unlabelled(root).records),
}
"""Dataset name -> the images of ``<data_root>/<name>`` (the layout ``lrfr data synth`` writes)."""

BENCHMARKS: dict[str, Callable[[nn.Module, Path, RunFolder, bool, int], list[Row]]] = {
    "tinyface": lambda model, root, run, flip, batch: evaluate_tinyface(
        model, load_tinyface_test(root), run=run, flip_fusion=flip, batch_size=batch),
    "scface": lambda model, root, run, flip, batch: evaluate_scface(
        model, load_scface(root), run=run, flip_fusion=flip, batch_size=batch),
    "survface": lambda model, root, run, flip, batch: evaluate_survface(
        model, load_survface_verification(root), load_survface_identification(root), run=run, flip_fusion=flip,
        batch_size=batch),
    "lfw": lambda model, root, run, flip, batch: evaluate_pairs(
        model, load_pairs(root, "LFW"), "LFW", run=run, flip_fusion=flip, batch_size=batch),
    "xqlfw": lambda model, root, run, flip, batch: evaluate_pairs(
        model, load_pairs(root, "XQLFW"), "XQLFW", run=run, flip_fusion=flip, batch_size=batch),
}  # fmt: skip
"""Benchmark name -> its protocol on ``<data_root>/<name>`` (:mod:`lrfr.protocols.benchmarks`)."""


def folder_records(folder: Path) -> list[FaceRecord]:
    """A folder of images: one sub-folder per identity, or flat (unlabelled)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LayoutError(f"{folder} is not a folder of images")
    if any(path.is_dir() for path in folder.iterdir()):
        return list(load_folder(folder).records)
    return list(load_unlabelled(folder).records)


def check_alignment(folder: Path, model: Embedder) -> str | None:
    """The template ``folder``'s ``alignment.json`` names (None without one); an error if it is not the
    model's (``spec.alignment``)."""
    report = Path(folder) / REPORT_FILE
    if not report.is_file():
        return None
    template = json.loads(report.read_text())["template"]
    wanted = model.spec.alignment
    if wanted is not None and template != wanted:
        raise ValueError(
            f"{folder} was aligned to the {template!r} template ({report}), but the model expects {wanted!r}: "
            f"align the raw images with `lrfr data align --template {wanted}`"
        )
    return template


def model_config(model: str, weights: str | Path | None, embedder: Embedder) -> dict[str, Any]:
    """What identifies the model of a run: name, weights file and its sha256, input spec, flip fusion."""
    spec = embedder.spec
    used = weights_file(model, weights)
    return {
        "model": str(model),
        "weights": None if used is None else str(used),
        "weights_sha256": None if used is None else digests(used, ("sha256",))["sha256"],
        "input_spec": {"size": list(spec.size) if spec.size else None, "channels": spec.channels,
                       "mean": list(spec.mean), "std": list(spec.std), "alignment": spec.alignment},
        "flip_fusion": embedder.flip_fusion,
    }  # fmt: skip


def embed_to_run(
    embedder: Embedder, records: Sequence[FaceRecord], out: Path, config: dict[str, Any], *,
    batch_size: int = 64, num_workers: int = 0,
) -> RunFolder:
    """Embed ``records`` into the new run folder ``out`` (made only once every image is embedded): set
    ``images`` with label, path, identity, split and embedding norm per image."""
    if not records:
        raise ValueError("no images to embed")
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists; choose another run folder")
    dataset = FaceDataset(list(records), embedder.spec.size)
    extracted = extract_embeddings(embedder, dataset, batch_size=batch_size, num_workers=num_workers, desc="embed")
    run = RunFolder.create(out.parent, out.name, config, seed=0)
    metadata: dict[str, Any] = {
        "path": np.array([str(r.path) for r in records], dtype=object),
        "identity": np.array([r.identity or "" for r in records], dtype=object),
        "split": np.array([r.split for r in records], dtype=object),
        "norm": extracted.norms,
    }
    if all("native_size" in r.metadata for r in records):
        metadata["native_height"] = np.array([r.metadata["native_size"][0] for r in records], dtype=np.int64)
    run.save_embeddings(EMBEDDING_SET, extracted.embeddings, [r.label for r in records], metadata)
    return run


def evaluate_to_run(
    embedder: Embedder, data_root: Path, benchmarks: Sequence[str], out: Path, config: dict[str, Any], *,
    batch_size: int = 64,
) -> list[Row]:
    """Run ``benchmarks`` on ``<data_root>/<name>`` into the run folder ``out`` (embedding sets cached
    there, the rows in ``metrics.json``); returns the rows."""
    unknown = [name for name in benchmarks if name not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmarks {unknown}; expected some of {', '.join(BENCHMARKS)}")
    out = Path(out)
    run = RunFolder.create(out.parent, out.name, config, seed=0, exist_ok=True)
    rows: list[Row] = []
    for name in benchmarks:
        root = Path(data_root) / name
        check_alignment(root, embedder)
        rows += BENCHMARKS[name](embedder, root, run, embedder.flip_fusion, batch_size)
        run.write_metrics({"rows": rows})
    return rows
