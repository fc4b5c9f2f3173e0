"""``lrfr bench eval``: chunked exact search (CMC + mAP) against a naive full-sort reference.

Random unit embeddings at TinyFace scale (Cheng et al. 2018, Table 2: 3,728 probes; 4,443 mated
and 153,428 distractor gallery images; 2,569 test identities), 512-d. The naive reference builds
the full probes x gallery score matrix and argsorts every row, as the public TinyFace evaluators
do. Each implementation runs in its own subprocess; its peak memory is that child's peak RSS
minus the peak RSS of a baseline child that only imports and builds the same inputs.
One JSON line per implementation, then one line comparing them.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

from lrfr.bench import BENCHMARKS, emit

TINYFACE = {"probes": 3728, "mated": 4443, "distractors": 153428, "identities": 2569}
COMPARED_RANKS = (1, 5, 20)
IMPLEMENTATIONS = ("chunked", "naive")


def tinyface_like(scale: float, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(probes, gallery, probe_labels, gallery_labels) with TinyFace's counts times ``scale``.

    Every identity has >= 1 probe and >= 1 gallery image; a labelled image is
    normalise(centre + 2 * noise) of its identity's random centre, a distractor (label -1) is a
    random direction. Built in float32 blocks so that generation adds little to peak memory.
    """
    rng = np.random.default_rng(seed)
    count = {name: max(1, round(value * scale)) for name, value in TINYFACE.items()}
    identities = min(count["identities"], count["probes"], count["mated"])
    centres = rng.standard_normal((identities, dim), dtype=np.float32)

    def labels(total: int) -> np.ndarray:
        return np.concatenate([np.arange(identities), rng.integers(0, identities, total - identities)])

    def embed(label: np.ndarray) -> np.ndarray:
        out = np.empty((len(label), dim), dtype=np.float32)
        for start in range(0, len(label), 8192):
            block = rng.standard_normal((len(label[start : start + 8192]), dim), dtype=np.float32)
            part = label[start : start + 8192]
            block[part >= 0] = centres[part[part >= 0]] + 2 * block[part >= 0]
            out[start : start + 8192] = block / np.linalg.norm(block, axis=1, keepdims=True)
        return out

    probe_labels = labels(count["probes"])
    gallery_labels = np.concatenate([labels(count["mated"]), np.full(count["distractors"], -1)])
    return embed(probe_labels), embed(gallery_labels), probe_labels, gallery_labels


def naive_mate_ranks(
    probes: np.ndarray, gallery: np.ndarray, probe_labels: np.ndarray, gallery_labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference: (mated probe indices, counts, (Q, M) ascending ranks, 0 padded) from a full sort.

    Scores = the full (P, G) cosine matrix; each row argsorted descending (stable, so equal scores
    keep gallery order); a mate's rank is its 1-based position in its probe's sorted row.
    """
    scores = (probes / np.linalg.norm(probes, axis=1, keepdims=True)) @ (
        gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    ).T
    np.negative(scores, out=scores)
    order = np.argsort(scores, axis=1, kind="stable")
    del scores
    found = [np.flatnonzero(gallery_labels[row] == label) + 1 for row, label in zip(order, probe_labels)]
    mated = np.flatnonzero([label >= 0 and len(ranks) > 0 for label, ranks in zip(probe_labels, found)])
    counts = np.array([len(found[p]) for p in mated], dtype=np.int64)
    ranks = np.zeros((len(mated), counts.max() if len(mated) else 0), dtype=np.int64)
    for row, probe in enumerate(mated):
        ranks[row, : counts[row]] = found[probe]
    return mated, counts, ranks


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _worker(impl: str, scale: float, dim: int, seed: int) -> dict:
    """Run one implementation (or only build the inputs, ``impl="baseline"``) in this process."""
    import torch  # every child imports the same modules, so the baseline subtracts them

    from lrfr.protocols.identification import average_precision, cmc
    from lrfr.protocols.search import mate_ranks

    probes, gallery, probe_labels, gallery_labels = tinyface_like(scale, dim, seed)
    record: dict = {"impl": impl, "threads": torch.get_num_threads()}
    started = time.perf_counter()
    if impl == "chunked":
        found = mate_ranks(probes, gallery, probe_labels, gallery_labels)
        mated, counts, ranks = found.probe_indices, found.counts, found.ranks
    elif impl == "naive":
        mated, counts, ranks = naive_mate_ranks(probes, gallery, probe_labels, gallery_labels)
    if impl != "baseline":
        record["seconds"] = round(time.perf_counter() - started, 3)
        record["cmc"] = {str(rank): value for rank, value in cmc(ranks[:, 0], COMPARED_RANKS).items()}
        record["map"] = float(average_precision(ranks, counts).mean())
        record["first_ranks"] = ranks[:, 0].tolist()
        record["mated_probes"] = int(len(mated))
    record["rss_mb"] = round(_peak_mb(), 1)
    return record


def _run_child(impl: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, "-m", "lrfr", "bench", "eval", "--worker", impl]
    command += ["--scale", str(args.scale), "--dim", str(args.dim), "--seed", str(args.seed)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"the {impl!r} child failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@BENCHMARKS.register("eval")
def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="lrfr bench eval", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply TinyFace's counts (default 1: full scale)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=("baseline", *IMPLEMENTATIONS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 10 or args.dim < 1:
        parser.error(f"--scale {args.scale} / --dim {args.dim}: expected 0 < scale <= 10 and dim >= 1")
    if args.worker:
        print(json.dumps(_worker(args.worker, args.scale, args.dim, args.seed)), flush=True)
        return
    baseline = _run_child("baseline", args)
    results = {impl: _run_child(impl, args) for impl in IMPLEMENTATIONS}
    size = {"mated_probes": results["naive"]["mated_probes"], "scale": args.scale, "dim": args.dim}
    for impl, result in results.items():
        result["peak_mb"] = round(result["rss_mb"] - baseline["rss_mb"], 1)
        shown = ("seconds", "peak_mb", "cmc", "map", "threads")
        emit({"bench": "eval", "impl": impl, **{key: result[key] for key in shown}, "baseline_rss_mb": baseline["rss_mb"], **size})
    chunked, naive = results["chunked"], results["naive"]
    emit({
        "bench": "eval",
        "speedup": round(naive["seconds"] / chunked["seconds"], 2),
        "memory_ratio": round(chunked["peak_mb"] / max(naive["peak_mb"], 1e-9), 4),
        "ranks_equal": chunked["cmc"] == naive["cmc"],
        "first_ranks_equal": chunked["first_ranks"] == naive["first_ranks"],
        "map_difference": abs(chunked["map"] - naive["map"]),
        **size,
    })
