"""``lrfr bench fit``: the trainer's own loop (:class:`~lrfr.training.Trainer`) for ``--steps`` steps.

A ``--backbone`` with an ArcFace head trains one epoch of ``--steps`` x ``--batch-size`` images of the
synthetic preset's HR set (``lrfr data synth --preset <preset>``, written once under ``--data-root``),
read from JPEG through the trainer's DataLoader, with AMP on CUDA. The run is repeated for every value
of ``--finite-check-every``: 1 reads the NaN/inf record after every step (a host-device synchronisation
per step, as the guard did before :mod:`lrfr.training.finite`), larger values every that many steps;
the difference in images/s is the cost of the synchronisation. ``--validate`` also evaluates the
preset's LFW-layout pairs after the epoch (``TrainConfig.validation``; not in the timed images/s).
One JSON line per value: the epoch's images/s, seconds and mean loss, the peak GPU memory and, with
``--validate``, the verification accuracy.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.utils.data import Subset

from lrfr.bench import BENCHMARKS, emit
from lrfr.bench.train import cpu_name


def fit_once(args: argparse.Namespace, root: Path, check_every: int) -> dict:
    """One epoch of ``args.steps`` steps with the guard read every ``check_every`` steps."""
    from lrfr.data import load_folder
    from lrfr.training import (
        HeadSpec, ModelSpec, TrainConfig, Trainer, ValidationConfig, VerificationSetSpec, build_objective,
        seed_everything,
    )

    seed_everything(args.seed)
    images = args.steps * args.batch_size
    hr = load_folder(root / "hr", input_size=args.input_size, verify=False)
    if len(hr) < images:
        raise ValueError(f"--steps {args.steps} x --batch-size {args.batch_size} needs {images} images; "
                         f"the {args.preset!r} preset's HR set has {len(hr)}")
    validation = ValidationConfig([VerificationSetSpec("lfw", str(root / "lfw"))]) if args.validate else None
    config = TrainConfig(epochs=1, batch_size=args.batch_size, num_workers=args.workers, device=args.device,
                         finite_check_every=check_every, progress=False, validation=validation)
    spec = ModelSpec(backbone=args.backbone, backbone_kwargs={"input_size": args.input_size},
                     heads={"main": HeadSpec("arcface", hr.num_classes)})
    trainer = Trainer(config, build_objective(spec), {"main": Subset(hr, range(images))})
    if trainer.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(trainer.device)
    epoch = trainer.fit()[0]
    device = trainer.device
    return {
        "bench": "fit", "backbone": args.backbone, "preset": args.preset, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(), "amp": trainer.use_amp, "steps": args.steps,
        "batch_size": args.batch_size, "input_size": args.input_size, "workers": args.workers,
        "finite_check_every": check_every, "images_per_s": round(epoch["images_per_second"], 1),
        "seconds": round(epoch["seconds"], 1), "loss": round(epoch["loss"], 4),
        "peak_gpu_gb": round(torch.cuda.max_memory_allocated(device) / 1024**3, 2) if device.type == "cuda" else None,
        **{key: round(value, 4) for key, value in epoch.items() if key.startswith("val/")},
    }


@BENCHMARKS.register("fit")
def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="lrfr bench fit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default="data", help="holds synthetic-<preset>/ (written once)")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--backbone", default="quick")
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader (and data-writing) worker processes")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--finite-check-every", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--validate", action="store_true", help="evaluate the preset's LFW pairs after the epoch")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from lrfr.experiments.workflow import synthetic_data

    root = synthetic_data(Path(args.data_root) / f"synthetic-{args.preset}", args.preset, args.seed,
                          workers=max(args.workers, 1))
    for check_every in args.finite_check_every:
        emit(fit_once(args, root, check_every))
