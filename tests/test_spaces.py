"""Parameter spaces: cartesian_product (pypet's semantics), ParameterSpace and its algebra."""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytraj.errors import ExplorationError, PytrajWarning
from pytraj.trajectory.pointid import encode_point
from pytraj.trajectory.spaces import ParameterSpace, as_columns, cartesian_product

# -- cartesian_product -------------------------------------------------------------------


def test_cartesian_product_pypet_documented_example() -> None:
    result = cartesian_product({"param1": [1, 2, 3], "param2": [42.0, 52.5]})
    assert result == {
        "param1": [1, 1, 2, 2, 3, 3],
        "param2": [42.0, 52.5, 42.0, 52.5, 42.0, 52.5],
    }


def test_cartesian_product_pypet_combined_example() -> None:
    result = cartesian_product(
        {"param1": [42.0, 52.5], "param2": ["a", "b"], "param3": [1, 2, 3]},
        ("param3", ("param1", "param2")),
    )
    assert result == {
        "param1": [42.0, 52.5, 42.0, 52.5, 42.0, 52.5],
        "param2": ["a", "b", "a", "b", "a", "b"],
        "param3": [1, 1, 2, 2, 3, 3],
    }
    assert list(result) == ["param1", "param2", "param3"]  # keys keep the dict's order


def test_cartesian_product_first_key_varies_slowest() -> None:
    result = cartesian_product({"a": [1, 2], "b": [3, 4], "c": [5, 6]})
    assert result == {
        "a": [1, 1, 1, 1, 2, 2, 2, 2],
        "b": [3, 3, 4, 4, 3, 3, 4, 4],
        "c": [5, 6, 5, 6, 5, 6, 5, 6],
    }


def test_combined_parameters_define_the_nesting_order() -> None:
    result = cartesian_product({"a": [1, 2], "b": [3, 4]}, ("b", "a"))
    assert result == {"a": [1, 2, 1, 2], "b": [3, 3, 4, 4]}
    result = cartesian_product({"a": [1, 2], "b": [3, 4]}, [("b",), ("a",)])
    assert result == {"a": [1, 2, 1, 2], "b": [3, 3, 4, 4]}


def test_all_parameters_combined_is_a_zip() -> None:
    result = cartesian_product({"a": [1, 2, 3], "b": ["x", "y", "z"]}, (("a", "b"),))
    assert result == {"a": [1, 2, 3], "b": ["x", "y", "z"]}


def test_cartesian_product_accepts_arrays_and_iterables() -> None:
    result = cartesian_product({"x": np.arange(2.0), "n": range(2)})
    assert result == {"x": [0.0, 0.0, 1.0, 1.0], "n": [0, 1, 0, 1]}
    assert all(type(value) is np.float64 for value in result["x"])


def test_cartesian_product_with_an_empty_list_has_no_points() -> None:
    assert cartesian_product({"a": [1, 2], "b": []}) == {"a": [], "b": []}


def test_combined_parameters_of_unequal_length_are_refused() -> None:
    with pytest.raises(ExplorationError, match=r"equal length.*a: 2, b: 3"):
        cartesian_product({"a": [1, 2], "b": [3, 4, 5], "c": [0]}, (("a", "b"), "c"))


@pytest.mark.parametrize(
    ("combined", "message"),
    [
        (("a",), r"missing from combined_parameters: b"),
        (("a", "b", "c"), r"not in the parameter dict: c"),
        (("a", ("a", "b")), r"named more than once: a"),
        ("ab", r"write \('ab',\)"),
        (("a", ()), r"non-empty tuple"),
    ],
)
def test_combined_parameters_must_name_every_key_once(combined: Any, message: str) -> None:
    with pytest.raises(ExplorationError, match=message):
        cartesian_product({"a": [1, 2], "b": [3, 4]}, combined)


def test_cartesian_product_refuses_a_string_of_values() -> None:
    with pytest.raises(ExplorationError, match=r"write \['abc'\]"):
        cartesian_product({"s": "abc"})


value_lists = st.lists(st.integers(-5, 5), max_size=3)


@given(st.dictionaries(st.sampled_from("abcde"), value_lists, min_size=1, max_size=4))
def test_cartesian_product_properties(parameters: dict[str, list[int]]) -> None:
    result = cartesian_product(parameters)
    names = list(parameters)
    total = math.prod(len(values) for values in parameters.values())
    assert list(result) == names
    assert all(len(column) == total for column in result.values())
    # The order is exactly itertools.product's: first key slowest, last key fastest ...
    points = list(zip(*(result[name] for name in names), strict=True))
    assert points == list(itertools.product(*(parameters[name] for name in names)))
    # ... checked once more by position: key j's value index advances every `stride` points.
    for j, name in enumerate(names):
        stride = math.prod(len(parameters[later]) for later in names[j + 1 :])
        expected = [parameters[name][(k // stride) % len(parameters[name])] for k in range(total)]
        assert result[name] == expected
    # Every combination of positions appears exactly once.
    positions = [range(len(parameters[name])) for name in names]
    combos = list(itertools.product(*positions))
    assert len(combos) == len(set(combos)) == total


@given(
    st.lists(st.integers(1, 3), min_size=1, max_size=3),  # number of names per group
    st.lists(st.integers(0, 3), min_size=3, max_size=3),  # list length per group
    st.randoms(use_true_random=False),
)
def test_combined_parameters_properties(sizes: list[int], lengths: list[int], rnd: Any) -> None:
    groups = []
    counter = itertools.count()
    for size in sizes:
        groups.append(tuple(f"p{next(counter)}" for _ in range(size)))
    parameters = {}
    for group, length in zip(groups, lengths, strict=False):
        for name in group:
            parameters[name] = [f"{name}-{i}" for i in range(length)]
    shuffled = dict(rnd.sample(list(parameters.items()), len(parameters)))
    result = cartesian_product(shuffled, tuple(groups))
    zipped = [list(zip(*(parameters[n] for n in group), strict=True)) for group in groups]
    expected = list(itertools.product(*zipped))
    assert list(result) == list(shuffled)
    for k, combination in enumerate(expected):
        for group, values in zip(groups, combination, strict=True):
            for name, value in zip(group, values, strict=True):
                assert result[name][k] == value
    assert all(len(column) == len(expected) for column in result.values())


# -- ParameterSpace: construction and reading --------------------------------------------


def test_space_reads_points_and_columns() -> None:
    space = ParameterSpace({"x": [1.0, 2.0, 3.0], "y": ("a", "b", "c")})
    assert space.names == ("x", "y")
    assert len(space) == 3
    assert list(space) == [{"x": 1.0, "y": "a"}, {"x": 2.0, "y": "b"}, {"x": 3.0, "y": "c"}]
    assert space[1] == {"x": 2.0, "y": "b"}
    assert space[-1] == {"x": 3.0, "y": "c"}
    assert space[np.int64(0)] == {"x": 1.0, "y": "a"}
    assert space.columns == {"x": [1.0, 2.0, 3.0], "y": ["a", "b", "c"]}
    assert space.to_dict() == {"x": [1.0, 2.0, 3.0], "y": ["a", "b", "c"]}
    assert space[1:].to_dict() == {"x": [2.0, 3.0], "y": ["b", "c"]}


def test_space_index_errors() -> None:
    space = ParameterSpace({"x": [1, 2]})
    with pytest.raises(IndexError, match="point 2 is out of range"):
        space[2]
    with pytest.raises(IndexError, match="point -3"):
        space[-3]
    with pytest.raises(TypeError, match="int or slice"):
        space["x"]  # type: ignore[call-overload]


def test_space_columns_are_copies() -> None:
    space = ParameterSpace({"x": [1, 2]})
    columns = space.columns
    columns["x"].append(3)
    space.to_dict()["x"].clear()
    assert space.to_dict() == {"x": [1, 2]}
    assert len(space) == 2


def test_space_is_immutable() -> None:
    space = ParameterSpace({"x": [1, 2]})
    with pytest.raises(AttributeError, match="immutable"):
        space.names = ("y",)  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        space._length = 5
    assert not hasattr(space, "__dict__")
    assert len(space) == 2


def test_space_repr() -> None:
    assert repr(ParameterSpace.from_product({"x": range(4), "y": range(3)})) == (
        "<ParameterSpace 12 points over x, y>"
    )
    assert repr(ParameterSpace({"x": [1]})) == "<ParameterSpace 1 point over x>"


def test_a_1d_array_becomes_numpy_scalars() -> None:
    space = ParameterSpace({"x": np.arange(3.0)})
    assert space.to_dict() == {"x": [0.0, 1.0, 2.0]}
    assert [type(value) for value in space.to_dict()["x"]] == [np.float64] * 3


def test_a_2d_array_gives_one_row_per_point() -> None:
    space = ParameterSpace({"v": np.arange(6).reshape(3, 2)})
    assert len(space) == 3
    assert space[2]["v"].tolist() == [4, 5]


def test_unequal_lengths_list_each_length() -> None:
    with pytest.raises(ExplorationError, match=r"x: 2, y: 3"):
        ParameterSpace({"x": [1, 2], "y": [1, 2, 3]})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ("abc", r"write \['abc'\]"),
        (b"ab", r"write \[b'ab'\]"),
        (5, r"write \[5\]"),
        (np.float64(1.0), r"write \["),
        (np.array(1.0), r"0-d array"),
        ({1, 2}, r"a set"),
        ({"a": 1}, r"a mapping"),
    ],
)
def test_values_that_are_not_a_list_are_refused(values: Any, message: str) -> None:
    with pytest.raises(ExplorationError, match=message):
        ParameterSpace({"x": values})


def test_empty_mapping_and_bad_names_are_refused() -> None:
    with pytest.raises(ExplorationError, match="at least one parameter"):
        ParameterSpace({})
    with pytest.raises(ExplorationError, match="names must be strings"):
        ParameterSpace({1: [1]})  # type: ignore[dict-item]
    with pytest.raises(ExplorationError, match="mapping"):
        ParameterSpace([("x", [1])])  # type: ignore[arg-type]


def test_equality_compares_points_canonically() -> None:
    a = ParameterSpace({"x": [1.0, 2.0], "y": [3, 4]})
    assert a == ParameterSpace({"y": [3, 4], "x": np.array([1.0, 2.0])})
    assert a != ParameterSpace({"x": [1, 2], "y": [3, 4]})  # ints are not floats
    assert a != ParameterSpace({"x": [2.0, 1.0], "y": [4, 3]})  # order matters
    assert a != {"x": [1.0, 2.0], "y": [3, 4]}
    assert hash(a) == hash(ParameterSpace({"y": [3, 4], "x": [1.0, 2.0]}))
    assert ParameterSpace({"x": [math.nan]}) == ParameterSpace({"x": [np.nan]})
    assert ParameterSpace(a) == a


# -- algebra -----------------------------------------------------------------------------


def test_product() -> None:
    a = ParameterSpace({"a": [1, 2]})
    b = ParameterSpace({"b": [3, 4], "c": ["u", "v"]})
    assert (a * b).to_dict() == {"a": [1, 1, 2, 2], "b": [3, 4, 3, 4], "c": ["u", "v", "u", "v"]}
    assert ParameterSpace.product(a, b) == a * b
    assert ParameterSpace.product(a) == a
    assert ParameterSpace.from_product({"a": [1, 2], "b": [3, 4]}).to_dict() == {
        "a": [1, 1, 2, 2],
        "b": [3, 4, 3, 4],
    }


def test_product_of_three_matches_cartesian_product() -> None:
    parts = {"a": [1, 2], "b": [3, 4, 5], "c": [6, 7]}
    spaces = [ParameterSpace({name: values}) for name, values in parts.items()]
    assert ParameterSpace.product(*spaces).to_dict() == cartesian_product(parts)


def test_from_product_with_combined_parameters() -> None:
    space = ParameterSpace.from_product({"a": [1, 2], "b": [3, 4], "c": [0, 9]}, ("c", ("a", "b")))
    assert space.to_dict() == {"a": [1, 2, 1, 2], "b": [3, 4, 3, 4], "c": [0, 0, 9, 9]}


def test_product_needs_distinct_names() -> None:
    with pytest.raises(ExplorationError, match="distinct names; both have x"):
        ParameterSpace({"x": [1]}) * ParameterSpace({"x": [2], "y": [3]})
    with pytest.raises(ExplorationError, match="at least one space"):
        ParameterSpace.product()


def test_zip() -> None:
    a = ParameterSpace({"a": [1, 2]})
    b = ParameterSpace({"b": [3, 4]})
    assert a.zip(b).to_dict() == {"a": [1, 2], "b": [3, 4]}
    assert (a & b) == a.zip(b)
    with pytest.raises(ExplorationError, match="equal length; got 2 points over a and 3"):
        a.zip(ParameterSpace({"c": [1, 2, 3]}))
    with pytest.raises(ExplorationError, match="distinct names"):
        a & a


def test_concatenation_accepts_names_in_any_order() -> None:
    a = ParameterSpace({"x": [1], "y": [2]})
    b = ParameterSpace({"y": [4, 6], "x": [3, 5]})
    assert (a + b).to_dict() == {"x": [1, 3, 5], "y": [2, 4, 6]}
    assert (a + b).names == ("x", "y")
    with pytest.raises(ExplorationError, match="only in the first: y; only in the second: z"):
        a + ParameterSpace({"x": [1], "z": [2]})


def test_difference_compares_canonically() -> None:
    a = ParameterSpace({"x": [1.0, 2.0, 3.0, 2.0], "y": ["a", "b", "c", "b"]})
    b = ParameterSpace({"y": ["b", "c"], "x": [np.float64(2.0), 3]})  # 3 (int) is not 3.0
    assert (a - b).to_dict() == {"x": [1.0, 3.0], "y": ["a", "c"]}
    assert len(a - a) == 0
    assert (a - a).names == ("x", "y")
    with pytest.raises(ExplorationError, match="same names"):
        a - ParameterSpace({"x": [1.0]})


def test_filter_and_unique() -> None:
    space = ParameterSpace.from_product({"x": [1, 2, 3], "y": [1, 2, 3]})
    upper = space.filter(lambda p: p["x"] < p["y"])
    assert upper.to_dict() == {"x": [1, 1, 2], "y": [2, 3, 3]}
    repeated = ParameterSpace({"x": [1, 2, 1, np.int64(2), 3, 1.0]})
    assert repeated.unique().to_dict() == {"x": [1, 2, 3, 1.0]}
    nans = ParameterSpace({"x": [np.nan, float("nan"), 0.0, -0.0]}).unique().to_dict()["x"]
    assert len(nans) == 3
    assert math.isnan(nans[0])
    assert [math.copysign(1.0, zero) for zero in nans[1:]] == [1.0, -1.0]


def test_unencodable_points_raise_in_difference() -> None:
    space = ParameterSpace({"x": [2**70]})
    with pytest.raises(ValueError, match="64-bit"):
        space - space


spaces_values = st.integers(-3, 3) | st.sampled_from([0.5, -0.0, 0.0, "s", None])


@st.composite
def space_over(draw: Any, names: list[str], length: int | None = None) -> ParameterSpace:
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True))
    n = draw(st.integers(0, 4)) if length is None else length
    return ParameterSpace(
        {name: draw(st.lists(spaces_values, min_size=n, max_size=n)) for name in chosen}
    )


def keys(space: ParameterSpace) -> list[bytes]:
    return [encode_point(point) for point in space]


@given(space_over(["a", "b"]), space_over(["c", "d"]))
def test_product_laws(a: ParameterSpace, b: ParameterSpace) -> None:
    product = a * b
    assert len(product) == len(a) * len(b)
    assert list(product) == [{**p, **q} for p in a for q in b]


@given(space_over(["a", "b"]), st.data())
def test_difference_laws(a: ParameterSpace, data: Any) -> None:
    b = _same_names_space(a, data)
    remaining = (a + b) - b
    assert not set(keys(remaining)) & set(keys(b))
    assert set(keys(remaining)) <= set(keys(a))
    assert len(a - a) == 0
    assert a.filter(lambda point: True) == a
    assert len(a.filter(lambda point: False)) == 0
    unique = (a + a).unique()
    assert len(set(keys(unique))) == len(unique)
    assert unique == a.unique()


def _same_names_space(a: ParameterSpace, data: Any) -> ParameterSpace:
    n = data.draw(st.integers(0, 4))
    return ParameterSpace(
        {name: data.draw(st.lists(spaces_values, min_size=n, max_size=n)) for name in a.names}
    )


@given(st.integers(0, 4).flatmap(lambda n: st.tuples(space_over(["a"], n), space_over(["b"], n))))
def test_zip_laws(pair: tuple[ParameterSpace, ParameterSpace]) -> None:
    a, b = pair
    zipped = a.zip(b)
    assert len(zipped) == len(a)
    assert list(zipped) == [{**p, **q} for p, q in zip(a, b, strict=True)]


# -- sampling ----------------------------------------------------------------------------

SAMPLERS = [
    ParameterSpace.random,
    ParameterSpace.latin_hypercube,
    ParameterSpace.sobol,
    ParameterSpace.halton,
]
BOUNDS = {"x": (0.0, 1.0), "y": (-5.0, 5.0), "z": (100.0, 100.5)}


@pytest.mark.parametrize("sampler", SAMPLERS, ids=lambda s: s.__name__)
def test_sampling_is_reproducible_and_within_bounds(sampler: Any) -> None:
    first = sampler(BOUNDS, 8, seed=123)
    again = sampler(BOUNDS, 8, seed=123)
    other = sampler(BOUNDS, 8, seed=124)
    assert first == again
    assert first != other
    assert first.names == ("x", "y", "z")
    assert len(first) == 8
    for name, (low, high) in BOUNDS.items():
        column = first.to_dict()[name]
        assert all(type(value) is float for value in column)
        assert all(low <= value <= high for value in column)
        assert len(set(column)) == 8


@pytest.mark.parametrize("sampler", SAMPLERS, ids=lambda s: s.__name__)
def test_sampling_accepts_a_generator(sampler: Any) -> None:
    a = sampler({"x": (0.0, 2.0)}, 4, seed=np.random.default_rng(7))
    b = sampler({"x": (0.0, 2.0)}, 4, seed=np.random.default_rng(7))
    assert a == b
    assert all(0.0 <= value <= 2.0 for value in a.to_dict()["x"])


@given(
    st.integers(1, 40),
    st.lists(st.tuples(st.floats(-100, 100), st.floats(0.01, 100)), min_size=1, max_size=3),
    st.integers(0, 2**32 - 1),
)
def test_latin_hypercube_has_one_point_per_stratum(
    n: int, limits: list[tuple[float, float]], seed: int
) -> None:
    bounds = {f"p{i}": (low, low + width) for i, (low, width) in enumerate(limits)}
    space = ParameterSpace.latin_hypercube(bounds, n, seed=seed)
    for name, (low, high) in bounds.items():
        strata = sorted(
            min(int((value - low) / (high - low) * n), n - 1) for value in space.to_dict()[name]
        )
        assert strata == list(range(n))


@given(st.integers(1, 20), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_random_sampling_is_seeded(n: int, seed: int, other: int) -> None:
    a = ParameterSpace.random({"x": (-1.0, 1.0)}, n, seed=seed)
    assert a == ParameterSpace.random({"x": (-1.0, 1.0)}, n, seed=seed)
    if seed != other:
        assert a != ParameterSpace.random({"x": (-1.0, 1.0)}, n, seed=other)
    assert all(-1.0 <= value <= 1.0 for value in a.to_dict()["x"])


def test_sobol_warns_unless_n_is_a_power_of_two() -> None:
    with pytest.warns(PytrajWarning, match=r"n=6 .*use 8 or 4"):
        ParameterSpace.sobol({"x": (0.0, 1.0)}, 6, seed=1)
    with pytest.warns(PytrajWarning, match=r"n=5 .*use 8 or 4"):
        assert len(ParameterSpace.sobol({"x": (0.0, 1.0)}, np.int64(5), seed=np.int64(1))) == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        space = ParameterSpace.sobol({"x": (0.0, 1.0)}, 16, seed=1)
    # A balanced Sobol' sample of 2**k points has one point in each of the 2**k strata.
    strata = sorted(int(value * 16) for value in space.to_dict()["x"])
    assert strata == list(range(16))


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ({"x": (1.0, 1.0)}, r"'x' need low < high"),
        ({"x": (2.0, 1.0)}, r"'x' need low < high"),
        ({"y": (0.0, math.inf)}, r"'y' must be finite"),
        ({"y": (math.nan, 1.0)}, r"'y' must be finite"),
        ({"z": (0.0,)}, r"'z' must be a pair"),
        ({"z": "ab"}, r"'z' must be a pair"),
        ({}, "non-empty mapping"),
    ],
)
def test_bounds_are_validated(bounds: Any, message: str) -> None:
    with pytest.raises(ExplorationError, match=message):
        ParameterSpace.latin_hypercube(bounds, 4, seed=0)


def test_seed_and_n_are_validated() -> None:
    with pytest.raises(ExplorationError, match="seed must be an int"):
        ParameterSpace.random({"x": (0.0, 1.0)}, 4, seed=None)  # type: ignore[arg-type]
    with pytest.raises(ExplorationError, match="positive int"):
        ParameterSpace.halton({"x": (0.0, 1.0)}, 0, seed=1)
    with pytest.raises(ExplorationError, match="positive int"):
        ParameterSpace.halton({"x": (0.0, 1.0)}, 2.5, seed=1)  # type: ignore[arg-type]


# -- as_columns --------------------------------------------------------------------------


def test_as_columns() -> None:
    assert as_columns({"x": (1, 2), "y": range(2)}) == {"x": [1, 2], "y": [0, 1]}
    space = ParameterSpace({"x": [1, 2]})
    columns = as_columns(space)
    assert columns == {"x": [1, 2]}
    columns["x"].append(3)
    assert len(space) == 2
    assert as_columns(cartesian_product({"x": [1, 2], "y": [3]})) == {"x": [1, 2], "y": [3, 3]}
    with pytest.raises(ExplorationError, match=r"x: 1, y: 2"):
        as_columns({"x": [1], "y": [1, 2]})
    with pytest.raises(ExplorationError, match="mapping of parameter name"):
        as_columns([1, 2])  # type: ignore[arg-type]


def test_spaces_pickle_and_copy() -> None:
    import copy
    import pickle

    space = ParameterSpace({"x": [1.0, 2.0], "y": ["a", "b"]})
    assert pickle.loads(pickle.dumps(space)) == space
    assert copy.deepcopy(space).to_dict() == {"x": [1.0, 2.0], "y": ["a", "b"]}
    assert copy.copy(space) == space
