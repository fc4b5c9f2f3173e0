"""LFW (Huang et al., 2007) and XQLFW (Knoche et al., 2021) 1:1 verification in 10 folds.

Layout (``root`` holds the images and the pair list)::

    <name>/<name>_<nnnn>.jpg      e.g. Aaron_Eckhart/Aaron_Eckhart_0001.jpg
    pairs.txt                     "10 300" then, per fold, 300 genuine and 300 impostor lines:
                                  "name n1 n2" (3 fields, same person) or "name1 n1 name2 n2" (4 fields)

XQLFW uses the same format (its release names the file ``xqlfw_pairs.txt``: pass ``pairs_file``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lrfr.data.base import FaceRecord, LayoutError, check_layout
from lrfr.data.loaders.common import Entry, check_images, label_entries, require_files
from lrfr.io import leaves_folder

ImageKey = tuple[str, int]


@dataclass(frozen=True)
class PairSet:
    """Verification pairs: ``pairs`` (n, 2) index ``records``; ``is_same`` (n,) bool; ``folds`` (n,) int 0..9."""

    records: tuple[FaceRecord, ...]
    pairs: np.ndarray
    is_same: np.ndarray
    folds: np.ndarray
    corrupt: tuple[Path, ...] = ()


_COUNT = re.compile(r"[0-9]{1,9}")


def _image_number(field: str, path: Path, line: int) -> int:
    if not _COUNT.fullmatch(field):
        raise LayoutError(f"{path} line {line}: image number {field!r} is not an integer >= 0")
    return int(field)


def _person(name: str, path: Path, line: int) -> str:
    """A person's folder name from a pair line; one that could leave the dataset root is refused."""
    if leaves_folder(name) or "/" in name or "\\" in name or name == ".":
        raise LayoutError(f"{path} line {line}: name {name!r} is not a folder name (expected e.g. 'Aaron_Eckhart', without '/' or '..')")
    return name


def parse_pairs_file(path: str | Path) -> tuple[list[tuple[ImageKey, ImageKey]], np.ndarray, np.ndarray]:
    """The pairs, ``is_same`` and fold of each line of an LFW-format pair list.

    Line 1 is "<folds> <pairs per class per fold>"; each fold is then 2 x that many lines. A file that
    is not UTF-8 text, a wrong header, a line with other than 3 or 4 fields, a non-integer image
    number, a name that is not a plain folder name (``../x`` would read outside the dataset) or a
    wrong line count raises :class:`LayoutError` naming the file and line.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise LayoutError(f"{path} is not UTF-8 text ({error}); expected an LFW-format pair list") from None
    header = lines[0].split() if lines else []
    if len(header) != 2 or not all(_COUNT.fullmatch(h) and int(h) > 0 for h in header):
        raise LayoutError(f"{path} line 1: expected '<folds> <pairs per class per fold>', two integers >= 1 such as '10 300', found {' '.join(header)!r}")
    folds, per_class = int(header[0]), int(header[1])
    body = [(number, line.split()) for number, line in enumerate(lines[1:], start=2) if line.strip()]
    if len(body) != 2 * folds * per_class:
        raise LayoutError(f"{path}: expected {2 * folds * per_class} pair lines ({folds} folds x 2 x {per_class}), found {len(body)}")
    pairs, same = [], []
    for number, fields in body:
        if len(fields) == 3:
            name, first, second = fields
            name = _person(name, path, number)
            pairs.append(((name, _image_number(first, path, number)), (name, _image_number(second, path, number))))
        elif len(fields) == 4:
            first, second = (fields[0], fields[1]), (fields[2], fields[3])
            pairs.append(tuple((_person(name, path, number), _image_number(n, path, number)) for name, n in (first, second)))
        else:
            raise LayoutError(
                f"{path} line {number}: expected 3 fields 'name n1 n2' or 4 fields 'name1 n1 name2 n2', found {len(fields)}"
            )
        same.append(len(fields) == 3)
    fold_of = np.arange(len(pairs)) // (2 * per_class)
    return pairs, np.array(same, dtype=bool), fold_of.astype(np.int64)


def image_path(root: Path, key: ImageKey) -> Path:
    """LFW's file naming: ``<name>/<name>_<nnnn>.jpg``."""
    name, number = key
    return root / name / f"{name}_{number:04d}.jpg"


def load_pairs(
    root: str | Path,
    dataset: str = "LFW",
    pairs_file: str = "pairs.txt",
    skip_corrupt: bool = False,
    verify: bool = True,
) -> PairSet:
    """The images a pair list names and its pairs; pairs with a skipped corrupt image are dropped."""
    root = Path(root)
    check_layout(dataset, root, [pairs_file])
    pairs, is_same, folds = parse_pairs_file(root / pairs_file)
    keys = list(dict.fromkeys(key for pair in pairs for key in pair))
    paths = [image_path(root, key) for key in keys]
    require_files(paths, dataset, f"named by {root / pairs_file}")
    entries = {"test": [Entry(path, name, {"image_number": number}) for path, (name, number) in zip(paths, keys)]}
    records, corrupt = check_images(label_entries(entries), root, dataset, skip_corrupt, verify)
    index = {(r.identity, r.metadata["image_number"]): i for i, r in enumerate(records["test"])}
    kept = np.array([a in index and b in index for a, b in pairs], dtype=bool)
    pair_index = np.array([[index[a], index[b]] for (a, b), keep in zip(pairs, kept) if keep], dtype=np.int64).reshape(-1, 2)
    return PairSet(tuple(records["test"]), pair_index, is_same[kept], folds[kept], corrupt)

