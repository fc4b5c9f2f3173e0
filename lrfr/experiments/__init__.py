"""Figure-producing experiments of the book's chapters (each module is one experiment)."""

from lrfr.experiments.toy_embedding import ToyEmbedding, toy_embedding_experiment

__all__ = ["ToyEmbedding", "toy_embedding_experiment"]
