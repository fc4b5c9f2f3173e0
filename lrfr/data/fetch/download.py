"""Downloads and verification: a download goes to ``<name>.part`` and resumes with an HTTP Range request;
it becomes ``<name>`` only once complete, and a file whose size or checksum is wrong is deleted with an
error saying so. Where no checksum is published the computed sha256 is printed and the caller must
accept it explicitly (``accept_unverified``)."""

from __future__ import annotations

import hashlib
import http.client
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

from tqdm.auto import tqdm

from lrfr.data.fetch.catalogue import RemoteFile
from lrfr.data.fetch.errors import ChecksumError, FetchError, UnverifiedError


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


def _open_range(url: str, offset: int, timeout: float) -> http.client.HTTPResponse | int | None:
    """The HTTP response for ``url`` from byte ``offset`` on; when the server answers 416 (nothing at or
    after ``offset``), the complete length it announces in ``Content-Range: bytes */N``, or None when it
    announces none."""
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            match = re.fullmatch(r"bytes \*/(\d+)", (error.headers.get("Content-Range") or "").strip())
            return int(match[1]) if match else None
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
    its announced length raises :class:`FetchError` and keeps the ``.part`` for the next attempt. The
    ``.part`` becomes ``dest`` only after a transfer that ended at the file's length: when the server
    answers a resume with 416, the ``.part`` is promoted only if the server's announced length equals
    its size; otherwise (longer than the file, or no length announced, as for sources that publish
    neither size nor checksum) it is discarded and the file downloaded anew.
    """
    dest = Path(dest)
    part = partial_path(dest)
    part.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.exists() else 0
    response = _open_range(url, offset, timeout)
    if not isinstance(response, http.client.HTTPResponse) and response != offset:
        tqdm.write(f"{part} ({offset} bytes) does not match what {url} serves "
                   f"(length {response if response is not None else 'not announced'}); downloading it anew")
        part.unlink()
        offset, response = 0, _open_range(url, 0, timeout)
    if isinstance(response, http.client.HTTPResponse):
        _receive(url, response, part, offset, chunk_size)
    part.rename(dest)
    return dest


def _receive(url: str, response: http.client.HTTPResponse, part: Path, offset: int, chunk_size: int) -> None:
    """Write ``response`` into ``part`` (appending from ``offset`` when the server honoured the range);
    a transfer that ends before its announced length raises :class:`FetchError`, keeping ``part``."""
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
