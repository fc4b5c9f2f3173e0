"""2-D / 3-D projections of embeddings: PCA and t-SNE (scikit-learn), UMAP (umap-learn).

Embeddings are L2-normalised first (face embeddings are compared by cosine), and every method is
seeded so that a projection is repeatable.
"""

from __future__ import annotations

import numpy as np

PROJECTIONS = ("pca", "tsne", "umap")


def project(embeddings: np.ndarray, method: str = "pca", dims: int = 2, seed: int = 0) -> np.ndarray:
    """Project (N, D) embeddings to (N, dims) with ``method`` in :data:`PROJECTIONS`."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or len(embeddings) < 3:
        raise ValueError(f"expected embeddings of shape (N >= 3, D), got {embeddings.shape}")
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, got {dims}")
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=dims, random_state=seed).fit_transform(unit)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, (len(unit) - 1) / 3)
        return TSNE(n_components=dims, metric="cosine", init="pca", perplexity=perplexity,
                    random_state=seed).fit_transform(unit)
    if method == "umap":
        import umap

        neighbours = min(15, len(unit) - 1)
        return umap.UMAP(n_components=dims, metric="cosine", n_neighbors=neighbours,
                         random_state=seed).fit_transform(unit)
    raise ValueError(f"unknown projection {method!r}; expected one of {PROJECTIONS}")
