"""The NaN/inf guard of the training loop, without a host-device synchronisation every step.

``if not torch.isfinite(loss)`` in every step copies a flag from the GPU to the host and so waits for the
step's kernels: the GPU queue drains each step. :class:`FiniteGuard` instead records on the device, with
tensor operations only, the first step whose loss terms (or their sum) are not finite and their values;
:meth:`FiniteGuard.check` reads that record (one synchronisation) every ``finite_check_every`` steps and
at the end of every epoch, before its checkpoint is written, and raises :class:`NonFiniteLossError`
naming the first bad step and term. Between a bad step and the check the loop runs on (on NaN weights,
which are never checkpointed). Other reads remain: with AMP, torch's GradScaler reads its own inf flag at
every ``step`` (unless the optimizer is fused), and the progress bar reads the running means every 10
steps; ``lrfr bench fit`` measures what the guard's read costs (``--finite-check-every 1 100``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; the message names the step and the term."""


LOSS = "the sum of the terms"


class FiniteGuard:
    """Records the first non-finite step on ``device``; ``steps_per_epoch`` turns a global step into
    (epoch, step) for the message."""

    def __init__(self, device: torch.device, steps_per_epoch: int) -> None:
        self.device, self.steps_per_epoch = device, steps_per_epoch
        self.names: tuple[str, ...] = ()
        self._step = torch.zeros((), dtype=torch.int64, device=device)
        self._first = torch.full((), -1, dtype=torch.int64, device=device)
        self._values: Tensor | None = None

    def start(self, global_step: int) -> None:
        """Number the next observed step ``global_step`` (at the start of training or after a resume)."""
        self._step.fill_(global_step)

    def observe(self, terms: dict[str, Tensor], loss: Tensor) -> None:
        """Record this step's terms and loss if they are the first non-finite ones; no host read."""
        names = (*terms, LOSS)
        if names != self.names:  # another set of terms (rare): settle the record kept for the old names
            if self._values is not None:
                self.check()
            self.names, self._values = names, torch.zeros(len(names), device=self.device)
        values = torch.stack([value.detach().float().reshape(()) for value in (*terms.values(), loss)])
        first_bad = (self._first < 0) & ~torch.isfinite(values).all()
        self._first = torch.where(first_bad, self._step, self._first)
        self._values = torch.where(first_bad, values, self._values)
        self._step += 1

    def check(self) -> None:
        """Raise :class:`NonFiniteLossError` if a step so far was not finite (reads one flag: a sync)."""
        first = int(self._first.item())
        if first < 0:
            return
        values = dict(zip(self.names, self._values.tolist()))
        bad = [name for name, value in values.items() if not math.isfinite(value)]
        named = ", ".join(f"{name!r} = {values[name]}" for name in [n for n in bad if n != LOSS] or bad)
        epoch, step = divmod(first, self.steps_per_epoch)
        raise NonFiniteLossError(
            f"non-finite loss at global step {first} (epoch {epoch + 1}, step {step + 1} of {self.steps_per_epoch}): "
            f"{named}; terms were " + ", ".join(f"{k}={v:.4g}" for k, v in values.items() if k != LOSS)
        )
