"""Primitives shared by the parts of the value codec: constants, errors, dtypes and arrays.

See :mod:`pytraj.storage.valuecodec` for the format; the pandas and sparse parts build on
these helpers without importing each other.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from pytraj.errors import InvalidValueError, UnsupportedValueError, ValueDecodeError

__all__ = [
    "ARRAY_KINDS",
    "Chunks",
    "Decoder",
    "Encoder",
    "FORMAT_VERSION",
    "MAX_DEPTH",
    "ValueDecodeError",
    "array_chunks",
    "dtype_header",
    "int_out_of_range",
    "malformed",
    "read_array",
    "read_count",
    "read_dtype",
    "read_raw",
    "read_text",
    "read_u32",
    "too_deep",
    "unsupported",
]

#: Version byte written first; :func:`loads` refuses versions it does not know.
FORMAT_VERSION = 1
#: Deepest nesting of containers (and pandas parts) accepted, on both sides.
MAX_DEPTH = 100
#: Array dtype kinds that can be stored: bool, integers, floats, complex, fixed-width
#: str and bytes, datetime64 and timedelta64.
ARRAY_KINDS = frozenset("biufcUSMm")

Chunks = list[Any]
Encoder = Callable[[Any, Chunks, int], None]
Decoder = Callable[[Any, int, int], tuple[Any, int]]


_U32 = struct.Struct("<I")


# -- errors ---------------------------------------------------------------------------------


def unsupported(value: Any, hint: str = "") -> UnsupportedValueError:
    """Build the error for a value the codec cannot encode."""
    text = f"cannot encode a value of type {type(value).__module__}.{type(value).__qualname__}"
    if hint:
        text += f" ({hint})"
    return UnsupportedValueError(text + "; store it with PickleResult / PickleParameter")


def int_out_of_range(value: int) -> InvalidValueError:
    """Build the error for a Python int that does not fit in 64 bits."""
    return InvalidValueError(
        f"the int {value} does not fit in 64 bits (int64 holds -2**63 ... 2**63-1); "
        "store it as a float or a str, or with PickleResult / PickleParameter"
    )


def too_deep() -> InvalidValueError:
    """Build the error for containers nested deeper than :data:`MAX_DEPTH`."""
    return InvalidValueError(
        f"containers are nested deeper than {MAX_DEPTH} levels (or contain themselves)"
    )


def malformed(reason: str) -> ValueDecodeError:
    """Build the error for bytes that do not decode."""
    return ValueDecodeError(f"malformed pytraj value encoding: {reason}")


_DTYPE_HEADERS: dict[np.dtype[Any], bytes] = {}


def dtype_header(dtype: np.dtype[Any]) -> bytes:
    """Return the encoded form of ``dtype`` (u8 length + ``dtype.str``), or raise."""
    header = _DTYPE_HEADERS.get(dtype)
    if header is None:
        if dtype.kind not in ARRAY_KINDS or dtype.names is not None or dtype.shape != ():
            raise UnsupportedValueError(
                f"arrays of dtype {dtype} cannot be stored; store it with PickleResult / "
                "PickleParameter, or convert it to a list or an array of a numeric, bool, "
                "str, bytes or datetime dtype"
            )
        text = dtype.str.encode("ascii")
        header = bytes([len(text)]) + text
        _DTYPE_HEADERS[dtype] = header
    return header


def array_chunks(value: np.ndarray[Any, Any]) -> tuple[bytes, memoryview]:
    """Return the header (from the dtype on, without tag) and the data of an array."""
    dtype_part = dtype_header(value.dtype)
    flags = value.flags
    if flags.f_contiguous and not flags.c_contiguous:
        # The transpose of a Fortran-ordered array is C-contiguous over the same bytes.
        order, data = 1, value.T
    else:
        order, data = 0, value if flags.c_contiguous else np.ascontiguousarray(value)
    ndim = value.ndim
    header = dtype_part + bytes([order, ndim]) + struct.pack(f"<{ndim}Q", *value.shape)
    # A uint8 view gives a buffer for every dtype (datetime64 has no buffer format).
    return header, data.reshape(-1).view(np.uint8).data


def read_u32(data: Any, pos: int) -> tuple[int, int]:
    """Read a u32 at ``pos``; return it and the next position."""
    if pos + 4 > len(data):
        raise malformed("truncated")
    return _U32.unpack_from(data, pos)[0], pos + 4


def read_count(data: Any, pos: int, min_size: int = 1) -> tuple[int, int]:
    """Read an element count, refusing counts the remaining bytes cannot hold."""
    count, pos = read_u32(data, pos)
    if count * min_size > len(data) - pos:
        raise malformed(f"a count of {count} exceeds the remaining {len(data) - pos} bytes")
    return count, pos


def read_raw(data: Any, pos: int) -> tuple[Any, int]:
    """Read a u32-length-prefixed byte string (as a slice of ``data``)."""
    size, pos = read_u32(data, pos)
    end = pos + size
    if end > len(data):
        raise malformed("truncated")
    return data[pos:end], end


def read_text(data: Any, pos: int) -> tuple[str, int]:
    """Read a u32-length-prefixed UTF-8 string."""
    raw, pos = read_raw(data, pos)
    return str(raw, "utf-8", "surrogatepass"), pos


_PARSED_DTYPES: dict[bytes, np.dtype[Any]] = {}


def read_dtype(data: Any, pos: int) -> tuple[np.dtype[Any], int]:
    """Read a dtype header, refusing dtypes that cannot be stored."""
    if pos >= len(data):
        raise malformed("truncated")
    end = pos + 1 + data[pos]
    if end > len(data):
        raise malformed("truncated")
    key = bytes(data[pos + 1 : end])
    dtype = _PARSED_DTYPES.get(key)
    if dtype is None:
        try:
            dtype = np.dtype(key.decode("ascii"))
        except (TypeError, ValueError, UnicodeDecodeError) as exc:
            raise malformed(f"unknown dtype {key!r}") from exc
        if (
            dtype.kind not in ARRAY_KINDS
            or dtype.names is not None
            or dtype.shape != ()
            or dtype.itemsize == 0
        ):
            raise malformed(f"dtype {key!r} is not storable")
        if len(_PARSED_DTYPES) < 4096:  # bounded: the input is untrusted
            _PARSED_DTYPES[key] = dtype
    return dtype, end


def read_array(data: Any, pos: int) -> tuple[np.ndarray[Any, Any], int]:
    """Read an array (from its dtype on); the result owns its memory and is writeable."""
    dtype, pos = read_dtype(data, pos)
    if pos + 2 > len(data):
        raise malformed("truncated")
    order, ndim = data[pos], data[pos + 1]
    pos += 2
    if order > 1 or ndim > 64:
        raise malformed(f"bad array header (order {order}, ndim {ndim})")
    if pos + 8 * ndim > len(data):
        raise malformed("truncated")
    shape = struct.unpack_from(f"<{ndim}Q", data, pos)
    pos += 8 * ndim
    count = 1
    for size in shape:
        count *= size
    end = pos + count * dtype.itemsize
    if end > len(data):
        raise malformed(f"array data of {count} x {dtype.itemsize} bytes is truncated")
    order_code: Literal["C", "F"] = "F" if order else "C"
    if count == 0:
        return np.empty(shape, dtype, order=order_code), end
    flat = np.frombuffer(data, dtype, count, pos)
    # copy(): detach from the input buffer (which may be reused) and make it writeable.
    return flat.reshape(shape, order=order_code).copy(order="K"), end
