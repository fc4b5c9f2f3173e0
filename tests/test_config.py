"""Experiment configs round-trip through JSON and reject typos; schedules give hand-computed rates."""

from __future__ import annotations

import json

import pytest
import torch

from lrfr.training import ExperimentConfig, ScheduleConfig
from lrfr.training.config import DataSpec, HeadSpec, ModelSpec, TermSpec
from lrfr.training.optim import build_optimizer, build_scheduler, lr_factor
from lrfr.training.config import OptimizerConfig


def ling_config() -> ExperimentConfig:
    return ExperimentConfig(
        name="ling",
        model=ModelSpec(
            backbone="resnet34",
            heads={"main": HeadSpec("cosface", "main", {"scale": 48.0, "margin": 0.4})},
            terms=[
                TermSpec("dist", "feature_distance", 1.0, {"a": "main.hr", "b": "main.lr"}),
                TermSpec("cls_hr", "classification", 0.5, {"input": "main.hr"}),
            ],
        ),
        data={"main": DataSpec("tests.toy:make_toy", {"num_classes": 4})},
    )


def test_round_trip_through_json(tmp_path):
    config = ling_config()
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config.to_dict()))
    loaded = ExperimentConfig.from_json(path)
    assert loaded == config
    assert loaded.model.heads["main"].kwargs == {"scale": 48.0, "margin": 0.4}
    assert loaded.train.optimizer.betas == (0.9, 0.999)


def test_unknown_keys_and_wrong_types_are_named(tmp_path):
    values = ling_config().to_dict()
    values["train"]["optimizer"]["lrr"] = 0.1
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['lrr'\] in config.train.optimizer"):
        ExperimentConfig.from_dict(values)
    values = ling_config().to_dict()
    values["model"]["terms"] = {"name": "x"}
    with pytest.raises(TypeError, match="config.model.terms must be a list"):
        ExperimentConfig.from_dict(values)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        ExperimentConfig.from_json(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="missing.json does not exist"):
        ExperimentConfig.from_json(tmp_path / "missing.json")


def test_multistep_schedule():
    factor = lr_factor(ScheduleConfig(name="multistep", milestones=[2, 4], gamma=0.1), 10, 50)
    assert [factor(s) for s in (0, 19, 20, 39, 40, 49)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_warmup_then_polynomial_schedule():
    factor = lr_factor(ScheduleConfig(name="poly", warmup_epochs=1, power=2.0), 10, 50)
    # warm-up: (step + 1) / 10; then (1 - (step - 10) / 40) ** 2
    assert [factor(s) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert [factor(s) for s in (10, 30, 50)] == pytest.approx([1.0, 0.25, 0.0])


def test_scheduler_steps_the_optimizer_learning_rate():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = build_optimizer([parameter], OptimizerConfig(name="sgd", lr=0.2))
    scheduler = build_scheduler(optimizer, ScheduleConfig(name="multistep", milestones=[1]), 3, 2)
    rates = []
    for _ in range(6):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([0.2, 0.2, 0.2, 0.02, 0.02, 0.02])


def test_optimizer_choices_and_errors():
    parameter = torch.nn.Parameter(torch.zeros(1))
    adamw = build_optimizer([parameter], OptimizerConfig(name="adamw", lr=1e-3, weight_decay=0.05))
    assert isinstance(adamw, torch.optim.AdamW) and adamw.param_groups[0]["weight_decay"] == 0.05
    with pytest.raises(ValueError, match="every parameter is frozen"):
        build_optimizer([torch.nn.Parameter(torch.zeros(1), requires_grad=False)], OptimizerConfig())
    with pytest.raises(ValueError, match="unknown optimizer 'adam'"):
        build_optimizer([parameter], OptimizerConfig(name="adam"))
    with pytest.raises(ValueError, match="unknown schedule 'cosine'"):
        lr_factor(ScheduleConfig(name="cosine"), 1, 1)
