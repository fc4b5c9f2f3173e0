"""Reading a dataset's ``.mat`` list safely: the file's framing is checked here, then scipy decodes it.

scipy's MAT reader is not hardened for untrusted input (its documentation says so): a garbled header
can crash the process (a segmentation fault, seen with scipy 1.17 on a dimensions tag of 0 bytes)
or make it allocate what a length field declares. Before ``scipy.io.loadmat`` sees a file, this
module walks its MAT v5 structure (MathWorks, "MAT-File Format", ch. 1: 128-byte header, then data
elements of an 8-byte tag, or a 4-byte tag for the small element format, and data padded to 8 bytes)
and refuses it unless every element fits inside its parent, every array has its flags, at least two
non-negative dimensions of at most :data:`MAX_MAT_ELEMENTS` elements and a name, and the cells,
character and numeric arrays a name/id list is made of hold exactly the data their dimensions
declare. Compressed variables are inflated (at most :data:`MAX_INFLATED_BYTES`) and checked the same
way. Top-level variables of other classes (structs, sparse, objects) are checked only for their header
and size, and are not decoded.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import numpy as np
import scipy.io

from lrfr.data.base import LayoutError

#: Most elements one array of a dataset's .mat list may declare (TinyFace's largest list has 153,428 names).
MAX_MAT_ELEMENTS = 20_000_000
#: Largest size a compressed variable may inflate to (a zlib bomb is refused, not inflated).
MAX_INFLATED_BYTES = 1 << 28
_HEADER = 128
_MATRIX, _COMPRESSED = 14, 15
_INT8, _INT32, _UINT32, _UTF8 = 1, 5, 6, 16
# data type -> item size: int8 uint8 int16 uint16 int32 uint32 single double int64 uint64 utf8 utf16 utf32
_ITEM = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8, 16: 1, 17: 2, 18: 4}
_CELL, _CHAR = 1, 4
_NUMERIC = range(6, 16)  # double, single, int8 ... uint64
_COMPLEX = 0x08


class _Malformed(ValueError):
    """The framing check failed; the message says where and what."""


def read_mat(path: Path, dataset: str) -> dict[str, np.ndarray]:
    """The cell, character and numeric variables of a MAT v5 (v6/v7) file, after the framing check.

    :class:`LayoutError` naming the file and what is wrong for anything else: another format (v4,
    v7.3 HDF5), a garbled or truncated structure, or a decoding failure.
    """
    expected = "expected a MATLAB v5/v7 file (save -v7) holding a cell array of image names"
    try:
        names = _variables(Path(path).read_bytes())
        variables = scipy.io.loadmat(path, variable_names=names) if names else {}
    except (_Malformed, OSError) as error:
        raise LayoutError(f"{dataset}: cannot read .mat file {path}: {error}; {expected}") from None
    except Exception as error:  # what scipy raises on a file that passed the check
        raise LayoutError(f"{dataset}: cannot read .mat file {path} ({type(error).__name__}: {error}); {expected}") from None
    return {name: value for name, value in variables.items() if not name.startswith("__")}


def _variables(data: bytes) -> list[str]:
    """The names of the top-level variables to decode, after checking the whole file's framing."""
    if len(data) < _HEADER:
        raise _Malformed(f"{len(data)} bytes is shorter than the 128-byte MAT header")
    if data[126:128] not in (b"IM", b"MI"):
        raise _Malformed("no MAT v5 header (a MATLAB v4 file, or not a .mat file at all)")
    order = "<" if data[126:128] == b"IM" else ">"
    version = struct.unpack_from(order + "H", data, 124)[0]
    if version != 0x0100:
        kind = "a MATLAB v7.3 (HDF5) file" if version == 0x0200 else f"MAT version 0x{version:04x}"
        raise _Malformed(f"{kind}, which this reader does not decode")
    names, position = [], _HEADER
    while position < len(data):
        kind, start, end, position = _tag(data, position, len(data), order, padded=False)
        if kind == _COMPRESSED:
            inflated = _inflate(data[start:end])
            kind, start, end, after = _tag(inflated, 0, len(inflated), order, padded=False)
            if kind != _MATRIX or after != len(inflated):
                raise _Malformed("a compressed variable does not inflate to exactly one array")
            name, decodable = _matrix(inflated, start, end, order, top=True)
        elif kind == _MATRIX:
            name, decodable = _matrix(data, start, end, order, top=True)
        else:
            raise _Malformed(f"an element of data type {kind} at byte {start - 8} where a variable should be")
        if decodable:
            names.append(name)
    return names


def _tag(data: bytes, position: int, end: int, order: str, padded: bool = True) -> tuple[int, int, int, int]:
    """``(data type, data start, data end, next element)`` of the element at ``position`` (inside ``end``)."""
    if position + 8 > end:
        raise _Malformed(f"an element at byte {position} is cut short")
    first, second = struct.unpack_from(order + "II", data, position)
    if first >> 16:  # small data element format: type and size share 4 bytes, data in the next 4
        kind, size, start = first & 0xFFFF, first >> 16, position + 4
        if size > 4:
            raise _Malformed(f"a small element at byte {position} declares {size} bytes (at most 4)")
        return kind, start, start + size, position + 8
    kind, size, start = first, second, position + 8
    stop = start + size
    following = stop + (-size % 8 if padded else 0)
    if following > end:
        raise _Malformed(f"an element at byte {position} declares {size} bytes; only {end - start} are left")
    return kind, start, stop, following


def _inflate(compressed: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        inflated = inflater.decompress(compressed, MAX_INFLATED_BYTES)
    except zlib.error as error:
        raise _Malformed(f"a compressed variable does not inflate ({error})") from None
    if inflater.unconsumed_tail:
        raise _Malformed(f"a compressed variable inflates to more than {MAX_INFLATED_BYTES:,} bytes")
    return inflated


def _matrix(data: bytes, start: int, end: int, order: str, top: bool) -> tuple[str, bool]:
    """Check one array (miMATRIX content from ``start`` to ``end``); return its name and whether to decode it."""
    if start == end and not top:
        return "", True  # an empty array in a cell
    kind, flags_at, flags_end, position = _tag(data, start, end, order)
    if kind != _UINT32 or flags_end - flags_at != 8:
        raise _Malformed(f"an array at byte {start} has no array-flags element")
    flags = struct.unpack_from(order + "I", data, flags_at)[0]
    array_class, complex_part = flags & 0xFF, bool(flags & (_COMPLEX << 8))
    kind, dims_at, dims_end, position = _tag(data, position, end, order)
    count_of_dims = (dims_end - dims_at) // 4
    if kind != _INT32 or (dims_end - dims_at) % 4 or count_of_dims < 2:
        raise _Malformed(f"an array at byte {start} has no dimensions element of two or more int32")
    dims = struct.unpack_from(f"{order}{count_of_dims}i", data, dims_at)
    count = math.prod(dims)
    if min(dims) < 0 or count > MAX_MAT_ELEMENTS:
        raise _Malformed(f"an array at byte {start} declares dimensions {dims} (at most {MAX_MAT_ELEMENTS:,} elements)")
    kind, name_at, name_end, position = _tag(data, position, end, order)
    if kind not in (_INT8, 2):
        raise _Malformed(f"an array at byte {start} has no name element")
    name = data[name_at:name_end].decode("latin1")
    if array_class == _CELL:
        for _ in range(count):
            kind, cell_start, cell_end, position = _tag(data, position, end, order)
            if kind != _MATRIX:
                raise _Malformed(f"a cell of the array at byte {start} is an element of data type {kind}, not an array")
            _matrix(data, cell_start, cell_end, order, top=False)
    elif array_class == _CHAR or array_class in _NUMERIC:
        for _ in range(2 if complex_part else 1):
            kind, part_start, part_end, position = _tag(data, position, end, order)
            item = _ITEM.get(kind)
            exact = not (array_class == _CHAR and kind == _UTF8)  # UTF-8 characters take 1-4 bytes
            if item is None or (exact and part_end - part_start != count * item):
                raise _Malformed(
                    f"the array at byte {start} declares {count} elements but holds {part_end - part_start} bytes "
                    f"of data type {kind}"
                )
    elif top:
        return name, False  # a struct, sparse or object variable: checked for size only, not decoded
    else:
        raise _Malformed(f"a cell of an array holds an array of class {array_class}; expected names or numbers")
    return name, True
