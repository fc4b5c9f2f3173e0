"""What every loader shares: identity labelling, image checks with native sizes, .mat name tables.

A loader first checks the dataset's layout (:func:`lrfr.data.base.check_layout`), then lists its
images as :class:`Entry` objects (file, identity or None, metadata), labels them with
:func:`label_entries` and finally reads every image once with :func:`check_images`, which records the
native ``(h, w)`` size and the file relative to the dataset root in each record's metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from lrfr.data.base import (
    CorruptImageError,
    FaceRecord,
    LayoutError,
    check_links,
    image_size,
    read_image,
    scan_images,
)
from lrfr.data.loaders.matfile import read_mat
from lrfr.io import leaves_folder


@dataclass(frozen=True)
class Entry:
    """An image found in a layout before labelling; ``identity`` is None for unlabelled images."""

    path: Path
    identity: str | None
    metadata: dict[str, Any] = field(default_factory=dict)


def natural_key(name: str) -> tuple[int, int | str]:
    """Sort numeric identity names by value ("2" < "10") and others alphabetically after them."""
    return (0, int(name)) if name.isdigit() else (1, name)


def label_entries(splits: Mapping[str, Sequence[Entry]]) -> dict[str, list[FaceRecord]]:
    """Records per split; labels number the identities of all splits together in natural order."""
    named = {e.identity for entries in splits.values() for e in entries if e.identity is not None}
    identities = sorted(named, key=natural_key)
    labels = {identity: label for label, identity in enumerate(identities)}
    return {
        split: [FaceRecord(e.path, labels.get(e.identity, -1), e.identity, split, dict(e.metadata)) for e in entries]
        for split, entries in splits.items()
    }


def check_images(
    splits: Mapping[str, Sequence[FaceRecord]],
    root: Path,
    dataset: str,
    skip_corrupt: bool = False,
    verify: bool = True,
) -> tuple[dict[str, list[FaceRecord]], tuple[Path, ...]]:
    """Add ``native_size`` (h, w) and ``source`` to every record's metadata.

    With ``verify`` each image is decoded once, otherwise only its header is read (cheap, but a
    truncated file then fails later, when a dataset item decodes it). An unreadable image raises
    :class:`CorruptImageError` naming it, or with ``skip_corrupt`` is dropped and listed.
    """
    total = sum(len(records) for records in splits.values())
    progress = tqdm(total=total, desc=f"{dataset}: reading images", leave=False, disable=total < 2000)
    checked: dict[str, list[FaceRecord]] = {}
    corrupt: list[Path] = []
    for split, records in splits.items():
        checked[split] = []
        for record in records:
            progress.update()
            try:
                size = read_image(record.path).shape[:2] if verify else image_size(record.path)
            except CorruptImageError as error:
                if not skip_corrupt:
                    raise CorruptImageError(f"{dataset}: {error} (pass skip_corrupt=True to skip such files)") from None
                corrupt.append(record.path)
                continue
            native = tuple(int(s) for s in size)
            metadata = {**record.metadata, "native_size": native, "source": relative(record.path, root)}
            checked[split].append(replace(record, metadata=metadata))
    progress.close()
    emptied = [split for split, records in splits.items() if records and not checked[split]]
    if emptied:
        raise CorruptImageError(
            f"{dataset}: every image of the {', '.join(emptied)} split(s) under {root} is unreadable "
            f"({len(corrupt)} skipped, e.g. {corrupt[0]}); expected at least one readable image"
        )
    return checked, tuple(corrupt)


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as a POSIX string (the path itself when outside root)."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()


def identity_folders(root: Path, dataset: str) -> list[Path]:
    """The per-identity sub-folders of a folder-per-identity layout, in natural order; none is an error."""
    children = list(Path(root).iterdir())
    check_links(children)
    folders = sorted((p for p in children if p.is_dir()), key=lambda p: natural_key(p.name))
    if not folders:
        raise LayoutError(f"{dataset}: {root} has no identity folders (expected one folder of images per identity)")
    return folders


def folder_entries(root: Path, dataset: str, **metadata: Any) -> list[Entry]:
    """Entries of a folder-per-identity layout ``<root>/<identity>/<image>``; the folder name is the identity.

    A layout whose identity folders hold no image at all is a :class:`LayoutError` naming ``root``.
    """
    folders = identity_folders(root, dataset)
    entries = [Entry(path, folder.name, dict(metadata)) for folder in folders for path in scan_images(folder)]
    return require_entries(entries, root, dataset, f"images in its {len(folders)} identity folder(s)")


def require_entries(entries: list[Entry], folder: Path, dataset: str, expected: str) -> list[Entry]:
    """``entries``, or :class:`LayoutError` naming ``folder`` when there are none."""
    if not entries:
        raise LayoutError(f"{dataset}: {folder} holds no images (expected {expected})")
    return entries


def contained(folder: Path, name: str, dataset: str, source: str) -> Path:
    """``folder / name`` for a relative name read from a list file (``source``); a name that is empty,
    absolute, holds NUL or a ``..`` part (it would read outside the dataset) is a :class:`LayoutError`."""
    if leaves_folder(name):
        raise LayoutError(f"{dataset}: {source} names {name!r}, which is not a path inside {folder} (expected a relative file name)")
    return folder / name


def prefix_identity(name: str) -> str:
    """The identity encoded in a file name as the prefix before the first underscore (``"12_3.jpg"`` -> ``"12"``)."""
    return Path(name).stem.split("_", 1)[0]


def _cell_strings(values: np.ndarray) -> list[str]:
    """Strings of a MATLAB cell array or char matrix as ``scipy.io.loadmat`` returns them, in C order."""
    if values.dtype.kind == "U":
        return [str(v).strip() for v in values.ravel()]
    strings = []
    for value in values.ravel():
        value = np.asarray(value)
        if value.dtype.kind == "O":
            strings.extend(_cell_strings(value))
        elif value.dtype.kind == "U":
            strings.append("".join(str(v) for v in value.ravel()).strip())
        else:
            raise ValueError(f"expected strings, found {value.dtype} values")
    return strings


def read_mat_table(path: Path, dataset: str, columns: int = 1) -> tuple[list[tuple[str, ...]], np.ndarray | None]:
    """Rows of image names (``columns`` per row) and their numeric ids (None when absent) from a .mat file.

    The variables are found by role, whatever their names: exactly one holding strings (a cell array
    of names, or an n x ``columns`` cell of pairs) and at most one numeric one with one id per row.
    """
    variables = read_mat(path, dataset)
    found = ", ".join(f"{k} ({v.dtype}, shape {v.shape})" for k, v in variables.items()) or "no variables"
    textual = [k for k, v in variables.items() if v.dtype.kind in "OU"]
    numeric = [k for k, v in variables.items() if v.dtype.kind in "iuf"]
    if len(textual) != 1 or len(numeric) > 1:
        raise LayoutError(
            f"{dataset}: {path} should hold one cell array of image names and at most one numeric id array; found {found}"
        )
    try:
        names = _cell_strings(variables[textual[0]])
    except (ValueError, RecursionError) as error:
        raise LayoutError(f"{dataset}: {path} variable {textual[0]}: {error}") from None
    if len(names) % columns:
        raise LayoutError(f"{dataset}: {path} variable {textual[0]} has {len(names)} names, not rows of {columns}")
    rows = [tuple(names[i : i + columns]) for i in range(0, len(names), columns)]
    ids = variables[numeric[0]].ravel() if numeric else None
    if ids is not None and len(ids) != len(rows):
        raise LayoutError(f"{dataset}: {path} has {len(rows)} image names but {len(ids)} ids ({found})")
    if ids is not None and not np.isfinite(ids).all():
        bad = int(np.flatnonzero(~np.isfinite(ids))[0])
        raise LayoutError(f"{dataset}: {path} variable {numeric[0]}: id {ids[bad]} of row {bad + 1} is not a finite number")
    return rows, ids


def mat_id(value: float) -> str:
    """An id read from a .mat file as an identity name (``12.0`` -> ``"12"``)."""
    return str(int(value)) if float(value).is_integer() else str(value)


def listed_entries(
    folder: Path, mat_file: Path, dataset: str, labelled: bool = True, **metadata: Any
) -> list[Entry]:
    """Images of ``folder`` listed by ``mat_file`` (names and ids) or, when it is absent, every image there.

    Without the .mat file the identity is the file-name prefix before the first underscore; with
    ``labelled=False`` images have no identity. Names listed but not on disk raise :class:`LayoutError`.
    """
    if not mat_file.exists():
        found = [Entry(p, prefix_identity(p.name) if labelled else None, dict(metadata)) for p in scan_images(folder)]
        return require_entries(found, folder, dataset, f".jpg/.png files in it, or a list of them in {mat_file}")
    rows, ids = read_mat_table(mat_file, dataset)
    if not rows:
        raise LayoutError(f"{dataset}: {mat_file} lists no images (expected the names of the images in {folder})")
    paths = [contained(folder, name, dataset, str(mat_file)) for (name,) in rows]
    require_files(paths, dataset, f"listed in {mat_file}")
    if not labelled:
        return [Entry(p, None, dict(metadata)) for p in paths]
    identities = [mat_id(i) for i in ids] if ids is not None else [prefix_identity(p.name) for p in paths]
    return [Entry(p, identity, dict(metadata)) for p, identity in zip(paths, identities)]


def require_files(paths: Sequence[Path], dataset: str, context: str) -> None:
    """:class:`LayoutError` listing (up to 10 of) the ``paths`` that do not exist."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise LayoutError(f"{dataset}: {len(missing)} image files {context} are missing: {shown}{more}")


def match_name(pattern: re.Pattern[str], path: Path, dataset: str, expected: str) -> re.Match[str]:
    """The match of ``pattern`` on the file's stem, or :class:`LayoutError` naming the file and the expected form."""
    match = pattern.fullmatch(path.stem)
    if match is None:
        raise LayoutError(f"{dataset}: unexpected file name {path} (expected {expected})")
    return match


def require_folder(dataset: str, root: Path, expected: str) -> Path:
    """``root`` as a Path, or :class:`LayoutError` naming it and the ``expected`` layout when it is not a folder."""
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f"{dataset}: data folder {root} does not exist (expected {expected})")
    return root
