"""An exact, self-describing binary encoding of every value pytraj can store (no pickle).

``loads(dumps(value))`` gives back a value of the same type with the same contents: a
tuple stays a tuple, ``np.float32(1.5)`` stays a ``np.float32``, ``-0.0`` keeps its sign,
arrays keep dtype, shape and Fortran order, DataFrames keep dtypes, index types and names.
The write-ahead journal, the in-memory backend and the HDF5 overflow store all hold values
in this form, so :func:`loads` treats its input as untrusted: truncated or malformed bytes
raise :class:`ValueDecodeError` (a ``ValueError``), never crash, hang or allocate more than
the input could describe.

Format (version 1)
------------------
One version byte, then one value. Every value is one tag byte and a payload; integers are
little-endian, ``u32``/``u64`` unsigned, ``q`` signed 64-bit::

    N                 None              T / F            True / False
    i  q              int (int64)       f  <f8           float
    c  <f8 <f8        complex           s  u32 + UTF-8   str (lone surrogates kept)
    b  u32 + raw      bytes             l / t  u32 n + n values        list / tuple
    d  u32 n + n x (u32 + UTF-8 key, value)                            dict, in order
    g  dtype + itemsize raw bytes       numpy scalar (numbers, bool, datetime64 ...)
    u  u32 + UTF-8    np.str_           y  u32 + raw     np.bytes_
    a  dtype + u8 order (0 C, 1 F) + u8 ndim + ndim x u64 + raw data   ndarray
    P  DataFrame      Q  Series         (the pandas codec)
    Z  scipy sparse matrix or array     (the scipy.sparse codec)

Values of pandas and scipy.sparse go to the codecs those modules register
(:mod:`pytraj.storage.valuecodec_registry`); this module never imports them.

``dtype`` is ``u8`` length + ASCII ``dtype.str`` (``"<f8"``, ``">i4"``, ``"<M8[ns]"``,
``"<U5"``); array data is written in that byte order and in the array's memory order, so
both come back as they were.

Examples
--------
>>> loads(dumps((1, 2.5, "a")))
(1, 2.5, 'a')
>>> dumps(1.5)
b'\\x01f\\x00\\x00\\x00\\x00\\x00\\x00\\xf8?'
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from pytraj.errors import InvalidValueError
from pytraj.storage.valuecodec_base import (
    FORMAT_VERSION,
    MAX_DEPTH,
    Chunks,
    Decoder,
    Encoder,
    ValueDecodeError,
    array_chunks,
    dtype_header,
    int_out_of_range,
    malformed,
    read_array,
    read_count,
    read_dtype,
    read_raw,
    read_text,
    too_deep,
    unsupported,
)
from pytraj.storage.valuecodec_registry import value_codec_for_tag, value_codec_for_type

__all__ = [
    "FORMAT_VERSION",
    "MAX_DEPTH",
    "ValueDecodeError",
    "decode_value",
    "dump_parts",
    "dumps",
    "dumps_each",
    "dumps_flat_dicts",
    "dumps_many",
    "encode_value",
    "loads",
    "loads_many",
]

_VERSION_BYTE = bytes([FORMAT_VERSION])
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_C128 = struct.Struct("<dd")
# Whole encodings of the commonest scalars in one pack call: version, tag, payload.
_TOP_FLOAT = struct.Struct("<Bcd")
_TOP_INT = struct.Struct("<Bcq")
_TOP_COMPLEX = struct.Struct("<Bcdd")
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

# -- encoding -------------------------------------------------------------------------------


def _enc_none(value: Any, out: Chunks, depth: int) -> None:
    out.append(b"N")


def _enc_bool(value: bool, out: Chunks, depth: int) -> None:
    out.append(b"T" if value else b"F")


def _enc_int(value: int, out: Chunks, depth: int) -> None:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise int_out_of_range(value)
    out.append(b"i" + _I64.pack(value))


def _enc_float(value: float, out: Chunks, depth: int) -> None:
    out.append(b"f" + _F64.pack(value))


def _enc_complex(value: complex, out: Chunks, depth: int) -> None:
    out.append(b"c" + _C128.pack(value.real, value.imag))


def _length(size: int) -> bytes:
    if size > 0xFFFFFFFF:
        raise InvalidValueError(
            f"a str or bytes value of {size} bytes is longer than the 4 GiB the codec holds; "
            "store it as a numpy array (np.frombuffer(value, np.uint8))"
        )
    return _U32.pack(size)


def _enc_str(value: str, out: Chunks, depth: int) -> None:
    # surrogatepass: a str with lone surrogates (from os.fsdecode, say) is still exact.
    raw = value.encode("utf-8", "surrogatepass")
    out.append(b"s" + _length(len(raw)) + raw)


def _enc_bytes(value: bytes, out: Chunks, depth: int) -> None:
    out.append(b"b" + _length(len(value)))
    out.append(value)


def _enc_sequence(tag: bytes) -> Encoder:
    def encode(value: list[Any] | tuple[Any, ...], out: Chunks, depth: int) -> None:
        if depth >= MAX_DEPTH:
            raise too_deep()
        out.append(tag + _U32.pack(len(value)))
        inner = depth + 1
        for item in value:
            encoder = _ENCODERS.get(type(item))
            if encoder is None:
                _enc_other(item, out, inner)
            else:
                encoder(item, out, inner)

    return encode


def _enc_dict(value: dict[Any, Any], out: Chunks, depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise too_deep()
    out.append(b"d" + _U32.pack(len(value)))
    inner = depth + 1
    for key, item in value.items():
        if type(key) is not str:
            raise unsupported(value, f"dict keys must be str, found {type(key).__name__}")
        raw = key.encode("utf-8", "surrogatepass")
        out.append(_U32.pack(len(raw)) + raw)
        encoder = _ENCODERS.get(type(item))
        if encoder is None:
            _enc_other(item, out, inner)
        else:
            encoder(item, out, inner)


def _enc_array(value: np.ndarray[Any, Any], out: Chunks, depth: int) -> None:
    if type(value) is not np.ndarray:
        raise unsupported(value, "convert it with np.asarray(value)")
    header, data = array_chunks(value)
    out.append(b"a" + header)
    out.append(data)


def _enc_np_str(value: np.str_, out: Chunks, depth: int) -> None:
    # value.encode, not str(value): numpy's __str__ drops trailing NULs.
    raw = value.encode("utf-8", "surrogatepass")
    out.append(b"u" + _length(len(raw)) + raw)


def _enc_np_bytes(value: np.bytes_, out: Chunks, depth: int) -> None:
    out.append(b"y" + _length(len(value)) + bytes(value))


def _numpy_scalar_encoder(kind_type: type) -> Encoder | None:
    """Return an encoder for numpy scalars of ``kind_type``, or None if unsupported."""
    if kind_type is np.str_:
        return _enc_np_str
    if kind_type is np.bytes_:
        return _enc_np_bytes
    if issubclass(kind_type, np.datetime64 | np.timedelta64):
        # The unit is part of each value's dtype, so the header is built per value.
        def encode_dated(value: Any, out: Chunks, depth: int) -> None:
            out.append(b"g" + dtype_header(value.dtype) + value.tobytes())

        return encode_dated
    try:
        dtype = np.dtype(kind_type)
    except TypeError:
        return None
    if dtype.kind not in "biufc":
        return None
    prefix = b"g" + dtype_header(dtype)

    def encode(value: Any, out: Chunks, depth: int) -> None:
        out.append(prefix + value.tobytes())

    return encode


def _enc_other(value: Any, out: Chunks, depth: int) -> None:
    """Encode what the type table does not know: numpy scalars, pandas, scipy sparse."""
    kind_type = type(value)
    if isinstance(value, np.generic):
        encoder = _numpy_scalar_encoder(kind_type)
        if encoder is not None:
            _ENCODERS[kind_type] = encoder  # numpy has finitely many scalar types
            encoder(value, out, depth)
            return
        raise unsupported(value, f"numpy scalars of dtype {value.dtype} are not supported")
    codec = value_codec_for_type(kind_type.__module__)
    if codec is None:
        raise unsupported(value)
    codec.encode(value, out, depth)


_ENCODERS: dict[type, Encoder] = {
    type(None): _enc_none,
    bool: _enc_bool,
    int: _enc_int,
    float: _enc_float,
    complex: _enc_complex,
    str: _enc_str,
    bytes: _enc_bytes,
    list: _enc_sequence(b"l"),
    tuple: _enc_sequence(b"t"),
    dict: _enc_dict,
    np.ndarray: _enc_array,
    np.str_: _enc_np_str,
    np.bytes_: _enc_np_bytes,
}


def encode_value(value: Any, out: Chunks, depth: int) -> None:
    """Append the encoding of ``value`` (tag and payload) to ``out``.

    The building block for the pandas and sparse parts of the codec.
    """
    encoder = _ENCODERS.get(type(value))
    if encoder is None:
        _enc_other(value, out, depth)
    else:
        encoder(value, out, depth)


def _top_int(value: int) -> bytes:
    try:
        return _TOP_INT.pack(FORMAT_VERSION, b"i", value)
    except struct.error:
        raise int_out_of_range(value) from None


_TOP_LEVEL: dict[type, Callable[[Any], bytes]] = {
    float: lambda value: _TOP_FLOAT.pack(FORMAT_VERSION, b"f", value),
    int: _top_int,
    complex: lambda value: _TOP_COMPLEX.pack(FORMAT_VERSION, b"c", value.real, value.imag),
    bool: lambda value: b"\x01T" if value else b"\x01F",
    type(None): lambda value: b"\x01N",
}


def dumps(value: Any) -> bytes:
    """Encode ``value`` exactly, with its type.

    Parameters
    ----------
    value
        Any value pytraj can store (see :func:`pytraj.leaves.values.check_storable`).

    Returns
    -------
    bytes
        The version byte followed by the encoded value.

    Raises
    ------
    UnsupportedValueError
        For a type the codec cannot hold (use a Pickle leaf for those).
    InvalidValueError
        For an int outside int64 or containers nested deeper than :data:`MAX_DEPTH`.

    Examples
    --------
    >>> loads(dumps({"a": [1, (2.0, None)]}))
    {'a': [1, (2.0, None)]}
    """
    top = _TOP_LEVEL.get(type(value))
    if top is not None:
        return top(value)
    return b"".join(dump_parts(value))


def dump_parts(value: Any) -> Chunks:
    """Encode ``value`` as :func:`dumps` does, but as parts that are not joined.

    Array data stays a ``memoryview`` of the array's own buffer, so a writer can pass a
    large array on without copying it; ``b"".join(dump_parts(value)) == dumps(value)``.
    The array must not change until the parts are consumed.

    Examples
    --------
    >>> import numpy as np
    >>> parts = dump_parts(np.arange(3.0))
    >>> b"".join(parts) == dumps(np.arange(3.0)), type(parts[-1]).__name__
    (True, 'memoryview')
    """
    top = _TOP_LEVEL.get(type(value))
    if top is not None:
        return [top(value)]
    out: Chunks = [_VERSION_BYTE]
    encode_value(value, out, 0)
    return out


def dumps_each(values: Sequence[Any]) -> list[bytes]:
    """``[dumps(value) for value in values]``, the same bytes; a column of small flat dicts
    (W3's ``{"label": ..., "k": ..., "flag": ...}`` in every run) encoded key by key.

    The journal and the HDF5 column of a per-run result both encode whole columns: the
    key-by-key form costs a fraction of a dict encoded value by value.
    """
    flat = dumps_flat_dicts(values)
    return flat if flat is not None else [dumps(value) for value in values]


def dumps_flat_dicts(column: Sequence[Any]) -> list[bytes] | None:
    """:func:`dumps` of each value of a column of small flat dicts, built key by key, or
    None when the column is not one.

    It is one when every value is a dict with the same str keys in the same order and
    each key's values are all floats, all ints within int64, all bools or all strs.
    """
    if not column:
        return None
    first = column[0]
    if type(first) is not dict or not first or set(map(type, column)) != {dict}:
        return None
    keys = tuple(first)
    if set(map(tuple, column)) != {keys} or any(type(key) is not str for key in keys):
        return None
    encoded: list[list[bytes]] = []
    for key in keys:
        raw_key = key.encode("utf-8", "surrogatepass")
        prefix = _U32.pack(len(raw_key)) + raw_key
        values = [value[key] for value in column]
        kinds = set(map(type, values))
        kind = kinds.pop() if len(kinds) == 1 else None
        if kind is float:
            encoded.append([prefix + b"f" + packed for packed in map(_F64.pack, values)])
        elif kind is int and min(values) >= -(2**63) and max(values) < 2**63:
            encoded.append([prefix + b"i" + packed for packed in map(_I64.pack, values)])
        elif kind is bool:
            true, false = prefix + b"T", prefix + b"F"
            encoded.append([true if value else false for value in values])
        elif kind is str:
            raws = [value.encode("utf-8", "surrogatepass") for value in values]
            encoded.append([prefix + b"s" + _length(len(raw)) + raw for raw in raws])
        else:
            return None  # anything else: value by value
    head = bytes([FORMAT_VERSION]) + b"d" + _U32.pack(len(keys))
    return [head + b"".join(parts) for parts in zip(*encoded, strict=True)]


def dumps_many(values: Iterable[Any]) -> bytes:
    """Encode several values at once (as a list); read them back with :func:`loads_many`."""
    return dumps(list(values))


# -- decoding -------------------------------------------------------------------------------


def _dec_int(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    if pos + 8 > len(data):
        raise malformed("truncated")
    return _I64.unpack_from(data, pos)[0], pos + 8


def _dec_float(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    if pos + 8 > len(data):
        raise malformed("truncated")
    return _F64.unpack_from(data, pos)[0], pos + 8


def _dec_complex(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    if pos + 16 > len(data):
        raise malformed("truncated")
    real, imag = _C128.unpack_from(data, pos)
    return complex(real, imag), pos + 16


def _dec_str(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    return read_text(data, pos)


def _dec_bytes(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    raw, pos = read_raw(data, pos)
    return bytes(raw), pos


def _dec_np_str(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    text, pos = read_text(data, pos)
    return np.str_(text), pos


def _dec_np_bytes(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    raw, pos = read_raw(data, pos)
    return np.bytes_(bytes(raw)), pos


def _dec_list(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    if depth >= MAX_DEPTH:
        raise malformed(f"nested deeper than {MAX_DEPTH} levels")
    count, pos = read_count(data, pos)
    items = []
    inner = depth + 1
    for _ in range(count):
        item, pos = decode_value(data, pos, inner)
        items.append(item)
    return items, pos


def _dec_tuple(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    items, pos = _dec_list(data, pos, depth)
    return tuple(items), pos


def _dec_dict(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    if depth >= MAX_DEPTH:
        raise malformed(f"nested deeper than {MAX_DEPTH} levels")
    count, pos = read_count(data, pos, min_size=5)
    result = {}
    inner = depth + 1
    for _ in range(count):
        key, pos = read_text(data, pos)
        result[key], pos = decode_value(data, pos, inner)
    if len(result) != count:
        raise malformed("a dict holds a key twice")
    return result, pos


def _dec_np_scalar(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    dtype, pos = read_dtype(data, pos)
    if dtype.kind in "US":
        raise malformed("str and bytes numpy scalars have their own tags")
    end = pos + dtype.itemsize
    if end > len(data):
        raise malformed("truncated")
    return np.frombuffer(data, dtype, 1, pos)[0], end


def _dec_array(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    return read_array(data, pos)


def _dec_constant(value: Any) -> Decoder:
    def decode(data: Any, pos: int, depth: int) -> tuple[Any, int]:
        return value, pos

    return decode


_DECODERS: list[Decoder | None] = [None] * 256
for _tag, _decoder in {
    "N": _dec_constant(None),
    "T": _dec_constant(True),
    "F": _dec_constant(False),
    "i": _dec_int,
    "f": _dec_float,
    "c": _dec_complex,
    "s": _dec_str,
    "b": _dec_bytes,
    "l": _dec_list,
    "t": _dec_tuple,
    "d": _dec_dict,
    "g": _dec_np_scalar,
    "u": _dec_np_str,
    "y": _dec_np_bytes,
    "a": _dec_array,
}.items():
    _DECODERS[ord(_tag)] = _decoder


def decode_value(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    """Decode the value whose tag is at ``pos``; return it and the next position."""
    if pos >= len(data):
        raise malformed("truncated")
    decoder = _DECODERS[data[pos]]
    if decoder is None:
        codec = value_codec_for_tag(data[pos])
        if codec is None:
            raise malformed(f"unknown tag {data[pos]:#04x} at byte {pos}")
        return codec.decode(data, pos, depth)
    return decoder(data, pos + 1, depth)


def _as_buffer(data: Any) -> Any:
    if type(data) is bytes:
        return data
    try:
        view = memoryview(data)
    except TypeError:
        raise ValueDecodeError(f"expected bytes, got {type(data).__name__}") from None
    if view.ndim != 1 or not view.c_contiguous or view.format not in ("B", "b", "c"):
        view = memoryview(view.tobytes())  # one copy makes any buffer a flat byte string
    return view.cast("B") if view.format != "B" else view


def loads(data: bytes | bytearray | memoryview | np.ndarray[Any, Any]) -> Any:
    """Decode a value written by :func:`dumps`.

    Parameters
    ----------
    data
        The encoded bytes (any buffer: bytes, bytearray, memoryview, uint8 array).

    Returns
    -------
    object
        A new value of the type that was encoded.

    Raises
    ------
    ValueDecodeError
        A ``ValueError``: the bytes are truncated, damaged, of a newer format version, or
        carry trailing bytes.
    """
    if type(data) is bytes and len(data) == 10 and data[:2] == b"\x01f":
        return _F64.unpack_from(data, 2)[0]
    buf = _as_buffer(data)
    if len(buf) == 0:
        raise malformed("empty input")
    if buf[0] != FORMAT_VERSION:
        origin = "a newer pytraj wrote it" if buf[0] > FORMAT_VERSION else "not a pytraj value"
        raise malformed(
            f"format version {buf[0]} is not known to this pytraj, which reads version "
            f"{FORMAT_VERSION} ({origin})"
        )
    try:
        value, pos = decode_value(buf, 1, 0)
    except ValueDecodeError:
        raise
    except (ValueError, TypeError, IndexError, OverflowError, struct.error, RecursionError) as exc:
        raise malformed(f"{type(exc).__name__}: {exc}") from exc
    if pos != len(buf):
        raise malformed(f"{len(buf) - pos} bytes after the value")
    return value


def loads_many(data: bytes | bytearray | memoryview | np.ndarray[Any, Any]) -> list[Any]:
    """Decode values written by :func:`dumps_many`."""
    values = loads(data)
    if type(values) is not list:
        raise malformed(f"expected a list of values, found {type(values).__name__}")
    return values
