"""QMUL-SurvFace (Cheng et al., 2018): native surveillance faces; verification and open-set identification.

Layout of the release (``root`` is its ``QMUL-SurvFace`` folder)::

    training_set/<id>/<image>.jpg
    Face_Verification_Test_Set/verification_images/<image>.jpg
    Face_Verification_Test_Set/positive_pairs_names.mat     n x 2 cell of image names (genuine pairs)
    Face_Verification_Test_Set/negative_pairs_names.mat     n x 2 cell (impostor pairs)
    Face_Identification_Test_Set/{gallery,mated_probe,unmated_probe}/<image>.jpg
    Face_Identification_Test_Set/gallery_img_ID_pairs.mat       gallery_set (names), gallery_ids
    Face_Identification_Test_Set/mated_probe_img_ID_pairs.mat   mated_probe_set, mated_probe_ids
    Face_Identification_Test_Set/unmated_probe_img_names.mat    unmated_probe_set (optional)

.mat variables are found by role (names / ids); without an id file the identity is the file-name
prefix before the first underscore. Unmated probes have no identity (label -1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lrfr.data import DATASETS
from lrfr.data.base import FaceDataset, FaceRecord, check_layout
from lrfr.data.loaders.common import (
    Entry,
    check_images,
    contained,
    label_entries,
    listed_entries,
    read_mat_table,
    require_files,
)
from lrfr.data.loaders.folder import load_training_split

DATASET = "QMUL-SurvFace"
TRAIN = "training_set"
VERIFICATION = "Face_Verification_Test_Set"
VERIFICATION_IMAGES = "verification_images"
POSITIVE_MAT, NEGATIVE_MAT = "positive_pairs_names.mat", "negative_pairs_names.mat"
IDENTIFICATION = "Face_Identification_Test_Set"
GALLERY, MATED, UNMATED = "gallery", "mated_probe", "unmated_probe"
GALLERY_MAT = "gallery_img_ID_pairs.mat"
MATED_MAT = "mated_probe_img_ID_pairs.mat"
UNMATED_MAT = "unmated_probe_img_names.mat"


@dataclass(frozen=True)
class SurvFaceVerification:
    """1:1 pairs: ``pairs`` (n, 2) index ``records``; ``is_same`` marks the genuine pairs (listed first)."""

    records: tuple[FaceRecord, ...]
    pairs: np.ndarray
    is_same: np.ndarray
    corrupt: tuple[Path, ...] = ()


@dataclass(frozen=True)
class SurvFaceIdentification:
    """Open-set 1:N: gallery, mated probes (labels shared with the gallery) and unmated probes (label -1)."""

    gallery: tuple[FaceRecord, ...]
    mated_probe: tuple[FaceRecord, ...]
    unmated_probe: tuple[FaceRecord, ...]
    corrupt: tuple[Path, ...] = ()


@DATASETS.register("survface_train")
def load_survface_train(
    root: str | Path,
    input_size: int | tuple[int, int] = 112,
    skip_corrupt: bool = False,
    verify: bool = True,
) -> FaceDataset:
    """The training set ``training_set/<id>/`` at native resolution."""
    return load_training_split(DATASET, root, TRAIN, input_size, skip_corrupt, verify)


def load_survface_verification(root: str | Path, skip_corrupt: bool = False, verify: bool = True) -> SurvFaceVerification:
    """Genuine then impostor pairs of the verification test; pairs with a skipped corrupt image are dropped."""
    root = Path(root)
    base = root / VERIFICATION
    check_layout(DATASET, root, [f"{VERIFICATION}/{name}" for name in (VERIFICATION_IMAGES, POSITIVE_MAT, NEGATIVE_MAT)])
    positive, _ = read_mat_table(base / POSITIVE_MAT, DATASET, columns=2)
    negative, _ = read_mat_table(base / NEGATIVE_MAT, DATASET, columns=2)
    names = list(dict.fromkeys(name for pair in positive + negative for name in pair))
    paths = [contained(base / VERIFICATION_IMAGES, name, DATASET, f"{POSITIVE_MAT} / {NEGATIVE_MAT}") for name in names]
    require_files(paths, DATASET, f"named by {POSITIVE_MAT} / {NEGATIVE_MAT}")
    listed = {"verification": [FaceRecord(p, -1, None, "verification") for p in paths]}
    records, corrupt = check_images(listed, root, DATASET, skip_corrupt, verify)
    index = {r.path.name: i for i, r in enumerate(records["verification"])}
    rows = [(pair, same) for pairs, same in ((positive, True), (negative, False)) for pair in pairs]
    kept = [(pair, same) for pair, same in rows if pair[0] in index and pair[1] in index]
    pairs = np.array([[index[a], index[b]] for (a, b), _ in kept], dtype=np.int64).reshape(-1, 2)
    is_same = np.array([same for _, same in kept], dtype=bool)
    return SurvFaceVerification(tuple(records["verification"]), pairs, is_same, corrupt)


def load_survface_identification(
    root: str | Path, skip_corrupt: bool = False, verify: bool = True
) -> SurvFaceIdentification:
    """Gallery, mated and unmated probes of the open-set identification test."""
    root = Path(root)
    base = root / IDENTIFICATION
    check_layout(DATASET, root, [f"{IDENTIFICATION}/{name}" for name in (GALLERY, MATED, UNMATED)])
    splits: dict[str, list[Entry]] = {
        "gallery": listed_entries(base / GALLERY, base / GALLERY_MAT, DATASET),
        "mated_probe": listed_entries(base / MATED, base / MATED_MAT, DATASET),
        "unmated_probe": listed_entries(base / UNMATED, base / UNMATED_MAT, DATASET, labelled=False),
    }
    records, corrupt = check_images(label_entries(splits), root, DATASET, skip_corrupt, verify)
    return SurvFaceIdentification(*(tuple(records[split]) for split in splits), corrupt)
