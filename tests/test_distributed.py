"""The same entry point under torchrun: 2 CPU processes with the gloo backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lrfr.runs import RunFolder
from lrfr.training import ExperimentConfig, build_objective
from lrfr.training.config import DataSpec, HeadSpec, ModelSpec, OptimizerConfig, ScheduleConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path):
    config = ExperimentConfig(
        name="ddp",
        train=TrainConfig(
            epochs=3, batch_size=8, device="cpu", progress=False,
            optimizer=OptimizerConfig(lr=0.05), schedule=ScheduleConfig(name="constant"),
        ),
        model=ModelSpec(backbone="quick", heads={"main": HeadSpec("cosface", "main", {"scale": 16.0})}),
        data={"main": DataSpec("tests.toy:make_toy", {"num_classes": 4, "per_class": 16})},
    )
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config.to_dict()))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "lrfr", "train", "--config", str(config_path), "--out", str(tmp_path / "runs"),
         "--allow-import", "tests"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = RunFolder.open(tmp_path / "runs" / "ddp")
    history = run.metrics()["train_history"]
    # 64 samples, 2 processes x 8 per step: 4 steps per epoch, each process sees its own half
    assert len(history) == 3 and history[-1]["loss"] < history[0]["loss"]
    assert run.latest_checkpoint() == 3
    weights, state = run.load_checkpoint()
    assert state["global_step"] == 3 * 4
    objective = build_objective(config.model, {"main": 4})
    objective.load_state_dict(weights)
