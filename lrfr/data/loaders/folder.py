"""Generic image folders: one sub-folder per identity (CASIA-WebFace/VGGFace2 as extracted), or a flat
unlabelled folder (the UI set)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Literal

from lrfr.data import DATASETS
from lrfr.data.base import FaceDataset, FaceRecord, LayoutError, check_layout, scan_images
from lrfr.data.loaders.common import Entry, check_images, folder_entries, label_entries, require_folder

NonSquare = Literal["error", "centre_crop", "stretch"]
NON_SQUARE = ("error", "centre_crop", "stretch")


def _aspect_box(native: tuple[int, int], size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The central ``(top, left, height, width)`` box of ``native`` with ``size``'s aspect ratio, or None
    when ``native`` already has it (to within a pixel)."""
    height, width = native
    want_height = width * size[0] / size[1]
    if abs(height - want_height) <= 1:
        return None
    box_height, box_width = (round(want_height), width) if want_height < height else (height, round(height * size[1] / size[0]))
    return (height - box_height) // 2, (width - box_width) // 2, box_height, box_width


def fit_aspect(records: list[FaceRecord], input_size: int | tuple[int, int], policy: NonSquare, dataset: str, root: Path) -> list[FaceRecord]:
    """Records whose images do not have ``input_size``'s aspect ratio: an error listing them
    (``"error"``), a centre ``crop`` box in their metadata (``"centre_crop"``), or left to be stretched
    (``"stretch"``). Resizing a 89x109 crop to 112x112 distorts the face; nothing is stretched silently."""
    if policy not in NON_SQUARE:
        raise ValueError(f"non_square {policy!r} is not valid; expected one of {', '.join(NON_SQUARE)}")
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    boxes = [_aspect_box(r.metadata["native_size"], size) for r in records]
    odd = [(r, box) for r, box in zip(records, boxes) if box is not None]
    if not odd or policy == "stretch":
        return records
    if policy == "error":
        shown = ", ".join(f"{r.metadata['source']} ({r.metadata['native_size'][0]}x{r.metadata['native_size'][1]})" for r, _ in odd[:5])
        raise LayoutError(
            f"{dataset}: {len(odd)} of {len(records)} images under {root} are not {size[0]}x{size[1]}-shaped, e.g. {shown}; "
            f"resizing them to {size[0]}x{size[1]} would stretch the faces. Align them first "
            f"(lrfr data align --images {root} --out ALIGNED), or pass non_square='centre_crop' or 'stretch'"
        )
    return [replace(r, metadata={**r.metadata, "crop": box}) if box else r for r, box in zip(records, boxes)]


def dataset_from_entries(
    entries: list[Entry],
    root: Path,
    dataset: str,
    split: str,
    input_size: int | tuple[int, int],
    skip_corrupt: bool,
    verify: bool,
    non_square: NonSquare = "error",
) -> FaceDataset:
    """Label, check and wrap one split's entries in a :class:`FaceDataset` (corrupt files on ``.corrupt``;
    images of another aspect ratio than ``input_size`` handled by :func:`fit_aspect`)."""
    records, corrupt = check_images(label_entries({split: entries}), root, dataset, skip_corrupt, verify)
    fitted = fit_aspect(records[split], input_size, non_square, dataset, root)
    return FaceDataset(fitted, input_size, corrupt=corrupt)


def load_training_split(
    dataset: str,
    root: str | Path,
    subfolder: str,
    input_size: int | tuple[int, int],
    skip_corrupt: bool,
    verify: bool,
) -> FaceDataset:
    """A benchmark's training split ``<root>/<subfolder>/<identity>/<image>``, after the layout check.

    Its native low-resolution crops come in many aspect ratios and are resized to ``input_size`` as
    the benchmark's own protocol does (TinyFace, QMUL-SurvFace): ``non_square="stretch"``.
    """
    root = Path(root)
    check_layout(dataset, root, [subfolder])
    entries = folder_entries(root / subfolder, dataset)
    return dataset_from_entries(entries, root, dataset, "train", input_size, skip_corrupt, verify, "stretch")


@DATASETS.register("folder")
def load_folder(
    root: str | Path,
    split: str = "train",
    input_size: int | tuple[int, int] = 112,
    skip_corrupt: bool = False,
    verify: bool = True,
    dataset: str = "folder",
    non_square: NonSquare = "error",
) -> FaceDataset:
    """A folder-per-identity set ``<root>/<identity>/<image>``; labels number the identities in natural order.

    Images whose aspect ratio is not ``input_size``'s are refused (``non_square="error"``, the default:
    align them with ``lrfr data align``), centre-cropped to it (``"centre_crop"``) or stretched
    (``"stretch"``), see :func:`fit_aspect`.
    """
    root = require_folder(dataset, root, "one folder of images per identity")
    entries = folder_entries(root, dataset)
    return dataset_from_entries(entries, root, dataset, split, input_size, skip_corrupt, verify, non_square)


@DATASETS.register("ui")
def load_unlabelled(
    root: str | Path,
    split: str = "ui",
    input_size: int | tuple[int, int] = 112,
    skip_corrupt: bool = False,
    verify: bool = True,
    dataset: str = "UI",
    non_square: NonSquare = "error",
) -> FaceDataset:
    """A flat folder of images without identities (label -1), e.g. the unrecognizable-identities set;
    ``non_square`` as :func:`load_folder`."""
    root = require_folder(dataset, root, "a flat folder of images")
    paths = scan_images(root)
    if not paths:
        raise LayoutError(f"{dataset}: {root} holds no images (expected .jpg/.png files directly in it)")
    entries = [Entry(path, None) for path in paths]
    return dataset_from_entries(entries, root, dataset, split, input_size, skip_corrupt, verify, non_square)


@DATASETS.register("in_memory")
def load_in_memory(dataset: str, **kwargs: object) -> FaceDataset:
    """The dataset that factory ``dataset`` builds from ``kwargs``, its resized images kept in memory
    after their first read (e.g. ``DataSpec("in_memory", {"dataset": "folder", "root": ...})``)."""
    built = DATASETS.build(dataset, **kwargs)
    if not isinstance(built, FaceDataset):
        raise ValueError(f"dataset factory {dataset!r} built a {type(built).__name__}; expected a FaceDataset")
    return built.keep_in_memory()
