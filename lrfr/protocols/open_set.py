"""Open-set identification (QMUL-SurvFace protocol, Cheng et al. 2018): TPIR at FPIR.

The gallery holds one template per identity (:func:`identity_templates`). A probe is mated when
its label has a template, unmated otherwise (including label < 0). At threshold t:
    FPIR(t) = #{unmated probes whose best score > t} / #unmated,
    TPIR_R(t) = #{mated probes whose mate is within the top R and whose mate score > t} / #mated.
The threshold for a target FPIR f is the lowest t with FPIR(t) <= f: with the unmated best
scores sorted descending b_1 >= b_2 >= ..., t = b_(k+1), k = floor(f * #unmated).
SurvFace reports TPIR20 (R = 20) at FPIR 0.3, 0.2, 0.1 and, for its 1:1 pairs, TPR at FAR
0.3, 0.1, 0.01, 0.001 (:func:`lrfr.protocols.verification.tpr_at_far` with ``SURVFACE_FARS``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lrfr.protocols.search import GALLERY_CHUNK, PROBE_CHUNK, as_embeddings, as_labels, mate_ranks, normalised, top_k
from lrfr.protocols.verification import rate_threshold

SURVFACE_FPIRS = (0.3, 0.2, 0.1)
SURVFACE_FARS = (0.3, 0.1, 0.01, 0.001)


@dataclass(frozen=True)
class OpenSetResult:
    """FPIR -> ``tpir`` and -> ``thresholds``; ``rank`` R; probe counts."""

    tpir: dict[float, float]
    thresholds: dict[float, float]
    rank: int
    num_mated: int
    num_unmated: int


def identity_templates(
    embeddings: np.ndarray | Tensor, labels: np.ndarray | Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """(templates (C, D) float32, identities (C,) ascending): template = normalise(mean of normalised rows).

    One template per non-negative label; rows with a negative label are ignored.
    """
    rows = as_embeddings(embeddings, "embeddings")
    labels = as_labels(labels, rows.shape[0], "labels")
    keep = labels >= 0
    if not keep.any():
        raise ValueError("labels has no non-negative label; expected at least one identity")
    identities, inverse = np.unique(labels[keep], return_inverse=True)
    unit = normalised(rows[torch.as_tensor(np.flatnonzero(keep))], "embeddings")
    sums = torch.zeros(len(identities), rows.shape[1]).index_add_(0, torch.as_tensor(inverse), unit)
    return normalised(sums, "identity mean (opposite embeddings cancel)").numpy(), identities


def tpir_at_fpir(
    first_ranks: np.ndarray,
    first_scores: np.ndarray,
    unmated_best: np.ndarray,
    fpirs: Sequence[float] = SURVFACE_FPIRS,
    rank: int = 20,
) -> tuple[dict[float, float], dict[float, float]]:
    """(FPIR -> TPIR_rank, FPIR -> threshold) from each mated probe's best mate rank and score and
    each unmated probe's best score (module definitions)."""
    first_ranks, first_scores, unmated_best = map(np.asarray, (first_ranks, first_scores, unmated_best))
    if first_ranks.ndim != 1 or first_ranks.shape != first_scores.shape or not len(first_ranks):
        raise ValueError(
            f"first_ranks {first_ranks.shape} and first_scores {first_scores.shape}; expected (Q,) each, Q >= 1"
        )
    if unmated_best.ndim != 1 or not len(unmated_best):
        raise ValueError(f"unmated_best has shape {unmated_best.shape}; expected (U,) with U >= 1 unmated probes")
    if not isinstance(rank, int) or rank < 1:
        raise ValueError(f"rank {rank!r} is not valid; expected an int >= 1")
    thresholds = {float(f): rate_threshold(unmated_best, f, "FPIR") for f in fpirs}
    tpir = {f: float(np.mean((first_ranks <= rank) & (first_scores > t))) for f, t in thresholds.items()}
    return tpir, thresholds


def open_set_identification(
    probes: np.ndarray | Tensor,
    probe_labels: np.ndarray | Sequence[int],
    templates: np.ndarray | Tensor,
    template_labels: np.ndarray | Sequence[int],
    *,
    fpirs: Sequence[float] = SURVFACE_FPIRS,
    rank: int = 20,
    probe_chunk: int = PROBE_CHUNK,
    gallery_chunk: int = GALLERY_CHUNK,
    device: torch.device | str | None = None,
) -> OpenSetResult:
    """TPIR_rank at each FPIR of ``probes`` searched among identity ``templates`` (cosine similarity)."""
    probe_labels = as_labels(probe_labels, len(probes), "probe_labels")
    chunks = {"probe_chunk": probe_chunk, "gallery_chunk": gallery_chunk, "device": device}
    mated = mate_ranks(probes, templates, probe_labels, template_labels, **chunks)
    unmated = np.setdiff1d(np.arange(len(probe_labels)), mated.probe_indices)
    if not len(unmated):
        raise ValueError("every probe has a mate in the gallery; expected unmated probes to set the FPIR threshold")
    unmated_rows = probes[torch.as_tensor(unmated)] if isinstance(probes, Tensor) else np.asarray(probes)[unmated]
    best, _ = top_k(unmated_rows, templates, 1, **chunks)
    tpir, thresholds = tpir_at_fpir(mated.first_ranks, mated.first_scores, best[:, 0], fpirs, rank)
    return OpenSetResult(tpir, thresholds, rank, len(mated.probe_indices), len(unmated))
