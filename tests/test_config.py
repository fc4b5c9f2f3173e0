"""Experiment configs round-trip through JSON and reject typos; schedules give hand-computed rates."""

from __future__ import annotations

import json
import re

import pytest
import torch

from lrfr.training import ExperimentConfig, ScheduleConfig
from lrfr.cli import main
from lrfr.training.config import (
    ConfigError, DataSpec, HeadSpec, ModelSpec, OptimizerConfig, TermSpec, TrainConfig, TransformSpec,
)
from lrfr.training.experiment import run_experiment
from lrfr.training.optim import build_optimizer, build_scheduler, lr_factor


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
    with pytest.raises(ConfigError, match=r"^config.train.optimizer.lrr: unknown key$"):
        ExperimentConfig.from_dict(values)
    values = ling_config().to_dict()
    values["model"]["terms"] = {"name": "x"}
    with pytest.raises(ConfigError, match="config.model.terms: Input should be a valid list"):
        ExperimentConfig.from_dict(values)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        ExperimentConfig.from_json(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="missing.json does not exist"):
        ExperimentConfig.from_json(tmp_path / "missing.json")


@pytest.mark.parametrize("path, value, message", [
    (("train", "epochs"), "3", "Input should be a valid integer"),
    (("train", "epochs"), 3.0, "Input should be a valid integer"),
    (("train", "amp"), "no", "Input should be a valid boolean"),
    (("train", "epochs"), 0, "greater than or equal to 1"),
    (("train", "epochs"), -1, "greater than or equal to 1"),
    (("train", "batch_size"), 0, "greater than or equal to 1"),
    (("train", "num_workers"), -2, "greater than or equal to 0"),
    (("train", "optimizer", "lr"), 0, "greater than 0"),
    (("train", "optimizer", "lr"), -0.1, "greater than 0"),
    (("train", "optimizer", "lr"), "0.1", "Input should be a valid number"),
    (("train", "optimizer", "name"), "adam", "Input should be 'sgd' or 'adamw'"),
    (("train", "schedule", "milestones"), [2, 0], "greater than or equal to 1"),
    (("train", "clip_grad_norm"), 0, "greater than 0"),
    (("model", "backbone"), 50, "Input should be a valid string"),
    (("data", "main", "transforms"), [{"name": "hflip", "kwargs": {}, "p": 1}], "unknown key"),
])
def test_wrong_types_and_out_of_range_values_are_rejected_with_their_key_path(path, value, message):
    values = ling_config().to_dict()
    values["data"]["main"]["transforms"] = []
    parent = values
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    with pytest.raises(ConfigError, match=rf"config\.{'.'.join(path)}\S*: .*{message}"):
        ExperimentConfig.from_dict(values)


def test_every_problem_is_reported_at_once_and_an_int_is_a_float():
    values = {"train": {"epochs": "3", "amp": "no", "optimizer": {"lr": 1}}}
    with pytest.raises(ConfigError) as error:
        ExperimentConfig.from_dict(values)
    assert str(error.value).count("; ") == 1
    assert "config.train.epochs" in str(error.value) and "config.train.amp" in str(error.value)
    assert ExperimentConfig.from_dict({"train": {"optimizer": {"lr": 1}}}).train.optimizer.lr == 1.0


def test_direct_construction_and_assignment_are_validated():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    config = TrainConfig()
    with pytest.raises(ValueError, match="greater than 0"):
        config.optimizer.lr = 0.0
    assert DataSpec("folder", {"root": "x"}, [TransformSpec("hflip", {"p": 0.5})]).transforms[0].kwargs == {"p": 0.5}


def test_a_bad_config_fails_before_anything_is_written(tmp_path, capsys):
    """Today's bug: {"epochs": "3", "amp": "no"} trained with AMP on; epochs -1 exited 0 having trained nothing."""
    bad = ling_config().to_dict()
    bad["train"].update(epochs="3", amp="no")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "runs")]) == 1
    assert re.search(r"ConfigError: .*bad.json: config.train.epochs: .*config.train.amp", capsys.readouterr().err)
    assert not (tmp_path / "runs").exists()
    with pytest.raises(ConfigError, match=r"bad.json: config.train.epochs: .*config.train.amp"):
        ExperimentConfig.from_json(path)
    config = ling_config()
    config.data["main"].transforms = [TransformSpec("no_such_transform")]
    with pytest.raises(KeyError, match="no_such_transform"):
        run_experiment(config, tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


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
    with pytest.raises(ValueError, match="Input should be 'sgd' or 'adamw'"):
        OptimizerConfig(name="adam")
    with pytest.raises(ValueError, match="Input should be 'constant', 'multistep' or 'poly'"):
        ScheduleConfig(name="cosine")
