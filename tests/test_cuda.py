"""Checks that need a GPU (skipped without CUDA): AMP training, resume and extraction on the device."""

from __future__ import annotations

import pytest
import torch

from lrfr.protocols import extract_embeddings
from lrfr.runs import RunFolder
from lrfr.training import HeadSpec, ModelSpec, OptimizerConfig, ScheduleConfig, TrainConfig, Trainer, build_objective
from lrfr.training.rng import seed_everything
from tests.toy import ToyFaces

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def cuda_config(**overrides) -> TrainConfig:
    values = dict(epochs=4, batch_size=16, device="cuda", amp=True, progress=False,
                  optimizer=OptimizerConfig(lr=0.05), schedule=ScheduleConfig(name="constant"))
    values.update(overrides)
    return TrainConfig(**values)


def objective(head: str = "arcface"):
    seed_everything(0)
    return build_objective(ModelSpec(backbone="quick", heads={"main": HeadSpec(head, 4, {"scale": 16.0})}))


@pytest.mark.parametrize("head", ["arcface", "adaface", "magface"])
def test_amp_training_on_cuda_learns(head):
    model = objective(head)
    trainer = Trainer(cuda_config(), model, {"main": ToyFaces(per_class=32)})
    assert trainer.use_amp and trainer.scaler.is_enabled()
    history = trainer.fit()
    assert next(model.parameters()).device.type == "cuda"
    assert history[-1]["loss"] < 0.7 * history[0]["loss"], [h["loss"] for h in history]


def test_resume_on_cuda(tmp_path):
    data = {"main": ToyFaces(per_class=16)}
    straight = RunFolder.create(tmp_path, "a", {"t": 1}, seed=0)
    reference = objective()
    Trainer(cuda_config(epochs=3), reference, data, straight).fit()
    partial = RunFolder.create(tmp_path, "b", {"t": 1}, seed=0)
    Trainer(cuda_config(epochs=1), objective(), data, partial).fit()
    resumed = objective()
    history = Trainer(cuda_config(epochs=3), resumed, data, RunFolder.open(partial.path)).fit()
    assert [h["epoch"] for h in history] == [1, 2, 3]
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=1e-3, atol=1e-4, msg=key)


def test_flip_fused_extraction_on_cuda_matches_cpu():
    model = objective().backbone.eval()
    images = torch.randn(10, 3, 32, 32)
    on_cpu = extract_embeddings(model, images, flip_fusion=True, progress=False)
    on_gpu = extract_embeddings(model.cuda(), images, flip_fusion=True, progress=False)
    torch.testing.assert_close(torch.from_numpy(on_gpu.embeddings), torch.from_numpy(on_cpu.embeddings), atol=1e-3, rtol=0.0)  # TF32 convolutions on the GPU
