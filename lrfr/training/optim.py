"""Optimisers (SGD, AdamW), per-step learning-rate schedules (multi-step, warm-up + polynomial) and
VDSR's adjustable gradient clipping."""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

from lrfr.training.config import OptimizerConfig, ScheduleConfig


def build_optimizer(parameters: Iterable[nn.Parameter], config: OptimizerConfig) -> torch.optim.Optimizer:
    """SGD (momentum, weight decay) or AdamW over the trainable ``parameters`` (the config's values are
    validated: :class:`~lrfr.training.config.OptimizerConfig`)."""
    trainable = [p for p in parameters if p.requires_grad]
    if not trainable:
        raise ValueError("nothing to train: every parameter is frozen")
    if config.name == "sgd":
        return torch.optim.SGD(
            trainable, lr=config.lr, momentum=config.momentum,
            weight_decay=config.weight_decay, nesterov=config.nesterov,
        )
    return torch.optim.AdamW(trainable, lr=config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay)


def lr_factor(config: ScheduleConfig, steps_per_epoch: int, total_steps: int) -> Callable[[int], float]:
    """The multiplier of the base learning rate at optimisation step ``step`` (0-based); the config's
    values are validated (:class:`~lrfr.training.config.ScheduleConfig`)."""
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    milestones = sorted(m * steps_per_epoch for m in config.milestones)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if config.name == "multistep":
            return config.gamma ** sum(step >= m for m in milestones)
        if config.name == "poly":
            progress = (step - warmup) / max(1, total_steps - warmup)
            return max(0.0, 1.0 - progress) ** config.power
        return 1.0

    return factor


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: ScheduleConfig, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step scheduler; its state (the step count) is checkpointed, the rule is rebuilt."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_factor(config, steps_per_epoch, steps_per_epoch * epochs)
    )


@torch.no_grad()
def clip_gradients_adjustable(optimizer: torch.optim.Optimizer, theta: float) -> None:
    """VDSR's adjustable gradient clipping (Kim et al. CVPR 2016, Sec. 3.3): every gradient element
    clipped to ``[-theta / gamma, theta / gamma]``, gamma the current learning rate of its parameter group,
    so that a high learning rate cannot explode while the bound loosens as the rate decays."""
    if theta <= 0:
        raise ValueError(f"theta of adjustable gradient clipping must be positive, got {theta}")
    for group in optimizer.param_groups:
        bound = theta / group["lr"]
        for parameter in group["params"]:
            if parameter.grad is not None:
                parameter.grad.clamp_(-bound, bound)
