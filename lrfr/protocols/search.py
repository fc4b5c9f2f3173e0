"""Exact chunked gallery search by cosine similarity: top-k and the ranks of every mate.

Scores are cosine similarities of L2-normalised float32 embeddings. The probes x gallery score
matrix is computed in blocks (``probe_chunk`` x ``gallery_chunk``) and reduced block by block, so
neither the full matrix nor a full sort of it ever exists; memory is O(block + P*k) or
O(block + P*M) for M mates per probe.

Ranking rule, used throughout ``lrfr.protocols``: gallery items are ordered by score, highest
first, and items with equal scores by gallery index, lowest first (a stable descending sort).
So the rank of gallery item i for probe p is

    rank(i) = 1 + #{g : s(p, g) > s(p, i)} + #{g < i : s(p, g) = s(p, i)}.

Labels: gallery and probe labels are integers; a negative label (conventionally -1) marks an
unlabelled image (a distractor), which is never anyone's mate.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

PROBE_CHUNK = 2048
GALLERY_CHUNK = 4096


@dataclass(frozen=True)
class MateRanks:
    """The rank and score of every mate of every probe that has a mate.

    ``probe_indices``: (Q,) indices of the probes with at least one mate, ascending.
    ``counts``: (Q,) number of mates of each. Row q of the (Q, M) arrays holds its mates ordered
    by rank (best first) in columns ``< counts[q]``; the rest is padding.
    ``ranks``: int64, 1-based ranks in the whole gallery (strictly increasing along a row; padding 0).
    ``scores``: float32 cosine similarities (non-increasing along a row; padding -inf).
    ``gallery_indices``: int64 (padding -1).
    """

    probe_indices: np.ndarray
    counts: np.ndarray
    ranks: np.ndarray
    scores: np.ndarray
    gallery_indices: np.ndarray

    @property
    def first_ranks(self) -> np.ndarray:
        """(Q,) rank of each probe's best-ranked mate."""
        return self.ranks[:, 0]

    @property
    def first_scores(self) -> np.ndarray:
        """(Q,) score of each probe's best-ranked mate (its highest mate score)."""
        return self.scores[:, 0]


def as_embeddings(embeddings: np.ndarray | Tensor, name: str) -> Tensor:
    """``embeddings`` as a (N, D) float32 CPU tensor, sharing memory with a float32 input."""
    tensor = torch.as_tensor(embeddings)
    if tensor.ndim != 2 or tensor.shape[0] == 0 or tensor.shape[1] == 0:
        raise ValueError(f"{name} has shape {tuple(tensor.shape)}; expected (N, D) with N, D >= 1")
    if not tensor.is_floating_point():
        raise ValueError(f"{name} has dtype {tensor.dtype}; expected floating point embeddings")
    return tensor.to(torch.float32)


def as_labels(labels: np.ndarray | Tensor | Sequence[int], count: int, name: str) -> np.ndarray:
    """``labels`` as a (count,) int64 array."""
    array = np.asarray(labels)
    if array.shape != (count,) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} has shape {array.shape} and dtype {array.dtype}; expected ({count},) integers")
    return array.astype(np.int64, copy=False)


def normalised(embeddings: Tensor, name: str, device: torch.device | None = None) -> Tensor:
    """Rows divided by their L2 norm; ValueError on a non-finite value or a zero row."""
    rows = embeddings.to(device) if device is not None else embeddings
    norms = torch.linalg.vector_norm(rows, dim=1, keepdim=True)
    if not torch.isfinite(norms).all() or not (norms > 0).all():
        raise ValueError(f"{name} has a row with a non-finite value or zero norm; expected finite non-zero embeddings")
    return rows / norms


def _check_dims(probes: Tensor, gallery: Tensor) -> None:
    if probes.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"probes have dimension {probes.shape[1]} and gallery {gallery.shape[1]}; expected the same"
        )


def _check_chunks(probe_chunk: int, gallery_chunk: int) -> None:
    for name, value in (("probe_chunk", probe_chunk), ("gallery_chunk", gallery_chunk)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} {value!r} is not valid; expected an int >= 1")


def _blocks(
    probe_chunks: list[Tensor], gallery: Tensor, gallery_chunk: int, device: torch.device | None
) -> Iterator[tuple[int, int, int, Tensor]]:
    """(g0, g1, chunk number, scores of that probe chunk against gallery[g0:g1]), gallery outermost.

    The scores live in one reused buffer (valid until the next block): a fresh allocation per
    block costs more in page faults than the block's arithmetic.
    """
    buffer = _buffer(probe_chunks, min(gallery_chunk, gallery.shape[0]), torch.float32)
    for g0 in range(0, gallery.shape[0], gallery_chunk):
        g1 = min(g0 + gallery_chunk, gallery.shape[0])
        block = normalised(gallery[g0:g1], "gallery", device).T
        for number, chunk in enumerate(probe_chunks):
            yield g0, g1, number, torch.matmul(chunk, block, out=_view(buffer, len(chunk), g1 - g0))


def _buffer(probe_chunks: list[Tensor], columns: int, dtype: torch.dtype) -> Tensor:
    """A flat buffer for the largest (chunk, columns) block."""
    return torch.empty(max(map(len, probe_chunks)) * columns, dtype=dtype, device=probe_chunks[0].device)


def _view(buffer: Tensor, rows: int, columns: int) -> Tensor:
    """A contiguous (rows, columns) view of the start of ``buffer``."""
    return buffer[: rows * columns].view(rows, columns)


def top_k(
    probes: np.ndarray | Tensor,
    gallery: np.ndarray | Tensor,
    k: int,
    *,
    probe_chunk: int = PROBE_CHUNK,
    gallery_chunk: int = GALLERY_CHUNK,
    device: torch.device | str | None = None,
    backend: str = "torch",
) -> tuple[np.ndarray, np.ndarray]:
    """The k best gallery items of each probe: (scores (P, k) float32, indices (P, k) int64).

    Exact: cosine similarity computed in blocks with a running top-k merged after each block;
    ordered by the module's ranking rule (score descending, then gallery index ascending), so the
    result equals the first k columns of a stable descending argsort of the full score matrix.
    ``backend="faiss"`` searches a faiss ``IndexFlatIP`` instead (exact inner products; faiss's
    order among equal scores is its own).
    """
    probe_rows, gallery_rows = as_embeddings(probes, "probes"), as_embeddings(gallery, "gallery")
    _check_dims(probe_rows, gallery_rows)
    _check_chunks(probe_chunk, gallery_chunk)
    if not isinstance(k, int) or not 1 <= k <= gallery_rows.shape[0]:
        raise ValueError(f"k {k!r} is not valid; expected an int in [1, {gallery_rows.shape[0]}] (the gallery size)")
    if backend == "faiss":
        return _faiss_top_k(probe_rows, gallery_rows, k, gallery_chunk)
    if backend != "torch":
        raise ValueError(f"backend {backend!r} is not valid; expected 'torch' or 'faiss'")
    device = torch.device(device) if device is not None else None
    chunks = list(normalised(probe_rows, "probes", device).split(probe_chunk))
    best = [(c.new_empty(len(c), 0), c.new_empty(len(c), 0, dtype=torch.int64)) for c in chunks]
    flags = _buffer(chunks, min(gallery_chunk, gallery_rows.shape[0]), torch.bool)
    for g0, _, number, scores in _blocks(chunks, gallery_rows, gallery_chunk, device):
        values, columns = _block_top_k(scores, min(k, scores.shape[1]), _view(flags, *scores.shape))
        merged_values = torch.cat([best[number][0], values], dim=1)
        merged_indices = torch.cat([best[number][1], columns + g0], dim=1)
        best[number] = _ranked(merged_values, merged_indices, k)
    return (
        torch.cat([values for values, _ in best]).cpu().numpy(),
        torch.cat([indices for _, indices in best]).cpu().numpy(),
    )


def _block_top_k(scores: Tensor, k: int, flags: Tensor) -> tuple[Tensor, Tensor]:
    """Top k of each row with ties at the k-th value resolved to the lowest columns (``flags``: scratch)."""
    values, columns = scores.topk(k, dim=1)
    kth = values[:, -1:]
    ambiguous = torch.eq(scores, kth, out=flags).sum(1) > (values == kth).sum(1)
    if ambiguous.any():
        rows = ambiguous.nonzero().squeeze(1)
        sub, sub_kth = scores[rows], kth[rows]
        above, tied = sub > sub_kth, sub == sub_kth
        keep = above | (tied & (tied.cumsum(1) <= k - above.sum(1, keepdim=True)))
        kept = keep.nonzero()[:, 1].view(len(rows), k)
        columns[rows], values[rows] = kept, sub.gather(1, kept)
    return values, columns


def _ranked(values: Tensor, indices: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The first k of each row ordered by value descending, then index ascending."""
    by_index = indices.argsort(dim=1)
    values, indices = values.gather(1, by_index), indices.gather(1, by_index)
    by_value = values.argsort(dim=1, descending=True, stable=True)[:, :k]
    return values.gather(1, by_value), indices.gather(1, by_value)


def _faiss_top_k(probes: Tensor, gallery: Tensor, k: int, gallery_chunk: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        import faiss
    except ImportError as error:
        raise ImportError(
            "backend='faiss' needs the faiss package; install it with `pip install faiss-cpu` "
            "(or `conda install -c pytorch faiss-gpu`), or use backend='torch'"
        ) from error
    index = faiss.IndexFlatIP(gallery.shape[1])
    for start in range(0, gallery.shape[0], gallery_chunk):
        index.add(np.ascontiguousarray(normalised(gallery[start : start + gallery_chunk], "gallery").numpy()))
    scores, indices = index.search(np.ascontiguousarray(normalised(probes, "probes").numpy()), k)
    return scores.astype(np.float32), indices.astype(np.int64)


def mate_table(probe_labels: np.ndarray, gallery_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Q,) indices of the probes with a mate, (Q,) their mate counts, (Q, M) mate gallery indices.

    Row q lists the gallery indices of probe q's mates in ascending order, padded with -1.
    """
    labelled = np.flatnonzero(gallery_labels >= 0)
    grouped = labelled[np.argsort(gallery_labels[labelled], kind="stable")]
    identities, starts, sizes = np.unique(gallery_labels[grouped], return_index=True, return_counts=True)
    if not len(identities):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 0), np.int64)
    position = np.minimum(np.searchsorted(identities, probe_labels), len(identities) - 1)
    mated = np.flatnonzero((probe_labels >= 0) & (identities[position] == probe_labels))
    counts, starts = sizes[position[mated]], starts[position[mated]]
    columns = np.arange(counts.max() if len(mated) else 0)
    valid = columns < counts[:, None]
    mates = np.where(valid, grouped[np.where(valid, starts[:, None] + columns, 0)], -1)
    return mated, counts.astype(np.int64), mates


def mate_ranks(
    probes: np.ndarray | Tensor,
    gallery: np.ndarray | Tensor,
    probe_labels: np.ndarray | Sequence[int],
    gallery_labels: np.ndarray | Sequence[int],
    *,
    probe_chunk: int = PROBE_CHUNK,
    gallery_chunk: int = GALLERY_CHUNK,
    device: torch.device | str | None = None,
) -> MateRanks:
    """Exact rank (module's ranking rule) and score of every mate of every probe, without sorting.

    A mate of probe p is a gallery item with the same non-negative label. Each mate's score is
    computed once; then, block by block, the gallery items that beat it (higher score, or equal
    score and lower index) are counted; a mate is compared only with the rows of a block whose
    maximum beats it. Mates are compared with each other through their single computed scores,
    so a mate never beats itself. Cost: one probes x gallery matrix product plus a few passes
    over each block; memory: two (probe_chunk x gallery_chunk) buffers.
    """
    probe_rows, gallery_rows = as_embeddings(probes, "probes"), as_embeddings(gallery, "gallery")
    _check_dims(probe_rows, gallery_rows)
    _check_chunks(probe_chunk, gallery_chunk)
    probe_labels = as_labels(probe_labels, probe_rows.shape[0], "probe_labels")
    gallery_labels = as_labels(gallery_labels, gallery_rows.shape[0], "gallery_labels")
    mated, counts, mates = mate_table(probe_labels, gallery_labels)
    if not len(mated):
        raise ValueError("no probe has a mate in the gallery (no shared non-negative label); expected at least one")
    device = torch.device(device) if device is not None else None
    order = np.argsort(counts, kind="stable")  # chunks of similar mate counts: narrow tables
    chunks = [
        _MateChunk.build(order[start : start + probe_chunk], mated, counts, mates, probe_rows, gallery_rows, device)
        for start in range(0, len(order), probe_chunk)
    ]
    probe_chunks = [chunk.probes for chunk in chunks]
    block_width = min(gallery_chunk, gallery_rows.shape[0])
    scratch = (_buffer(probe_chunks, block_width, torch.float32), _buffer(probe_chunks, block_width, torch.bool))
    for g0, g1, number, scores in _blocks(probe_chunks, gallery_rows, gallery_chunk, device):
        chunks[number].count(scores, g0, g1, scratch)
    shape = mates.shape
    ranks, mate_scores, indices = np.zeros(shape, np.int64), np.full(shape, -np.inf, np.float32), np.full(shape, -1, np.int64)
    for chunk in chunks:
        width = chunk.indices.shape[1]
        ranks[chunk.rows, :width], mate_scores[chunk.rows, :width], indices[chunk.rows, :width] = chunk.result()
    return MateRanks(mated, counts, ranks, mate_scores, indices)


class _MateChunk:
    """Per probe chunk: mates sorted by rank, their scores, and running counts of items beating them."""

    def __init__(self, rows: np.ndarray, probes: Tensor, scores: Tensor, indices: Tensor, valid: Tensor) -> None:
        self.rows, self.probes, self.scores, self.indices, self.valid = rows, probes, scores, indices, valid
        inf = torch.full_like(scores, float("inf"))
        # g beats mate m iff s_g > s_m, or s_g >= s_m (i.e. s_g > nextafter(s_m, -inf)) when g < index(m)
        self.threshold_after = torch.where(valid, scores, inf)
        self.threshold_before = torch.where(valid, torch.nextafter(scores, -inf), inf)
        self.beaten = torch.zeros(scores.shape, dtype=torch.int64, device=scores.device)

    @classmethod
    def build(
        cls,
        rows: np.ndarray,
        mated: np.ndarray,
        counts: np.ndarray,
        mates: np.ndarray,
        probes: Tensor,
        gallery: Tensor,
        device: torch.device | None,
    ) -> _MateChunk:
        """The chunk of mated probes ``mated[rows]`` with mate table ``mates[rows]`` (see :func:`mate_table`)."""
        width = int(counts[rows].max())
        indices = torch.as_tensor(mates[rows, :width], device=device)
        valid = indices >= 0
        probe_block = normalised(probes[torch.as_tensor(mated[rows])], "probes", device)
        mate_rows = normalised(gallery[indices.clamp(min=0).cpu().reshape(-1)], "gallery", device)
        scores = torch.einsum("pd,pmd->pm", probe_block, mate_rows.view(len(rows), width, -1))
        scores = torch.where(valid, scores, -torch.inf)
        # rank order among mates: score descending, then gallery index ascending (indices are ascending)
        order = scores.argsort(dim=1, descending=True, stable=True)
        return cls(rows, probe_block, scores.gather(1, order), indices.gather(1, order), valid.gather(1, order))

    def count(self, scores: Tensor, g0: int, g1: int, scratch: tuple[Tensor, Tensor]) -> None:
        """Add the non-mate items of gallery[g0:g1] (``scores``: this chunk x block) that beat each mate.

        ``scratch``: flat float32 and bool buffers of at least ``scores.numel()`` elements. Only the
        rows whose block maximum beats a mate are compared with it: most mates rank high, and a
        padding column (threshold +inf) costs nothing.
        """
        inside = self.valid & (self.indices >= g0) & (self.indices < g1)
        rows, columns = inside.nonzero(as_tuple=True)
        scores[rows, self.indices[rows, columns] - g0] = -torch.inf  # mates are ranked among themselves
        block_max = scores.amax(dim=1, keepdim=True)
        threshold = torch.where(self.indices >= g1, self.threshold_before, self.threshold_after)
        active_rows, active_columns = (block_max > threshold).nonzero(as_tuple=True)
        for start in range(0, len(active_rows), len(scores)):  # pieces that fit the scratch buffers
            piece_rows, piece_columns = active_rows[start : start + len(scores)], active_columns[start : start + len(scores)]
            candidates = _view(scratch[0], len(piece_rows), scores.shape[1])
            torch.index_select(scores, 0, piece_rows, out=candidates)
            limits = threshold[piece_rows, piece_columns][:, None]
            above = torch.gt(candidates, limits, out=_view(scratch[1], *candidates.shape)).sum(1)
            self.beaten.index_put_((piece_rows, piece_columns), above, accumulate=True)
        if len(rows):  # items before a mate inside this block that tie with it also beat it
            positions = torch.arange(scores.shape[1], device=scores.device)
            earlier = positions < (self.indices[rows, columns] - g0)[:, None]
            ties = (scores[rows] == self.scores[rows, columns, None]) & earlier
            self.beaten.index_put_((rows, columns), ties.sum(1), accumulate=True)

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        above = torch.arange(self.scores.shape[1], device=self.scores.device)  # mates ranked above each mate
        ranks = torch.where(self.valid, 1 + above + self.beaten, 0)
        indices = torch.where(self.valid, self.indices, -1)
        return ranks.cpu().numpy(), self.scores.cpu().numpy(), indices.cpu().numpy()
