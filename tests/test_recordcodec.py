"""The record codec: exact round trips of run records and study definitions."""

from __future__ import annotations

import pickle
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytraj.errors import UnsupportedValueError
from pytraj.storage.recordcodec import (
    RECORD_FORMAT_VERSION,
    RecordDecodeError,
    decode_definition,
    decode_run,
    decode_runs,
    encode_definition,
    encode_run,
    encode_runs,
)
from pytraj.storage.records import (
    COMPLETED,
    FAILED,
    NOT_LOADED,
    FailureRecord,
    GroupRecord,
    LazyValue,
    LeafRecord,
    LinkRecord,
    RunRecord,
    StudyDefinition,
)
from pytraj.storage.valuecodec import dumps
from pytraj.testing.compare import assert_same_value
from pytraj.testing.strategies import containers, scalars, storable_values

pytestmark = pytest.mark.storage


class Opaque:
    """A picklable object the value codec cannot hold (for Pickle leaves)."""

    def __init__(self, payload: Any) -> None:
        self.payload = payload

    def __eq__(self, other: object) -> bool:
        return type(other) is Opaque and other.payload == self.payload

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by contents


# -- comparison -----------------------------------------------------------------------------


def assert_same_leaf(actual: LeafRecord, expected: LeafRecord, where: str) -> None:
    for name in ("path", "leaf_class", "comment", "per_run", "pickled"):
        assert_same_value(getattr(actual, name), getattr(expected, name), f"{where}.{name}")
    assert_same_value(actual.annotations, expected.annotations, f"{where}.annotations")
    assert_same_value(actual.default, expected.default, f"{where}.default")
    assert_same_value(actual.explored, expected.explored, f"{where}.explored")
    assert_same_value(actual.items, expected.items, f"{where}.items")


def assert_same_run(actual: RunRecord, expected: RunRecord) -> None:
    """Every field equal, with exact types (stricter than ``==``, which arrays defeat)."""
    assert type(actual) is RunRecord
    for name in ("idx", "point_id", "status", "attempt", "start", "finish", "host", "pid", "log"):
        assert_same_value(getattr(actual, name), getattr(expected, name), name)
    assert list(actual.values) == list(expected.values)  # keys, in order
    for key, value in expected.values.items():
        assert_same_value(actual.values[key], value, f"values[{key}]")
    assert len(actual.leaves) == len(expected.leaves)
    for position, leaf in enumerate(expected.leaves):
        assert_same_leaf(actual.leaves[position], leaf, f"leaves[{position}]")
    if expected.failure is None:
        assert actual.failure is None
    else:
        assert type(actual.failure) is FailureRecord
        assert actual.failure == expected.failure  # only str and int fields


def assert_same_definition(actual: StudyDefinition, expected: StudyDefinition) -> None:
    for name in ("name", "comment", "created", "n_runs", "point_ids"):
        assert_same_value(getattr(actual, name), getattr(expected, name), name)
    assert_same_value(actual.provenance, expected.provenance, "provenance")
    assert len(actual.groups) == len(expected.groups)
    for position, group in enumerate(expected.groups):
        got = actual.groups[position]
        assert (got.path, got.comment) == (group.path, group.comment)
        assert_same_value(got.annotations, group.annotations, f"groups[{position}]")
    assert len(actual.leaves) == len(expected.leaves)
    for position, leaf in enumerate(expected.leaves):
        assert_same_leaf(actual.leaves[position], leaf, f"leaves[{position}]")
    assert actual.links == expected.links


# -- strategies -----------------------------------------------------------------------------

texts = st.text(max_size=10)
int64s = st.integers(-(2**63), 2**63 - 1)
plain_values = storable_values(max_leaves=3)
# Values of Pickle leaves: what the value codec refuses, and plain Python values (pickle
# itself is not exact for every numpy value: big-endian datetime64 arrays come back
# little-endian).
pickled_values = st.one_of(
    st.sets(st.integers(-5, 5), max_size=3),
    st.fractions(),
    st.builds(Opaque, st.integers()),
    st.recursive(scalars(), containers, max_leaves=3),
)
annotation_maps = st.dictionaries(texts, plain_values, max_size=2)


@st.composite
def leaf_records(draw: st.DrawFn, path: str | None = None) -> LeafRecord:
    pickled = draw(st.booleans())
    values = pickled_values if pickled else plain_values
    return LeafRecord(
        path=path if path is not None else draw(texts),
        leaf_class=draw(st.sampled_from(["Parameter", "Result", "PickleResult", "Mine"])),
        comment=draw(texts),
        annotations=draw(annotation_maps),
        per_run=draw(st.booleans()),
        pickled=pickled,
        default=draw(st.none() | values | st.just(NOT_LOADED)),
        explored=draw(st.none() | st.lists(values, max_size=3)),
        items=draw(st.dictionaries(texts, st.none() | values | st.just(NOT_LOADED), max_size=3)),
    )


@st.composite
def run_records(draw: st.DrawFn) -> RunRecord:
    leaves = draw(st.lists(leaf_records(), max_size=2, unique_by=lambda leaf: leaf.path))
    keys = draw(st.lists(st.tuples(texts, texts), max_size=4, unique=True))
    if leaves:
        # Some values belong to the record's own (possibly pickled) leaves.
        keys += [(leaf.path, draw(texts)) for leaf in leaves]
    pickled_paths = {leaf.path for leaf in leaves if leaf.pickled}
    values = {
        key: draw(pickled_values if key[0] in pickled_paths else plain_values)
        for key in dict.fromkeys(keys)
    }
    failure = draw(
        st.none()
        | st.builds(
            FailureRecord,
            idx=int64s,
            attempt=int64s,
            exc_type=texts,
            message=texts,
            traceback=texts,
            log=texts,
        )
    )
    return RunRecord(
        idx=draw(int64s),
        point_id=draw(st.binary(min_size=16, max_size=16) | st.binary(max_size=20)),
        status=draw(st.sampled_from([COMPLETED, FAILED]) | int64s),
        attempt=draw(int64s),
        start=draw(st.floats()),
        finish=draw(st.floats()),
        host=draw(texts),
        pid=draw(int64s),
        values=values,
        leaves=leaves,
        failure=failure,
        log=draw(texts),
    )


@st.composite
def definitions(draw: st.DrawFn) -> StudyDefinition:
    width = draw(st.sampled_from([16, 8]))
    point_ids = draw(
        st.lists(st.binary(min_size=width, max_size=width), max_size=4)
        | st.lists(st.binary(max_size=20), max_size=4)
    )
    return StudyDefinition(
        name=draw(texts),
        comment=draw(texts),
        created=draw(st.floats()),
        provenance=draw(st.dictionaries(texts, plain_values, max_size=3)),
        groups=draw(
            st.lists(
                st.builds(GroupRecord, path=texts, comment=texts, annotations=annotation_maps),
                max_size=3,
            )
        ),
        leaves=draw(st.lists(leaf_records(), max_size=3)),
        links=draw(
            st.lists(st.builds(LinkRecord, path=texts, target=texts, comment=texts), max_size=2)
        ),
        n_runs=draw(int64s),
        point_ids=point_ids,
    )


# -- round trips ----------------------------------------------------------------------------


@given(run_records())
def test_run_record_round_trip_is_exact(record: RunRecord) -> None:
    assert_same_run(decode_run(encode_run(record)), record)


@given(st.lists(run_records(), max_size=3))
def test_run_records_round_trip_in_order(records: list[RunRecord]) -> None:
    decoded = decode_runs(encode_runs(records))
    assert len(decoded) == len(records)
    for actual, expected in zip(decoded, records, strict=True):
        assert_same_run(actual, expected)


@given(definitions())
def test_definition_round_trip_is_exact(definition: StudyDefinition) -> None:
    assert_same_definition(decode_definition(encode_definition(definition)), definition)


def test_typical_run_record_round_trip() -> None:
    leaf = LeafRecord(path="results.z", leaf_class="Result", per_run=True, items={"z": None})
    record = RunRecord(
        idx=3,
        point_id=bytes(range(16)),
        start=1.7e9,
        finish=1.7e9 + 0.25,
        host="node-01",
        pid=4242,
        values={
            ("results.z", "z"): 2.5,
            ("results.stats", "n"): np.int32(7),
            ("results.stats", "trace"): np.arange(6.0).reshape(2, 3),
            ("results.stats", "pair"): (1, "a"),
        },
        leaves=[leaf],
        log="hello\n",
    )
    decoded = decode_run(encode_run(record))
    assert_same_run(decoded, record)
    assert decoded.values[("results.stats", "pair")] == (1, "a")
    assert type(decoded.values[("results.stats", "n")]) is np.int32
    assert decoded.leaves[0].items == {"z": None}


def test_failed_run_round_trip() -> None:
    failure = FailureRecord(
        idx=5, attempt=2, exc_type="ValueError", message="bad x", traceback="Traceback ...", log="l"
    )
    record = RunRecord(idx=5, point_id=b"p" * 16, status=FAILED, attempt=2, failure=failure)
    decoded = decode_run(encode_run(record))
    assert decoded == record
    assert decoded.failure == failure


def test_run_record_lists_keep_order_and_empty_lists_work() -> None:
    records = [
        RunRecord(idx=i, point_id=bytes([i]) * 16, values={("r", "v"): i}) for i in (2, 0, 1)
    ]
    assert [record.idx for record in decode_runs(encode_runs(records))] == [2, 0, 1]
    assert [record.values[("r", "v")] for record in decode_runs(encode_runs(records))] == [2, 0, 1]
    assert decode_runs(encode_runs([])) == []


def test_strings_keep_lone_surrogates() -> None:
    record = RunRecord(
        idx=0, point_id=b"", host="h\udcff", log="\x00é", values={("a\ud800", "b"): 1}
    )
    assert decode_run(encode_run(record)) == record


# -- pickled values -------------------------------------------------------------------------


def test_values_of_pickled_leaves_carried_by_the_record_are_pickled() -> None:
    leaf = LeafRecord(path="results.obj", leaf_class="PickleResult", per_run=True, pickled=True)
    record = RunRecord(
        idx=1,
        point_id=bytes(16),
        values={("results.obj", "obj"): Opaque({1, 2}), ("results.z", "z"): 1.0},
        leaves=[leaf],
    )
    decoded = decode_run(encode_run(record))
    assert decoded.values[("results.obj", "obj")] == Opaque({1, 2})
    assert decoded.values[("results.z", "z")] == 1.0


def test_pickled_paths_from_the_definition_are_pickled() -> None:
    record = RunRecord(idx=1, point_id=bytes(16), values={("results.s", "s"): {3, 1}})
    with pytest.raises(UnsupportedValueError, match=r"run 1's item results\.s\.s"):
        encode_run(record)
    assert decode_run(encode_run(record, pickled={"results.s"})).values == {
        ("results.s", "s"): {1, 3}
    }


def test_only_pickled_slots_are_unpickled() -> None:
    # A plain value that happens to look like a pickle stays bytes.
    fake = pickle.dumps(Opaque(1))
    record = RunRecord(idx=0, point_id=b"", values={("r", "b"): fake})
    assert decode_run(encode_run(record)).values[("r", "b")] == fake


def test_pickled_definition_values_round_trip() -> None:
    leaf = LeafRecord(
        path="parameters.obj",
        leaf_class="PickleParameter",
        pickled=True,
        default=Opaque("d"),
        explored=[Opaque(1), {2}, None],
        annotations={"unit": "mV"},
    )
    definition = StudyDefinition(name="t", leaves=[leaf], n_runs=3, point_ids=[b"a" * 16] * 3)
    decoded = decode_definition(encode_definition(definition)).leaves[0]
    assert decoded.default == Opaque("d")
    assert decoded.explored == [Opaque(1), {2}, None]
    assert decoded.annotations == {"unit": "mV"}


def test_unpicklable_value_raises_naming_the_item() -> None:
    leaf = LeafRecord(path="results.f", leaf_class="PickleResult", per_run=True, pickled=True)
    record = RunRecord(idx=9, point_id=b"", values={("results.f", "f"): lambda: 1}, leaves=[leaf])
    with pytest.raises(UnsupportedValueError, match=r"run 9's item results\.f\.f"):
        encode_run(record)


# -- NOT_LOADED and lazy values -------------------------------------------------------------


def test_not_loaded_is_kept_as_a_marker() -> None:
    leaf = LeafRecord(path="results.big", leaf_class="Result", items={"a": NOT_LOADED, "b": 1})
    definition = StudyDefinition(name="t", leaves=[leaf])
    items = decode_definition(encode_definition(definition)).leaves[0].items
    assert items["a"] is NOT_LOADED
    assert items["b"] == 1
    record = RunRecord(idx=0, point_id=b"", values={("results.z", "z"): NOT_LOADED})
    assert decode_run(encode_run(record)).values[("results.z", "z")] is NOT_LOADED


def test_lazy_values_are_loaded_before_encoding() -> None:
    loads = []

    def load() -> np.ndarray:
        loads.append(1)
        return np.arange(3)

    leaf = LeafRecord(path="results.big", leaf_class="Result", items={"a": LazyValue(load)})
    decoded = decode_definition(encode_definition(StudyDefinition(name="t", leaves=[leaf])))
    assert_same_value(decoded.leaves[0].items["a"], np.arange(3))
    record = RunRecord(idx=0, point_id=b"", values={("r", "v"): LazyValue(lambda: None)})
    assert decode_run(encode_run(record)).values[("r", "v")] is None
    assert loads == [1]


# -- the format -----------------------------------------------------------------------------


def _text(value: str) -> bytes:
    raw = value.encode()
    return struct.pack("<I", len(raw)) + raw


def test_run_encoding_follows_the_documented_layout() -> None:
    record = RunRecord(
        idx=7,
        point_id=b"P" * 16,
        status=COMPLETED,
        attempt=1,
        start=1.5,
        finish=2.5,
        host="h",
        pid=99,
        values={("results.z", "z"): 0.5},
        log="",
    )
    value = dumps(0.5)
    expected = (
        bytes([RECORD_FORMAT_VERSION])
        + struct.pack("<qqqddqIIIBII", 7, 2, 1, 1.5, 2.5, 99, 16, 1, 0, 0, 0, 1)
        + b"P" * 16
        + b"h"
        + _text("results.z")
        + _text("z")
        + b"v"
        + struct.pack("<I", len(value))
        + value
    )
    assert encode_run(record) == expected


def test_definition_encoding_follows_the_documented_layout() -> None:
    definition = StudyDefinition(
        name="mult",
        comment="c",
        created=3.0,
        n_runs=2,
        groups=[GroupRecord(path="parameters")],
        leaves=[LeafRecord(path="parameters.x", leaf_class="Parameter", default=None)],
        links=[LinkRecord(path="a", target="b")],
        point_ids=[b"\x01" * 16, b"\x02" * 16],
    )
    expected = (
        bytes([RECORD_FORMAT_VERSION])
        + _text("mult")
        + _text("c")
        + struct.pack("<dq", 3.0, 2)
        + struct.pack("<I", 0)  # provenance
        + struct.pack("<I", 1)
        + _text("parameters")
        + _text("")
        + struct.pack("<I", 0)
        + struct.pack("<I", 1)
        + bytes([0])  # flags
        + _text("parameters.x")
        + _text("Parameter")
        + _text("")
        + struct.pack("<I", 0)  # annotations
        + b"N"  # default None
        + struct.pack("<I", 0)  # items
        + struct.pack("<I", 1)
        + _text("a")
        + _text("b")
        + _text("")
        + struct.pack("<II", 2, 16)
        + b"\x01" * 16
        + b"\x02" * 16
    )
    assert encode_definition(definition) == expected


def _explored_definition(explored: list[Any]) -> StudyDefinition:
    leaf = LeafRecord(path="parameters.x", leaf_class="Parameter", default=0, explored=explored)
    return StudyDefinition(name="s", leaves=[leaf], n_runs=len(explored))


def _slot_by_slot(value: Any) -> bytes:
    data = dumps(value)
    return b"v" + struct.pack("<I", len(data)) + data


@given(
    st.one_of(
        st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1),
        st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1),
    )
)
def test_explored_numbers_are_encoded_at_once_as_slot_by_slot(explored: list[Any]) -> None:
    encoded = encode_definition(_explored_definition(explored))
    slots = b"".join(_slot_by_slot(value) for value in explored)
    assert struct.pack("<I", len(explored)) + slots in encoded
    decoded = decode_definition(encoded).leaves[0].explored
    assert decoded is not None
    assert [type(value) for value in decoded] == [type(value) for value in explored]
    assert np.array_equal(np.array(decoded), np.array(explored), equal_nan=True)


@pytest.mark.parametrize(
    "explored", [[1, 2**63], [1.0, 2], [True, 1], [1, np.int64(2)], [1.0, None]]
)
def test_mixed_or_huge_explored_values_keep_their_exact_types(explored: list[Any]) -> None:
    definition = _explored_definition(explored)
    if explored[1] == 2**63:
        with pytest.raises(ValueError, match="int64"):
            encode_definition(definition)
        return
    decoded = decode_definition(encode_definition(definition)).leaves[0].explored
    assert decoded == explored
    assert [type(value) for value in decoded] == [type(value) for value in explored]


# -- malformed input ------------------------------------------------------------------------


def _sample_record() -> RunRecord:
    leaf = LeafRecord(path="results.z", leaf_class="Result", per_run=True, items={"z": None})
    return RunRecord(
        idx=1,
        point_id=bytes(16),
        host="h",
        values={("results.z", "z"): 1.0, ("results.a", "a"): [1, "x"]},
        leaves=[leaf],
        failure=FailureRecord(1, 1, "E", "m", "t"),
    )


def test_every_truncation_raises_a_value_error() -> None:
    data = encode_run(_sample_record())
    for cut in range(len(data)):
        with pytest.raises(RecordDecodeError, match="cannot decode a run record"):
            decode_run(data[:cut])
    assert issubclass(RecordDecodeError, ValueError)


def test_trailing_bytes_unknown_versions_and_tags_raise() -> None:
    data = encode_run(_sample_record())
    with pytest.raises(RecordDecodeError, match="1 bytes left over"):
        decode_run(data + b"\x00")
    with pytest.raises(RecordDecodeError, match="version 2 is not known"):
        decode_run(b"\x02" + data[1:])
    record = RunRecord(idx=0, point_id=b"", values={("r", "v"): None})
    damaged = encode_run(record).replace(b"N", b"X")
    with pytest.raises(RecordDecodeError, match="unknown value tag 0x58"):
        decode_run(damaged)


def test_damaged_value_bytes_raise_a_record_error() -> None:
    record = RunRecord(idx=0, point_id=b"", values={("r", "v"): 1.0})
    data = bytearray(encode_run(record))
    data[-9] = ord("?")  # the value's tag inside its valuecodec bytes
    with pytest.raises(RecordDecodeError, match="a value before byte"):
        decode_run(bytes(data))


def test_memoryview_input_is_accepted() -> None:
    record = _sample_record()
    assert_same_run(decode_run(memoryview(encode_run(record))), record)
    assert_same_run(decode_run(bytearray(encode_run(record))), record)


def test_huge_counts_are_refused_without_allocating() -> None:
    data = bytes([RECORD_FORMAT_VERSION]) + struct.pack("<I", 2**32 - 1)
    with pytest.raises(RecordDecodeError, match="too large"):
        decode_runs(data)
