"""Chapter 3: Ling et al. 2023 -- multi-resolution augmentation (MAug) and the LogExp feature loss.

Every trained model of the chapter is one :class:`Method` (a resolution augmentation, or none for the
HR-only baseline, and a feature distance, or none) trained in one :class:`Setting`:

* :func:`total_loss_terms` is the total loss (Sec. 3.3, Eq. 7-8) as composed loss terms of
  :mod:`lrfr.training`: ``lambda * L_dist(f_HR / ||f_HR||, f_LR / ||f_LR||) + 1/2 L_cls(f_HR) +
  1/2 L_cls(f_LR)`` with CosFace (s = 48, m = 0.4) as ``L_cls``; the HR and LR views come from one
  paired data stream (:class:`lrfr.data.lr_pairs.LRPairs` with the augmentation's sizes and weights),
  so both go through the one backbone in the same step. Without a distance (Table 4's "Aug", "MAug" rows) the two halves of the
  classification loss remain; without an augmentation (the baseline) it is plain CosFace on HR faces.
* :data:`PAPER_SETTINGS` are Sec. 4.1's two training settings (ResNet-34 on CASIA-WebFace, ResNet-50
  on MS1M) as parameters; the book's quick mode instead fine-tunes the shared HR pre-training
  (``Setting.pretrained``) for a short schedule on the synthetic HR set, and only its embedding layer
  (``Setting.train_from="head"``, :mod:`lrfr.models.tail`): the paired stream is then the frozen body's
  maps of each face and of its LR copies (the ``feature_pairs`` dataset, :func:`training_features`), and
  the test faces are embedded from their maps too (:class:`lrfr.experiments.frozen_body.FeatureBank`,
  :func:`embedder`), each computed once for every model of the chapter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from lrfr.data import DATASETS
from lrfr.data.base import FaceDataset, FaceRecord
from lrfr.data.loaders import PairSet, SCFaceSet, load_pairs, load_scface
from lrfr import claims, stats
from lrfr.data.resolution import MAUG_SIZES, down_up, lr_pairs_kwargs, resolution_augmentation
from lrfr.experiments.frozen_body import FeatureBank, features_file
from lrfr.losses.feature_distances import logexp_distance, lp_distance, smooth_l1_distance
from lrfr.models import BACKBONES, Backbone
from lrfr.models.tail import BackboneTail, tail_modules, with_tail
from lrfr.protocols.embeddings import extract_embeddings
from lrfr.protocols.fidelity import ssim
from lrfr.protocols.gradient_norm import gradient_norm_by_term
from lrfr.protocols.search import mate_ranks
from lrfr.protocols.verification import kfold_accuracy, pair_scores
from lrfr.references import reference_values
from lrfr.runs import RunFolder
from lrfr.training.config import (
    DataSpec, ExperimentConfig, HeadSpec, ModelSpec, OptimizerConfig, ScheduleConfig, TermSpec, TrainConfig,
    TransformSpec,
)

if TYPE_CHECKING:
    from lrfr.experiments.cheng2018 import Identification

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
    paper's) or "poly" (power 2, no warm-up, for short fine-tuning). ``flip``: the probability of the
    random horizontal flip (Sec. 4.1), one draw per item, so an HR face and its LR copy flip together.
    ``images_per_identity``: train on the first that many images of every identity (the
    ``per_identity`` factory; a short fine-tuning that still covers every class), None for all.
    ``train_from``: None trains the whole backbone on images; ``"head"`` (or a body stage) trains only
    the backbone's tail from there (:mod:`lrfr.models.tail`) on the frozen prefix's maps of each face at
    each size, computed once for all models (:func:`training_features`; no flip: a map of a flipped face
    is not the flipped map). ``freeze_prototypes`` keeps the warm-started head's class prototypes fixed.
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
    flip: float = 0.5
    images_per_identity: int | None = None
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)  # the backbone's other arguments (e.g. widths)
    train_from: str | None = None
    freeze_prototypes: bool = False


PAPER_SETTINGS: dict[str, Setting] = {
    "resnet34_casia": Setting(),
    "resnet50_ms1m": Setting(backbone="resnet50", folder="ms1m", epochs=16, milestones=(8, 12), lr=0.01),
}
"""Sec. 4.1: SGD, momentum 0.9, weight decay 5e-4, batch 256, 112 x 112 MTCNN-aligned faces; ResNet-34 on
CASIA-WebFace (lr 0.1, 28 epochs, / 10 at 16 and 24) and ResNet-50 on MS1M (lr 0.01, 16 epochs, / 10 at
8 and 12). ``folder`` names insightface's RecordIO release of each set under the data root."""


def fine_tuning(run: RunFolder, **settings: Any) -> Setting:
    """A :class:`Setting` that fine-tunes the backbone (and warm-starts the head) of the pre-trained ``run``:
    its backbone with all its arguments, on the same identities; ``settings`` set the rest."""
    spec = run.config["model"]
    kwargs = dict(spec["backbone_kwargs"])
    return Setting(backbone=spec["backbone"], input_size=kwargs.pop("input_size"), embedding_size=kwargs.pop("embedding_size"),
                   backbone_kwargs=kwargs, pretrained=str(run.path), warm_start_head=True, **settings)


def _source(setting: Setting, data_root: str | Path) -> dict[str, Any]:
    """The HR training set's dataset factory and arguments (the ``per_identity`` subset if the setting asks)."""
    source = {"dataset": setting.dataset, "root": str(Path(data_root) / setting.folder), "input_size": setting.input_size}
    if setting.images_per_identity is not None:
        source = {**source, "dataset": "per_identity", "base": setting.dataset, "images": setting.images_per_identity}
    return source


def _schedule(setting: Setting) -> ScheduleConfig:
    if setting.schedule == "multistep":
        return ScheduleConfig(name="multistep", milestones=list(setting.milestones))
    if setting.schedule == "poly":
        return ScheduleConfig(name="poly", power=2.0)
    raise ValueError(f"schedule {setting.schedule!r} is not valid; expected 'multistep' or 'poly'")


def _model(setting: Setting, heads: dict[str, HeadSpec], terms: list[TermSpec], pretrained: str | None,
           warm_start_head: bool) -> ModelSpec:
    """The backbone (or with ``setting.train_from`` its tail) with ``heads`` and ``terms``, loading the
    backbone's (tail's) weights and, with ``warm_start_head``, the heads from ``pretrained``."""
    kwargs = {**setting.backbone_kwargs, "input_size": setting.input_size, "embedding_size": setting.embedding_size}
    if setting.train_from is None:
        backbone, modules = setting.backbone, ["backbone"]
    else:
        kwargs = {"base": setting.backbone, "start": setting.train_from, **kwargs}
        backbone, modules = "tail", [f"backbone.{name}" for name in tail_modules(BACKBONES.build("tail", **kwargs))]
    return ModelSpec(backbone=backbone, backbone_kwargs=kwargs, heads=heads, terms=terms, pretrained=pretrained,
                     pretrained_modules=modules + (["heads"] if warm_start_head else []),
                     freeze=["heads"] if setting.freeze_prototypes and warm_start_head else [])


def _train(setting: Setting, epochs: int, batch_size: int, lr: float, schedule: ScheduleConfig) -> TrainConfig:
    return TrainConfig(seed=setting.seed, epochs=epochs, batch_size=batch_size, num_workers=setting.num_workers,
                       optimizer=OptimizerConfig(lr=lr, momentum=setting.momentum, weight_decay=setting.weight_decay),
                       schedule=schedule)


def method_config(name: str, method: Method, setting: Setting, data_root: str | Path,
                  features: str | Path | None = None) -> ExperimentConfig:
    """The ExperimentConfig that trains ``method`` in ``setting`` on ``<data_root>/<setting.folder>``; with
    ``setting.train_from``, on the prefix maps of that set in the ``features`` file (:func:`training_features`)."""
    augmented = method.augmentation is not None
    terms = total_loss_terms(method.distance, method.p, method.lam) if augmented else [TermSpec("cls", "classification", 1.0)]
    if setting.train_from is not None:
        if features is None:
            raise ValueError(f"setting.train_from={setting.train_from!r} trains on prefix maps: pass their features file")
        data = DataSpec("feature_pairs", {"path": str(features), **(lr_pairs_kwargs(method.augmentation) if augmented else {})})
    elif augmented:
        data = DataSpec("lr_pairs", {**_source(setting, data_root), "keep_in_memory": setting.keep_in_memory,
                                     **lr_pairs_kwargs(method.augmentation)})
    else:
        source = _source(setting, data_root)
        base = source.pop("dataset")
        data = DataSpec("in_memory", {"dataset": base, **source}) if setting.keep_in_memory else DataSpec(base, source)
    if setting.flip > 0 and setting.train_from is None:
        data.transforms.append(TransformSpec("hflip", {"p": setting.flip, "keys": ["hr", "lr"] if augmented else ["image"]}))
    return ExperimentConfig(
        name=name,
        train=_train(setting, setting.epochs, setting.batch_size, setting.lr, _schedule(setting)),
        model=_model(setting, {"main": HeadSpec("cosface", "main", dict(setting.head_kwargs))}, terms,
                     setting.pretrained, setting.warm_start_head),
        data={"main": data},
    )


FEATURES_NAME = "c3-features"  # the chapter's prefix-map files: results/c3-features-<hash>/


def training_sizes(methods: dict[str, Method]) -> list[int]:
    """Every LR size some method draws (the sizes :func:`training_features` must hold)."""
    sizes = {s for m in methods.values() if m.augmentation is not None for s in resolution_augmentation(m.augmentation).sizes}
    return sorted(sizes)


def training_features(setting: Setting, prefix: nn.Module, data_root: str | Path, results_root: str | Path,
                      sizes: Sequence[int]) -> Path:
    """The features file of the setting's HR training set through ``prefix`` (the frozen start of the
    pre-trained backbone up to ``setting.train_from``) at the HR size and each of ``sizes``."""
    if setting.pretrained is None or setting.train_from is None:
        raise ValueError("training features need a setting that fine-tunes a pre-trained run's tail (pretrained, train_from)")
    identity = {"run": Path(setting.pretrained).name, "start": setting.train_from}
    return features_file(prefix, identity, _source(setting, data_root), sizes, results_root, FEATURES_NAME)


Embed = Callable[[Sequence[FaceRecord], "int | None"], np.ndarray]
"""``(records, size) -> (N, D)`` unit embeddings of the faces at ``size`` px (None: as stored)."""


def embedder(backbone: nn.Module, bank: FeatureBank | None = None, batch_size: int = 256) -> Embed:
    """How a trained model embeds faces: a whole backbone reads the images (:func:`embed_at`), a tail
    (:class:`lrfr.models.tail.BackboneTail`) the prefix maps of ``bank``."""
    if isinstance(backbone, BackboneTail):
        if bank is None:
            raise ValueError("a backbone tail embeds prefix maps: pass the FeatureBank of its prefix")
        return partial(bank.embed, backbone)
    return partial(embed_at, backbone, batch_size=batch_size)


def whole_model(objective: nn.Module, pretrained: Backbone | None) -> nn.Module:
    """The trained ``objective`` with its whole network: a tail is put back on the ``pretrained`` backbone
    it was cut from (Fig. 3b's gradient norm is over all parameters); a whole backbone is returned as is."""
    if not isinstance(objective.backbone, BackboneTail):
        return objective
    if pretrained is None:
        raise ValueError("the model is a backbone tail: pass the pre-trained backbone it was cut from")
    whole = nn.Module()
    whole.backbone, whole.heads = with_tail(pretrained, objective.backbone), objective.heads
    return whole.eval()


def term_gradient_norms(run: RunFolder, objective: nn.Module, count: int, seed: int = 0) -> dict[str, float]:
    """How hard each weighted term of Eq. 8 pulls on the trained parameters of the backbone: the L2 norm
    of each term's gradient (:func:`lrfr.protocols.gradient_norm.gradient_norm_by_term`) on the first
    ``count`` items of the run's own training stream (its augmentation drawn with ``seed``)."""
    from lrfr.training.experiment import build_datasets
    from lrfr.training.config import ExperimentConfig

    torch.manual_seed(seed)
    stream = build_datasets(ExperimentConfig.from_dict(run.config))["main"]
    items = next(iter(DataLoader(stream, batch_size=min(count, len(stream)))))
    return gradient_norm_by_term(objective, {f"main.{key}": value for key, value in items.items()})


def term_norms_table(norms: dict[str, dict[str, float]]) -> str:
    """A markdown table of :func:`term_gradient_norms` by model (rows) and term (columns)."""
    terms = sorted({term for values in norms.values() for term in values})
    lines = ["| model | " + " | ".join(terms) + " |", "|---|" + "---:|" * len(terms)]
    lines += [f"| {row} | " + " | ".join(f"{values[t]:.3g}" if t in values else "–" for t in terms) + " |" for row, values in norms.items()]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- evaluation

HR_SIZE = 112  # the aligned crop the paper's sizes refer to
SWEEP_SIZES = (7, 10, 14, 20, 28, 42, 56, HR_SIZE)  # Fig. 3a's resolutions (7 ... 112 px)
ERROR_SIZES = MAUG_SIZES  # the LR copies whose HR/LR errors Fig. 6 measures: MAug's 7, 14 and 20 px


@dataclass(frozen=True)
class TestSets:
    """The chapter's test sets, read by the real loaders: LFW and XQLFW pairs (10 folds) and SCface."""

    lfw: PairSet
    xqlfw: PairSet
    scface: SCFaceSet


def load_test_sets(data_root: str | Path) -> TestSets:
    """``<data_root>/lfw``, ``<data_root>/xqlfw`` and ``<data_root>/scface`` (real or synthetic)."""
    root = Path(data_root)
    return TestSets(load_pairs(root / "lfw"), load_pairs(root / "xqlfw", "XQLFW"), load_scface(root / "scface"))


def embed_at(backbone: nn.Module, records: Sequence[FaceRecord], size: int | None = None,
             batch_size: int = 256) -> np.ndarray:
    """(N, D) unit embeddings of ``records`` at the model input, each image first bicubic-down-sampled to
    ``size`` px and back up (:func:`lrfr.data.resolution.down_up`; None or a size at or above the input:
    the image as it is)."""
    transform = None if size is None else partial(down_up, size=size)
    dataset = FaceDataset(records, backbone.input_size, transform)
    return extract_embeddings(backbone, dataset, batch_size=batch_size, progress=False).embeddings


@dataclass(frozen=True)
class PairOutcomes:
    """One pair set under one model: cosine ``scores``, ``is_same``, ``correct`` at the 10-fold threshold
    (the LFW protocol) and ``units``, the identity of each pair's first image (the bootstrap unit)."""

    scores: np.ndarray
    is_same: np.ndarray
    correct: np.ndarray
    units: np.ndarray

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())


def pair_outcomes(pairs: PairSet, first: np.ndarray, second: np.ndarray | None = None) -> PairOutcomes:
    """Outcomes of ``pairs`` with ``first`` (N, D) embedding each pair's first image and ``second`` (default
    ``first``) its second image (e.g. the same faces at a lower resolution)."""
    second = first if second is None else second
    scores = pair_scores(first[pairs.pairs[:, 0]], second[pairs.pairs[:, 1]])
    result = kfold_accuracy(scores, pairs.is_same, folds=pairs.folds)
    ids = np.unique(pairs.folds)
    thresholds = result.thresholds[np.searchsorted(ids, pairs.folds)]
    correct = (scores >= thresholds) == pairs.is_same
    units = np.array([pairs.records[i].label for i in pairs.pairs[:, 0]], dtype=np.int64)
    return PairOutcomes(scores, pairs.is_same.copy(), correct, units)


@dataclass(frozen=True)
class RankOutcomes:
    """Rank-1 ``hits`` (Q,) of probes searched in a gallery, with each probe's identity as ``units``."""

    hits: np.ndarray
    units: np.ndarray

    @property
    def rate(self) -> float:
        return float(self.hits.mean())


def scface_rank1(embed: Embed, scface: SCFaceSet) -> dict[str, RankOutcomes]:
    """SCface without fine-tuning (Table 1 "w/o FT", Table 4): each distance's probes (all cameras) against
    the HR mugshots, rank-1 per probe; keys ``d1``, ``d2``, ``d3``. ``embed``: see :func:`embedder`."""
    gallery = embed(scface.mugshots, None)
    probes = embed(scface.probes, None)
    labels = np.array([r.label for r in scface.probes], dtype=np.int64)
    distances = np.array([r.metadata["distance"] for r in scface.probes])
    outcomes = {}
    for distance in sorted(set(distances.tolist())):
        chosen = distances == distance
        found = mate_ranks(probes[chosen], gallery, labels[chosen], [r.label for r in scface.mugshots])
        hits = np.zeros(chosen.sum())
        hits[found.probe_indices] = found.first_ranks == 1
        outcomes[f"d{distance}"] = RankOutcomes(hits, labels[chosen])
    return outcomes


def hr_lr_errors(hr: np.ndarray, lr: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Fig. 6: |f_HR - f_LR| of L2-normalised embeddings of the same faces, for each LR copy set in ``lr``.
    Returns the (N,) mean error of each face (over dimensions and LR sizes) and the (D,) mean error of each
    dimension (over faces and LR sizes; Fig. 6 plots their distribution)."""
    errors = np.stack([np.abs(hr - low) for low in lr])  # (sizes, N, D)
    return errors.mean(axis=(0, 2)), errors.mean(axis=(0, 1))


def derivative_curves(errors: np.ndarray, dims: int = 512, remainder: float = 0.0, p: float = 1.0) -> dict[str, np.ndarray]:
    """Fig. 4: D times the first derivative ``dL/dx_1`` of L1, L2 (Eq. 1-2), smooth L1 and LogExp (Eq. 3-5),
    taken by autograd from the implemented losses at ``x = (e, r, 0, ..., 0)``, ``y = 0`` for each error
    ``e`` in ``errors``; the second error ``r = log(1 + remainder)`` makes Eq. 6's remainder
    ``C = sum_{j != 1}(exp(|x_j - y_j|) - 1)`` equal ``remainder`` (for p = 1)."""
    x = torch.zeros(len(errors), dims, dtype=torch.float64)
    x[:, 0] = torch.as_tensor(errors, dtype=torch.float64)
    x[:, 1] = math.log1p(remainder)
    y = torch.zeros_like(x)
    distances = {
        "L1": lambda a: lp_distance(a, y, 1.0), "L2": lambda a: lp_distance(a, y, 2.0),
        "smooth L1": lambda a: smooth_l1_distance(a, y), f"LogExp (p = {p:g})": lambda a: logexp_distance(a, y, p),
    }
    return {name: dims * torch.func.grad(lambda a, f=f: f(a).sum())(x)[:, 0].numpy() for name, f in distances.items()}


RESOLUTION_SET = "resolutions"


def save_resolution_set(run: RunFolder, records: Sequence[FaceRecord], embeddings: dict[int, np.ndarray],
                        hr_size: int = HR_SIZE) -> Path:
    """Write the dashboard's embedding set ``resolutions``: the same faces at HR and at every LR size of
    ``embeddings`` (size -> (N, D), ``hr_size`` the HR copies), with ``native_height`` = the face size in
    px (the dashboard colours by it), ``split`` = "gallery" for the HR copies and "probe" for the LR
    ones (so the dashboard scores LR probes against their HR faces) and ``path``."""
    if hr_size not in embeddings:
        raise ValueError(f"embeddings has sizes {sorted(embeddings)}; expected the HR size {hr_size} among them")
    sizes = sorted(embeddings, reverse=True)
    labels = np.concatenate([[r.label for r in records]] * len(sizes))
    metadata = {
        "path": np.array([str(r.path) for r in records] * len(sizes)),
        "split": np.repeat(["gallery" if s == hr_size else "probe" for s in sizes], len(records)),
        "native_height": np.repeat(sizes, len(records)),
    }
    return run.save_embeddings(RESOLUTION_SET, np.concatenate([embeddings[s] for s in sizes]), labels, metadata)


@dataclass(frozen=True)
class RowEvaluation:
    """One trained model on the chapter's test sets.

    ``lfw`` / ``xqlfw``: the pair sets as stored (HR-HR, and XQLFW's HR-LR pairs); ``scface``: rank-1 per
    distance without fine-tuning; ``lfw_at``: the LFW pairs with the second image at each LR size
    (Fig. 3a: one side HR, the other down-sampled, as XQLFW builds its pairs); ``errors`` (N,) and
    ``dim_errors`` (D,): Fig. 6's HR/LR errors over the LFW faces at the ERROR_SIZES evaluated;
    ``lfw_embeddings``: the LFW faces' unit embeddings, HR under ``HR_SIZE`` and each LR size.
    """

    lfw: PairOutcomes
    xqlfw: PairOutcomes
    scface: dict[str, RankOutcomes]
    lfw_at: dict[int, PairOutcomes]
    errors: np.ndarray | None
    dim_errors: np.ndarray | None
    lfw_embeddings: dict[int, np.ndarray]


def evaluate_row(embed: Embed, tests: TestSets, lr_sizes: Sequence[int] = ()) -> RowEvaluation:
    """Embed (:func:`embedder`) and score ``tests``; the LFW faces also at each of ``lr_sizes`` (see RowEvaluation)."""
    lfw = {HR_SIZE: embed(tests.lfw.records, None)}
    for size in sorted(set(lr_sizes) - {HR_SIZE}):
        lfw[size] = embed(tests.lfw.records, size)
    error_sizes = [size for size in ERROR_SIZES if size in lfw]
    errors, dim_errors = hr_lr_errors(lfw[HR_SIZE], [lfw[s] for s in error_sizes]) if error_sizes else (None, None)
    return RowEvaluation(
        lfw=pair_outcomes(tests.lfw, lfw[HR_SIZE]),
        xqlfw=pair_outcomes(tests.xqlfw, embed(tests.xqlfw.records, None)),
        scface=scface_rank1(embed, tests.scface),
        lfw_at={size: pair_outcomes(tests.lfw, lfw[HR_SIZE], lfw[size]) for size in lfw},
        errors=errors, dim_errors=dim_errors, lfw_embeddings=lfw,
    )


# ----------------------------------------------------------------------------- the chapter's models


@dataclass(frozen=True)
class ChapterPlan:
    """The rows the chapter trains, by name: Table 4 rows (:func:`table4_methods`), the Fig. 3a / 6 models
    (:func:`figure_methods`), Table 6 ratios (:func:`ratio_methods`) and Table 5 weights ``lambdas``."""

    table4: tuple[str, ...] = tuple(table4_methods())
    figures: tuple[str, ...] = tuple(figure_methods())
    ratios: tuple[str, ...] = tuple(ratio_methods())
    lambdas: tuple[float, ...] = (1.0, 5.0)


def chapter_methods(plan: ChapterPlan) -> dict[str, Method]:
    """Every row of ``plan`` by its display name (Table 4's rows first)."""
    rows: dict[str, Method] = {}
    for wanted, available in ((plan.table4, table4_methods()), (plan.figures, figure_methods()),
                              (plan.ratios, ratio_methods())):
        unknown = [name for name in wanted if name not in available]
        if unknown:
            raise ValueError(f"rows {unknown} are not rows of this kind; expected names among {list(available)}")
        rows.update({name: available[name] for name in wanted})
    return {**rows, **lambda_methods(tuple(plan.lambdas))}


def method_key(method: Method) -> tuple:
    """What a method trains: its LR sizes with their probabilities (None: HR only) and, with a distance,
    the distance, p and lambda. Two rows with one key are one model (e.g. Table 6's "1:1:2" is Table 4's
    "MAug+Ours(1)", and the reference code's 50/0/50 draw is Table 6's "1:0:1")."""
    if method.augmentation is None:
        return (None,)
    augmentation = resolution_augmentation(method.augmentation)
    drawn = tuple((s, round(p, 9)) for s, p in zip(augmentation.sizes, augmentation.probabilities) if p > 0)
    distance = (method.distance, float(method.p), float(method.lam)) if method.distance is not None else None
    return (drawn, distance)


def distinct_methods(rows: dict[str, Method]) -> tuple[dict[str, Method], dict[str, str]]:
    """The models to train (the first row of each :func:`method_key`) and every row's model name."""
    models: dict[tuple, str] = {}
    owner = {}
    for name, method in rows.items():
        owner[name] = models.setdefault(method_key(method), name)
    return {name: rows[name] for name in models.values()}, owner


def run_name(row: str) -> str:
    """A run-folder name for a row: ``c3-`` and the row's name in lower-case letters, digits and dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", row.replace("λ", "lambda").replace("+", " plus ").lower()).strip("-")
    return f"c3-{slug}"


# ----------------------------------------------------------------------------- statistics and claims

LR_BAND = MAUG_SIZES  # the LR sizes (7, 14, 20 px) whose mean LFW accuracy compares Fig. 3a's models below 28 px
TEST_SETS = ("LFW", "XQLFW", "SCface", "LFW faces", "SCface test", "TinyFace")


def _column_test(column: str) -> str:
    if column in ("d1", "d2", "d3", "Avg"):
        return "SCface test"  # Table 1: the subjects that do not fine-tune
    if column == "TinyFace":
        return "TinyFace"
    if column.startswith("SCface"):
        return "SCface"
    if column == ERROR_COLUMN:
        return "LFW faces"
    return "XQLFW" if column == "XQLFW" else "LFW"


ERROR_COLUMN = "HR/LR error"


def lfw_column(size: int) -> str:
    """The column of LFW accuracy with the second face at ``size`` px (``"LFW"`` itself at HR)."""
    return "LFW" if size >= HR_SIZE else f"LFW {size} px"


def _share(values: np.ndarray, chosen: np.ndarray, scale: float) -> stats.Statistic:
    """The weighted mean of ``values`` over the ``chosen`` items only (as a statistic over all items)."""
    chosen = chosen.astype(np.float64)
    return stats.mean(values * chosen, scale) / stats.mean(chosen)


def row_statistics(row: RowEvaluation) -> dict[tuple[str, str], stats.Statistic]:
    """``(column, metric) -> statistic`` of one evaluated model, in points (%), over the items of its test
    set (:func:`bootstrap_units`): Table 4's columns (SCface d1-d3 and their average, XQLFW, LFW), LFW with the
    second face at each evaluated size, their mean over :data:`LR_BAND`, and Fig. 6's mean HR/LR error."""
    out = {("XQLFW", "Accuracy"): stats.mean(row.xqlfw.correct, 100), ("LFW", "Accuracy"): stats.mean(row.lfw.correct, 100)}
    out.update({(f"SCface {column}", metric): s for (column, metric), s in scface_statistics(row.scface).items()})
    out.update({(lfw_column(size), "Accuracy"): stats.mean(o.correct, 100) for size, o in row.lfw_at.items() if size < HR_SIZE})
    if all(size in row.lfw_at for size in LR_BAND):
        band = [stats.mean(row.lfw_at[size].correct, 100) for size in LR_BAND]
        out[("LFW 7-20 px", "Accuracy")] = sum(band[1:], band[0]) / len(band)
    if row.errors is not None:
        out[(ERROR_COLUMN, "mean |f_HR − f_LR|")] = stats.mean(row.errors)
    return out


def bootstrap_units(row: RowEvaluation, lfw_labels: np.ndarray) -> dict[str, np.ndarray]:
    """The bootstrap unit (identity) of every item of each test set: LFW / XQLFW pairs (the first face's
    identity), SCface probes (d1, d2, d3 in order) and the LFW faces (``lfw_labels``, Fig. 6's errors)."""
    return {"LFW": row.lfw.units, "XQLFW": row.xqlfw.units, "LFW faces": np.asarray(lfw_labels),
            "SCface": np.concatenate([row.scface[d].units for d in sorted(row.scface)])}


def estimate_rows(statistics: dict[str, dict[tuple[str, str], stats.Statistic]],
                  boots: dict[str, stats.Bootstrap]) -> dict[str, dict[tuple[str, str], stats.Estimate]]:
    """Every statistic of every row with its 95 % interval from its test set's identity bootstrap."""
    return {row: {key: boots[_column_test(key[0])].estimate(s) for key, s in table.items()}
            for row, table in statistics.items()}


Cell = tuple[str, str, str]  # (row, column, metric)
_XQ, _ACC, _R1, _ERR = "XQLFW", "Accuracy", "Rank-1", "mean |f_HR − f_LR|"
_BAND = "LFW 7-20 px"

CLAIM_CELLS: dict[str, tuple[Cell, Cell]] = {
    "ling2023.hr_flat_to_28px": (("Baseline", "LFW 28 px", _ACC), ("Baseline", "LFW", _ACC)),
    "ling2023.hr_collapses_below_20px": (("Baseline", "LFW 14 px", _ACC), ("Baseline", "LFW 28 px", _ACC)),
    "ling2023.ours_beats_baseline_xqlfw": (("MAug+Ours(1)", _XQ, _ACC), ("Baseline", _XQ, _ACC)),
    "ling2023.ours_beats_baseline_scface_d1": (("MAug+Ours(1)", "SCface d1", _R1), ("Baseline", "SCface d1", _R1)),
    "ling2023.maug_beats_aug": (("MAug", _XQ, _ACC), ("Aug", _XQ, _ACC)),
    "ling2023.maug_beats_paug": (("MAug+Ours(1)", _XQ, _ACC), ("PAug+Ours(1)", _XQ, _ACC)),
    "ling2023.maug_beats_paug_scface": (("MAug+Ours(1)", "SCface Avg", _R1), ("PAug+Ours(1)", "SCface Avg", _R1)),
    "ling2023.multi_beats_single": (("MAug+Ours(1)", _BAND, _ACC), ("Single-14", _BAND, _ACC)),
    "ling2023.logexp_beats_maug_alone": (("MAug+Ours(1)", _XQ, _ACC), ("MAug", _XQ, _ACC)),
    "ling2023.logexp_beats_maug_alone_scface": (("MAug+Ours(1)", "SCface Avg", _R1), ("MAug", "SCface Avg", _R1)),
    "ling2023.logexp_costs_little_hr": (("MAug+Ours(1)", "LFW", _ACC), ("MAug", "LFW", _ACC)),
    "ling2023.logexp_beats_l1": (("Aug+Ours(1)", _XQ, _ACC), ("Aug+L1", _XQ, _ACC)),
    "ling2023.logexp_beats_l2": (("Aug+Ours(2)", _XQ, _ACC), ("Aug+L2", _XQ, _ACC)),
    "ling2023.logexp_smaller_errors_l1": (("MAug+Ours(1)", ERROR_COLUMN, _ERR), ("MAug+L1", ERROR_COLUMN, _ERR)),
    "ling2023.logexp_smaller_errors_l2": (("MAug+Ours(2)", ERROR_COLUMN, _ERR), ("MAug+L2", ERROR_COLUMN, _ERR)),
    "ling2023.ratio_beats_reference_code": (("1:1:2", _XQ, _ACC), ("reference code (50/0/50)", _XQ, _ACC)),
    "ling2023.finetuning_helps_scface": (("Ours(Res34)", "Avg", _R1), ("Ours(w/o FT)", "Avg", _R1)),
    "ling2023.ours_beats_cosface_tinyface": (("Ours(Res34)", "TinyFace", _R1), ("CosFace(Res34)", "TinyFace", _R1)),
}
"""How this chapter computes each of its claims (``lrfr/references/claims.csv``): the difference of two
cells of our results, ``(row, column, metric)``, on one test set, so the difference is paired."""


def decidable_claims(statistics: dict[str, dict[tuple[str, str], stats.Statistic]]) -> list[str]:
    """The ids of :data:`CLAIM_CELLS` whose two cells this run computed (a plan may leave rows out)."""
    return [claim_id for claim_id, cells in CLAIM_CELLS.items()
            if all(tuple(key) in statistics.get(row, {}) for row, *key in cells)]


def decide_claims(statistics: dict[str, dict[tuple[str, str], stats.Statistic]],
                  boots: dict[str, stats.Bootstrap]) -> list[claims.ClaimResult]:
    """Each decidable claim from the identity bootstrap of its cells' test set: the paired difference
    ``a - b`` with both cells as labelled parts (:func:`lrfr.claims.evaluate`)."""
    results = []
    for claim_id in decidable_claims(statistics):
        (ra, *ka), (rb, *kb) = CLAIM_CELLS[claim_id]
        test = _column_test(ka[0])
        if _column_test(kb[0]) != test:
            raise ValueError(f"claim {claim_id}: cells on two test sets ({test}, {_column_test(kb[0])}); expected one")
        a, b = statistics[ra][tuple(ka)], statistics[rb][tuple(kb)]
        parts = {f"{ra}, {ka[0]}": a, f"{rb}, {kb[0]}": b}
        results.append(claims.evaluate(claim_id, boots[test], a - b, parts=parts))
    return results


def paper_beside_ours(estimates: dict[str, dict[tuple[str, str], stats.Estimate]], table: int, rows: Sequence[str],
                      columns: Sequence[tuple[str, str]], paper_rows: dict[str, str] | None = None,
                      paper_scale: float = 1.0) -> str:
    """A markdown table: for each row and column, Ling et al.'s printed value (Table ``table``; a row's
    paper name from ``paper_rows``, default its own) and ours with its 95 % interval. The data differ
    (synthetic faces, a small backbone), so no difference column: compare the rows' order and gaps.
    ``paper_scale`` multiplies the printed values (100 for Table 2's fractions, shown in %)."""
    paper_rows = paper_rows or {}
    cells = {(c.row, c.column, c.metric): c.value for c in reference_values("ling2023", table)}
    names = [column for column, _ in columns]
    names = names if len(set(names)) == len(names) else [f"{column} {metric}" for column, metric in columns]
    head = " | ".join(f"{name} paper | {name} ours" for name in names)
    lines = [f"| method | {head} |", "|---|" + "---:|" * (2 * len(columns))]
    for row in rows:
        values = []
        for column, metric in columns:
            printed = cells.get((paper_rows.get(row, row), column, metric))
            ours = estimates.get(row, {}).get((column, metric))
            values += ["–" if printed is None else f"{printed * paper_scale:.2f}", "–" if ours is None else ours.format(1)]
        lines.append(f"| {row} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def ssim_by_size(records: Sequence[FaceRecord], input_size: int, sizes: Sequence[int],
                 batch_size: int = 128) -> dict[int, float]:
    """Fig. 3a's SSIM index: mean SSIM (RGB, at the model input) of each face bicubic-down-sampled to each
    size and back up, against the face itself."""
    totals = dict.fromkeys(sizes, 0.0)
    loader = DataLoader(FaceDataset(records, input_size), batch_size=batch_size)
    for batch in loader:
        images = batch["image"]
        for size in sizes:
            totals[size] += float(ssim(down_up(images, size), images).sum())
    return {size: total / len(records) for size, total in totals.items()}


def training_sample(setting: Setting, data_root: str | Path, count: int, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Fig. 3b's faces: the first image of each of the first ``count`` identities of the training set (its
    first ``count`` items if it is not a :class:`FaceDataset`) at the model input, with their labels."""
    dataset = DATASETS.build(setting.dataset, root=str(Path(data_root) / setting.folder), input_size=setting.input_size)
    if isinstance(dataset, FaceDataset):
        first: dict[int, int] = {}
        for index, label in enumerate(dataset.labels.tolist()):
            if len(first) < count:
                first.setdefault(label, index)
        indices = list(first.values())
    else:
        indices = list(range(min(count, len(dataset))))
    batches = list(DataLoader(Subset(dataset, indices), batch_size=batch_size))
    return torch.cat([b["image"] for b in batches]), torch.cat([b["label"] for b in batches])


def faces_by_size(embeddings: dict[int, np.ndarray], sizes: Sequence[int], faces: int) -> tuple[np.ndarray, list[str]]:
    """Fig. 3c / 7: the first ``faces`` faces' embeddings at each of ``sizes`` stacked, with each point's
    group name (``"HR"`` or ``"<size> px"``)."""
    points = np.concatenate([embeddings[size][:faces] for size in sizes])
    groups = [("HR" if size >= HR_SIZE else f"{size} px") for size in sizes for _ in range(faces)]
    return points, groups


SWEEP_ROWS = ("Baseline", "Single-7", "Single-14", "Single-28", "MAug+Ours(1)", "MAug+L1")  # Fig. 3a-c, Fig. 7


def evaluation_sizes(rows: dict[str, Method], owner: dict[str, str], sweep: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """The LR sizes at which each model embeds the LFW faces: the whole ``sweep`` for the models of Fig. 3
    and 7, MAug's 7 / 14 / 20 px for every other (Fig. 6's errors, and the run folder's HR and LR
    embeddings of the same faces)."""
    sizes = {owner[row]: tuple(ERROR_SIZES) for row in rows}
    for row in SWEEP_ROWS:
        if row in rows:
            sizes[owner[row]] = tuple(sorted(set(sweep) | set(ERROR_SIZES)))
    return sizes


# ----------------------------------------------------------------------------- Tables 1-2: fine-tuned models

SCFACE_FINETUNE_SUBJECTS = 50  # Sec. 4.2: 50 of SCface's 130 subjects fine-tune the network, the other 80 test
TINYFACE_RANKS = (1, 5, 10, 20)  # Table 2's columns


@dataclass(frozen=True)
class FineTune:
    """A fine-tuning of a chapter model's whole backbone on a benchmark's own training data with a fresh
    CosFace head (s = 48, m = 0.4): SCface's fine-tuning subjects (Table 1) or TinyFace's training set
    (Table 2). The paper gives no schedule for it; ``epochs``, ``lr`` (SGD, poly decay) and ``batch_size``
    are this book's."""

    epochs: int = 2
    lr: float = 0.01
    batch_size: int = 64


def scface_subjects(scface: SCFaceSet) -> tuple[list[str], SCFaceSet]:
    """The fine-tuning subjects and the test set of the others: 50 of 130 subjects (the same share of a
    smaller set, at least one). The paper does not say which 50; here the first mugshots in the set's order."""
    count = max(1, round(len(scface.mugshots) * SCFACE_FINETUNE_SUBJECTS / 130))
    subjects = [r.identity for r in scface.mugshots[:count]]
    chosen = set(subjects)
    test = SCFaceSet(tuple(r for r in scface.mugshots if r.identity not in chosen),
                     tuple(r for r in scface.probes if r.identity not in chosen), scface.corrupt)
    return subjects, test


def finetune_config(name: str, start: str | Path, setting: Setting, data: DataSpec, plan: FineTune) -> ExperimentConfig:
    """Fine-tune the backbone (with ``setting.train_from``, the tail) of the run folder ``start`` on ``data``
    (see :class:`FineTune`; images flipped, prefix maps not) with a fresh CosFace head."""
    transforms = [TransformSpec("hflip", {"p": setting.flip, "keys": ["image"]})] if setting.train_from is None and setting.flip > 0 else []
    unfrozen = replace(setting, freeze_prototypes=False)
    return ExperimentConfig(
        name=name,
        train=_train(setting, plan.epochs, plan.batch_size, plan.lr, ScheduleConfig(name="poly", power=2.0)),
        model=_model(unfrozen, {"main": HeadSpec("cosface", "main", dict(COSFACE))}, [TermSpec("cls", "classification", 1.0)],
                     str(start), warm_start_head=False),
        data={"main": DataSpec(data.name, dict(data.kwargs), transforms)},
    )


def finetune_data(data: DataSpec, setting: Setting, bank: FeatureBank | None, results_root: str | Path) -> DataSpec:
    """``data`` (an ``in_memory`` stream of images) as the stream a fine-tuning of ``setting`` reads: the
    images themselves, or with ``setting.train_from`` the prefix maps of its faces (``bank.prefix``)."""
    if setting.train_from is None:
        return data
    if bank is None or setting.pretrained is None:
        raise ValueError("fine-tuning a tail reads prefix maps: pass the FeatureBank of the pre-trained run's prefix")
    identity = {"run": Path(setting.pretrained).name, "start": setting.train_from}
    return DataSpec("feature_pairs", {"path": str(features_file(bank.prefix, identity, dict(data.kwargs), (), results_root,
                                                                FEATURES_NAME))})


def scface_data(data_root: str | Path, subjects: Sequence[str], input_size: int) -> DataSpec:
    """SCface's mugshots and probes of ``subjects`` (kept in memory) as a training stream."""
    return DataSpec("in_memory", {"dataset": "scface", "root": str(Path(data_root) / "scface"), "subjects": list(subjects),
                                  "input_size": input_size})


def tinyface_data(data_root: str | Path, input_size: int) -> DataSpec:
    """TinyFace's training set (kept in memory) as a training stream."""
    return DataSpec("in_memory", {"dataset": "tinyface_train", "root": str(Path(data_root) / "tinyface"), "input_size": input_size})


def tinyface_statistics(found: "Identification") -> dict[tuple[str, str], stats.Statistic]:
    """Table 2's cells (percent) of a TinyFace search: Rank-1, 5, 10 and 20."""
    return {("TinyFace", f"Rank-{k}"): stats.mean(stats.rank_hits(found.first_ranks, k), 100) for k in TINYFACE_RANKS}


def scface_statistics(outcomes: dict[str, RankOutcomes]) -> dict[tuple[str, str], stats.Statistic]:
    """Table 1's cells (percent) of an SCface evaluation: rank-1 at d1, d2, d3 and their average."""
    hits = np.concatenate([outcomes[d].hits for d in sorted(outcomes)])
    which = np.concatenate([[d] * len(outcomes[d].hits) for d in sorted(outcomes)])
    per_distance = {d: _share(hits, which == d, 100) for d in sorted(outcomes)}
    values = list(per_distance.values())
    return {**{(d, "Rank-1"): s for d, s in per_distance.items()}, ("Avg", "Rank-1"): sum(values[1:], values[0]) / len(values)}


FINETUNED_ROWS = {"Baseline": ("Baseline (w/o FT)", "Baseline (fine-tuned)", "CosFace(Res34)"),
                  "MAug+Ours(1)": ("Ours(w/o FT)", "Ours(Res34)", "Ours(Res34)")}
"""Tables 1-2's rows for each fine-tuned chapter model: SCface without and with fine-tuning (Table 1), and
TinyFace after fine-tuning (Table 2; the paper's CosFace (ResNet-34) row is its HR baseline)."""


def finetuned_rows(runs: dict[str, RunFolder], embeds: dict[str, Embed], setting: Setting, data_root: str | Path,
                   results_root: str | Path, tests: TestSets, plan: FineTune, bank: FeatureBank | None = None
                   ) -> tuple[dict[str, dict[tuple[str, str], stats.Statistic]], dict[str, np.ndarray]]:
    """Fine-tune each model of :data:`FINETUNED_ROWS` (``runs`` / ``embeds`` by row, :func:`embedder`;
    ``bank``: the prefix maps of a setting with ``train_from``) on SCface's fine-tuning subjects and on
    TinyFace's training set, and score them: SCface rank-1 on the other subjects before and after,
    TinyFace rank-1/5/10/20 (probes in the gallery with its distractors). Returns each table row's
    statistics and the bootstrap units of the two test sets."""
    from lrfr.data.loaders import load_tinyface_test
    from lrfr.experiments.cheng2018 import EmbeddedTest
    from lrfr.experiments.workflow import cached_run

    subjects, scface_test = scface_subjects(tests.scface)
    tinyface = load_tinyface_test(Path(data_root) / "tinyface")
    tiny_records = (*tinyface.probe, *tinyface.gallery, *tinyface.distractors)
    tiny_split = np.array(["probe"] * len(tinyface.probe) + ["gallery"] * len(tinyface.gallery) + ["distractor"] * len(tinyface.distractors))
    tiny_labels = np.array([record.label for record in tiny_records], dtype=np.int64)
    streams = {kind: finetune_data(data, setting, bank, results_root) for kind, data in
               (("scface", scface_data(data_root, subjects, setting.input_size)), ("tinyface", tinyface_data(data_root, setting.input_size)))}
    statistics: dict[str, dict[tuple[str, str], stats.Statistic]] = {}
    units: dict[str, np.ndarray] = {}
    for row, (before, after, tiny) in FINETUNED_ROWS.items():
        start = runs[row].path
        tuned = {kind: cached_run(finetune_config(run_name(f"{row} {kind} ft"), start, setting, stream, plan), results_root)[1]
                 for kind, stream in streams.items()}
        outcomes = {"before": scface_rank1(embeds[row], scface_test),
                    "after": scface_rank1(embedder(tuned["scface"].backbone, bank), scface_test)}
        statistics[before] = scface_statistics(outcomes["before"])
        statistics[after] = scface_statistics(outcomes["after"])
        embeddings = embedder(tuned["tinyface"].backbone, bank)(tiny_records, None)
        found = EmbeddedTest(tiny_records, tiny_split, tiny_labels, embeddings).identification()
        statistics.setdefault(tiny, {}).update(tinyface_statistics(found))
        units = {"SCface test": np.concatenate([outcomes["after"][d].units for d in sorted(outcomes["after"])]),
                 "TinyFace": found.probe_labels}
    return statistics, units
