"""Verification accuracy during training (``TrainConfig.validation``).

Each set is an LFW-layout folder (LFW, XQLFW: :func:`~lrfr.data.loaders.load_pairs`) or an insightface
``.bin`` (:func:`~lrfr.data.loaders.load_verification_bin`), loaded once before training. Its images are
streamed through :func:`~lrfr.protocols.embeddings.extract_embeddings` with the objective's recognizer
(backbone, or SR then backbone) in eval mode, and scored with the LFW protocol
(:func:`~lrfr.protocols.verification.kfold_accuracy`: accuracy on each fold at the threshold best on the
other folds; Huang et al. 2007, insightface's 10 contiguous folds for a ``.bin``). Every random-number
generator is restored afterwards, so a run validated every epoch trains exactly as one that is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from torch import nn
from torch.utils.data import Dataset

from lrfr.data.base import FaceDataset, FaceRecord
from lrfr.data.loaders import BinImages, VerificationBin, load_pairs, load_verification_bin
from lrfr.models.embedder import as_embedder
from lrfr.protocols.embeddings import extract_embeddings
from lrfr.protocols.verification import kfold_accuracy, pair_scores
from lrfr.training.config import ValidationConfig
from lrfr.training.rng import capture_rng_state, restore_rng_state


@dataclass(frozen=True)
class VerificationSet:
    """Images to embed and the pairs over them: ``pairs`` (n, 2) index ``source``, the face records of an
    LFW-layout folder or the images of a ``.bin``."""

    name: str
    source: tuple[FaceRecord, ...] | VerificationBin
    pairs: np.ndarray
    is_same: np.ndarray
    folds: np.ndarray

    def images(self, input_size: int | tuple[int, int]) -> Dataset:
        if isinstance(self.source, VerificationBin):
            return BinImages(self.source, input_size)
        return FaceDataset(self.source, input_size)


def load_verification_sets(config: ValidationConfig | None) -> list[VerificationSet]:
    """Every set of ``config`` read (and checked) now; [] without validation."""
    sets = []
    for spec in config.sets if config is not None else []:
        path = Path(spec.path)
        if path.suffix == ".bin":
            data = load_verification_bin(path)
            sets.append(VerificationSet(spec.name, data, data.pairs, data.is_same, data.folds))
        else:
            pairs = load_pairs(path, spec.name, spec.pairs_file)
            sets.append(VerificationSet(spec.name, pairs.records, pairs.pairs, pairs.is_same, pairs.folds))
    return sets


def validate(
    recognizer: nn.Module, sets: Sequence[VerificationSet], batch_size: int = 256, flip_fusion: bool = False
) -> dict[str, float]:
    """``{"val/<set>/accuracy": mean, "val/<set>/accuracy_std": std over folds}`` of ``recognizer``."""
    embedder = as_embedder(recognizer)
    size = embedder.spec.size
    if size is None:
        raise ValueError("the recognizer has no input size; validation needs one to read the pair images")
    state = capture_rng_state()  # a DataLoader draws its base seed from torch's global generator
    try:
        scores = {}
        for data in sets:
            embedded = extract_embeddings(
                embedder, data.images(size), batch_size=batch_size, flip_fusion=flip_fusion, progress=False
            ).embeddings
            result = kfold_accuracy(pair_scores(embedded[data.pairs[:, 0]], embedded[data.pairs[:, 1]]),
                                    data.is_same, data.folds)
            scores.update({f"val/{data.name}/accuracy": result.mean, f"val/{data.name}/accuracy_std": result.std})
        return scores
    finally:
        restore_rng_state(state)
