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
Deployment: the native-LR branch, SR then FR (:meth:`lrfr.training.Objective.recognizer`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrfr.training.config import (
    DataSpec, ExperimentConfig, HeadSpec, ModelSpec, OptimizerConfig, ScheduleConfig, TermSpec, TrainConfig,
)

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
    seed: int = 0
    num_workers: int = 0

    def backbone_spec(self) -> dict[str, Any]:
        return {"input_size": self.input_size, "embedding_size": self.embedding_size, **self.backbone_kwargs}


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
    return DataSpec("in_memory", {"dataset": "tinyface_train", "root": str(Path(setting.data_root) / "tinyface"),
                                  "input_size": setting.input_size})


def synthetic_stream(setting: Setting, patch: int | None = None, upsample: bool = True) -> DataSpec:
    """LR/HR pairs of the HR identity set: bicubic down to ``lr_sizes`` (and back up, for pre-upsampling SR)."""
    return DataSpec("lr_pairs", {
        "dataset": "folder", "root": str(Path(setting.data_root) / setting.hr_folder), "input_size": setting.input_size,
        "lr_sizes": list(setting.lr_sizes), "upsample": upsample, "patch": patch,
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
            backbone_kwargs={**setting.backbone_spec(), **(backbone_kwargs or {})},
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
    sr: str = "vdsr",
    sr_kwargs: dict[str, Any] | None = None,
    lambda_sr: float = LAMBDA_SR,
    pixel_reduction: str = "sum",
    head: str = "centerface",
) -> ExperimentConfig:
    """CSRI step 1 (synthetic LR SR-FR branch, Eq. 3) or step 2 (both branches, Eq. 4).

    Step 1 starts from the setting's HR pre-trained backbone and a fresh SR network; step 2 from the
    step-1 run ``pretrained`` (backbone, SR network and the synthetic branch's head). The pixel term is
    Eq. 1 summed over each image's pixels (``pixel_reduction="sum"``, see :mod:`lrfr.losses.pixel`).
    In step 2 the native stream comes first: an epoch is one pass over the native LR faces, the larger
    auxiliary set is cycled.
    """
    if step not in (1, 2):
        raise ValueError(f"CSRI is trained in step 1 or 2, got {step!r}")
    if step == 2 and pretrained is None:
        raise ValueError("CSRI step 2 starts from the step-1 run: pass pretrained=<its run folder>")
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
        ),
        data=data,
    )
