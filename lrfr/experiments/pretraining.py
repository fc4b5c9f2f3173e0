"""The book's shared HR pre-training: one ArcFace backbone trained on the HR identity set, cached by its
configuration and reused by every chapter and every later build.

Chai et al. (2023, Sec. 4) start from a VGGFace2-pre-trained backbone, Cheng et al. (2018, Sec. 5.1) from
CelebA; the book stands in with ArcFace on ``<data_root>/<folder>`` (SynthFace's ``hr/`` in smoke and quick
mode, CASIA-WebFace as insightface distributes it in full mode). A chapter asks for a preset by name::

    run, model = pretrained_backbone(data_root, results_root, "quick", seed=seed)

and gets the run folder ``results_root/pretrain-<backbone>-<hash>`` (trained on first use, loaded after; the
hash covers every setting and the synthetic data's version, :func:`lrfr.experiments.workflow.cached_run`).

Quick mode's design (issue 11): a resolution study needs an input well above its smallest probe, so the
quick backbone reads 64-px faces (probes of 32 px and below lose detail the model has learned to use); the
training budget on a 2-core CPU is about 10 minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lrfr.experiments.workflow import cached_run
from lrfr.runs import RunFolder
from lrfr.training.config import DataSpec, ExperimentConfig, HeadSpec, ModelSpec, OptimizerConfig, ScheduleConfig, TrainConfig
from lrfr.training.objective import Objective


@dataclass(frozen=True)
class Pretraining:
    """One pre-training preset: the backbone, its input, the HR set and the ArcFace schedule (SGD, lr divided
    by 10 at 60 % and 85 % of the epochs)."""

    backbone: str = "quick"
    input_size: int = 64
    embedding_size: int = 128
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. the quick backbone's widths
    dataset: str = "folder"  # DATASETS factory: "folder" (folder per identity) or "recordio" (insightface)
    folder: str = "hr"  # the HR identity set under the data root
    keep_in_memory: bool = True  # decode each image once (small sets read for many epochs)
    epochs: int = 8
    batch_size: int = 128
    lr: float = 0.1
    head: str = "arcface"
    num_workers: int = 0


PRESETS: dict[str, Pretraining] = {
    "smoke": Pretraining(input_size=32, embedding_size=16, backbone_kwargs={"widths": [8, 16, 32], "blocks": [1, 1, 1]},
                         epochs=1, batch_size=8),
    "quick": Pretraining(input_size=64, embedding_size=128, epochs=12, batch_size=128, lr=0.1),
    "full": Pretraining(backbone="iresnet50", input_size=112, embedding_size=512, dataset="recordio",
                        folder="casia_webface", keep_in_memory=False, epochs=24, num_workers=8),
}


def preset(name: str | Pretraining, **overrides: Any) -> Pretraining:
    """The preset ``name`` (one of :data:`PRESETS`, or a :class:`Pretraining` as is) with ``overrides``."""
    if isinstance(name, Pretraining):
        return replace(name, **overrides)
    if name not in PRESETS:
        raise ValueError(f"unknown pre-training preset {name!r}; expected one of {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)


def pretrain_config(data_root: str | Path, setting: Pretraining, seed: int = 0) -> ExperimentConfig:
    """The ExperimentConfig of ``setting`` on ``<data_root>/<setting.folder>`` (named ``pretrain-<backbone>``)."""
    epochs = setting.epochs
    milestones = sorted({max(1, round(epochs * 0.6)), max(1, round(epochs * 0.85))})
    kwargs = {"root": str(Path(data_root) / setting.folder), "input_size": setting.input_size}
    data = (DataSpec("in_memory", {"dataset": setting.dataset, **kwargs}) if setting.keep_in_memory
            else DataSpec(setting.dataset, kwargs))
    return ExperimentConfig(
        name=f"pretrain-{setting.backbone}",
        train=TrainConfig(
            seed=seed, epochs=epochs, batch_size=setting.batch_size, num_workers=setting.num_workers,
            optimizer=OptimizerConfig(lr=setting.lr), schedule=ScheduleConfig(name="multistep", milestones=milestones),
        ),
        model=ModelSpec(
            backbone=setting.backbone,
            backbone_kwargs={"input_size": setting.input_size, "embedding_size": setting.embedding_size,
                             **setting.backbone_kwargs},
            heads={"main": HeadSpec(kind=setting.head)},
        ),
        data={"main": data},
    )


def pretrained_backbone(data_root: str | Path, results_root: str | Path, name: str | Pretraining = "quick",
                        seed: int = 0, **overrides: Any) -> tuple[RunFolder, Objective]:
    """The shared pre-trained backbone of preset ``name`` (with ``overrides``): its run folder and model (eval
    mode), trained in ``results_root`` on first use and loaded from there afterwards."""
    return cached_run(pretrain_config(data_root, preset(name, **overrides), seed), results_root)
