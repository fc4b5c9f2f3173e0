"""The ``lrfr`` command: ``lrfr train``, ``lrfr book``, ``lrfr bench <name>``, ``lrfr data synth``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _train(args: argparse.Namespace) -> int:
    from lrfr.training.config import ExperimentConfig
    from lrfr.training.experiment import run_experiment

    run, _ = run_experiment(ExperimentConfig.from_json(args.config), args.out, resume=not args.restart)
    if os.environ.get("RANK", "0") == "0":
        print(run.path)
    return 0


def _book(args: argparse.Namespace) -> int:
    from lrfr.book import TIMINGS, build

    index = build(Path(args.root), mode=args.mode, only=args.chapters)
    print(f"book written to {index}; chapter wall times in {index.parents[1] / TIMINGS}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from lrfr.bench import BENCHMARKS

    BENCHMARKS.get(args.name)(args.options)
    return 0


def _data_synth(args: argparse.Namespace) -> int:
    from lrfr.data.writers import write_synthetic

    manifest = write_synthetic(args.out, preset=args.preset, seed=args.seed, workers=args.workers)
    images = sum(split["images"] for splits in manifest["datasets"].values() for split in splits.values())
    print(f"{images} images of {len(manifest['datasets'])} datasets written to {args.out}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="lrfr", description="Low-resolution face recognition, reproduced.")
    commands = root.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train", help="train from an experiment config (works under torchrun for several GPUs)"
    )
    train.add_argument("--config", required=True, help="experiment config JSON (lrfr.training.ExperimentConfig)")
    train.add_argument("--out", default="results/runs", help="folder holding run folders")
    train.add_argument("--restart", action="store_true", help="ignore existing checkpoints of this run")
    train.set_defaults(handler=_train)

    book = commands.add_parser("book", help="execute the chapters with papermill and build the HTML book")
    book.add_argument("--mode", choices=("quick", "full"), default="quick")
    book.add_argument("--chapters", nargs="+", help="execute only these chapters (notebook names)")
    book.add_argument("--root", default=".", help="the repository root (holds _config.yml and book/)")
    book.set_defaults(handler=_book)

    bench = commands.add_parser("bench", help="run a benchmark; prints JSON lines")
    bench.add_argument("name", help="benchmark name, e.g. 'train'")
    bench.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's own options")
    bench.set_defaults(handler=_bench)

    data = commands.add_parser("data", help="dataset tools").add_subparsers(dest="data_command", required=True)
    synth = data.add_parser(
        "synth", help="write the SynthFace datasets in the real datasets' layouts (TinyFace, SCface, SurvFace, LFW, ...)"
    )
    synth.add_argument("--preset", choices=("tiny", "quick", "full"), default="quick", help="dataset sizes")
    synth.add_argument("--out", required=True, help="output folder (must not exist, or be empty)")
    synth.add_argument("--seed", type=int, default=0, help="generator seed (same seed, identical files)")
    synth.add_argument("--workers", type=int, default=1, help="rendering processes (output is identical)")
    synth.set_defaults(handler=_data_synth)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    return args.handler(args)
