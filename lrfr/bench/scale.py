"""``lrfr bench scale``: memory and throughput of evaluation at full-mode scale.

Two phases, each in its own process (so that each reports its own peak memory), one JSON line each:

* ``embed``: every image of the full synthetic preset (``lrfr data synth --preset full``: 440,914 images,
  written once to ``<data-root>/synthetic-full`` and reused) streamed through
  :func:`~lrfr.protocols.embeddings.extract_embeddings`.
* ``tinyface``: chapter 2's evaluation on a TinyFace-size test set (2,569 test identities, 3 images each,
  and 153,428 distractors as in Cheng et al. 2018, Table 2; written once under ``<data-root>``):
  embedding with the RI model's outputs (:func:`~lrfr.experiments.chai2023.explore_set`), 1:N search with
  and without distractors (:func:`~lrfr.experiments.chai2023.tinyface_rank1`), the Fig. 6-7 quality scores,
  SER-FIQ and ERC, and the dashboard's run folder (``save_explore_set``).

The model is an untrained ``--backbone`` with an ArcFace head and the recognizability term (so that the RI
outputs are computed as for chapter 2's "Ours"); its weights do not change the cost. Reported per phase:
images, seconds, images/s, the peak RSS of the phase's process (``peak_rss_gb``) and of its largest
DataLoader worker (``worker_peak_rss_gb``). The goal is ``peak_rss_gb`` <= 4 whatever the set size.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lrfr.bench import BENCHMARKS, emit

PHASES = ("embed", "tinyface")
TINYFACE_IDENTITIES, TINYFACE_DISTRACTORS = 2569, 153_428  # Cheng et al. 2018, Table 2 (test split)


def _peak_gb(who: int) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024**2, 3)  # Linux reports KiB


def tinyface_scale_root(args: argparse.Namespace) -> Path:
    """A TinyFace-layout test set (``--identities`` x 3 images, ``--distractors``) and a UI set of ``--ui``
    images, written once (the other datasets of the layout minimal)."""
    from lrfr.data.writers import Preset, write_synthetic

    root = Path(args.data_root) / f"tinyface-scale-{args.identities}-{args.distractors}-{args.ui}-seed{args.seed}"
    if not (root / "manifest.json").is_file():
        preset = Preset(2, 2, 2, 2, args.identities, 3, args.distractors, 3, 2, 2, 2, 2, 2, 1, args.ui)
        write_synthetic(root, preset, seed=args.seed, workers=args.workers)
    return root


def _model(args: argparse.Namespace):
    from lrfr.training import HeadSpec, ModelSpec, TermSpec, build_objective

    spec = ModelSpec(
        backbone=args.backbone, backbone_kwargs={"input_size": args.input_size, "embedding_size": args.embedding_size},
        heads={"main": HeadSpec("arcface", 1000)},
        terms=[TermSpec("cls", "classification"), TermSpec("ri", "recognizability", kwargs={"ui": None})],
    )
    objective = build_objective(spec).to(args.device).eval()
    objective.terms[1].set_ui_center(objective.heads["main"].weight[0].detach())
    return objective


def embed_phase(args: argparse.Namespace) -> dict[str, Any]:
    """Every image of the full synthetic preset through the streaming extraction."""
    from lrfr.data.base import FaceRecord
    from lrfr.experiments.workflow import synthetic_data
    from lrfr.protocols.embeddings import extract_embeddings

    root = synthetic_data(Path(args.data_root) / f"synthetic-{args.preset}", args.preset, args.seed, workers=args.workers)
    records = [FaceRecord(path, -1, None, "all") for path in sorted(root.rglob("*.jpg"))][: args.limit]
    started = time.perf_counter()
    extracted = extract_embeddings(
        _model(args).backbone, records, batch_size=args.batch_size, num_workers=args.workers, desc="bench scale"
    )
    seconds = time.perf_counter() - started
    return {"images": len(extracted.embeddings), "seconds": round(seconds, 1),
            "images_per_s": round(len(records) / seconds, 1)}


def tinyface_phase(args: argparse.Namespace) -> dict[str, Any]:
    """Chapter 2's evaluation of one RI model on the TinyFace-size test set."""
    from lrfr.data.base import FaceDataset
    from lrfr.data.loaders import load_tinyface_test, load_unlabelled
    from lrfr.experiments.chai2023 import (
        erc_curves, explore_set, per_row, probe_gallery_pairs, quality_scores, save_explore_set, ser_fiq_quality, tinyface_rank1,
    )
    from lrfr.runs import RunFolder

    root = tinyface_scale_root(args)
    test, ui = load_tinyface_test(root / "tinyface"), load_unlabelled(root / "ui")
    objective = _model(args)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    data = explore_set(objective, test, ui, batch_size=args.batch_size, num_workers=args.workers)
    seconds["embed"] = time.perf_counter() - started
    mark = time.perf_counter()
    rank1 = tinyface_rank1(data)
    tinyface_rank1(data, data.attended)
    seconds["search"] = time.perf_counter() - mark
    mark = time.perf_counter()
    labelled = data.part("probe", "gallery")
    qualities = quality_scores(data, labelled)
    faces = FaceDataset([r for r, keep in zip(data.records, labelled) if keep], args.input_size)
    qualities["SER-FIQ"] = ser_fiq_quality(objective, faces, passes=args.ser_fiq_passes, num_workers=args.workers)
    erc_curves(data, per_row(qualities, labelled), probe_gallery_pairs(data, 2000, 20_000, seed=0))
    with tempfile.TemporaryDirectory() as results:
        save_explore_set(RunFolder.create(results, "scale", {}, seed=0), data, source="lrfr bench scale")
    seconds["scoring"] = time.perf_counter() - mark
    images = len(data.records)
    return {"images": images, "distractors": len(test.distractors), "labelled": int(labelled.sum()),
            "seconds": {k: round(v, 1) for k, v in seconds.items()},
            "images_per_s": round(images / seconds["embed"], 1), "rank1_untrained": rank1}


def _run_phase(phase: str, argv: list[str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "lrfr", "bench", "scale", *argv, "--phase", phase]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if done.returncode:
        raise RuntimeError(f"the {phase!r} phase failed (exit {done.returncode}); its error is printed above")
    return json.loads(done.stdout.strip().splitlines()[-1])


@BENCHMARKS.register("scale")
def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="lrfr bench scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default="data", help="holds synthetic-<preset>/ and tinyface-scale-*/ (written once)")
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES))
    parser.add_argument("--backbone", default="quick")
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--embedding-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader (and data-writing) worker processes")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--identities", type=int, default=TINYFACE_IDENTITIES, help="TinyFace test identities")
    parser.add_argument("--distractors", type=int, default=TINYFACE_DISTRACTORS)
    parser.add_argument("--ui", type=int, default=3000, help="UI images (the UI center)")
    parser.add_argument("--preset", default="full", help="synthetic preset of the embed phase (tests: tiny)")
    parser.add_argument("--limit", type=int, default=None, help="embed only the first N images of the preset")
    parser.add_argument("--ser-fiq-passes", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        import torch

        record = (embed_phase if args.phase == "embed" else tinyface_phase)(args)
        record.update(peak_rss_gb=_peak_gb(resource.RUSAGE_SELF), worker_peak_rss_gb=_peak_gb(resource.RUSAGE_CHILDREN),
                      threads=torch.get_num_threads())
        print(json.dumps(record), flush=True)
        return
    forwarded = [f"--{key.replace('_', '-')}={value}" for key, value in vars(args).items()
                 if key not in ("phases", "phase") and value is not None]
    settings = {"backbone": args.backbone, "input_size": args.input_size, "batch_size": args.batch_size,
                "workers": args.workers, "device": args.device}
    for phase in args.phases:
        emit({"bench": "scale", "phase": phase, **settings, **_run_phase(phase, forwarded)})
