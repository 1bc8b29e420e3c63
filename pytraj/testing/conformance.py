"""A test class every storage backend passes: subclass it and say how to make one.

::

    from pytraj.testing.conformance import StorageConformance

    class TestMyBackend(StorageConformance):
        def make_storage(self, tmp_path):
            return MyStorage(tmp_path / "study.x", "study")

        def reopen(self, storage, tmp_path):  # optional: read back through a new object
            storage.close()
            return MyStorage.open(tmp_path / "study.x", "study")

The tests use only the :class:`~pytraj.storage.interface.Storage` interface and compare
with exact types (:func:`~pytraj.testing.compare.assert_same_value`), so a backend that
passes behaves like the in-memory reference.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytraj.storage.interface import RUN_TABLE_DTYPE, ColumnData, RunTableData, Storage
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
from pytraj.testing.compare import assert_same_value

__all__ = [
    "StorageConformance",
    "assert_definition_equal",
    "bulk_table",
    "loaded",
    "sample_definition",
]

_Z = ("results.z", "z")
_NO_VALUE: Any = object()


def loaded(value: Any) -> Any:
    """``value`` with a LazyValue loaded."""
    return value.load() if type(value) is LazyValue else value


def _items(storage: Storage, leaf: LeafRecord) -> dict[str, Any]:
    items = dict(leaf.items)
    if not leaf.per_run and any(value is NOT_LOADED for value in items.values()):
        items.update(storage.read_items(leaf.path))
    return {item: loaded(value) for item, value in items.items()}


def assert_definition_equal(
    actual: StudyDefinition, expected: StudyDefinition, storage: Storage
) -> None:
    """Assert two definitions hold the same things, fetching items left in ``storage``."""
    for field in ("name", "comment", "created", "n_runs"):
        assert getattr(actual, field) == getattr(expected, field), field
    assert_same_value(actual.provenance, expected.provenance, "provenance")
    assert [bytes(p) for p in actual.point_ids] == [bytes(p) for p in expected.point_ids]
    assert [g.path for g in actual.groups] == [g.path for g in expected.groups]
    for got, want in zip(actual.groups, expected.groups, strict=True):
        assert got.comment == want.comment, got.path
        assert_same_value(got.annotations, want.annotations, f"{got.path} annotations")
    assert [(k.path, k.target, k.comment) for k in actual.links] == [
        (k.path, k.target, k.comment) for k in expected.links
    ]
    assert [leaf.path for leaf in actual.leaves] == [leaf.path for leaf in expected.leaves]
    for leaf, wanted in zip(actual.leaves, expected.leaves, strict=True):
        where = leaf.path
        assert (leaf.leaf_class, leaf.comment, leaf.per_run, leaf.pickled) == (
            wanted.leaf_class,
            wanted.comment,
            wanted.per_run,
            wanted.pickled,
        ), where
        assert_same_value(leaf.annotations, wanted.annotations, f"{where} annotations")
        assert_same_value(loaded(leaf.default), wanted.default, f"{where} default")
        if wanted.explored is None:
            assert leaf.explored is None, where
        else:
            assert leaf.explored is not None, where
            assert_same_value(
                [loaded(v) for v in leaf.explored], list(wanted.explored), f"{where} explored"
            )
        assert list(leaf.items) == list(wanted.items), where
        if not wanted.per_run:
            assert_same_value(_items(storage, leaf), dict(wanted.items), f"{where} items")


def sample_definition(name: str = "study", n_runs: int = 3) -> StudyDefinition:
    """A definition using every part of the record: groups, leaves, links, exploration."""
    return StudyDefinition(
        name=name,
        comment="a study of everything",
        created=1_700_000_000.25,
        provenance={"python": "3.11", "argv": ["run.py", "-v"], "ncores": 2},
        groups=[
            GroupRecord("parameters", "the inputs", {"unit": "mV"}),
            GroupRecord("parameters.net", "", {"size": 3, "weights": np.arange(3.0)}),
            GroupRecord("results", ""),
        ],
        leaves=[
            LeafRecord(
                "parameters.x",
                "Parameter",
                comment="first",
                annotations={"unit": "s", "scale": 1.5},
                default=1.0,
                explored=[float(i) for i in range(n_runs)],
            ),
            LeafRecord(
                "parameters.net.n",
                "Parameter",
                default=np.int32(4),
                explored=[np.int32(i) for i in range(n_runs)],
            ),
            LeafRecord(
                "parameters.net.shape",
                "Parameter",
                default=(1, 2),
                explored=[(i, "a") for i in range(n_runs)],
            ),
            LeafRecord("parameters.name", "Parameter", default="net-1"),
            LeafRecord("parameters.big", "Parameter", default=np.arange(20_000.0)),
            LeafRecord("parameters.nothing", "Parameter", default=None),
            LeafRecord(
                "parameters.obj",
                "PickleParameter",
                pickled=True,
                default={1, 2, 3},
            ),
            LeafRecord(
                "results.stats",
                "Result",
                comment="summary",
                items={"mean": 0.5, "hist": np.ones((2, 3), order="F"), "meta": {"a": [1]}},
            ),
            LeafRecord("results.z", "Result", per_run=True, items={"z": None}),
        ],
        links=[LinkRecord("results.alias", "results.stats", "same thing")],
        n_runs=n_runs,
        point_ids=[i.to_bytes(2, "little") * 8 for i in range(n_runs)],
    )


def run_record(idx: int, z: Any = _NO_VALUE, **kwargs: Any) -> RunRecord:
    """A completed run with value ``z`` (when given) of item ``results.z``."""
    values = kwargs.pop("values", {})
    if z is not _NO_VALUE:
        values = {_Z: z, **values}
    defaults: dict[str, Any] = {
        "point_id": bytes([idx % 256]) * 16,
        "start": 100.0 + idx,
        "finish": 101.5 + idx,
        "host": "node-1",
        "pid": 4242,
    }
    defaults.update(kwargs)
    return RunRecord(idx=idx, values=values, **defaults)


def bulk_table(
    rows: list[tuple[Any, ...]], hosts: list[str], failures: list[FailureRecord]
) -> RunTableData:
    """Run-table rows for :meth:`~pytraj.storage.interface.Storage.append_columns`:
    ``(idx, status, attempt, host, error)`` each, with times and pid from the run index."""
    table = np.zeros(len(rows), dtype=RUN_TABLE_DTYPE)
    for k, (idx, status, attempt, host, error) in enumerate(rows):
        table[k] = (
            idx,
            bytes([idx, 7]) + bytes(14),
            status,
            attempt,
            10.0 + idx,
            11.25 + idx,
            host,
            error,
            900 + idx,
        )
    return RunTableData(rows=table, hosts=hosts, failures=failures)


class StorageConformance:
    """The behaviour every :class:`~pytraj.storage.interface.Storage` shares.

    Subclasses implement :meth:`make_storage`; :meth:`reopen` (default: the same object)
    lets a persistent backend read everything back through a fresh object.
    """

    def make_storage(self, tmp_path: Path) -> Storage:
        """A new, empty storage for a trajectory named ``"study"``."""
        raise NotImplementedError

    def reopen(self, storage: Storage, tmp_path: Path) -> Storage:
        """The same trajectory read back (persistent backends close and open again)."""
        return storage

    def _fresh(self, tmp_path: Path, n_runs: int = 3) -> Storage:
        storage = self.make_storage(tmp_path)
        storage.write_definition(sample_definition(n_runs=n_runs))
        return storage

    # -- definitions -----------------------------------------------------------------
    def test_an_empty_storage_has_nothing(self, tmp_path: Path) -> None:
        storage = self.make_storage(tmp_path)
        table = storage.read_run_table()
        assert table.rows.dtype == RUN_TABLE_DTYPE
        assert len(table.rows) == 0
        assert table.failures == []
        column = storage.read_column(*_Z)
        assert len(column) == 0
        assert column.runs.dtype == np.int64
        with pytest.raises(KeyError):
            storage.read_cell(*_Z, 0)
        assert storage.read_run_log(0) == ""

    def test_definition_round_trip(self, tmp_path: Path) -> None:
        storage = self._fresh(tmp_path)
        storage = self.reopen(storage, tmp_path)
        assert_definition_equal(storage.read_definition(), sample_definition(), storage)

    def test_pickled_default_is_unpickled_exactly(self, tmp_path: Path) -> None:
        storage = self.reopen(self._fresh(tmp_path), tmp_path)
        leaves = {leaf.path: leaf for leaf in storage.read_definition().leaves}
        assert loaded(leaves["parameters.obj"].default) == {1, 2, 3}

    def test_a_later_definition_replaces_the_earlier(self, tmp_path: Path) -> None:
        storage = self._fresh(tmp_path)
        changed = sample_definition(n_runs=5)
        changed.comment = "changed"
        changed.leaves = [leaf for leaf in changed.leaves if leaf.path != "parameters.name"]
        stats = next(leaf for leaf in changed.leaves if leaf.path == "results.stats")
        stats.items = {"mean": 0.75, "extra": [1, (2, None)]}
        changed.groups[0].annotations = {"unit": "V"}
        changed.links = []
        storage.write_definition(changed)
        storage = self.reopen(storage, tmp_path)
        assert_definition_equal(storage.read_definition(), changed, storage)

    def test_items_of_a_trajectory_level_result(self, tmp_path: Path) -> None:
        storage = self.reopen(self._fresh(tmp_path), tmp_path)
        items = {k: loaded(v) for k, v in storage.read_items("results.stats").items()}
        assert list(items) == ["mean", "hist", "meta"]
        assert_same_value(items["mean"], 0.5)
        assert_same_value(items["hist"], np.ones((2, 3), order="F"))
        assert_same_value(items["meta"], {"a": [1]})

    # -- runs ------------------------------------------------------------------------
    def test_commit_then_read_columns_and_cells(self, tmp_path: Path) -> None:
        storage = self._fresh(tmp_path, n_runs=4)
        storage.commit_runs([run_record(2, 2.5), run_record(0, 0.5)])
        storage.commit_runs([run_record(3, 3.5)])
        storage = self.reopen(storage, tmp_path)
        column = storage.read_column(*_Z)
        assert column.runs.tolist() == [0, 2, 3]
        assert [column.value_at(p) for p in range(3)] == [0.5, 2.5, 3.5]
        assert all(type(column.value_at(p)) is float for p in range(3))
        assert column.position_of(1) == -1
        assert_same_value(storage.read_cell(*_Z, 2), 2.5)
        with pytest.raises(KeyError):
            storage.read_cell(*_Z, 1)

    @pytest.mark.parametrize(
        "values",
        [
            [1, 2, -(2**63), 2**63 - 1],
            [True, False, True, True],
            [1 + 2j, -0.0j, 3j, 1.0 + 0j],
            [np.float32(1.5), np.float32(-0.0), np.float32(np.inf), np.float32(2)],
            [np.int8(-1), np.int8(2), np.int8(3), np.int8(127)],
            [np.datetime64("2024-01-01", "s"), np.datetime64("NaT", "s")] * 2,
            [np.arange(3.0), np.zeros(3), np.ones(3), np.full(3, np.nan)],
            [np.arange(6, dtype=np.int16).reshape(2, 3)] * 4,
            ["a", "", "b\x00c", "\u00e9\ud800"],
            [b"a", b"", b"\x00", b"xyz"],
            [{"a": 1}, [1, 2], (3,), None],
        ],
    )
    def test_columns_keep_exact_types(self, tmp_path: Path, values: list[Any]) -> None:
        storage = self._fresh(tmp_path, n_runs=4)
        storage.commit_runs([run_record(i, value) for i, value in enumerate(values)])
        storage = self.reopen(storage, tmp_path)
        column = storage.read_column(*_Z)
        got = [column.value_at(p) for p in range(len(column))]
        assert_same_value(got, list(values))
        for i, value in enumerate(values):
            assert_same_value(storage.read_cell(*_Z, i), value, f"cell {i}")

    def test_values_that_do_not_fit_the_first_are_kept_exactly(self, tmp_path: Path) -> None:
        values = [1.5, 2, "three", np.float32(4), None, np.arange(2.0), 7.5]
        storage = self._fresh(tmp_path, n_runs=len(values))
        for i, value in enumerate(values):
            storage.commit_runs([run_record(i, value)])
        storage = self.reopen(storage, tmp_path)
        column = storage.read_column(*_Z)
        assert_same_value([column.value_at(p) for p in range(len(column))], values)
        for i, value in enumerate(values):
            assert_same_value(storage.read_cell(*_Z, i), value, f"cell {i}")

    def test_values_read_are_not_aliases(self, tmp_path: Path) -> None:
        storage = self._fresh(tmp_path)
        storage.commit_runs([run_record(0, np.zeros(3))])
        first = storage.read_column(*_Z).value_at(0)
        first[:] = 7.0
        assert_same_value(storage.read_column(*_Z).value_at(0), np.zeros(3))
        assert_same_value(storage.read_cell(*_Z, 0), np.zeros(3))

    def test_a_recommitted_run_replaces_its_values_and_row(self, tmp_path: Path) -> None:
        storage = self._fresh(tmp_path)
        other = ("results.w", "w")
        storage.commit_runs([run_record(1, 1.0, values={other: 10})])
        storage.commit_runs([run_record(1, 2.0, attempt=2, host="node-2")])
        storage = self.reopen(storage, tmp_path)
        assert_same_value(storage.read_cell(*_Z, 1), 2.0)
        with pytest.raises(KeyError):
            storage.read_cell(*other, 1)
        assert len(storage.read_column(*other)) == 0
        table = storage.read_run_table()
        assert table.rows["idx"].tolist() == [1]
        assert int(table.rows["attempt"][0]) == 2
        assert table.hosts[int(table.rows["host"][0])] == "node-2"

    def test_column_runs_are_the_runs_with_a_value(self, tmp_path: Path) -> None:
        storage = self._fresh(tmp_path, n_runs=8)
        other = ("results.w", "w")
        storage.commit_runs([run_record(i, float(i), values={other: i}) for i in (5, 0, 3)])
        storage.commit_runs([run_record(3, values={other: -3}), run_record(7, np.arange(7))])
        storage = self.reopen(storage, tmp_path)
        runs = storage.read_column_runs(*_Z)
        assert runs.dtype == np.int64
        assert runs.tolist() == [0, 5, 7]
        assert storage.read_column_runs(*other).tolist() == [0, 3, 5]
        assert storage.read_column_runs("results.none", "none").tolist() == []
        assert runs.tolist() == storage.read_column(*_Z).runs.tolist()

    def test_failures_keep_their_history(self, tmp_path: Path) -> None:
        storage = self._fresh(tmp_path)
        failure = FailureRecord(1, 1, "ValueError", "bad \u00e9", "Traceback ...\n", "log line")
        storage.commit_runs([run_record(1, status=FAILED, failure=failure), run_record(0, 0.0)])
        storage.commit_runs([run_record(1, 1.0, attempt=2)])
        storage = self.reopen(storage, tmp_path)
        table = storage.read_run_table()
        assert table.rows["idx"].tolist() == [0, 1]
        assert table.rows["status"].tolist() == [COMPLETED, COMPLETED]
        assert table.rows["error"].tolist() == [-1, -1]
        assert table.failures == [failure]
        assert_same_value(storage.read_cell(*_Z, 1), 1.0)

    def test_a_failed_run_points_to_its_failure(self, tmp_path: Path) -> None:
        storage = self._fresh(tmp_path)
        failure = FailureRecord(2, 1, "RuntimeError", "boom", "tb", "")
        storage.commit_runs([run_record(2, status=FAILED, failure=failure)])
        storage = self.reopen(storage, tmp_path)
        table = storage.read_run_table()
        assert int(table.rows["status"][0]) == FAILED
        assert table.failures[int(table.rows["error"][0])] == failure

    def test_run_table_rows_are_exact(self, tmp_path: Path) -> None:
        storage = self._fresh(tmp_path)
        point_id = bytes(range(15)) + b"\x00"  # a trailing NUL must survive
        storage.commit_runs([run_record(0, 1.0, point_id=point_id, host="h\u00e9", pid=7)])
        storage = self.reopen(storage, tmp_path)
        rows = storage.read_run_table()
        row = rows.rows[0]
        assert np.ascontiguousarray(rows.rows["point_id"]).tobytes() == point_id
        assert (float(row["start"]), float(row["finish"]), int(row["pid"])) == (100.0, 101.5, 7)
        assert rows.hosts[int(row["host"])] == "h\u00e9"

    def test_logs_are_kept_per_run(self, tmp_path: Path) -> None:
        storage = self._fresh(tmp_path)
        storage.commit_runs([run_record(0, 0.0, log="hello\nworld"), run_record(1, 1.0)])
        storage = self.reopen(storage, tmp_path)
        assert storage.read_run_log(0) == "hello\nworld"
        assert storage.read_run_log(1) == ""
        storage.commit_runs([run_record(0, 0.0, attempt=2)])
        storage = self.reopen(storage, tmp_path)
        assert storage.read_run_log(0) == ""

    def test_pickled_per_run_values(self, tmp_path: Path) -> None:
        storage = self._fresh(tmp_path)
        key = ("results.obj", "obj")
        leaf = LeafRecord(
            "results.obj", "PickleResult", per_run=True, pickled=True, items={"obj": None}
        )
        value = {frozenset([1]), 2}
        storage.commit_runs([run_record(0, values={key: value}, leaves=[leaf])])
        storage = self.reopen(storage, tmp_path)
        assert storage.read_cell(*key, 0) == value
        column = storage.read_column(*key)
        assert column.value_at(0) == value
        assert pickle.dumps(column.value_at(0)) == pickle.dumps(value)

    def test_many_runs_in_any_order(self, tmp_path: Path) -> None:
        n = 300
        storage = self._fresh(tmp_path, n_runs=n)
        order = np.random.default_rng(3).permutation(n).tolist()
        for start in range(0, n, 37):
            storage.commit_runs([run_record(i, float(i) / 3) for i in order[start : start + 37]])
        storage = self.reopen(storage, tmp_path)
        column = storage.read_column(*_Z)
        assert column.runs.tolist() == list(range(n))
        assert [column.value_at(p) for p in range(n)] == [i / 3 for i in range(n)]
        assert storage.read_run_table().rows["idx"].tolist() == list(range(n))

    # -- bulk appends ----------------------------------------------------------------
    def test_append_columns_stores_rows_values_and_failures(self, tmp_path: Path) -> None:
        storage = self._fresh(tmp_path, n_runs=5)
        storage.commit_runs([run_record(0, 0.5, host="node-1")])
        early = FailureRecord(3, 1, "ValueError", "first try", "tb1", "")
        last = FailureRecord(4, 2, "KeyError", "still bad", "tb2", "log")
        table = bulk_table(
            [(1, COMPLETED, 1, 0, -1), (3, COMPLETED, 2, 1, -1), (4, FAILED, 2, 0, 1)],
            ["node-9", "node-1"],
            [early, last],
        )
        other = ("results.w", "w")
        columns = {
            _Z: ColumnData(runs=np.array([1, 3]), values=np.array([1.5, 3.5]), convert=float),
            other: ColumnData(runs=np.array([3]), values=[np.arange(3, dtype=np.int16)]),
        }
        leaf = LeafRecord("results.w", "Result", per_run=True, items={"w": None})
        storage.append_columns(table, columns, [leaf])
        storage = self.reopen(storage, tmp_path)
        stored = storage.read_run_table()
        rows = stored.rows[np.argsort(stored.rows["idx"], kind="stable")]
        assert rows["idx"].tolist() == [0, 1, 3, 4]
        assert rows["status"].tolist() == [COMPLETED, COMPLETED, COMPLETED, FAILED]
        assert rows["attempt"].tolist() == [1, 1, 2, 2]
        assert [stored.hosts[h] for h in rows["host"].tolist()] == [
            "node-1",
            "node-9",
            "node-1",
            "node-9",
        ]
        assert rows["start"].tolist() == [100.0, 11.0, 13.0, 14.0]
        assert rows["pid"].tolist() == [4242, 901, 903, 904]
        assert bytes(rows["point_id"][2]) == bytes([3, 7]) + bytes(14)
        assert rows["error"][:3].tolist() == [-1, -1, -1]
        assert stored.failures == [early, last]
        assert stored.failures[int(rows["error"][3])] == last
        column = storage.read_column(*_Z)
        assert column.runs.tolist() == [0, 1, 3]
        assert_same_value([column.value_at(p) for p in range(3)], [0.5, 1.5, 3.5])
        assert_same_value(storage.read_cell(*_Z, 3), 3.5)
        assert_same_value(storage.read_cell(*other, 3), np.arange(3, dtype=np.int16))
        with pytest.raises(KeyError):
            storage.read_cell(*_Z, 4)
        assert storage.read_column_runs(*other).tolist() == [3]

    def test_append_columns_replaces_a_committed_run(self, tmp_path: Path) -> None:
        storage = self._fresh(tmp_path, n_runs=3)
        other = ("results.w", "w")
        storage.commit_runs([run_record(1, 1.0, values={other: 10}, log="old log")])
        storage.commit_runs([run_record(2, 2.0, values={other: 20})])
        table = bulk_table([(1, COMPLETED, 2, 0, -1)], ["node-2"], [])
        storage.append_columns(table, {_Z: ColumnData(runs=np.array([1]), values=["one"])})
        storage = self.reopen(storage, tmp_path)
        assert_same_value(storage.read_cell(*_Z, 1), "one")
        with pytest.raises(KeyError):
            storage.read_cell(*other, 1)
        assert storage.read_run_log(1) == ""
        assert storage.read_column_runs(*other).tolist() == [2]
        assert_same_value(storage.read_cell(*other, 2), 20)
        rows = storage.read_run_table().rows
        latest = {int(row["idx"]): row for row in rows}
        assert sorted(latest) == [1, 2]
        assert int(latest[1]["attempt"]) == 2

    def test_append_columns_refuses_what_has_no_row(self, tmp_path: Path) -> None:
        storage = self._fresh(tmp_path, n_runs=3)
        twice = bulk_table([(1, COMPLETED, 1, 0, -1), (1, COMPLETED, 2, 0, -1)], ["h"], [])
        with pytest.raises(ValueError, match="two rows of one run"):
            storage.append_columns(twice, {})
        lost = FailureRecord(2, 1, "ValueError", "x", "", "")
        orphan = bulk_table([(1, COMPLETED, 1, 0, -1)], ["h"], [lost])
        with pytest.raises(ValueError, match="failure of run 2"):
            storage.append_columns(orphan, {})
        storage = self.reopen(storage, tmp_path)
        assert len(storage.read_run_table().rows) == 0

    def test_append_columns_keeps_values_that_do_not_fit_exactly(self, tmp_path: Path) -> None:
        storage = self._fresh(tmp_path, n_runs=4)
        values = [1, 2.5, -(2**63), 2**63 - 1]
        table = bulk_table([(i, COMPLETED, 1, 0, -1) for i in range(4)], ["h"], [])
        storage.append_columns(table, {_Z: ColumnData(runs=np.arange(4), values=values)})
        storage = self.reopen(storage, tmp_path)
        column = storage.read_column(*_Z)
        assert_same_value([column.value_at(p) for p in range(4)], values)
        assert_same_value(storage.read_cell(*_Z, 1), 2.5)
        assert_same_value(storage.read_cell(*_Z, 3), 2**63 - 1)
