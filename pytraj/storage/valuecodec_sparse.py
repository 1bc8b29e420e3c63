"""scipy sparse matrices and arrays in the value codec (see :mod:`pytraj.storage.valuecodec`).

::

    Z + u8 len + class name ("csr_matrix", "coo_array" ...) + u8 ndim + ndim x u64 shape
      + u8 layout + arrays
    layout 0 (csr, csc, bsr)   data, indices, indptr   (bsr: data holds the blocks)
    layout 1 (dia)             data, offsets
    layout 2 (coo, lil, dok)   data, then one coordinate array per dimension

Every format keeps its own structure (explicit zeros included) except lil and dok, which
go through coo. Decoded structures are checked in full before they are returned, because
scipy's compiled routines trust their indices.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import scipy.sparse as sp

from pytraj.storage.valuecodec_base import (
    Chunks,
    ValueDecodeError,
    array_chunks,
    malformed,
    read_array,
    unsupported,
)
from pytraj.storage.valuecodec_registry import ValueCodec, register_value_codec

__all__ = ["SPARSE_CLASSES", "decode_sparse", "encode_sparse", "sparse_problem"]

_FORMATS = ("csr", "csc", "coo", "bsr", "dia", "lil", "dok")
#: Names of the sparse classes that can be stored: every format, matrix and array.
SPARSE_CLASSES = frozenset(f"{fmt}_{kind}" for fmt in _FORMATS for kind in ("matrix", "array"))
_HINT = "convert it with scipy.sparse.csr_array(value)"


def sparse_problem(value: Any) -> tuple[str, str] | None:
    """Say why a scipy object cannot be stored.

    Returns
    -------
    tuple of (str, str) or None
        ``(what is wrong, how to fix it)``, or None when ``value`` can be stored.
    """
    name = type(value).__name__
    if name not in SPARSE_CLASSES or getattr(sp, name, None) is not type(value):
        return f"{type(value).__qualname__} is not a supported sparse class", _HINT
    if value.dtype.kind not in "biufc":
        return f"sparse data of dtype {value.dtype} is not supported", "use a numeric dtype"
    return None


def _enc_array(array: np.ndarray[Any, Any], out: Chunks) -> None:
    header, data = array_chunks(np.asarray(array))
    out.append(b"a" + header)
    out.append(data)


def _coords(coo: Any) -> tuple[np.ndarray[Any, Any], ...]:
    coords = getattr(coo, "coords", None)  # scipy >= 1.13; before: row and col
    return tuple(coords) if coords is not None else (coo.row, coo.col)


def encode_sparse(value: Any, out: Chunks, depth: int) -> None:
    """Append the encoding of a scipy sparse matrix or array to ``out``."""
    problem = sparse_problem(value)
    if problem is not None:
        raise unsupported(value, f"{problem[0]}; {problem[1]}")
    name = type(value).__name__
    shape = tuple(value.shape)
    fmt = value.format
    out.append(b"Z" + bytes([len(name)]) + name.encode("ascii") + bytes([len(shape)]))
    out.append(struct.pack(f"<{len(shape)}Q", *shape))
    if fmt in ("csr", "csc", "bsr") and len(shape) == 2:
        out.append(b"\x00")
        for part in (value.data, value.indices, value.indptr):
            _enc_array(part, out)
    elif fmt == "dia":
        out.append(b"\x01")
        _enc_array(value.data, out)
        _enc_array(value.offsets, out)
    else:
        coo = value if fmt == "coo" else value.tocoo()
        out.append(b"\x02")
        _enc_array(coo.data, out)
        for coordinate in _coords(coo):
            _enc_array(coordinate, out)


def _read_tagged_array(data: Any, pos: int, kinds: str) -> tuple[np.ndarray[Any, Any], int]:
    if pos >= len(data) or data[pos] != ord("a"):
        raise malformed("expected an array")
    array, pos = read_array(data, pos + 1)
    if array.dtype.kind not in kinds:
        raise malformed(f"unexpected dtype {array.dtype} in a sparse matrix")
    return array, pos


def decode_sparse(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    """Decode the sparse matrix whose ``Z`` tag is at ``pos``."""
    try:
        return _decode(data, pos + 1)
    except ValueDecodeError:
        raise
    except Exception as exc:  # scipy validates with many exception types
        raise malformed(f"{type(exc).__name__}: {exc}") from exc


def _decode(data: Any, pos: int) -> tuple[Any, int]:
    if pos >= len(data):
        raise malformed("truncated")
    end = pos + 1 + data[pos]
    name = bytes(data[pos + 1 : end]).decode("ascii")
    if name not in SPARSE_CLASSES:
        raise malformed(f"unknown sparse class {name!r}")
    cls = getattr(sp, name, None)
    if cls is None:
        raise malformed(f"this scipy has no {name}; a newer scipy reads it")
    if end + 2 > len(data):
        raise malformed("truncated")
    ndim = data[end]
    pos = end + 1
    if ndim > 2 or pos + 8 * ndim + 1 > len(data):
        raise malformed("bad sparse header")
    shape = struct.unpack_from(f"<{ndim}Q", data, pos)
    pos += 8 * ndim
    layout = data[pos]
    values, pos = _read_tagged_array(data, pos + 1, "biufc")
    if layout == 0:
        indices, pos = _read_tagged_array(data, pos, "iu")
        indptr, pos = _read_tagged_array(data, pos, "iu")
        result = cls((values, indices, indptr), shape=shape)
        result.check_format(full_check=True)
        return result, pos
    if layout == 1:
        offsets, pos = _read_tagged_array(data, pos, "iu")
        if values.ndim != 2 or offsets.ndim != 1 or len(offsets) != len(values):
            raise malformed("bad dia structure")
        return cls((values, offsets), shape=shape), pos
    if layout != 2:
        raise malformed(f"unknown sparse layout {layout}")
    coords = []
    for _ in range(ndim):
        coordinate, pos = _read_tagged_array(data, pos, "iu")
        if coordinate.ndim != 1 or len(coordinate) != len(values):
            raise malformed("coordinates and data of a sparse matrix differ in length")
        coords.append(coordinate)
    if values.ndim != 1:
        raise malformed("coo data must be 1-d")
    coo_class = sp.coo_array if name.endswith("_array") else sp.coo_matrix
    coo = coo_class((values, tuple(coords)), shape=shape)
    if name.startswith("coo"):
        return coo, pos
    return cls(coo), pos


register_value_codec(
    ValueCodec(
        library="scipy.sparse",
        type_module="scipy.sparse",
        tags=b"Z",
        encode=encode_sparse,
        decode=decode_sparse,
        problem=sparse_problem,
    )
)
