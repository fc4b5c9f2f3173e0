"""Loaders for the real datasets' own layouts (and the synthetic copies written in them).

Importing this package registers the training-set factories in :data:`lrfr.data.DATASETS`:
``folder``, ``ui``, ``tinyface_train``, ``survface_train``, ``scface``, ``recordio``.
"""

from lrfr.data.loaders.folder import load_folder, load_unlabelled
from lrfr.data.loaders.pairs import PairSet, load_pairs, parse_pairs_file
from lrfr.data.loaders.recordio import IRHeader, RecordIODataset, RecordIOReader, unpack
from lrfr.data.loaders.scface import SCFaceSet, load_scface, scface_dataset
from lrfr.data.loaders.survface import (
    SurvFaceIdentification,
    SurvFaceVerification,
    load_survface_identification,
    load_survface_train,
    load_survface_verification,
)
from lrfr.data.loaders.tinyface import TinyFaceTest, load_tinyface_test, load_tinyface_train
from lrfr.data.loaders.verification_bin import (
    BinImages,
    RestrictedUnpickler,
    VerificationBin,
    VerificationBinError,
    load_verification_bin,
)

__all__ = [
    "BinImages",
    "IRHeader",
    "PairSet",
    "RecordIODataset",
    "RecordIOReader",
    "RestrictedUnpickler",
    "SCFaceSet",
    "SurvFaceIdentification",
    "SurvFaceVerification",
    "TinyFaceTest",
    "VerificationBin",
    "VerificationBinError",
    "load_folder",
    "load_pairs",
    "load_scface",
    "load_survface_identification",
    "load_survface_train",
    "load_survface_verification",
    "load_tinyface_test",
    "load_tinyface_train",
    "load_unlabelled",
    "load_verification_bin",
    "parse_pairs_file",
    "scface_dataset",
    "unpack",
]
