"""One training loop for every chapter: composed losses, several data streams, AMP, DDP, exact resume.

Data: ``datasets`` maps stream names to map-style datasets whose items are dicts of tensors (or
``(image, label)`` pairs, read as ``{"image", "label"}``). A step draws one batch from every stream and
names its entries ``"<stream>.<field>"`` (``"main.image"``, ``"syn.lr"``, ...). The first stream sets the
epoch length; the others are cycled. Shuffling is seeded by (seed, epoch) through a
``DistributedSampler`` (one replica when not distributed), and a stream's training transforms
(:class:`lrfr.data.transforms.TransformedDataset`) draw from (seed, epoch, sample index), so every
epoch's order and augmentations are reproducible and independent of the model's random draws and of
the number of workers.

Checkpoints: after every epoch the whole objective (backbone, SR network, heads, auxiliary modules,
running buffers), optimizer, scheduler, grad scaler, RNG states and the loss history are written to the
run folder; ``fit(resume=True)`` continues from the latest complete one and ends with the same weights as
an uninterrupted run (on CPU, bit for bit). A checkpoint that no longer reads is set aside under
``checkpoints/corrupt/`` with a warning and the one before it is used.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from lrfr.data.transforms import TransformedDataset
from lrfr.runs import RunFolder
from lrfr.training.config import TrainConfig
from lrfr.training.distributed import barrier, init_process
from lrfr.training.finite import FiniteGuard, NonFiniteLossError
from lrfr.training.optim import build_optimizer, build_scheduler, clip_gradients_adjustable
from lrfr.training.rng import capture_rng_state, restore_rng_state, seed_everything
from lrfr.training.validation import VerificationSet, load_verification_sets, validate

__all__ = ["NonFiniteLossError", "Trainer"]


class Trainer:
    """Trains an objective (``nn.Module`` mapping a batch dict to weighted loss terms)."""

    def __init__(
        self,
        config: TrainConfig,
        objective: nn.Module,
        datasets: Mapping[str, Dataset],
        run: RunFolder | None = None,
        validation_sets: Sequence[VerificationSet] | None = None,
    ) -> None:
        """``validation_sets``: the sets of ``config.validation`` already loaded (read here when None)."""
        if not datasets:
            raise ValueError("the trainer needs at least one dataset stream")
        self.config, self.run = config, run
        self.process, self.device = init_process(config.device)
        self.objective = objective.to(self.device)
        self.model: nn.Module = self._wrap(self.objective)
        self.loaders = {name: self._loader(name, ds) for name, ds in datasets.items()}
        self.steps_per_epoch = len(next(iter(self.loaders.values())))
        self.optimizer = build_optimizer(self.objective.parameters(), config.optimizer)
        self.scheduler = build_scheduler(
            self.optimizer, config.schedule, self.steps_per_epoch, config.epochs
        )
        self.use_amp = config.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.history: list[dict[str, float]] = []
        self.global_step = 0
        self.guard = FiniteGuard(self.device, self.steps_per_epoch)
        self.validation_sets = list(validation_sets if validation_sets is not None
                                    else load_verification_sets(config.validation))

    def _wrap(self, objective: nn.Module) -> nn.Module:
        if not self.process.distributed:
            return objective
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(
            objective, device_ids=device_ids, find_unused_parameters=self.config.find_unused_parameters
        )

    def _loader(self, name: str, dataset: Dataset) -> DataLoader:
        sampler = DistributedSampler(
            dataset, num_replicas=self.process.world_size, rank=self.process.rank,
            shuffle=True, seed=self.config.seed, drop_last=True,
        )
        loader = DataLoader(
            dataset, batch_size=self.config.batch_size, sampler=sampler, drop_last=True,
            num_workers=self.config.num_workers, pin_memory=self.device.type == "cuda",
            generator=torch.Generator(),
        )
        if len(loader) == 0:
            raise ValueError(
                f"stream {name!r} has {len(dataset)} samples, fewer than one batch of "
                f"{self.config.batch_size} per process x {self.process.world_size} processes"
            )
        return loader

    # ----------------------------------------------------------------------------------- loop
    def fit(self, resume: bool = True) -> list[dict[str, float]]:
        """Train for ``config.epochs`` epochs (continuing from the latest intact checkpoint if ``resume``).

        First removes the temporary files of a checkpoint write that was killed (see
        :meth:`RunFolder.remove_stale_temporaries`).
        """
        if self.run is not None and self.process.is_main:
            self.run.remove_stale_temporaries()
        start = self._resume() if resume and self.run is not None else 0
        if start == 0:
            seed_everything(self.config.seed)
        self.guard.start(self.global_step)
        for epoch in range(start, self.config.epochs):
            record = self._train_epoch(epoch)
            self.guard.check()  # before the checkpoint: weights after a non-finite step are never saved
            self.history.append({**record, **self._validate(epoch)})
            self._checkpoint(epoch)
        return self.history

    def _validate(self, epoch: int) -> dict[str, float]:
        """Verification accuracy on the main process every ``validation.every`` epochs and after the last."""
        settings = self.config.validation
        due = settings is not None and ((epoch + 1) % settings.every == 0 or epoch + 1 == self.config.epochs)
        if not (due and self.process.is_main):
            return {}
        return validate(self.objective.recognizer(), self.validation_sets, settings.batch_size, settings.flip_fusion)

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        self.model.train()
        sums: dict[str, Tensor] = defaultdict(lambda: torch.zeros((), device=self.device))
        images, started = 0, time.perf_counter()
        bar = tqdm(
            self._batches(epoch), total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{self.config.epochs}",
            disable=not (self.config.progress and self.process.is_main), leave=False,
        )
        for step, batch in enumerate(bar):
            terms = self._step(batch)
            for name, value in terms.items():
                sums[name] += value.detach().float()
            images += self._batch_size(batch)
            if self.global_step % self.config.finite_check_every == 0:
                self.guard.check()
            if not bar.disable and (step % 10 == 0 or step == self.steps_per_epoch - 1):
                bar.set_postfix(self._postfix(sums, step + 1, images, started))
        bar.close()
        seconds = time.perf_counter() - started
        record = {name: (total / self.steps_per_epoch).item() for name, total in sums.items()}
        record["loss"] = sum(record.values())
        record.update(epoch=epoch + 1, seconds=seconds, images_per_second=images * self.process.world_size / seconds,
                      lr=self.optimizer.param_groups[0]["lr"])
        return record

    def _step(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.use_amp):
            terms = self.model(batch)
            loss = sum(terms.values())
        self.guard.observe(terms, loss)  # on the device; read every finite_check_every steps
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.clip_grad_norm or self.config.clip_grad_adjustable:
            self.scaler.unscale_(self.optimizer)
        if self.config.clip_grad_adjustable:
            clip_gradients_adjustable(self.optimizer, self.config.clip_grad_adjustable)
        if self.config.clip_grad_norm:
            trainable = [p for p in self.objective.parameters() if p.requires_grad]
            torch.nn.utils.clip_grad_norm_(trainable, self.config.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.global_step += 1
        return terms

    def _postfix(self, sums: dict[str, Tensor], steps: int, images: int, started: float) -> dict[str, str]:
        postfix = {name: f"{(total / steps).item():.3f}" for name, total in sums.items()}
        postfix["img/s"] = f"{images * self.process.world_size / (time.perf_counter() - started):.0f}"
        return postfix

    # ----------------------------------------------------------------------------------- data
    def _batches(self, epoch: int) -> Iterator[dict[str, Any]]:
        """One batch from every stream per step; the first stream sets the length of the epoch."""
        iterators = {name: self._epoch_iterator(loader, epoch, 0) for name, loader in self.loaders.items()}
        cycles = dict.fromkeys(self.loaders, 0)
        primary = next(iter(self.loaders))
        for _ in range(self.steps_per_epoch):
            batch: dict[str, Any] = {}
            for name in self.loaders:
                try:
                    item = next(iterators[name])
                except StopIteration:
                    if name == primary:
                        raise RuntimeError(f"stream {name!r} ended early") from None
                    cycles[name] += 1
                    iterators[name] = self._epoch_iterator(self.loaders[name], epoch, cycles[name])
                    item = next(iterators[name])
                batch.update(self._prefixed(name, item))
            yield batch

    def _epoch_iterator(self, loader: DataLoader, epoch: int, cycle: int) -> Iterator[Any]:
        order = epoch * 100_003 + cycle
        loader.sampler.set_epoch(order)
        if isinstance(loader.dataset, TransformedDataset):
            loader.dataset.set_epoch(order)  # new augmentation draws per pass, the same after a resume
        loader.generator.manual_seed(self.config.seed * 1_000_003 + order)
        return iter(loader)

    def _prefixed(self, stream: str, item: Any) -> dict[str, Any]:
        if isinstance(item, (list, tuple)) and len(item) == 2:
            item = {"image": item[0], "label": item[1]}
        if not isinstance(item, dict):
            raise TypeError(
                f"stream {stream!r} yields {type(item).__name__}; expected a dict of tensors or (image, label)"
            )
        return {
            f"{stream}.{key}": value.to(self.device, non_blocking=True) if isinstance(value, Tensor) else value
            for key, value in item.items()
        }

    @staticmethod
    def _batch_size(batch: dict[str, Any]) -> int:
        return sum(len(v) for k, v in batch.items() if isinstance(v, Tensor) and v.dim() == 4)

    # ----------------------------------------------------------------------------- checkpoint
    def _checkpoint(self, epoch: int) -> None:
        if self.run is not None and self.process.is_main:
            self.run.save_checkpoint(
                epoch + 1, self.objective.state_dict(), self._training_state(epoch + 1),
                keep_last=self.config.keep_checkpoints,
            )
            self.run.update_metrics({"train_history": self.history})
        barrier(self.process)

    def _training_state(self, epochs_done: int) -> dict[str, Any]:
        return {
            "epochs_done": epochs_done,
            "global_step": self.global_step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": capture_rng_state(),
            "history": self.history,
        }

    def _resume(self) -> int:
        """Restore the latest intact checkpoint; return the number of epochs already done.

        The main process finds it (setting corrupt newer ones aside); the others then load the same one.
        """
        loaded = self.run.load_latest_intact_checkpoint() if self.process.is_main else None
        barrier(self.process)
        if not self.process.is_main and (latest := self.run.latest_checkpoint()) is not None:
            loaded = (latest, *self.run.load_checkpoint(latest))
        if loaded is None:
            return 0
        _, weights, state = loaded
        self.objective.load_state_dict(weights)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        restore_rng_state(state["rng"])
        self.global_step, self.history = state["global_step"], list(state["history"])
        return state["epochs_done"]
