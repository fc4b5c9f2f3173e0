"""SCface (Grgic, Delac & Grgic, 2011): one HR mugshot per subject, surveillance probes per camera and distance.

Layout of the release (``root`` is the SCface folder)::

    mugshot_frontal_cropped_all/<id>_frontal.jpg                 one frontal HR image per subject (001..130)
    surveillance_cameras_distance_<d>/cam<k>/<id>_cam<k>_<d>.jpg  d = 1 (4.2 m), 2 (2.6 m), 3 (1.0 m); k = 1..5

Distance 1 is the farthest (smallest faces; the "d1" of the papers). Each probe record carries its
``camera``, ``distance`` (1-3) and ``distance_m`` in its metadata; mugshots and probes share labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lrfr.data import DATASETS
from lrfr.data.base import FaceDataset, FaceRecord, LayoutError, check_layout, scan_images
from lrfr.data.loaders.common import Entry, check_images, label_entries, match_name, natural_key

DATASET = "SCface"
MUGSHOTS = "mugshot_frontal_cropped_all"
DISTANCE_FOLDER = "surveillance_cameras_distance_{}"
DISTANCE_METRES = {1: 4.2, 2: 2.6, 3: 1.0}
_MUGSHOT = re.compile(r"(\d+)_frontal", re.IGNORECASE)
_PROBE = re.compile(r"(\d+)_cam(\d+)_(\d+)", re.IGNORECASE)
_CAMERA = re.compile(r"cam(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class SCFaceSet:
    """Mugshots (the HR gallery) and surveillance probes; ``probes_at(d)`` selects one distance."""

    mugshots: tuple[FaceRecord, ...]
    probes: tuple[FaceRecord, ...]
    corrupt: tuple[Path, ...] = ()

    def probes_at(self, distance: int) -> tuple[FaceRecord, ...]:
        return tuple(r for r in self.probes if r.metadata["distance"] == distance)


def _mugshot_entries(folder: Path) -> list[Entry]:
    return [
        Entry(path, match_name(_MUGSHOT, path, DATASET, "<id>_frontal.jpg").group(1), {"camera": "mugshot"})
        for path in scan_images(folder)
    ]


def _probe_entries(folder: Path, distance: int) -> list[Entry]:
    """Probes of one distance folder; the file name must agree with its camera folder and distance."""
    cameras = sorted((p for p in folder.iterdir() if p.is_dir() and _CAMERA.fullmatch(p.name)), key=lambda p: natural_key(p.name[3:]))
    if not cameras:
        raise LayoutError(f"{DATASET}: {folder} has no cam<k> folders (expected cam1..cam5)")
    entries = []
    for camera_folder in cameras:
        camera = int(_CAMERA.fullmatch(camera_folder.name).group(1))
        expected = f"<id>_cam{camera}_{distance}.jpg"
        for path in scan_images(camera_folder):
            subject, file_camera, file_distance = match_name(_PROBE, path, DATASET, expected).groups()
            if (int(file_camera), int(file_distance)) != (camera, distance):
                raise LayoutError(f"{DATASET}: {path} is in the wrong folder (expected {expected})")
            metadata = {"camera": camera, "distance": distance, "distance_m": DISTANCE_METRES.get(distance)}
            entries.append(Entry(path, subject, metadata))
    return entries


def load_scface(
    root: str | Path, distances: tuple[int, ...] = (1, 2, 3), skip_corrupt: bool = False, verify: bool = True
) -> SCFaceSet:
    """Mugshots and the probes at ``distances`` (1 = 4.2 m, 2 = 2.6 m, 3 = 1.0 m)."""
    root = Path(root)
    folders = {d: DISTANCE_FOLDER.format(d) for d in distances}
    check_layout(DATASET, root, [MUGSHOTS, *folders.values()])
    splits = {
        "mugshot": _mugshot_entries(root / MUGSHOTS),
        "probe": [e for d, name in folders.items() for e in _probe_entries(root / name, d)],
    }
    records, corrupt = check_images(label_entries(splits), root, DATASET, skip_corrupt, verify)
    return SCFaceSet(tuple(records["mugshot"]), tuple(records["probe"]), corrupt)


@DATASETS.register("scface")
def scface_dataset(
    root: str | Path,
    subjects: list[str] | None = None,
    distances: tuple[int, ...] = (1, 2, 3),
    input_size: int | tuple[int, int] = 112,
    skip_corrupt: bool = False,
    verify: bool = True,
) -> FaceDataset:
    """Mugshots and probes of ``subjects`` (all when None) as one dataset, e.g. the 50 fine-tuning subjects.

    Labels are renumbered 0..n-1 over the chosen subjects so that a classifier head fits them.
    """
    data = load_scface(root, tuple(distances), skip_corrupt, verify)
    present = {r.identity for r in data.mugshots + data.probes}
    chosen = sorted(present if subjects is None else present & set(subjects), key=natural_key)
    unknown = sorted(set(subjects or ()) - set(chosen))
    if unknown:
        raise ValueError(f"{DATASET}: subjects {', '.join(unknown)} are not in {root}")
    labels = {identity: label for label, identity in enumerate(chosen)}
    records = [
        FaceRecord(r.path, labels[r.identity], r.identity, "train", r.metadata)
        for r in data.mugshots + data.probes
        if r.identity in labels
    ]
    return FaceDataset(records, input_size, corrupt=data.corrupt)
