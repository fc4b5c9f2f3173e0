"""Chapter 3: Ling et al. 2023 -- multi-resolution augmentation (MAug) and the LogExp feature loss.

Every trained model of the chapter is one :class:`Method` (a resolution augmentation, or none for the
HR-only baseline, and a feature distance, or none) trained in one :class:`Setting`:

* :func:`total_loss_terms` is the total loss (Sec. 3.3, Eq. 7-8) as composed loss terms of
  :mod:`lrfr.training`: ``lambda * L_dist(f_HR / ||f_HR||, f_LR / ||f_LR||) + 1/2 L_cls(f_HR) +
  1/2 L_cls(f_LR)`` with CosFace (s = 48, m = 0.4) as ``L_cls``; the HR and LR views come from one
  paired data stream (:class:`lrfr.data.resolution.PairedResolution`), so both go through the one
  backbone in the same step. Without a distance (Table 4's "Aug", "MAug" rows) the two halves of the
  classification loss remain; without an augmentation (the baseline) it is plain CosFace on HR faces.
* :data:`PAPER_SETTINGS` are Sec. 4.1's two training settings (ResNet-34 on CASIA-WebFace, ResNet-50
  on MS1M) as parameters; the book's quick mode instead fine-tunes the shared HR pre-training
  (``Setting.pretrained``) for a short schedule on the synthetic HR set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrfr.training.config import (
    DataSpec, ExperimentConfig, HeadSpec, ModelSpec, OptimizerConfig, ScheduleConfig, TermSpec, TrainConfig,
)

COSFACE = {"scale": 48.0, "margin": 0.4}  # Sec. 4.1: "The s in CosFace loss is set to 48 and m is set to 0.4"
DISTANCES = ("lp", "logexp", "logexp_batch", "smooth_l1")


def total_loss_terms(
    distance: str | None = "logexp", p: float = 1.0, lam: float = 1.0, *, stream: str = "main", head: str = "main"
) -> list[TermSpec]:
    """Eq. 7-8: ``lam * L_dist`` on the L2-normalised HR and LR embeddings of ``stream`` (``<stream>.hr``,
    ``<stream>.lr``) plus ``1/2 L_cls`` of each view with the classification head ``head``.

    ``distance`` is a name of :data:`lrfr.losses.FEATURE_DISTANCES` (``"logexp"``: Eq. 5; ``"lp"``: the
    L1 / L2 of Eq. 1-2; ``"logexp_batch"``: the public code's variant) with exponent ``p``, or None
    (no distance term: the "Aug" / "MAug" rows of Table 4)."""
    labels = f"{stream}.label"
    terms = [
        TermSpec("cls_hr", "classification", 0.5, {"head": head, "input": f"{stream}.hr", "labels": labels}),
        TermSpec("cls_lr", "classification", 0.5, {"head": head, "input": f"{stream}.lr", "labels": labels}),
    ]
    if distance is not None and lam > 0:
        if distance not in DISTANCES:
            raise ValueError(f"distance {distance!r} is not one of Ling et al.'s; expected one of {DISTANCES} or None")
        kwargs = {"beta": 1.0} if distance == "smooth_l1" else {"p": float(p)}
        terms.append(TermSpec("dist", "feature_distance", float(lam), {
            "a": f"{stream}.hr", "b": f"{stream}.lr", "distance": distance, "distance_kwargs": kwargs, "normalize": True,
        }))
    return terms


@dataclass(frozen=True)
class Method:
    """One trained model: ``augmentation`` (a :func:`lrfr.data.resolution.resolution_augmentation` spec,
    None = HR faces only) and the feature ``distance`` with exponent ``p`` and weight ``lam`` (None = none)."""

    augmentation: str | dict[str, Any] | None = None
    distance: str | None = None
    p: float = 1.0
    lam: float = 1.0

    def __post_init__(self) -> None:
        if self.augmentation is None and self.distance is not None:
            raise ValueError("a feature distance needs LR copies: give the method a resolution augmentation")


def table4_methods() -> dict[str, Method]:
    """Table 4's rows in the paper's order ("Ours(x)" = LogExp with p = x; Baseline: the HR model)."""
    return {
        "Baseline": Method(),
        "Aug": Method("aug"),
        "MAug": Method("maug"),
        "PAug+Ours(1)": Method("paug", "logexp", 1.0),
        "Aug+L1": Method("aug", "lp", 1.0),
        "Aug+Ours(1)": Method("aug", "logexp", 1.0),
        "MAug+Ours(1)": Method("maug", "logexp", 1.0),
        "Aug+L2": Method("aug", "lp", 2.0),
        "Aug+Ours(2)": Method("aug", "logexp", 2.0),
        "MAug+Ours(2)": Method("maug", "logexp", 2.0),
    }


def figure_methods() -> dict[str, Method]:
    """The models of Fig. 3a (Single-x and Multi, with LogExp p = 1, Multi = MAug) and Fig. 6-7 (MAug with
    L1, L2, LogExp p = 1, 2) that are not Table 4 rows."""
    return {
        "Single-7": Method({"name": "single", "size": 7}, "logexp", 1.0),
        "Single-14": Method({"name": "single", "size": 14}, "logexp", 1.0),
        "Single-28": Method({"name": "single", "size": 28}, "logexp", 1.0),
        "MAug+L1": Method("maug", "lp", 1.0),
        "MAug+L2": Method("maug", "lp", 2.0),
    }


def ratio_methods() -> dict[str, Method]:
    """Table 6: MAug + LogExp (p = 1) at each 7 : 14 : 20 px ratio, and the public code's 50 / 0 / 50 draw
    (the same distribution as 1 : 0 : 1)."""
    ratios = ("1:1:0", "0:1:1", "1:0:1", "1:1:1", "1:2:1", "2:1:1", "1:1:2")
    methods = {r: Method({"name": "maug", "ratio": [float(x) for x in r.split(":")]}, "logexp", 1.0) for r in ratios}
    return {**methods, "reference code (50/0/50)": Method("maug_reference", "logexp", 1.0)}


def lambda_methods(values: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0)) -> dict[str, Method]:
    """Table 5: MAug + LogExp (p = 1) at each weight lambda of L_dist."""
    return {f"λ = {value:g}": Method("maug", "logexp", 1.0, value) for value in values}


@dataclass(frozen=True)
class Setting:
    """How a method is trained: backbone, data, schedule (Sec. 4.1 defaults: ResNet-34, CASIA-WebFace).

    ``dataset`` / ``folder``: the DATASETS factory and folder (under the data root) of the HR training
    set; ``pretrained``: a run folder to fine-tune from (the backbone, and with ``warm_start_head`` the
    pre-trained head's class prototypes, which need the same identities), or None to train from
    scratch as the paper does. ``batch_size`` is per step and process; the paired stream feeds that
    many HR faces and as many LR copies. ``schedule``: "multistep" (lr / 10 at ``milestones``, the
    paper's) or "poly" (power 2, no warm-up, for short fine-tuning).
    """

    backbone: str = "resnet34"
    input_size: int = 112
    embedding_size: int = 512
    dataset: str = "recordio"
    folder: str = "casia_webface"
    keep_in_memory: bool = False
    pretrained: str | None = None
    warm_start_head: bool = False
    epochs: int = 28
    schedule: str = "multistep"
    milestones: tuple[int, ...] = (16, 24)
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    head_kwargs: dict[str, float] = field(default_factory=lambda: dict(COSFACE))
    seed: int = 0
    num_workers: int = 0


PAPER_SETTINGS: dict[str, Setting] = {
    "resnet34_casia": Setting(),
    "resnet50_ms1m": Setting(backbone="resnet50", folder="ms1m", epochs=16, milestones=(8, 12), lr=0.01),
}
"""Sec. 4.1: SGD, momentum 0.9, weight decay 5e-4, batch 256, 112 x 112 MTCNN-aligned faces; ResNet-34 on
CASIA-WebFace (lr 0.1, 28 epochs, / 10 at 16 and 24) and ResNet-50 on MS1M (lr 0.01, 16 epochs, / 10 at
8 and 12). ``folder`` names insightface's RecordIO release of each set under the data root."""


def method_config(name: str, method: Method, setting: Setting, data_root: str | Path) -> ExperimentConfig:
    """The ExperimentConfig that trains ``method`` in ``setting`` on ``<data_root>/<setting.folder>``."""
    source = {"root": str(Path(data_root) / setting.folder), "input_size": setting.input_size}
    base = {"source": "in_memory", "dataset": setting.dataset, **source} if setting.keep_in_memory else {
        "source": setting.dataset, **source}
    if method.augmentation is None:
        stream = base.pop("source")
        data = DataSpec(stream, base)
        terms = [TermSpec("cls", "classification", 1.0)]
    else:
        data = DataSpec("paired_resolution", {**base, "augmentation": method.augmentation})
        terms = total_loss_terms(method.distance, method.p, method.lam)
    if setting.schedule == "multistep":
        schedule = ScheduleConfig(name="multistep", milestones=list(setting.milestones))
    elif setting.schedule == "poly":
        schedule = ScheduleConfig(name="poly", power=2.0)
    else:
        raise ValueError(f"schedule {setting.schedule!r} is not valid; expected 'multistep' or 'poly'")
    return ExperimentConfig(
        name=name,
        train=TrainConfig(
            seed=setting.seed, epochs=setting.epochs, batch_size=setting.batch_size, num_workers=setting.num_workers,
            optimizer=OptimizerConfig(lr=setting.lr, momentum=setting.momentum, weight_decay=setting.weight_decay),
            schedule=schedule,
        ),
        model=ModelSpec(
            backbone=setting.backbone,
            backbone_kwargs={"input_size": setting.input_size, "embedding_size": setting.embedding_size},
            heads={"main": HeadSpec("cosface", "main", dict(setting.head_kwargs))},
            terms=terms,
            pretrained=setting.pretrained,
            pretrained_modules=["backbone", "heads"] if setting.warm_start_head else ["backbone"],
        ),
        data={"main": data},
    )
