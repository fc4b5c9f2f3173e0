"""1:1 verification: ROC, TPR at FAR, EER, AUC and the LFW/XQLFW 10-fold accuracy.

Definitions (scores are similarities; a pair is accepted as genuine when its score >= t):
    FAR(t) = #{impostor scores >= t} / #impostors,    TPR(t) = #{genuine scores >= t} / #genuine,
    FRR(t) = 1 - TPR(t) = #{genuine scores < t} / #genuine.
TPR at FAR f is the best TPR over thresholds with FAR(t) <= f. With impostor scores sorted
descending i_1 >= i_2 >= ... and k = floor(f * #impostors), that is #{genuine > i_(k+1)} / #genuine
(attained at the smallest threshold above i_(k+1)); see :func:`rate_threshold`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from lrfr.protocols.search import as_embeddings, normalised

REPORTED_FARS = (1e-1, 1e-2, 1e-3)


@dataclass(frozen=True)
class Roc:
    """ROC points from threshold +inf (FAR = TPR = 0) down to the lowest score (FAR = TPR = 1).

    ``thresholds``: (T,) descending, +inf then every distinct score; ``far``, ``tpr``: (T,) at each.
    """

    thresholds: np.ndarray
    far: np.ndarray
    tpr: np.ndarray


@dataclass(frozen=True)
class KFoldAccuracy:
    """``mean``, ``std`` (population, ddof=0) of the per-fold ``accuracies``; ``thresholds`` chosen per fold."""

    mean: float
    std: float
    accuracies: np.ndarray
    thresholds: np.ndarray


def pair_scores(first: np.ndarray | Tensor, second: np.ndarray | Tensor) -> np.ndarray:
    """(N,) cosine similarity of row i of ``first`` with row i of ``second``."""
    a, b = as_embeddings(first, "first"), as_embeddings(second, "second")
    if a.shape != b.shape:
        raise ValueError(f"first has shape {tuple(a.shape)} and second {tuple(b.shape)}; expected the same")
    return (normalised(a, "first") * normalised(b, "second")).sum(1).numpy()


def split_scores(
    scores: np.ndarray | Sequence[float], is_genuine: np.ndarray | Sequence[bool]
) -> tuple[np.ndarray, np.ndarray]:
    """(genuine scores, impostor scores); ValueError unless both are non-empty, finite and matched."""
    scores, is_genuine = np.asarray(scores, dtype=np.float64), np.asarray(is_genuine)
    if scores.ndim != 1 or is_genuine.shape != scores.shape or is_genuine.dtype != bool:
        raise ValueError(
            f"scores {scores.shape} and is_genuine {is_genuine.shape} ({is_genuine.dtype}); "
            "expected (N,) floats and (N,) bools"
        )
    if not np.isfinite(scores).all():
        raise ValueError("scores has a non-finite value; expected finite similarities")
    genuine, impostor = scores[is_genuine], scores[~is_genuine]
    if not len(genuine) or not len(impostor):
        raise ValueError(f"{len(genuine)} genuine and {len(impostor)} impostor scores; expected at least one of each")
    return genuine, impostor


def check_rate(rate: float, name: str) -> float:
    """``rate`` if 0 < rate < 1, else ValueError naming it."""
    if not isinstance(rate, (int, float)) or not 0 < rate < 1:
        raise ValueError(f"{name} {rate!r} is not valid; expected a number in (0, 1)")
    return float(rate)


def rate_threshold(negatives: np.ndarray, rate: float, name: str = "FAR") -> float:
    """The (k+1)-th largest of ``negatives``, k = floor(rate * N): the lowest t with #{negatives > t} <= k.

    Accepting "score > t" then gives a false-positive rate <= ``rate`` (exactly k/N without ties).
    """
    rate = check_rate(rate, name)
    k = math.floor(round(rate * len(negatives), 9))
    return float(np.partition(negatives, len(negatives) - 1 - k)[len(negatives) - 1 - k])


def tpr_at_far(
    scores: np.ndarray | Sequence[float], is_genuine: np.ndarray | Sequence[bool], fars: Sequence[float] = REPORTED_FARS
) -> dict[float, float]:
    """FAR -> TPR at that FAR (module definitions): #{genuine > rate_threshold(impostors, FAR)} / #genuine."""
    genuine, impostor = split_scores(scores, is_genuine)
    return {float(far): float(np.mean(genuine > rate_threshold(impostor, far))) for far in fars}


def roc(scores: np.ndarray | Sequence[float], is_genuine: np.ndarray | Sequence[bool]) -> Roc:
    """The ROC at every distinct score as threshold (module definitions of FAR and TPR)."""
    genuine, impostor = split_scores(scores, is_genuine)
    thresholds = np.concatenate([[np.inf], np.unique(np.concatenate([genuine, impostor]))[::-1]])
    ascending_g, ascending_i = np.sort(genuine), np.sort(impostor)
    tpr = (len(genuine) - np.searchsorted(ascending_g, thresholds, side="left")) / len(genuine)
    far = (len(impostor) - np.searchsorted(ascending_i, thresholds, side="left")) / len(impostor)
    return Roc(thresholds, far, tpr)


def auc(scores: np.ndarray | Sequence[float], is_genuine: np.ndarray | Sequence[bool]) -> float:
    """Area under the ROC (trapezoids between its points) = P(g > i) + P(g = i) / 2 over all pairs."""
    curve = roc(scores, is_genuine)
    return float(np.sum(np.diff(curve.far) * (curve.tpr[1:] + curve.tpr[:-1]) / 2))


def eer(scores: np.ndarray | Sequence[float], is_genuine: np.ndarray | Sequence[bool]) -> float:
    """Equal error rate: where the ROC, joined by straight lines, crosses FAR = FRR (= 1 - TPR).

    Along the ROC, d = FAR - FRR rises from -1 to 1; on the segment where it changes sign,
    at the fraction a = -d0 / (d1 - d0), EER = FAR0 + a * (FAR1 - FAR0).
    """
    curve = roc(scores, is_genuine)
    gap = curve.far - (1 - curve.tpr)
    end = int(np.argmax(gap >= 0))
    if gap[end] == 0:
        return float(curve.far[end])
    fraction = -gap[end - 1] / (gap[end] - gap[end - 1])
    return float(curve.far[end - 1] + fraction * (curve.far[end] - curve.far[end - 1]))


def kfold_accuracy(
    scores: np.ndarray | Sequence[float],
    is_genuine: np.ndarray | Sequence[bool],
    folds: np.ndarray | Sequence[int] | None = None,
    n_folds: int = 10,
    seed: int = 0,
) -> KFoldAccuracy:
    """The LFW/XQLFW protocol: accuracy on each fold at the threshold best on the other folds.

    ``folds``: (N,) fold id of each pair, e.g. the folds of LFW's ``pairs.txt``; default
    :func:`mixed_folds` (``n_folds`` seeded folds that each hold their share of genuine and of
    impostor pairs, whatever the pair order). Never contiguous folds in pair order: on pairs ordered
    genuine-first (as :func:`lrfr.protocols.erc.sample_pairs` returns them) each fold would hold one
    class only and its threshold, learnt on the others, would give below-chance accuracy.
    Accepted = score >= t. The threshold maximising training accuracy is searched exactly over -inf,
    +inf and the midpoints between consecutive distinct training scores; among equally good ones the
    lowest is taken.
    """
    scores, is_genuine = np.asarray(scores, dtype=np.float64), np.asarray(is_genuine)
    split_scores(scores, is_genuine)
    folds = mixed_folds(is_genuine, n_folds, seed) if folds is None else np.asarray(folds)
    if folds.shape != scores.shape:
        raise ValueError(f"folds has shape {folds.shape}; expected {scores.shape}, one fold id per pair")
    ids = np.unique(folds)
    if len(ids) < 2:
        raise ValueError("folds has a single fold id; expected at least two folds")
    thresholds = np.array([_best_threshold(scores[folds != fold], is_genuine[folds != fold]) for fold in ids])
    accuracies = np.array(
        [np.mean((scores[folds == fold] >= t) == is_genuine[folds == fold]) for fold, t in zip(ids, thresholds)]
    )
    return KFoldAccuracy(float(accuracies.mean()), float(accuracies.std()), accuracies, thresholds)


def mixed_folds(is_genuine: np.ndarray | Sequence[bool], n_folds: int = 10, seed: int = 0) -> np.ndarray:
    """(N,) fold ids in [0, n_folds): the genuine pairs and the impostor pairs are each dealt round-robin
    to the folds in a seeded random order, so every fold holds (to one pair) its share of each class
    and the folds do not depend on the pairs' order beyond the seed."""
    is_genuine = np.asarray(is_genuine, dtype=bool)
    if not isinstance(n_folds, int) or not 2 <= n_folds <= len(is_genuine):
        raise ValueError(f"n_folds {n_folds!r} is not valid; expected an int in [2, {len(is_genuine)}] (the pair count)")
    rng = np.random.default_rng(seed)
    folds = np.empty(len(is_genuine), dtype=np.int64)
    offset = 0
    for members in (np.flatnonzero(is_genuine), np.flatnonzero(~is_genuine)):
        folds[rng.permutation(members)] = (offset + np.arange(len(members))) % n_folds
        offset += len(members)  # the impostors continue the deal where the genuine pairs stopped
    return folds


def _best_threshold(scores: np.ndarray, is_genuine: np.ndarray) -> float:
    """The lowest of the thresholds (-inf, midpoints, +inf) with the highest accuracy on these pairs."""
    values, inverse = np.unique(scores, return_inverse=True)
    genuine_at = np.bincount(inverse, weights=is_genuine.astype(float), minlength=len(values))
    genuine_below = np.concatenate([[0], np.cumsum(genuine_at)])
    impostor_below = np.concatenate([[0], np.cumsum(np.bincount(inverse, minlength=len(values)) - genuine_at)])
    # cut c accepts the values from index c on: correct = impostors below + genuine at or above
    correct = impostor_below + (genuine_below[-1] - genuine_below)
    cut = int(np.argmax(correct))
    candidates = np.concatenate([[-np.inf], (values[1:] + values[:-1]) / 2, [np.inf]])
    return float(candidates[cut])
