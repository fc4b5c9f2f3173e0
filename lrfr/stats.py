"""Uncertainty of face-recognition results: a bootstrap over identities, paired differences, verdicts.

**Why identities.** The images of one identity succeed or fail together (one hard face, one
look-alike): probes are not independent, identities (very nearly) are. A bootstrap that resampled
probes would give intervals that are too narrow. So every interval here comes from a *cluster
bootstrap*: a resample draws G identities with replacement out of the G identities of the
evaluation; identity g, drawn w_g times, gives each of its items (probes, pairs, faces) the
weight w_g, and the statistic is recomputed with those weights. A negative label (an unlabelled
image, e.g. an unmated probe or a distractor) is its own unit.

**Statistics** are :class:`Statistic` objects: a function of an item-weight matrix (B, N) -> (B,)
that equals the ordinary metric when every weight is 1. They combine with ``+ - * /`` and
numbers, and every operand is evaluated on the *same* resampled identities, so
``boot.estimate(ours - baseline)`` is the **paired** difference of two methods evaluated on the
same probes (Δ with its interval), and ``(a - b) - (c - d)`` a difference of differences.
Builders: :func:`mean` (rank-k hit rate with :func:`rank_hits`, mAP from per-probe AP,
verification accuracy from per-pair correctness, mean distances), :func:`rate_at` (TPR at FAR,
TPIR at FPIR via :func:`tpir_scores`), :func:`auc` (Mann-Whitney area). Methods evaluated on
different test sets (e.g. native TinyFace vs synthetic SynLR-MF2) are compared with
:func:`independent_difference`, which resamples each set's identities independently.

**Interval**: the percentile interval of B resamples (default 1,000, 95 %). Seeded: a
:class:`Bootstrap` draws the same resamples on every call.

**Verdict** (:func:`verdict`) of a claim "the statistic is greater (less) than ``null``" (a
difference: null 0; an AUC: null 0.5): *reproduced* when the interval lies entirely on the
claimed side of ``null``, *contradicted* when it lies entirely on the other side, *inconclusive*
otherwise.

Typical notebook use, one claim::

    boot = stats.Bootstrap(probe_labels, seed=seed)
    ours, base = stats.mean(stats.rank_hits(ours_ranks, 1), 100), stats.mean(stats.rank_hits(base_ranks, 1), 100)
    delta = boot.estimate(ours - base)            # Estimate: value, low, high
    stats.verdict(delta, "greater")               # "reproduced" | "contradicted" | "inconclusive"
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

RESAMPLES = 1000
LEVEL = 0.95
DIRECTIONS = ("greater", "less")
VERDICTS = ("reproduced", "contradicted", "inconclusive")
_CHUNK_ELEMENTS = 1 << 22  # item weights materialised per chunk of resamples (about 32 MB of float64)


@dataclass(frozen=True)
class Estimate:
    """A statistic on the full data (``value``) and its bootstrap percentile interval [low, high]."""

    value: float
    low: float
    high: float
    level: float = LEVEL
    resamples: int = RESAMPLES
    units: int = 0  # identities (resampling units)

    def __str__(self) -> str:
        return self.format()

    def format(self, decimals: int = 2, signed: bool = False) -> str:
        """``"12.34 [10.10, 14.50]"`` (``signed``: with a + on positive numbers, for differences)."""
        sign = "+" if signed else ""
        return f"{self.value:{sign}.{decimals}f} [{self.low:{sign}.{decimals}f}, {self.high:{sign}.{decimals}f}]"

    @property
    def width(self) -> float:
        return self.high - self.low

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


class Statistic:
    """A metric as a function of item weights: ``(B, N)`` float weights -> ``(B,)`` values.

    ``size`` is N, the number of items (aligned with the :class:`Bootstrap`'s groups). Arithmetic
    with another Statistic (same N) or a number gives a Statistic evaluated on the same weights.
    """

    def __init__(self, function: Callable[[np.ndarray], np.ndarray], size: int) -> None:
        self.function, self.size = function, int(size)

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        if weights.ndim != 2 or weights.shape[1] != self.size:
            raise ValueError(f"weights has shape {weights.shape}; expected (B, {self.size})")
        return np.asarray(self.function(weights), dtype=np.float64)

    def value(self) -> float:
        """The statistic with every weight 1 (the ordinary, unresampled metric)."""
        return float(self(np.ones((1, self.size)))[0])

    def _combine(self, other: Statistic | float, operation: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Statistic:
        if isinstance(other, Statistic):
            if other.size != self.size:
                raise ValueError(f"statistics over {self.size} and {other.size} items cannot be combined; "
                                 "expected both over the same items (use independent_difference for two test sets)")
            return Statistic(lambda w: operation(self(w), other(w)), self.size)
        if not isinstance(other, (int, float)):
            return NotImplemented
        return Statistic(lambda w: operation(self(w), np.float64(other)), self.size)

    def __add__(self, other): return self._combine(other, np.add)
    def __radd__(self, other): return self._combine(other, lambda a, b: b + a)
    def __sub__(self, other): return self._combine(other, np.subtract)
    def __rsub__(self, other): return self._combine(other, lambda a, b: b - a)
    def __mul__(self, other): return self._combine(other, np.multiply)
    def __rmul__(self, other): return self._combine(other, lambda a, b: b * a)
    def __truediv__(self, other): return self._combine(other, np.divide)
    def __neg__(self): return self * -1.0


def units(labels: np.ndarray | Sequence[int]) -> np.ndarray:
    """(N,) resampling unit of each item: its label, a fresh unit for each negative (unlabelled) one."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not len(labels) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels has shape {labels.shape} and dtype {labels.dtype}; expected (N,) integers, N >= 1")
    unit = labels.astype(np.int64).copy()
    unlabelled = unit < 0
    unit[unlabelled] = unit.max(initial=0) + 1 + np.arange(unlabelled.sum())
    return unit


class Bootstrap:
    """Seeded resampling of the identities of ``labels`` (one label per item; see :func:`units`).

    Every :meth:`estimate` draws the same ``resamples`` resamples (same seed, same identities),
    so estimates of different statistics over the same items are paired.
    """

    def __init__(self, labels: np.ndarray | Sequence[int], *, resamples: int = RESAMPLES, seed: int = 0,
                 level: float = LEVEL) -> None:
        if not isinstance(resamples, int) or resamples < 10:
            raise ValueError(f"resamples {resamples!r} is not valid; expected an int >= 10")
        if not 0 < level < 1:
            raise ValueError(f"level {level!r} is not valid; expected a number in (0, 1)")
        _, self.index = np.unique(units(labels), return_inverse=True)
        self.groups = int(self.index.max()) + 1
        self.resamples, self.seed, self.level = resamples, seed, level

    @property
    def size(self) -> int:
        return len(self.index)

    def group_weights(self) -> np.ndarray:
        """(B, G) int counts: how often each identity is drawn in each resample (multinomial, seeded)."""
        draws = np.random.default_rng(self.seed).integers(0, self.groups, (self.resamples, self.groups))
        flat = (draws + self.groups * np.arange(self.resamples)[:, None]).ravel()
        return np.bincount(flat, minlength=self.resamples * self.groups).reshape(self.resamples, self.groups)

    def samples(self, statistic: Statistic) -> np.ndarray:
        """(B,) the statistic on each resample."""
        if statistic.size != self.size:
            raise ValueError(f"the statistic is over {statistic.size} items and the bootstrap over {self.size}; "
                             "expected one label per item of the statistic")
        weights = self.group_weights()
        chunk = max(1, _CHUNK_ELEMENTS // max(self.size, 1))
        return np.concatenate([
            statistic(weights[start:start + chunk][:, self.index].astype(np.float64))
            for start in range(0, self.resamples, chunk)
        ])

    def estimate(self, statistic: Statistic) -> Estimate:
        """The statistic's full-data value and percentile interval."""
        low, high = percentile_interval(self.samples(statistic), self.level)
        return Estimate(statistic.value(), low, high, self.level, self.resamples, self.groups)


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The ((1 - level)/2, (1 + level)/2) quantiles of the finite ``samples``; NaN if there are none."""
    finite = samples[np.isfinite(samples)]
    if not len(finite):
        return math.nan, math.nan
    low, high = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def independent_difference(
    first: Bootstrap, a: Statistic, second: Bootstrap, b: Statistic
) -> Estimate:
    """``a`` on ``first``'s items minus ``b`` on ``second``'s (two different test sets), each set's
    identities resampled independently (``second`` is re-seeded with ``seed + 1`` when the two
    bootstraps share a seed, so the draws are not coupled)."""
    if first.resamples != second.resamples or first.level != second.level:
        raise ValueError("the two bootstraps differ in resamples or level; expected the same")
    other = second if second.seed != first.seed else _reseeded(second, first.seed + 1)
    low, high = percentile_interval(first.samples(a) - other.samples(b), first.level)
    return Estimate(a.value() - b.value(), low, high, first.level, first.resamples, first.groups + second.groups)


def _reseeded(boot: Bootstrap, seed: int) -> Bootstrap:
    copy = object.__new__(Bootstrap)
    copy.__dict__.update(boot.__dict__, seed=seed)
    return copy


# ----------------------------------------------------------------------------- statistics


def mean(values: np.ndarray | Sequence[float], scale: float = 1.0) -> Statistic:
    """Weighted mean of per-item ``values`` times ``scale`` (100 for percentages): a rate of
    rank-k hits, mAP from per-probe AP, verification accuracy from per-pair correctness."""
    values = _finite_vector(values, "values") * scale
    return Statistic(lambda w: (w @ values) / w.sum(1), len(values))


def subset_mean(values: np.ndarray | Sequence[float], chosen: np.ndarray | Sequence[bool], scale: float = 1.0) -> Statistic:
    """Weighted mean of ``values`` over the ``chosen`` items only, as a statistic over all items (e.g. the
    rank-1 of one distance's probes, resampled with the identities of every distance); NaN in a resample
    that draws no chosen item (dropped by the interval)."""
    values = _finite_vector(values, "values") * scale
    chosen = np.asarray(chosen)
    if chosen.shape != values.shape or chosen.dtype != bool or not chosen.any():
        raise ValueError(f"chosen has shape {chosen.shape} ({chosen.dtype}); expected {values.shape} bools, some True")
    inside = np.where(chosen, values, 0.0)

    def statistic(w: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (w @ inside) / (w @ chosen.astype(np.float64))

    return Statistic(statistic, len(values))


def rank_hits(first_ranks: np.ndarray | Sequence[int], k: int = 1) -> np.ndarray:
    """(Q,) 1.0 where a probe's best-ranked mate is within rank ``k`` (CMC(k) is their mean)."""
    first_ranks = np.asarray(first_ranks)
    if first_ranks.ndim != 1 or (first_ranks < 1).any():
        raise ValueError(f"first_ranks has shape {first_ranks.shape}; expected (Q,) ranks >= 1")
    return (first_ranks <= k).astype(np.float64)


def rate_at(scores: np.ndarray | Sequence[float], positive: np.ndarray | Sequence[bool], rate: float,
            scale: float = 1.0) -> Statistic:
    """The fraction of positive items with score > t, t set on the negative items for a false
    rate ``rate``: ``lrfr.protocols.verification.rate_threshold`` on the weighted negatives (the
    lowest t such that the weight of negatives above t is <= floor(rate * their total weight)).

    TPR at FAR: items are pairs, ``positive`` = genuine. TPIR at FPIR: see :func:`tpir_scores`.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive)
    if scores.ndim != 1 or positive.shape != scores.shape or positive.dtype != bool:
        raise ValueError(f"scores {scores.shape} and positive {positive.shape} ({positive.dtype}); expected (N,) and (N,) bool")
    if np.isnan(scores).any() or not positive.any() or positive.all():
        raise ValueError("expected scores without NaN and at least one positive and one negative item")
    if not 0 < rate < 1:
        raise ValueError(f"rate {rate!r} is not valid; expected a number in (0, 1)")
    negative_index = np.flatnonzero(~positive)
    order = negative_index[np.argsort(-scores[negative_index], kind="stable")]  # descending
    descending, positive_scores = scores[order], scores[positive]

    def statistic(w: np.ndarray) -> np.ndarray:
        cumulative = np.cumsum(w[:, order], axis=1)
        allowed = np.floor(np.round(rate * cumulative[:, -1], 9))
        threshold = descending[np.argmax(cumulative > allowed[:, None], axis=1)]
        wp = w[:, positive]
        with np.errstate(invalid="ignore", divide="ignore"):  # a resample without positives: NaN, dropped
            return scale * (wp * (positive_scores[None] > threshold[:, None])).sum(1) / wp.sum(1)

    return Statistic(statistic, len(scores))


def tpir_scores(first_ranks: np.ndarray, first_scores: np.ndarray, rank: int = 20) -> np.ndarray:
    """Mated probes' scores for TPIR_rank at FPIR with :func:`rate_at`: the best mate score where
    the mate is within ``rank``, -inf otherwise (never counted as identified). Concatenate with the
    unmated probes' best scores and pass ``positive`` = mated."""
    first_ranks, first_scores = np.asarray(first_ranks), np.asarray(first_scores, dtype=np.float64)
    if first_ranks.shape != first_scores.shape or first_ranks.ndim != 1:
        raise ValueError(f"first_ranks {first_ranks.shape} and first_scores {first_scores.shape}; expected (Q,) each")
    return np.where(first_ranks <= rank, first_scores, -np.inf)


def auc(scores: np.ndarray | Sequence[float], positive: np.ndarray | Sequence[bool]) -> Statistic:
    """Area under the ROC of ``scores`` separating positive from negative items: the weighted
    Mann-Whitney P(s_pos > s_neg) + P(s_pos = s_neg) / 2 (0.5: no better than chance)."""
    scores = _finite_vector(scores, "scores")
    positive = np.asarray(positive)
    if positive.shape != scores.shape or positive.dtype != bool or not positive.any() or positive.all():
        raise ValueError(f"positive has shape {positive.shape} ({positive.dtype}); expected {scores.shape} bools with both classes")
    negative_index = np.flatnonzero(~positive)
    order = negative_index[np.argsort(scores[negative_index], kind="stable")]
    ascending = scores[order]
    below = np.searchsorted(ascending, scores[positive], side="left")
    tied_end = np.searchsorted(ascending, scores[positive], side="right")

    def statistic(w: np.ndarray) -> np.ndarray:
        cumulative = np.concatenate([np.zeros((len(w), 1)), np.cumsum(w[:, order], axis=1)], axis=1)
        under = np.take_along_axis(cumulative, np.broadcast_to(below, (len(w), len(below))), 1)
        tied = np.take_along_axis(cumulative, np.broadcast_to(tied_end, (len(w), len(below))), 1) - under
        wp = w[:, positive]
        return (wp * (under + tied / 2)).sum(1) / (wp.sum(1) * cumulative[:, -1])

    return Statistic(statistic, len(scores))


def _finite_vector(values: np.ndarray | Sequence[float], name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or not len(values) or not np.isfinite(values).all():
        raise ValueError(f"{name} has shape {values.shape}; expected (N,) finite values, N >= 1")
    return values


# ----------------------------------------------------------------------------- verdicts


def verdict(estimate: Estimate, direction: str, null: float = 0.0) -> str:
    """"reproduced" if the interval lies entirely on the claimed side of ``null`` ("greater": above,
    "less": below), "contradicted" if entirely on the other side, else "inconclusive"."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r} is not valid; expected one of {DIRECTIONS}")
    if math.isnan(estimate.low) or math.isnan(estimate.high):
        return "inconclusive"
    above, below = estimate.low > null, estimate.high < null
    if direction == "less":
        above, below = below, above
    return "reproduced" if above else "contradicted" if below else "inconclusive"
