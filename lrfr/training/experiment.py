"""Run one experiment from its config: the single entry point for notebooks, ``lrfr train`` and torchrun."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from lrfr.data import DATASETS
from lrfr.data.transforms import TRANSFORMS, TransformedDataset
from lrfr.runs import RunFolder
from lrfr.training.config import ExperimentConfig
from lrfr.training.distributed import ProcessInfo, barrier, init_process, shutdown
from lrfr.training.objective import Objective, build_objective
from lrfr.training.rng import seed_everything
from lrfr.training.trainer import Trainer
from lrfr.training.validation import load_verification_sets


def build_datasets(config: ExperimentConfig) -> dict[str, Dataset]:
    """Instantiate every data stream named in the config (the first one sets the epoch length), each
    wrapped by its training transforms (seeded by the run's seed) when it has any."""
    if not config.data:
        raise ValueError("the experiment config names no data streams (config.data is empty)")
    datasets = {}
    for name, spec in config.data.items():
        dataset = DATASETS.build(spec.name, **spec.kwargs)
        if spec.transforms:
            transforms = [TRANSFORMS.build(t.name, **t.kwargs) for t in spec.transforms]
            dataset = TransformedDataset(dataset, transforms, seed=config.train.seed)
        datasets[name] = dataset
    return datasets


def classes_per_stream(datasets: dict[str, Dataset]) -> dict[str, int]:
    return {name: int(ds.num_classes) for name, ds in datasets.items() if hasattr(ds, "num_classes")}


def open_run(config: ExperimentConfig, root: str | Path, process: ProcessInfo) -> RunFolder:
    """Create (or reopen, to resume) the run folder on the main process; the others open it."""
    if process.is_main:
        RunFolder.create(root, config.name, config.record(), seed=config.train.seed, exist_ok=True)
    barrier(process)
    return RunFolder.open(Path(root) / config.name)


def run_experiment(config: ExperimentConfig, root: str | Path, resume: bool = True) -> tuple[RunFolder, Objective]:
    """Seed, build data, validation sets and model, train (resuming if a checkpoint exists); return the run
    and model. Everything is read and built before the run folder is written."""
    process, _ = init_process(config.train.device)
    seed_everything(config.train.seed)
    datasets = build_datasets(config)
    validation_sets = load_verification_sets(config.train.validation)
    objective = build_objective(config.model, classes_per_stream(datasets))
    run = open_run(config, root, process)
    Trainer(config.train, objective, datasets, run, validation_sets).fit(resume=resume)
    shutdown(process)
    return run, objective
