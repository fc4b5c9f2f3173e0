"""Every setting of a training run, as plain dataclasses that round-trip through JSON.

An :class:`ExperimentConfig` is what a chapter (or ``lrfr train --config``) hands to the trainer:
the loop settings (:class:`TrainConfig`), the model and its composed loss (:class:`ModelSpec`) and
the data streams (:class:`DataSpec` per stream). Unknown keys are rejected with the list of valid ones,
so a typo in a papermill parameter fails loudly instead of being ignored.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

C = TypeVar("C")


@dataclass
class OptimizerConfig:
    """SGD with momentum (insightface, Ling et al. 2023: 0.9, 5e-4) or AdamW."""

    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    nesterov: bool = False


@dataclass
class ScheduleConfig:
    """Learning-rate schedule, applied per optimisation step.

    ``multistep``: lr * gamma^(number of ``milestones`` epochs passed) (Ling et al.: /10 at 16 and 24).
    ``poly``: linear warm-up over ``warmup_epochs``, then lr * (1 - progress)^power (insightface
    arcface_torch's PolyScheduler, power 2). ``constant``: warm-up (if any), then lr.
    """

    name: Literal["constant", "multistep", "poly"] = "multistep"
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    power: float = 2.0


@dataclass
class TrainConfig:
    """Settings of the training loop itself."""

    seed: int = 0
    epochs: int = 1
    batch_size: int = 128  # per process and per stream
    num_workers: int = 0
    device: str = "auto"  # "auto" picks cuda, then mps, then cpu
    amp: bool = True  # mixed precision (float16 + grad scaling); only ever used on CUDA
    clip_grad_norm: float | None = 5.0
    clip_grad_adjustable: float | None = None  # theta of VDSR's adjustable clipping to +-theta/lr (Kim et al. Sec. 3.3)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    keep_checkpoints: int | None = 2  # None keeps every epoch's checkpoint
    find_unused_parameters: bool = False  # DDP: set when some parameters get no gradient in a step
    progress: bool = True


@dataclass
class HeadSpec:
    """A classification head (see ``lrfr.losses.HEADS``) and its number of classes.

    ``num_classes`` is an int, or the name of a data stream whose dataset has a ``num_classes``.
    """

    kind: str = "arcface"
    num_classes: int | str = "main"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class TermSpec:
    """One weighted term of the composed loss (see ``lrfr.training.TERMS``)."""

    name: str
    kind: str
    weight: float = 1.0
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelSpec:
    """Backbone (+ optional super-resolution network in front of it) + heads + the loss terms.

    ``freeze`` lists module-name prefixes (e.g. ``"backbone"``) whose parameters are not trained and
    whose batch-norm statistics stay fixed; ``pretrained`` is a ``.safetensors`` file or run folder whose
    weights under the module prefixes ``pretrained_modules`` are loaded before training (by default the
    backbone only, so a model pre-trained on one identity set can be fine-tuned on another);
    ``pretrained_sr`` another source for the SR network's weights (SR-then-FR: an SR run and an FR run).
    ``backbone=None`` builds a model that only super-resolves (no heads).
    """

    backbone: str | None = "quick"
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    sr: str | None = None
    sr_kwargs: dict[str, Any] = field(default_factory=dict)
    heads: dict[str, HeadSpec] = field(default_factory=lambda: {"main": HeadSpec()})
    terms: list[TermSpec] = field(
        default_factory=lambda: [TermSpec(name="cls", kind="classification")]
    )
    freeze: list[str] = field(default_factory=list)
    pretrained: str | None = None
    pretrained_modules: list[str] = field(default_factory=lambda: ["backbone"])
    pretrained_sr: str | None = None


@dataclass
class DataSpec:
    """A dataset factory from ``lrfr.data.DATASETS`` (or an allowed ``"module:function"``, see :mod:`lrfr.registry`) and its arguments."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExperimentConfig:
    """Everything needed to reproduce one training run."""

    name: str = "run"
    train: TrainConfig = field(default_factory=TrainConfig)
    model: ModelSpec = field(default_factory=ModelSpec)
    data: dict[str, DataSpec] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

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
        return cls.from_dict(values)


def from_dict(cls: type[C], values: Any, where: str = "config") -> C:
    """Build dataclass ``cls`` from nested plain values, rejecting unknown keys and wrong types."""
    if not isinstance(values, dict):
        raise TypeError(f"{where} must be a mapping for {cls.__name__}, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; expected some of {sorted(names)}")
    kwargs = {key: _convert(hints[key], value, f"{where}.{key}") for key, value in values.items()}
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise ValueError(f"{where}: {error}") from None


def _convert(hint: Any, value: Any, where: str) -> Any:
    """Convert one value to the annotated type (dataclasses, dict/list of them, tuples)."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        dataclass_options = [a for a in options if dataclasses.is_dataclass(a)]
        return _convert(dataclass_options[0], value, where) if dataclass_options else value
    if origin is dict:
        _, value_type = typing.get_args(hint)
        if not isinstance(value, dict):
            raise TypeError(f"{where} must be a mapping, got {type(value).__name__}")
        return {k: _convert(value_type, v, f"{where}.{k}") for k, v in value.items()}
    if origin is list:
        (item_type,) = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{where} must be a list, got {type(value).__name__}")
        return [_convert(item_type, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        return tuple(value)
    return value
