"""Hypothesis strategies for node names and every kind of value pytraj stores.

Use them in property tests of storage backends and of code built on pytraj::

    from hypothesis import given
    from pytraj.testing.strategies import storable_values
    from pytraj.testing.compare import assert_same_value

    @given(storable_values())
    def test_round_trip(value):
        assert_same_value(loads(dumps(value)), value)

Sizes are kept small (a few elements per array, container and frame) so that a hundred
examples take well under a second. This is the only module of pytraj that imports
Hypothesis, a test dependency.
"""

from __future__ import annotations

import datetime
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import strategies as st

__all__ = [
    "ARRAY_DTYPES",
    "SCALAR_DTYPES",
    "arrays",
    "containers",
    "dataframes",
    "names",
    "numpy_scalars",
    "scalars",
    "series",
    "sparse_matrices",
    "storable_values",
]

#: dtypes of numpy scalars: every numeric kind, bool, datetime64 and timedelta64.
SCALAR_DTYPES = tuple(
    np.dtype(code)
    for code in [
        *("?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8"),
        *("f2", "f4", "f8", "c8", "c16"),
        *("M8[D]", "M8[s]", "M8[ns]", "m8[ms]", "m8[us]"),
    ]
)
#: dtypes of arrays: the scalar ones, fixed-width str and bytes, and big-endian variants.
ARRAY_DTYPES = (
    *SCALAR_DTYPES,
    *(np.dtype(code) for code in ("U1", "U4", "S1", "S4", ">i4", ">f8", ">c16", ">M8[us]")),
)


def names(max_size: int = 12) -> st.SearchStrategy[str]:
    """Valid node names: ``[A-Za-z0-9_-]+`` without a leading underscore.

    Parameters
    ----------
    max_size
        Longest name drawn.
    """
    tail = max(max_size - 1, 0)
    return st.from_regex(rf"[A-Za-z0-9-][A-Za-z0-9_-]{{0,{tail}}}", fullmatch=True)


def scalars() -> st.SearchStrategy[Any]:
    """Python scalars: None, bool, int64 ints, floats (nan, inf, -0.0), complex, str, bytes."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(),
        st.complex_numbers(),
        st.text(max_size=12),
        st.binary(max_size=12),
    )


def numpy_scalars() -> st.SearchStrategy[Any]:
    """numpy scalars of every dtype in :data:`SCALAR_DTYPES`, plus ``np.str_``/``np.bytes_``."""
    numeric = st.sampled_from(SCALAR_DTYPES).flatmap(hnp.from_dtype)
    strings = st.text(max_size=6).map(np.str_) | st.binary(max_size=6).map(np.bytes_)
    return numeric | strings


def arrays(max_side: int = 4) -> st.SearchStrategy[np.ndarray[Any, Any]]:
    """Arrays of every dtype in :data:`ARRAY_DTYPES`: 0-d, empty, up to 3-d, C or Fortran.

    Parameters
    ----------
    max_side
        Longest side of an array.
    """
    shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=max_side)
    plain = hnp.arrays(dtype=st.sampled_from(ARRAY_DTYPES), shape=shapes)
    return st.tuples(plain, st.booleans()).map(
        lambda pair: np.asfortranarray(pair[0]) if pair[1] and pair[0].ndim >= 2 else pair[0]
    )


def containers(children: st.SearchStrategy[Any], max_size: int = 4) -> st.SearchStrategy[Any]:
    """Lists, tuples and str-keyed dicts of ``children`` (the ``extend`` of ``st.recursive``).

    Parameters
    ----------
    children
        Strategy for the elements.
    max_size
        Most elements per container.
    """
    return st.one_of(
        st.lists(children, max_size=max_size),
        st.lists(children, max_size=max_size).map(tuple),
        st.dictionaries(st.text(max_size=6), children, max_size=max_size),
    )


# -- pandas ---------------------------------------------------------------------------------

_TIME_ZONES = ("UTC", "Europe/Berlin", "America/New_York")
_SHORT_TEXT = st.text(alphabet="abcxyzé ", max_size=4)


def _ints(n: int, dtype: str = "i8") -> st.SearchStrategy[np.ndarray[Any, Any]]:
    return hnp.arrays(np.dtype(dtype), n)


#: About 1,000 years around 1970 in seconds: localizable in every time zone.
_TZ_SPAN = 2**35


def _datetimes(n: int, unit: str, span: int = 2**40) -> st.SearchStrategy[np.ndarray[Any, Any]]:
    # Well inside pandas' bounds for every unit; NaT as the smallest int64. Time zones
    # need Python's datetime range (years 1-9999): pass span=_TZ_SPAN seconds for them.
    ticks = st.integers(-span, span) | st.just(-(2**63))
    return st.lists(ticks, min_size=n, max_size=n).map(
        lambda values: np.array(values, dtype=np.int64).view(f"M8[{unit}]")
    )


def _optional(strategy: st.SearchStrategy[Any], n: int) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.none() | strategy, min_size=n, max_size=n)


def _columns(n: int) -> st.SearchStrategy[Any]:
    """One column of ``n`` values, of any supported kind (numpy array or pandas array)."""
    import pandas as pd

    units = st.sampled_from(["s", "ms", "us", "ns"])
    return st.one_of(
        _ints(n),
        _ints(n, "i2"),
        _ints(n, "u4"),
        hnp.arrays(np.float64, n),
        hnp.arrays(np.float32, n),
        hnp.arrays(np.bool_, n),
        hnp.arrays(np.complex128, n),
        units.flatmap(lambda unit: _datetimes(n, unit)),
        _ints(n).map(lambda values: values.view("m8[ns]")),
        st.tuples(units, _datetimes(n, "s", _TZ_SPAN), st.sampled_from(_TIME_ZONES)).map(
            lambda args: (
                pd.DatetimeIndex(args[1].astype(f"M8[{args[0]}]"))
                .tz_localize("UTC")
                .tz_convert(args[2])
                .array
            )
        ),
        _datetimes(n, "s", _TZ_SPAN).map(
            lambda values: (
                pd.DatetimeIndex(values)
                .tz_localize(datetime.timezone(datetime.timedelta(hours=-3)))
                .array
            )
        ),
        st.lists(_SHORT_TEXT, min_size=n, max_size=n).map(lambda v: np.array(v, dtype=object)),
        _optional(st.integers(-5, 5) | st.floats() | _SHORT_TEXT, n).map(_object_array),
        _optional(_SHORT_TEXT, n).map(lambda values: pd.array(values, dtype="string")),
        _optional(_SHORT_TEXT, n).map(lambda values: pd.Series(values, dtype="str").array),
        st.tuples(st.lists(st.sampled_from("abc"), min_size=n, max_size=n), st.booleans()).map(
            lambda args: pd.Categorical(args[0], categories=["c", "a", "b"], ordered=args[1])
        ),
        _optional(st.integers(-(2**63), 2**63 - 1), n).map(lambda v: pd.array(v, dtype="Int64")),
        _optional(st.integers(0, 255), n).map(lambda v: pd.array(v, dtype="UInt8")),
        _optional(st.floats(allow_nan=False), n).map(lambda v: pd.array(v, dtype="Float64")),
        _optional(st.booleans(), n).map(lambda v: pd.array(v, dtype="boolean")),
    )


def _object_array(values: list[Any]) -> np.ndarray[Any, Any]:
    array = np.empty(len(values), dtype=object)
    for position, value in enumerate(values):
        array[position] = value
    return array


def _index_names() -> st.SearchStrategy[Any]:
    return st.none() | _SHORT_TEXT | st.integers(-3, 3)


def _indexes(n: int) -> st.SearchStrategy[Any]:
    """An index of length ``n``: Range, numeric, str, datetime, categorical or MultiIndex."""
    import pandas as pd

    def plain(args: tuple[Any, Any]) -> Any:
        values, name = args
        dtype = values.dtype if isinstance(values, np.ndarray) else None
        return pd.Index(values, dtype=dtype, name=name)

    ranges = st.tuples(st.integers(-5, 5), st.sampled_from([1, 2, -1]), _index_names()).map(
        lambda args: pd.RangeIndex(args[0], args[0] + n * args[1], args[1], name=args[2])
    )
    values = st.one_of(
        _ints(n),
        hnp.arrays(np.float64, n, elements=st.floats(allow_nan=False)),
        st.lists(_SHORT_TEXT, min_size=n, max_size=n).map(lambda v: np.array(v, dtype=object)),
        st.lists(_SHORT_TEXT, min_size=n, max_size=n).map(lambda v: pd.array(v, dtype="str")),
        _datetimes(n, "ns"),
        _datetimes(n, "s", _TZ_SPAN).map(
            lambda v: pd.DatetimeIndex(v).tz_localize("UTC").tz_convert("Europe/Berlin").array
        ),
        st.lists(st.sampled_from("ab"), min_size=n, max_size=n).map(pd.Categorical),
    )
    multi = st.tuples(_ints(n), st.lists(_SHORT_TEXT, min_size=n, max_size=n)).map(
        lambda args: pd.MultiIndex.from_arrays(list(args), names=["number", None])
    )
    return ranges | st.tuples(values, _index_names()).map(plain) | multi


def series(max_rows: int = 4) -> st.SearchStrategy[Any]:
    """Small pandas Series of every supported dtype and index type.

    Parameters
    ----------
    max_rows
        Longest Series drawn.
    """
    import pandas as pd

    def build(args: tuple[Any, Any, Any]) -> Any:
        values, index, name = args
        dtype = values.dtype if isinstance(values, np.ndarray) else None
        return pd.Series(values, index=index, name=name, dtype=dtype)

    return st.integers(0, max_rows).flatmap(
        lambda n: st.tuples(_columns(n), _indexes(n), _index_names()).map(build)
    )


def dataframes(max_rows: int = 4, max_columns: int = 4) -> st.SearchStrategy[Any]:
    """Small pandas DataFrames mixing column dtypes, with any index and column labels.

    Parameters
    ----------
    max_rows, max_columns
        Largest frame drawn.
    """
    import pandas as pd

    def build(args: tuple[list[Any], Any, Any]) -> Any:
        columns, index, labels = args
        frame = pd.DataFrame(
            {
                position: pd.Series(
                    values, dtype=values.dtype if isinstance(values, np.ndarray) else None
                )
                for position, values in enumerate(columns)
            },
            index=pd.RangeIndex(len(index)),
        )
        frame.index = index
        if labels is not None:
            frame.columns = pd.Index(labels[: len(columns)], dtype=object)
        return frame

    def of_size(n: int, k: int) -> st.SearchStrategy[Any]:
        labels = st.none() | st.lists(_SHORT_TEXT, min_size=k, max_size=k)
        return st.tuples(st.lists(_columns(n), min_size=k, max_size=k), _indexes(n), labels)

    sizes = st.tuples(st.integers(0, max_rows), st.integers(0, max_columns))
    return sizes.flatmap(lambda size: of_size(*size).map(build))


# -- scipy ----------------------------------------------------------------------------------

_SPARSE_DTYPES = tuple(np.dtype(code) for code in ("f8", "f4", "i8", "i1", "c16", "?"))
_SPARSE_FORMATS = ("csr", "csc", "coo", "bsr", "dia", "lil", "dok")


def sparse_matrices(max_side: int = 5) -> st.SearchStrategy[Any]:
    """scipy sparse matrices and arrays of every format from small, mostly-zero data.

    Parameters
    ----------
    max_side
        Most rows and columns.
    """
    import scipy.sparse as sp

    def dense(dtype: np.dtype[Any]) -> st.SearchStrategy[np.ndarray[Any, Any]]:
        elements = st.just(dtype.type(0)) | hnp.from_dtype(dtype)
        shape = hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=max_side)
        return hnp.arrays(dtype, shape, elements=elements)

    classes = st.sampled_from(
        [getattr(sp, f"{fmt}_{kind}") for fmt in _SPARSE_FORMATS for kind in ("matrix", "array")]
    )
    data = st.sampled_from(_SPARSE_DTYPES).flatmap(dense)
    return st.tuples(classes, data).map(lambda args: args[0](args[1]))


def storable_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Every kind of storable value, nested in lists, tuples and dicts.

    Parameters
    ----------
    max_leaves
        Most non-container values in one example (keeps generation fast).
    """
    leaves = st.one_of(
        scalars(),
        numpy_scalars(),
        arrays(),
        series(),
        dataframes(),
        sparse_matrices(),
    )
    return st.recursive(leaves, containers, max_leaves=max_leaves)
