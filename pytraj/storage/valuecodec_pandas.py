"""pandas DataFrames and Series in the value codec (see :mod:`pytraj.storage.valuecodec`).

Each column is written as numpy arrays plus a description of its dtype, through pandas API
that exists in both pandas 2.2 and 3.x, so files move between them::

    DataFrame  P + index(columns) + index(rows) + u32 ncols + ncols x column
    Series     Q + name (a value) + index + column

    index      R + name + q start + q stop + q step                      RangeIndex
               M + u32 nlevels + names (a list value) + levels x index + codes x array
               I + name + column + u32 + freq string ("" for none)      any other Index

    column     n + array                    numpy dtypes: numbers, bool, datetime64, timedelta64
               o + list value               object dtype holding str, bytes, numbers, bool, None
               k + u8 ordered + index(categories) + array(codes)        category
               z + time zone + array(UTC datetime64)                    datetime64[unit, tz]
               m + str dtype name + array(data) + array(mask)           Int64, Float64, boolean ...
               s + str storage + u8 (NaN missing) + list value          string / str

    time zone  1 + str key (zoneinfo)  |  2 + q microseconds (datetime.timezone)
               3 + str zone (pytz)

This module imports pandas; the core codec imports it only when a pandas value shows up.
"""

from __future__ import annotations

import datetime
import zoneinfo
from typing import Any

import numpy as np
import pandas as pd

from pytraj.storage.valuecodec import decode_value, encode_value
from pytraj.storage.valuecodec_base import (
    ARRAY_KINDS,
    MAX_DEPTH,
    Chunks,
    ValueDecodeError,
    array_chunks,
    malformed,
    read_array,
    read_count,
    read_text,
    too_deep,
    unsupported,
)
from pytraj.storage.valuecodec_registry import ValueCodec, register_value_codec

__all__ = ["PANDAS_DEPTH", "decode_pandas", "encode_pandas", "pandas_problem"]

#: Nesting levels a DataFrame or Series uses inside itself (index, levels, categories,
#: names); a pandas value may sit at most ``MAX_DEPTH - PANDAS_DEPTH`` levels deep, so
#: that everything inside it still fits under ``MAX_DEPTH``.
PANDAS_DEPTH = 8

_I64 = np.dtype("<i8")
_MASKED_NAMES = frozenset(
    [
        "Int8",
        "Int16",
        "Int32",
        "Int64",
        "UInt8",
        "UInt16",
        "UInt32",
        "UInt64",
        "Float32",
        "Float64",
        "boolean",
    ]
)
_ELEMENT_TYPES = frozenset([str, bytes, bool, int, float, complex, type(None)])
_DTYPE_HINT = "convert it with .astype(...) to a numeric, bool, str, category or datetime dtype"


# -- what can be stored ---------------------------------------------------------------------


def _column_kind(dtype: Any) -> bytes | None:
    """Return the column tag for ``dtype``, or None when it cannot be stored."""
    if isinstance(dtype, np.dtype):
        if dtype.kind == "O":
            return b"o"
        return b"n" if dtype.kind in "biufcmM" else None
    if isinstance(dtype, pd.CategoricalDtype):
        return b"k"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return b"z"
    if isinstance(dtype, pd.StringDtype):
        return b"s"
    if str(dtype) in _MASKED_NAMES:
        return b"m"
    return None


def _element_ok(element: Any) -> bool:
    kind_type = type(element)
    if kind_type in _ELEMENT_TYPES:
        return kind_type is not int or -(2**63) <= element < 2**63
    return isinstance(element, np.generic) and element.dtype.kind in ARRAY_KINDS


def _name_ok(name: Any) -> bool:
    if type(name) is tuple:
        return all(_name_ok(part) for part in name)
    return _element_ok(name)


def _tz_code(tz: Any) -> tuple[int, Any] | None:
    """Return how a time zone is written, or None for time zones that cannot be."""
    if isinstance(tz, zoneinfo.ZoneInfo) and tz.key is not None:
        return 1, tz.key
    if isinstance(tz, datetime.timezone):
        offset = tz.utcoffset(None)
        return 2, offset // datetime.timedelta(microseconds=1)
    if type(tz).__module__.startswith("pytz") and isinstance(getattr(tz, "zone", None), str):
        return 3, tz.zone
    return None


def _array_problem(obj: pd.Index | pd.Series, label: str) -> tuple[str, str] | None:
    """Why the values of ``obj`` (an Index or a column) cannot be stored, or None."""
    dtype: Any = obj.dtype
    kind = _column_kind(dtype)
    if kind is None:
        return f"{label} has dtype {dtype}", _DTYPE_HINT
    if kind == b"o":
        for position, element in enumerate(obj.to_numpy()):
            if not _element_ok(element):
                return (
                    f"{label} holds a {type(element).__name__} at position {position}",
                    "object columns may hold str, bytes, numbers, bool and None; " + _DTYPE_HINT,
                )
    elif kind == b"k":
        return _index_problem(obj.array.categories, f"the categories of {label}")
    elif kind == b"z" and _tz_code(dtype.tz) is None:
        return (
            f"{label} has the time zone {dtype.tz!r}",
            "convert it with .tz_convert('Area/City') to a zoneinfo time zone",
        )
    return None


def _index_problem(index: pd.Index, label: str) -> tuple[str, str] | None:
    hint = "use names that are str, numbers, None or tuples of these"
    if isinstance(index, pd.MultiIndex):
        for position, name in enumerate(index.names):
            if not _name_ok(name):
                return f"level {position} of {label} is named by a {type(name).__name__}", hint
        for position, level in enumerate(index.levels):
            problem = _array_problem(level, f"level {position} of {label}")
            if problem is not None:
                return problem
        return None
    if not _name_ok(index.name):
        return f"{label} is named by a {type(index.name).__name__}", hint
    if type(index) is pd.RangeIndex:
        return None
    return _array_problem(index, label)


def pandas_problem(value: Any) -> tuple[str, str] | None:
    """Say why a pandas value cannot be stored.

    Parameters
    ----------
    value
        Any object from a pandas module.

    Returns
    -------
    tuple of (str, str) or None
        ``(what is wrong, how to fix it)``, or None when ``value`` can be stored.
    """
    kind_type = type(value)
    if kind_type is pd.DataFrame:
        problem = _index_problem(value.columns, "the column labels")
        if problem is None:
            problem = _index_problem(value.index, "the index")
        for position in range(value.shape[1]):
            if problem is not None:
                break
            label = f"column {value.columns[position]!r}"
            problem = _array_problem(value.iloc[:, position], label)
        return None if problem is None else (f"in a DataFrame, {problem[0]}", problem[1])
    if kind_type is pd.Series:
        if not _name_ok(value.name):
            return (
                f"a Series is named by a {type(value.name).__name__}",
                "use a str, number or None as its name",
            )
        problem = _index_problem(value.index, "the index") or _array_problem(value, "the data")
        return None if problem is None else (f"in a Series, {problem[0]}", problem[1])
    if isinstance(value, pd.Index):
        return "a pandas Index is not a value", "store index.to_series() or index.to_numpy()"
    if kind_type in (pd.Timestamp, pd.Timedelta):
        return (
            f"a pandas {kind_type.__name__} is not a value",
            "convert it with .to_datetime64() / .to_timedelta64()",
        )
    if isinstance(value, pd.DataFrame | pd.Series):
        return f"{kind_type.__name__} is a subclass", "convert it to a plain DataFrame or Series"
    return f"{kind_type.__name__} objects are not values", ""


# -- encoding -------------------------------------------------------------------------------


def _enc_text(text: str, out: Chunks) -> None:
    raw = text.encode("utf-8", "surrogatepass")
    out.append(len(raw).to_bytes(4, "little") + raw)


def _enc_array(array: np.ndarray[Any, Any], out: Chunks) -> None:
    header, data = array_chunks(array)
    out.append(b"a" + header)
    out.append(data)


def _enc_values(obj: pd.Index | pd.Series, out: Chunks, depth: int) -> None:
    """Encode the values of an Index or a Series (its "column")."""
    dtype: Any = obj.dtype
    kind = _column_kind(dtype)
    out.append(kind)
    if kind == b"n":
        _enc_array(np.asarray(obj.to_numpy()), out)
    elif kind == b"o":
        encode_value(obj.to_numpy().tolist(), out, depth)
    elif kind == b"k":
        categorical = obj.array
        out.append(b"\x01" if categorical.ordered else b"\x00")
        _enc_index(categorical.categories, out, depth)
        _enc_array(np.asarray(categorical.codes), out)
    elif kind == b"z":
        code, payload = _tz_code(dtype.tz)  # type: ignore[misc]  # pandas_problem checked it
        out.append(bytes([code]))
        if code == 2:
            out.append(int(payload).to_bytes(8, "little", signed=True))
        else:
            _enc_text(payload, out)
        _enc_array(pd.DatetimeIndex(obj.array).tz_convert(None).to_numpy(), out)
    elif kind == b"m":
        array = obj.array
        _enc_text(str(dtype), out)
        filler = False if str(dtype) == "boolean" else 0
        _enc_array(array.to_numpy(dtype=dtype.numpy_dtype, na_value=filler), out)
        _enc_array(np.asarray(array.isna(), dtype=bool), out)
    else:  # string dtype
        storage = str(dtype.storage)
        na_nan = storage == "pyarrow_numpy" or dtype.na_value is not pd.NA
        _enc_text("pyarrow" if storage == "pyarrow_numpy" else storage, out)
        out.append(b"\x01" if na_nan else b"\x00")
        encode_value(obj.array.to_numpy(dtype=object, na_value=None).tolist(), out, depth)


def _enc_index(index: pd.Index, out: Chunks, depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise too_deep()
    inner = depth + 1
    if type(index) is pd.RangeIndex:
        out.append(b"R")
        encode_value(index.name, out, inner)
        out.append(np.array([index.start, index.stop, index.step], dtype=_I64).tobytes())
    elif isinstance(index, pd.MultiIndex):
        out.append(b"M" + len(index.levels).to_bytes(4, "little"))
        encode_value(list(index.names), out, inner)
        for level in index.levels:
            _enc_index(level, out, inner)
        for codes in index.codes:
            _enc_array(np.asarray(codes), out)
    else:
        out.append(b"I")
        encode_value(index.name, out, inner)
        _enc_values(index, out, inner)
        _enc_text(getattr(index, "freqstr", None) or "", out)


def encode_pandas(value: Any, out: Chunks, depth: int) -> None:
    """Append the encoding of a DataFrame or Series to ``out``.

    Raises
    ------
    UnsupportedValueError
        For other pandas objects and for columns or indexes that cannot be stored.
    """
    if depth > MAX_DEPTH - PANDAS_DEPTH:
        raise too_deep()
    problem = pandas_problem(value)
    if problem is not None:
        reason, hint = problem
        raise unsupported(value, f"{reason}; {hint}" if hint else reason)
    inner = depth + 1
    if type(value) is pd.DataFrame:
        out.append(b"P")
        _enc_index(value.columns, out, inner)
        _enc_index(value.index, out, inner)
        out.append(value.shape[1].to_bytes(4, "little"))
        for position in range(value.shape[1]):
            _enc_values(value.iloc[:, position], out, inner)
    else:
        out.append(b"Q")
        encode_value(value.name, out, inner)
        _enc_index(value.index, out, inner)
        _enc_values(value, out, inner)


# -- decoding -------------------------------------------------------------------------------


def _read_byte(data: Any, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise malformed("truncated")
    return data[pos], pos + 1


def _read_tagged_array(data: Any, pos: int) -> tuple[np.ndarray[Any, Any], int]:
    tag, pos = _read_byte(data, pos)
    if tag != ord("a"):
        raise malformed("expected an array")
    return read_array(data, pos)


def _check_vector(array: np.ndarray[Any, Any], kinds: str, what: str) -> None:
    if array.ndim != 1 or array.dtype.kind not in kinds:
        raise malformed(f"{what} must be a 1-d array of kind {kinds!r}, not {array.dtype}")


def _read_tz(data: Any, pos: int) -> tuple[Any, int]:
    code, pos = _read_byte(data, pos)
    if code == 2:
        if pos + 8 > len(data):
            raise malformed("truncated")
        micros = int.from_bytes(data[pos : pos + 8], "little", signed=True)
        return datetime.timezone(datetime.timedelta(microseconds=micros)), pos + 8
    name, pos = read_text(data, pos)
    if code == 3:
        try:
            import pytz  # optional: the default time zones of pandas 2

            return pytz.timezone(name), pos
        except ImportError:
            pass  # without pytz the same zone from zoneinfo is the closest match
    elif code != 1:
        raise malformed(f"unknown time zone code {code}")
    return zoneinfo.ZoneInfo(name), pos


def _string_dtype(storage: str, na_nan: bool) -> Any:
    """The string dtype as close to the stored one as this pandas offers."""
    if storage == "pyarrow":
        try:
            import pyarrow  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
        except ImportError:
            storage = "python"
    elif storage != "python":
        raise malformed(f"unknown string storage {storage!r}")
    try:
        return pd.StringDtype(storage, na_value=np.nan if na_nan else pd.NA)  # type: ignore[call-arg,unused-ignore]  # pandas >= 2.3
    except TypeError:  # pandas 2.2: no na_value argument
        if not na_nan:
            return pd.StringDtype(storage)  # type: ignore[arg-type,unused-ignore]  # storage literal
        return pd.StringDtype("pyarrow_numpy") if storage == "pyarrow" else np.dtype(object)  # type: ignore[arg-type,unused-ignore]  # pandas 2.2 spelling


def _masked_array(name: str, values: np.ndarray[Any, Any], mask: np.ndarray[Any, Any]) -> Any:
    if name not in _MASKED_NAMES:
        raise malformed(f"unknown nullable dtype {name!r}")
    dtype = pd.api.types.pandas_dtype(name)
    if values.dtype != dtype.numpy_dtype or mask.dtype != np.bool_:  # type: ignore[union-attr]  # masked dtypes have numpy_dtype
        raise malformed(f"bad data for a {name} column")
    _check_vector(values, "biuf", "nullable data")
    if mask.shape != values.shape:
        raise malformed("mask and data of a nullable column differ in length")
    if name == "boolean":
        return pd.arrays.BooleanArray(values, mask)
    if name.startswith("Float"):
        return pd.arrays.FloatingArray(values, mask)
    return pd.arrays.IntegerArray(values, mask)


def _read_values(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    """Read a column; return a numpy array or a pandas extension array."""
    kind, pos = _read_byte(data, pos)
    if kind == ord("n"):
        array, pos = _read_tagged_array(data, pos)
        _check_vector(array, "biufcmM", "a column")
        return array, pos
    if kind == ord("o"):
        items, pos = decode_value(data, pos, depth)
        if type(items) is not list:
            raise malformed("an object column must be a list")
        array = np.empty(len(items), dtype=object)
        for position, item in enumerate(items):  # one by one: never broadcast elements
            array[position] = item
        return array, pos
    if kind == ord("k"):
        ordered, pos = _read_byte(data, pos)
        categories, pos = _read_index(data, pos, depth)
        codes, pos = _read_tagged_array(data, pos)
        _check_vector(codes, "i", "category codes")
        dtype = pd.CategoricalDtype(categories, ordered=bool(ordered))
        return pd.Categorical.from_codes(codes, dtype=dtype), pos
    if kind == ord("z"):
        tz, pos = _read_tz(data, pos)
        utc, pos = _read_tagged_array(data, pos)
        _check_vector(utc, "M", "time-zone aware values")
        return pd.DatetimeIndex(utc).tz_localize("UTC").tz_convert(tz).array, pos
    if kind == ord("m"):
        name, pos = read_text(data, pos)
        values, pos = _read_tagged_array(data, pos)
        mask, pos = _read_tagged_array(data, pos)
        return _masked_array(name, values, mask), pos
    if kind == ord("s"):
        storage, pos = read_text(data, pos)
        na_nan, pos = _read_byte(data, pos)
        items, pos = decode_value(data, pos, depth)
        if type(items) is not list or not all(type(i) is str or i is None for i in items):
            raise malformed("a string column must be a list of str and None")
        strings = np.empty(len(items), dtype=object)
        strings[:] = items
        return pd.array(strings, dtype=_string_dtype(storage, bool(na_nan))), pos
    raise malformed(f"unknown column kind {kind:#04x}")


def _read_index(data: Any, pos: int, depth: int) -> tuple[pd.Index, int]:
    if depth >= MAX_DEPTH:
        raise malformed(f"nested deeper than {MAX_DEPTH} levels")
    inner = depth + 1
    kind, pos = _read_byte(data, pos)
    if kind == ord("R"):
        name, pos = decode_value(data, pos, inner)
        if pos + 24 > len(data):
            raise malformed("truncated")
        start, stop, step = np.frombuffer(data, _I64, 3, pos).tolist()
        return pd.RangeIndex(start, stop, step, name=name), pos + 24
    if kind == ord("M"):
        nlevels, pos = read_count(data, pos)
        names, pos = decode_value(data, pos, inner)
        levels = []
        for _ in range(nlevels):
            level, pos = _read_index(data, pos, inner)
            levels.append(level)
        codes = []
        for _ in range(nlevels):
            level_codes, pos = _read_tagged_array(data, pos)
            _check_vector(level_codes, "i", "MultiIndex codes")
            codes.append(level_codes)
        if type(names) is not list or len(names) != nlevels:
            raise malformed("MultiIndex names do not match its levels")
        return pd.MultiIndex(levels=levels, codes=codes, names=names), pos  # type: ignore[arg-type]  # stubs want lists; Index and arrays work
    if kind == ord("I"):
        name, pos = decode_value(data, pos, inner)
        values, pos = _read_values(data, pos, inner)
        freq, pos = read_text(data, pos)
        index = pd.Index(values, dtype=values.dtype, name=name, copy=False)
        if freq and isinstance(index, pd.DatetimeIndex | pd.TimedeltaIndex):
            index = type(index)(index, freq=freq, name=name)
        return index, pos
    raise malformed(f"unknown index kind {kind:#04x}")


def _series(values: Any, index: pd.Index | None = None, name: Any = None) -> pd.Series:
    # An explicit dtype: pandas 3 would otherwise turn object arrays of str into str.
    return pd.Series(values, index=index, name=name, dtype=values.dtype, copy=False)


def decode_pandas(data: Any, pos: int, depth: int) -> tuple[Any, int]:
    """Decode the DataFrame or Series whose tag (``P`` or ``Q``) is at ``pos``."""
    if depth > MAX_DEPTH - PANDAS_DEPTH:
        raise malformed(f"nested deeper than {MAX_DEPTH} levels")
    inner = depth + 1
    try:
        tag, pos = _read_byte(data, pos)
        if tag == ord("Q"):
            name, pos = decode_value(data, pos, inner)
            index, pos = _read_index(data, pos, inner)
            values, pos = _read_values(data, pos, inner)
            return _series(values, index, name), pos
        columns, pos = _read_index(data, pos, inner)
        index, pos = _read_index(data, pos, inner)
        count, pos = read_count(data, pos)
        arrays = []
        for _ in range(count):
            values, pos = _read_values(data, pos, inner)
            arrays.append(values)
        if not arrays:
            return pd.DataFrame(index=index, columns=columns), pos
        # Positional keys and default indexes first, so nothing aligns on labels.
        frame = pd.DataFrame({i: _series(values) for i, values in enumerate(arrays)})
        frame.index = index
        frame.columns = columns
        return frame, pos
    except ValueDecodeError:
        raise
    except Exception as exc:  # pandas validates with many exception types
        raise malformed(f"{type(exc).__name__}: {exc}") from exc


register_value_codec(
    ValueCodec(
        library="pandas",
        type_module="pandas",
        tags=b"PQ",
        encode=encode_pandas,
        decode=decode_pandas,
        problem=pandas_problem,
        depth=PANDAS_DEPTH,
    )
)
