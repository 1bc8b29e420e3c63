"""Merging as columns: point ids as arrays, the checks of a bulk append, the merged file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import tables

import pytraj as pt
from pytraj.storage.explored import ExploredColumn
from pytraj.storage.interface import RUN_TABLE_DTYPE, ColumnData, RunTableData, check_bulk
from pytraj.storage.records import COMPLETED, FailureRecord


def _study(path: Path, xs: list[float]) -> Path:
    traj = pt.Trajectory("study", filename=path)
    traj.add_parameter("x", 0.0)
    traj.explore({"x": xs})
    for idx in range(len(xs)):
        with traj.start_run(idx):
            traj.add_result("z", traj.x * 2)
    traj.close()
    return path


def _ids(path: Path) -> list[str]:
    traj = pt.load(path)
    try:
        return [traj.runs[i].point_id for i in range(len(traj))]
    finally:
        traj.close()


def test_different_studies_merged_into_a_new_file_keep_every_point_id_and_value(
    tmp_path: Path,
) -> None:
    a = _study(tmp_path / "a.h5", [0.0, 1.0, 2.0, 3.0])
    b = _study(tmp_path / "b.h5", [10.0, 11.0, 12.0])
    expected_ids = _ids(a) + _ids(b)
    before = a.read_bytes(), b.read_bytes()
    reports = pt.merge_files([a, b], tmp_path / "all.h5")
    assert [(r.kind, r.appended, r.runs_after) for r in reports] == [
        ("copy", 4, 4),
        ("different studies", 3, 7),
    ]
    assert (a.read_bytes(), b.read_bytes()) == before  # inputs are only read
    merged = pt.load(tmp_path / "all.h5")
    try:
        assert [merged.runs[i].point_id for i in range(7)] == expected_ids
        table = merged.run_table
        assert table.point_id_array().tolist() == table.point_ids()
        assert [bytes(p).hex() for p in table.point_id_array()] == expected_ids
        assert list(merged.node("parameters.x").range) == [0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0]
        assert merged.results.z.to_series().to_dict() == {
            0: 0.0,
            1: 2.0,
            2: 4.0,
            3: 6.0,
            4: 20.0,
            5: 22.0,
            6: 24.0,
        }
        # Recorded once, though the record now goes in with the first batch of runs.
        assert [(m["kind"], m["appended"]) for m in merged.merges] == [("different studies", 3)]
        assert int(np.sum(table.rows["status"] == COMPLETED)) == 7
    finally:
        merged.close()
    with tables.open_file(str(tmp_path / "all.h5")) as f:
        explored = f.get_node("/study/runs/explored")
        assert explored.nrows == 7
        assert [bytes(p).hex() for p in explored.col("point_id")] == expected_ids
        assert f.get_node("/study/runs/table").nrows == 7


def _rows(idxs: list[int]) -> np.ndarray:
    rows = np.zeros(len(idxs), dtype=RUN_TABLE_DTYPE)
    rows["idx"] = idxs
    rows["status"] = COMPLETED
    rows["host"] = -1
    rows["error"] = -1
    return rows


def _failure(idx: int) -> FailureRecord:
    return FailureRecord(idx=idx, attempt=1, exc_type="E", message="m", traceback="t", log="")


def test_a_bulk_append_in_any_order_passes_its_checks() -> None:
    table = RunTableData(rows=_rows([7, 2, 5]), hosts=[], failures=[_failure(2)])
    column = ColumnData(runs=np.array([2, 7]), values=np.array([1.0, 2.0]), convert=float)
    check_bulk(table, {("results.z", "z"): column})  # raises nothing


@pytest.mark.parametrize(
    ("idxs", "failures", "runs", "message"),
    [
        ([7, 2, 7], [], [2], "append_columns got two rows of one run"),
        ([7, 2, 5], [_failure(2), _failure(4)], [2], "a failure of run 4 comes with no row"),
        ([7, 2, 5], [], [2, 6], "column ('results.z', 'z') holds values of runs without a row"),
        ([], [], [0], "column ('results.z', 'z') holds values of runs without a row"),
    ],
)
def test_a_bulk_append_is_refused_before_anything_is_stored(
    idxs: list[int], failures: list[FailureRecord], runs: list[int], message: str
) -> None:
    table = RunTableData(rows=_rows(idxs), hosts=[], failures=failures)
    column = ColumnData(runs=np.array(runs), values=np.zeros(len(runs)), convert=float)
    with pytest.raises(ValueError, match=re.escape(message)):
        check_bulk(table, {("results.z", "z"): column})


def _int_study(path: Path, ns: list[int], flags: list[bool]) -> Path:
    traj = pt.Trajectory("study", filename=path)
    traj.add_parameter("n", 0)
    traj.add_parameter("flag", False)
    traj.explore({"n": ns, "flag": flags})
    for idx in range(len(ns)):
        with traj.start_run(idx):
            traj.add_result("z", traj.n * 3)
    traj.close()
    return path


def test_a_merge_keeps_explored_columns_as_arrays_and_stores_exact_values(
    tmp_path: Path,
) -> None:
    a = _int_study(tmp_path / "a.h5", [1, 2, 3], [True, False, True])
    b = _int_study(tmp_path / "b.h5", [7, 8], [False, False])
    pt.merge_files([a, b], tmp_path / "all.h5")
    merged = pt.load(tmp_path / "all.h5")
    try:
        n = merged.node("parameters.n").range
        flag = merged.node("parameters.flag").range
        assert n == (1, 2, 3, 7, 8)
        assert [type(v) for v in n] == [int] * 5
        assert flag == (True, False, True, False, False)
        assert [type(v) for v in flag] == [bool] * 5
        assert merged.results.z.to_series().to_dict() == {0: 3, 1: 6, 2: 9, 3: 21, 4: 24}
        assert [type(v) for v in merged.results.z.to_series().tolist()] == [int] * 5
    finally:
        merged.close()
    with tables.open_file(tmp_path / "all.h5") as h5:
        table = h5.get_node("/study/runs/explored")
        assert table.col("n").tolist() == [1, 2, 3, 7, 8]
        assert table.col("flag").tolist() == [True, False, True, False, False]


def test_merging_into_a_loaded_trajectory_extends_its_column_without_a_list(
    tmp_path: Path,
) -> None:
    a = _study(tmp_path / "a.h5", [0.5, 1.5])
    b = _study(tmp_path / "b.h5", [2.5, 3.5, 4.5])
    here, there = pt.load(a), pt.load(b)
    try:
        here.merge(there)
        x = here.node("parameters.x")
        column = x.raw_range
        assert isinstance(column, ExploredColumn)  # one array: no float object per run
        assert column.to_numpy().tolist() == [0.5, 1.5, 2.5, 3.5, 4.5]
        assert x.value_at(4) == 4.5
        assert type(x.value_at(4)) is float
    finally:
        there.close()
        here.close()
    again = pt.load(a)
    try:
        assert again.node("parameters.x").range == (0.5, 1.5, 2.5, 3.5, 4.5)
        assert again.results.z[4] == 9.0
    finally:
        again.close()


def test_an_explored_column_joins_only_a_column_of_the_same_kind() -> None:
    floats = ExploredColumn.of_array(np.array([1.0, 2.0]), numpy_scalars=False, description="x")
    more = ExploredColumn.of_array(np.array([3.0]), numpy_scalars=False, description="x")
    joined = floats.joined(more)
    assert joined is not None
    assert joined.tolist() == [1.0, 2.0, 3.0]
    assert floats.tolist() == [1.0, 2.0]  # both stay as they were
    ints = ExploredColumn.of_array(np.array([3]), numpy_scalars=False, description="x")
    assert floats.joined(ints) is None  # another dtype: joined as lists instead
    numpy_floats = ExploredColumn.of_array(np.array([3.0]), numpy_scalars=True, description="x")
    assert floats.joined(numpy_floats) is None  # numpy scalars are not Python floats
    assert floats.joined([3.0]) is None
    assert floats.take(np.array([1])).tolist() == [2.0]
    assert floats.take(slice(0, 1)).tolist() == [1.0]
