"""``make gpu-check`` (scripts/gpu-check.sh) and its ``lrfr bench fit``, run small on the CPU: the script's
commands and options are the ones the GPU machine will run, only the sizes and the device differ."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_script_trains_with_both_guard_settings_validates_and_runs_bench_scale(tmp_path):
    small = {"DATA_ROOT": str(tmp_path), "DEVICE": "cpu", "PRESET": "tiny", "BACKBONE": "quick", "INPUT_SIZE": "32",
             "STEPS": "2", "BATCH": "4", "WORKERS": "0", "IDENTITIES": "6", "DISTRACTORS": "20", "UI": "12",
             "OMP_NUM_THREADS": "1"}
    environment = {**os.environ, **small, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu-check.sh")], env=environment, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(line["bench"], line.get("finite_check_every", line.get("phase"))) for line in lines] == [
        ("fit", 1), ("fit", 100), ("scale", "embed"), ("scale", "tinyface")]
    for fit in lines[:2]:
        assert fit["steps"] == 2 and fit["batch_size"] == 4 and fit["images_per_s"] > 0 and fit["amp"] is False
        assert 0.0 <= fit["val/lfw/accuracy"] <= 1.0 and fit["loss"] > 0
    assert lines[3]["distractors"] == 20


def test_make_gpu_check_runs_the_script_with_the_venv_first_on_the_path():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ngpu-check:", 1)[1].split("\n\n", 1)[0]
    assert 'PATH="$(abspath $(BIN)):$$PATH" bash scripts/gpu-check.sh' in recipe
