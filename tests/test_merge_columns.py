"""Merging as columns: point ids as arrays, the checks of a bulk append, the merged file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import tables

import pytraj as pt
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
