"""Point ids: expected bytes and ids come from the DESIGN §2 rule, written out here with struct.

Nothing here records the code's output: ``ref_*`` below is a second, independent encoder of the
rule, and several cases spell the bytes out literally.
"""

from __future__ import annotations

import fractions
import hashlib
import math
import pickle
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytraj.errors import InvalidValueError, UnsupportedValueError
from pytraj.trajectory.pointbatch import point_ids
from pytraj.trajectory.pointid import (
    encode_point,
    encode_value,
    point_id,
    point_id_hex,
)

# -- the reference encoder ---------------------------------------------------------------

CANONICAL_NAN = struct.pack("<Q", 0x7FF8000000000000)


def u32(n: int) -> bytes:
    return struct.pack("<I", n)


def u64(n: int) -> bytes:
    return struct.pack("<Q", n)


def f64(x: float) -> bytes:
    return CANONICAL_NAN if math.isnan(x) else struct.pack("<d", x)


def ref_value(value: Any) -> bytes:
    """DESIGN §2 for the Python types, written independently of pytraj."""
    if value is None:
        return b"N"
    if type(value) is bool:
        return b"?" + (b"\x01" if value else b"\x00")
    if type(value) is int:
        return b"i" + struct.pack("<q", value)
    if type(value) is float:
        return b"f" + f64(value)
    if type(value) is complex:
        return b"c" + f64(value.real) + f64(value.imag)
    if type(value) is str:
        raw = value.encode("utf-8")
        return b"s" + u32(len(raw)) + raw
    if type(value) is bytes:
        return b"b" + u32(len(value)) + value
    if type(value) in (list, tuple):
        tag = b"l" if type(value) is list else b"t"
        return tag + u32(len(value)) + b"".join(ref_value(item) for item in value)
    if type(value) is dict:
        return (
            b"d"
            + u32(len(value))
            + b"".join(ref_value(key) + ref_value(value[key]) for key in sorted(value))
        )
    raise AssertionError(f"no reference encoding for {type(value)}")


def ref_array(dtype_str: str, shape: tuple[int, ...], data: bytes) -> bytes:
    return (
        b"a"
        + u32(len(dtype_str))
        + dtype_str.encode("ascii")
        + u32(len(shape))
        + b"".join(u64(n) for n in shape)
        + u32(len(data))
        + data
    )


def ref_point(params: dict[str, bytes]) -> bytes:
    """A point from already encoded values: sorted names, each length-prefixed."""
    out = b""
    for name in sorted(params):
        raw = name.encode("utf-8")
        out += u32(len(raw)) + raw + params[name]
    return out


def ref_id(params: dict[str, bytes]) -> bytes:
    return hashlib.blake2b(ref_point(params), digest_size=16).digest()


def ref_id_of(params: dict[str, Any]) -> bytes:
    return ref_id({name: ref_value(value) for name, value in params.items()})


# -- scalars -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, 1, 2**40, 2**63 - 1, -(2**63), -12345678901])
def test_int_encodes_as_int64_little_endian(value: int) -> None:
    assert encode_value(value) == b"i" + struct.pack("<q", value)
    assert point_id({"parameters.n": value}) == ref_id_of({"parameters.n": value})


def test_int_literal_bytes() -> None:
    assert encode_value(-1) == b"i" + b"\xff" * 8
    assert encode_value(2**40) == b"i\x00\x00\x00\x00\x00\x01\x00\x00"


def test_numpy_int64_is_an_int() -> None:
    assert encode_value(np.int64(-7)) == b"i" + struct.pack("<q", -7)
    assert point_id({"p": np.int64(2**40)}) == point_id({"p": 2**40})


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30])
def test_int_out_of_int64_range_is_refused(value: int) -> None:
    with pytest.raises(InvalidValueError, match=str(value)):
        encode_value(value)
    with pytest.raises(InvalidValueError, match=r"parameter 'parameters\.n'.*" + str(value)):
        point_id({"parameters.n": value})


@pytest.mark.parametrize("value", [0.0, 1.5, -2.25, 1e300, 5e-324, math.pi])
def test_float_encodes_as_float64_little_endian(value: float) -> None:
    assert encode_value(value) == b"f" + struct.pack("<d", value)
    assert point_id({"parameters.x": value}) == ref_id_of({"parameters.x": value})


def test_negative_zero_keeps_its_bits() -> None:
    assert encode_value(-0.0) == b"f" + b"\x00" * 7 + b"\x80"
    assert encode_value(0.0) == b"f" + b"\x00" * 8
    assert point_id({"x": -0.0}) != point_id({"x": 0.0})


def test_infinities() -> None:
    assert encode_value(math.inf) == b"f\x00\x00\x00\x00\x00\x00\xf0\x7f"
    assert encode_value(-math.inf) == b"f\x00\x00\x00\x00\x00\x00\xf0\xff"
    assert point_id({"x": math.inf}) == ref_id({"x": b"f" + struct.pack("<d", math.inf)})
    assert point_id({"x": math.inf}) != point_id({"x": -math.inf})


def test_every_nan_gives_the_canonical_quiet_nan() -> None:
    payload_nan = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000ABC))[0]
    negative_nan = struct.unpack("<d", struct.pack("<Q", 0xFFF8000000000000))[0]
    expected = b"f\x00\x00\x00\x00\x00\x00\xf8\x7f"
    for nan in (np.nan, float("nan"), payload_nan, negative_nan, np.float64("nan")):
        assert encode_value(nan) == expected
    assert point_id({"x": np.nan}) == point_id({"x": float("nan")}) == ref_id({"x": expected})


def test_numpy_float64_is_a_float() -> None:
    assert encode_value(np.float64(1.5)) == b"f" + struct.pack("<d", 1.5)
    assert point_id({"x": np.float64(0.1)}) == point_id({"x": 0.1})


def test_numpy_float32_is_a_0d_array() -> None:
    expected = ref_array("<f4", (), struct.pack("<f", 1.5))
    assert expected == b"a\x03\x00\x00\x00<f4\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\xc0?"
    assert encode_value(np.float32(1.5)) == expected
    assert point_id({"x": np.float32(1.5)}) == ref_id({"x": expected})
    assert point_id({"x": np.float32(1.5)}) != point_id({"x": 1.5})


@pytest.mark.parametrize(
    ("value", "dtype_str", "data"),
    [
        (np.int32(-2), "<i4", struct.pack("<i", -2)),
        (np.uint8(200), "|u1", b"\xc8"),
        (np.bool_(True), "|b1", b"\x01"),
        (np.int16(3), "<i2", struct.pack("<h", 3)),
        (np.str_("ab"), "<U2", "ab".encode("utf-32-le")),
        (np.bytes_(b"xy"), "|S2", b"xy"),
        (np.datetime64("1970-01-11", "D"), "<M8[D]", struct.pack("<q", 10)),
        (np.timedelta64(3, "s"), "<m8[s]", struct.pack("<q", 3)),
    ],
)
def test_other_numpy_scalars_are_0d_arrays(value: Any, dtype_str: str, data: bytes) -> None:
    assert encode_value(value) == ref_array(dtype_str, (), data)


def test_complex() -> None:
    value = complex(1.5, -2.0)
    expected = b"c" + struct.pack("<d", 1.5) + struct.pack("<d", -2.0)
    assert encode_value(value) == expected
    assert encode_value(np.complex128(value)) == expected
    assert point_id({"z": value}) == ref_id({"z": expected})
    assert encode_value(complex(math.nan, 1.0)) == b"c" + CANONICAL_NAN + struct.pack("<d", 1.0)


@pytest.mark.parametrize("value", ["", "ab", "Grüße, 世界 🚀", "a\x00b"])
def test_strings_are_length_prefixed_utf8(value: str) -> None:
    raw = value.encode("utf-8")
    assert encode_value(value) == b"s" + u32(len(raw)) + raw
    assert point_id({"s": value}) == ref_id_of({"s": value})


def test_string_literal_bytes() -> None:
    assert encode_value("ab") == b"s\x02\x00\x00\x00ab"
    assert encode_value("") == b"s\x00\x00\x00\x00"
    assert encode_value("é") == b"s\x02\x00\x00\x00\xc3\xa9"


def test_lone_surrogate_is_refused() -> None:
    with pytest.raises(InvalidValueError, match="UTF-8"):
        encode_value("\ud800")


def test_bytes() -> None:
    assert encode_value(b"") == b"b\x00\x00\x00\x00"
    assert encode_value(b"\x00\xff") == b"b\x02\x00\x00\x00\x00\xff"
    assert point_id({"b": b"xyz"}) == ref_id({"b": b"b\x03\x00\x00\x00xyz"})
    assert point_id({"b": b"ab"}) != point_id({"b": "ab"})


def test_bools_are_not_ints() -> None:
    assert encode_value(True) == b"?\x01"
    assert encode_value(False) == b"?\x00"
    assert point_id({"p": True}) == ref_id({"p": b"?\x01"})
    assert point_id({"p": True}) != point_id({"p": 1})
    assert point_id({"p": False}) != point_id({"p": 0})


def test_none() -> None:
    assert encode_value(None) == b"N"
    assert point_id({"p": None}) == ref_id({"p": b"N"})


# -- arrays ------------------------------------------------------------------------------


def test_float_array_1d() -> None:
    data = struct.pack("<2d", 0.5, -1.0)
    expected = ref_array("<f8", (2,), data)
    header = b"a\x03\x00\x00\x00<f8\x01\x00\x00\x00\x02" + b"\x00" * 7 + b"\x10\x00\x00\x00"
    assert expected == header + data
    assert encode_value(np.array([0.5, -1.0])) == expected
    assert point_id({"a": np.array([0.5, -1.0])}) == ref_id({"a": expected})


def test_int_array_2d_is_c_order() -> None:
    expected = ref_array("<i4", (2, 3), struct.pack("<6i", 1, 2, 3, 4, 5, 6))
    assert encode_value(np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int32)) == expected


def test_fortran_order_and_strides_do_not_matter() -> None:
    c_order = np.arange(6.0).reshape(2, 3)
    fortran = np.asfortranarray(c_order)
    strided = np.arange(12.0).reshape(2, 6)[:, ::2] / 2
    expected = ref_array("<f8", (2, 3), struct.pack("<6d", 0, 1, 2, 3, 4, 5))
    assert encode_value(c_order) == encode_value(fortran) == encode_value(strided) == expected


def test_big_endian_equals_little_endian() -> None:
    big = np.array([1.0, 2.0], dtype=">f8")
    little = np.array([1.0, 2.0], dtype="<f8")
    expected = ref_array("<f8", (2,), struct.pack("<2d", 1.0, 2.0))
    assert encode_value(big) == encode_value(little) == expected
    big_int = np.array([[1, -2]], dtype=">i4")
    assert encode_value(big_int) == ref_array("<i4", (1, 2), struct.pack("<2i", 1, -2))
    assert point_id({"a": big}) == point_id({"a": little})


def test_array_nans_are_canonical() -> None:
    values = np.array([np.nan, -np.nan, 1.0])
    values.view(np.uint64)[1] = 0xFFF0000000000001  # a negative signalling NaN
    expected = ref_array("<f8", (3,), CANONICAL_NAN * 2 + struct.pack("<d", 1.0))
    assert encode_value(values) == expected
    float32 = np.array([np.nan, -np.nan], dtype=np.float32)
    assert encode_value(float32) == ref_array("<f4", (2,), struct.pack("<2I", *[0x7FC00000] * 2))


def test_empty_and_string_arrays() -> None:
    assert encode_value(np.zeros((0, 2))) == ref_array("<f8", (0, 2), b"")
    strings = np.array(["a", "bc"])
    assert encode_value(strings) == ref_array("<U2", (2,), "a\x00bc".encode("utf-32-le"))
    assert encode_value(np.array([True, False])) == ref_array("|b1", (2,), b"\x01\x00")


def test_object_arrays_encode_elements_under_tag_A() -> None:
    value = np.array([1, "x", None], dtype=object)
    expected = b"A" + u32(1) + u64(3) + ref_value(1) + ref_value("x") + b"N"
    assert encode_value(value) == expected


def test_variable_width_string_arrays_encode_like_object_arrays() -> None:
    value = np.array(["a", "bc"], dtype=np.dtypes.StringDType())
    assert encode_value(value) == b"A" + u32(1) + u64(2) + ref_value("a") + ref_value("bc")


def test_structured_arrays_are_refused() -> None:
    with pytest.raises(UnsupportedValueError, match="structured"):
        encode_value(np.zeros(2, dtype=[("a", "f8"), ("b", "i1")]))


def test_list_of_floats_and_arange_give_equal_ids_per_element() -> None:
    for python, numpy in zip([0.0, 1.0], np.arange(2.0), strict=True):
        assert type(numpy) is np.float64
        assert point_id({"x": python}) == point_id({"x": numpy})
        assert point_id({"x": numpy}) == ref_id({"x": b"f" + struct.pack("<d", python)})


# -- containers --------------------------------------------------------------------------


def test_list_and_tuple_differ() -> None:
    assert encode_value([1, "a"]) == b"l" + u32(2) + ref_value(1) + ref_value("a")
    assert encode_value((1, "a")) == b"t" + u32(2) + ref_value(1) + ref_value("a")
    assert point_id({"p": [1, 2]}) != point_id({"p": (1, 2)})
    assert encode_value([]) == b"l\x00\x00\x00\x00"


def test_nested_dicts_sort_their_keys() -> None:
    value = {"b": {"z": 1, "y": [2.0]}, "a": None}
    expected = (
        b"d"
        + u32(2)
        + b"s\x01\x00\x00\x00a"
        + b"N"
        + b"s\x01\x00\x00\x00b"
        + (b"d" + u32(2) + ref_value("y") + ref_value([2.0]) + ref_value("z") + ref_value(1))
    )
    assert encode_value(value) == expected
    reordered = {"a": None, "b": {"y": [2.0], "z": 1}}
    assert point_id({"p": value}) == point_id({"p": reordered}) == ref_id({"p": expected})


def test_dict_with_non_string_keys_uses_tag_D_sorted_by_encoded_key() -> None:
    value = {2: "b", 1: "a"}
    expected = b"D" + u32(2) + ref_value(1) + ref_value("a") + ref_value(2) + ref_value("b")
    assert encode_value(value) == expected
    assert encode_value({1: "a", 2: "b"}) == expected


def test_sets_do_not_depend_on_iteration_order() -> None:
    members = sorted([ref_value("a"), ref_value("bb"), ref_value(3)])
    assert encode_value({"bb", 3, "a"}) == b"u" + u32(3) + b"".join(members)
    assert encode_value(frozenset({"a", "bb", 3})) == b"U" + u32(3) + b"".join(members)


# -- extensions --------------------------------------------------------------------------


def test_other_objects_are_pickled_with_their_type_name() -> None:
    value = fractions.Fraction(1, 3)
    name = b"fractions.Fraction"
    pickled = pickle.dumps(value, protocol=4)
    expected = b"o" + u32(len(name)) + name + u32(len(pickled)) + pickled
    assert encode_value(value) == expected


def test_unpicklable_objects_are_refused_naming_the_parameter() -> None:
    with pytest.raises(UnsupportedValueError, match=r"parameter 'parameters\.f'.*function"):
        point_id({"parameters.f": lambda: None})


def test_self_containing_values_are_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(InvalidValueError, match="contains itself"):
        encode_value(loop)


def test_scipy_sparse_is_canonical() -> None:
    import scipy.sparse as sp

    # The same matrix with a duplicate entry and unsorted coordinates.
    messy = sp.coo_matrix(([1.0, 2.0, 0.5], ([1, 0, 1], [0, 1, 0])), shape=(2, 3)).tocsr()
    messy_coo = sp.coo_matrix(([1.5, 2.0], ([1, 0], [0, 1])), shape=(2, 3))
    name = b"csr_matrix"
    expected = (
        b"S"
        + u32(len(name))
        + name
        + u32(2)
        + u64(2)
        + u64(3)
        + u32(3)
        + ref_array("<f8", (2,), struct.pack("<2d", 2.0, 1.5))
        + ref_array("<i8", (2,), struct.pack("<2q", 0, 1))
        + ref_array("<i8", (2,), struct.pack("<2q", 1, 0))
    )
    assert encode_value(messy) == expected
    assert encode_value(messy_coo) == expected.replace(
        b"\x0a\x00\x00\x00csr_", b"\x0a\x00\x00\x00coo_"
    )
    assert encode_value(sp.csr_array(messy)) != encode_value(messy)  # the class is part of it


def test_pandas_frames_and_series() -> None:
    import pandas as pd

    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
    columns = b"X" + ref_value([None]) + b"A" + u32(1) + u64(2) + ref_value("a") + ref_value("b")
    index = b"X" + ref_value([None]) + ref_array("<i8", (2,), struct.pack("<2q", 0, 1))
    expected = (
        b"F"
        + columns
        + index
        + u32(2)
        + ref_array("<i8", (2,), struct.pack("<2q", 1, 2))
        + ref_array("<f8", (2,), struct.pack("<2d", 0.5, 1.5))
    )
    assert encode_value(frame) == expected
    assert encode_value(frame[["b", "a"]]) != expected
    series = pd.Series([0.5, 1.5], name="s")
    assert encode_value(series) == (
        b"R" + ref_value("s") + index + ref_array("<f8", (2,), struct.pack("<2d", 0.5, 1.5))
    )


@pytest.mark.storage  # also on the minimum versions, where pandas 2.2 used to crash here
def test_time_zone_aware_datetimes_encode_as_their_timestamps() -> None:
    import pandas as pd

    # Year 892 at second resolution in Europe/Berlin: pandas 2.2's batched boxing of such
    # times (``to_numpy()``, iteration) ends the interpreter with a segmentation fault.
    seconds = np.array([-34_000_000_000, 0, 1_700_000_000], dtype=np.int64).view("M8[s]")
    times = pd.DatetimeIndex(seconds).tz_localize("UTC").tz_convert("Europe/Berlin")
    series = pd.Series(times.array, name="t")
    boxed = [series.iloc[position] for position in range(3)]
    assert [int(stamp.asm8.view("i8")) for stamp in boxed] == [-34_000_000_000, 0, 1_700_000_000]
    values = b"A" + u32(1) + u64(3) + b"".join(encode_value(stamp) for stamp in boxed)
    index = b"X" + ref_value([None]) + ref_array("<i8", (3,), struct.pack("<3q", 0, 1, 2))
    assert encode_value(series) == b"R" + ref_value("t") + index + values
    assert encode_value(pd.Index(times, name="t")) == b"X" + ref_value(["t"]) + values
    # Later times encode exactly as pandas' own to_numpy() gives them (ids did not change).
    later = pd.Series(times[1:].array)
    assert encode_value(later).endswith(encode_value(np.asarray(later.to_numpy())))


# -- points ------------------------------------------------------------------------------


def test_point_literal_bytes() -> None:
    point = {"parameters.y": 2, "parameters.x": "ab"}
    expected = (
        b"\x0c\x00\x00\x00parameters.x"
        + b"s\x02\x00\x00\x00ab"
        + b"\x0c\x00\x00\x00parameters.y"
        + b"i\x02\x00\x00\x00\x00\x00\x00\x00"
    )
    assert encode_point(point) == expected
    assert point_id(point) == hashlib.blake2b(expected, digest_size=16).digest()
    assert point_id_hex(point) == hashlib.blake2b(expected, digest_size=16).hexdigest()
    assert len(point_id_hex(point)) == 32


def test_parameter_order_does_not_matter() -> None:
    forward = {"parameters.a": 1.0, "parameters.b": [1, 2], "parameters.c": "x"}
    backward = dict(reversed(list(forward.items())))
    assert list(backward) != list(forward)
    assert point_id(forward) == point_id(backward) == ref_id_of(forward)


def test_names_matter() -> None:
    assert point_id({"parameters.x": 1.0}) != point_id({"parameters.y": 1.0})
    assert point_id({"parameters.x": 1.0}) != point_id({"x": 1.0})
    # Length prefixes keep name and value apart: "a" + "bc" is not "ab" + "c".
    assert point_id({"a": "bc"}) != point_id({"ab": "c"})


def test_unicode_names_sort_by_code_point() -> None:
    point = {"é": 1, "z": 2, "a": 3}
    assert encode_point(point) == ref_point(
        {"é": ref_value(1), "z": ref_value(2), "a": ref_value(3)}
    )
    assert encode_point(point).index(b"z") < encode_point(point).index("é".encode())


def test_empty_point() -> None:
    assert encode_point({}) == b""
    assert point_id({}) == hashlib.blake2b(b"", digest_size=16).digest()


def test_non_string_names_are_refused() -> None:
    with pytest.raises(InvalidValueError, match="names must be strings"):
        encode_point({1: 2.0})  # type: ignore[dict-item]


# -- property: the code agrees with the reference encoder --------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.complex_numbers(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(min_size=1, max_size=12), values, max_size=5))
def test_point_ids_follow_the_rule(point: dict[str, Any]) -> None:
    assert encode_point(point) == ref_point({name: ref_value(v) for name, v in point.items()})
    assert point_id(point) == ref_id_of(point)


@given(st.lists(st.floats(allow_nan=True, width=64), min_size=1, max_size=6))
def test_float_lists_and_float64_arrays_agree_per_element(numbers: list[float]) -> None:
    array = np.array(numbers, dtype=np.float64)
    for python, numpy in zip(numbers, array, strict=True):
        assert encode_value(numpy) == encode_value(python) == b"f" + f64(python)
    data = b"".join(f64(x) for x in numbers)
    assert encode_value(array) == ref_array("<f8", (len(numbers),), data)


# -- many points at once -------------------------------------------------------------------
column_values = st.one_of(
    st.lists(st.floats(allow_nan=True, width=64), min_size=1, max_size=8),
    st.lists(st.floats(width=64).map(np.float64) | st.floats(width=64), min_size=1, max_size=8),
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=8),
    st.lists(st.integers(-(2**63), 2**63 - 1).map(np.int64), min_size=1, max_size=8),
    st.lists(st.booleans(), min_size=1, max_size=8),
    st.lists(scalars, min_size=1, max_size=8),  # mixed types: encoded one by one
)


@given(
    st.lists(column_values, min_size=1, max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=6), values, max_size=3),
    st.data(),
)
def test_point_ids_of_many_points_are_the_ids_of_each(
    columns: list[list[Any]], fixed: dict[str, Any], data: st.DataObject
) -> None:
    n = min(map(len, columns))
    explored = {f"parameters.c{k}": column[:n] for k, column in enumerate(columns)}
    fixed = {name: value for name, value in fixed.items() if name not in explored}
    indices = data.draw(st.lists(st.integers(0, n - 1), max_size=10) | st.just(range(n)))
    # numpy float64 / int64 encode as Python's float / int (DESIGN §2).
    plain = {np.float64: float, np.int64: int}
    expected = [
        ref_id_of(
            {
                **fixed,
                **{
                    name: plain.get(type(column[i]), lambda v: v)(column[i])
                    for name, column in explored.items()
                },
            }
        )
        for i in indices
    ]
    assert point_ids(fixed, explored, indices) == expected


def test_point_ids_keep_trailing_zero_bytes_and_name_the_value_out_of_range() -> None:
    # Encodings ending in NUL bytes (0.0, 0) must reach the hash whole.
    assert point_ids({}, {"p": [0.0, 0, False]}, range(3)) == [
        point_id({"p": 0.0}),
        point_id({"p": 0}),
        point_id({"p": False}),
    ]
    with pytest.raises(InvalidValueError, match="parameter 'p'.*64-bit range"):
        point_ids({}, {"p": [1, 2**64]}, range(2))
    assert point_ids({"q": 1.0}, {}, range(2)) == [point_id({"q": 1.0})] * 2
