"""``lrfr bench stats``: seconds for the identity bootstrap (1,000 resamples) of each statistic at
TinyFace / ERC / SurvFace sizes, from cached per-probe results; one JSON line per statistic."""

from __future__ import annotations

import argparse
import time

import numpy as np

from lrfr import stats
from lrfr.bench import BENCHMARKS, emit
from lrfr.bench.train import cpu_name

# TinyFace's test set (Cheng et al. 2018, Table 2): 3,728 probes of 2,570 identities (every probe has
# a mate); Chai et al.'s ERC: 20,888 genuine + 50,000 impostor pairs; a SurvFace-like open-set search.
TINYFACE_PROBES, TINYFACE_IDENTITIES = 3728, 2570
ERC_GENUINE, ERC_IMPOSTOR = 20_888, 50_000
OPEN_SET_MATED, OPEN_SET_UNMATED = 5_000, 20_000


def cases(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, stats.Statistic]]:
    """Statistic name -> (labels, statistic) on random data of the published sizes."""
    labels = np.arange(TINYFACE_PROBES) % TINYFACE_IDENTITIES  # every identity has a probe
    ours, base = rng.integers(1, 200, TINYFACE_PROBES), rng.integers(1, 200, TINYFACE_PROBES)
    hits = {k: stats.mean(stats.rank_hits(ours, k), 100) - stats.mean(stats.rank_hits(base, k), 100) for k in (1, 20)}
    pair_labels = np.arange(ERC_GENUINE + ERC_IMPOSTOR) % TINYFACE_IDENTITIES
    genuine = np.arange(ERC_GENUINE + ERC_IMPOSTOR) < ERC_GENUINE
    scores = rng.normal(size=len(genuine)) + 2 * genuine
    mated = np.arange(OPEN_SET_MATED + OPEN_SET_UNMATED) < OPEN_SET_MATED
    open_scores = np.concatenate([stats.tpir_scores(rng.integers(1, 40, OPEN_SET_MATED), rng.normal(1, 1, OPEN_SET_MATED)),
                                  rng.normal(0, 1, OPEN_SET_UNMATED)])
    open_labels = np.where(mated, rng.integers(0, OPEN_SET_MATED // 2, len(mated)), -1)
    return {
        "rank-1 paired difference (TinyFace probes)": (labels, hits[1]),
        "rank-20 paired difference (TinyFace probes)": (labels, hits[20]),
        "mAP (TinyFace probes)": (labels, stats.mean(1 / ours, 100)),
        "AUC (TinyFace probes)": (labels, stats.auc(rng.normal(size=TINYFACE_PROBES), ours <= 5)),
        "verification accuracy (ERC pairs)": (pair_labels, stats.mean((scores > 1) == genuine, 100)),
        "TPR at FAR 1e-3 (ERC pairs)": (pair_labels, stats.rate_at(scores, genuine, 1e-3, 100)),
        "TPIR20 at FPIR 0.1 (open set)": (open_labels, stats.rate_at(open_scores, mated, 0.1, 100)),
    }


@BENCHMARKS.register("stats")
def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="lrfr bench stats", description=__doc__)
    parser.add_argument("--resamples", type=int, default=stats.RESAMPLES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name, (labels, statistic) in cases(np.random.default_rng(args.seed)).items():
        boot = stats.Bootstrap(labels, resamples=args.resamples, seed=args.seed)
        started = time.perf_counter()
        estimate = boot.estimate(statistic)
        emit({"bench": "stats", "statistic": name, "items": statistic.size, "identities": boot.groups,
              "resamples": args.resamples, "seconds": round(time.perf_counter() - started, 4),
              "estimate": estimate.format(3), "device_name": cpu_name()})
