"""Fetch, verify, resume and unpack the real datasets into the layouts their loaders read.

Every download URL and published checksum lives in :data:`SOURCES` and nowhere else. A download
goes to ``<name>.part`` and resumes with an HTTP Range request; it becomes ``<name>`` only once
complete, and a file whose size or checksum is wrong is deleted with an error saying so. Where no
checksum is published the computed sha256 is printed and the caller must accept it explicitly
(``accept_unverified``). Archives (zip, tar, tar.gz/bz2/xz) are checked member by member before
anything is written (no absolute paths, no ``..``, no links leaving the folder) and unpacked into a
hidden ``.<folder>.partial`` sibling that is renamed into place only when complete, so an interrupted
run never leaves a folder that looks prepared.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import re
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

from tqdm.auto import tqdm

from lrfr.data import loaders
from lrfr.data.base import LayoutError, check_layout
from lrfr.io import atomic_folder


class FetchError(RuntimeError):
    """A download, verification or unpacking step failed; the message names the file and the cause."""


class ChecksumError(FetchError):
    """A file's size or checksum differs from the published one."""


class UnverifiedError(FetchError):
    """No checksum is published for a file and the caller did not pass ``accept_unverified``."""


class UnsafeArchiveError(FetchError):
    """An archive member would be written outside the target folder (zip-slip) or is a link/device."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: where to get it (``url`` None: only from the user) and what it must match."""

    filename: str
    url: str | None = None
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None

    @property
    def checksums(self) -> dict[str, str]:
        """The published digests, by hashlib algorithm name."""
        return {name: value for name, value in (("sha256", self.sha256), ("md5", self.md5)) if value}


@dataclass(frozen=True)
class DatasetSource:
    """How a dataset is obtained and the entries its prepared folder (``data_root/folder``) must hold.

    An archive holding one top folder has it stripped unless that folder is one of ``required``.
    """

    title: str
    folder: str
    files: tuple[RemoteFile, ...]
    required: tuple[str, ...]
    access: str


_FIGSHARE = "https://ndownloader.figshare.com/files/"
_XQLFW = "https://github.com/Martlgap/xqlfw/releases/download/1.0/"

#: The one place for URLs and checksums. LFW's come from scikit-learn (sklearn/datasets/_lfw.py, the
#: figshare mirror of vis-www.cs.umass.edu/lfw/); TinyFace's md5 is the one its users publish for the
#: zip from qmul-tinyface.github.io; None means no published value is known to us.
SOURCES: dict[str, DatasetSource] = {
    "tinyface": DatasetSource(
        title="TinyFace",
        folder="tinyface",
        files=(RemoteFile("tinyface.zip", md5="d8f1b97e4fc1857ff6bc7cf49389aab6"),),
        required=("Training_Set", "Testing_Set/Probe", "Testing_Set/Gallery_Match", "Testing_Set/Gallery_Distractor"),
        access="Public. Download tinyface.zip from https://qmul-tinyface.github.io/ (a Google Drive link, "
        "which plain HTTP cannot follow) and pass it with --archive.",
    ),
    "lfw": DatasetSource(
        title="LFW",
        folder="lfw",
        files=(
            RemoteFile(
                "lfw.tgz",
                _FIGSHARE + "5976018",
                size=180_566_744,
                sha256="055f7d9c632d7370e6fb4afc7468d40f970c34a80d4c6f50ffec63f5a8d536c0",
            ),
            RemoteFile(
                "pairs.txt", _FIGSHARE + "5976006", sha256="ea42330c62c92989f9d7c03237ed5d591365e89b3e649747777b70e692dc1592"
            ),
        ),
        required=("pairs.txt",),
        access="Public (http://vis-www.cs.umass.edu/lfw/); downloaded from its figshare mirror.",
    ),
    "xqlfw": DatasetSource(
        title="XQLFW",
        folder="xqlfw",
        files=(
            RemoteFile("xqlfw_aligned_112.zip", _XQLFW + "xqlfw_aligned_112.zip"),
            RemoteFile("xqlfw_pairs.txt", _XQLFW + "xqlfw_pairs.txt"),
        ),
        required=("xqlfw_pairs.txt",),
        access="Public (https://martlgap.github.io/xqlfw/); no checksum is published, so the first run "
        "prints the sha256 and needs --accept-unverified.",
    ),
    "scface": DatasetSource(
        title="SCface",
        folder="scface",
        files=(),
        required=(
            "mugshot_frontal_cropped_all",
            "surveillance_cameras_distance_1",
            "surveillance_cameras_distance_2",
            "surveillance_cameras_distance_3",
        ),
        access="Licence-gated. Request access through https://www.scface.org/ (a release agreement signed "
        "by your institution; the database owners then send a download link) and pass the archive(s) "
        "you received with --archive.",
    ),
    "qmul_survface": DatasetSource(
        title="QMUL-SurvFace",
        folder="survface",
        files=(),
        required=("training_set", "Face_Verification_Test_Set", "Face_Identification_Test_Set"),
        access="Licence-gated. Request it through https://qmul-survface.github.io/ (the authors grant "
        "access for research use on a signed agreement) and pass the archive you received with --archive.",
    ),
    "casia_webface": DatasetSource(
        title="CASIA-WebFace",
        folder="casia_webface",
        files=(),
        required=(),
        access="Licence-gated. The original release (CBSR, Institute of Automation, Chinese Academy of "
        "Sciences) is given on request with a signed agreement; pass the archive holding the "
        "CASIA-WebFace/<identity>/<image> folders with --archive.",
    ),
}

_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def source(dataset: str) -> DatasetSource:
    """The :data:`SOURCES` entry of ``dataset``, or a ValueError listing the known names."""
    if dataset not in SOURCES:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(sorted(SOURCES))}")
    return SOURCES[dataset]


def partial_path(dest: Path) -> Path:
    """Where the download of ``dest`` goes until it is complete: ``<name>.part`` beside it."""
    return dest.with_name(dest.name + ".part")


def digests(path: Path, algorithms: Sequence[str] = ("sha256", "md5")) -> dict[str, str]:
    """Hex digests of ``path`` in one read, by algorithm name."""
    hashes = {name: hashlib.new(name) for name in algorithms}
    with open(path, "rb") as handle, tqdm(
        total=path.stat().st_size, unit="B", unit_scale=True, desc=f"checking {path.name}", leave=False
    ) as bar:
        while chunk := handle.read(1 << 20):
            for digest in hashes.values():
                digest.update(chunk)
            bar.update(len(chunk))
    return {name: digest.hexdigest() for name, digest in hashes.items()}


def verify(path: Path, remote: RemoteFile, accept_unverified: bool = False) -> str:
    """Check ``path`` against ``remote``'s size and checksums; return its sha256.

    A wrong size or checksum raises :class:`ChecksumError`; with no published checksum the sha256 is
    reported in an :class:`UnverifiedError` unless ``accept_unverified``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{remote.filename}: {path} does not exist or is not a file")
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        raise ChecksumError(f"{path} has {size} bytes, expected {remote.size}")
    found = digests(path)
    for name, expected in remote.checksums.items():
        if found[name] != expected.lower():
            raise ChecksumError(f"{path}: {name} is {found[name]}, expected {expected}")
    if not remote.checksums and not accept_unverified:
        raise UnverifiedError(
            f"no published checksum is known for {remote.filename}; {path} has sha256 {found['sha256']} "
            f"({size} bytes). Check it against the source if you can, then rerun with --accept-unverified."
        )
    return found["sha256"]


def _open_range(url: str, offset: int, timeout: float) -> http.client.HTTPResponse | None:
    """The HTTP response for ``url`` from byte ``offset`` on, or None when the server says nothing is left."""
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            return None
        raise FetchError(f"download of {url} failed: HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise FetchError(f"download of {url} failed: {error.reason}") from None


def _stream(response: http.client.HTTPResponse, part: Path, offset: int, total: int | None, chunk_size: int) -> None:
    """Append (``offset`` > 0) or write ``response``'s body to ``part`` with a progress bar."""
    with open(part, "ab" if offset else "wb") as handle, tqdm(
        total=total, initial=offset, unit="B", unit_scale=True, desc=part.name
    ) as bar:
        while chunk := response.read(chunk_size):
            handle.write(chunk)
            bar.update(len(chunk))


def download(url: str, dest: Path, timeout: float = 60.0, chunk_size: int = 1 << 20) -> Path:
    """Download ``url`` to ``dest`` through ``<dest>.part``, resuming a partial file with a Range request.

    A server that ignores the Range header restarts the file from the start; a response shorter than
    its announced length raises :class:`FetchError` and keeps the ``.part`` for the next attempt.
    """
    dest = Path(dest)
    part = partial_path(dest)
    part.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.exists() else 0
    response = _open_range(url, offset, timeout)
    if response is not None:
        with response:
            if offset and response.status != 206:
                offset = 0
            elif offset and not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
                raise FetchError(f"download of {url}: asked for bytes {offset}- and got {response.headers.get('Content-Range')!r}")
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else None
            try:
                _stream(response, part, offset, total, chunk_size)
            except (http.client.HTTPException, OSError) as error:
                raise FetchError(
                    f"download of {url} was interrupted at {part.stat().st_size} bytes ({error!r}); "
                    f"{part} is kept, rerun to resume"
                ) from None
        got = part.stat().st_size
        if total is not None and got != total:
            raise FetchError(f"download of {url} stopped at {got} of {total} bytes; {part} is kept, rerun to resume")
    part.rename(dest)
    return dest


def fetch_file(remote: RemoteFile, folder: Path, accept_unverified: bool = False) -> Path:
    """``folder/<filename>`` downloaded (or resumed) if missing, then verified; a bad download is deleted."""
    dest = Path(folder) / remote.filename
    if not dest.exists():
        if remote.url is None:
            raise FetchError(f"{remote.filename} cannot be downloaded automatically; pass the file you obtained")
        part = partial_path(dest)
        if remote.size is not None and part.exists() and part.stat().st_size > remote.size:
            part.unlink()
        download(remote.url, dest)
    try:
        verify(dest, remote, accept_unverified)
    except ChecksumError as error:
        dest.unlink()
        raise ChecksumError(f"{error}; deleted the download, run again to fetch it anew") from None
    return dest


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
        raise FetchError(f"cannot unpack {archive}: {error}") from None
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


#: The loader calls that check a prepared folder (layout and image headers, no full decode).
LOADER_CHECKS: dict[str, Callable[[Path], object]] = {
    "tinyface": lambda root: (loaders.load_tinyface_train(root, verify=False), loaders.load_tinyface_test(root, verify=False)),
    "lfw": lambda root: loaders.load_pairs(root, "LFW", verify=False),
    "xqlfw": lambda root: loaders.load_pairs(root, "XQLFW", "xqlfw_pairs.txt", verify=False),
    "scface": lambda root: loaders.load_scface(root, verify=False),
    "qmul_survface": lambda root: (
        loaders.load_survface_train(root, verify=False),
        loaders.load_survface_verification(root, verify=False),
        loaders.load_survface_identification(root, verify=False),
    ),
    "casia_webface": lambda root: loaders.load_folder(root, verify=False, dataset="CASIA-WebFace"),
}


def check_prepared(dataset: str, root: Path) -> None:
    """Raise :class:`lrfr.data.base.LayoutError` unless ``root`` has ``dataset``'s layout, as its loader reads it."""
    spec = source(dataset)
    check_layout(spec.title, Path(root), spec.required)
    LOADER_CHECKS[dataset](Path(root))


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
