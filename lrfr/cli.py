"""The ``lrfr`` command: ``lrfr train``, ``lrfr book``, ``lrfr bench <name>``, ``lrfr data synth``.

A failing command prints ``lrfr <command>: <ErrorType>: <message>`` to stderr and exits with status 1
(130 when interrupted); ``--debug`` (before or after the command name) shows the Python traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _train(args: argparse.Namespace) -> int:
    from lrfr.registry import allow_imports
    from lrfr.training.config import ExperimentConfig
    from lrfr.training.experiment import run_experiment

    allow_imports(*args.allow_import)
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


DEBUG_HELP = "on an error, show the Python traceback instead of the one-line message"


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="lrfr", description="Low-resolution face recognition, reproduced.")
    root.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    # each command accepts --debug too; SUPPRESS keeps a root-level --debug from being reset by the command
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    commands = root.add_subparsers(dest="command", required=True, parser_class=_with_parents(debug))

    train = commands.add_parser(
        "train", help="train from an experiment config (works under torchrun for several GPUs)"
    )
    train.add_argument("--config", required=True, help="experiment config JSON (lrfr.training.ExperimentConfig)")
    train.add_argument("--out", default="results/runs", help="folder holding run folders")
    train.add_argument("--restart", action="store_true", help="ignore existing checkpoints of this run")
    train.add_argument(
        "--allow-import", action="append", default=[], metavar="MODULE",
        help="let the config name 'module:attribute' factories under this module prefix (repeatable); "
        "importing runs the module's code, so allow only modules you trust (see lrfr.registry)",
    )
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


def _with_parents(*parents: argparse.ArgumentParser) -> type[argparse.ArgumentParser]:
    """An ArgumentParser class whose instances (the commands) inherit the options of ``parents``."""

    class Command(argparse.ArgumentParser):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, parents=[*kwargs.pop("parents", []), *parents], **kwargs)

    return Command


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"lrfr {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        message = error.args[0] if isinstance(error, KeyError) and len(error.args) == 1 else error
        print(f"lrfr {args.command}: {type(error).__name__}: {message}\n(run with --debug for the traceback)", file=sys.stderr)
        return 1
