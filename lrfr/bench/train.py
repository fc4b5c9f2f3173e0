"""``lrfr bench train``: training and inference images/s of every backbone and every SR network.

Backbones at their default input size: training = forward through backbone + ArcFace head, backward,
SGD step (AMP on CUDA, as the trainer); inference = forward only in eval mode. SR networks (their
default, i.e. the papers', architecture) at x4 to ``--sr-size`` px faces: training = forward, pixel
MSE, backward, SGD step; inference = forward. One JSON line per model.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from lrfr.bench import BENCHMARKS, emit
from lrfr.losses import build_head, pixel_loss
from lrfr.models import BACKBONES, build_backbone
from lrfr.models.sr import SR_NETWORKS, build_sr_network
from lrfr.training.distributed import resolve_device

CPU_BATCH = {"quick": 128}  # other backbones: 8 images per step on a CPU, 128 on a GPU


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo on Linux, else what the platform reports)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(step, steps: int, device: torch.device) -> float:
    step()  # warm-up (allocations, cudnn autotuning)
    _synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    _synchronize(device)
    return time.perf_counter() - started


def throughput(
    loss: Callable[[], torch.Tensor], infer: Callable[[], object], modules: Sequence[nn.Module], steps: int,
    batch_size: int, device: torch.device,
) -> dict:
    """Images/s of an SGD training step on ``loss()`` (AMP on CUDA, as the trainer) and of ``infer()``
    in eval mode, for ``modules`` holding every parameter."""
    parameters = [p for module in modules for p in module.parameters()]
    optimizer = torch.optim.SGD(parameters, lr=0.01, momentum=0.9, weight_decay=5e-4)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    def train_step() -> None:
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            value = loss()
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(value).backward()
        scaler.step(optimizer)
        scaler.update()

    def inference_step() -> None:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            infer()

    for module in modules:
        module.train()
    train_seconds = _timed(train_step, steps, device)
    for module in modules:
        module.eval()
    inference_seconds = _timed(inference_step, steps, device)
    return {
        "amp": amp,
        "train_img_per_s": round(steps * batch_size / train_seconds, 1),
        "inference_img_per_s": round(steps * batch_size / inference_seconds, 1),
    }


def measure(name: str, batch_size: int, steps: int, device: torch.device, num_classes: int) -> dict:
    """Train and inference throughput of backbone ``name`` on ``device``."""
    torch.manual_seed(0)
    backbone = build_backbone(name).to(device)
    head = build_head("arcface", embedding_size=backbone.embedding_size, num_classes=num_classes).to(device)
    images = torch.randn(batch_size, 3, *backbone.input_size, device=device)
    labels = torch.randint(0, num_classes, (batch_size,), device=device)
    rates = throughput(lambda: head(backbone(images), labels).loss, lambda: backbone(images), [backbone, head],
                       steps, batch_size, device)
    return {
        "bench": "train",
        "backbone": name,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(),
        "batch_size": batch_size,
        "input_size": list(backbone.input_size),
        "embedding_size": backbone.embedding_size,
        "parameters": sum(p.numel() for p in backbone.parameters()),
        "steps": steps,
        **rates,
    }


def measure_sr(name: str, batch_size: int, steps: int, device: torch.device, size: int, scale: int = 4) -> dict:
    """Train and inference throughput of SR network ``name`` turning (size / scale) px faces into ``size`` px."""
    torch.manual_seed(0)
    network = build_sr_network(name, scale=scale).to(device)
    hr = torch.rand(batch_size, 3, size, size, device=device) * 2 - 1
    lr = torch.rand(batch_size, 3, size // scale, size // scale, device=device) * 2 - 1
    rates = throughput(lambda: pixel_loss(network(lr), hr), lambda: network(lr), [network], steps, batch_size, device)
    return {
        "bench": "train", "sr_network": name, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(), "batch_size": batch_size, "scale": scale,
        "input_size": [size // scale] * 2, "output_size": [size, size],
        "parameters": sum(p.numel() for p in network.parameters()), "steps": steps, **rates,
    }


@BENCHMARKS.register("train")
def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="lrfr bench train", description=__doc__)
    parser.add_argument("--backbones", nargs="*", default=BACKBONES.names(), choices=BACKBONES.names(),
                        help="backbones to measure (none: pass the option without names)")
    parser.add_argument("--batch-size", type=int, help="default: 128 on a GPU; on a CPU 128 (quick) or 8")
    parser.add_argument("--steps", type=int, help="timed steps after one warm-up (default: 20 GPU, 3 CPU)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--sr-networks", nargs="*", default=SR_NETWORKS.names(), choices=SR_NETWORKS.names(),
                        help="SR networks to measure (none: pass the option without names)")
    parser.add_argument("--sr-size", type=int, help="SR output size in px, x4 from a quarter of it (default: 112 GPU, 64 CPU)")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    gpu = device.type != "cpu"
    steps = args.steps or (20 if gpu else 3)
    for name in args.backbones:
        batch_size = args.batch_size or (128 if gpu else CPU_BATCH.get(name, 8))
        emit(measure(name, batch_size, steps, device, args.num_classes))
    for name in args.sr_networks:
        emit(measure_sr(name, args.batch_size or (64 if gpu else 8), steps, device, args.sr_size or (112 if gpu else 64)))
