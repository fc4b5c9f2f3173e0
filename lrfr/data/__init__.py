"""Datasets: every loader is registered in :data:`DATASETS` so that a config can name it."""

from lrfr.registry import Registry

DATASETS: Registry = Registry("dataset")

# Imported after DATASETS exists: the loader modules register their factories in it.
from lrfr.data import loaders  # noqa: E402
from lrfr.data import lr_pairs  # noqa: E402,F401  (registers "lr_pairs")
from lrfr.data import subset  # noqa: E402,F401  (registers "per_identity")
from lrfr.data import feature_pairs  # noqa: E402,F401  (registers "feature_pairs")
from lrfr.data.base import CorruptImageError, FaceDataset, FaceRecord, LayoutError  # noqa: E402
from lrfr.data.loaders import *  # noqa: E402,F401,F403

__all__ = ["DATASETS", "CorruptImageError", "FaceDataset", "FaceRecord", "LayoutError", *loaders.__all__]
