"""Prepare a dataset folder: fetch (or take the user's files), verify, unpack into a hidden
``.<folder>.partial`` sibling and rename it into place only when its loader accepts it, so an
interrupted run never leaves a folder that looks prepared; and the data scripts' command line."""

from __future__ import annotations

import argparse
from pathlib import Path, PurePosixPath
from typing import Sequence

from lrfr.data.base import LayoutError
from lrfr.data.fetch.archives import place
from lrfr.data.fetch.catalogue import DatasetSource, RemoteFile, check_prepared, source
from lrfr.data.fetch.download import fetch_file, verify
from lrfr.data.fetch.errors import FetchError
from lrfr.io import atomic_folder


def _remote_for(spec: DatasetSource, path: Path) -> RemoteFile:
    """The :class:`RemoteFile` entry named like ``path`` (for its checksums), or a bare one."""
    return next((f for f in spec.files if f.filename == path.name), RemoteFile(path.name))


def gather(dataset: str, download_dir: Path, archives: Sequence[Path] = (), accept_unverified: bool = False) -> list[Path]:
    """The verified files of ``dataset``: the user's ``archives``, else every file downloaded to ``download_dir``."""
    spec = source(dataset)
    if archives:
        paths = [Path(a) for a in archives]
        for path in paths:
            verify(path, _remote_for(spec, path), accept_unverified)
        return paths
    missing = [f.filename for f in spec.files if f.url is None]
    if not spec.files or missing:
        raise FetchError(f"{spec.title} cannot be downloaded here ({', '.join(missing) or 'no public files'}). {spec.access}")
    return [fetch_file(f, download_dir, accept_unverified) for f in spec.files]


def prepare(dataset: str, data_root: Path, archives: Sequence[Path] = (), accept_unverified: bool = False) -> Path:
    """Fetch or take, verify and unpack ``dataset`` into ``data_root/<folder>``; return that folder.

    Downloads go to ``data_root/downloads``. The unpacked files must pass the dataset's loader before
    the folder is renamed into place; an existing folder is only checked.
    """
    spec = source(dataset)
    root = Path(data_root) / spec.folder
    if not root.exists():
        files = gather(dataset, Path(data_root) / "downloads", archives, accept_unverified)
        keep_roots = {PurePosixPath(entry).parts[0] for entry in spec.required}
        with atomic_folder(root) as work:
            for path in files:
                place(path, work, keep_roots)
            try:
                check_prepared(dataset, work)
            except LayoutError as error:
                raise LayoutError(f"the files given for {spec.title} do not unpack to its layout; nothing was kept: {error}") from None
    check_prepared(dataset, root)
    return root


def parser(dataset: str, description: str) -> argparse.ArgumentParser:
    """The command line shared by the data scripts, with ``dataset``'s access instructions in ``--help``."""
    spec = source(dataset)
    parser = argparse.ArgumentParser(
        description=f"{description}\n\nHow to obtain {spec.title}: {spec.access}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data-root", type=Path, required=True, help=f"folder that receives {spec.folder}/ (and downloads/)")
    parser.add_argument(
        "--archive", type=Path, action="append", default=[], help="a file you obtained (repeat for several); default: download"
    )
    parser.add_argument(
        "--accept-unverified", action="store_true", help="continue with files for which no checksum is published"
    )
    return parser


def run(dataset: str, args: argparse.Namespace) -> Path:
    """Prepare ``dataset`` from parsed :func:`parser` arguments; a failure exits with its message."""
    try:
        root = prepare(dataset, args.data_root, args.archive, args.accept_unverified)
    except (FetchError, OSError) as error:
        raise SystemExit(f"error: {error}") from None
    print(f"{source(dataset).title} is ready in {root}")
    return root
