"""Evaluation protocols: embedding extraction and the benchmarks built on it."""

from lrfr.protocols.embeddings import ExtractedEmbeddings, extract_embeddings

__all__ = ["ExtractedEmbeddings", "extract_embeddings"]
