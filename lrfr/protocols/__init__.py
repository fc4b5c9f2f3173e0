"""Evaluation protocols: embedding extraction and the benchmarks built on it."""

from lrfr.protocols.embeddings import ExtractedEmbeddings, extract_embeddings
from lrfr.protocols.erc import (
    ErrorVersusReject,
    cross_pair_counts,
    cross_resolution_pairs,
    erc_area,
    error_versus_reject,
    pair_quality,
    sample_pairs,
)
from lrfr.protocols.identification import IdentificationResult, average_precision, cmc, evaluate_identification
from lrfr.protocols.open_set import OpenSetResult, identity_templates, open_set_identification, tpir_at_fpir
from lrfr.protocols.quality import certainty_ratio, embedding_norm, ers_quality, ser_fiq, ui_center
from lrfr.protocols.search import MateRanks, mate_ranks, top_k
from lrfr.protocols.verification import (
    KFoldAccuracy,
    Roc,
    auc,
    eer,
    kfold_accuracy,
    mixed_folds,
    pair_scores,
    roc,
    tpr_at_far,
)

__all__ = [
    "ErrorVersusReject",
    "cross_pair_counts",
    "cross_resolution_pairs",
    "ExtractedEmbeddings",
    "IdentificationResult",
    "KFoldAccuracy",
    "MateRanks",
    "OpenSetResult",
    "Roc",
    "auc",
    "average_precision",
    "certainty_ratio",
    "cmc",
    "eer",
    "embedding_norm",
    "erc_area",
    "error_versus_reject",
    "ers_quality",
    "evaluate_identification",
    "extract_embeddings",
    "identity_templates",
    "kfold_accuracy",
    "mixed_folds",
    "mate_ranks",
    "open_set_identification",
    "pair_quality",
    "pair_scores",
    "roc",
    "sample_pairs",
    "ser_fiq",
    "top_k",
    "tpir_at_fpir",
    "tpr_at_far",
    "ui_center",
]
