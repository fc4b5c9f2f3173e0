"""Datasets: every loader is registered in :data:`DATASETS` so that a config can name it."""

from lrfr.registry import Registry

DATASETS: Registry = Registry("dataset")

__all__ = ["DATASETS"]
