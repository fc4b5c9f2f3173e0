"""Error-versus-reject curves (ERC) of a face quality score, and the pairs they are computed on.

Chai et al. 2023 (RI), Sec. 4.3 and Fig. 7: sample genuine and impostor pairs from TinyFace's
probe and gallery sets (20,888 and 50,000), reject the pairs of lowest quality, and plot the FNMR
of the kept pairs at a threshold set for an FMR of 1e-2, 1e-3 or 1e-4.

Definitions. Pair quality = min of its two images' qualities. Rejecting a fraction r drops the
floor(r * N) lowest-quality pairs of all N pairs, genuine and impostor pooled. Pairs of equal
quality are rejected in a seeded random order, never in pair order: with pairs listed genuine-first
(as :func:`sample_pairs` returns them) a quality with many ties would otherwise reject genuine pairs
first and look better than it is; the order of ties is drawn without regard to the label and is the
same in both variants. A pair matches when its score > t, so FMR(t) = #{impostor > t}/#impostor
and FNMR(t) = #{kept genuine <= t}/#kept genuine; t for an FMR f is
:func:`lrfr.protocols.verification.rate_threshold` (the lowest t with FMR(t) <= f). Two variants:
  ``"fixed"``: t set once on all impostor pairs, as ISO/IEC 29794-1 defines the ERC;
  ``"recomputed"``: t set again on the kept impostor pairs at each reject fraction, as CR-FIQA's
  and MagFace's evaluation scripts do.
At r = 0 both equal the plain FNMR at that FMR (= 1 - TPR at FAR f).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lrfr.protocols.verification import rate_threshold, split_scores

ERC_FMRS = (1e-2, 1e-3, 1e-4)
REJECT_FRACTIONS = tuple(round(0.05 * step, 2) for step in range(19))  # 0, 0.05, ..., 0.9
VARIANTS = ("fixed", "recomputed")


@dataclass(frozen=True)
class ErrorVersusReject:
    """``fnmr`` and ``thresholds``: (R, F) at each reject fraction (row) and FMR (column)."""

    reject_fractions: np.ndarray
    fmrs: tuple[float, ...]
    fnmr: np.ndarray
    thresholds: np.ndarray
    variant: str


def sample_pairs(
    labels: np.ndarray | Sequence[int], n_genuine: int, n_impostor: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(pairs (n_genuine + n_impostor, 2) int64, is_genuine) drawn without replacement, seeded.

    Genuine pairs: uniform among all unordered pairs {i, j}, i != j, of images with the same label;
    impostor pairs: uniform among all unordered pairs with different labels. Images with a
    negative label (unlabelled) are never used. Genuine pairs come first; within a pair i < j.
    """
    labels = _label_vector(labels, "labels")
    rng = np.random.default_rng(seed)
    genuine = _all_genuine_pairs(labels)
    labelled = np.flatnonzero(labels >= 0)
    impostor_total = len(labelled) * (len(labelled) - 1) // 2 - len(genuine)
    _check_counts(n_genuine, len(genuine), n_impostor, impostor_total)
    genuine = genuine[np.sort(rng.choice(len(genuine), n_genuine, replace=False))]
    impostor = _impostor_pairs(labels, labelled, n_impostor, rng)
    pairs = np.concatenate([genuine, impostor]).astype(np.int64).reshape(-1, 2)
    return pairs, np.arange(len(pairs)) < n_genuine


def cross_resolution_pairs(
    probe_labels: np.ndarray | Sequence[int], gallery_labels: np.ndarray | Sequence[int],
    n_genuine: int, n_impostor: int, seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(pairs (n_genuine + n_impostor, 2) int64, is_genuine): each pair a probe and a gallery image.

    The papers' ERC (Chai et al. 2023, Sec. 4.4, Fig. 7: pairs "from its gallery and probe sets")
    compares probes with their gallery, i.e. cross-resolution pairs. Pooling all images instead (as
    :func:`sample_pairs` on gallery + probes of every size would) fills the impostor pairs with
    low-resolution-vs-low-resolution pairs, which collapse together and set the FMR threshold: FNMR
    near 100 % at 0 % rejected. Here ``pairs[:, 0]`` indexes the probes and ``pairs[:, 1]`` the
    gallery; the pair score is ``pair_scores(probes[pairs[:, 0]], gallery[pairs[:, 1]])`` and its
    quality ``np.minimum(probe_quality[pairs[:, 0]], gallery_quality[pairs[:, 1]])`` (the lower one, as
    :func:`pair_quality`). Genuine pairs: uniform among the (probe, gallery) pairs of one identity;
    impostor pairs: uniform among those of different identities; images with a negative label
    (unlabelled, distractors) are never used. Drawn without replacement, seeded, and returned in a
    seeded random order (genuine and impostor pairs mixed, so folds or ties cannot follow the label).
    """
    probe_labels, gallery_labels = (_label_vector(probe_labels, "probe_labels"), _label_vector(gallery_labels, "gallery_labels"))
    rng = np.random.default_rng(seed)
    probes, gallery = np.flatnonzero(probe_labels >= 0), np.flatnonzero(gallery_labels >= 0)
    mates = [np.stack(np.meshgrid(probes[probe_labels[probes] == label], gallery[gallery_labels[gallery] == label],
                                  indexing="ij"), -1).reshape(-1, 2) for label in np.unique(probe_labels[probes])]
    genuine = np.concatenate(mates) if mates else np.zeros((0, 2), dtype=np.int64)
    impostor_total = len(probes) * len(gallery) - len(genuine)
    _check_counts(n_genuine, len(genuine), n_impostor, impostor_total)
    genuine = genuine[rng.choice(len(genuine), n_genuine, replace=False)]
    keys = np.zeros(0, dtype=np.int64)
    while len(keys) < n_impostor:
        first = probes[rng.integers(0, len(probes), 2 * (n_impostor - len(keys)) + 16)]
        second = gallery[rng.integers(0, len(gallery), len(first))]
        differ = probe_labels[first] != gallery_labels[second]
        keys = np.concatenate([keys, first[differ] * len(gallery_labels) + second[differ]])
        keys = keys[np.sort(np.unique(keys, return_index=True)[1])]
    keys = keys[:n_impostor]
    impostor = np.stack([keys // len(gallery_labels), keys % len(gallery_labels)], 1)
    pairs = np.concatenate([genuine, impostor]).astype(np.int64).reshape(-1, 2)
    order = rng.permutation(len(pairs))
    return pairs[order], (np.arange(len(pairs)) < n_genuine)[order]


def cross_pair_counts(probe_labels: np.ndarray | Sequence[int], gallery_labels: np.ndarray | Sequence[int]) -> tuple[int, int]:
    """(genuine, impostor): how many (probe, gallery) pairs :func:`cross_resolution_pairs` can draw from
    (images with a negative label left out)."""
    probe_labels, gallery_labels = (_label_vector(probe_labels, "probe_labels"), _label_vector(gallery_labels, "gallery_labels"))
    probe_ids, probe_counts = np.unique(probe_labels[probe_labels >= 0], return_counts=True)
    gallery_ids, gallery_counts = np.unique(gallery_labels[gallery_labels >= 0], return_counts=True)
    _, in_probe, in_gallery = np.intersect1d(probe_ids, gallery_ids, return_indices=True)
    genuine = int((probe_counts[in_probe].astype(np.int64) * gallery_counts[in_gallery]).sum())
    return genuine, int(probe_counts.sum()) * int(gallery_counts.sum()) - genuine


def _check_counts(n_genuine: int, genuine: int, n_impostor: int, impostor: int) -> None:
    for name, wanted, available in (("n_genuine", n_genuine, genuine), ("n_impostor", n_impostor, impostor)):
        if not isinstance(wanted, (int, np.integer)) or not 0 <= wanted <= available:
            raise ValueError(f"{name} {wanted!r} is not valid; expected an int in [0, {available}] (the pairs available)")


def _label_vector(labels: np.ndarray | Sequence[int], name: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} has shape {labels.shape} and dtype {labels.dtype}; expected (N,) integers")
    return labels


def _all_genuine_pairs(labels: np.ndarray) -> np.ndarray:
    """(M, 2) every unordered same-label pair (i < j), identities in ascending label order."""
    labelled = np.flatnonzero(labels >= 0)
    grouped = labelled[np.argsort(labels[labelled], kind="stable")]
    _, starts, sizes = np.unique(labels[grouped], return_index=True, return_counts=True)
    parts = [grouped[start + np.stack(np.triu_indices(size, 1), 1)] for start, size in zip(starts, sizes) if size > 1]
    return np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.int64)


def _impostor_pairs(labels: np.ndarray, labelled: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct impostor pairs: uniform draws of (i, j), kept when labels differ, in draw order."""
    keys = np.zeros(0, dtype=np.int64)
    while len(keys) < count:
        first, second = labelled[rng.integers(0, len(labelled), (2, 2 * (count - len(keys)) + 16))]
        differ = labels[first] != labels[second]
        drawn = np.minimum(first, second)[differ] * len(labels) + np.maximum(first, second)[differ]
        keys = np.concatenate([keys, drawn])
        keys = keys[np.sort(np.unique(keys, return_index=True)[1])]
    keys = keys[:count]
    return np.stack([keys // len(labels), keys % len(labels)], 1)


def pair_quality(quality: np.ndarray | Sequence[float], pairs: np.ndarray) -> np.ndarray:
    """(N,) quality of each pair: the lower of its two images' qualities."""
    quality, pairs = np.asarray(quality, dtype=np.float64), np.asarray(pairs)
    if quality.ndim != 1 or pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(f"quality {quality.shape} and pairs {pairs.shape}; expected (N,) and (M, 2)")
    if pairs.size and (pairs.min() < 0 or pairs.max() >= len(quality)):
        raise ValueError(f"pairs index outside [0, {len(quality)}); expected image indices into quality")
    return np.minimum(quality[pairs[:, 0]], quality[pairs[:, 1]])


def error_versus_reject(
    scores: np.ndarray | Sequence[float],
    is_genuine: np.ndarray | Sequence[bool],
    quality: np.ndarray | Sequence[float],
    *,
    fmrs: Sequence[float] = ERC_FMRS,
    reject_fractions: Sequence[float] = REJECT_FRACTIONS,
    variant: str = "fixed",
    seed: int = 0,
) -> ErrorVersusReject:
    """FNMR of the kept pairs after rejecting each fraction of lowest-``quality`` pairs (module definitions).

    ``quality``: (N,) pair quality (see :func:`pair_quality`); ties are broken in a random order drawn
    with ``seed``. A level with no kept genuine pair, or (``"recomputed"``) no kept impostor pair, gets
    FNMR and threshold NaN.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r} is not valid; expected one of {VARIANTS}")
    scores, is_genuine = np.asarray(scores, dtype=np.float64), np.asarray(is_genuine)
    _, impostor = split_scores(scores, is_genuine)
    quality = np.asarray(quality, dtype=np.float64)
    if quality.shape != scores.shape or not np.isfinite(quality).all():
        raise ValueError(f"quality has shape {quality.shape}; expected {scores.shape} finite pair qualities")
    fractions = np.asarray(reject_fractions, dtype=np.float64)
    if fractions.ndim != 1 or not len(fractions) or not ((fractions >= 0) & (fractions < 1)).all() or (np.diff(fractions) <= 0).any():
        raise ValueError(f"reject_fractions {reject_fractions!r}: expected increasing values in [0, 1)")
    fixed = [rate_threshold(impostor, fmr, "FMR") for fmr in fmrs]
    order = np.lexsort((np.random.default_rng(seed).permutation(len(quality)), quality))  # ties: seeded random
    fnmr = np.full((len(fractions), len(fixed)), np.nan)
    thresholds = np.full_like(fnmr, np.nan)
    for row, fraction in enumerate(fractions):
        kept = np.zeros(len(scores), dtype=bool)
        kept[order[int(np.floor(fraction * len(scores) + 1e-9)) :]] = True
        kept_genuine, kept_impostor = scores[kept & is_genuine], scores[kept & ~is_genuine]
        if not len(kept_genuine) or (variant == "recomputed" and not len(kept_impostor)):
            continue
        for column, fmr in enumerate(fmrs):
            threshold = fixed[column] if variant == "fixed" else rate_threshold(kept_impostor, fmr, "FMR")
            thresholds[row, column] = threshold
            fnmr[row, column] = np.mean(kept_genuine <= threshold)
    return ErrorVersusReject(fractions, tuple(float(f) for f in fmrs), fnmr, thresholds, variant)


def erc_area(curve: ErrorVersusReject) -> np.ndarray:
    """(F,) area under each FMR's ERC: trapezoids of FNMR over the reject fractions (NaN levels dropped)."""
    areas = []
    for column in range(curve.fnmr.shape[1]):
        defined = ~np.isnan(curve.fnmr[:, column])
        x, y = curve.reject_fractions[defined], curve.fnmr[defined, column]
        areas.append(float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2)))
    return np.array(areas)
