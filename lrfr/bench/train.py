"""``lrfr bench train``: training and inference images/s of every backbone and every SR network.

Backbones at their default input size: training = forward through backbone + ArcFace head, backward,
SGD step (AMP on CUDA, as the trainer); inference = forward only in eval mode. SR networks (their
default, i.e. the papers', architecture) at x4 to ``--sr-size`` px faces: training = forward, pixel
MSE, backward, SGD step; inference = forward. One JSON line per model.

``--maug`` adds one line per backbone with the cost of Ling et al.'s training (``"objective": "maug"``):
the composed objective of a plain CosFace step on B HR faces against one MAug + LogExp step (B HR faces
and their B LR copies through the backbone, Eq. 7-8), both through :class:`lrfr.training.Objective`,
and the time to make the B LR copies (bicubic down and up, done by the data loader in training).
``cost_ratio`` is the plain step's training throughput over the MAug step's (HR faces per second).
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
from lrfr.data.resolution import down_up, maug
from lrfr.experiments.maug import COSFACE, total_loss_terms
from lrfr.losses import build_head, pixel_loss
from lrfr.models import build_backbone, image_backbones
from lrfr.models.sr import SR_NETWORKS, build_sr_network
from lrfr.training.config import HeadSpec, ModelSpec, TermSpec
from lrfr.training.distributed import resolve_device
from lrfr.training.objective import build_objective

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


def measure_maug(name: str, batch_size: int, steps: int, device: torch.device, num_classes: int,
                 input_size: int | None) -> dict:
    """Plain CosFace vs MAug + LogExp (paired HR + LR forward) training steps of backbone ``name``."""
    torch.manual_seed(0)
    kwargs = {"input_size": input_size} if input_size else {}
    head = {"main": HeadSpec("cosface", num_classes, dict(COSFACE))}
    plain = build_objective(ModelSpec(backbone=name, backbone_kwargs=kwargs, heads=head,
                                      terms=[TermSpec("cls", "classification", 1.0, {"input": "main.hr"})])).to(device)
    paired = build_objective(ModelSpec(backbone=name, backbone_kwargs=kwargs, heads=head,
                                       terms=total_loss_terms("logexp", 1.0, 1.0))).to(device)
    size = plain.backbone.input_size
    hr = torch.rand(batch_size, 3, *size) * 2 - 1
    sizes = maug().draw(batch_size)

    def lr_copies() -> torch.Tensor:
        return torch.stack([down_up(image, int(s)) for image, s in zip(hr, sizes)])

    batch = {"main.hr": hr.to(device), "main.lr": lr_copies().to(device),
             "main.label": torch.randint(0, num_classes, (batch_size,), device=device)}
    rates = {label: throughput(lambda o=objective: sum(o(batch).values()), lambda o=objective: o.backbone(batch["main.hr"]),
                               [objective], steps, batch_size, device)["train_img_per_s"]
             for label, objective in (("plain", plain), ("maug", paired))}
    copies_seconds = _timed(lr_copies, steps, torch.device("cpu"))
    return {
        "bench": "train", "objective": "maug", "backbone": name, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(), "batch_size": batch_size, "input_size": list(size), "steps": steps,
        "plain_img_per_s": rates["plain"], "maug_img_per_s": rates["maug"],
        "cost_ratio": round(rates["plain"] / rates["maug"], 2),
        "lr_copies_img_per_s": round(steps * batch_size / copies_seconds, 1),
    }


@BENCHMARKS.register("train")
def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="lrfr bench train", description=__doc__)
    parser.add_argument("--backbones", nargs="*", default=image_backbones(), choices=image_backbones(),
                        help="backbones to measure (none: pass the option without names)")
    parser.add_argument("--batch-size", type=int, help="default: 128 on a GPU; on a CPU 128 (quick) or 8")
    parser.add_argument("--steps", type=int, help="timed steps after one warm-up (default: 20 GPU, 3 CPU)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--maug", action="store_true", help="also time Ling et al.'s paired MAug + LogExp step")
    parser.add_argument("--input-size", type=int, help="input size for the --maug line (default: the backbone's)")
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
        if args.maug:
            emit(measure_maug(name, batch_size, steps, device, args.num_classes, args.input_size))
    for name in args.sr_networks:
        emit(measure_sr(name, args.batch_size or (64 if gpu else 8), steps, device, args.sr_size or (112 if gpu else 64)))
