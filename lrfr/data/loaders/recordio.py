"""CASIA-WebFace / MS1M as insightface distributes them: ``train.rec`` + ``train.idx`` (MXNet RecordIO), read without mxnet.

Format (dmlc-core RecordIO as written by ``mx.recordio.MXIndexedRecordIO``):

* ``train.idx``: text lines ``<key>\\t<byte offset>``.
* ``train.rec``: records, each ``uint32 magic 0xced7230a``, ``uint32 lrec`` (upper 3 bits: part flag
  0 = whole, 1 = first, 2 = middle, 3 = last part of a record split where its data contained the
  magic; lower 29 bits: length), the data, zero padding to a multiple of 4 bytes. A split record's
  parts are joined with the magic number between them.
* Record data: ``IRHeader`` = ``flag uint32, label float32, id uint64, id2 uint64`` (24 bytes,
  little-endian); when ``flag > 0`` the label is instead ``flag`` float32 values following the
  header. Then the encoded image (JPEG).
* insightface's record 0 is a header whose label ``(a, b)`` says that records ``1..a-1`` are images
  and ``a..b-1`` are identity records (one per class, label = its image range).
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from lrfr.data import DATASETS
from lrfr.data.base import CorruptImageError, LayoutError, check_layout, image_size, read_image, to_tensor
from lrfr.data.degrade import resize

MAGIC = 0xCED7230A
_LENGTH_BITS = 29
_RECORD = struct.Struct("<II")
_IRHEADER = struct.Struct("<IfQQ")


@dataclass(frozen=True)
class IRHeader:
    """MXNet's image record header; ``label`` is a float, or an array when ``flag > 0``."""

    flag: int
    label: float | np.ndarray
    id: int
    id2: int

    @property
    def class_label(self) -> int:
        """The identity: the label, or the first label value of a multi-label header."""
        return int(self.label if self.flag == 0 else self.label[0])


def unpack(data: bytes) -> tuple[IRHeader, bytes]:
    """Split one record's data into its :class:`IRHeader` and the payload (image bytes)."""
    if len(data) < _IRHEADER.size:
        raise ValueError(f"record of {len(data)} bytes is shorter than the {_IRHEADER.size}-byte IRHeader")
    flag, label, record_id, record_id2 = _IRHEADER.unpack_from(data)
    payload = data[_IRHEADER.size :]
    if flag > 0:
        if len(payload) < 4 * flag:
            raise ValueError(f"IRHeader says {flag} labels but only {len(payload)} bytes follow")
        label = np.frombuffer(payload[: 4 * flag], dtype="<f4").copy()
        payload = payload[4 * flag :]
    return IRHeader(flag, label, record_id, record_id2), payload


def read_index(path: Path) -> dict[int, int]:
    """``key -> byte offset`` from an ``.idx`` file; malformed lines raise :class:`LayoutError` naming the line."""
    index = {}
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError as error:
        raise LayoutError(f"{path} is not ASCII text ({error}); expected lines '<key>\\t<offset>'") from None
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("\t")
        if len(fields) != 2 or not all(f.strip().isdigit() for f in fields):
            raise LayoutError(f"{path} line {number}: expected '<key>\\t<offset>', found {line!r}")
        index[int(fields[0])] = int(fields[1])
    return index


class RecordIOReader:
    """Random access to an indexed RecordIO file; the file is opened lazily once per process (DataLoader-safe)."""

    def __init__(self, rec_path: str | Path, idx_path: str | Path) -> None:
        self.rec_path = Path(rec_path)
        self.index = read_index(Path(idx_path))
        self._file: BinaryIO | None = None
        self._pid: int | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_file": None, "_pid": None}

    def _handle(self) -> BinaryIO:
        if self._file is None or self._pid != os.getpid():
            self._file, self._pid = open(self.rec_path, "rb"), os.getpid()
        return self._file

    def read(self, key: int) -> bytes:
        """The data of record ``key`` (parts of a split record joined with the magic number)."""
        if key not in self.index:
            raise KeyError(f"{self.rec_path}: no record {key} in its index")
        handle = self._handle()
        handle.seek(self.index[key])
        parts = []
        while True:
            header = handle.read(_RECORD.size)
            if len(header) < _RECORD.size:
                raise ValueError(f"{self.rec_path}: record {key} is truncated")
            magic, lrec = _RECORD.unpack(header)
            if magic != MAGIC:
                raise ValueError(f"{self.rec_path}: record {key} at offset {self.index[key]} does not start with magic 0x{MAGIC:08x}")
            flag, length = lrec >> _LENGTH_BITS, lrec & ((1 << _LENGTH_BITS) - 1)
            data = handle.read(length)
            if len(data) < length:
                raise ValueError(f"{self.rec_path}: record {key} is truncated ({len(data)} of {length} bytes)")
            handle.read(-length % 4)
            parts.append(data)
            if flag in (0, 3):
                return MAGIC.to_bytes(4, "little").join(parts)


def image_keys(header: IRHeader, reader: RecordIOReader) -> tuple[list[int], int]:
    """The image records and class count that insightface's header record 0 declares, checked against the index.

    Its label ``(a, b)`` says records ``1..a-1`` are images and ``a..b-1`` identities: ``a`` and ``b``
    must be whole numbers with ``2 <= a < b`` and every image record must be in the index.
    """
    label = np.asarray(header.label, dtype=np.float64).ravel()
    declared = f"{reader.rec_path}: header record 0 has label {label.tolist()}"
    expected = "expected (a, b) with records 1..a-1 the images and a..b-1 the identities, 2 <= a < b"
    if len(label) < 2 or not np.isfinite(label[:2]).all() or (label[:2] != np.round(label[:2])).any():
        raise LayoutError(f"{declared}; {expected}")
    end_of_images, end_of_identities = (int(v) for v in label[:2])
    if not 2 <= end_of_images < end_of_identities:
        raise LayoutError(f"{declared}; {expected}")
    missing = end_of_images - 1 - sum(1 for key in reader.index if 1 <= key < end_of_images)
    if missing:
        raise LayoutError(
            f"{declared}, but {missing} of its {end_of_images - 1} image records 1..{end_of_images - 1} are not in "
            f"the index ({len(reader.index)} records); {expected}, all listed in train.idx"
        )
    return list(range(1, end_of_images)), end_of_identities - end_of_images


@DATASETS.register("recordio")
class RecordIODataset(Dataset):
    """insightface's ``train.rec``/``train.idx`` as ``{"image", "label", "index"}`` items (like FaceDataset).

    Images are decoded when an item is read; ``verify=True`` decodes all of them up front (off by
    default: MS1M holds 5.8M images) and with ``skip_corrupt`` drops unreadable records, listing
    them (``"<rec> record <key>"``) on ``corrupt``.
    """

    def __init__(
        self,
        root: str | Path,
        input_size: int | tuple[int, int] = 112,
        dataset: str = "RecordIO",
        verify: bool = False,
        skip_corrupt: bool = False,
    ) -> None:
        self.root = Path(root)
        check_layout(dataset, self.root, ["train.rec", "train.idx"])
        idx = self.root / "train.idx"
        self.reader = RecordIOReader(self.root / "train.rec", idx)
        self.input_size = input_size
        self.num_classes: int | None = None  # set below; labels are checked against it once known
        first = self._header() if 0 in self.reader.index else None
        if first is not None and first.flag > 0:
            self.keys, self.num_classes = image_keys(first, self.reader)
        else:
            self.keys = sorted(self.reader.index)
            if not self.keys:
                raise LayoutError(f"{dataset}: {self.reader.rec_path} has no records (its index {idx} is empty)")
            self.num_classes = int(self.labels.max()) + 1
        self.corrupt: tuple[str, ...] = self._verify(skip_corrupt) if verify else ()

    def _header(self) -> IRHeader:
        try:
            return unpack(self.reader.read(0))[0]
        except ValueError as error:
            raise LayoutError(f"{self.reader.rec_path}: cannot read header record 0: {error}") from None

    def _verify(self, skip_corrupt: bool) -> tuple[str, ...]:
        """Decode every image once; raise on the first unreadable record, or drop and list them."""
        good, corrupt = [], []
        for index in tqdm(range(len(self.keys)), desc=f"{self.reader.rec_path}: checking", leave=False, disable=len(self.keys) < 2000):
            try:
                self.image(index)
            except CorruptImageError:
                if not skip_corrupt:
                    raise
                corrupt.append(self._source(index))
            else:
                good.append(self.keys[index])
        if not good:
            raise CorruptImageError(f"every one of the {len(corrupt)} records of {self.reader.rec_path} is unreadable, e.g. {corrupt[0]}")
        self.keys = good
        return tuple(corrupt)

    def __len__(self) -> int:
        return len(self.keys)

    def _record(self, index: int) -> tuple[IRHeader, bytes]:
        key = self.keys[index]
        try:
            header, payload = unpack(self.reader.read(key))
            label = header.class_label
        except (KeyError, ValueError, OverflowError) as error:
            raise CorruptImageError(f"cannot read {self.reader.rec_path} record {key}: {error}") from None
        if label < 0 or (self.num_classes is not None and label >= self.num_classes):
            raise CorruptImageError(
                f"{self.reader.rec_path} record {key}: label {label} is not a class index "
                f"(expected 0..{'n-1' if self.num_classes is None else self.num_classes - 1})"
            )
        return header, payload

    def _source(self, index: int) -> str:
        return f"{self.reader.rec_path} record {self.keys[index]}"

    def image(self, index: int) -> np.ndarray:
        """The decoded image of item ``index`` at its stored size."""
        return read_image(io.BytesIO(self._record(index)[1]), self._source(index))

    def native_size(self, index: int) -> tuple[int, int]:
        """``(h, w)`` of item ``index`` from the image header (no decoding)."""
        return image_size(io.BytesIO(self._record(index)[1]), self._source(index))

    @property
    def labels(self) -> np.ndarray:
        """Every item's label (reads all record headers)."""
        return np.array([self._record(i)[0].class_label for i in range(len(self))], dtype=np.int64)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        header, payload = self._record(index)
        image = resize(to_tensor(read_image(io.BytesIO(payload), self._source(index))), self.input_size)
        return {"image": image, "label": torch.tensor(header.class_label), "index": torch.tensor(index)}
