"""Download/resume/verify/unpack logic of lrfr.data.fetch, against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import subprocess
import sys
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from lrfr.data.base import LayoutError
from lrfr.data.fetch import catalogue
from lrfr.data.fetch.archives import unpack
from lrfr.data.fetch.catalogue import RemoteFile
from lrfr.data.fetch.download import download, fetch_file, verify
from lrfr.data.fetch.errors import ChecksumError, FetchError, UnsafeArchiveError, UnverifiedError
from lrfr.data.fetch.prepare import parser, prepare, run
from lrfr.data.loaders import load_pairs
from lrfr.io import atomic_folder

PAYLOAD = bytes(range(256)) * 400  # 102400 bytes


class RangeHandler(BaseHTTPRequestHandler):
    """Serves ``server.files``; honours ``Range: bytes=N-`` unless ``server.honour_range`` is False;
    stops after ``server.cut`` body bytes (a dropped connection) when set."""

    def do_GET(self) -> None:
        server = self.server
        server.ranges.append(self.headers.get("Range"))
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start, status = 0, 200
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and server.honour_range:
            start, status = int(match[1]), 206
            if start >= len(data):
                self.send_response(416)
                if server.announce_length:
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        body = data[start:]
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body if server.cut is None else body[: server.cut])
        self.close_connection = True

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.files = {"/data.bin": PAYLOAD}
    httpd.ranges, httpd.honour_range, httpd.cut, httpd.announce_length = [], True, None, True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_whole_file(server, tmp_path):
    dest = download(server.url + "/data.bin", tmp_path / "data.bin")
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "data.bin.part").exists()
    assert server.ranges == [None]


def test_download_resumes_partial_file_with_range_request(server, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:1000])
    dest = download(server.url + "/data.bin", tmp_path / "data.bin")
    assert server.ranges == ["bytes=1000-"]
    assert dest.read_bytes() == PAYLOAD


def test_download_restarts_when_server_ignores_range(server, tmp_path):
    server.honour_range = False
    (tmp_path / "data.bin.part").write_bytes(b"x" * 1000)
    dest = download(server.url + "/data.bin", tmp_path / "data.bin")
    assert dest.read_bytes() == PAYLOAD


def test_complete_part_file_with_416_is_finished(server, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD)
    assert download(server.url + "/data.bin", tmp_path / "data.bin").read_bytes() == PAYLOAD


@pytest.mark.parametrize("announce_length", [True, False])
@pytest.mark.parametrize("junk", [len(PAYLOAD) + 5, len(PAYLOAD)])
def test_junk_part_answered_416_is_never_promoted(server, tmp_path, announce_length, junk):
    """A ``.part`` the server cannot resume (416) becomes the file only when the server's announced
    length equals its size; a longer one, or any one when no length is announced (a source publishing
    neither size nor checksum, like XQLFW), is discarded and the file downloaded anew."""
    server.announce_length = announce_length
    (tmp_path / "data.bin.part").write_bytes(b"j" * junk)
    dest = download(server.url + "/data.bin", tmp_path / "data.bin")
    promoted = announce_length and junk == len(PAYLOAD)
    assert dest.read_bytes() == (b"j" * junk if promoted else PAYLOAD)
    assert server.ranges == ([f"bytes={junk}-"] if promoted else [f"bytes={junk}-", None])
    assert not (tmp_path / "data.bin.part").exists()


def test_interrupted_download_keeps_part_and_resumes(server, tmp_path):
    server.cut = 30000
    with pytest.raises(FetchError, match=r"stopped at 30000 of 102400 bytes.*kept, rerun to resume"):
        download(server.url + "/data.bin", tmp_path / "data.bin")
    assert not (tmp_path / "data.bin").exists()
    assert (tmp_path / "data.bin.part").stat().st_size == 30000
    server.cut = None
    assert download(server.url + "/data.bin", tmp_path / "data.bin").read_bytes() == PAYLOAD
    assert server.ranges[-1] == "bytes=30000-"


def test_http_error_names_url(server, tmp_path):
    with pytest.raises(FetchError, match=r"missing\.bin failed: HTTP 404"):
        download(server.url + "/missing.bin", tmp_path / "missing.bin")


def test_fetch_file_verifies_sha256_and_md5(server, tmp_path):
    remote = RemoteFile("data.bin", server.url + "/data.bin", len(PAYLOAD), sha(PAYLOAD), hashlib.md5(PAYLOAD).hexdigest())
    assert fetch_file(remote, tmp_path).read_bytes() == PAYLOAD


def test_size_mismatch_deletes_the_download(server, tmp_path):
    remote = RemoteFile("data.bin", server.url + "/data.bin", size=len(PAYLOAD) + 1, sha256=sha(PAYLOAD))
    with pytest.raises(ChecksumError, match=rf"has {len(PAYLOAD)} bytes, expected {len(PAYLOAD) + 1}.*deleted"):
        fetch_file(remote, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_checksum_mismatch_deletes_the_download(server, tmp_path):
    remote = RemoteFile("data.bin", server.url + "/data.bin", sha256="0" * 64)
    with pytest.raises(ChecksumError, match=rf"sha256 is {sha(PAYLOAD)}, expected 0{{64}}"):
        fetch_file(remote, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_oversized_part_is_discarded_before_resuming(server, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(b"y" * (len(PAYLOAD) + 5))
    remote = RemoteFile("data.bin", server.url + "/data.bin", size=len(PAYLOAD), sha256=sha(PAYLOAD))
    assert fetch_file(remote, tmp_path).read_bytes() == PAYLOAD


def test_unverified_file_reports_sha256_until_accepted(server, tmp_path):
    remote = RemoteFile("data.bin", server.url + "/data.bin")
    with pytest.raises(UnverifiedError, match=rf"sha256 {sha(PAYLOAD)}.*--accept-unverified"):
        fetch_file(remote, tmp_path)
    assert (tmp_path / "data.bin").exists()  # complete, just not verified: kept, re-checked on every use
    assert fetch_file(remote, tmp_path, accept_unverified=True).read_bytes() == PAYLOAD
    assert server.ranges == [None]


def test_user_file_with_bad_checksum_is_kept(tmp_path):
    path = tmp_path / "archive.zip"
    path.write_bytes(b"abc")
    with pytest.raises(ChecksumError, match="archive.zip: md5 is"):
        verify(path, RemoteFile("archive.zip", md5="f" * 32))
    assert path.read_bytes() == b"abc"


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as handle:
        for name, data in members.items():
            handle.writestr(name, data)
    return path


def make_tar(path: Path, members: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as handle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            handle.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/abs/evil.txt", "C:/evil.txt", "..\\evil.txt"])
def test_zip_slip_is_refused_before_writing(tmp_path, name):
    archive = make_zip(tmp_path / "bad.zip", {"ok.txt": b"fine", name: b"evil"})
    target = tmp_path / "out" / "inner"
    target.mkdir(parents=True)
    with pytest.raises(UnsafeArchiveError, match="refusing member"):
        unpack(archive, target)
    assert not list((tmp_path / "out").rglob("*.txt"))
    assert not (tmp_path / "evil.txt").exists()


def test_tar_slip_and_links_are_refused(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(UnsafeArchiveError, match=r"'\.\./evil\.txt'"):
        unpack(make_tar(tmp_path / "bad.tar.gz", {"../evil.txt": b"x"}), target)
    link = tmp_path / "link.tar"
    with tarfile.open(link, "w") as handle:
        info = tarfile.TarInfo("passwd")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        handle.addfile(info)
    with pytest.raises(UnsafeArchiveError, match="only files and folders"):
        unpack(link, target)
    assert not (tmp_path / "evil.txt").exists()
    assert not (target / "passwd").exists()


def test_unpack_strips_a_single_top_folder_unless_kept(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"tinyface/Training_Set/1_1.jpg": b"1", "tinyface/readme.txt": b"r"})
    (tmp_path / "stripped").mkdir()
    unpack(archive, tmp_path / "stripped")
    assert sorted(p.name for p in (tmp_path / "stripped").iterdir()) == ["Training_Set", "readme.txt"]
    tgz = make_tar(tmp_path / "lfw.tgz", {"lfw/A_B/A_B_0001.jpg": b"img"})
    (tmp_path / "kept").mkdir()
    unpack(tgz, tmp_path / "kept", keep_roots=["lfw"])
    assert (tmp_path / "kept" / "lfw" / "A_B" / "A_B_0001.jpg").read_bytes() == b"img"


def test_interrupted_unpack_leaves_no_final_folder(tmp_path):
    good = make_tar(tmp_path / "full.tar.gz", {f"dir/f{i}.bin": bytes(5000) + bytes([i]) for i in range(20)})
    truncated = tmp_path / "cut.tar.gz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    final = tmp_path / "data" / "set"
    with pytest.raises(FetchError, match=r"cannot unpack .*cut\.tar\.gz.*delete .*cut\.tar\.gz"):
        with atomic_folder(final) as work:
            unpack(truncated, work)
    assert not final.exists()
    assert not (tmp_path / "data" / ".set.partial").exists()


def test_partial_folder_of_a_killed_run_is_replaced(tmp_path):
    stale = tmp_path / ".set.partial"
    stale.mkdir()
    (stale / "half.bin").write_bytes(b"half")
    with atomic_folder(tmp_path / "set") as work:
        (work / "done.txt").write_text("ok")
    assert sorted(p.name for p in (tmp_path / "set").iterdir()) == ["done.txt"]
    assert not stale.exists()
    with pytest.raises(FileExistsError, match="already exists"):
        with atomic_folder(tmp_path / "set"):
            pass


def jpeg(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 10), (shade, shade, shade)).save(buffer, format="JPEG")
    return buffer.getvalue()


TINYFACE_MEMBERS = {
    "tinyface/Training_Set/1/1_1.jpg": jpeg(10),
    "tinyface/Training_Set/1/1_2.jpg": jpeg(20),
    "tinyface/Testing_Set/Probe/2_1.jpg": jpeg(30),
    "tinyface/Testing_Set/Gallery_Match/2_2.jpg": jpeg(40),
    "tinyface/Testing_Set/Gallery_Distractor/0.jpg": jpeg(50),
}


def test_prepare_from_user_archive(tmp_path):
    archive = make_zip(tmp_path / "my_tinyface.zip", TINYFACE_MEMBERS)
    with pytest.raises(UnverifiedError, match="my_tinyface.zip"):
        prepare("tinyface", tmp_path / "data", [archive])
    root = prepare("tinyface", tmp_path / "data", [archive], accept_unverified=True)
    assert root == tmp_path / "data" / "tinyface"
    assert (root / "Testing_Set" / "Gallery_Distractor" / "0.jpg").read_bytes() == jpeg(50)
    assert prepare("tinyface", tmp_path / "data") == root  # already prepared: only checked


def test_prepare_with_wrong_layout_leaves_nothing(tmp_path):
    members = {k: v for k, v in TINYFACE_MEMBERS.items() if "Probe" not in k}
    archive = make_zip(tmp_path / "my_tinyface.zip", members)
    with pytest.raises(LayoutError, match="do not unpack to its layout; nothing was kept.*missing Testing_Set/Probe"):
        prepare("tinyface", tmp_path / "data", [archive], accept_unverified=True)
    assert list((tmp_path / "data").iterdir()) == []


def test_prepare_gated_dataset_without_archive_explains_access(tmp_path):
    with pytest.raises(FetchError, match="SCface cannot be downloaded here.*release agreement"):
        prepare("scface", tmp_path)
    with pytest.raises(ValueError, match="unknown dataset 'nope'; expected one of"):
        prepare("nope", tmp_path)


def test_prepare_downloads_and_verifies(server, tmp_path, monkeypatch):
    tgz = make_tar(
        tmp_path / "lfw.tgz", {"lfw/A_B/A_B_0001.jpg": jpeg(1), "lfw/A_B/A_B_0002.jpg": jpeg(2), "lfw/C_D/C_D_0001.jpg": jpeg(3)}
    ).read_bytes()
    pairs = b"1\t1\nA_B\t1\t2\nA_B\t1\tC_D\t1\n"
    server.files.update({"/lfw.tgz": tgz, "/pairs.txt": pairs})
    spec = dataclasses.replace(
        catalogue.SOURCES["lfw"],
        files=(
            RemoteFile("lfw.tgz", server.url + "/lfw.tgz", len(tgz), sha(tgz)),
            RemoteFile("pairs.txt", server.url + "/pairs.txt", sha256=sha(pairs)),
        ),
    )
    monkeypatch.setitem(catalogue.SOURCES, "lfw", spec)
    root = prepare("lfw", tmp_path / "data")
    assert (root / "pairs.txt").read_bytes() == pairs
    assert (root / "A_B" / "A_B_0002.jpg").read_bytes() == jpeg(2)  # the archive's lfw/ folder is stripped
    assert sorted(p.name for p in (tmp_path / "data" / "downloads").iterdir()) == ["lfw.tgz", "pairs.txt"]
    assert len(load_pairs(root, verify=False).pairs) == 2


def test_sources_checksums_are_well_formed():
    for spec in catalogue.SOURCES.values():
        for remote in spec.files:
            assert remote.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", remote.sha256)
            assert remote.md5 is None or re.fullmatch(r"[0-9a-f]{32}", remote.md5)


def test_cli_help_has_access_instructions_and_errors_exit_cleanly(tmp_path, capsys):
    args = parser("qmul_survface", "Prepare it.").parse_args(["--data-root", str(tmp_path)])
    assert "qmul-survface.github.io" in parser("qmul_survface", "Prepare it.").format_help()
    with pytest.raises(SystemExit, match="error: QMUL-SurvFace cannot be downloaded here"):
        run("qmul_survface", args)
    archive = make_zip(tmp_path / "my_tinyface.zip", TINYFACE_MEMBERS)
    args = parser("tinyface", "").parse_args(["--data-root", str(tmp_path / "d"), "--archive", str(archive)])
    with pytest.raises(SystemExit, match=r"error: no published checksum is known for my_tinyface.zip"):
        run("tinyface", args)
    args.accept_unverified = True
    assert run("tinyface", args) == tmp_path / "d" / "tinyface"
    assert "TinyFace is ready in" in capsys.readouterr().out


def test_detect_and_the_catalogue_do_not_load_the_downloader():
    code = ("import sys, lrfr.data.detect, lrfr.data.fetch.catalogue; "
            "print(sorted(m for m in sys.modules if m.startswith('lrfr.data.fetch')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['lrfr.data.fetch', 'lrfr.data.fetch.catalogue']"
