"""The shared HR pre-training: presets, their configuration, and a run trained once then reused."""

from __future__ import annotations

import pytest
import torch

from lrfr.experiments import pretraining
from lrfr.experiments.pretraining import PRESETS, pretrain_config, pretrained_backbone, preset
from lrfr.experiments.workflow import config_hash
from tests.fixtures_data import write_image


def test_unknown_preset_is_named():
    with pytest.raises(ValueError, match="unknown pre-training preset 'fast'.*quick"):
        preset("fast")


def test_quick_preset_reads_64_px_faces_and_overrides_apply():
    assert PRESETS["quick"].input_size >= 64  # a resolution study needs an input well above its 32-px probes
    assert preset("quick", epochs=3).epochs == 3 and PRESETS["quick"].epochs != 3


def test_config_holds_the_preset(tmp_path):
    setting = preset("smoke", epochs=10)
    config = pretrain_config(tmp_path, setting, seed=3)
    assert config.name == "pretrain-quick" and config.train.seed == 3
    assert config.train.schedule.milestones == [6, 8]  # lr / 10 at 60 % and 85 % of 10 epochs
    assert config.model.backbone_kwargs == {"input_size": 32, "embedding_size": 16, "widths": [8, 16, 32],
                                            "blocks": [1, 1, 1]}
    assert config.data["main"].name == "in_memory" and config.data["main"].kwargs["root"] == str(tmp_path / "hr")
    streamed = pretrain_config(tmp_path, preset("full"))
    assert streamed.data["main"].name == "recordio" and streamed.data["main"].kwargs["root"].endswith("casia_webface")


def test_pretrained_backbone_trains_once_then_reuses_the_run(tmp_path, monkeypatch):
    for identity in range(3):
        for image in range(3):
            write_image(tmp_path / "data" / "hr" / f"id{identity}" / f"{image:03d}.jpg", 40, 40, seed=10 * identity + image)
    run, model = pretrained_backbone(tmp_path / "data", tmp_path / "results", "smoke", seed=0)
    setting = pretrain_config(tmp_path / "data", PRESETS["smoke"], 0)
    assert run.path.name == f"pretrain-quick-{config_hash(setting)}" and run.latest_checkpoint() == 1
    monkeypatch.setattr("lrfr.experiments.workflow.run_experiment",
                        lambda *a, **k: pytest.fail("a finished pre-training was trained again"))
    again, reloaded = pretraining.pretrained_backbone(tmp_path / "data", tmp_path / "results", "smoke", seed=0)
    assert again.path == run.path
    torch.testing.assert_close(reloaded.state_dict(), model.state_dict())
