"""A uniform batch of run records: recognised exactly, encoded with the same bytes."""

from __future__ import annotations

import numpy as np
import pytest

from pytraj.errors import InvalidValueError, UnsupportedValueError
from pytraj.storage.recordcodec import decode_runs, encode_run, encode_runs
from pytraj.storage.records import FailureRecord, LeafRecord, RunRecord
from pytraj.storage.runbatch import uniform_runs


def _record(i: int, **changes: object) -> RunRecord:
    fields: dict[str, object] = {
        "idx": i,
        "point_id": bytes([i % 256]) * 16,
        "attempt": 1,
        "start": 100.0 + i,
        "finish": 100.5 + i,
        "host": "nodé",
        "pid": 42,
        "values": {("results.z", "z"): 2.0 * i + 1.0, ("results.n", "n"): i - 3},
    }
    fields.update(changes)
    return RunRecord(**fields)  # type: ignore[arg-type]


def _run_by_run(records: list[RunRecord]) -> bytes:
    head = encode_runs(records[:1])[:5]  # version byte + count of one
    count = len(records).to_bytes(4, "little")
    return head[:1] + count + b"".join(encode_run(r)[1:] for r in records)


def test_a_uniform_batch_is_encoded_as_run_by_run() -> None:
    records = [_record(i) for i in range(300)]
    batch = uniform_runs(records)
    assert batch is not None
    assert batch.keys == (("results.z", "z"), ("results.n", "n"))
    assert batch.kinds == [float, int]
    assert batch.values[1][:3] == [-3, -2, -1]
    encoded = encode_runs(records)
    assert encoded == _run_by_run(records)
    decoded = decode_runs(encoded)
    assert decoded == records
    assert type(decoded[5].values[("results.n", "n")]) is int


def test_a_batch_on_an_empty_host_name_is_encoded_as_run_by_run() -> None:
    records = [_record(i, host="") for i in range(3)]
    assert uniform_runs(records) is not None
    assert encode_runs(records) == _run_by_run(records)


def test_batches_that_are_not_uniform_go_run_by_run() -> None:
    failure = FailureRecord(idx=1, attempt=1, exc_type="ValueError", message="no", traceback="tb")
    leaf = LeafRecord(path="results.z", leaf_class="Result", per_run=True)
    others = {
        "failure": _record(1, failure=failure, status=3, values={}),
        "leaf": _record(1, leaves=[leaf]),
        "log": _record(1, log="printed"),
        "host": _record(1, host="other"),
        "order": _record(1, values={("results.n", "n"): 1, ("results.z", "z"): 1.0}),
        "repeat": _record(0),
    }
    for name, other in others.items():
        records = [_record(0), other, _record(2)]
        assert uniform_runs(records) is None, name
        assert decode_runs(encode_runs(records)) == records, name
    records = [_record(0), _record(1)]
    assert uniform_runs(records, pickled={"results.n"}) is None


def test_an_int_beyond_int64_makes_an_object_column_whose_slot_names_the_run() -> None:
    records = [_record(0), _record(1, values={("results.z", "z"): 1.0, ("results.n", "n"): 2**63})]
    batch = uniform_runs(records)
    assert batch is not None
    assert batch.kinds == [float, object]
    with pytest.raises(InvalidValueError, match=r"run 1's item results\.n\.n"):
        encode_runs(records)


def _mixed(i: int) -> dict[tuple[str, str], object]:
    """W3's kind of run: numbers, then a small dict, with other values between them."""
    return {
        ("results.stats", "s0"): 0.5 + i,
        ("results.flag", "flag"): i % 3 == 0,
        ("results.stats", "s1"): 1.5 + i,
        ("results.stats", "k"): i,
        ("results.wide", "wide"): np.float32(i) if i % 2 else 7,
        ("results.none", "none"): None,
        ("results.arr", "arr"): np.arange(3.0) * i,
        ("results.info", "info"): {"label": "ok" if i % 2 == 0 else "odd", "k": i, "flag": True},
    }


def test_mixed_items_are_columns_encoded_as_run_by_run_with_exact_types() -> None:
    records = [_record(i, values=_mixed(i)) for i in range(50)]
    batch = uniform_runs(records)
    assert batch is not None
    assert batch.kinds == [float, object, float, int, object, object, object, object]
    encoded = encode_runs(records)
    assert encoded == _run_by_run(records)
    decoded = decode_runs(encoded)
    assert decoded[7].values[("results.info", "info")] == {"label": "odd", "k": 7, "flag": True}
    assert type(decoded[3].values[("results.flag", "flag")]) is bool
    assert decoded[3].values[("results.flag", "flag")] is True
    assert type(decoded[3].values[("results.wide", "wide")]) is np.float32
    assert decoded[3].values[("results.wide", "wide")] == np.float32(3)
    assert type(decoded[4].values[("results.wide", "wide")]) is int
    assert decoded[4].values[("results.none", "none")] is None
    assert decoded[4].values[("results.arr", "arr")].tolist() == [0.0, 4.0, 8.0]
    assert type(decoded[5].values[("results.stats", "k")]) is int


def test_a_batch_ending_with_numbers_or_of_objects_only_is_encoded_as_run_by_run() -> None:
    ends_with_numbers = [
        _record(i, values={("results.info", "info"): {"k": i}, ("results.z", "z"): i / 3})
        for i in range(4)
    ]
    objects_only = [
        _record(i, values={("results.a", "a"): [i], ("results.b", "b"): (i, "x")}) for i in range(4)
    ]
    for records in (ends_with_numbers, objects_only):
        assert uniform_runs(records) is not None
        assert encode_runs(records) == _run_by_run(records)
        assert decode_runs(encode_runs(records)) == records


def test_an_unsupported_object_value_is_refused_naming_run_and_item() -> None:
    records = [
        _record(i, values={("results.z", "z"): 1.0, ("results.o", "o"): object() if i else 1})
        for i in range(3)
    ]
    with pytest.raises(UnsupportedValueError, match=r"run 1's item results\.o\.o"):
        encode_runs(records)


def _info(i: int) -> dict[str, object]:
    return {
        "label": "ok" if i % 2 == 0 else "odd é\udcff",
        "k": -(2**62) + i,
        "x": i / 7,
        "f": i % 3 == 0,
    }


def test_small_flat_dicts_are_encoded_key_by_key_as_run_by_run() -> None:
    records = [
        _record(i, values={("results.z", "z"): i / 3, ("results.info", "info"): _info(i)})
        for i in range(40)
    ]
    encoded = encode_runs(records)
    assert encoded == _run_by_run(records)
    decoded = decode_runs(encoded)
    assert decoded[3].values[("results.info", "info")] == {
        "label": "odd é\udcff",
        "k": -(2**62) + 3,
        "x": 3 / 7,
        "f": True,
    }
    assert type(decoded[4].values[("results.info", "info")]["f"]) is bool
    assert type(decoded[4].values[("results.info", "info")]["k"]) is int


def test_dicts_that_differ_in_keys_order_or_kinds_are_encoded_as_run_by_run() -> None:
    variants = {
        "order": lambda i: {"b": 1, "a": 2} if i == 1 else {"a": 2, "b": 1},
        "keys": lambda i: {"a": 1} if i == 1 else {"a": 1, "b": 2},
        "kinds": lambda i: {"a": 1.0 if i == 1 else 1},
        "nested": lambda i: {"a": {"b": i}},
        "numpy": lambda i: {"a": np.int64(i)},
        "none": lambda i: {"a": None},
        "big": lambda i: {"a": 2**63 if i == 2 else i},
        "empty": lambda i: {},
    }
    for name, make in variants.items():
        records = [_record(i, values={("results.d", "d"): make(i)}) for i in range(3)]
        if name == "big":
            with pytest.raises(InvalidValueError, match=r"run 2's item results\.d\.d"):
                encode_runs(records)
            continue
        assert encode_runs(records) == _run_by_run(records), name
        assert decode_runs(encode_runs(records)) == records, name
