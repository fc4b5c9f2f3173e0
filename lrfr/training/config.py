"""Every setting of a training run, validated on construction and round-tripping through JSON.

An :class:`ExperimentConfig` is what a chapter (or ``lrfr train --config``) hands to the trainer:
the loop settings (:class:`TrainConfig`), the model and its composed loss (:class:`ModelSpec`) and
the data streams (:class:`DataSpec` per stream, each with its training :class:`TransformSpec` list).

The classes are pydantic dataclasses: every value is checked when a config is built or a field is
assigned, strictly (``"3"`` is not an int, ``"no"`` is not a bool; an int is accepted where a float
is expected) and against its range (``epochs >= 1``, ``batch_size >= 1``, ``lr > 0``, ...); unknown
keys are rejected. :func:`from_dict` (and ``ExperimentConfig.from_dict`` / ``from_json``) reports every
problem at once as a :class:`ConfigError` naming the key path, e.g. ``config.train.epochs``, before
anything is built or written. Registry names (backbone, head, term, dataset, transform) are checked
when the run is built, which also happens before its run folder is written.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import ConfigDict, Field, Strict, TypeAdapter, ValidationError, field_validator
from pydantic.dataclasses import dataclass

C = TypeVar("C")

Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]
Float = Annotated[float, Strict()]  # strict, but an int is accepted for a float
Str = Annotated[str, Strict()]
Positive = Annotated[Int, Field(ge=1)]
NonNegative = Annotated[Int, Field(ge=0)]
PositiveFloat = Annotated[Float, Field(gt=0)]
NonNegativeFloat = Annotated[Float, Field(ge=0)]
Kwargs = dict[Str, Any]
_CONFIG = ConfigDict(extra="forbid", validate_assignment=True)


class ConfigError(ValueError):
    """A config value has the wrong type, is out of range, or a key is unknown; the message lists each
    problem with its key path."""


@dataclass(config=_CONFIG)
class OptimizerConfig:
    """SGD with momentum (insightface, Ling et al. 2023: 0.9, 5e-4) or AdamW."""

    name: Literal["sgd", "adamw"] = "sgd"
    lr: PositiveFloat = 0.1
    momentum: Annotated[Float, Field(ge=0, lt=1)] = 0.9
    weight_decay: NonNegativeFloat = 5e-4
    betas: tuple[Annotated[Float, Field(ge=0, lt=1)], Annotated[Float, Field(ge=0, lt=1)]] = (0.9, 0.999)
    nesterov: Bool = False


@dataclass(config=_CONFIG)
class ScheduleConfig:
    """Learning-rate schedule, applied per optimisation step.

    ``multistep``: lr * gamma^(number of ``milestones`` epochs passed) (Ling et al.: /10 at 16 and 24).
    ``poly``: linear warm-up over ``warmup_epochs``, then lr * (1 - progress)^power (insightface
    arcface_torch's PolyScheduler, power 2). ``constant``: warm-up (if any), then lr.
    """

    name: Literal["constant", "multistep", "poly"] = "multistep"
    milestones: list[Positive] = field(default_factory=list)
    gamma: PositiveFloat = 0.1
    warmup_epochs: NonNegativeFloat = 0.0
    power: PositiveFloat = 2.0


@dataclass(config=_CONFIG)
class VerificationSetSpec:
    """A verification set evaluated during training: an LFW-layout folder (``<name>/<name>_<nnnn>.jpg``
    and ``pairs_file``; XQLFW has the same layout) or an insightface ``.bin`` file (``path`` ending in .bin)."""

    name: Annotated[Str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    path: Str
    pairs_file: Str = "pairs.txt"


@dataclass(config=_CONFIG)
class ValidationConfig:
    """Verification accuracy (10-fold, as LFW's protocol) of the recognizer on ``sets`` every ``every``
    epochs and after the last one, logged in the epoch's history entry beside the loss as
    ``val/<set>/accuracy`` and ``val/<set>/accuracy_std``."""

    sets: Annotated[list[VerificationSetSpec], Field(min_length=1)]
    every: Positive = 1  # epochs
    batch_size: Positive = 256
    flip_fusion: Bool = False

    @field_validator("sets")
    @classmethod
    def _unique_names(cls, sets: list[VerificationSetSpec]) -> list[VerificationSetSpec]:
        names = [s.name for s in sets]
        if len(set(names)) != len(names):
            raise ValueError(f"set names must be unique, got {names}")
        return sets


@dataclass(config=_CONFIG)
class TrainConfig:
    """Settings of the training loop itself."""

    seed: NonNegative = 0
    epochs: Positive = 1
    batch_size: Positive = 128  # per process and per stream
    num_workers: NonNegative = 0
    device: Str = "auto"  # "auto" picks cuda, then mps, then cpu
    amp: Bool = True  # mixed precision (float16 + grad scaling); only ever used on CUDA
    clip_grad_norm: PositiveFloat | None = 5.0
    clip_grad_adjustable: PositiveFloat | None = None  # theta of VDSR's adjustable clipping to +-theta/lr (Kim et al. Sec. 3.3)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    keep_checkpoints: Positive | None = 2  # None keeps every epoch's checkpoint
    find_unused_parameters: Bool = False  # DDP: set when some parameters get no gradient in a step
    progress: Bool = True
    finite_check_every: Positive = 100  # steps between reads of the device-side NaN/inf record (lrfr.training.finite)
    validation: ValidationConfig | None = None


@dataclass(config=_CONFIG)
class HeadSpec:
    """A classification head (see ``lrfr.losses.HEADS``) and its number of classes.

    ``num_classes`` is an int, or the name of a data stream whose dataset has a ``num_classes``.
    """

    kind: Str = "arcface"
    num_classes: Positive | Str = "main"
    kwargs: Kwargs = field(default_factory=dict)


@dataclass(config=_CONFIG)
class TermSpec:
    """One weighted term of the composed loss (see ``lrfr.training.TERMS``)."""

    name: Str
    kind: Str
    weight: NonNegativeFloat = 1.0
    kwargs: Kwargs = field(default_factory=dict)


@dataclass(config=_CONFIG)
class ModelSpec:
    """Backbone (+ optional super-resolution network in front of it) + heads + the loss terms.

    ``freeze`` lists module-name prefixes (e.g. ``"backbone"``) whose parameters are not trained and
    whose batch-norm statistics stay fixed; ``pretrained`` is a ``.safetensors`` file or run folder whose
    weights under the module prefixes ``pretrained_modules`` are loaded before training (by default the
    backbone only, so a model pre-trained on one identity set can be fine-tuned on another);
    ``pretrained_sr`` another source for the SR network's weights (SR-then-FR: an SR run and an FR run).
    ``backbone=None`` builds a model that only super-resolves (no heads).
    """

    backbone: Str | None = "quick"
    backbone_kwargs: Kwargs = field(default_factory=dict)
    sr: Str | None = None
    sr_kwargs: Kwargs = field(default_factory=dict)
    heads: dict[Str, HeadSpec] = field(default_factory=lambda: {"main": HeadSpec()})
    terms: list[TermSpec] = field(default_factory=lambda: [TermSpec(name="cls", kind="classification")])
    freeze: list[Str] = field(default_factory=list)
    pretrained: Str | None = None
    pretrained_modules: list[Str] = field(default_factory=lambda: ["backbone"])
    pretrained_sr: Str | None = None


@dataclass(config=_CONFIG)
class TransformSpec:
    """A training transform from ``lrfr.data.transforms.TRANSFORMS`` and its arguments."""

    name: Str
    kwargs: Kwargs = field(default_factory=dict)


@dataclass(config=_CONFIG)
class DataSpec:
    """A dataset factory from ``lrfr.data.DATASETS`` (or an allowed ``"module:function"``, see
    :mod:`lrfr.registry`), its arguments, and the transforms applied to its samples in training, in
    order (seeded per sample, see :mod:`lrfr.data.transforms`)."""

    name: Str
    kwargs: Kwargs = field(default_factory=dict)
    transforms: list[TransformSpec] = field(default_factory=list)


@dataclass(config=_CONFIG)
class ExperimentConfig:
    """Everything needed to reproduce one training run."""

    name: Str = "run"
    train: TrainConfig = field(default_factory=TrainConfig)
    model: ModelSpec = field(default_factory=ModelSpec)
    data: dict[Str, DataSpec] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def record(self) -> dict[str, Any]:
        """:meth:`to_dict` without the :data:`LATER_SETTINGS` that are at their default: what a run folder
        records and what identifies a run, so that a run recorded before such a setting existed keeps
        its identity (and its cache hash); reading a record back (:func:`from_dict`) restores the defaults."""
        values = self.to_dict()
        for section, keys in LATER_SETTINGS.items():
            defaults = {f.name: f.default for f in dataclasses.fields(type(getattr(self, section)))}
            for key in keys:
                if values[section][key] == defaults[key]:
                    del values[section][key]
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ExperimentConfig":
        return from_dict(cls, values)

    @classmethod
    def from_json(cls, path: str | Path) -> "ExperimentConfig":
        path = Path(path)
        try:
            values = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"experiment config {path} does not exist") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"experiment config {path} is not valid JSON: {error}") from None
        try:
            return cls.from_dict(values)
        except ConfigError as error:
            raise ConfigError(f"experiment config {path}: {error}") from None


LATER_SETTINGS = {"train": ("finite_check_every", "validation")}  # settings added after the first run folders


def from_dict(cls: type[C], values: Any, where: str = "config") -> C:
    """Build the config class ``cls`` from nested plain values (as JSON gives them), or raise a
    :class:`ConfigError` listing every wrong key with its path under ``where``."""
    try:
        return TypeAdapter(cls).validate_python(values)
    except ValidationError as error:
        raise ConfigError(describe(error, where)) from None


def describe(error: ValidationError, where: str = "config") -> str:
    """One line per problem: ``<where>.<key path>: <what is wrong> (got <value>)``."""
    lines = []
    for problem in error.errors(include_url=False):
        path = ".".join([where, *(str(part) for part in problem["loc"])])
        if problem["type"] == "unexpected_keyword_argument":
            lines.append(f"{path}: unknown key")
        elif problem["type"] == "missing":
            lines.append(f"{path}: missing")
        else:
            lines.append(f"{path}: {problem['msg']} (got {problem['input']!r})")
    return "; ".join(lines)
