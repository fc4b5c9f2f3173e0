"""One training loop for every chapter (see :mod:`lrfr.training.trainer`)."""

from lrfr.training.config import (
    ConfigError,
    DataSpec,
    ExperimentConfig,
    HeadSpec,
    ModelSpec,
    OptimizerConfig,
    ScheduleConfig,
    TermSpec,
    TrainConfig,
    TransformSpec,
    ValidationConfig,
    VerificationSetSpec,
)
from lrfr.training.experiment import run_experiment
from lrfr.training.objective import (
    SR_NETWORKS,
    TERMS,
    ClassificationTerm,
    FeatureDistanceTerm,
    LossTerm,
    Objective,
    PixelTerm,
    StepContext,
    build_objective,
    load_pretrained,
)
from lrfr.training.recognizability_term import RecognizabilityTerm
from lrfr.training.rng import seed_everything
from lrfr.training.trainer import NonFiniteLossError, Trainer

__all__ = [
    "ClassificationTerm", "ConfigError", "DataSpec", "ExperimentConfig", "FeatureDistanceTerm", "HeadSpec", "LossTerm",
    "ModelSpec", "NonFiniteLossError", "Objective", "OptimizerConfig", "PixelTerm", "RecognizabilityTerm",
    "SR_NETWORKS", "ScheduleConfig", "StepContext", "TERMS", "TermSpec", "TrainConfig", "Trainer", "TransformSpec",
    "ValidationConfig", "VerificationSetSpec",
    "build_objective", "load_pretrained", "run_experiment", "seed_everything",
]
