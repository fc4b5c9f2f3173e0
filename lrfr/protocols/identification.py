"""Closed-set 1:N identification: CMC and mean average precision (TinyFace / MegaFace protocol).

Cheng et al. 2018 (TinyFace), Sec. 4: CMC(r) = the fraction of probes whose true match is at rank
r or better; mAP = the mean over probes of the average precision of each probe's ranked gallery.
Only probes with at least one mate in the gallery count (as the TinyFace and MegaFace protocols and
AdaFace's evaluator do); unlabelled gallery images (label < 0) are distractors. Ranks follow the
rule of :mod:`lrfr.protocols.search` (ties: lower gallery index first) and come from its exact
chunked :func:`~lrfr.protocols.search.mate_ranks`, never from a full sort.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lrfr.protocols.search import GALLERY_CHUNK, PROBE_CHUNK, as_labels, mate_ranks

CMC_RANKS = (1, 5, 10, 20, 50)


@dataclass(frozen=True)
class IdentificationResult:
    """``cmc``: rank -> identification rate in [0, 1]; ``mean_average_precision`` in [0, 1];
    ``num_mated_probes`` counted, of ``num_probes`` given; ``gallery_size`` searched."""

    cmc: dict[int, float]
    mean_average_precision: float
    num_mated_probes: int
    num_probes: int
    gallery_size: int


def cmc(first_ranks: np.ndarray, ranks: Sequence[int] = CMC_RANKS) -> dict[int, float]:
    """CMC(r) = #{probes whose best-ranked mate has rank <= r} / #probes, for each r in ``ranks``.

    ``first_ranks``: (Q,) 1-based rank of each mated probe's best-ranked mate.
    """
    first_ranks = np.asarray(first_ranks)
    if first_ranks.ndim != 1 or not len(first_ranks) or (first_ranks < 1).any():
        raise ValueError(f"first_ranks has shape {first_ranks.shape}; expected (Q,) ranks >= 1 with Q >= 1")
    for rank in ranks:
        if not isinstance(rank, (int, np.integer)) or rank < 1:
            raise ValueError(f"rank {rank!r} is not valid; expected ints >= 1")
    return {int(rank): float(np.mean(first_ranks <= rank)) for rank in ranks}


def average_precision(ranks: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(Q,) AP of each probe: AP = (1/n) * sum_{k=1..n} k / r_k.

    Probe q has n = ``counts[q]`` mates at ranks r_1 < ... < r_n (``ranks[q, :n]``; the rest of the
    row is ignored). k / r_k is the precision at the k-th mate, so this is the mean precision at
    each recall step: the area under the probe's (non-interpolated) precision-recall curve.
    """
    ranks, counts = np.asarray(ranks), np.asarray(counts)
    if ranks.ndim != 2 or counts.shape != ranks.shape[:1] or (counts < 1).any() or (counts > ranks.shape[1]).any():
        raise ValueError(
            f"ranks {ranks.shape} and counts {counts.shape} do not match; expected (Q, M) and (Q,) with 1 <= counts <= M"
        )
    position = np.arange(1, ranks.shape[1] + 1)
    valid = position < counts[:, None] + 1
    if (ranks[valid] < 1).any() or ((np.diff(ranks, axis=1) <= 0) & valid[:, 1:]).any():
        raise ValueError("ranks must be >= 1 and strictly increasing along each row within its count")
    precision = np.where(valid, position / np.where(valid, ranks, 1), 0.0)
    return precision.sum(axis=1) / counts


def evaluate_identification(
    probes: np.ndarray | Tensor,
    gallery: np.ndarray | Tensor,
    probe_labels: np.ndarray | Sequence[int],
    gallery_labels: np.ndarray | Sequence[int],
    *,
    ranks: Sequence[int] = CMC_RANKS,
    distractors: bool = True,
    probe_chunk: int = PROBE_CHUNK,
    gallery_chunk: int = GALLERY_CHUNK,
    device: torch.device | str | None = None,
) -> IdentificationResult:
    """CMC at ``ranks`` and mAP of ``probes`` searched in ``gallery`` (cosine similarity).

    ``distractors=False`` drops the unlabelled (label < 0) gallery images first: TinyFace's
    "w/o distractors" setting. Raises ValueError if no probe has a mate.
    """
    gallery_labels = as_labels(gallery_labels, len(gallery), "gallery_labels")
    if not distractors:
        keep = np.flatnonzero(gallery_labels >= 0)
        gallery = gallery[torch.as_tensor(keep)] if isinstance(gallery, Tensor) else np.asarray(gallery)[keep]
        gallery_labels = gallery_labels[keep]
        if not len(keep):
            raise ValueError("the gallery has no labelled image; expected mates for the probes")
    found = mate_ranks(
        probes, gallery, probe_labels, gallery_labels, probe_chunk=probe_chunk, gallery_chunk=gallery_chunk, device=device
    )
    return IdentificationResult(
        cmc=cmc(found.first_ranks, ranks),
        mean_average_precision=float(average_precision(found.ranks, found.counts).mean()),
        num_mated_probes=len(found.probe_indices),
        num_probes=len(probes),
        gallery_size=len(gallery_labels),
    )


@dataclass(frozen=True)
class Identification:
    """Per-probe outcome of a 1:N search, kept for the identity bootstrap (:mod:`lrfr.stats`):
    the 1-based rank of each mated probe's first mate, its average precision, and its label."""

    probe_labels: np.ndarray
    first_ranks: np.ndarray
    average_precision: np.ndarray

    def cmc(self, rank: int) -> float:
        """CMC(rank) in percent."""
        return float(100 * np.mean(self.first_ranks <= rank))

    @property
    def mean_average_precision(self) -> float:
        return float(100 * self.average_precision.mean())


def identify(probes: np.ndarray, gallery: np.ndarray, probe_labels: np.ndarray, gallery_labels: np.ndarray) -> Identification:
    """Cosine 1:N search of unit ``probes`` in ``gallery`` (label < 0: distractor), per mated probe."""
    found = mate_ranks(probes, gallery, probe_labels, gallery_labels)
    return Identification(
        probe_labels=np.asarray(probe_labels)[found.probe_indices],
        first_ranks=found.first_ranks,
        average_precision=average_precision(found.ranks, found.counts),
    )
