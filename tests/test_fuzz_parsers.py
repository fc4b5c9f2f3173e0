"""Fuzzing the parsers of dataset files (issue 17): random bytes and mutations of valid files give either
a result or the project's own documented error, never another exception.

Parsers: LFW-format pair lists, .mat name/id tables, RecordIO (header record, index, records) and
verification .bin pickles (the restricted unpickler). Examples are derandomized (the same inputs on
every run) and few, to keep ``make test`` fast; ``LRFR_FUZZ_EXAMPLES=5000`` runs more. Each test runs
under an address-space cap, so that a parser allocating what a garbled length field declares fails
(and is reported) instead of exhausting a shared machine's memory.
"""

from __future__ import annotations

import os
import resource
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrfr.data import CorruptImageError, LayoutError, RecordIODataset, VerificationBinError, load_pairs
from lrfr.data.loaders import load_verification_bin, parse_pairs_file
from lrfr.data.loaders.common import listed_entries, read_mat_table
from tests.fixtures_data import cell, jpeg_bytes, write_image, write_mat, write_recordio, write_verification_bin

FUZZ = settings(
    max_examples=int(os.environ.get("LRFR_FUZZ_EXAMPLES", 60)), deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SPARE_ADDRESS_SPACE = 3 << 30  # bytes a parser may map beyond what the test process already has


@contextmanager
def memory_cap() -> Iterator[None]:
    """Cap this process's address space a few GiB above its current size (Linux), restoring it after."""
    if not sys.platform.startswith("linux"):
        yield
        return
    status = Path("/proc/self/status").read_text()
    current = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmSize:"))) * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = current + SPARE_ADDRESS_SPACE
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def apply(valid: bytes, edits: list[tuple]) -> bytes:
    """``valid`` after byte edits: set a byte, cut the tail, insert bytes, delete a run."""
    data = bytearray(valid)
    for kind, position, value in edits:
        position = position % (len(data) + 1)
        if kind == "set" and position < len(data):
            data[position] = value % 256
        elif kind == "cut":
            del data[position:]
        elif kind == "insert":
            data[position:position] = value
        elif kind == "delete":
            del data[position : position + value % 32 + 1]
    return bytes(data)


def mutations_of(valid: bytes) -> st.SearchStrategy[bytes]:
    """A valid file with 1-4 random edits, or random bytes of up to 512."""
    edit = st.one_of(
        st.tuples(st.just("set"), st.integers(0, 1 << 20), st.integers(0, 255)),
        st.tuples(st.just("cut"), st.integers(0, 1 << 20), st.none()),
        st.tuples(st.just("insert"), st.integers(0, 1 << 20), st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("delete"), st.integers(0, 1 << 20), st.integers(0, 255)),
    )
    return st.one_of(st.lists(edit, min_size=1, max_size=4).map(lambda edits: apply(valid, edits)), st.binary(max_size=512))


def result_or(errors: tuple[type[BaseException], ...], parse: Callable[[], object]) -> None:
    """Run ``parse``; one of the project's ``errors`` is fine, any other exception fails the test."""
    try:
        parse()
    except errors as error:
        assert str(error), f"{type(error).__name__} without a message"


# ------------------------------------------------------------------------------- pair lists
VALID_PAIRS = b"2 1\nAnn\t1\t2\nAnn\t1\tBob\t1\nBob\t1\t2\nBob   2   Ann 2\n"
TOKENS = st.sampled_from(["Ann", "Bob", "1", "2", "0", "-1", "10", "..", "../Ann", "/etc", "a/b", "\u00b2", "1_0", "\x00", "9" * 12])
PAIR_TEXT = st.lists(st.lists(st.one_of(TOKENS, st.text(max_size=4)), max_size=5).map(" ".join), max_size=6).map(
    lambda lines: "\n".join(["2 1", *lines]).encode("utf-8", "surrogatepass")
)


@pytest.fixture(scope="module")
def lfw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lfw")
    for name in ("Ann", "Bob"):
        for number in (1, 2):
            write_image(root / name / f"{name}_{number:04d}.jpg", seed=number)
    return root


@FUZZ
@given(content=st.one_of(mutations_of(VALID_PAIRS), PAIR_TEXT))
def test_pair_lists(lfw, content):
    (lfw / "pairs.txt").write_bytes(content)
    with memory_cap():
        result_or((LayoutError,), lambda: parse_pairs_file(lfw / "pairs.txt"))
        result_or((LayoutError, CorruptImageError), lambda: load_pairs(lfw))


# ------------------------------------------------------------------------------- .mat tables
def valid_mat(folder: Path, compressed: bool) -> bytes:
    path = folder / f"valid-{compressed}.mat"
    write_mat(path, probe_set=cell(["1_1.jpg", "1_2.jpg", "2_1.jpg"]), probe_ids=np.array([1, 1, 2]))
    if compressed:
        import scipy.io

        variables = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
        scipy.io.savemat(path, variables, do_compression=True)
    return path.read_bytes()


@pytest.fixture(scope="module")
def probe_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tinyface") / "Probe"
    for name in ("1_1.jpg", "1_2.jpg", "2_1.jpg"):
        write_image(folder / name)
    return folder


def _mat_inputs() -> st.SearchStrategy[bytes]:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        return st.one_of(mutations_of(valid_mat(Path(folder), False)), mutations_of(valid_mat(Path(folder), True)))


@FUZZ
@given(content=_mat_inputs())
def test_mat_tables(probe_folder, content):
    mat = probe_folder.parent / "probe_img_ID_pairs.mat"
    mat.write_bytes(content)
    with memory_cap():
        result_or((LayoutError,), lambda: read_mat_table(mat, "TinyFace"))
        result_or((LayoutError,), lambda: listed_entries(probe_folder, mat, "TinyFace"))


# ------------------------------------------------------------------------------- RecordIO
@pytest.fixture(scope="module")
def valid_recordio(tmp_path_factory) -> tuple[bytes, bytes]:
    root = tmp_path_factory.mktemp("valid-rec")
    write_recordio(root, [0, 0, 1], [jpeg_bytes(8, 8, seed=i) for i in range(3)])
    return (root / "train.rec").read_bytes(), (root / "train.idx").read_bytes()


def read_everything(root: Path) -> None:
    data = RecordIODataset(root)
    for index in range(min(len(data), 8)):
        data[index]
        data.native_size(index)


@FUZZ
@given(data=st.data())
def test_recordio(tmp_path_factory, valid_recordio, data):
    rec, idx = valid_recordio
    which = data.draw(st.sampled_from(["rec", "idx", "both"]))
    root = tmp_path_factory.mktemp("rec", numbered=True)
    (root / "train.rec").write_bytes(data.draw(mutations_of(rec)) if which != "idx" else rec)
    (root / "train.idx").write_bytes(data.draw(mutations_of(idx)) if which != "rec" else idx)
    with memory_cap():
        result_or((LayoutError, CorruptImageError), lambda: read_everything(root))
        result_or((LayoutError, CorruptImageError), lambda: RecordIODataset(root, verify=True, skip_corrupt=True))


# ------------------------------------------------------------------------------- verification .bin
@pytest.fixture(scope="module")
def bin_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bin") / "lfw.bin"


def _bin_inputs() -> st.SearchStrategy[bytes]:
    import tempfile

    images = [jpeg_bytes(8, 8, seed=i) for i in range(4)]
    with tempfile.TemporaryDirectory() as folder:
        valid = [write_verification_bin(Path(folder) / f"{p}.bin", images, [True, False], p).read_bytes() for p in (2, 4)]
        array = write_verification_bin(Path(folder) / "a.bin", images, np.array([True, False])).read_bytes()
    return st.one_of(*(mutations_of(content) for content in (*valid, array)))


@FUZZ
@given(content=_bin_inputs())
def test_verification_bins(bin_path, content):
    bin_path.write_bytes(content)

    def read() -> None:
        data = load_verification_bin(bin_path)
        for index in range(min(len(data.images), 4)):
            data.image(index)

    with memory_cap():
        result_or((VerificationBinError, CorruptImageError), read)
