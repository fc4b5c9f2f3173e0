"""Where a model lives and which mode it is in: its device, and train/eval mode for the length of a block
(every module's own mode restored afterwards)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn


def module_device(module: nn.Module) -> torch.device:
    """The device of ``module``'s first parameter (or buffer); CPU for a module without any."""
    return next((t.device for t in (*module.parameters(), *module.buffers())), torch.device("cpu"))


@contextmanager
def eval_mode(*modules: nn.Module, stochastic: Sequence[nn.Module] = ()) -> Iterator[None]:
    """Every submodule of ``modules`` in eval mode inside the block, except the submodules of
    ``stochastic`` (e.g. dropout layers kept active for SER-FIQ), which are in train mode; each
    module's own mode is restored after the block, also when it raises."""
    modes = {module: module.training for root in (*modules, *stochastic) for module in root.modules()}
    for root in modules:
        root.eval()
    for root in stochastic:
        root.train()
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training
