"""``lrfr bench train``: training and inference images/s of every backbone at its default input size.

Training = forward through backbone + ArcFace head, backward, SGD step (AMP on CUDA, as the trainer).
Inference = forward only in eval mode. One JSON line per backbone.

``--maug`` adds one line per backbone with the cost of Ling et al.'s training (``"objective": "maug"``):
the composed objective of a plain CosFace step on B HR faces against one MAug + LogExp step (B HR faces
and their B LR copies through the backbone, Eq. 7-8), both through :class:`lrfr.training.Objective`,
and the time to make the B LR copies (bicubic down and up, done by the data loader in training).
``cost_ratio`` is the plain step's throughput over the MAug step's (model only).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from lrfr.bench import BENCHMARKS, emit
from lrfr.data.resolution import down_up, maug
from lrfr.experiments.maug import COSFACE, total_loss_terms
from lrfr.losses import build_head
from lrfr.models import BACKBONES, build_backbone
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


def measure(name: str, batch_size: int, steps: int, device: torch.device, num_classes: int) -> dict:
    """Train and inference throughput of backbone ``name`` on ``device``."""
    torch.manual_seed(0)
    backbone = build_backbone(name).to(device)
    head = build_head("arcface", embedding_size=backbone.embedding_size, num_classes=num_classes).to(device)
    images = torch.randn(batch_size, 3, *backbone.input_size, device=device)
    labels = torch.randint(0, num_classes, (batch_size,), device=device)
    parameters = list(backbone.parameters()) + list(head.parameters())
    optimizer = torch.optim.SGD(parameters, lr=0.01, momentum=0.9, weight_decay=5e-4)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    def train_step() -> None:
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            loss = head(backbone(images), labels).loss
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    def inference_step() -> None:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            backbone(images)

    backbone.train(), head.train()
    train_seconds = _timed(train_step, steps, device)
    backbone.eval()
    inference_seconds = _timed(inference_step, steps, device)
    return {
        "bench": "train",
        "backbone": name,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(),
        "amp": amp,
        "batch_size": batch_size,
        "input_size": list(backbone.input_size),
        "embedding_size": backbone.embedding_size,
        "parameters": sum(p.numel() for p in backbone.parameters()),
        "steps": steps,
        "train_img_per_s": round(steps * batch_size / train_seconds, 1),
        "inference_img_per_s": round(steps * batch_size / inference_seconds, 1),
    }


def _objective_step(spec: ModelSpec, batch: dict, device: torch.device):
    """One SGD step of the composed objective ``spec`` on ``batch`` (AMP on CUDA, as the trainer)."""
    objective = build_objective(spec).to(device).train()
    optimizer = torch.optim.SGD(objective.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            loss = sum(objective(batch).values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return step


def measure_maug(name: str, batch_size: int, steps: int, device: torch.device, num_classes: int,
                 input_size: int | None) -> dict:
    """Plain CosFace vs MAug + LogExp (paired HR + LR forward) steps of backbone ``name``, HR faces per second."""
    torch.manual_seed(0)
    kwargs = {"input_size": input_size} if input_size else {}
    size = build_backbone(name, **kwargs).input_size
    hr = torch.rand(batch_size, 3, *size) * 2 - 1
    labels = torch.randint(0, num_classes, (batch_size,))
    augmentation = maug()
    sizes = augmentation.draw(batch_size)

    def make_lr() -> torch.Tensor:
        return torch.stack([down_up(image, int(s)) for image, s in zip(hr, sizes)])

    lr = make_lr()
    head = {"main": HeadSpec("cosface", num_classes, dict(COSFACE))}
    plain = ModelSpec(backbone=name, backbone_kwargs=kwargs, heads=head,
                      terms=[TermSpec("cls", "classification", 1.0, {"input": "main.hr"})])
    paired = ModelSpec(backbone=name, backbone_kwargs=kwargs, heads=head, terms=total_loss_terms("logexp", 1.0, 1.0))
    batch = {"main.hr": hr.to(device), "main.lr": lr.to(device), "main.label": labels.to(device)}
    plain_seconds = _timed(_objective_step(plain, batch, device), steps, device)
    maug_seconds = _timed(_objective_step(paired, batch, device), steps, device)
    augment_seconds = _timed(make_lr, steps, torch.device("cpu"))
    plain_rate, maug_rate = steps * batch_size / plain_seconds, steps * batch_size / maug_seconds
    return {
        "bench": "train",
        "objective": "maug",
        "backbone": name,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(),
        "batch_size": batch_size,
        "input_size": list(size),
        "steps": steps,
        "plain_img_per_s": round(plain_rate, 1),
        "maug_img_per_s": round(maug_rate, 1),
        "cost_ratio": round(plain_rate / maug_rate, 2),
        "lr_copies_img_per_s": round(steps * batch_size / augment_seconds, 1),
    }


@BENCHMARKS.register("train")
def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="lrfr bench train", description=__doc__)
    parser.add_argument("--backbones", nargs="+", default=BACKBONES.names(), choices=BACKBONES.names())
    parser.add_argument("--batch-size", type=int, help="default: 128 on a GPU; on a CPU 128 (quick) or 8")
    parser.add_argument("--steps", type=int, help="timed steps after one warm-up (default: 20 GPU, 3 CPU)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--maug", action="store_true", help="also time Ling et al.'s paired MAug + LogExp step")
    parser.add_argument("--input-size", type=int, help="input size for the --maug line (default: the backbone's)")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    gpu = device.type != "cpu"
    for name in args.backbones:
        batch_size = args.batch_size or (128 if gpu else CPU_BATCH.get(name, 8))
        steps = args.steps or (20 if gpu else 3)
        emit(measure(name, batch_size, steps, device, args.num_classes))
        if args.maug:
            emit(measure_maug(name, batch_size, steps, device, args.num_classes, args.input_size))
