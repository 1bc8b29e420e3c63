"""Stores holding one value per row: the type a column takes, and reading and writing rows.

A per-run item keeps the values of all runs in one store whose kind the first value
fixes (:func:`spec_for`):

============  ===========================================  ==============================
kind          values                                       store
============  ===========================================  ==============================
``scalar``    Python bool/int/float/complex, numpy         1-d EArray of their dtype
              numbers, bools and datetimes                 (int64 for datetimes)
``array``     numpy arrays of one numeric/bool/datetime    EArray, one row per value
              dtype and shape
``text``      ``str``                                      byte heap (UTF-8)
``bytes``     ``bytes``                                    byte heap
``encoded``   anything else                                byte heap of valuecodec bytes
``pickle``    values of Pickle leaves                      byte heap of pickles
============  ===========================================  ==============================

A *byte heap* is a ``uint8`` EArray holding the rows' bytes end to end plus an int64
EArray ``<name>_ends`` with the end offset of each row: appending many rows is two
writes, reading one row two small reads. Python floats are stored as float64 and come
back as ``float``, Python ints as int64 (never int32) and come back as ``int``.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytraj.storage.hdf5.codecs import (
    decode_text,
    encode_text,
    natural_dtype,
    scalar_tag,
    storage_dtype,
)
from pytraj.storage.hdf5.options import FileOptions
from pytraj.storage.hdf5.sizes import read_leaf
from pytraj.storage.valuecodec import dumps, dumps_each, loads

__all__ = [
    "ColumnSpec",
    "append_rows",
    "create_store",
    "heap_sample",
    "read_all_rows",
    "read_one_row",
    "spec_for",
    "store_length",
]

#: Bytes per chunk: tables and heaps are compressed, arrays of floats are not.
TABLE_CHUNK_BYTES = 64 * 1024
ARRAY_CHUNK_BYTES = 256 * 1024
#: Write extendable arrays in pieces of at most this size (bounds the copy of a stack).
APPEND_BYTES = 16 * 1024 * 1024
#: Array rows at least this long are appended one at a time, without stacking them.
LARGE_ROW_BYTES = 256 * 1024

_TAG_TYPES: dict[str, type] = {"bool": bool, "int": int, "float": float, "complex": complex}
_HEAP_KINDS = frozenset(["text", "bytes", "encoded", "pickle"])
_KIND_ATTR = "pytraj_column"
_TAG_ATTR = "pytraj_type"
_DTYPE_ATTR = "pytraj_dtype"
_SHAPE_ATTR = "pytraj_shape"


def chunk_rows(row_bytes: int, expected: int, target: int) -> int:
    """Rows per chunk: at most about ``target`` bytes, fewer for studies expected to be
    small, and the ``expected`` rows split evenly over the chunks they need.

    HDF5 allocates an uncompressed dataset's last chunk whole: 10,000 float64 values in
    chunks of 8,192 took 16,384 values of space, two chunks of 5,000 take 10,000.
    """
    most = max(1, target // max(row_bytes, 1))
    expected = max(expected, 16)
    if expected <= most:
        return expected
    n_chunks = -(-expected // most)
    return -(-expected // n_chunks)


def _f_only(value: np.ndarray[Any, Any]) -> bool:
    flags = value.flags
    return value.ndim >= 2 and flags.f_contiguous and not flags.c_contiguous


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """The type of a store: which values it holds exactly, and how.

    Attributes
    ----------
    kind
        ``scalar``, ``array``, ``text``, ``bytes``, ``encoded`` or ``pickle``.
    tag
        For scalars the exact type to give back (``float``, ``int``, ``bool``,
        ``complex`` or ``numpy``); ``ndarray`` for arrays; the kind otherwise.
    dtype
        The values' numpy dtype (scalars and arrays), else None.
    shape
        The shape of each array value.
    """

    kind: str
    tag: str
    dtype: np.dtype[Any] | None = None
    shape: tuple[int, ...] = ()

    @property
    def is_small(self) -> bool:
        """Whether values are scalars or text, cheap to hold for every run at once."""
        return self.kind in ("scalar", "text")

    @property
    def is_heap(self) -> bool:
        """Whether rows are variable-length bytes."""
        return self.kind in _HEAP_KINDS

    def all_fit(self, values: Sequence[Any]) -> bool:
        """Whether every one of ``values`` fits (see :meth:`fits`), checked quickly for a
        column of Python scalars; False (check them one by one) for other columns."""
        python_type = _TAG_TYPES.get(self.tag) if self.kind == "scalar" else None
        if python_type is None or not values:
            return False
        if set(map(type, values)) != {python_type}:
            return False  # (one C-level pass: 100,000 values in about 1 ms)
        return python_type is not int or -(2**63) <= min(values) <= max(values) < 2**63

    def fits(self, value: Any) -> bool:
        """Whether ``value`` can be stored in this store and come back exactly."""
        kind = self.kind
        if kind == "scalar":
            python_type = _TAG_TYPES.get(self.tag)
            if python_type is not None:
                if type(value) is not python_type:
                    return False
                number: Any = value
                return python_type is not int or -(2**63) <= number < 2**63
            dtype = self.dtype
            assert dtype is not None  # scalar specs always have one
            return type(value) is dtype.type and value.dtype == dtype
        if kind == "array":
            return (
                type(value) is np.ndarray
                and value.dtype == self.dtype
                and value.shape == self.shape
                and not _f_only(value)
            )
        if kind == "text":
            return type(value) is str
        if kind == "bytes":
            return type(value) is bytes
        return True

    # -- conversion ----------------------------------------------------------------------
    def to_array(self, values: Sequence[Any]) -> np.ndarray[Any, Any]:
        """Values (all fitting) as the array written to a scalar or array store."""
        dtype = self.dtype
        assert dtype is not None
        if self.kind == "array":
            array = np.stack(values) if values else np.empty((0, *self.shape), dtype)
        else:
            array = np.array(values, dtype=dtype)
        return array.view(np.int64) if dtype.kind in "Mm" else array

    def to_bytes(self, value: Any) -> bytes:
        """One value (fitting) as the bytes of a heap row."""
        kind = self.kind
        if kind == "text":
            return encode_text(value)
        if kind == "bytes":
            return bytes(value)
        if kind == "pickle":
            return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        return dumps(value)

    def to_bytes_each(self, values: Sequence[Any]) -> list[bytes]:
        """:meth:`to_bytes` of each value (fitting); encoded values as a column."""
        if self.kind in ("text", "bytes", "pickle"):
            return [self.to_bytes(value) for value in values]
        return dumps_each(values)

    def from_bytes(self, raw: bytes) -> Any:
        """Inverse of :meth:`to_bytes` (pickles stay bytes: unpickled on access only)."""
        kind = self.kind
        if kind == "text":
            return decode_text(raw)
        if kind in ("bytes", "pickle"):
            return raw
        return loads(raw)

    def view(self, stored: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Rows as read from a scalar or array store, in the values' dtype."""
        dtype = self.dtype
        assert dtype is not None
        return stored.view(dtype) if dtype.kind in "Mm" else stored

    def element(self) -> Callable[[Any], Any] | None:
        """Turns one element of :meth:`view` into the exact stored value (None: as is)."""
        if self.kind == "array":
            return np.array  # a fresh array, never a view into a cached column
        return _TAG_TYPES.get(self.tag)

    # -- persistence ---------------------------------------------------------------------
    def to_attrs(self, attrs: Any) -> None:
        """Record the spec on the store's group."""
        attrs[_KIND_ATTR] = self.kind
        attrs[_TAG_ATTR] = self.tag
        if self.dtype is not None:
            attrs[_DTYPE_ATTR] = self.dtype.str
            attrs[_SHAPE_ATTR] = np.array(self.shape, dtype=np.int64)

    @classmethod
    def from_attrs(cls, attrs: Any) -> ColumnSpec | None:
        """The spec recorded by :meth:`to_attrs`, or None when there is none."""
        if _KIND_ATTR not in attrs:
            return None
        dtype = np.dtype(str(attrs[_DTYPE_ATTR])) if _DTYPE_ATTR in attrs else None
        shape = tuple(int(n) for n in attrs[_SHAPE_ATTR]) if _SHAPE_ATTR in attrs else ()
        return cls(str(attrs[_KIND_ATTR]), str(attrs[_TAG_ATTR]), dtype, shape)


def spec_for(value: Any, pickled: bool = False) -> ColumnSpec:
    """The store kind the first value of a column fixes."""
    if pickled:
        return ColumnSpec("pickle", "pickle")
    scalar = scalar_tag(value)
    if scalar is not None:
        return ColumnSpec("scalar", scalar[0], scalar[1])
    kind_type = type(value)
    if (
        kind_type is np.ndarray
        and natural_dtype(value.dtype)
        and value.size > 0
        and not _f_only(value)
    ):
        return ColumnSpec("array", "ndarray", value.dtype, value.shape)
    if kind_type is str:
        return ColumnSpec("text", "text")
    if kind_type is bytes:
        return ColumnSpec("bytes", "bytes")
    return ColumnSpec("encoded", "encoded")


# -- stores -----------------------------------------------------------------------------------


def create_store(
    h5: Any,
    group: Any,
    name: str,
    spec: ColumnSpec,
    *,
    options: FileOptions,
    expected: int,
    sample: bytes = b"",
) -> None:
    """Create the empty store ``name`` in ``group`` for values of ``spec``.

    ``sample`` (the bytes of the first rows of a heap) decides whether a heap is
    compressed (:meth:`FileOptions.heap_filters`).
    """
    import tables  # keeps import pytraj fast: PyTables loads on first use

    if spec.is_heap:
        create_heap(h5, group, name, options, expected, sample=sample)
        return
    dtype = spec.dtype
    assert dtype is not None
    written = storage_dtype(dtype)
    row_bytes = written.itemsize * int(np.prod(spec.shape, dtype=np.int64))
    # Scalars: small chunks, so that reading one run's value reads little.
    target = TABLE_CHUNK_BYTES if spec.kind == "scalar" else ARRAY_CHUNK_BYTES
    h5.create_earray(
        group,
        name,
        atom=tables.Atom.from_dtype(written),
        shape=(0, *spec.shape),
        filters=options.array_filters(dtype.kind),
        chunkshape=(chunk_rows(row_bytes, expected, target), *spec.shape),
    )


def create_heap(
    h5: Any, group: Any, name: str, options: FileOptions, expected: int, *, sample: bytes = b""
) -> None:
    """Create an empty byte heap ``name`` (+ ``name_ends``) in ``group``.

    ``sample``, the bytes of its first rows, decides whether the heap is compressed.
    """
    import tables  # keeps import pytraj fast: PyTables loads on first use

    h5.create_earray(
        group,
        name,
        atom=tables.UInt8Atom(),
        shape=(0,),
        filters=options.heap_filters(sample),
        chunkshape=(chunk_rows(1, 64 * expected, TABLE_CHUNK_BYTES),),
    )
    h5.create_earray(
        group,
        f"{name}_ends",
        atom=tables.Int64Atom(),
        shape=(0,),
        filters=options.table_filters(),
        chunkshape=(chunk_rows(8, expected, TABLE_CHUNK_BYTES),),
    )


def heap_sample(blobs: Sequence[bytes], limit: int = 64 * 1024) -> bytes:
    """The first rows of a heap, joined, up to about ``limit`` bytes (to probe them)."""
    taken: list[bytes] = []
    size = 0
    for blob in blobs:
        if size >= limit:
            break
        taken.append(blob[: limit - size])
        size += len(taken[-1])
    return b"".join(taken)


def store_length(group: Any, name: str, spec: ColumnSpec) -> int:
    """Number of rows in a store."""
    node = group._f_get_child(f"{name}_ends" if spec.is_heap else name)
    return int(node.nrows)


def append_rows(group: Any, name: str, spec: ColumnSpec, values: Sequence[Any]) -> None:
    """Append fitting ``values`` (in order) as rows of the store ``name``."""
    if not values:
        return
    if spec.is_heap:
        append_heap(group, name, spec.to_bytes_each(values))
        return
    node = group._f_get_child(name)
    dtype = spec.dtype
    assert dtype is not None
    row_bytes = max(dtype.itemsize * int(np.prod(spec.shape, dtype=np.int64)), 1)
    if spec.kind == "array" and row_bytes >= LARGE_ROW_BYTES:
        # Appended one by one from their own memory: stacking would copy every row once
        # more, which costs more than the extra calls.
        for value in values:
            node.append(spec.to_array([value]) if dtype.kind in "Mm" else value[np.newaxis])
        return
    step = max(1, APPEND_BYTES // row_bytes)
    for start in range(0, len(values), step):
        node.append(spec.to_array(values[start : start + step]))


def append_heap(group: Any, name: str, blobs: Sequence[bytes]) -> None:
    """Append rows of bytes to the heap ``name`` of ``group``."""
    heap = group._f_get_child(name)
    ends = group._f_get_child(f"{name}_ends")
    lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs))
    offsets = np.cumsum(lengths) + int(heap.nrows)
    joined = b"".join(blobs)
    if joined:
        heap.append(np.frombuffer(joined, dtype=np.uint8))
    ends.append(offsets)


def _heap_rows(group: Any, name: str) -> tuple[bytes, np.ndarray[Any, Any]]:
    """All bytes of a heap and the start offset of each row (plus the end)."""
    ends = read_leaf(group._f_get_child(f"{name}_ends"))
    heap = group._f_get_child(name)
    data = read_leaf(heap).tobytes() if heap.nrows else b""
    starts = np.empty(len(ends) + 1, dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends
    return data, starts


def read_heap_all(group: Any, name: str) -> list[bytes]:
    """Every row of a heap, in order."""
    data, starts = _heap_rows(group, name)
    bounds = starts.tolist()
    return [data[bounds[k] : bounds[k + 1]] for k in range(len(bounds) - 1)]


def read_heap_row(group: Any, name: str, row: int) -> bytes:
    """One row of a heap."""
    ends = group._f_get_child(f"{name}_ends")
    if row == 0:
        start, end = 0, int(ends[0])
    else:
        start, end = (int(n) for n in ends[row - 1 : row + 1])
    if end == start:
        return b""
    return bytes(read_leaf(group._f_get_child(name), start, end).tobytes())


def read_all_rows(group: Any, name: str, spec: ColumnSpec) -> np.ndarray[Any, Any] | list[Any]:
    """Every row of a store: an array (scalar/array stores) or a list of values."""
    if spec.is_heap:
        return [spec.from_bytes(raw) for raw in read_heap_all(group, name)]
    return spec.view(read_leaf(group._f_get_child(name)))


def read_one_row(group: Any, name: str, spec: ColumnSpec, row: int) -> Any:
    """One row of a store, as the exact stored value (pickles stay bytes)."""
    if spec.is_heap:
        return spec.from_bytes(read_heap_row(group, name, row))
    value = spec.view(read_leaf(group._f_get_child(name), row, row + 1))[0]
    convert = spec.element()
    return convert(value) if convert is not None else value
