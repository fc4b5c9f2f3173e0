"""Builders of small hand-made dataset files for the loader tests: images, .mat tables, RecordIO, pickles."""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.io
from PIL import Image

MAGIC = 0xCED7230A


def image_array(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB image (smooth so that JPEG keeps it close)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.BILINEAR))


def jpeg_bytes(height: int, width: int, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image_array(height, width, seed)).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def write_image(path: Path, height: int = 16, width: int = 12, seed: int = 0) -> Path:
    """A JPEG (or PNG, by suffix) of the given size; parent folders are created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image_array(height, width, seed)).save(path)
    return path


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut a file to a fraction of its bytes (a JPEG whose header still reads but whose data does not)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def cell(names: Sequence[str], columns: int = 1) -> np.ndarray:
    values = np.empty(len(names), dtype=object)
    values[:] = list(names)
    return values.reshape(-1, columns)


def write_mat(path: Path, **variables: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, variables)
    return path


# ---------------------------------------------------------------------------------- RecordIO
def _record(data: bytes) -> bytes:
    """dmlc-core's record framing: split where the magic occurs at an aligned offset, pad to 4 bytes."""
    magic = struct.pack("<I", MAGIC)
    out, start = b"", 0
    for offset in range(0, len(data) - len(data) % 4, 4):
        if data[offset : offset + 4] == magic:
            flag = 1 if start == 0 else 2
            out += struct.pack("<II", MAGIC, (flag << 29) | (offset - start)) + data[start:offset]
            start = offset + 4
    flag = 0 if start == 0 else 3
    tail = data[start:]
    return out + struct.pack("<II", MAGIC, (flag << 29) | len(tail)) + tail + b"\0" * (-len(tail) % 4)


def pack(label: float | Sequence[float], payload: bytes = b"", record_id: int = 0) -> bytes:
    """An IRHeader (``flag, label, id, id2``) + payload, as ``mx.recordio.pack`` writes it."""
    if isinstance(label, (int, float)):
        return struct.pack("<IfQQ", 0, float(label), record_id, 0) + payload
    labels = np.asarray(label, dtype="<f4")
    return struct.pack("<IfQQ", len(labels), 0.0, record_id, 0) + labels.tobytes() + payload


def write_recordio(root: Path, labels: Sequence[int], images: Sequence[bytes], header: bool = True, record_ids: Sequence[int] | None = None) -> None:
    """``train.rec``/``train.idx`` as insightface writes them: record 0 the header, then images, then one
    record per identity holding its image range (labels must be sorted)."""
    root.mkdir(parents=True, exist_ok=True)
    record_ids = record_ids or [0] * len(images)
    records: list[tuple[int, bytes]] = []
    first = 1 if header else 0
    records += [(first + i, pack(float(label), image, rid)) for i, (label, image, rid) in enumerate(zip(labels, images, record_ids))]
    if header:
        classes = sorted(set(labels))
        identity_start = 1 + len(images)
        records.insert(0, (0, pack([identity_start, identity_start + len(classes)])))
        for k, label in enumerate(classes):
            members = [1 + i for i, value in enumerate(labels) if value == label]
            records.append((identity_start + k, pack([members[0], members[-1] + 1])))
    rec, index = b"", []
    for key, data in records:
        index.append(f"{key}\t{len(rec)}")
        rec += _record(data)
    (root / "train.rec").write_bytes(rec)
    (root / "train.idx").write_text("\n".join(index) + "\n")


# ------------------------------------------------------------------------------- pickles
def write_verification_bin(path: Path, images: Sequence[bytes], is_same: Sequence[bool] | np.ndarray, protocol: int = 4) -> Path:
    path.write_bytes(pickle.dumps((list(images), is_same if isinstance(is_same, np.ndarray) else list(is_same)), protocol=protocol))
    return path


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def write_malicious_bin(path: Path, marker: Path) -> Path:
    """A pickle that would run ``touch marker`` through os.system when loaded with plain pickle."""
    path.write_bytes(pickle.dumps(([_Exploit(marker)], [True])))
    return path
