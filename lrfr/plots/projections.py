"""2-D / 3-D projections of embeddings: PCA and t-SNE (scikit-learn), UMAP (umap-learn).

Embeddings are L2-normalised first (face embeddings are compared by cosine), and every method is
seeded so that a projection is repeatable.

Stored projections: a chapter that projects an embedding set keeps the points in its run folder as
``projections/<set>.<method>.<dims>d.parquet`` (columns x, y and, in 3-D, z; row i is row i of
``embeddings/<set>.parquet``) with :func:`save_projection`; the dashboard reads them with
:func:`load_projection` instead of recomputing.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lrfr.io import atomic_write
from lrfr.runs import RunFolder, RunFolderError

PROJECTIONS = ("pca", "tsne", "umap")
PROJECTIONS_DIR = "projections"
AXES = ("x", "y", "z")


def project(embeddings: np.ndarray, method: str = "pca", dims: int = 2, seed: int = 0) -> np.ndarray:
    """Project (N, D) embeddings to (N, dims) with ``method`` in :data:`PROJECTIONS`."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or len(embeddings) < 3:
        raise ValueError(f"expected embeddings of shape (N >= 3, D), got {embeddings.shape}")
    _check_method(method, dims)
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=dims, random_state=seed).fit_transform(unit)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, (len(unit) - 1) / 3)
        return TSNE(n_components=dims, metric="cosine", init="pca", perplexity=perplexity,
                    random_state=seed).fit_transform(unit)
    import umap

    neighbours = min(15, len(unit) - 1)
    with warnings.catch_warnings():  # a seed makes UMAP single-threaded, which it warns about: intended
        warnings.filterwarnings("ignore", message="n_jobs value .* overridden", category=UserWarning)
        return umap.UMAP(n_components=dims, metric="cosine", n_neighbors=neighbours,
                         random_state=seed).fit_transform(unit)


def _check_method(method: str, dims: int) -> None:
    if method not in PROJECTIONS:
        raise ValueError(f"unknown projection {method!r}; expected one of {PROJECTIONS}")
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, got {dims}")


def projection_path(run: RunFolder, embedding_set: str, method: str, dims: int) -> Path:
    """``<run>/projections/<set>.<method>.<dims>d.parquet`` (not created)."""
    _check_method(method, dims)
    return run.path / PROJECTIONS_DIR / f"{embedding_set}.{method}.{dims}d.parquet"


def save_projection(run: RunFolder, embedding_set: str, method: str, dims: int, points: np.ndarray) -> Path:
    """Store (N, dims) ``points`` of ``embedding_set`` projected with ``method``; returns the file."""
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != dims or not np.isfinite(points).all():
        raise ValueError(f"points has shape {points.shape}; expected finite ({dims}-column) rows, one per embedding")
    path = run.artifact_path(projection_path(run, embedding_set, method, dims).relative_to(run.path))
    table = pa.table({axis: points[:, column].astype(np.float32) for column, axis in enumerate(AXES[:dims])})
    with atomic_write(path) as temporary:
        pq.write_table(table, temporary)
    return path


def load_projection(run: RunFolder, embedding_set: str, method: str, dims: int) -> np.ndarray | None:
    """The stored (N, dims) float32 points, or None when this projection was not stored."""
    path = projection_path(run, embedding_set, method, dims)
    if not path.is_file():
        return None
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise RunFolderError(f"{path} is not a readable parquet file ({error}); expected columns {AXES[:dims]}") from error
    missing = [axis for axis in AXES[:dims] if axis not in table.column_names]
    if missing:
        raise RunFolderError(f"{path} has columns {table.column_names}; expected {list(AXES[:dims])} (missing {missing})")
    return np.stack([table.column(axis).to_numpy().astype(np.float32) for axis in AXES[:dims]], axis=1)


def stored_methods(run_path: Path | None, dims: int = 2) -> list[str]:
    """The methods (in PROJECTIONS order) with a stored ``dims``-D projection of any set in the run
    folder ``run_path`` (none for None), e.g. to open a chapter's run on the projection it stored."""
    folder = Path(run_path) / PROJECTIONS_DIR if run_path is not None else None
    return [m for m in PROJECTIONS if folder is not None and any(folder.glob(f"*.{m}.{dims}d.parquet"))]
