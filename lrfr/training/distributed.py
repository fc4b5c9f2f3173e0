"""Device choice and torchrun/DDP process-group set-up (NCCL on CUDA, gloo on CPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class ProcessInfo:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"`` -> cuda (this process's local GPU), else mps, else cpu; other names as given."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available here")
    return device


def init_process(device_name: str = "auto") -> tuple[ProcessInfo, torch.device]:
    """Join the torchrun process group if the environment describes one; return rank info and device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    info = ProcessInfo(
        rank=int(os.environ.get("RANK", "0")),
        world_size=world_size,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )
    device = resolve_device(device_name, info.local_rank)
    if info.distributed and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info, device


def barrier(info: ProcessInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.barrier()


def shutdown(info: ProcessInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()
