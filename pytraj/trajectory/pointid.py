"""Stable point ids: a canonical byte encoding of parameter values and its BLAKE2b digest.

A *point* is the set of all parameters of one run (explored and default), keyed by full name
(``"parameters.x"``). Its id is ``blake2b(encode_point(point), digest_size=16)``, the same on every
platform and library version, so a study can be resumed, expanded and merged by comparing ids.

The encoding (DESIGN §2)
------------------------
All integers below are little-endian; ``u32(n)`` is a 4-byte unsigned length or count and
``u64(n)`` an 8-byte unsigned dimension. Each value is one ASCII tag and a payload:

- ``bool``: ``?`` + one byte, 0 or 1.
- ``int`` and ``np.int64``: ``i`` + 8 bytes two's complement (outside int64: an error).
- ``float`` and ``np.float64``: ``f`` + IEEE-754 binary64.
- ``complex`` and ``np.complex128``: ``c`` + two binary64, real then imaginary.
- ``str``: ``s`` + ``u32(len)`` + UTF-8. ``bytes``: ``b`` + ``u32(len)`` + the bytes.
- ``None``: ``N``.
- ``np.ndarray``, and every other numpy scalar as a 0-d array: ``a`` + ``u32(len)`` +
  ``dtype.str`` + ``u32(ndim)`` + ``u64`` per dimension + ``u32(len)`` + C-order little-endian
  data.
- ``list`` ``l`` / ``tuple`` ``t``: ``u32(count)`` + every element encoded (tag + payload).
- ``dict`` with ``str`` keys: ``d`` + ``u32(count)`` + for each key in sorted order the key
  encoded as a ``str`` value, then the value.

A point is, for every parameter in sorted order of full names, ``u32(len)`` + UTF-8 full name +
the encoded value. Names and dict keys sort by code point (the order of their UTF-8 bytes).

Normalisations, so that equal numbers give equal ids everywhere:

- **Byte order**: big-endian arrays and scalars are converted to little-endian first, and the
  ``dtype.str`` of the little-endian form (``"<f8"``, never ``">f8"``) is what gets encoded.
- **Memory layout**: arrays are encoded in C order, so a Fortran-ordered or strided array gives
  the same id as a C-contiguous array of the same shape and values.
- **NaN**: every NaN (either sign, any payload, quiet or signalling) becomes the canonical quiet
  NaN ``0x7FF8000000000000`` before encoding, in scalars and in float and complex arrays (in
  ``float32``/``float16`` arrays: that NaN converted, ``0x7FC00000``/``0x7E00``). So every NaN
  gives one id. ``-0.0`` and ``0.0`` keep their exact bits and differ, as do ``inf``/``-inf``.
- ``np.float64``, ``np.int64`` and ``np.complex128`` (and numpy scalar types with exactly those
  dtypes, such as ``np.longlong`` on Linux) encode like Python's ``float``, ``int`` and
  ``complex``: ``[0.0, 1.0]`` and the elements of ``np.arange(2.0)`` give the same ids. Every other
  numpy scalar (``np.float32``, ``np.int32``, ``np.bool_``, ``np.str_``, ``np.datetime64`` ...) is
  a 0-d array, so ``np.float32(1)`` differs from ``1.0`` and ``np.bool_(True)`` from ``True``.

Extensions
----------
Values the DESIGN rule does not cover, each under its own tag:

- ``A``: object arrays and variable-width string arrays (``StringDType``): ``u32(ndim)`` +
  ``u64`` per dimension + every element encoded, in C order.
- ``D``: a ``dict`` with any non-``str`` key: ``u32(count)`` + (key, value) pairs, each encoded,
  sorted by the encoded key.
- ``u`` (``set``) and ``U`` (``frozenset``): ``u32(count)`` + the encoded elements sorted by
  their bytes (a pickle would follow the hash order, which changes from process to process).
- ``S``: a scipy sparse matrix or array: ``u32(len)`` + class name (``"csr_matrix"``) + shape
  (``u32(ndim)`` + ``u64`` each) + ``u32(count)`` + the canonical COO components (duplicates
  summed, coordinates sorted row-major) as arrays: data, then one int64 coordinate array per
  dimension. Explicit zeros are kept.
- ``X``: a pandas Index: its names (encoded as a list) + its values.
- ``R``: a pandas Series: its name (encoded) + its index (``X``) + its values.
- ``F``: a pandas DataFrame: its columns (``X``) + its index (``X``) + ``u32(ncols)`` + the values
  of each column, in order.

  pandas values are encoded as the array ``to_numpy()`` returns (an ``a`` or ``A`` array). The
  dtype's name is left out on purpose: it changes between pandas versions (string columns are
  ``object`` in pandas 2 and ``str`` in pandas 3), while ``to_numpy()`` already tells ``int64``,
  ``float64`` and nullable ``Int64`` (an object array) apart.
- ``o``: any other object, subclasses of the built-in types included: ``u32(len)`` + qualified
  type name + ``u32(len)`` + ``pickle.dumps(value, protocol=4)``. Stable only as long as the
  object's pickle is, which is the contract of a ``PickleParameter``.

Structured numpy dtypes are refused: their padding bytes are undefined, so no stable encoding
exists; store the fields as separate arrays.

Examples
--------
>>> encode_value("ab")
b's\\x02\\x00\\x00\\x00ab'
>>> point_id_hex({"parameters.x": 1.0}) == point_id_hex({"parameters.x": np.float64(1.0)})
True
"""

from __future__ import annotations

import hashlib
import pickle
import struct
import sys
from collections.abc import Callable, Mapping
from math import isnan
from typing import Any

import numpy as np

from pytraj.errors import InvalidValueError, UnsupportedValueError

__all__ = ["CANONICAL_NAN_BITS", "encode_point", "encode_value", "point_id", "point_id_hex"]

_Parts = list[bytes]
_Encoder = Callable[[Any, _Parts], None]

_U32 = struct.Struct("<I").pack
_U64 = struct.Struct("<Q").pack
_TAGGED_I64 = struct.Struct("<cq").pack
_TAGGED_F64 = struct.Struct("<cd").pack
_TAGGED_C128 = struct.Struct("<cdd").pack
_F64 = struct.Struct("<d").pack

#: 0x7FF8000000000000, the canonical quiet NaN every NaN is encoded as (little-endian).
CANONICAL_NAN_BITS = b"\x00\x00\x00\x00\x00\x00\xf8\x7f"
_NAN_BITS = CANONICAL_NAN_BITS
_TAGGED_NAN = b"f" + _NAN_BITS
_LITTLE_ENDIAN_HOST = sys.byteorder == "little"
_INT64 = np.dtype(np.int64)
_FLOAT64 = np.dtype(np.float64)
_COMPLEX128 = np.dtype(np.complex128)
_OBJECT_KINDS = frozenset("OT")  # object and NumPy 2's variable-width StringDType


def _u32(n: int, what: str) -> bytes:
    try:
        return _U32(n)
    except struct.error:
        raise InvalidValueError(
            f"{what} of length {n} is too large for a point id (at most 2**32 - 1)"
        ) from None


# -- scalars -----------------------------------------------------------------------------


def _encode_none(value: None, parts: _Parts) -> None:
    parts.append(b"N")


def _encode_bool(value: bool, parts: _Parts) -> None:
    parts.append(b"?\x01" if value else b"?\x00")


def _encode_int(value: int, parts: _Parts) -> None:
    try:
        parts.append(_TAGGED_I64(b"i", value))
    except struct.error:
        raise InvalidValueError(
            f"integer {value} is outside the 64-bit range [-2**63, 2**63 - 1]; "
            "pytraj stores ints as int64 and never overflows silently (use a float or a str)"
        ) from None


def _encode_float(value: float, parts: _Parts) -> None:
    # Every NaN gets one canonical bit pattern, so all NaNs give one id.
    parts.append(_TAGGED_NAN if isnan(value) else _TAGGED_F64(b"f", value))


def _float_bits(value: float) -> bytes:
    return _NAN_BITS if isnan(value) else _F64(value)


def _encode_complex(value: complex, parts: _Parts) -> None:
    real, imag = value.real, value.imag
    if not (isnan(real) or isnan(imag)):
        parts.append(_TAGGED_C128(b"c", real, imag))
    else:
        parts.append(b"c" + _float_bits(real) + _float_bits(imag))


def _encode_str(value: str, parts: _Parts) -> None:
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InvalidValueError(
            f"string {value[:40]!r} cannot be encoded as UTF-8 ({err.reason})"
        ) from None
    parts.append(b"s" + _u32(len(raw), "string"))
    parts.append(raw)


def _encode_bytes(value: bytes, parts: _Parts) -> None:
    parts.append(b"b" + _u32(len(value), "bytes value"))
    parts.append(value)


# -- containers --------------------------------------------------------------------------


def _encode_list(value: list[Any], parts: _Parts) -> None:
    parts.append(b"l" + _u32(len(value), "list"))
    for item in value:
        _encode(item, parts)


def _encode_tuple(value: tuple[Any, ...], parts: _Parts) -> None:
    parts.append(b"t" + _u32(len(value), "tuple"))
    for item in value:
        _encode(item, parts)


def _encode_dict(value: dict[Any, Any], parts: _Parts) -> None:
    if not all(isinstance(key, str) for key in value):
        _encode_general_dict(value, parts)
        return
    parts.append(b"d" + _u32(len(value), "dict"))
    for key in sorted(value):
        _encode_str(str(key), parts)  # str(): an np.str_ key encodes like the plain str
        _encode(value[key], parts)


def _encode_general_dict(value: dict[Any, Any], parts: _Parts) -> None:
    pairs = sorted(
        ((encode_value(key), item) for key, item in value.items()), key=lambda pair: pair[0]
    )
    parts.append(b"D" + _u32(len(pairs), "dict"))
    for key_bytes, item in pairs:
        parts.append(key_bytes)
        _encode(item, parts)


def _encode_set(value: set[Any] | frozenset[Any], parts: _Parts) -> None:
    tag = b"u" if type(value) is set else b"U"
    members = sorted(encode_value(item) for item in value)
    parts.append(tag + _u32(len(members), "set"))
    parts.extend(members)


# -- numpy -------------------------------------------------------------------------------


def _encode_shape(shape: tuple[int, ...], parts: _Parts) -> None:
    parts.append(_U32(len(shape)) + b"".join(_U64(n) for n in shape))


def _little_endian(array: np.ndarray) -> np.ndarray:
    order = array.dtype.byteorder
    if order == ">" or (order == "=" and not _LITTLE_ENDIAN_HOST):
        return array.astype(array.dtype.newbyteorder("<"))
    return array


def _canonical_nans(array: np.ndarray) -> np.ndarray:
    kind = array.dtype.kind
    if kind == "f":
        mask = np.isnan(array)
        if mask.any():
            array = array.copy()
            array[mask] = np.nan  # np.nan carries the canonical quiet NaN bits
    elif kind == "c":
        real_nan, imag_nan = np.isnan(array.real), np.isnan(array.imag)
        if real_nan.any() or imag_nan.any():
            array = array.copy()
            array.real[real_nan] = np.nan
            array.imag[imag_nan] = np.nan
    return array


def _encode_array(value: np.ndarray, parts: _Parts) -> None:
    dtype = value.dtype
    if dtype.kind in _OBJECT_KINDS:
        _encode_object_array(value, parts)
        return
    if dtype.names is not None:
        raise UnsupportedValueError(
            f"structured numpy arrays (dtype {dtype}) have no stable point id; "
            "store each field as a separate array"
        )
    array = _canonical_nans(_little_endian(value))
    dtype_str = array.dtype.str.encode("ascii")
    data = array.tobytes(order="C")
    parts.append(b"a" + _U32(len(dtype_str)) + dtype_str)
    _encode_shape(array.shape, parts)
    parts.append(_u32(len(data), "array data"))
    parts.append(data)


def _encode_object_array(value: np.ndarray, parts: _Parts) -> None:
    parts.append(b"A")
    _encode_shape(value.shape, parts)
    for item in value.ravel(order="C"):
        _encode(item, parts)


def _encode_numpy_scalar(value: np.generic, parts: _Parts) -> None:
    _encode_array(np.asarray(value), parts)


# -- pandas and scipy (imported only when such a value shows up) -------------------------


def _pandas_values(values: Any) -> np.ndarray:
    """What ``values.to_numpy()`` returns, for an Index or a Series.

    Time-zone-aware datetimes are boxed one by one, giving the same Timestamps:
    pandas 2.2 crashes the interpreter (a segmentation fault in its batched boxing)
    on second-resolution times before about 1900 in a pytz zone.
    """
    import pandas as pd

    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        return np.asarray(values.to_numpy())
    array = values.array
    boxed = np.empty(len(array), dtype=object)
    for position in range(len(array)):
        boxed[position] = array[position]
    return boxed


def _encode_pandas_index(index: Any, parts: _Parts) -> None:
    parts.append(b"X")
    _encode_list(list(index.names), parts)
    _encode_array(_pandas_values(index), parts)


def _encode_pandas(value: Any, parts: _Parts) -> None:
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        parts.append(b"F")
        _encode_pandas_index(value.columns, parts)
        _encode_pandas_index(value.index, parts)
        parts.append(_U32(value.shape[1]))
        for position in range(value.shape[1]):
            _encode_array(_pandas_values(value.iloc[:, position]), parts)
    elif isinstance(value, pd.Series):
        parts.append(b"R")
        _encode(value.name, parts)
        _encode_pandas_index(value.index, parts)
        _encode_array(_pandas_values(value), parts)
    elif isinstance(value, pd.Index):
        _encode_pandas_index(value, parts)
    else:
        _encode_pickled(value, parts)


def _encode_sparse(value: Any, parts: _Parts) -> None:
    import scipy.sparse

    if not scipy.sparse.issparse(value):
        _encode_pickled(value, parts)
        return
    coo = value.tocoo(copy=True)
    coo.sum_duplicates()  # canonical: one entry per coordinate, sorted row-major
    coords = coo.coords if hasattr(coo, "coords") else (coo.row, coo.col)  # scipy < 1.13
    name = type(value).__name__.encode("ascii")
    parts.append(b"S" + _U32(len(name)) + name)
    _encode_shape(tuple(value.shape), parts)
    parts.append(_U32(1 + len(coords)))
    _encode_array(np.asarray(coo.data), parts)
    for axis in coords:
        _encode_array(np.asarray(axis, dtype=np.int64), parts)


# -- everything else ---------------------------------------------------------------------


def _encode_pickled(value: Any, parts: _Parts) -> None:
    cls = type(value)
    type_name = f"{cls.__module__}.{cls.__qualname__}".encode()
    try:
        pickled = pickle.dumps(value, protocol=4)
    except Exception as err:  # pickling raises many types (PicklingError, TypeError, ...)
        raise UnsupportedValueError(
            f"a value of type {cls.__module__}.{cls.__qualname__} has no point id: it is "
            f"not a supported value and cannot be pickled ({type(err).__name__}: {err})"
        ) from None
    parts.append(b"o" + _U32(len(type_name)) + type_name)
    parts.append(_u32(len(pickled), "pickled object"))
    parts.append(pickled)


_ENCODERS: dict[type, _Encoder] = {
    type(None): _encode_none,
    bool: _encode_bool,
    int: _encode_int,
    float: _encode_float,
    complex: _encode_complex,
    str: _encode_str,
    bytes: _encode_bytes,
    list: _encode_list,
    tuple: _encode_tuple,
    dict: _encode_dict,
    set: _encode_set,
    frozenset: _encode_set,
    np.ndarray: _encode_array,
    np.int64: _encode_int,
    np.float64: _encode_float,
    np.complex128: _encode_complex,
}


def _resolve(cls: type) -> _Encoder:
    """The encoder of a type missing from ``_ENCODERS`` (cached for numpy scalar types)."""
    if issubclass(cls, np.generic):
        # By dtype, not by type: np.longlong is int64 on Linux yet a type of its own.
        dtype = np.dtype(cls)
        if dtype == _INT64:
            encoder: _Encoder = _encode_int
        elif dtype == _FLOAT64:
            encoder = _encode_float
        elif dtype == _COMPLEX128:
            encoder = _encode_complex
        else:
            encoder = _encode_numpy_scalar
        _ENCODERS[cls] = encoder  # a finite set of types, so the cache stays small
        return encoder
    module = cls.__module__
    if module == "pandas" or module.startswith("pandas."):
        return _encode_pandas
    if module.startswith("scipy.sparse"):
        return _encode_sparse
    return _encode_pickled


def _encode(value: Any, parts: _Parts) -> None:
    cls = type(value)
    encoder = _ENCODERS.get(cls)
    if encoder is None:
        encoder = _resolve(cls)
    encoder(value, parts)


# -- public API --------------------------------------------------------------------------


def encode_value(value: Any) -> bytes:
    """The canonical bytes of one value: its type tag followed by its payload.

    Parameters
    ----------
    value : Any
        A supported value (see the module docstring for the rule and its extensions).

    Returns
    -------
    bytes
        The encoding; equal values of the same kind give equal bytes on every platform.

    Raises
    ------
    InvalidValueError
        An int outside the int64 range, a string that is not valid Unicode, a part longer than
        ``2**32 - 1`` bytes, or a value nested too deeply (or containing itself).
    UnsupportedValueError
        A value that is neither covered by the rule nor picklable.

    Examples
    --------
    >>> encode_value(1)
    b'i\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00'
    >>> encode_value(None)
    b'N'
    """
    parts: _Parts = []
    try:
        _encode(value, parts)
    except RecursionError:
        raise InvalidValueError(
            f"a value of type {type(value).__name__} nests too deeply or contains itself"
        ) from None
    return b"".join(parts)


def encode_point(params: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a parameter point.

    Parameters
    ----------
    params : Mapping[str, Any]
        Every parameter of the point, keyed by full name (``"parameters.x"``).

    Returns
    -------
    bytes
        For every name in sorted order: ``u32`` length + UTF-8 name + the encoded value.

    Raises
    ------
    InvalidValueError, UnsupportedValueError
        As :func:`encode_value`; the message names the parameter.

    Examples
    --------
    >>> encode_point({"b": None, "a": True})
    b'\\x01\\x00\\x00\\x00a?\\x01\\x01\\x00\\x00\\x00bN'
    """
    parts: _Parts = []
    append = parts.append
    try:
        names = sorted(params)
    except TypeError:
        raise InvalidValueError(
            f"parameter names must be strings, got {sorted(map(repr, params))}"
        ) from None
    for name in names:
        if not isinstance(name, str):
            raise InvalidValueError(f"parameter names must be strings, got {name!r}")
        raw = name.encode("utf-8")
        append(_U32(len(raw)))
        append(raw)
        try:
            _encode(params[name], parts)
        except (InvalidValueError, UnsupportedValueError) as err:
            raise type(err)(f"parameter {name!r}: {err}") from None
        except RecursionError:
            raise InvalidValueError(
                f"parameter {name!r}: the value nests too deeply or contains itself"
            ) from None
    return b"".join(parts)


def point_id(params: Mapping[str, Any]) -> bytes:
    """The 16-byte id of a parameter point: BLAKE2b of :func:`encode_point`.

    Parameters
    ----------
    params : Mapping[str, Any]
        Every parameter of the point, keyed by full name; the order does not matter.

    Returns
    -------
    bytes
        ``hashlib.blake2b(encode_point(params), digest_size=16).digest()``.

    Examples
    --------
    >>> len(point_id({"parameters.x": 1.0}))
    16
    """
    return hashlib.blake2b(encode_point(params), digest_size=16).digest()


def point_id_hex(params: Mapping[str, Any]) -> str:
    """The point id as 32 lowercase hex characters (what ``traj.runs[i].point_id`` shows).

    Examples
    --------
    >>> len(point_id_hex({"parameters.x": 1.0}))
    32
    """
    return hashlib.blake2b(encode_point(params), digest_size=16).hexdigest()
