"""``lrfr bench book``: build the book (quick mode by default) and print each chapter's wall time, then
one line per claim of the scorecard (its chapter, verdict, this run's estimate and the paper's number)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lrfr.bench import BENCHMARKS, emit
from lrfr.book import MODES, build, claim_records, timings


@BENCHMARKS.register("book")
def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="lrfr bench book", description=__doc__)
    parser.add_argument("--mode", choices=MODES, default="quick")
    parser.add_argument("--chapters", nargs="+", help="execute only these chapters (notebook names)")
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository root")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    build(args.root, mode=args.mode, only=args.chapters)
    total = round(time.perf_counter() - started, 2)
    for record in timings(args.root.resolve()):
        emit({"bench": "book", **record})
    emit({"bench": "book", "chapter": "(whole book, with HTML)", "mode": args.mode, "seconds": total})
    for record in claim_records(args.root.resolve()):
        emit({"bench": "book", "claim": record["id"], "chapter": record["chapter"], "mode": record["mode"],
              "data": record["data"], "verdict": record["verdict"], "estimate": record["estimate"],
              "parts": record.get("parts", {}), "paper_number": record["paper_number"],
              "comparison": record["comparison"], "metric": record["metric"]})
