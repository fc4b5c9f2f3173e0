"""What every chapter does first: make sure its data exists, train (or reuse) a run, embed a record set.

A chapter names its data root; in quick mode that root holds the synthetic data set, written here
on first use (the same seed gives the same bytes, so a second chapter or a re-run reuses it). A
training run is cached by its configuration: its run folder is named after the experiment and a
hash of every setting, so a run is re-trained only when one of its parameters changes, and a run
interrupted between epochs resumes from its last checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from lrfr.data.base import FaceRecord, image_size
from lrfr.data.synthetic import VERSION as SYNTHFACE_VERSION
from lrfr.data.writers import PRESETS, WRITER_VERSION, write_synthetic
from lrfr.runs import RunFolder
from lrfr.training.config import ExperimentConfig
from lrfr.training.experiment import run_experiment
from lrfr.training.objective import Objective, build_objective

MANIFEST = "manifest.json"


def synthetic_data(root: str | Path, preset: str, seed: int, workers: int = 1) -> Path:
    """``root`` holding the synthetic data set ``preset`` written with ``seed`` (written if absent).

    An existing ``root`` must hold a manifest with the same preset and seed; anything else there is
    an error rather than silently mixing two data sets. One written by another SynthFace or writer version
    is written again (beside it, then swapped in), since it is a pure function of (preset, seed, versions).
    """
    root = Path(root)
    if preset not in PRESETS:
        raise ValueError(f"unknown synthetic preset {preset!r}; expected one of {sorted(PRESETS)}")
    manifest_path = root / MANIFEST
    if not root.exists() or (root.is_dir() and not any(root.iterdir())):
        write_synthetic(root, preset, seed=seed, workers=workers)
        return root
    if not manifest_path.is_file():
        raise FileExistsError(f"{root} exists but has no {MANIFEST}; expected a folder written by `lrfr data synth`")
    manifest = json.loads(manifest_path.read_text())
    found = (manifest.get("preset"), manifest.get("seed"))
    if found != (preset, seed):
        raise FileExistsError(
            f"{root} holds the synthetic preset {found[0]!r} with seed {found[1]!r}; expected preset {preset!r} "
            f"with seed {seed}: choose another data root or remove that folder"
        )
    found_version = (manifest.get("generator_version"), manifest.get("writer_version"))
    if found_version != (SYNTHFACE_VERSION, WRITER_VERSION):
        print(f"{root} was written by SynthFace version {found_version[0]} (writer version {found_version[1]}); "
              f"writing it again with version {SYNTHFACE_VERSION} (writer version {WRITER_VERSION})")
        fresh = root.with_name(f".{root.name}.rewrite")
        if fresh.exists():
            shutil.rmtree(fresh)
        write_synthetic(fresh, preset, seed=seed, workers=workers)
        shutil.rmtree(root)
        fresh.rename(root)
    return root


def config_hash(config: ExperimentConfig) -> str:
    """Eight hex digits identifying every setting of ``config`` except its name, and the version of the
    synthetic data its streams read (so a run trained on data from an older generator is not reused)."""
    settings = {key: value for key, value in config.record().items() if key != "name"}
    versions = {name: data_version(spec.kwargs["root"]) for name, spec in config.data.items()
                if "root" in spec.kwargs}
    if any(versions.values()):
        settings["data_versions"] = versions
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]


def data_version(root: str | Path) -> str | None:
    """The generator and writer version in the manifest of the synthetic data set holding ``root`` (the
    data root itself or one of its two parents), or None for data not written by ``lrfr data synth``."""
    root = Path(root)
    for folder in (root, *root.parents[:2]):
        if (folder / MANIFEST).is_file():
            manifest = json.loads((folder / MANIFEST).read_text())
            return f"{manifest.get('generator_version')}/{manifest.get('writer_version')}"
    return None


def cached_run(config: ExperimentConfig, results: str | Path) -> tuple[RunFolder, Objective]:
    """Train ``config`` in ``results/<name>-<hash>`` unless that run is complete; return it and its model.

    The folder's identity is its recorded config: an existing folder must hold ``config.json`` with this
    very config (anything else is a :class:`~lrfr.runs.RunFolderError`, never an adoption of the
    checkpoints it holds). It is complete when it holds the checkpoint of the final epoch (checkpoints
    are numbered by epochs done); a complete run is loaded, an incomplete one resumes from its last
    checkpoint. The model is returned in eval mode.
    """
    named = ExperimentConfig.from_dict({**config.to_dict(), "name": f"{config.name}-{config_hash(config)}"})
    path = Path(results) / named.name
    if path.exists():
        run = RunFolder.open(path)
        run.check_identity(named.record(), named.train.seed)
        if run.latest_checkpoint() == named.train.epochs:
            return run, load_model(path, named)
    run, objective = run_experiment(named, results, resume=True)
    return run, objective.eval()


def load_model(path: str | Path, config: ExperimentConfig | None = None) -> Objective:
    """The objective (backbone, heads, terms) of the run folder at ``path`` with its latest weights."""
    run = RunFolder.open(path)
    config = config or ExperimentConfig.from_dict(run.config)
    weights, _ = run.load_checkpoint()
    classes = {name: _head_classes(weights, name) for name in config.model.heads}
    objective = build_objective(config.model, _stream_classes(config, classes))
    objective.load_state_dict(weights)
    return objective.eval()


def whole_backbone(path: str | Path) -> torch.nn.Module:
    """The backbone of the run folder at ``path`` as it reads images: a trained tail (:mod:`lrfr.models.tail`)
    is put back on the whole backbone of the run it was fine-tuned from (``model.pretrained``, recursively)."""
    from lrfr.models.tail import BackboneTail, with_tail

    backbone = load_model(path).backbone
    if isinstance(backbone, BackboneTail):
        source = RunFolder.open(path).config["model"].get("pretrained")
        if not source:
            raise ValueError(f"run {path} trained a backbone tail but names no pretrained run to put it back on")
        backbone = with_tail(whole_backbone(source), backbone)
    return backbone.eval()


CLASS_WEIGHTS = ("weight", "classifier.weight")  # (classes, D): cosine heads' prototypes, softmax heads' linear layer


def _head_classes(weights: dict[str, torch.Tensor], head: str) -> int:
    keys = [f"heads.{head}.{name}" for name in CLASS_WEIGHTS]
    found = next((key for key in keys if key in weights), None)
    if found is None:
        raise ValueError(f"checkpoint has none of {keys}; expected a head with a (classes, D) weight")
    return int(weights[found].shape[0])


def _stream_classes(config: ExperimentConfig, classes: dict[str, int]) -> dict[str, int]:
    """Number of classes per data stream, as the heads sized by a stream name recorded them."""
    return {spec.num_classes: classes[name] for name, spec in config.model.heads.items() if isinstance(spec.num_classes, str)}


def native_heights(records: Sequence[FaceRecord]) -> np.ndarray:
    """(N,) stored image height in pixels of each record (TinyFace keeps native sizes)."""
    return np.array([image_size(record.path)[0] for record in records], dtype=np.int64)
