"""The ``lrfr`` command: ``lrfr train``, ``lrfr book``, ``lrfr bench <name>``, ``lrfr data synth``,
``lrfr data align``, ``lrfr embed``, ``lrfr eval``.

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

    overrides = {name: parameter_value(text) for name, text in args.parameter}
    index = build(Path(args.root), mode=args.mode, only=args.chapters, overrides=overrides)
    print(f"book written to {index}; chapter wall times in {index.parents[1] / TIMINGS}")
    return 0


def parameter_value(text: str) -> object:
    """A ``-p NAME VALUE`` value as papermill reads it: a number, ``true``/``false``, ``null``, a YAML list, else text."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(text)  # YAML 1.1 reads 1e-3 as text
        except ValueError:
            return text
    return value


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


def _data_align(args: argparse.Namespace) -> int:
    from lrfr.data.align import align_folder, centre_crop, landmark_aligner

    size = args.size or (150 if args.template == "dlib" else 112)
    if args.template == "dlib":
        from lrfr.data.dlib_align import DlibAligner

        align = DlibAligner(size=size).chip
    else:
        from lrfr.data.detect import MTCNN, load_nets

        align = landmark_aligner(MTCNN(load_nets(args.weights), min_face_size=args.min_face_size).landmarks, size)
    fallback = centre_crop(size, args.fraction) if args.no_face == "centre-crop" else None
    report = align_folder(Path(args.images), Path(args.out), align, fallback, template=args.template, size=size)
    print(f"aligned copy written to {args.out}\n{report.summary()}")
    return 0


def _model(args: argparse.Namespace):  # -> Embedder (lazy import)
    from lrfr.models.pretrained.zoo import build_embedder

    return build_embedder(args.model, args.weights, flip_fusion=args.flip_fusion).to(args.device)


def _embed(args: argparse.Namespace) -> int:
    from lrfr.experiments.model_runs import DATASET_RECORDS, check_alignment, embed_to_run, folder_records, model_config

    if (args.images is None) == (args.dataset is None):
        raise ValueError("give either --images DIR or --dataset NAME (with --data-root)")
    embedder = _model(args)
    folder = Path(args.images) if args.images else Path(args.data_root) / args.dataset
    records = folder_records(folder) if args.images else DATASET_RECORDS[args.dataset](folder)
    template = check_alignment(folder, embedder)
    config = {**model_config(args.model, args.weights, embedder), "images": str(folder), "alignment": template}
    run = embed_to_run(embedder, records, Path(args.out), config, batch_size=args.batch_size, num_workers=args.workers)
    print(f"{len(records)} embeddings written to {run.path} (open it in the dashboard: make dashboard RESULTS={run.path.parent})")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from lrfr.experiments.model_runs import evaluate_to_run, model_config

    embedder = _model(args)
    config = {**model_config(args.model, args.weights, embedder), "data_root": str(args.data_root)}
    rows = evaluate_to_run(embedder, Path(args.data_root), args.benchmarks, Path(args.out), config, batch_size=args.batch_size)
    for row in rows:
        print(f"{row['benchmark']:9} {row['setting']:28} {row['metric']:16} {row['value']:.4f}")
    print(f"results in {Path(args.out) / 'metrics.json'}")
    return 0


def _add_model_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--model", required=True,
                         help="a model-zoo name (see the book's model zoo page), a publisher checkpoint (.pth/.ckpt/.dat) "
                              "or a run folder trained here")
    command.add_argument("--weights", help="the publisher's file for a zoo name (all but dlib_resnet need one)")
    command.add_argument("--flip-fusion", action=argparse.BooleanOptionalAction, default=None,
                         help="add the embedding of the mirrored image (default: the model family's convention)")
    command.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    command.add_argument("--batch-size", type=int, default=64)
    command.add_argument("--out", required=True, help="the run folder to write (its parent is the results root)")


DEBUG_HELP = "on an error, show the Python traceback instead of the one-line message"


def parser() -> argparse.ArgumentParser:
    from lrfr.book import MODES

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
    book.add_argument("--mode", choices=MODES, default="quick", help="smoke (pipeline only, tiny data), quick (CPU, synthetic) or full (real data, GPU)")
    book.add_argument("--chapters", nargs="+", help="execute only these chapters (notebook names)")
    book.add_argument("--root", default=".", help="the repository root (holds _config.yml and book/)")
    book.add_argument(
        "-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
        help="override a chapter parameter (repeatable; VALUE read as a number, true/false, null or text); "
        "refused unless every executed chapter declares NAME with a type VALUE fits",
    )
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

    align = data.add_parser(
        "align", help="detect and align the faces of a folder (one sub-folder per identity, or flat); lists the "
                      "files without a detected face"
    )
    align.add_argument("--images", required=True, help="folder of raw images")
    align.add_argument("--out", required=True, help="output folder (must not exist)")
    align.add_argument("--template", choices=("arcface", "dlib"), default="arcface",
                       help="arcface: MTCNN 5 points -> ArcFace template (insightface, AdaFace, models trained here); "
                            "dlib: dlib's HOG detector + 5-point predictor -> dlib face chip (dlib_resnet)")
    align.add_argument("--size", type=int, help="output side in pixels (default 112 for arcface, 150 for dlib)")
    align.add_argument("--no-face", choices=("centre-crop", "skip"), default="centre-crop",
                       help="what to write for an image without a detected face")
    align.add_argument("--fraction", type=float, default=0.6, help="side of the centre crop, as a fraction of the shorter side")
    align.add_argument("--weights", type=Path, help="MTCNN weights folder (arcface; default: installed facenet-pytorch)")
    align.add_argument("--min-face-size", type=float, default=20.0, help="smallest face MTCNN searches, pixels")
    align.set_defaults(handler=_data_align)

    embed = commands.add_parser("embed", help="embed a folder or a dataset with any model into a run folder (dashboard)")
    _add_model_arguments(embed)
    embed.add_argument("--images", help="folder of aligned faces (one sub-folder per identity, or flat)")
    embed.add_argument("--dataset", choices=("hr", "tinyface", "scface", "survface", "lfw", "xqlfw", "ui"),
                       help="a dataset by name under --data-root instead of --images")
    embed.add_argument("--data-root", default="data", help="folder holding the datasets (as lrfr data synth writes them)")
    embed.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    embed.set_defaults(handler=_embed)

    evaluate = commands.add_parser("eval", help="evaluate any model on the benchmarks under a data root")
    _add_model_arguments(evaluate)
    evaluate.add_argument("--data-root", required=True, help="folder holding tinyface/, scface/, survface/, lfw/, xqlfw/")
    evaluate.add_argument("--benchmarks", nargs="+", default=["tinyface", "scface", "lfw"],
                          choices=("tinyface", "scface", "survface", "lfw", "xqlfw"))
    evaluate.set_defaults(handler=_eval)
    return root


def _with_parents(*parents: argparse.ArgumentParser) -> type[argparse.ArgumentParser]:
    """An ArgumentParser class whose instances (the commands) inherit the options of ``parents``."""

    class Command(argparse.ArgumentParser):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, parents=[*kwargs.pop("parents", []), *parents], **kwargs)

    return Command


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    command = " ".join(filter(None, (args.command, getattr(args, "data_command", None))))
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"lrfr {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        message = error.args[0] if isinstance(error, KeyError) and len(error.args) == 1 else error
        print(f"lrfr {command}: {type(error).__name__}: {message}\n(run with --debug for the traceback)", file=sys.stderr)
        return 1
