"""Generic image folders: one sub-folder per identity (CASIA-WebFace/VGGFace2 as extracted), or a flat
unlabelled folder (the UI set)."""

from __future__ import annotations

from pathlib import Path

from lrfr.data import DATASETS
from lrfr.data.base import FaceDataset, LayoutError, check_layout, scan_images
from lrfr.data.loaders.common import Entry, check_images, folder_entries, label_entries, require_folder



def dataset_from_entries(
    entries: list[Entry],
    root: Path,
    dataset: str,
    split: str,
    input_size: int | tuple[int, int],
    skip_corrupt: bool,
    verify: bool,
) -> FaceDataset:
    """Label, check and wrap one split's entries in a :class:`FaceDataset` (corrupt files on ``.corrupt``)."""
    records, corrupt = check_images(label_entries({split: entries}), root, dataset, skip_corrupt, verify)
    return FaceDataset(records[split], input_size, corrupt)


def load_training_split(
    dataset: str,
    root: str | Path,
    subfolder: str,
    input_size: int | tuple[int, int],
    skip_corrupt: bool,
    verify: bool,
) -> FaceDataset:
    """A benchmark's training split ``<root>/<subfolder>/<identity>/<image>``, after the layout check."""
    root = Path(root)
    check_layout(dataset, root, [subfolder])
    entries = folder_entries(root / subfolder, dataset)
    return dataset_from_entries(entries, root, dataset, "train", input_size, skip_corrupt, verify)


@DATASETS.register("folder")
def load_folder(
    root: str | Path,
    split: str = "train",
    input_size: int | tuple[int, int] = 112,
    skip_corrupt: bool = False,
    verify: bool = True,
    dataset: str = "folder",
) -> FaceDataset:
    """A folder-per-identity set ``<root>/<identity>/<image>``; labels number the identities in natural order."""
    root = require_folder(dataset, root, "one folder of images per identity")
    entries = folder_entries(root, dataset)
    return dataset_from_entries(entries, root, dataset, split, input_size, skip_corrupt, verify)


@DATASETS.register("ui")
def load_unlabelled(
    root: str | Path,
    split: str = "ui",
    input_size: int | tuple[int, int] = 112,
    skip_corrupt: bool = False,
    verify: bool = True,
    dataset: str = "UI",
) -> FaceDataset:
    """A flat folder of images without identities (label -1), e.g. the unrecognizable-identities set."""
    root = require_folder(dataset, root, "a flat folder of images")
    paths = scan_images(root)
    if not paths:
        raise LayoutError(f"{dataset}: {root} holds no images (expected .jpg/.png files directly in it)")
    entries = [Entry(path, None) for path in paths]
    return dataset_from_entries(entries, root, dataset, split, input_size, skip_corrupt, verify)


@DATASETS.register("in_memory")
def load_in_memory(dataset: str, **kwargs: object) -> FaceDataset:
    """The dataset that factory ``dataset`` builds from ``kwargs``, its resized images kept in memory
    after their first read (e.g. ``DataSpec("in_memory", {"dataset": "folder", "root": ...})``)."""
    built = DATASETS.build(dataset, **kwargs)
    if not isinstance(built, FaceDataset):
        raise ValueError(f"dataset factory {dataset!r} built a {type(built).__name__}; expected a FaceDataset")
    return built.keep_in_memory()
