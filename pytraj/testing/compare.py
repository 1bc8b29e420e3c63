"""Deep comparison of stored values with exact types: the oracle of round-trip tests.

:func:`assert_same_value` is stricter than ``==``: ``1`` and ``1.0`` differ, ``(1,)`` and
``[1]`` differ, ``np.float32(1)`` and ``np.float64(1)`` differ, ``-0.0`` and ``0.0`` differ,
while ``nan`` equals ``nan``. Arrays must agree in dtype (byte order included), shape,
Fortran order and every byte; pandas objects in dtypes, index types, names and values.

>>> assert_same_value([1.0, float("nan")], [1.0, float("nan")])
>>> assert_same_value((1,), [1])
Traceback (most recent call last):
...
AssertionError: value: type tuple != list
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

__all__ = ["assert_same_value"]

_F64 = struct.Struct("<d")


def _fail(path: str, message: str) -> AssertionError:
    return AssertionError(f"{path}: {message}")


def _same_float(actual: float, expected: float) -> bool:
    if actual != actual and expected != expected:  # noqa: PLR0124  # nan test without numpy
        return True
    return _F64.pack(actual) == _F64.pack(expected)


def _both_nan(actual: np.generic, expected: np.generic) -> bool:
    # NaN payloads may differ; any two NaNs (of one dtype) count as the same value.
    return expected.dtype.kind in "fc" and bool(np.isnan(actual) and np.isnan(expected))


def _assert_same_array(
    actual: np.ndarray[Any, Any], expected: np.ndarray[Any, Any], path: str
) -> None:
    if actual.dtype != expected.dtype or actual.dtype.str != expected.dtype.str:
        raise _fail(path, f"dtype {actual.dtype.str} != {expected.dtype.str}")
    if actual.shape != expected.shape:
        raise _fail(path, f"shape {actual.shape} != {expected.shape}")
    fortran = expected.flags.f_contiguous and not expected.flags.c_contiguous
    if fortran and not actual.flags.f_contiguous:
        raise _fail(path, "the array lost its Fortran order")
    if actual.dtype.kind == "O":
        for position, (left, right) in enumerate(
            zip(actual.ravel(order="K"), expected.ravel(order="K"), strict=True)
        ):
            assert_same_value(left, right, f"{path}.flat[{position}]")
        return
    if actual.tobytes() != expected.tobytes():
        raise _fail(path, f"values differ:\n{actual!r}\n!=\n{expected!r}")


def _assert_same_pandas(actual: Any, expected: Any, path: str) -> None:
    import pandas as pd

    try:
        if isinstance(expected, pd.DataFrame):
            pd.testing.assert_frame_equal(
                actual,
                expected,
                check_exact=True,
                check_index_type=True,
                check_column_type=True,
                check_frame_type=True,
                check_names=True,
                check_freq=True,
            )
        elif isinstance(expected, pd.Series):
            pd.testing.assert_series_equal(
                actual,
                expected,
                check_exact=True,
                check_index_type=True,
                check_series_type=True,
                check_names=True,
                check_freq=True,
            )
        else:
            pd.testing.assert_index_equal(actual, expected, exact=True, check_exact=True)
    except AssertionError as exc:
        raise _fail(path, str(exc)) from None


def _assert_same_sparse(actual: Any, expected: Any, path: str) -> None:
    if actual.shape != expected.shape or actual.dtype != expected.dtype:
        raise _fail(path, f"{actual.shape} {actual.dtype} != {expected.shape} {expected.dtype}")
    if actual.format != expected.format:
        raise _fail(path, f"format {actual.format} != {expected.format}")
    left, right = actual.tocoo(), expected.tocoo()
    left.sum_duplicates()
    right.sum_duplicates()
    coords = getattr(left, "coords", None)
    left_parts = [left.data, *(coords if coords is not None else (left.row, left.col))]
    coords = getattr(right, "coords", None)
    right_parts = [right.data, *(coords if coords is not None else (right.row, right.col))]
    for name, left_part, right_part in zip(
        ["data", *(f"coords[{i}]" for i in range(len(left_parts) - 1))],
        left_parts,
        right_parts,
        strict=True,
    ):
        if not np.array_equal(left_part, right_part, equal_nan=left_part.dtype.kind in "fc"):
            raise _fail(f"{path}.{name}", f"{left_part!r} != {right_part!r}")


def assert_same_value(actual: Any, expected: Any, path: str = "value") -> None:
    """Assert that ``actual`` is ``expected`` in type and contents, all the way down.

    Parameters
    ----------
    actual
        The value to check (typically a value read back from storage).
    expected
        The reference value.
    path
        Name of the value in messages; inner positions are appended (``value[2]['a']``).

    Raises
    ------
    AssertionError
        Naming the first place where the values differ and how.
    """
    kind_type = type(expected)
    if type(actual) is not kind_type:
        raise _fail(path, f"type {type(actual).__name__} != {kind_type.__name__}")
    if kind_type is float:
        if not _same_float(actual, expected):
            raise _fail(path, f"{actual!r} != {expected!r}")
    elif kind_type is complex:
        if not (
            _same_float(actual.real, expected.real) and _same_float(actual.imag, expected.imag)
        ):
            raise _fail(path, f"{actual!r} != {expected!r}")
    elif kind_type is list or kind_type is tuple:
        if len(actual) != len(expected):
            raise _fail(path, f"length {len(actual)} != {len(expected)}")
        for position, (left, right) in enumerate(zip(actual, expected, strict=True)):
            assert_same_value(left, right, f"{path}[{position}]")
    elif kind_type is dict:
        if list(actual) != list(expected):
            raise _fail(path, f"keys {list(actual)} != {list(expected)} (order counts)")
        for key, right in expected.items():
            assert_same_value(actual[key], right, f"{path}[{key!r}]")
    elif kind_type is np.ndarray:
        _assert_same_array(actual, expected, path)
    elif isinstance(expected, np.generic):
        if actual.dtype.str != expected.dtype.str:
            raise _fail(path, f"dtype {actual.dtype.str} != {expected.dtype.str}")
        if actual.tobytes() != expected.tobytes() and not _both_nan(actual, expected):
            raise _fail(path, f"{actual!r} != {expected!r}")
    elif kind_type.__module__.startswith("pandas"):
        _assert_same_pandas(actual, expected, path)
    elif kind_type.__module__.startswith("scipy.sparse"):
        _assert_same_sparse(actual, expected, path)
    elif actual != expected:
        raise _fail(path, f"{actual!r} != {expected!r}")
