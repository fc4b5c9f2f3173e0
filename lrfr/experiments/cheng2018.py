"""Chapter 4: Cheng, Zhu & Gong 2018 -- native low resolution, SR-then-FR, and CSRI joint learning.

Every model of the paper's Tables 3-7 is one :class:`~lrfr.training.ExperimentConfig` built here and
trained by the one trainer:

* **generic FR** (Table 3, Fig. 5a): a backbone pre-trained on HR faces, fine-tuned on the native LR
  training set (TinyFace ``Training_Set``) with a head: CentreFace (softmax + centre loss), SphereFace
  (A-Softmax), DeepID2 (softmax + verification), VggFace (softmax) -- :func:`finetune_config`;
* **SR networks** trained on LR/HR pairs of the HR identity set (synthetic LR, Sec. 5.2: "trained on
  the CelebA images ... LR/HR face pairs") with the pixel MSE -- :func:`sr_config` (no backbone);
* **SR-then-FR, independent learning** (Table 5, Fig. 5b): a frozen SR network in front of the
  backbone, the FR part fine-tuned on super-resolved native LR faces (Sec. 5.2: "performing FR model
  training and test on super-resolved faces") -- :func:`finetune_config` with ``sr``;
* **CSRI** (Sec. 3, Fig. 2, Eq. 4): step 1 pre-trains the *synthetic LR SR-FR branch* (identity loss on
  SR(I^alr) + lambda_sr ||SR(I^alr) - I^ahr||^2) on the HR identity set; step 2 trains both branches
  together -- the synthetic branch and the *native LR branch* (identity loss on SR(I^nlr), no HR target:
  complement SR) -- with the two data streams in every mini-batch and all parameters shared
  (:func:`csri_config`). The same SR network and backbone serve both branches: one set of weights.
* **SR-FR joint learning without complement SR** (Table 6 "joint", Table 7 "x"): step 1, then the FR
  part fine-tuned on the native LR faces super-resolved by the step-1 SR network (Sec. 5.3) --
  :func:`finetune_config` with the step-1 run as both sources.

Identity loss: CentreFace (softmax + centre loss) in both branches, CSRI's FR component (Sec. 3).
:func:`chapter_configs` lists every run as a :class:`Stage`; with ``ChapterPlan.imprint`` each new
CentreFace head starts at its faces' class means (:mod:`lrfr.experiments.imprint`, quick mode's short
schedules), and ``csri_sr_from_vdsr`` starts step 1's SR network from the VDSR trained alone.
Deployment: the native-LR branch, SR then FR (:meth:`lrfr.training.Objective.recognizer`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader

from lrfr.claims import ClaimResult, decide, evaluate
from lrfr.data.base import FaceDataset, FaceRecord, read_image, to_tensor
from lrfr.data.degrade import resize, synthetic_lr
from lrfr.data.loaders import TinyFaceTest
from lrfr.data.lr_pairs import LRPairs
from lrfr.experiments.imprint import ensure_start, imprinted_config
from lrfr.experiments.ui_cluster import probe_gallery_split
from lrfr.experiments.workflow import cached_run, config_hash, native_heights
from lrfr.io import atomic_write
from lrfr.models.sr import SRThenFR
from lrfr.protocols.embeddings import extract_embeddings
from lrfr.protocols.fidelity import psnr, ssim
from lrfr.protocols.identification import Identification, identify
from lrfr.runs import RunFolder
from lrfr.stats import Bootstrap, Estimate, Statistic, independent_difference, mean, rank_hits
from lrfr.training.config import (
    DataSpec, ExperimentConfig, HeadSpec, ModelSpec, OptimizerConfig, ScheduleConfig, TermSpec, TrainConfig,
)
from lrfr.models.modes import eval_mode

LAMBDA_SR = 0.003  # Sec. 3 (I): "We set lambda_sr = 0.003 by cross-validation"
NATIVE, SYNTHETIC = "nat", "syn"  # the two data streams (Fig. 2: blue and orange branch)


@dataclass(frozen=True)
class Setting:
    """What every run of the chapter shares: data, the recognition backbone and its pre-training."""

    data_root: str
    pretrained: str  # run folder (or .safetensors) of the HR pre-trained backbone
    backbone: str = "quick"
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    input_size: int = 64
    embedding_size: int = 128
    hr_folder: str = "hr"  # the auxiliary HR identity set (CelebA in the paper)
    lr_sizes: tuple[int, ...] = (20,)  # synthetic LR face heights (TinyFace's mean is 20 px)
    hr_images: int | None = None  # images per identity of the HR set used for LR/HR pairs (None: all)
    keep_in_memory: bool = True  # decode each training face once (small sets); False streams (CelebA, full mode)
    seed: int = 0
    num_workers: int = 0

    def backbone_spec(self, own: dict[str, Any] | None = None) -> dict[str, Any]:
        """The backbone's arguments: input and embedding size with the shared backbone's ``backbone_kwargs``,
        or with ``own`` (a Table 3 row with its own architecture, whose arguments differ)."""
        return {"input_size": self.input_size, "embedding_size": self.embedding_size,
                **(self.backbone_kwargs if own is None else own)}


@dataclass(frozen=True)
class Schedule:
    """Epochs, batch size and optimiser of one training stage (multistep: lr / 10 at 2/3 of the epochs)."""

    epochs: int = 4
    batch_size: int = 64
    lr: float = 0.05
    optimizer: str = "sgd"
    weight_decay: float = 5e-4
    clip_grad_norm: float | None = 5.0
    clip_grad_adjustable: float | None = None

    def train_config(self, seed: int, num_workers: int) -> TrainConfig:
        return TrainConfig(
            seed=seed, epochs=self.epochs, batch_size=self.batch_size, num_workers=num_workers,
            clip_grad_norm=self.clip_grad_norm, clip_grad_adjustable=self.clip_grad_adjustable,
            optimizer=OptimizerConfig(name=self.optimizer, lr=self.lr, weight_decay=self.weight_decay),
            schedule=ScheduleConfig(name="multistep", milestones=[max(1, round(2 * self.epochs / 3))]),
        )


def native_stream(setting: Setting) -> DataSpec:
    """The labelled native LR training faces (TinyFace ``Training_Set``), resized to the model input."""
    kwargs = {"root": str(Path(setting.data_root) / "tinyface"), "input_size": setting.input_size}
    return DataSpec("in_memory", {"dataset": "tinyface_train", **kwargs}) if setting.keep_in_memory else DataSpec("tinyface_train", kwargs)


def synthetic_stream(setting: Setting, patch: int | None = None, upsample: bool = True) -> DataSpec:
    """LR/HR pairs of the HR identity set: bicubic down to ``lr_sizes`` (and back up, for pre-upsampling SR);
    with ``setting.hr_images``, of every identity's first that many images (:mod:`lrfr.data.subset`)."""
    source = {"dataset": "folder"} if setting.hr_images is None else {
        "dataset": "per_identity", "base": "folder", "images": setting.hr_images}
    return DataSpec("lr_pairs", {
        **source, "root": str(Path(setting.data_root) / setting.hr_folder), "input_size": setting.input_size,
        "lr_sizes": list(setting.lr_sizes), "upsample": upsample, "patch": patch, "keep_in_memory": setting.keep_in_memory,
    })


def sr_config(name: str, network: str, setting: Setting, schedule: Schedule, *, sr_kwargs: dict[str, Any] | None = None,
              patch: int | None = None, loss: str = "mse", upsample: bool = True) -> ExperimentConfig:
    """An SR network alone, trained with the per-pixel ``loss`` on synthetic LR/HR pairs (no backbone).

    With ``upsample`` (pre-upsampling networks) the LR inputs arrive interpolated to the HR size, so the
    network is built with ``scale=1`` unless ``sr_kwargs`` says otherwise; without it (EDSR) they keep
    their LR size and the network's own factor must lead to the HR size.
    """
    kwargs = {"scale": 1, **(sr_kwargs or {})} if upsample else dict(sr_kwargs or {})
    return ExperimentConfig(
        name=name,
        train=schedule.train_config(setting.seed, setting.num_workers),
        model=ModelSpec(
            backbone=None, sr=network, sr_kwargs=kwargs, heads={},
            terms=[TermSpec(name="pixel", kind="pixel", kwargs={"lr": "syn.lr", "hr": "syn.hr", "loss": loss})],
            pretrained_modules=[],
        ),
        data={SYNTHETIC: synthetic_stream(setting, patch, upsample)},
    )


def _identity_term(stream: str, super_resolve: bool, image: str = "image") -> TermSpec:
    return TermSpec(name=f"fr_{stream}", kind="classification", kwargs={
        "head": stream, "input": f"{stream}.{image}", "labels": f"{stream}.label", "super_resolve": super_resolve,
    })


def finetune_config(
    name: str,
    head: str,
    setting: Setting,
    schedule: Schedule,
    *,
    head_kwargs: dict[str, Any] | None = None,
    sr: str | None = None,
    sr_kwargs: dict[str, Any] | None = None,
    pretrained: str | None = None,
    pretrained_sr: str | None = None,
    backbone: str | None = None,
    backbone_kwargs: dict[str, Any] | None = None,
) -> ExperimentConfig:
    """FR fine-tuning on the native LR training set with ``head`` (Table 3), optionally on the output of
    a frozen SR network ``sr`` whose weights come from ``pretrained_sr`` (Table 5-6 SR-then-FR).

    ``pretrained`` (default: the setting's HR pre-training) gives the backbone; ``backbone`` /
    ``backbone_kwargs`` replace the setting's (the DeepID2 and VGG rows of Table 3).
    """
    if sr is not None and pretrained_sr is None:
        raise ValueError(f"SR-then-FR fine-tuning needs the trained SR network's run (pretrained_sr) for {sr!r}")
    return ExperimentConfig(
        name=name,
        train=schedule.train_config(setting.seed, setting.num_workers),
        model=ModelSpec(
            backbone=backbone or setting.backbone,
            backbone_kwargs=setting.backbone_spec(backbone_kwargs if backbone else None),
            sr=sr, sr_kwargs=dict(sr_kwargs or {}),
            heads={NATIVE: HeadSpec(kind=head, num_classes=NATIVE, kwargs=dict(head_kwargs or {}))},
            terms=[_identity_term(NATIVE, super_resolve=sr is not None)],
            freeze=["sr"] if sr is not None else [],
            pretrained=pretrained or setting.pretrained,
            pretrained_sr=pretrained_sr,
        ),
        data={NATIVE: native_stream(setting)},
    )


def csri_config(
    name: str,
    step: int,
    setting: Setting,
    schedule: Schedule,
    *,
    pretrained: str | None = None,
    pretrained_sr: str | None = None,
    sr: str = "vdsr",
    sr_kwargs: dict[str, Any] | None = None,
    lambda_sr: float = LAMBDA_SR,
    pixel_reduction: str = "sum",
    head: str = "centerface",
) -> ExperimentConfig:
    """CSRI step 1 (synthetic LR SR-FR branch, Eq. 3) or step 2 (both branches, Eq. 4).

    Step 1 starts from the setting's HR pre-trained backbone and a fresh SR network, or the SR network of
    the run ``pretrained_sr`` (our choice: the paper does not say how its VDSR starts; a VDSR trained alone
    on the same pairs saves step 1 from learning to restore from scratch); step 2 from the step-1 run
    ``pretrained`` (backbone, SR network and the synthetic branch's head). The pixel term is
    Eq. 1 summed over each image's pixels (``pixel_reduction="sum"``, see :mod:`lrfr.losses.pixel`).
    In step 2 the native stream comes first: an epoch is one pass over the native LR faces, the larger
    auxiliary set is cycled.
    """
    if step not in (1, 2):
        raise ValueError(f"CSRI is trained in step 1 or 2, got {step!r}")
    if step == 2 and pretrained is None:
        raise ValueError("CSRI step 2 starts from the step-1 run: pass pretrained=<its run folder>")
    if step == 2 and pretrained_sr is not None:
        raise ValueError("CSRI step 2 takes its SR network from the step-1 run (pretrained), not pretrained_sr")
    terms = [
        _identity_term(SYNTHETIC, super_resolve=True, image="lr"),
        TermSpec(name="sr", kind="pixel", weight=lambda_sr,
                 kwargs={"lr": "syn.lr", "hr": "syn.hr", "loss": "mse", "reduction": pixel_reduction}),
    ]
    heads = {SYNTHETIC: HeadSpec(kind=head, num_classes=SYNTHETIC)}
    data = {SYNTHETIC: synthetic_stream(setting)}
    if step == 2:
        terms.insert(0, _identity_term(NATIVE, super_resolve=True))
        heads = {NATIVE: HeadSpec(kind=head, num_classes=NATIVE), **heads}
        data = {NATIVE: native_stream(setting), **data}
    return ExperimentConfig(
        name=name,
        train=schedule.train_config(setting.seed, setting.num_workers),
        model=ModelSpec(
            backbone=setting.backbone, backbone_kwargs=setting.backbone_spec(), sr=sr, sr_kwargs=dict(sr_kwargs or {}),
            heads=heads, terms=terms,
            pretrained=pretrained if step == 2 else setting.pretrained,
            pretrained_modules=["backbone", "sr", f"heads.{SYNTHETIC}"] if step == 2 else ["backbone"],
            pretrained_sr=pretrained_sr,
        ),
        data=data,
    )


# ----------------------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class EmbeddedTest:
    """A probe/gallery test set embedded by one model: unit embeddings and labels of every face, its
    split ("probe", "gallery", "distractor") and the records (for the run folder)."""

    records: tuple[FaceRecord, ...]
    split: np.ndarray
    labels: np.ndarray
    embeddings: np.ndarray

    def identification(self, distractors: bool = True) -> Identification:
        probe = self.split == "probe"
        gallery = (self.split == "gallery") | ((self.split == "distractor") & distractors)
        return identify(self.embeddings[probe], self.embeddings[gallery], self.labels[probe], self.labels[gallery])


def embed_test(recognizer: nn.Module, test: TinyFaceTest, input_size: int, *, transform: Any = None,
               batch_size: int = 256, desc: str = "embed") -> EmbeddedTest:
    """Embed TinyFace's probes, gallery matches and distractors with ``recognizer`` (faces resized to
    ``input_size``, bicubic; ``transform`` applied after, e.g. synthetic LR)."""
    records = (*test.probe, *test.gallery, *test.distractors)
    split = np.array(["probe"] * len(test.probe) + ["gallery"] * len(test.gallery) + ["distractor"] * len(test.distractors))
    extracted = extract_embeddings(recognizer, FaceDataset(records, input_size, transform), batch_size=batch_size, desc=desc)
    labels = np.array([record.label for record in records], dtype=np.int64)
    return EmbeddedTest(records, split, labels, extracted.embeddings)


def smaller_test(test: TinyFaceTest, identities: int | None, distractors: int | None, seed: int = 0) -> TinyFaceTest:
    """The TinyFace test restricted to ``identities`` test identities (a seeded random choice; their probes
    and mated gallery faces) and ``distractors`` distractors (a seeded random choice); None keeps all.
    Quick mode's smaller gallery keeps rank-1 well above its floor for a weak CPU model."""
    rng = np.random.default_rng(seed)
    labels = sorted({record.label for record in test.probe})
    if identities is not None and not 0 < identities <= len(labels):
        raise ValueError(f"test_identities {identities!r}: expected 1..{len(labels)} (the test set's identities) or None")
    if distractors is not None and not 0 <= distractors <= len(test.distractors):
        raise ValueError(f"test_distractors {distractors!r}: expected 0..{len(test.distractors)} or None")
    kept = set(labels) if identities is None else set(rng.choice(labels, identities, replace=False).tolist())
    chosen = range(len(test.distractors)) if distractors is None else sorted(rng.choice(len(test.distractors), distractors, replace=False))
    return replace(test, probe=tuple(r for r in test.probe if r.label in kept),
                   gallery=tuple(r for r in test.gallery if r.label in kept), distractors=tuple(test.distractors[i] for i in chosen))


def synthetic_test(records: Sequence[FaceRecord], seed: int = 0) -> TinyFaceTest:
    """HR faces of identities the models never trained on, as a TinyFace-like test: each identity's images
    split half probe, half gallery (:func:`lrfr.experiments.ui_cluster.probe_gallery_split`; identities
    with one image only enlarge the gallery). Down-sampled by the embedding transform, this is Table 4's
    SynLR set; the models embed it exactly as the native LR test."""
    labels = np.array([record.label for record in records])
    probe, _ = probe_gallery_split(labels, seed)
    return TinyFaceTest(tuple(r for r, p in zip(records, probe) if p), tuple(r for r, p in zip(records, probe) if not p), ())


@dataclass(frozen=True)
class Fidelity:
    """Per-image PSNR (dB) and SSIM of super-resolved synthetic LR faces against their HR originals."""

    labels: np.ndarray
    psnr: np.ndarray
    ssim: np.ndarray


def fidelity(sr: nn.Module | None, records: Sequence[FaceRecord], input_size: int, lr_size: int,
             batch_size: int = 128) -> Fidelity:
    """PSNR/SSIM at ``input_size`` of ``sr`` (None: the bicubic interpolation alone) on ``records``
    down-sampled to ``lr_size`` px and interpolated back (:class:`lrfr.data.lr_pairs.LRPairs`)."""
    pairs = DataLoader(LRPairs(FaceDataset(records, input_size), lr_size), batch_size=batch_size)
    labels, psnrs, ssims = [], [], []
    with eval_mode(*( [sr] if sr is not None else [])), torch.no_grad():
        for batch in pairs:
            restored = batch["lr"] if sr is None else sr(batch["lr"], size=input_size)
            labels.append(batch["label"].numpy())
            psnrs.append(psnr(restored, batch["hr"]).numpy())
            ssims.append(ssim(restored, batch["hr"]).numpy())
    return Fidelity(np.concatenate(labels), np.concatenate(psnrs), np.concatenate(ssims))


def save_super_resolved(run: RunFolder, pipeline: SRThenFR, records: Sequence[FaceRecord], input_size: int,
                        indices: Sequence[int]) -> dict[int, str]:
    """Write the SR faces of ``records[i]`` for ``i`` in ``indices`` as PNGs under ``sr_samples/`` of the
    run folder; return index -> path (the dashboard shows them beside the LR face)."""
    faces = FaceDataset([records[i] for i in indices], input_size)
    paths: dict[int, str] = {}
    with eval_mode(pipeline), torch.no_grad():
        for position, index in enumerate(indices):
            restored = pipeline.super_resolve(faces[position]["image"][None])[0]
            path = run.artifact_path(f"sr_samples/{index:06d}.png")
            with atomic_write(path) as temporary:
                Image.fromarray(_uint8(restored)).save(temporary, format="PNG")
            paths[index] = str(path)
    return paths


def save_test_embeddings(run: RunFolder, test: EmbeddedTest, name: str = "tinyface",
                         super_resolved: dict[int, str] | None = None) -> None:
    """The dashboard's run-folder contract: embeddings of every test face with its path, split and native
    height, and ``sr_path`` (its SR face, "" where none was written)."""
    sr_paths = np.array([(super_resolved or {}).get(i, "") for i in range(len(test.records))])
    metadata = {"path": np.array([str(r.path) for r in test.records]), "split": test.split,
                "native_height": native_heights(test.records), "sr_path": sr_paths}
    run.save_embeddings(name, test.embeddings, test.labels, metadata)


# ------------------------------------------------------------------------------------------ the chapter

SR_ROW = {"srcnn": "SRCNN", "vdsr": "VDSR", "drrn": "DRRN"}  # Table 5's names
HR_ONLY = "HR pre-trained (not fine-tuned)"  # the shared backbone before any native LR training (Table 3, our row)
JOINT, CSRI = "Joint (step 1 + FR fine-tuning)", "CSRI"  # Table 6 "Joint Learning" / Table 7 "x"; Table 5-7 CSRI
TABLE3_HEADS = {"CentreFace": "centerface", "SphereFace": "sphereface", "DeepID2": "deepid2", "VggFace": "softmax"}
OWN_BACKBONES = {"DeepID2": "deepid2", "VggFace": "vgg"}  # Table 3 rows with their own architecture


@dataclass(frozen=True)
class ChapterPlan:
    """What the chapter trains: the Table 3 rows, the SR networks (name -> constructor arguments), the
    SR-then-FR rows whose FR part is fine-tuned on SR output (the paper's independent learning; the
    others put the CentreFace model, frozen, on the SR output), and each stage's schedule."""

    table3_rows: tuple[str, ...] = ("CentreFace", "SphereFace")
    sr_networks: dict[str, dict[str, Any]] = field(default_factory=lambda: {"srcnn": {}, "vdsr": {}, "drrn": {}})
    sr_finetuned: tuple[str, ...] = ("vdsr",)
    finetune: Schedule = Schedule()
    sr_training: Schedule = Schedule(optimizer="adamw", lr=1e-3, weight_decay=0.0)
    sr_patch: int | None = None
    csri_step1: Schedule = Schedule(epochs=1)
    csri_step2: Schedule = Schedule()
    csri_sr_from_vdsr: bool = False  # CSRI step 1 starts its SR from the VDSR trained alone (csri_config)
    own_backbones: dict[str, dict[str, Any]] = field(default_factory=dict)  # DeepID2/VggFace: backbone kwargs
    own_pretraining: Schedule = Schedule(epochs=4, batch_size=128, lr=0.1)
    sphereface_kwargs: dict[str, Any] = field(default_factory=lambda: {"annealing": True})
    imprint: bool = False  # start every new softmax / CentreFace head at its faces' class means (lrfr.experiments.imprint)


IMPRINTABLE = ("centerface", "softmax")  # heads lrfr.experiments.imprint can start (a linear classifier)


@dataclass(frozen=True)
class Stage:
    """One training run of the chapter: its ``config`` and, where its new ``heads`` are imprinted, the
    config ``start`` that builds the model they are imprinted from (the start file is written first)."""

    config: ExperimentConfig
    start: ExperimentConfig | None = None
    heads: tuple[str, ...] = ()

    def train(self, results_root: str | Path) -> tuple[RunFolder, Any]:
        """Write the start file if needed, then train (or reuse) the run: ``(run folder, model)``."""
        if self.start is not None:
            ensure_start(self.start, results_root, self.heads)
        return cached_run(self.config, results_root)


def run_path(config: ExperimentConfig | Stage, results_root: str | Path) -> str:
    """The run folder :func:`lrfr.experiments.workflow.cached_run` trains ``config`` (a stage's) into."""
    config = config.config if isinstance(config, Stage) else config
    return str(Path(results_root) / f"{config.name}-{config_hash(config)}")


def chapter_configs(setting: Setting, plan: ChapterPlan, results_root: str | Path) -> dict[str, Stage]:
    """Every run of the chapter, in training order (a run's sources come before it), keyed by role:
    ``pretrain-<row>`` / ``fr-<row>`` (Table 3), ``sr-<net>`` (SR alone), ``sr-fr-<net>`` (SR then
    fine-tuned FR), ``csri-1`` / ``csri-2`` (CSRI's two steps), ``joint`` (step 1 + FR fine-tuning).
    With ``plan.imprint`` each new softmax / CentreFace head starts at its faces' class means."""
    configs = _plain_configs(setting, plan, results_root)
    stages = {}
    for role, config in configs.items():
        new = [name for name, head in config.model.heads.items() if head.kind in IMPRINTABLE
               and f"heads.{name}" not in (config.model.pretrained_modules if config.model.pretrained else [])]
        if plan.imprint and new and not role.startswith("pretrain-"):
            start = _rebased(config, stages, configs, results_root)
            stages[role] = Stage(imprinted_config(start, results_root, tuple(new)), start, tuple(new))
        else:
            stages[role] = Stage(_rebased(config, stages, configs, results_root))
    return stages


def _rebased(config: ExperimentConfig, stages: Mapping[str, Stage], plain: Mapping[str, ExperimentConfig],
             results_root: str | Path) -> ExperimentConfig:
    """``config`` with its sources (``pretrained``, ``pretrained_sr``) pointing to the runs of the stages
    that replaced the plain configs it was built against."""
    moved = {run_path(plain[role], results_root): run_path(stage, results_root) for role, stage in stages.items()}
    model = config.model
    return replace(config, model=replace(model, pretrained=moved.get(model.pretrained, model.pretrained),
                                         pretrained_sr=moved.get(model.pretrained_sr, model.pretrained_sr)))


def _plain_configs(setting: Setting, plan: ChapterPlan, results_root: str | Path) -> dict[str, ExperimentConfig]:
    """:func:`chapter_configs` before imprinting: every source a plain config's run folder."""
    configs: dict[str, ExperimentConfig] = {}
    for row in plan.table3_rows:
        if row not in TABLE3_HEADS:
            raise ValueError(f"unknown Table 3 row {row!r}; expected some of {sorted(TABLE3_HEADS)}")
        head, kwargs = TABLE3_HEADS[row], plan.sphereface_kwargs if row == "SphereFace" else {}
        if row in OWN_BACKBONES:
            own = {"backbone": OWN_BACKBONES[row], "backbone_kwargs": plan.own_backbones.get(row, {})}
            configs[f"pretrain-{row}"] = own_pretraining_config(f"c4-pretrain-{row.lower()}", head, setting,
                                                                plan.own_pretraining, **own)
            pretrained = run_path(configs[f"pretrain-{row}"], results_root)
            configs[f"fr-{row}"] = finetune_config(f"c4-{row.lower()}", head, setting, plan.finetune,
                                                   pretrained=pretrained, **own)
        else:
            configs[f"fr-{row}"] = finetune_config(f"c4-{row.lower()}", head, setting, plan.finetune, head_kwargs=kwargs)
    for net, kwargs in plan.sr_networks.items():
        configs[f"sr-{net}"] = sr_config(f"c4-sr-{net}", net, setting, plan.sr_training, sr_kwargs=kwargs, patch=plan.sr_patch)
        if net in plan.sr_finetuned:
            configs[f"sr-fr-{net}"] = finetune_config(
                f"c4-sr-fr-{net}", "centerface", setting, plan.finetune, sr=net, sr_kwargs=kwargs,
                pretrained_sr=run_path(configs[f"sr-{net}"], results_root))
    vdsr = plan.sr_networks.get("vdsr", {})
    if plan.csri_sr_from_vdsr and "sr-vdsr" not in configs:
        raise ValueError("csri_sr_from_vdsr needs 'vdsr' among the SR networks (sr_networks)")
    sr_init = run_path(configs["sr-vdsr"], results_root) if plan.csri_sr_from_vdsr else None
    configs["csri-1"] = csri_config("c4-csri-step1", 1, setting, plan.csri_step1, sr_kwargs=vdsr, pretrained_sr=sr_init)
    step1 = run_path(configs["csri-1"], results_root)
    configs["joint"] = finetune_config("c4-joint", "centerface", setting, plan.finetune, sr="vdsr", sr_kwargs=vdsr,
                                       pretrained=step1, pretrained_sr=step1)
    configs["csri-2"] = csri_config("c4-csri", 2, setting, plan.csri_step2, sr_kwargs=vdsr, pretrained=step1)
    return configs


def own_pretraining_config(name: str, head: str, setting: Setting, schedule: Schedule, *, backbone: str,
                           backbone_kwargs: dict[str, Any]) -> ExperimentConfig:
    """HR pre-training of a Table 3 backbone with its own loss (the paper trains each model on CelebA)."""
    kwargs = {"root": str(Path(setting.data_root) / setting.hr_folder), "input_size": setting.input_size}
    return ExperimentConfig(
        name=name,
        train=schedule.train_config(setting.seed, setting.num_workers),
        model=ModelSpec(backbone=backbone, backbone_kwargs=setting.backbone_spec(backbone_kwargs),
                        heads={"main": HeadSpec(kind=head)}),
        data={"main": DataSpec("in_memory", {"dataset": "folder", **kwargs}) if setting.keep_in_memory else DataSpec("folder", kwargs)},
    )


METRICS = {"Rank-1": 1, "Rank-20": 20, "Rank-50": 50}


def statistics(result: Identification) -> dict[str, Statistic]:
    """Table 3-7's columns as bootstrap statistics (percent): Rank-1, Rank-20, Rank-50 and mAP."""
    columns = {name: mean(rank_hits(result.first_ranks, k), 100) for name, k in METRICS.items()}
    return {**columns, "mAP": mean(result.average_precision, 100)}


def cmc_curve(result: Identification, boot: Bootstrap, ranks: Sequence[int]) -> list[Estimate]:
    """CMC(r) with its interval for each r in ``ranks`` (Fig. 7)."""
    return [boot.estimate(mean(rank_hits(result.first_ranks, r), 100)) for r in ranks]


def table_values(estimates: Mapping[str, Mapping[str, Estimate]], rows: Mapping[str, str],
                 column: str = "TinyFace") -> dict[tuple[str, str, str], Estimate]:
    """:func:`lrfr.references.compare`'s run values: (table row, ``column``, metric) -> our estimate, for
    ``rows`` (the table's row name -> our row in ``estimates``)."""
    return {(name, column, metric): estimate for name, ours in rows.items() for metric, estimate in estimates[ours].items()}


def paired_effects(results: Mapping[str, Identification], boot: Bootstrap, rows: Mapping[str, str], baseline: str,
                   column: str = "TinyFace") -> dict[tuple[str, str, str], Estimate]:
    """Each row's effect over the ``baseline`` row (table names, as in ``rows``): the paired difference of
    every metric on the same probes, resampled over the identities of ``boot`` (compare()'s ``effects``)."""
    base = statistics(results[rows[baseline]])
    return {(name, column, metric): boot.estimate(statistic - base[metric])
            for name, ours in rows.items() if name != baseline for metric, statistic in statistics(results[ours]).items()}


def _uint8(image: Tensor) -> np.ndarray:
    """A (3, H, W) [-1, 1] tensor as an (H, W, 3) uint8 image (clipped)."""
    return image.clamp(-1, 1).add(1).mul(127.5).round().byte().permute(1, 2, 0).numpy()


def super_resolved_grid(native: Sequence[FaceRecord], synthetic: Sequence[FaceRecord], methods: dict[str, nn.Module | None],
                        input_size: int, lr_size: int) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Fig. 8: per face one row -- the LR input as stored, each method's output at ``input_size``
    (None: bicubic interpolation), and for ``synthetic`` faces (down-sampled to ``lr_size``) the HR face,
    with each output's PSNR against it. Returns (images, panel titles, row titles) for ``image_grid``."""
    images, titles, rows = [], [], []
    blank = np.full((input_size, input_size, 3), 255, np.uint8)
    for kind, records in (("native", native), ("synthetic", synthetic)):
        for record in records:
            face = to_tensor(read_image(record.path))
            lr = synthetic_lr(face, lr_size) if kind == "synthetic" else face
            hr = resize(face, input_size)
            images.append(_uint8(lr))
            titles.append(f"LR {lr.shape[-2]} px")
            with torch.no_grad():
                for name, sr in methods.items():
                    restored = resize(lr, input_size) if sr is None else eval_sr(sr, lr, input_size)
                    images.append(_uint8(restored))
                    titles.append(name if kind == "native" else f"{name} {psnr(restored[None], hr[None]).item():.1f} dB")
            images.append(_uint8(hr) if kind == "synthetic" else blank)
            titles.append("HR" if kind == "synthetic" else "no HR")
            rows.append(f"{kind} LR")
    return images, titles, rows


def eval_sr(sr: nn.Module, lr: Tensor, size: int) -> Tensor:
    """One (3, h, w) face super-resolved to ``size`` by ``sr`` in eval mode."""
    with eval_mode(sr), torch.no_grad():
        return sr(lr[None], size=size)[0]


# ------------------------------------------------------------------------------------------- the claims

CLAIM_METRICS = {"Rank-1": "", "Rank-20": "_rank20"}  # each claim is decided at rank 1 and at rank 20 (claim id suffix)
_CLAIM_NAMES = (
    "cheng2018.native_harder_finetuned",
    *(f"cheng2018.sr_then_fr_{net}" for net in SR_ROW),
    "cheng2018.csri_beats_centreface", "cheng2018.csri_beats_sr_then_fr",
    "cheng2018.joint_beats_independent", "cheng2018.joint_beats_fr_only", "cheng2018.complement_sr",
)
CLAIMS = tuple(f"{name}{suffix}" for name in _CLAIM_NAMES for suffix in CLAIM_METRICS.values())
# the chapter's claims (rows of lrfr/references/claims.csv), in the order the page lists them


def claim_id(name: str, metric: str) -> str:
    """The id of claim ``name`` decided on ``metric`` (a key of :data:`CLAIM_METRICS`)."""
    if metric not in CLAIM_METRICS:
        raise ValueError(f"claims are decided on one of {list(CLAIM_METRICS)}, got {metric!r}")
    return f"{name}{CLAIM_METRICS[metric]}"


def sr_then_fr_row(net: str, finetuned: Sequence[str]) -> str:
    """Our Table 5 row of SR network ``net``: the paper's independent learning (the FR model fine-tuned on
    the SR output, "CentreFace + VDSR") where ``net`` is in ``finetuned``; otherwise the CentreFace model,
    unchanged, on the SR output (a cheaper stand-in, labelled as such)."""
    return f"CentreFace + {SR_ROW[net]}" if net in finetuned else f"CentreFace (not re-trained) + {SR_ROW[net]}"


def paired_comparisons(sr_networks: Sequence[str], finetuned: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Claim id -> (minuend, subtrahend) rows of the native LR test whose paired difference decides it
    (Table 5 Sec. 5.2 (1) and (3), Table 6, Table 7). The independent-learning row is VDSR's."""
    independent = sr_then_fr_row("vdsr", finetuned)
    pairs = {f"cheng2018.sr_then_fr_{net}": (sr_then_fr_row(net, finetuned), "CentreFace") for net in sr_networks}
    return {**pairs, "cheng2018.csri_beats_centreface": (CSRI, "CentreFace"),
            "cheng2018.csri_beats_sr_then_fr": (CSRI, independent), "cheng2018.joint_beats_independent": (JOINT, independent),
            "cheng2018.joint_beats_fr_only": (JOINT, "CentreFace"), "cheng2018.complement_sr": (CSRI, JOINT)}


def decide_claims(results: Mapping[str, Identification], boot: Bootstrap, sr_networks: Sequence[str],
                  finetuned: Sequence[str], native_vs_synthetic: Sequence[ClaimResult] = ()) -> list[ClaimResult]:
    """The chapter's claims from the native LR test, each at rank 1 and rank 20 (:data:`CLAIM_METRICS`):
    a paired difference of the metric between two rows of ``results`` (the same probes), resampled over
    the identities of ``boot``, with both rows' values as parts; ``native_vs_synthetic`` (Table 4, two
    test sets: :func:`native_vs_synthetic_claim`) first where given."""
    decided = list(native_vs_synthetic)
    for name, (a, b) in paired_comparisons(sr_networks, finetuned).items():
        for metric in CLAIM_METRICS:
            first, second = statistics(results[a])[metric], statistics(results[b])[metric]
            decided.append(with_resolution_note(evaluate(claim_id(name, metric), boot, first - second,
                                                         parts={a: first, b: second})))
    return decided


def with_resolution_note(result: ClaimResult) -> ClaimResult:
    """An inconclusive result with a note saying how large a difference this test resolves (half the
    interval's width) and the two sides' values: the sides do not differ by more than about that here,
    and where both are low the metric is near its floor on this data."""
    if result.verdict != "inconclusive" or result.note:
        return result
    half = (result.estimate.high - result.estimate.low) / 2
    sides = " and ".join(f"{label} {value.value:.1f}" for label, value in result.parts.items())
    return replace(result, note=f"the 95 % interval contains 0; this test resolves differences of about "
                                f"±{half:.1f} points, and the two sides ({sides}) do not differ by more here")


def native_vs_synthetic_claim(row: str, synthetic: Identification, native: Identification, resamples: int, seed: int,
                              metric: str = "Rank-1") -> ClaimResult:
    """Table 4's claim for model ``row``: ``metric`` on the SynLR test minus on the native LR test (both
    without distractors), an independent difference -- each set's identities resampled on their own."""
    boot_syn = Bootstrap(synthetic.probe_labels, resamples=resamples, seed=seed)
    boot_nat = Bootstrap(native.probe_labels, resamples=resamples, seed=seed)
    syn, nat = statistics(synthetic)[metric], statistics(native)[metric]
    return with_resolution_note(decide(
        claim_id("cheng2018.native_harder_finetuned", metric), independent_difference(boot_syn, syn, boot_nat, nat),
        parts={f"{row} (SynLR)": boot_syn.estimate(syn), f"{row} (native LR)": boot_nat.estimate(nat)}))
