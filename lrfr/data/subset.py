"""``per_identity``: the first few images of every identity of a labelled face dataset.

A short fine-tuning (the book's quick mode) can cover every identity of a training set in a fraction
of an epoch of the full set: ``DataSpec("per_identity", {"base": "folder", "images": 5, "root": ...})``
keeps, for each label, its first ``images`` records in the dataset's order, so the labels (and the class
prototypes of a head trained on the full set) stay the same.
"""

from __future__ import annotations

from collections import Counter

from lrfr.data import DATASETS
from lrfr.data.base import FaceDataset


@DATASETS.register("per_identity")
def load_per_identity(base: str, images: int, **kwargs: object) -> FaceDataset:
    """The first ``images`` records of each identity of the FaceDataset that factory ``base`` builds
    from ``kwargs`` (unlabelled records, label -1, are dropped)."""
    if not isinstance(images, int) or isinstance(images, bool) or images < 1:
        raise ValueError(f"per_identity: images {images!r} is not valid; expected an int >= 1")
    built = DATASETS.build(base, **kwargs)
    if not isinstance(built, FaceDataset):
        raise ValueError(f"per_identity: dataset factory {base!r} built a {type(built).__name__}; expected a FaceDataset")
    seen: Counter[int] = Counter()
    kept = []
    for record in built.records:
        if record.label >= 0 and seen[record.label] < images:
            seen[record.label] += 1
            kept.append(record)
    return FaceDataset(kept, built.input_size, built.transform, built.corrupt)
