"""Exact chunked search (lrfr.protocols.search) on hand-computed cases and against a full sort."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrfr.bench.search_eval import naive_mate_ranks
from lrfr.protocols.search import mate_ranks, top_k

# cosine similarities (rows: probes p0 = (1, 0), p1 = (0, 1), p2 = (1, 1) unmated):
#            g0=(1,0)  g1=(0,2)  g2=(3,4)  g3=(-1,0)  g4=(5,0)
# p0            1         0        0.6       -1          1
# p1            0         1        0.8        0          0
PROBES = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
GALLERY = np.array([[1, 0], [0, 2], [3, 4], [-1, 0], [5, 0]], dtype=np.float32)
PROBE_LABELS = np.array([7, 9, 5])
GALLERY_LABELS = np.array([7, 8, 7, -1, 9])
CHUNKS = [(1, 1), (1, 2), (2, 3), (3, 5), (256, 4096)]


@pytest.mark.parametrize("probe_chunk, gallery_chunk", CHUNKS)
def test_top_k_by_hand_with_ties_to_the_lower_index(probe_chunk, gallery_chunk):
    scores, indices = top_k(PROBES[:2], GALLERY, 5, probe_chunk=probe_chunk, gallery_chunk=gallery_chunk)
    # p0: g0 and g4 tie at 1 (g0 first), then g2 (0.6), g1 (0), g3 (-1)
    # p1: g1 (1), g2 (0.8), then g0, g3, g4 tie at 0 in index order
    assert indices.tolist() == [[0, 4, 2, 1, 3], [1, 2, 0, 3, 4]]
    np.testing.assert_allclose(scores, [[1, 1, 0.6, 0, -1], [1, 0.8, 0, 0, 0]], atol=1e-6)
    assert scores.dtype == np.float32 and indices.dtype == np.int64


@pytest.mark.parametrize("probe_chunk, gallery_chunk", CHUNKS)
def test_mate_ranks_by_hand(probe_chunk, gallery_chunk):
    found = mate_ranks(PROBES, GALLERY, PROBE_LABELS, GALLERY_LABELS, probe_chunk=probe_chunk, gallery_chunk=gallery_chunk)
    # p0 (label 7): mates g0 (rank 1) and g2 (rank 3, behind the tie g4);
    # p1 (label 9): mate g4 scores 0, tied with g0 and g3 which come first: rank 5. p2 has no mate.
    assert found.probe_indices.tolist() == [0, 1]
    assert found.counts.tolist() == [2, 1]
    assert found.ranks.tolist() == [[1, 3], [5, 0]]
    assert found.gallery_indices.tolist() == [[0, 2], [4, -1]]
    np.testing.assert_allclose(found.scores, [[1, 0.6], [0, -np.inf]], atol=1e-6)
    assert found.first_ranks.tolist() == [1, 5]


def _tie_heavy(seed: int) -> tuple[np.ndarray, ...]:
    """Entries +-0.5 in 4-d: unit vectors whose dot products are exact, so ties are exact."""
    rng = np.random.default_rng(seed)
    probes = (rng.integers(0, 2, (40, 4)) - 0.5).astype(np.float32)
    gallery = (rng.integers(0, 2, (123, 4)) - 0.5).astype(np.float32)
    return probes, gallery, rng.integers(0, 10, 40), rng.integers(-1, 10, 123)


def _random(seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    probes = rng.standard_normal((37, 16)).astype(np.float32)
    gallery = rng.standard_normal((157, 16)).astype(np.float32)
    return probes, gallery, rng.integers(0, 30, 37), rng.integers(-1, 30, 157)


@pytest.mark.parametrize("make", [_tie_heavy, _random])
@pytest.mark.parametrize("probe_chunk, gallery_chunk", [(3, 7), (16, 50), (64, 157), (7, 1000)])
def test_agrees_with_a_full_stable_sort(make, probe_chunk, gallery_chunk):
    probes, gallery, probe_labels, gallery_labels = make(0)
    unit_p = probes / np.linalg.norm(probes, axis=1, keepdims=True)
    unit_g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    order = np.argsort(-(unit_p @ unit_g.T), axis=1, kind="stable")
    _, indices = top_k(probes, gallery, 10, probe_chunk=probe_chunk, gallery_chunk=gallery_chunk)
    np.testing.assert_array_equal(indices, order[:, :10])
    found = mate_ranks(probes, gallery, probe_labels, gallery_labels, probe_chunk=probe_chunk, gallery_chunk=gallery_chunk)
    mated, counts, ranks = naive_mate_ranks(probes, gallery, probe_labels, gallery_labels)
    np.testing.assert_array_equal(found.probe_indices, mated)
    np.testing.assert_array_equal(found.counts, counts)
    np.testing.assert_array_equal(found.ranks, ranks)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    probes=st.integers(1, 12),
    gallery=st.integers(1, 40),
    probe_chunk=st.integers(1, 16),
    gallery_chunk=st.integers(1, 50),
)
def test_any_chunking_of_tie_heavy_data_matches_the_full_sort(seed, probes, gallery, probe_chunk, gallery_chunk):
    rng = np.random.default_rng(seed)
    probe_rows = (rng.integers(0, 2, (probes, 4)) - 0.5).astype(np.float32)
    gallery_rows = (rng.integers(0, 2, (gallery, 4)) - 0.5).astype(np.float32)
    probe_labels, gallery_labels = rng.integers(0, 4, probes), rng.integers(-1, 4, gallery)
    k = min(3, gallery)
    _, indices = top_k(probe_rows, gallery_rows, k, probe_chunk=probe_chunk, gallery_chunk=gallery_chunk)
    np.testing.assert_array_equal(indices, np.argsort(-(probe_rows @ gallery_rows.T), axis=1, kind="stable")[:, :k])
    mated, counts, ranks = naive_mate_ranks(probe_rows, gallery_rows, probe_labels, gallery_labels)
    if not len(mated):
        return
    found = mate_ranks(probe_rows, gallery_rows, probe_labels, gallery_labels, probe_chunk=probe_chunk, gallery_chunk=gallery_chunk)
    np.testing.assert_array_equal(found.probe_indices, mated)
    np.testing.assert_array_equal(found.ranks, ranks)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="dimension 2 and gallery 3"):
        top_k(PROBES, np.ones((4, 3), np.float32), 1)
    with pytest.raises(ValueError, match=r"k 6 is not valid; expected an int in \[1, 5\]"):
        top_k(PROBES, GALLERY, 6)
    with pytest.raises(ValueError, match="no probe has a mate"):
        mate_ranks(PROBES, GALLERY, [1, 2, 3], GALLERY_LABELS)
    with pytest.raises(ValueError, match=r"gallery_labels has shape \(4,\)"):
        mate_ranks(PROBES, GALLERY, PROBE_LABELS, [1, 2, 3, 4])
    with pytest.raises(ValueError, match="zero norm"):
        top_k(PROBES, np.zeros((2, 2), np.float32), 1)
    with pytest.raises(ValueError, match="gallery_chunk 0 is not valid"):
        top_k(PROBES, GALLERY, 1, gallery_chunk=0)
    with pytest.raises(ValueError, match="backend 'annoy' is not valid"):
        top_k(PROBES, GALLERY, 1, backend="annoy")


def test_faiss_backend_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # as if the [faiss] extra were not installed
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        top_k(PROBES, GALLERY, 1, backend="faiss")


@pytest.mark.parametrize("gallery_chunk", [157, 20])
def test_faiss_backend_agrees_with_the_exact_search(gallery_chunk):
    """faiss-cpu's IndexFlatIP (the [faiss] extra, installed by `make test`) against the torch search:
    the same 10 best gallery items in the same order and the same scores on tie-free random data, the
    gallery added in one or several chunks; and the hand-computed best matches above."""
    probes, gallery, _, _ = _random(1)
    scores, indices = top_k(probes, gallery, 10, backend="faiss", gallery_chunk=gallery_chunk)
    exact_scores, exact_indices = top_k(probes, gallery, 10)
    np.testing.assert_array_equal(indices, exact_indices)
    np.testing.assert_allclose(scores, exact_scores, atol=1e-5)
    assert scores.dtype == np.float32 and indices.dtype == np.int64
    scores, indices = top_k(PROBES[1:2], GALLERY, 2, backend="faiss", gallery_chunk=gallery_chunk)
    assert indices.tolist() == [[1, 2]]  # p1: g1 (1), g2 (0.8)
    np.testing.assert_allclose(scores, [[1.0, 0.8]], atol=1e-6)
