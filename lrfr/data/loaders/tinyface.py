"""TinyFace (Cheng, Zhu & Gong, ACCV 2018): native low-resolution faces, 1:N identification with distractors.

Layout of the release (``root`` is its ``tinyface`` folder)::

    Training_Set/<id>/<id>_<n>.jpg             2,570 identities, folder per identity
    Testing_Set/Probe/<id>_<n>.jpg             half of each test identity's images
    Testing_Set/Gallery_Match/<id>_<n>.jpg     the other half
    Testing_Set/Gallery_Distractor/<n>.jpg     153,428 faces without identity
    Testing_Set/probe_img_ID_pairs.mat         probe_set (cell of file names), probe_ids (ids)
    Testing_Set/gallery_match_img_ID_pairs.mat gallery_set, gallery_ids
    Testing_Set/gallery_distractor_img_names.mat  distractor_set (optional; our writer adds it)

The .mat variables are found by role (names / ids), so other variable names read as well; without
the .mat files the identity is the file-name prefix before the first underscore.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lrfr.data import DATASETS
from lrfr.data.base import FaceDataset, FaceRecord, check_layout
from lrfr.data.loaders.common import check_images, label_entries, listed_entries
from lrfr.data.loaders.folder import load_training_split

DATASET = "TinyFace"
TRAIN = "Training_Set"
TEST = "Testing_Set"
PROBE, GALLERY, DISTRACTOR = "Probe", "Gallery_Match", "Gallery_Distractor"
PROBE_MAT = "probe_img_ID_pairs.mat"
GALLERY_MAT = "gallery_match_img_ID_pairs.mat"
DISTRACTOR_MAT = "gallery_distractor_img_names.mat"


@dataclass(frozen=True)
class TinyFaceTest:
    """The 1:N test: probes, their gallery matches (same labels) and unlabelled gallery distractors."""

    probe: tuple[FaceRecord, ...]
    gallery: tuple[FaceRecord, ...]
    distractors: tuple[FaceRecord, ...]
    corrupt: tuple[Path, ...] = ()


@DATASETS.register("tinyface_train")
def load_tinyface_train(
    root: str | Path,
    input_size: int | tuple[int, int] = 112,
    skip_corrupt: bool = False,
    verify: bool = True,
) -> FaceDataset:
    """The training set ``Training_Set/<id>/`` at native resolution (resizing is the dataset's job)."""
    return load_training_split(DATASET, root, TRAIN, input_size, skip_corrupt, verify)


def load_tinyface_test(
    root: str | Path, distractors: bool = True, skip_corrupt: bool = False, verify: bool = True
) -> TinyFaceTest:
    """Probe, gallery match and (unless ``distractors=False``) distractor records of ``Testing_Set``."""
    root = Path(root)
    test = root / TEST
    check_layout(DATASET, root, [f"{TEST}/{PROBE}", f"{TEST}/{GALLERY}"] + ([f"{TEST}/{DISTRACTOR}"] if distractors else []))
    splits = {
        "probe": listed_entries(test / PROBE, test / PROBE_MAT, DATASET),
        "gallery": listed_entries(test / GALLERY, test / GALLERY_MAT, DATASET),
        "distractor": listed_entries(test / DISTRACTOR, test / DISTRACTOR_MAT, DATASET, labelled=False) if distractors else [],
    }
    records, corrupt = check_images(label_entries(splits), root, DATASET, skip_corrupt, verify)
    return TinyFaceTest(tuple(records["probe"]), tuple(records["gallery"]), tuple(records["distractor"]), corrupt)
