"""``lrfr bench embed``: images/s of the torch port of dlib's face ResNet (CPU, batched) against dlib
itself, on the same 150-px chips, and the largest descriptor difference between the two.

Chips: SynthFace faces rendered at 150 px and, when scikit-image is installed, skimage's astronaut
photograph aligned by dlib's 5-point predictor (chip 150 px, padding 0.25). dlib gets the chips as
uint8 RGB (its ``compute_face_descriptor`` on a list of chips); the port gets the same pixels with
dlib's input scaling. One JSON line per implementation, then one comparing them.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from lrfr.bench import BENCHMARKS, emit
from lrfr.bench.train import cpu_name
from lrfr.data.dlib_align import DlibAligner, import_dlib
from lrfr.data.synthetic import SynthFace
from lrfr.models.pretrained.dlib import RESNET_FILE, dlib_embedder, model_file


def chips(count: int, seed: int) -> dict[str, np.ndarray]:
    """``(N, 150, 150, 3)`` uint8 chips by source: synthetic faces, and the astronaut when available."""
    faces = {"synthetic": SynthFace(seed=seed).render_hr(np.arange(count) // 4, np.arange(count) % 4, size=150)}
    try:
        from skimage.data import astronaut
    except ImportError:
        return faces
    chip = DlibAligner().chip(astronaut())
    if chip is not None:
        faces["astronaut"] = chip[None]
    return faces


def best_seconds(work: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` timed runs of ``work`` after one warm-up run."""
    work()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def measure(count: int, batch_size: int, repeats: int, seed: int) -> list[dict]:
    """One record per implementation (images/s) and one with the descriptor differences."""
    dlib = import_dlib()
    recogniser = dlib.face_recognition_model_v1(str(model_file(RESNET_FILE)))
    port = dlib_embedder()
    faces = chips(count, seed)
    synthetic = faces["synthetic"]
    lrfr_images = torch.from_numpy(synthetic).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)

    def run_dlib(batch: np.ndarray) -> np.ndarray:
        return np.array([np.array(d) for d in recogniser.compute_face_descriptor(list(batch))])

    def run_port(images: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return torch.cat([port(port.spec.prepare(part)) for part in images.split(batch_size)]).numpy()

    common = {"bench": "embed", "device": "cpu", "device_name": cpu_name(), "threads": torch.get_num_threads(),
              "images": len(synthetic), "chip": 150}
    records = [
        {**common, "model": "dlib_resnet (torch port)", "batch_size": batch_size,
         "img_per_s": round(len(synthetic) / best_seconds(lambda: run_port(lrfr_images), repeats), 1)},
        {**common, "model": "dlib (C++, dlib-bin)", "batch_size": len(synthetic),
         "img_per_s": round(len(synthetic) / best_seconds(lambda: run_dlib(synthetic), repeats), 1)},
    ]  # fmt: skip
    differences = {}
    for source, batch in faces.items():
        ours = run_port(torch.from_numpy(batch).permute(0, 3, 1, 2).float().div(127.5).sub(1.0))
        differences[f"max_abs_delta_{source}"] = float(np.abs(ours - run_dlib(batch)).max())
    speedup = records[0]["img_per_s"] / records[1]["img_per_s"]
    return records + [{"bench": "embed", "compare": "port_vs_dlib", "port_speedup": round(speedup, 2), **differences}]


@BENCHMARKS.register("embed")
def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="lrfr bench embed", description=__doc__)
    parser.add_argument("--images", type=int, default=128, help="synthetic chips per timed run")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size of the torch port")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (the best is reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch threads for the port (default: torch's own setting)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    for record in measure(args.images, args.batch_size, args.repeats, args.seed):
        emit(record)
