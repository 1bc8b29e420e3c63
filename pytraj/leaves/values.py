"""What a storable value is, how explored values are coerced, and how values are described.

Supported values (DESIGN §2): ``bool``, ``int`` (64-bit), ``float``, ``complex``, ``str``,
``bytes``, ``None``; numpy scalars and arrays of numeric, bool, fixed-width str (``U``) and
bytes (``S``), datetime64 and timedelta64 dtypes; lists and tuples; dicts with ``str``
keys (all nested freely); pandas DataFrame and Series; scipy sparse matrices and arrays.
Everything else goes into a ``PickleParameter`` / ``PickleResult``.

>>> check_storable({"a": [1, 2.0]}, where="results.z")
>>> coerce_range(1.0, [1, 2], where="parameters.x")
[1.0, 2.0]
>>> describe(np.zeros((3, 2)))
'ndarray[float64, (3, 2)]'
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from pytraj.errors import InvalidValueError, UnsupportedValueError
from pytraj.storage.valuecodec_base import MAX_DEPTH
from pytraj.storage.valuecodec_registry import value_codec_for_type

__all__ = ["check_storable", "coerce_like", "coerce_range", "describe", "short_repr"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_ARRAY_KINDS = frozenset("biufcUSMm")
# Leaves cost nothing to check: the fast path of check_storable.
_SCALARS = frozenset([bool, float, complex, str, bytes, type(None)])
_MAX_DEPTH = MAX_DEPTH  # the codec's limit
_PICKLE = "store it with PickleResult / PickleParameter"

# Conversions to suggest for common unsupported types, by qualified type name so that
# nothing has to be imported to recognise them.
_HINTS = {
    "builtins.set": "convert it to a list or a tuple",
    "builtins.frozenset": "convert it to a list or a tuple",
    "builtins.bytearray": "convert it to bytes",
    "builtins.memoryview": "convert it to bytes",
    "builtins.range": "convert it to a list",
    "datetime.datetime": "convert it to np.datetime64",
    "datetime.date": "convert it to np.datetime64",
    "datetime.timedelta": "convert it to np.timedelta64",
    "decimal.Decimal": "convert it to float (or str to keep every digit)",
    "fractions.Fraction": "convert it to float",
}


# -- check_storable -------------------------------------------------------------------------


class _Refusal(Exception):
    """Internal: carries what is wrong to the public entry point, which adds ``where``."""

    def __init__(self, path: str, reason: str, hint: str, invalid: bool = False) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason
        self.hint = hint
        self.invalid = invalid


def _type_name(value: Any) -> str:
    kind_type = type(value)
    module = kind_type.__module__
    return kind_type.__qualname__ if module == "builtins" else f"{module}.{kind_type.__qualname__}"


def _hint_for(value: Any) -> str:
    kind_type = type(value)
    hint = _HINTS.get(f"{kind_type.__module__}.{kind_type.__qualname__}")
    if hint is not None:
        return hint
    for base in (bool, int, float, complex, str, bytes, list, tuple, dict):
        if isinstance(value, base):
            if isinstance(value, np.generic):
                return "convert it to a numeric, bool, str or datetime numpy type"
            if hasattr(kind_type, "_fields"):
                return "convert it to a plain tuple"
            if any(cls.__module__ == "enum" for cls in kind_type.__mro__):
                return f"store its .value or .name ({base.__name__} subclasses lose their type)"
            return f"convert it to a plain {base.__name__}"
    if isinstance(value, np.ndarray):
        return "convert it with np.asarray(value)"
    return ""


def _depth_refusal(path: str) -> _Refusal:
    return _Refusal(
        path,
        f"containers are nested deeper than {_MAX_DEPTH} levels (or contain themselves)",
        "",
        invalid=True,
    )


def _int_refusal(value: int, path: str) -> _Refusal:
    return _Refusal(
        path,
        f"the int {value} does not fit in 64 bits (int64 holds -2**63 ... 2**63-1)",
        "convert it to a float or a str",
        invalid=True,
    )


def _array_refusal(dtype: np.dtype[Any], path: str, what: str) -> _Refusal | None:
    if dtype.kind in _ARRAY_KINDS and dtype.names is None and dtype.shape == ():
        return None
    if dtype.kind == "O":
        hint = "convert it to a list, or to an array of a numeric, str or datetime dtype"
    elif dtype.names is not None:
        hint = "store each field as its own array (in a dict)"
    elif dtype.kind == "T":
        hint = "convert it with .astype(str) to a fixed-width str array"
    else:
        hint = "convert it to a numeric, bool, str, bytes or datetime dtype"
    return _Refusal(path, f"{what} of dtype {dtype} is not supported", hint)


def _check(value: Any, path: str, depth: int) -> None:
    """Raise :class:`_Refusal` if ``value`` (found at ``path``) cannot be stored."""
    kind_type = type(value)
    if kind_type in _SCALARS:
        return
    if kind_type is int:
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise _int_refusal(value, path)
        return
    if kind_type is list or kind_type is tuple:
        if depth >= _MAX_DEPTH:
            raise _depth_refusal(path)
        for position, item in enumerate(value):
            if type(item) not in _SCALARS:
                _check(item, f"{path}[{position}]", depth + 1)
        return
    if kind_type is dict:
        if depth >= _MAX_DEPTH:
            raise _depth_refusal(path)
        for key, item in value.items():
            if type(key) is not str:
                raise _Refusal(
                    path,
                    f"a dict key is not a str: {key!r} ({_type_name(key)})",
                    "convert the keys to str",
                )
            if type(item) not in _SCALARS:
                _check(item, f"{path}[{key!r}]", depth + 1)
        return
    if kind_type is np.ndarray:
        refusal = _array_refusal(value.dtype, path, "an array")
        if refusal is not None:
            raise refusal
        return
    if isinstance(value, np.generic):
        refusal = _array_refusal(value.dtype, path, "a numpy scalar")
        if refusal is not None:
            raise refusal
        return
    codec = value_codec_for_type(kind_type.__module__)
    if codec is not None:
        if codec.depth and depth > _MAX_DEPTH - codec.depth:
            raise _Refusal(
                path,
                f"{codec.library} values may sit at most {_MAX_DEPTH - codec.depth} "
                "levels deep in containers",
                "",
                invalid=True,
            )
        problem = codec.problem(value)
        if problem is not None:
            raise _Refusal(path, problem[0], problem[1])
        return
    raise _Refusal(path, f"a value of type {_type_name(value)} is not supported", _hint_for(value))


def check_storable(value: Any, *, where: str) -> None:
    """Raise unless ``value`` can be stored by a (non-pickle) parameter or result.

    Parameters
    ----------
    value
        The candidate value; containers are checked all the way down.
    where
        Where the value goes (a node path such as ``"results.z"`` or
        ``"results.z['stats']"``), for the message.

    Raises
    ------
    UnsupportedValueError
        A value of a type pytraj cannot store; the message names ``where``, the type, the
        path inside containers (``[2]['a']``) and the way out.
    InvalidValueError
        An ``int`` outside int64 (never truncated silently), or containers nested deeper
        than 100 levels (or containing themselves).

    Examples
    --------
    >>> try:
    ...     check_storable({1, 2}, where="results.z")
    ... except TypeError as exc:
    ...     message = str(exc)
    >>> message.startswith("results.z: a value of type set is not supported")
    True
    """
    kind_type = type(value)
    if kind_type in _SCALARS:
        return
    if kind_type is int and _INT64_MIN <= value <= _INT64_MAX:
        return
    try:
        _check(value, "", 0)
    except _Refusal as refusal:
        where_text = f"{where} at {refusal.path}" if refusal.path else where
        message = f"{where_text}: {refusal.reason}; {_PICKLE}"
        if refusal.hint:
            message += f", or {refusal.hint}"
        error = InvalidValueError if refusal.invalid else UnsupportedValueError
        raise error(message) from None


# -- coercion -------------------------------------------------------------------------------


def _mismatch(reference: Any, value: Any, where: str, detail: str = "") -> InvalidValueError:
    text = (
        f"{where}: a parameter whose default is {describe(reference)} cannot take "
        f"{short_repr(value)} ({describe(value)})"
    )
    return InvalidValueError(f"{text}; {detail}" if detail else text)


def _is_int(value: Any) -> bool:
    kind_type = type(value)
    return kind_type is int or (isinstance(value, np.integer))


def _is_real(value: Any) -> bool:
    return type(value) is float or isinstance(value, np.floating) or _is_int(value)


def _is_complex(value: Any) -> bool:
    return type(value) is complex or isinstance(value, np.complexfloating) or _is_real(value)


def _to_float(reference: Any, value: Any, where: str) -> Any:
    if not _is_real(value):
        raise _mismatch(reference, value, where)
    try:
        with np.errstate(over="raise"):
            result = type(reference)(value)
    except (OverflowError, FloatingPointError):
        raise _mismatch(reference, value, where, "it is out of range") from None
    if _is_int(value):
        if not np.isfinite(result) or int(result) != int(value):
            raise _mismatch(reference, value, where, "it is not exactly representable")
    elif np.isfinite(value) and not np.isfinite(result):
        raise _mismatch(reference, value, where, "it is out of range")
    return result


def _to_int(reference: Any, value: Any, where: str) -> Any:
    if not _is_int(value):
        detail = ""
        if _is_real(value):
            detail = (
                "an int parameter takes ints only (no silent rounding); pass int(...) or "
                "make the default a float"
            )
        raise _mismatch(reference, value, where, detail)
    number = int(value)
    if type(reference) is int:
        low, high = _INT64_MIN, _INT64_MAX
    else:
        info = np.iinfo(reference.dtype)
        low, high = int(info.min), int(info.max)
    if not low <= number <= high:
        raise InvalidValueError(
            f"{where}: {number} is out of range for a parameter whose default is "
            f"{describe(reference)} ({low} ... {high})"
        )
    return type(reference)(number)


def _to_complex(reference: Any, value: Any, where: str) -> Any:
    if not _is_complex(value):
        raise _mismatch(reference, value, where)
    return type(reference)(value)


def _to_bool(reference: Any, value: Any, where: str) -> Any:
    if type(value) is not bool and type(value) is not np.bool_:
        raise _mismatch(reference, value, where, "a bool parameter takes True or False")
    return type(reference)(value)


def _to_str(reference: Any, value: Any, where: str) -> Any:
    if not isinstance(value, str):
        raise _mismatch(reference, value, where)
    return type(reference)(value)


def _to_bytes(reference: Any, value: Any, where: str) -> Any:
    if not isinstance(value, bytes):
        raise _mismatch(reference, value, where)
    return type(reference)(value)


_ARRAY_LIKE = (np.ndarray, np.generic, list, tuple, bool, int, float, complex, str, bytes)


def _to_array(reference: np.ndarray[Any, Any], value: Any, where: str) -> Any:
    if not isinstance(value, _ARRAY_LIKE):
        raise _mismatch(reference, value, where)
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise _mismatch(reference, value, where, str(exc)) from None
    if array.ndim != reference.ndim:
        raise _mismatch(reference, value, where, f"it has {array.ndim} dimensions")
    source, target = array.dtype, reference.dtype
    if source.kind == target.kind and source.kind in "US":
        # Widths differ naturally between strings; casting to the default's width would cut.
        converted = array
    elif source == target:
        converted = array
    elif np.can_cast(source, target, "same_kind"):
        converted = array.astype(target)
    else:
        raise _mismatch(reference, value, where, f"{source} does not cast to {target}")
    if converted is value:
        converted = converted.copy(order="K")  # the caller may still change its array
    check_storable(converted, where=where)
    return converted


def _to_container(reference: Any, value: Any, where: str) -> Any:
    target = type(reference)
    if target is dict:
        if type(value) is not dict:
            raise _mismatch(reference, value, where)
        result: Any = dict(value)
    elif type(value) is list or type(value) is tuple:
        result = target(value)
    else:
        raise _mismatch(reference, value, where)
    check_storable(result, where=where)
    return result


def _to_same_class(reference: Any, value: Any, where: str) -> Any:
    if type(value) is not type(reference):
        raise _mismatch(reference, value, where, f"it must be a {type(reference).__name__}")
    check_storable(value, where=where)
    return value


def _to_anything(reference: Any, value: Any, where: str) -> Any:
    check_storable(value, where=where)
    return value


_COERCERS = {
    float: _to_float,
    int: _to_int,
    bool: _to_bool,
    complex: _to_complex,
    str: _to_str,
    bytes: _to_bytes,
    list: _to_container,
    tuple: _to_container,
    dict: _to_container,
    np.ndarray: _to_array,
    np.str_: _to_str,
    np.bytes_: _to_bytes,
    np.bool_: _to_bool,
    type(None): _to_anything,
}


def _coercer(reference: Any) -> Any:
    kind_type = type(reference)
    coercer = _COERCERS.get(kind_type)
    if coercer is not None:
        return coercer
    if isinstance(reference, np.floating):
        return _to_float
    if isinstance(reference, np.integer):
        return _to_int
    if isinstance(reference, np.complexfloating):
        return _to_complex
    return _to_same_class


def coerce_like(reference: Any, value: Any, *, where: str) -> Any:
    """Coerce an explored ``value`` to the type of the parameter's default ``reference``.

    Numbers of the same kind mix (Python and numpy, ints into floats when exact); the result
    has the reference's type. Nothing is rounded silently: ``1.0`` for an ``int``
    parameter is refused, as is an int beyond the reference's range.

    Parameters
    ----------
    reference
        The parameter's default value.
    value
        One explored value.
    where
        The parameter's path (``"parameters.x"`` or ``"parameters.x[3]"``), for messages.

    Returns
    -------
    object
        ``value`` converted to the reference's type (arrays: to its dtype).

    Raises
    ------
    InvalidValueError
        When ``value`` does not fit (the message names ``where`` and both types).
    UnsupportedValueError
        When a list, dict or other free-form ``value`` holds something unstorable.

    Examples
    --------
    >>> coerce_like(1.0, np.int64(3), where="parameters.x")
    3.0
    >>> coerce_like([0], (1, 2), where="parameters.shape")
    [1, 2]
    """
    return _coercer(reference)(reference, value, where)


_FAST_TYPES = frozenset([float, bool, complex, str, bytes])
# Value types that convert to a float or int reference without any check that could fail.
_FLOAT_SOURCES = frozenset([float, np.float64, np.float32, np.float16])
_INT_SOURCES = frozenset(
    [int, np.int64, np.int32, np.int16, np.int8, np.uint32, np.uint16, np.uint8]
)


def coerce_range(reference: Any, values: Sequence[Any], *, where: str) -> list[Any]:
    """Coerce every explored value like :func:`coerce_like`; errors name ``where[i]``.

    Parameters
    ----------
    reference
        The parameter's default value.
    values
        The explored values, one per run.
    where
        The parameter's path.

    Returns
    -------
    list
        A new list of coerced values.

    Examples
    --------
    >>> coerce_range(1.0, np.arange(2.0), where="parameters.x")
    [0.0, 1.0]
    """
    kind_type = type(reference)
    # Fast paths for the common explorations (100,000 floats take a few ms, not 0.2 s).
    if kind_type in _FAST_TYPES or kind_type is int:
        value_types = set(map(type, values))
        if value_types <= {kind_type} and kind_type is not int:
            return list(values)
        if kind_type is float and value_types <= _FLOAT_SOURCES:
            return [float(value) for value in values]
        if kind_type is int and value_types <= _INT_SOURCES:
            numbers = [int(value) for value in values]
            if not numbers or (min(numbers) >= _INT64_MIN and max(numbers) <= _INT64_MAX):
                return numbers
    coercer = _coercer(reference)
    return [
        coercer(reference, value, f"{where}[{position}]") for position, value in enumerate(values)
    ]


# -- descriptions ---------------------------------------------------------------------------


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(size) for size in shape)


def describe(value: Any) -> str:
    """Describe a value's type and size in a few characters, for reprs.

    Examples
    --------
    >>> describe(1.0), describe(np.float32(1)), describe([1, 2, 3]), describe({"a": 1})
    ('float', 'np.float32', 'list[3]', 'dict[1]')
    >>> describe(np.zeros((3, 2), dtype=np.int8))
    'ndarray[int8, (3, 2)]'
    """
    kind_type = type(value)
    if value is None:
        return "None"
    if kind_type in (list, tuple, dict):
        return f"{kind_type.__name__}[{len(value)}]"
    if kind_type is np.ndarray:
        return f"ndarray[{value.dtype}, {value.shape}]"
    if isinstance(value, np.generic):
        if isinstance(value, np.datetime64 | np.timedelta64):
            return f"np.{value.dtype}"
        return f"np.{kind_type.__name__}"
    module = kind_type.__module__
    if module.startswith("pandas") and hasattr(value, "shape"):
        if kind_type.__name__ == "DataFrame":
            return f"DataFrame({_shape_text(value.shape)})"
        return f"{kind_type.__name__}({_shape_text(value.shape)})"
    if module.startswith("scipy.sparse") and hasattr(value, "shape"):
        return f"{kind_type.__name__}({_shape_text(value.shape)})"
    return kind_type.__name__


_REPR = reprlib.Repr()
_REPR.maxstring = 30
_REPR.maxother = 30
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = 4
_REPR.maxlevel = 2


def short_repr(value: Any, width: int = 40) -> str:
    """Return a repr of ``value`` of at most ``width`` characters.

    Small arrays show their data, large ones their dtype and shape; pandas and sparse
    values show only their shape.

    Examples
    --------
    >>> short_repr(1.0)
    '1.0'
    >>> short_repr(np.zeros(1000))
    '<ndarray[float64, (1000,)]>'
    >>> short_repr("x" * 100, width=12)
    "'xxxxxxx...'"
    """
    kind_type = type(value)
    if kind_type is np.ndarray:
        text = ""
        if value.size <= 10:
            text = np.array2string(value, separator=", ", threshold=10, max_line_width=10_000)
            text = " ".join(text.split())
        if not text or len(text) > width:
            text = f"<{describe(value)}>"
    elif isinstance(value, np.generic):
        text = repr(str(value)) if isinstance(value, np.str_ | np.bytes_) else str(value)
    elif kind_type.__module__.startswith(("pandas", "scipy")):
        text = f"<{describe(value)}>"
    else:
        text = _REPR.repr(value)
    if len(text) > width:
        cut = max(width - 4, 1)
        text = text[:cut] + "..." + (text[-1] if text[-1] in "'\")]}>" else "")
    return text
