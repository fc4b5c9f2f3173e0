"""Archives (zip, tar, tar.gz/bz2/xz) checked member by member before anything is written (no absolute
paths, no ``..``, no links leaving the folder), then unpacked through a staging folder."""

from __future__ import annotations

import re
import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Sequence

from lrfr.data.fetch.errors import FetchError, UnsafeArchiveError

_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def archive_kind(path: Path) -> str | None:
    """``"zip"``, ``"tar"`` or None (a plain file) from the file name."""
    name = Path(path).name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(_TAR_SUFFIXES):
        return "tar"
    return None


def _check_member(archive: Path, name: str) -> None:
    """Refuse a member name that is absolute, has a drive letter or a ``..`` part."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix) or ".." in PurePosixPath(posix).parts:
        raise UnsafeArchiveError(f"{archive}: refusing member {name!r}: it would be written outside the target folder")


def _extract_zip(archive: Path, target: Path) -> None:
    with zipfile.ZipFile(archive) as handle:
        for info in handle.infolist():
            _check_member(archive, info.filename)
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise UnsafeArchiveError(f"{archive}: refusing member {info.filename!r}: it is a symbolic link")
        handle.extractall(target)


def _extract_tar(archive: Path, target: Path) -> None:
    with tarfile.open(archive) as handle:
        members = handle.getmembers()
        for member in members:
            _check_member(archive, member.name)
            if not (member.isfile() or member.isdir()):
                raise UnsafeArchiveError(f"{archive}: refusing member {member.name!r}: only files and folders are unpacked")
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.10.12
        handle.extractall(target, members=members, **safe)


def unpack(archive: Path, target: Path, keep_roots: Sequence[str] = ()) -> None:
    """Unpack ``archive`` into the existing folder ``target`` after checking every member.

    An archive holding a single top folder (``tinyface/...``) has that folder stripped unless its name
    is in ``keep_roots`` (a layout entry such as SCface's ``mugshot_frontal_cropped_all``).
    """
    archive, target = Path(archive), Path(target)
    kind = archive_kind(archive)
    if kind is None:
        raise FetchError(f"{archive} is not an archive this knows (expected .zip or {', '.join(_TAR_SUFFIXES)})")
    staging = target / f".unpacking-{archive.name}"
    staging.mkdir()
    try:
        (_extract_zip if kind == "zip" else _extract_tar)(archive, staging)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as error:
        raise FetchError(f"cannot unpack {archive}: {error}; delete {archive} (or put an intact copy in its place) and rerun") from None
    entries = list(staging.iterdir())
    root = entries[0] if len(entries) == 1 and entries[0].is_dir() and entries[0].name not in keep_roots else staging
    for entry in list(root.iterdir()):
        if (target / entry.name).exists():
            raise FetchError(f"{archive}: {entry.name} is in more than one of the given files")
        entry.rename(target / entry.name)
    shutil.rmtree(staging)


def place(path: Path, target: Path, keep_roots: Sequence[str] = ()) -> None:
    """Unpack an archive into ``target``, or copy a plain file (a pairs list) into it."""
    if archive_kind(path) is None:
        shutil.copy2(path, Path(target) / Path(path).name)
    else:
        unpack(path, target, keep_roots)
