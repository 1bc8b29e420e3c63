"""Which values can be stored, how explored values are coerced, and how values are described."""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given

from pytraj.errors import InvalidValueError, PytrajError, UnsupportedValueError
from pytraj.leaves.values import check_storable, coerce_like, coerce_range, describe, short_repr
from pytraj.testing.strategies import storable_values

WHERE = "results.z"


class Point(NamedTuple):
    x: int
    y: int


class Color(enum.IntEnum):
    RED = 1


def refusal(value: Any, error: type[Exception] = UnsupportedValueError) -> str:
    """Return the message check_storable raises for ``value``."""
    with pytest.raises(error) as info:
        check_storable(value, where=WHERE)
    assert isinstance(info.value, PytrajError)
    return str(info.value)


# -- check_storable: accepted -------------------------------------------------------------------

ACCEPTED = {
    "none": None,
    "bool": True,
    "int": 3,
    "int64-min": -(2**63),
    "int64-max": 2**63 - 1,
    "float": 1.5,
    "nan": float("nan"),
    "complex": 1 + 2j,
    "str": "text",
    "bytes": b"\x00raw",
    "np.float32": np.float32(1.5),
    "np.int8": np.int8(-3),
    "np.uint64": np.uint64(2**64 - 1),
    "np.bool_": np.bool_(True),
    "np.complex64": np.complex64(1j),
    "np.longdouble": np.longdouble(1) / 3,
    "np.datetime64": np.datetime64("2020-01-01T12:00", "s"),
    "np.timedelta64": np.timedelta64(5, "ms"),
    "np.str_": np.str_("ab"),
    "np.bytes_": np.bytes_(b"ab"),
    "array-f8": np.zeros((3, 2)),
    "array-fortran": np.asfortranarray(np.ones((2, 3), dtype=np.int16)),
    "array-0d": np.array(2.5),
    "array-empty": np.empty((0, 4)),
    "array-bool": np.array([True, False]),
    "array-U": np.array(["a", "bcd"]),
    "array-S": np.array([b"a", b"bc"]),
    "array-M8": np.array(["2020-01-01", "NaT"], dtype="M8[D]"),
    "array-m8": np.array([1, 2], dtype="m8[us]"),
    "array-big-endian": np.arange(3, dtype=">f8"),
    "array-c8": np.ones(2, dtype=np.complex64),
    "list": [1, "a", None],
    "tuple": (1.0, (2, [3])),
    "dict": {"a": {"b": [1, 2.0]}, "c": ()},
    "empty-containers": [[], (), {}],
    "dataframe": pd.DataFrame(
        {
            "i": [1, 2],
            "f": [0.5, np.nan],
            "s": ["a", "b"],
            "c": pd.Categorical(["x", "y"]),
            "t": pd.date_range("2020", periods=2, tz="Europe/Berlin"),
            "n": pd.array([1, None], dtype="Int64"),
            "b": pd.array([True, None], dtype="boolean"),
            "o": np.array(["x", None], dtype=object),
        }
    ),
    "series-multiindex": pd.Series(
        [1.0, 2.0], index=pd.MultiIndex.from_arrays([[1, 2], ["a", "b"]]), name="v"
    ),
    "series-datetimeindex": pd.Series([1, 2], index=pd.date_range("2020", periods=2)),
    "series-categoricalindex": pd.Series([1, 2], index=pd.CategoricalIndex(["a", "b"])),
    "series-string": pd.Series(["a", None], dtype="string"),
    "csr_matrix": sp.csr_matrix(np.eye(3)),
    "csr_array": sp.csr_array(np.eye(3)),
    "coo_matrix": sp.coo_matrix(np.eye(2)),
    "bsr_array": sp.bsr_array(np.eye(2)),
    "dia_matrix": sp.dia_matrix(np.eye(2)),
    "lil_matrix": sp.lil_matrix(np.eye(2)),
    "dok_array": sp.dok_array(np.eye(2)),
    "csc_array": sp.csc_array(np.eye(2, dtype=np.complex128)),
    "nested-mix": [np.arange(3), {"frame": pd.DataFrame({"a": [1]})}, sp.csr_array((2, 2))],
}


@pytest.mark.parametrize("value", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_check_storable_accepts(value: Any) -> None:
    check_storable(value, where=WHERE)
    # A parameter with a None default takes any storable value as it is.
    assert coerce_like(None, value, where=WHERE) is value


@given(storable_values())
def test_check_storable_accepts_generated_values(value: Any) -> None:
    check_storable(value, where=WHERE)
    assert coerce_like(None, value, where=WHERE) is value


# -- check_storable: refused --------------------------------------------------------------------


def test_set_is_refused_with_where_type_and_ways_out() -> None:
    message = refusal({1, 2})
    assert message.startswith("results.z: ")
    assert "type set is not supported" in message
    assert "PickleResult / PickleParameter" in message
    assert "convert it to a list or a tuple" in message


def test_plain_object_is_refused_naming_its_type() -> None:
    class Model:
        pass

    message = refusal(Model())
    assert "results.z: " in message
    assert "test_values.test_plain_object_is_refused_naming_its_type.<locals>.Model" in message
    assert "PickleResult / PickleParameter" in message


def test_object_array_is_refused_suggesting_a_list() -> None:
    message = refusal(np.array([1, "a"], dtype=object))
    assert message.startswith("results.z: an array of dtype object is not supported")
    assert "PickleResult / PickleParameter" in message
    assert "convert it to a list" in message


def test_structured_array_is_refused_suggesting_fields() -> None:
    message = refusal(np.zeros(2, dtype=[("a", "f8"), ("b", "i4")]))
    assert "an array of dtype" in message
    assert "store each field as its own array" in message


def test_non_str_dict_key_is_refused() -> None:
    message = refusal({"a": 1, 2: "b"})
    assert message.startswith("results.z: a dict key is not a str: 2 (int)")
    assert "convert the keys to str" in message


def test_nested_bad_value_names_its_inner_path() -> None:
    message = refusal([1, 2, {"a": {3}}])
    assert message.startswith("results.z at [2]['a']: a value of type set is not supported")


def test_nested_bad_key_names_the_dict_path() -> None:
    message = refusal({"outer": [{1: 2}]})
    assert message.startswith("results.z at ['outer'][0]: a dict key is not a str: 1 (int)")


@pytest.mark.parametrize("number", [2**63, -(2**63) - 1, 2**100])
def test_ints_outside_int64_are_invalid(number: int) -> None:
    message = refusal(number, InvalidValueError)
    assert message.startswith(f"results.z: the int {number} does not fit in 64 bits")
    assert "convert it to a float or a str" in message


def test_big_int_inside_a_container_names_its_position() -> None:
    message = refusal({"n": [0, 2**64]}, InvalidValueError)
    assert message.startswith("results.z at ['n'][1]: the int 18446744073709551616")


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        (bytearray(b"ab"), "convert it to bytes"),
        (frozenset([1]), "convert it to a list or a tuple"),
        (range(3), "convert it to a list"),
        (datetime.datetime(2020, 1, 1), "convert it to np.datetime64"),
        (datetime.timedelta(1), "convert it to np.timedelta64"),
        (decimal.Decimal("1.5"), "convert it to float"),
        (collections.OrderedDict(a=1), "convert it to a plain dict"),
        (Point(1, 2), "convert it to a plain tuple"),
        (Color.RED, "store its .value or .name"),
        (np.matrix([[1.0]]), "convert it with np.asarray(value)"),
        (pd.Index([1, 2]), "store index.to_series() or index.to_numpy()"),
        (pd.Timestamp("2020-01-01"), "convert it with .to_datetime64()"),
    ],
    ids=lambda item: type(item).__name__ if not isinstance(item, str) else "",
)
def test_refusals_suggest_a_conversion(value: Any, hint: str) -> None:
    message = refusal(value)
    assert message.startswith("results.z: ")
    assert "PickleResult / PickleParameter" in message
    assert hint in message


def test_dataframe_with_unsupported_column_names_the_column() -> None:
    frame = pd.DataFrame({"ok": [1, 2], "p": pd.period_range("2020", periods=2, freq="D")})
    message = refusal(frame)
    assert message.startswith("results.z: in a DataFrame, column 'p' has dtype period[D]")
    assert "convert it with .astype(...)" in message


def test_object_column_holding_a_list_is_refused() -> None:
    frame = pd.DataFrame({"o": pd.Series([[1], [2]], dtype=object)})
    message = refusal(frame)
    assert "column 'o' holds a list at position 0" in message


def test_interval_index_is_refused() -> None:
    series = pd.Series([1, 2], index=pd.interval_range(0, 2))
    assert "in a Series, the index has dtype interval" in refusal(series)


def test_dataframe_inside_a_list_names_its_position() -> None:
    frame = pd.DataFrame({"p": pd.period_range("2020", periods=1, freq="D")})
    assert refusal([1, frame]).startswith("results.z at [1]: in a DataFrame, column 'p'")


def test_self_containing_list_is_refused() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    assert "nested deeper than 100 levels (or contain themselves)" in refusal(
        loop, InvalidValueError
    )


def test_unknown_time_zone_kind_is_refused() -> None:
    dateutil_tz = pytest.importorskip("dateutil.tz")
    index = pd.date_range("2020", periods=2, tz=dateutil_tz.tzoffset("X", 3600))
    message = refusal(pd.Series(index))
    assert "in a Series, the data has the time zone" in message
    assert "tz_convert" in message


# -- coerce_like ----------------------------------------------------------------------------------


def same(actual: Any, expected: Any) -> None:
    assert type(actual) is type(expected)
    assert actual == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2.5, 2.5), (1, 1.0), (np.int64(2), 2.0), (np.float32(0.5), 0.5), (np.float64(3.0), 3.0)],
)
def test_float_parameter_takes_real_numbers_as_python_float(value: Any, expected: float) -> None:
    same(coerce_like(1.0, value, where="parameters.x"), expected)


@pytest.mark.parametrize("value", [True, np.bool_(False), "1.0", None, 1j, [1.0]])
def test_float_parameter_refuses_other_kinds(value: Any) -> None:
    with pytest.raises(InvalidValueError) as info:
        coerce_like(1.0, value, where="parameters.x")
    message = str(info.value)
    assert message.startswith("parameters.x: a parameter whose default is float cannot take")
    assert f"({describe(value)})" in message


def test_float_parameter_refuses_ints_it_cannot_hold_exactly() -> None:
    with pytest.raises(InvalidValueError, match="not exactly representable"):
        coerce_like(1.0, 2**53 + 1, where="parameters.x")
    same(coerce_like(1.0, 2**53, where="parameters.x"), 9007199254740992.0)


def test_numpy_float_parameters_keep_their_type() -> None:
    same(coerce_like(np.float64(1.0), 2, where="p"), np.float64(2.0))
    same(coerce_like(np.float32(1.0), 0.1, where="p"), np.float32(0.1))
    same(coerce_like(np.float32(1.0), np.int16(7), where="p"), np.float32(7.0))
    with pytest.raises(InvalidValueError, match="out of range"):
        coerce_like(np.float32(1.0), 1e300, where="p")
    with pytest.raises(InvalidValueError, match="not exactly representable"):
        coerce_like(np.float32(1.0), 2**24 + 1, where="p")


@pytest.mark.parametrize(
    ("value", "expected"), [(5, 5), (np.int32(-4), -4), (np.uint64(9), 9), (2**40, 2**40)]
)
def test_int_parameter_takes_ints_exactly(value: Any, expected: int) -> None:
    same(coerce_like(1, value, where="parameters.n"), expected)


@pytest.mark.parametrize("value", [1.5, 1.0, np.float64(2.0)])
def test_int_parameter_refuses_floats_even_integral_ones(value: Any) -> None:
    with pytest.raises(InvalidValueError) as info:
        coerce_like(1, value, where="parameters.n")
    message = str(info.value)
    assert message.startswith("parameters.n: a parameter whose default is int cannot take")
    assert "no silent rounding" in message


@pytest.mark.parametrize("value", [2**63, np.uint64(2**64 - 1)])
def test_int_parameter_refuses_values_beyond_int64(value: Any) -> None:
    with pytest.raises(InvalidValueError) as info:
        coerce_like(1, value, where="parameters.n")
    assert str(info.value).startswith(f"parameters.n: {int(value)} is out of range")


def test_int_parameter_refuses_bools() -> None:
    with pytest.raises(InvalidValueError, match="cannot take True"):
        coerce_like(1, True, where="parameters.n")


def test_numpy_int_parameters_keep_type_and_range() -> None:
    same(coerce_like(np.int64(1), 3, where="p"), np.int64(3))
    same(coerce_like(np.int8(1), 127, where="p"), np.int8(127))
    with pytest.raises(InvalidValueError, match=r"p: 128 is out of range .*-128 \.\.\. 127"):
        coerce_like(np.int8(1), 128, where="p")
    with pytest.raises(InvalidValueError, match="2147483648 is out of range"):
        coerce_like(np.int32(1), np.int64(2**31), where="p")


def test_bool_parameters_take_only_bools() -> None:
    same(coerce_like(True, np.bool_(False), where="p"), False)
    same(coerce_like(np.bool_(True), False, where="p"), np.bool_(False))
    with pytest.raises(InvalidValueError, match="takes True or False"):
        coerce_like(True, 1, where="p")
    with pytest.raises(InvalidValueError):
        coerce_like(True, 0.0, where="p")


def test_complex_parameters_take_every_number() -> None:
    same(coerce_like(1j, 2, where="p"), 2 + 0j)
    same(coerce_like(1j, 2.5, where="p"), 2.5 + 0j)
    same(coerce_like(1j, np.complex64(1j), where="p"), 1j)
    same(coerce_like(np.complex64(1j), 1.5, where="p"), np.complex64(1.5))
    with pytest.raises(InvalidValueError):
        coerce_like(1j, "1j", where="p")


def test_str_and_bytes_parameters() -> None:
    same(coerce_like("a", np.str_("b"), where="p"), "b")
    same(coerce_like(np.str_("a"), "b", where="p"), np.str_("b"))
    same(coerce_like(b"a", np.bytes_(b"b"), where="p"), b"b")
    with pytest.raises(InvalidValueError, match="default is str cannot take 1"):
        coerce_like("a", 1, where="p")
    with pytest.raises(InvalidValueError):
        coerce_like(b"a", "b", where="p")


def test_array_parameter_casts_same_kind_values_to_its_dtype() -> None:
    reference = np.zeros(3)
    result = coerce_like(reference, [1, 2], where="p")
    assert result.dtype == np.float64
    assert result.tolist() == [1.0, 2.0]
    result = coerce_like(np.zeros(2, dtype=np.float32), np.array([0.5, 1e-3]), where="p")
    assert result.dtype == np.float32
    assert result.tolist() == [0.5, float(np.float32(1e-3))]


def test_array_parameter_copies_the_callers_array() -> None:
    given_array = np.arange(3.0)
    result = coerce_like(np.zeros(3), given_array, where="p")
    given_array[0] = 99.0
    assert result.tolist() == [0.0, 1.0, 2.0]
    assert result.flags.writeable


def test_array_parameter_keeps_string_widths() -> None:
    result = coerce_like(np.array(["ab"]), ["abcdefgh"], where="p")
    assert result.dtype == np.dtype("<U8")
    assert result.tolist() == ["abcdefgh"]


def test_array_parameter_refuses_other_kinds_and_dimensions() -> None:
    with pytest.raises(InvalidValueError, match="float64 does not cast to int64"):
        coerce_like(np.zeros(2, dtype=np.int64), [0.5], where="p")
    with pytest.raises(InvalidValueError, match="it has 2 dimensions"):
        coerce_like(np.zeros(2), np.zeros((2, 2)), where="p")
    with pytest.raises(InvalidValueError, match="cannot take"):
        coerce_like(np.zeros(2), {"a": 1}, where="p")


def test_list_tuple_and_dict_parameters() -> None:
    same(coerce_like([0], (1, 2), where="p"), [1, 2])
    same(coerce_like((0,), [1, 2], where="p"), (1, 2))
    same(coerce_like({"a": 0}, {"b": 1}, where="p"), {"b": 1})
    with pytest.raises(InvalidValueError, match="default is list"):
        coerce_like([0], 5, where="p")
    with pytest.raises(InvalidValueError, match="default is dict"):
        coerce_like({}, [("a", 1)], where="p")
    with pytest.raises(UnsupportedValueError, match=r"p at \[0\]: a value of type set"):
        coerce_like([0], [{1}], where="p")


def test_none_parameter_takes_any_storable_value() -> None:
    same(coerce_like(None, 1.5, where="p"), 1.5)
    frame = pd.DataFrame({"a": [1]})
    assert coerce_like(None, frame, where="p") is frame
    with pytest.raises(UnsupportedValueError, match="p: a value of type set"):
        coerce_like(None, {1}, where="p")


def test_pandas_and_sparse_parameters_need_the_same_class() -> None:
    frame = pd.DataFrame({"a": [1]})
    assert coerce_like(pd.DataFrame(), frame, where="p") is frame
    with pytest.raises(InvalidValueError, match="it must be a DataFrame"):
        coerce_like(pd.DataFrame(), pd.Series([1]), where="p")
    matrix = sp.csr_matrix(np.eye(2))
    assert coerce_like(sp.csr_matrix((1, 1)), matrix, where="p") is matrix
    with pytest.raises(InvalidValueError, match="it must be a csr_matrix"):
        coerce_like(sp.csr_matrix((1, 1)), sp.csc_matrix(np.eye(2)), where="p")


# -- coerce_range -------------------------------------------------------------------------------


def test_lists_and_arrays_of_floats_coerce_to_identical_values() -> None:
    from_list = coerce_range(1.0, [0.0, 1.0], where="parameters.x")
    from_array = coerce_range(1.0, list(np.arange(2.0)), where="parameters.x")
    assert from_list == from_array == [0.0, 1.0]
    assert [type(v) for v in from_list] == [type(v) for v in from_array] == [float, float]


def test_ints_for_a_float_parameter_become_floats() -> None:
    result = coerce_range(1.0, [1, 2], where="parameters.x")
    assert result == [1.0, 2.0]
    assert all(type(v) is float for v in result)


def test_range_errors_name_the_position() -> None:
    with pytest.raises(InvalidValueError) as info:
        coerce_range(1, [1, 2, 3, 1.5], where="parameters.n")
    assert str(info.value).startswith("parameters.n[3]: a parameter whose default is int")


def test_fast_path_returns_a_new_list_and_still_checks_int_range() -> None:
    values = [1.0, 2.0]
    result = coerce_range(0.0, values, where="p")
    assert result == values
    assert result is not values
    with pytest.raises(InvalidValueError, match=r"p\[1\]: 9223372036854775808 is out of range"):
        coerce_range(0, [1, 2**63], where="p")


def test_mixed_python_and_numpy_numbers_take_the_reference_type() -> None:
    ints = coerce_range(0, [np.int32(1), np.int64(2), 3, np.uint8(4)], where="p")
    assert ints == [1, 2, 3, 4]
    assert all(type(v) is int for v in ints)
    floats = coerce_range(0.0, [np.float32(0.5), 1.5, np.float64(2.5), 3], where="p")
    assert floats == [0.5, 1.5, 2.5, 3.0]
    assert all(type(v) is float for v in floats)
    with pytest.raises(InvalidValueError, match=r"p\[2\]: .* cannot take True"):
        coerce_range(0.0, [1.0, 2.0, True], where="p")


def test_numpy_ranges_keep_a_numpy_reference_type() -> None:
    result = coerce_range(np.float32(0), [1, 2.5], where="p")
    assert result == [1.0, 2.5]
    assert all(type(v) is np.float32 for v in result)


# -- describe and short_repr ---------------------------------------------------------------------

DESCRIPTIONS = [
    (1.0, "float"),
    (1, "int"),
    (True, "bool"),
    ("s", "str"),
    (b"b", "bytes"),
    (None, "None"),
    (1j, "complex"),
    (np.float32(1), "np.float32"),
    (np.datetime64("2020-01-01", "D"), "np.datetime64[D]"),
    (np.zeros((3, 2)), "ndarray[float64, (3, 2)]"),
    (np.array(["ab"]), "ndarray[<U2, (1,)]"),
    ([1, 2, 3], "list[3]"),
    ((1,), "tuple[1]"),
    ({"a": 1, "b": 2}, "dict[2]"),
    (pd.DataFrame(np.zeros((10, 3))), "DataFrame(10x3)"),
    (pd.Series([1, 2]), "Series(2)"),
    (sp.csr_matrix((5, 5)), "csr_matrix(5x5)"),
    (sp.coo_array((2, 7)), "coo_array(2x7)"),
    ({1}, "set"),
]


@pytest.mark.parametrize(("value", "expected"), DESCRIPTIONS, ids=[d for _, d in DESCRIPTIONS])
def test_describe(value: Any, expected: str) -> None:
    assert describe(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1.0"),
        ("abc", "'abc'"),
        ([1, 2], "[1, 2]"),
        (np.float32(0.5), "0.5"),
        (np.str_("a"), "'a'"),
        (np.arange(3.0), "[0., 1., 2.]"),
        (np.zeros(1000), "<ndarray[float64, (1000,)]>"),
        (pd.DataFrame({"a": [1, 2]}), "<DataFrame(2x1)>"),
        (sp.csr_array((3, 3)), "<csr_array(3x3)>"),
    ],
)
def test_short_repr(value: Any, expected: str) -> None:
    assert short_repr(value) == expected


def test_short_repr_truncates_to_the_width() -> None:
    text = short_repr("x" * 100, width=12)
    assert text == "'xxxxxxx...'"
    long_list = short_repr(list(range(100)), width=20)
    assert long_list == "[0, 1, 2, 3, ...]"
    nested = short_repr({"key": "v" * 50, "other": [1] * 10}, width=40)
    assert len(nested) <= 40
    assert nested.startswith("{'key': 'vvvv")
