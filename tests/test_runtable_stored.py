"""A run table rebuilt from stored rows: in order (finished or stopped part-way) or not."""

from __future__ import annotations

import numpy as np

from pytraj.storage.interface import RUN_TABLE_DTYPE, RunTableData
from pytraj.storage.records import COMPLETED, FAILED, PENDING
from pytraj.trajectory.runtable import RunTable


def rows_of(indices: list[int], statuses: list[int], attempts: list[int]) -> np.ndarray:
    rows = np.zeros(len(indices), dtype=RUN_TABLE_DTYPE)
    rows["idx"] = indices
    rows["status"] = statuses
    rows["attempt"] = attempts
    rows["host"] = 0
    rows["error"] = -1
    return rows


def test_a_study_stopped_part_way_keeps_its_rows_and_the_rest_pending() -> None:
    rows = rows_of([0, 1, 2], [COMPLETED, FAILED, COMPLETED], [1, 1, 1])
    table = RunTable.from_stored(RunTableData(rows=rows, hosts=["vm"], failures=[]), 5)
    assert len(table) == 5
    assert table.rows["idx"].tolist() == [0, 1, 2, 3, 4]
    assert table.rows["status"].tolist() == [COMPLETED, FAILED, COMPLETED, PENDING, PENDING]
    assert table.rows["host"].tolist() == [0, 0, 0, -1, -1]
    assert table.rows["error"].tolist() == [-1, -1, -1, -1, -1]
    assert table.hosts == ["vm"]
    assert table.counts() == {"pending": 2, "running": 0, "completed": 2, "failed": 1}
    rows["status"][0] = FAILED  # the table holds its own copy
    assert table.status(0) == COMPLETED


def test_retried_and_unordered_rows_keep_each_runs_latest() -> None:
    rows = rows_of([2, 0, 2, 5], [FAILED, COMPLETED, COMPLETED, COMPLETED], [1, 1, 2, 1])
    table = RunTable.from_stored(RunTableData(rows=rows, hosts=["vm"], failures=[]), 4)
    assert len(table) == 4
    assert table.rows["status"].tolist() == [COMPLETED, PENDING, COMPLETED, PENDING]
    assert table.rows["attempt"].tolist() == [1, 0, 2, 0]
    assert table.rows["idx"].tolist() == [0, 1, 2, 3]
