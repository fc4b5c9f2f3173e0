"""``lrfr bench synth``: SynthFace images/s (HR renders, native LR, unrecognizable faces), one JSON line each."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from lrfr.bench import BENCHMARKS, emit
from lrfr.bench.train import cpu_name
from lrfr.data.synthetic import SynthFace, sample_grid


def _rate(work: Callable[[], object], count: int, repeats: int) -> float:
    """Images per second of ``work`` (``count`` images), best of ``repeats`` after one warm-up."""
    work()
    best = min(_seconds(work) for _ in range(repeats))
    return round(count / best, 1)


def _seconds(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def measure(count: int, batch_size: int, repeats: int, seed: int) -> list[dict]:
    """Throughput of the three kinds of SynthFace images over ``count`` images each."""
    generator = SynthFace(seed=seed, batch_size=batch_size)
    ids, imgs = np.arange(count) // 8, np.arange(count) % 8
    kinds = {
        "hr": lambda: generator.render_hr(ids, imgs),
        "native_lr": lambda: generator.native_lr(ids, imgs),
        "ui": lambda: generator.render_ui(np.arange(count)),
    }
    common = {"bench": "synth", "device_name": cpu_name(), "threads": torch.get_num_threads(),
              "batch_size": batch_size, "images": count}
    return [{**common, "kind": kind, "img_per_s": _rate(work, count, repeats)} for kind, work in kinds.items()]


@BENCHMARKS.register("synth")
def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="lrfr bench synth", description=__doc__)
    parser.add_argument("--images", type=int, default=2048, help="images per timed run")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (the best is reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", type=Path, help="also save a sample grid (HR | 16 px | native LR; UI) here")
    args = parser.parse_args(argv)
    for record in measure(args.images, args.batch_size, args.repeats, args.seed):
        emit(record)
    if args.grid is not None:
        args.grid.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sample_grid(SynthFace(seed=args.seed), range(6))).save(args.grid)
        emit({"bench": "synth", "grid": str(args.grid)})
