"""The value codec: exact round trips with types, a fixed byte format, and untrusted input."""

from __future__ import annotations

import contextlib
import datetime
import math
import struct
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from pytraj.errors import InvalidValueError, UnsupportedValueError
from pytraj.leaves.values import check_storable
from pytraj.storage.valuecodec import (
    FORMAT_VERSION,
    ValueDecodeError,
    dumps,
    dumps_each,
    dumps_flat_dicts,
    dumps_many,
    loads,
    loads_many,
)
from pytraj.testing.compare import assert_same_value
from pytraj.testing.strategies import storable_values


def round_trip(value: Any) -> Any:
    result = loads(dumps(value))
    assert_same_value(result, value)
    return result


def u32(n: int) -> bytes:
    return struct.pack("<I", n)


# -- the byte format ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (None, b"\x01N"),
        (True, b"\x01T"),
        (False, b"\x01F"),
        (-2, b"\x01i" + struct.pack("<q", -2)),
        (1.5, b"\x01f" + struct.pack("<d", 1.5)),
        (1 - 2j, b"\x01c" + struct.pack("<dd", 1.0, -2.0)),
        ("é", b"\x01s" + u32(2) + "é".encode()),
        (b"ab", b"\x01b" + u32(2) + b"ab"),
        ([1, None], b"\x01l" + u32(2) + b"i" + struct.pack("<q", 1) + b"N"),
        ((), b"\x01t" + u32(0)),
        ({"k": True}, b"\x01d" + u32(1) + u32(1) + b"kT"),
        (np.float32(1.5), b"\x01g\x03<f4" + struct.pack("<f", 1.5)),
        (np.datetime64(3, "s"), b"\x01g\x06<M8[s]" + struct.pack("<q", 3)),
        (np.str_("ab"), b"\x01u" + u32(2) + b"ab"),
        (np.bytes_(b"ab"), b"\x01y" + u32(2) + b"ab"),
        (
            np.array([[1, 2, 3]], dtype="<i2"),
            b"\x01a\x03<i2\x00\x02" + struct.pack("<2Q", 1, 3) + struct.pack("<3h", 1, 2, 3),
        ),
        (
            np.asfortranarray(np.array([[1, 2], [3, 4]], dtype="u1")),
            b"\x01a\x03|u1\x01\x02" + struct.pack("<2Q", 2, 2) + bytes([1, 3, 2, 4]),
        ),
    ],
    ids=repr,
)
def test_encodings_are_the_documented_bytes(value: Any, encoded: bytes) -> None:
    assert dumps(value) == encoded
    assert_same_value(loads(encoded), value)


def test_the_first_byte_is_the_format_version() -> None:
    assert FORMAT_VERSION == 1
    assert dumps({"a": [pd.DataFrame({"x": [1]})]})[0] == 1


# -- round trips of every kind ------------------------------------------------------------------

PYTHON_VALUES = {
    "none": None,
    "true": True,
    "int": 7,
    "int64-min": -(2**63),
    "int64-max": 2**63 - 1,
    "float": 0.1,
    "inf": -math.inf,
    "complex": complex(-0.0, math.nan),
    "str": "naïve ☃",
    "str-surrogate": "a\ud800b",
    "str-empty": "",
    "bytes": bytes(range(256)),
    "list": [1, "a", None, [2.0, (3,)]],
    "tuple": (1, (2, [3, {"x": ()}])),
    "dict-order": {"b": 1, "a": 2, "": {"z": 0, "y": 1}},
    "deep": [[[[[[[[[[1]]]]]]]]]],
}


@pytest.mark.parametrize("value", PYTHON_VALUES.values(), ids=PYTHON_VALUES.keys())
def test_python_values_round_trip_with_their_types(value: Any) -> None:
    result = round_trip(value)
    assert type(result) is type(value)
    assert repr(result) == repr(value)


def test_float_signs_and_nan_survive() -> None:
    assert math.copysign(1.0, loads(dumps(-0.0))) == -1.0
    assert math.isnan(loads(dumps(math.nan)))
    restored = loads(dumps([-0.0, math.nan]))
    assert math.copysign(1.0, restored[0]) == -1.0
    assert math.isnan(restored[1])


def test_ints_stay_ints_and_tuples_stay_tuples() -> None:
    restored = loads(dumps((1, 2.0, [3])))
    assert type(restored) is tuple
    assert [type(v) for v in restored] == [int, float, list]
    assert restored == (1, 2.0, [3])


def test_dict_key_order_is_kept() -> None:
    assert list(loads(dumps({"z": 1, "a": 2, "m": 3}))) == ["z", "a", "m"]


NUMPY_SCALARS = [
    np.bool_(True),
    np.int8(-128),
    np.uint16(65535),
    np.int32(-(2**31)),
    np.int64(2**63 - 1),
    np.uint64(2**64 - 1),
    np.float16(0.1),
    np.float32(1.5),
    np.float64(-0.0),
    np.float64("nan"),
    np.longdouble(1) / 3,
    np.complex64(1 - 1j),
    np.complex128(complex(0.5, -0.0)),
    np.clongdouble(1j) / 3,
    np.datetime64("2020-02-29T12:34:56.789", "ms"),
    np.datetime64("NaT", "ns"),
    np.datetime64("2020", "Y"),
    np.timedelta64(-5, "us"),
    np.str_("ünï"),
    np.str_(""),
    np.str_("a\x00"),
    np.bytes_(b"\x01\x02\x00"),
]


@pytest.mark.parametrize("value", NUMPY_SCALARS, ids=lambda v: f"{type(v).__name__}-{v!r}")
def test_numpy_scalars_keep_their_type_and_dtype(value: Any) -> None:
    result = round_trip(value)
    assert type(result) is type(value)
    assert result.dtype == value.dtype
    assert result.tobytes() == value.tobytes()


def test_np_int64_does_not_become_int() -> None:
    result = loads(dumps(np.int64(3)))
    assert type(result) is np.int64
    assert result == 3
    assert type(loads(dumps(np.float64(1.5)))) is np.float64


ARRAYS = {
    "f8-2d": np.arange(6.0).reshape(2, 3),
    "fortran": np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4)),
    "fortran-3d": np.asfortranarray(np.arange(24.0).reshape(2, 3, 4)),
    "0-d": np.array(-0.0),
    "empty": np.empty((0, 3), dtype=np.int16),
    "empty-fortran": np.asfortranarray(np.empty((3, 0))),
    "bool": np.array([True, False, True]),
    "u8": np.array([0, 2**64 - 1], dtype=np.uint64),
    "f2": np.array([0.1, -0.0, np.inf], dtype=np.float16),
    "c8": np.array([1 + 2j, np.nan], dtype=np.complex64),
    "longdouble": np.array([1, 2], dtype=np.longdouble) / 3,
    "U": np.array([["a", "bcd"], ["", "é"]]),
    "S": np.array([b"a", b"\x00b", b""]),
    "M8-ns": np.array(["2020-01-01T00:00:00.000000001", "NaT"], dtype="M8[ns]"),
    "M8-D": np.array(["1900-01-01", "2100-12-31"], dtype="M8[D]"),
    "m8-s": np.array([1, -1], dtype="m8[s]"),
    "big-endian": np.arange(4, dtype=">f8").reshape(2, 2),
    "big-endian-i4": np.arange(3, dtype=">i4"),
    "non-contiguous": np.arange(10.0)[::2],
}


@pytest.mark.parametrize("value", ARRAYS.values(), ids=ARRAYS.keys())
def test_arrays_round_trip_with_dtype_shape_and_order(value: np.ndarray[Any, Any]) -> None:
    result = loads(dumps(value))
    assert type(result) is np.ndarray
    assert result.dtype == value.dtype
    assert result.dtype.str == value.dtype.str
    assert result.shape == value.shape
    assert result.tobytes() == value.tobytes()
    if value.flags.f_contiguous and not value.flags.c_contiguous:
        assert result.flags.f_contiguous
    else:
        assert result.flags.c_contiguous
    assert result.flags.writeable
    assert result.flags.owndata or result.base is not None


def test_fortran_order_is_kept_and_c_order_too() -> None:
    fortran = loads(dumps(np.asfortranarray(np.ones((3, 2)))))
    assert fortran.flags.f_contiguous
    assert not fortran.flags.c_contiguous
    c_order = loads(dumps(np.ones((3, 2))))
    assert c_order.flags.c_contiguous
    assert not c_order.flags.f_contiguous


def test_decoded_arrays_do_not_share_memory_with_the_input() -> None:
    buffer = bytearray(dumps(np.arange(4.0)))
    array = loads(buffer)
    buffer[-8:] = struct.pack("<d", 99.0)
    assert array.tolist() == [0.0, 1.0, 2.0, 3.0]
    array[0] = 5.0
    assert array[0] == 5.0


def test_memoryview_and_bytearray_input() -> None:
    data = dumps({"a": np.arange(3)})
    expected = {"a": np.arange(3)}
    assert_same_value(loads(memoryview(data)), expected)
    assert_same_value(loads(bytearray(data)), expected)
    assert_same_value(loads(memoryview(b"xx" + data)[2:]), expected)
    assert_same_value(loads(np.frombuffer(data, dtype=np.uint8)), expected)
    strided = np.repeat(np.frombuffer(data, dtype=np.uint8), 2)  # every byte twice
    assert_same_value(loads(strided[::2].data), expected)  # a strided memoryview


# -- pandas -------------------------------------------------------------------------------------


def every_column_kind() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "i8": np.array([1, -(2**63), 2**63 - 1]),
            "i2": np.array([1, 2, 3], dtype=np.int16),
            "u4": np.array([1, 2, 3], dtype=np.uint32),
            "f8": [0.5, np.nan, -0.0],
            "f4": np.array([0.5, np.inf, 1], dtype=np.float32),
            "c16": [1j, 2, np.nan],
            "b": [True, False, True],
            "str": pd.Series(["a", None, "c"]),
            "object": np.array(["x", "y", None], dtype=object),
            "mixed": np.array([1, 2.5, "s"], dtype=object),
            "string": pd.array(["a", None, "b"], dtype="string"),
            "category": pd.Categorical(["b", "a", None], categories=["b", "a"], ordered=True),
            "naive-ns": pd.to_datetime(["2020-01-01 00:00", "NaT", "2021-06-30 12:00"]),
            "naive-s": pd.Series(pd.date_range("2020", periods=3, freq="D", unit="s")),
            "tz": pd.date_range("2020-03-29", periods=3, freq="h", tz="Europe/Berlin"),
            "tz-offset": pd.date_range(
                "2020", periods=3, tz=datetime.timezone(datetime.timedelta(hours=5, minutes=30))
            ),
            "timedelta": pd.to_timedelta([1, None, 3], unit="s"),
            "Int64": pd.array([1, None, -(2**63)], dtype="Int64"),
            "UInt8": pd.array([255, None, 0], dtype="UInt8"),
            "Float64": pd.array([0.5, None, 1.5], dtype="Float64"),
            "boolean": pd.array([True, None, False], dtype="boolean"),
        },
        index=pd.Index(["r1", "r2", "r3"], name="row"),
    )


def test_dataframe_with_every_column_kind_round_trips_exactly() -> None:
    frame = every_column_kind()
    result = loads(dumps(frame))
    pd.testing.assert_frame_equal(
        result, frame, check_exact=True, check_index_type=True, check_column_type=True
    )
    assert result.dtypes.to_dict() == frame.dtypes.to_dict()
    assert result["category"].cat.ordered is True
    assert list(result["category"].cat.categories) == ["b", "a"]
    # zoneinfo in pandas 3, pytz in pandas 2: the kind of time zone is kept too.
    assert type(result["tz"].dt.tz) is type(frame["tz"].dt.tz)
    assert str(result["tz"].dt.tz) == "Europe/Berlin"
    assert str(result["naive-s"].dtype) == "datetime64[s]"
    assert result.index.name == "row"
    assert math.copysign(1.0, result["f8"].iloc[2]) == -1.0


@pytest.mark.parametrize(
    "index",
    [
        pd.RangeIndex(3, 9, 2, name="r"),
        pd.Index([3, 1, 2], dtype=np.int32),
        pd.Index([0.5, 1.5, np.nan]),
        pd.Index(["a", "b", "a"]),
        pd.Index(["a", "b", None], dtype=object),
        pd.Index([True, False, True]),
        pd.date_range("2020", periods=3, freq="D", name="day"),
        pd.date_range("2020", periods=3, freq="h", tz="UTC"),
        pd.DatetimeIndex(["2020-01-05", "2020-01-01", "NaT"], tz="America/New_York"),
        pd.timedelta_range("1s", periods=3, freq="s"),
        pd.CategoricalIndex(["x", "y", "x"], ordered=True, name="cat"),
        pd.MultiIndex.from_arrays([[1, 1, 2], ["a", "b", "a"]], names=["n", None]),
        pd.MultiIndex.from_product([pd.date_range("2020", periods=1, tz="UTC"), [1, 2, 3]]),
        pd.Index(pd.array([1, None, 3], dtype="Int64")),
    ],
    ids=lambda index: f"{type(index).__name__}-{index.dtype}",
)
def test_series_keep_their_index_type(index: pd.Index) -> None:
    series = pd.Series([1.0, 2.0, 3.0], index=index, name=("tuple", 1))
    result = loads(dumps(series))
    pd.testing.assert_series_equal(
        result, series, check_exact=True, check_index_type=True, check_freq=True
    )
    assert type(result.index) is type(index)
    assert result.name == ("tuple", 1)


def test_frames_with_odd_labels_round_trip() -> None:
    duplicated = pd.DataFrame([[1, 2.0], [3, 4.0]], columns=["a", "a"])
    round_trip(duplicated)
    int_labels = pd.DataFrame({0: [1], 5: ["x"]})
    round_trip(int_labels)
    multi_columns = pd.DataFrame(
        np.arange(4).reshape(1, 4),
        columns=pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["letter", "digit"]),
    )
    round_trip(multi_columns)
    duplicated_rows = pd.DataFrame({"v": [1, 2]}, index=[7, 7])
    round_trip(duplicated_rows)


def test_empty_frames_and_series_round_trip() -> None:
    round_trip(pd.DataFrame())
    round_trip(pd.DataFrame(index=pd.date_range("2020", periods=2)))
    round_trip(pd.DataFrame({"a": pd.Series([], dtype="float32")}))
    round_trip(pd.Series([], dtype="Int64", name="n"))


def test_series_of_strings_keep_their_string_dtype() -> None:
    default = pd.Series(["a", None, "b"])
    result = round_trip(default)
    assert result.dtype == default.dtype  # str in pandas 3, object in pandas 2
    explicit = pd.Series(["a", None], dtype="string")
    # The storage comes back as pandas chose it: pyarrow when pyarrow is installed (the
    # test extra installs it), python otherwise.
    assert loads(dumps(explicit)).dtype == explicit.dtype
    python = pd.Series(["a", None], dtype=pd.StringDtype("python"))
    assert loads(dumps(python)).dtype == pd.StringDtype("python")


def test_pyarrow_strings_load_as_python_strings_without_pyarrow() -> None:
    written = dumps(pd.Series(["a", None], dtype=pd.StringDtype("pyarrow")))
    code = (
        "import sys; sys.modules['pyarrow'] = None; "
        "from pytraj.storage.valuecodec import loads; "
        "s = loads(bytes.fromhex(sys.argv[1])); "
        "print(s.dtype.storage, s.tolist())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, written.hex()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "python ['a', <NA>]"


def test_pandas_values_nest_in_containers() -> None:
    value = {"frame": every_column_kind(), "series": [pd.Series([1, 2], name="s")]}
    round_trip(value)


def test_unsupported_pandas_values_are_refused_by_dumps() -> None:
    with pytest.raises(UnsupportedValueError, match=r"column 'p' has dtype period\[D\]"):
        dumps(pd.DataFrame({"p": pd.period_range("2020", periods=2, freq="D")}))
    with pytest.raises(UnsupportedValueError, match="a pandas Index is not a value"):
        dumps(pd.Index([1, 2]))


# -- scipy sparse -------------------------------------------------------------------------------

DENSE = np.array([[0.0, 1.5, 0.0, -0.0], [2.0, 0.0, 0.0, np.nan], [0.0, 0.0, 3.0, 0.0]])
SPARSE_CLASSES = [
    getattr(sp, f"{fmt}_{kind}")
    for fmt in ("csr", "csc", "coo", "bsr", "dia", "lil", "dok")
    for kind in ("matrix", "array")
]


@pytest.mark.parametrize("cls", SPARSE_CLASSES, ids=lambda cls: cls.__name__)
def test_sparse_matrices_keep_class_format_dtype_and_shape(cls: Any) -> None:
    matrix = cls(DENSE.astype(np.float32))
    result = loads(dumps(matrix))
    assert type(result) is cls
    assert result.format == matrix.format
    assert result.dtype == np.float32
    assert result.shape == (3, 4)
    np.testing.assert_array_equal(result.toarray(), matrix.toarray())


def test_sparse_explicit_zeros_and_integer_dtypes_survive() -> None:
    matrix = sp.csr_array((np.array([0, 7], dtype=np.int8), np.array([0, 2]), np.array([0, 1, 2])))
    result = loads(dumps(matrix))
    assert result.nnz == 2
    assert result.dtype == np.int8
    assert result.data.tolist() == [0, 7]
    assert result.indices.tolist() == [0, 2]


def test_complex_and_bool_sparse_round_trip() -> None:
    round_trip(sp.coo_matrix(np.array([[0, 1j], [2, 0]])))
    round_trip(sp.dok_matrix(np.array([[True, False], [False, True]])))


def test_one_dimensional_sparse_arrays_round_trip() -> None:
    vector = sp.coo_array(np.array([0.0, 2.0, 0.0, 1.0]))
    if vector.ndim != 1:
        pytest.skip("this scipy has no 1-d sparse arrays")
    result = round_trip(vector)
    assert result.shape == (4,)


# -- what dumps refuses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [{1, 2}, object(), np.array([1, "a"], dtype=object), {1: "a"}, bytearray(b"x")],
    ids=["set", "object", "object-array", "int-key", "bytearray"],
)
def test_dumps_refuses_unsupported_values(value: Any) -> None:
    with pytest.raises(UnsupportedValueError, match="PickleResult / PickleParameter"):
        dumps(value)
    with pytest.raises(UnsupportedValueError):
        dumps([1, value])


@pytest.mark.parametrize("number", [2**63, -(2**63) - 1])
def test_dumps_refuses_ints_beyond_int64(number: int) -> None:
    with pytest.raises(InvalidValueError, match=f"the int {number} does not fit in 64 bits"):
        dumps(number)
    with pytest.raises(InvalidValueError, match="does not fit in 64 bits"):
        dumps({"a": [number]})


def test_dumps_refuses_self_containing_lists() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(InvalidValueError, match="nested deeper than 100 levels"):
        dumps(loop)


def test_nesting_limits_agree_with_check_storable() -> None:
    def nest(value: Any, levels: int) -> Any:
        for _ in range(levels):
            value = [value]
        return value

    deepest = nest(1, 100)
    check_storable(deepest, where="r")
    assert_same_value(loads(dumps(deepest)), deepest)
    with pytest.raises(InvalidValueError, match="nested deeper than 100 levels"):
        dumps(nest(1, 101))
    with pytest.raises(InvalidValueError, match="nested deeper than 100 levels"):
        check_storable(nest(1, 101), where="r")
    frame = nest(
        pd.DataFrame(
            {"a": pd.Categorical(["x"])},
            index=pd.MultiIndex.from_arrays([["i"], [1]], names=[("n", 1), None]),
        ),
        92,
    )
    check_storable(frame, where="r")
    assert_same_value(loads(dumps(frame)), frame)
    with pytest.raises(InvalidValueError, match="nested deeper"):
        dumps([frame])
    with pytest.raises(InvalidValueError, match="pandas values may sit at most 92 levels"):
        check_storable([frame], where="r")


# -- malformed input ------------------------------------------------------------------------------

MALFORMED = {
    "empty": b"",
    "version-0": b"\x00N",
    "version-2": b"\x02N",
    "unknown-tag": b"\x01?",
    "trailing": b"\x01NN",
    "short-float": b"\x01f\x00\x00",
    "short-str": b"\x01s" + u32(5) + b"ab",
    "bad-utf8": b"\x01s" + u32(1) + b"\xff",
    "huge-list": b"\x01l\xff\xff\xff\xff",
    "huge-dict": b"\x01d\xff\xff\xff\x00",
    "duplicate-key": b"\x01d" + u32(2) + (u32(1) + b"aN") * 2,
    "object-dtype": b"\x01a\x03|O8\x00\x01" + struct.pack("<Q", 1) + b"\x00" * 8,
    "structured-dtype": b"\x01g\x03|V8" + b"\x00" * 8,
    "str-scalar-as-g": b"\x01g\x03<U1" + b"a\x00\x00\x00",
    "unknown-dtype": b"\x01a\x03<z9\x00\x00",
    "huge-array": b"\x01a\x03<f8\x00\x02" + struct.pack("<2Q", 2**31, 2**31),
    "overflowing-shape": b"\x01a\x03<f8\x00\x02" + struct.pack("<2Q", 2**64 - 1, 0),
    "bad-order": b"\x01a\x03<f8\x07\x00" + b"\x00" * 8,
    "too-many-dims": b"\x01a\x03<f8\x00\xff",
    "zero-itemsize": b"\x01a\x03<U0\x00\x01" + struct.pack("<Q", 2**40),
    "deep-nesting": b"\x01" + (b"l" + u32(1)) * 5000 + b"N",
    "sparse-bad-class": b"\x01Z\x03abc\x02",
    "pandas-bad-kind": b"\x01QN?",
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_input_raises_value_error(data: bytes) -> None:
    with pytest.raises(ValueDecodeError) as info:
        loads(data)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith("malformed pytraj value encoding: ")


def test_newer_versions_are_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="format version 2 is not known"):
        loads(b"\x02N")


def test_non_buffers_are_refused() -> None:
    with pytest.raises(ValueDecodeError, match="expected bytes, got str"):
        loads("N")  # type: ignore[arg-type]  # the point of the test


def test_sparse_indices_out_of_bounds_are_refused() -> None:
    # Compiled scipy routines trust indices: a bad one must fail at loads, not later.
    matrix = sp.csr_matrix(np.array([[0.0, 0.0, 0.0, 1.5], [0.0, 2.5, 0.0, 0.0]]))
    good = dumps(matrix)
    indices = matrix.indices.tobytes()
    assert good.count(indices) == 1
    bad = good.replace(indices, np.array([3, 99], dtype=matrix.indices.dtype).tobytes())
    with pytest.raises(ValueDecodeError, match="ValueError"):
        loads(bad)


def test_category_codes_out_of_range_are_refused() -> None:
    good = dumps(pd.Series(pd.Categorical(["a", "b"])))
    bad = good[:-2] + bytes([1, 5])  # codes int8 [0, 1] -> [1, 5]; only 2 categories
    with pytest.raises(ValueDecodeError):
        loads(bad)


def complete_encodings() -> st.SearchStrategy[bytes]:
    return storable_values().map(dumps)


@settings(max_examples=150)
@given(complete_encodings(), st.data())
def test_truncated_encodings_raise_only_value_errors(data: bytes, draw: st.DataObject) -> None:
    cut = draw.draw(st.integers(0, len(data) - 1), label="cut")
    with pytest.raises(ValueDecodeError):  # anything else escapes and fails the test
        loads(data[:cut])


@settings(max_examples=150)
@given(complete_encodings(), st.data())
def test_damaged_encodings_decode_or_raise_value_errors(data: bytes, draw: st.DataObject) -> None:
    position = draw.draw(st.integers(0, len(data) - 1), label="position")
    byte = draw.draw(st.integers(0, 255), label="byte")
    damaged = data[:position] + bytes([byte]) + data[position + 1 :]
    with contextlib.suppress(ValueDecodeError):  # anything else escapes and fails the test
        loads(damaged)
    if damaged == data:
        assert dumps(loads(damaged)) == data


# -- the property -------------------------------------------------------------------------------


@settings(max_examples=200)
@given(storable_values())
def test_loads_dumps_is_the_identity_with_exact_types(value: Any) -> None:
    assert_same_value(loads(dumps(value)), value)


@given(st.lists(storable_values(max_leaves=3), max_size=4))
def test_dumps_many_round_trips_a_list(values: list[Any]) -> None:
    encoded = dumps_many(values)
    assert_same_value(loads_many(encoded), values)
    assert encoded == dumps(values)


def test_loads_many_refuses_a_single_value() -> None:
    with pytest.raises(ValueDecodeError, match="expected a list of values, found int"):
        loads_many(dumps(3))


@pytest.mark.parametrize(
    "column",
    [
        [{"label": "ok", "k": 3, "flag": True}, {"label": "odd", "k": -4, "flag": False}],
        [{"a": 1.5}, {"a": -0.0}],
        [{"a": 1}, {"a": 2.0}],  # mixed kinds under one key: value by value
        [{"a": 1}, {"b": 2}],  # other keys
        [{"a": 2**63 - 1}, {"a": -(2**63)}],
        [{"é": "ü\ud800"}, {"é": ""}],
        [{"a": {"b": 1}}, {"a": {"b": 2}}],  # nested: value by value
        [1, "x", [1, 2], None],
    ],
    ids=repr,
)
def test_dumps_each_gives_the_bytes_of_dumps(column: list[Any]) -> None:
    encoded = dumps_each(column)
    assert encoded == [dumps(value) for value in column]
    assert [loads(raw) for raw in encoded] == column


def test_dumps_each_refuses_what_dumps_refuses() -> None:
    with pytest.raises(InvalidValueError, match="does not fit in 64 bits"):
        dumps_each([{"a": 1}, {"a": 2**63}])
    assert dumps_flat_dicts([{"a": 1}, {"a": 2**63}]) is None
    assert dumps_flat_dicts([]) is None
