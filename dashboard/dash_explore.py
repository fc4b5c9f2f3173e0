"""Embedding exploration relative to the unrecognizable-identities (UI) center (Chai et al. 2023).

The dashboard's logic apart from its widgets (tested without Streamlit):
- :func:`resolve_ui_center`: a run's UI center, from ``ui_center.json`` or the faces of split "ui";
- :func:`rescore`: closed-set rank-1 of the probes (split "probe") searched in the gallery (splits
  "gallery" and "distractor"), as :func:`~lrfr.protocols.identification.evaluate_identification`
  scores it, and per face whether its rank-1 match is correct (NaN for faces that are not mated probes);
- :func:`neighbours`: each query's k nearest faces by cosine similarity (itself excluded);
- :func:`center_position`: where to draw the UI center in a 2-D/3-D projection;
- :func:`shared_histogram`: counts of all faces and of a selection over the same bins;
- :func:`run_erc`: the ERC of Sec. 4.3 on probe-vs-gallery pairs of a run (pooled pairs without splits).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from lrfr.protocols.erc import ErrorVersusReject, cross_pair_counts, cross_resolution_pairs, error_versus_reject, pair_quality, sample_pairs
from lrfr.protocols.quality import ui_center
from lrfr.protocols.search import top_k
from lrfr.runs import RunFolder, RunFolderError

UI_CENTER_FILE = "ui_center.json"
PROBE_SPLITS = ("probe",)
GALLERY_SPLITS = ("gallery", "distractor")


@dataclass(frozen=True)
class UICenter:
    """A unit-norm (D,) UI center and where it came from (shown to the user)."""

    center: np.ndarray
    source: str


@dataclass(frozen=True)
class Rescored:
    """``rank1``: CMC(1) over the mated probes (``num_mated_probes`` of ``num_probes``);
    ``correct``: (N,) 1.0 / 0.0 rank-1 hit per face, NaN for faces that are not mated probes."""

    rank1: float
    num_mated_probes: int
    num_probes: int
    correct: np.ndarray


@dataclass(frozen=True)
class Neighbours:
    """(Q, k) nearest faces of each query: row ``indices``, cosine ``scores``, ``same_identity`` (labels >= 0 and equal)."""

    indices: np.ndarray
    scores: np.ndarray
    same_identity: np.ndarray


def resolve_ui_center(run: RunFolder, embeddings: np.ndarray, split: np.ndarray | None) -> UICenter | None:
    """The run's UI center: ``ui_center.json`` if present, else the mean of the split "ui" faces, else None."""
    path = run.path / UI_CENTER_FILE
    if path.is_file():
        return UICenter(_read_center(path, embeddings.shape[1]), f"{UI_CENTER_FILE} ({_center_origin(path)})")
    if split is not None and (split == "ui").any():
        count = int((split == "ui").sum())
        return UICenter(ui_center(embeddings[split == "ui"]), f"computed from the {count} faces of split 'ui'")
    return None


def _read_center(path, dim: int) -> np.ndarray:
    try:
        center = np.asarray(json.loads(path.read_text(encoding="utf-8"))["center"], dtype=np.float64)
    except (ValueError, KeyError, TypeError) as error:
        raise RunFolderError(f"{path} is not valid ({error!r}); expected JSON {{\"center\": [{dim} floats], ...}}") from error
    norm = np.linalg.norm(center) if center.ndim == 1 else 0.0
    if center.shape != (dim,) or not np.isfinite(center).all() or norm == 0:
        raise RunFolderError(f"{path} holds a center of shape {center.shape}; expected {dim} finite floats, not all zero")
    return (center / norm).astype(np.float32)


def _center_origin(path) -> str:
    info = json.loads(path.read_text(encoding="utf-8"))
    return ", ".join(f"{key}: {info[key]}" for key in ("embedding_set", "source") if key in info) or "stored"


def rescore(embeddings: np.ndarray, labels: np.ndarray, split: np.ndarray) -> Rescored:
    """Rank-1 identification of the probes in the gallery (module definitions); ValueError without mates.

    Equals ``evaluate_identification(...).cmc[1]``: the best gallery item by :func:`top_k` (same
    ranking rule, ties to the lower index) is a mate exactly when the best mate has rank 1.
    """
    probes = np.flatnonzero(np.isin(split, PROBE_SPLITS))
    gallery = np.flatnonzero(np.isin(split, GALLERY_SPLITS))
    if not len(probes) or not len(gallery):
        raise ValueError(f"no faces of split {PROBE_SPLITS} or {GALLERY_SPLITS}; expected both to score rank-1")
    mated = probes[(labels[probes] >= 0) & np.isin(labels[probes], labels[gallery])]
    if not len(mated):
        raise ValueError("no probe has a mate in the gallery (no shared non-negative label); expected at least one")
    best = gallery[top_k(embeddings[mated], embeddings[gallery], 1)[1][:, 0]]
    correct = np.full(len(labels), np.nan)
    correct[mated] = (labels[best] == labels[mated]).astype(float)
    return Rescored(float(correct[mated].mean()), len(mated), len(probes), correct)


def neighbours(embeddings: np.ndarray, labels: np.ndarray, queries: np.ndarray, k: int) -> Neighbours:
    """The k most cosine-similar faces of each query row (ties: lower index first), the query excluded."""
    queries = np.asarray(queries, dtype=np.int64)
    if not 1 <= k < len(embeddings):
        raise ValueError(f"k {k!r} is not valid; expected an int in [1, {len(embeddings) - 1}]")
    scores, indices = top_k(embeddings[queries], embeddings, k + 1)
    keep = indices != queries[:, None]
    keep[keep.sum(1) > k, -1] = False  # the query was not among its k + 1 best: drop the last instead
    indices, scores = indices[keep].reshape(len(queries), k), scores[keep].reshape(len(queries), k)
    same = (labels[indices] == labels[queries][:, None]) & (labels[queries][:, None] >= 0)
    return Neighbours(indices, scores, same)


def center_position(embeddings: np.ndarray, points: np.ndarray, center: np.ndarray, k: int = 10) -> np.ndarray:
    """(dims,) mean projected position of the k faces most cosine-similar to the center.

    t-SNE and UMAP have no out-of-sample transform, so the center is placed among its nearest faces.
    """
    _, nearest = top_k(np.asarray(center, dtype=np.float32)[None], embeddings, min(k, len(embeddings)))
    return np.asarray(points)[nearest[0]].mean(axis=0)


def shared_histogram(values: np.ndarray, selected: np.ndarray, bins: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(edges (bins + 1,), counts of all finite values, counts of the ``selected`` ones) over the same bins."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        raise ValueError("no finite value to histogram")
    edges = np.histogram_bin_edges(values[finite], bins=bins)
    counts = np.histogram(values[finite], edges)[0]
    chosen = np.zeros(len(values), dtype=bool)
    chosen[np.asarray(selected, dtype=np.int64)] = True
    return edges, counts, np.histogram(values[finite & chosen], edges)[0]


def run_erc(
    embeddings: np.ndarray,
    labels: np.ndarray,
    split: np.ndarray | None,
    qualities: dict[str, np.ndarray],
    *,
    fmr: float = 1e-3,
    n_genuine: int = 20888,
    n_impostor: int = 50000,
    seed: int = 0,
) -> dict[str, ErrorVersusReject]:
    """ERC per named per-face quality (the lower quality of a pair's two faces), capped at the pairs available.

    With splits, pairs compare a labelled probe with a labelled gallery face
    (:func:`~lrfr.protocols.erc.cross_resolution_pairs`, as the papers' ERC does): pooling probes of every
    size would fill the impostors with low-resolution pairs that set the FMR threshold. Without splits,
    :func:`~lrfr.protocols.erc.sample_pairs` over all labelled faces. Scores: cosine similarity.
    """
    if split is None:
        first = second = np.flatnonzero(labels >= 0)
        genuine, impostor = _pooled_counts(labels[first])
        pairs, is_genuine = sample_pairs(labels[first], min(n_genuine, genuine), min(n_impostor, impostor), seed)
    else:
        first = np.flatnonzero(np.isin(split, PROBE_SPLITS) & (labels >= 0))
        second = np.flatnonzero((split == "gallery") & (labels >= 0))
        genuine, impostor = cross_pair_counts(labels[first], labels[second])
        pairs, is_genuine = cross_resolution_pairs(labels[first], labels[second], min(n_genuine, genuine),
                                                   min(n_impostor, impostor), seed)
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    faces = np.stack([first[pairs[:, 0]], second[pairs[:, 1]]], 1)  # indices into the run's faces
    left, right = faces[:, 0], faces[:, 1]
    scores = np.concatenate([np.einsum("ij,ij->i", unit[a], unit[b])  # blocks: no (pairs, D) copies
                             for a, b in zip(np.array_split(left, max(1, len(pairs) // 4096)),
                                             np.array_split(right, max(1, len(pairs) // 4096)))])
    return {
        name: error_versus_reject(scores, is_genuine, pair_quality(quality, faces), fmrs=(fmr,), seed=seed)
        for name, quality in qualities.items()
    }


def _pooled_counts(labels: np.ndarray) -> tuple[int, int]:
    """(genuine, impostor) unordered pairs among labelled faces."""
    sizes = np.unique(labels, return_counts=True)[1].astype(np.int64)
    genuine = int((sizes * (sizes - 1) // 2).sum())
    return genuine, len(labels) * (len(labels) - 1) // 2 - genuine

