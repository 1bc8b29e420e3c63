"""What a merge reads and opens: each file once, no run table it does not need, rows as bytes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tables

import pytraj as pt
from pytraj.storage.hdf5 import open_trajectory
from pytraj.storage.hdf5.store import TrajectoryStore
from pytraj.storage.interface import (
    RUN_TABLE_DTYPE,
    ColumnData,
    RunTableData,
    check_bulk,
    copy_rows,
    row_bytes,
)
from pytraj.testing.conformance import run_record
from pytraj.trajectory.mergecopy import positions_of


def _study(path: Path, xs: list[float], done: list[int]) -> Path:
    traj = pt.Trajectory("study", filename=path)
    traj.add_parameter("x", 1.0)
    traj.explore({"x": xs})
    for idx in done:
        with traj.start_run(idx):
            traj.add_result("z", traj.x * 2)
    traj.close()
    return path


@pytest.fixture
def reads_of_committed(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times a writer read which runs its file holds, by trajectory name."""
    counted: Counter[str] = Counter()
    original = TrajectoryStore.read_committed

    def counting(self: TrajectoryStore) -> None:
        counted[self.name] += 1
        original(self)

    monkeypatch.setattr(TrajectoryStore, "read_committed", counting)
    return counted


def test_merge_files_opens_each_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = _study(tmp_path / "a.h5", [0.0, 1.0, 2.0], [0, 1, 2])
    b = _study(tmp_path / "b.h5", [10.0, 11.0], [0, 1])
    opened: list[tuple[str, str]] = []
    original = tables.open_file

    def recording(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        opened.append((Path(path).name, mode))
        return original(path, mode, *args, **kwargs)

    monkeypatch.setattr(tables, "open_file", recording)
    pt.merge_files([a, b], tmp_path / "all.h5")
    monkeypatch.undo()
    names = Counter(name for name, _ in opened)
    # a: listed once before it is copied; the copy: once for loading and writing; b: once.
    assert names["a.h5"] == 1
    assert names["b.h5"] == 1
    temporary = [(name, mode) for name, mode in opened if name.startswith(".all.h5.merging-")]
    assert [mode for _, mode in temporary] == ["a"]
    assert len(opened) == 3
    merged = pt.load(tmp_path / "all.h5")
    assert merged.results.z.to_series().to_dict() == {0: 0.0, 1: 2.0, 2: 4.0, 3: 20.0, 4: 22.0}
    assert merged.run_table.counts()["completed"] == 5
    merged.close()


def test_merge_appending_runs_reads_no_run_of_the_output(
    tmp_path: Path, reads_of_committed: Counter[str]
) -> None:
    a = _study(tmp_path / "a.h5", [0.0, 1.0, 2.0], [0, 1, 2])
    b = _study(tmp_path / "b.h5", [10.0, 11.0], [0, 1])
    pt.merge_files([a, b], tmp_path / "all.h5")
    assert reads_of_committed["study"] == 0
    merged = pt.load(tmp_path / "all.h5")
    assert merged.x == 1.0
    assert [merged.runs[i].x for i in range(5)] == [0.0, 1.0, 2.0, 10.0, 11.0]
    merged.close()


def test_merge_updating_stored_runs_reads_them_once(
    tmp_path: Path, reads_of_committed: Counter[str]
) -> None:
    xs = [0.0, 1.0, 2.0, 3.0]
    a = _study(tmp_path / "a.h5", xs, [0, 1])
    b = _study(tmp_path / "b.h5", xs, [1, 2, 3])
    reports = pt.merge_files([a, b], tmp_path / "all.h5")
    assert reports[1].updated == 2
    assert reads_of_committed["study"] == 1
    merged = pt.load(tmp_path / "all.h5")
    assert merged.results.z.to_series().to_dict() == {0: 0.0, 1: 2.0, 2: 4.0, 3: 6.0}
    merged.close()


def test_a_writer_replaces_a_stored_run_after_reading_which_runs_the_file_holds(
    tmp_path: Path, reads_of_committed: Counter[str]
) -> None:
    path = tmp_path / "again.h5"
    _study(path, [0.0, 1.0, 2.0, 3.0, 4.0], [0, 1, 2])
    storage = open_trajectory(path, "study")
    assert reads_of_committed["study"] == 0  # not when it starts writing
    storage.commit_runs([run_record(3, z=30.0)])  # a run below the 5 the file counts
    assert reads_of_committed["study"] == 1
    storage.commit_runs([run_record(1)])  # again, without z
    assert reads_of_committed["study"] == 1
    storage.commit_runs([run_record(0, z=-1.0)])
    assert reads_of_committed["study"] == 1
    storage.close()
    reader = open_trajectory(path, "study")
    assert reader.read_column_runs("results.z", "z").tolist() == [0, 2, 3]
    assert reader.read_cell("results.z", "z", 0) == -1.0
    assert reader.read_cell("results.z", "z", 3) == 30.0
    with pytest.raises(KeyError):
        reader.read_cell("results.z", "z", 1)


def test_rows_move_as_bytes_and_keep_every_field() -> None:
    rows = np.zeros(3, dtype=RUN_TABLE_DTYPE)
    rows["idx"] = [4, 5, 6]
    rows["point_id"] = [b"\x00" * 15 + b"\x01", b"\xff" * 16, b"\x00" * 16]
    rows["status"] = [2, 3, 0]
    rows["start"] = [1.5, -0.0, 2.5]
    rows["error"] = [-1, 0, -1]
    copied = copy_rows(rows)
    assert not np.shares_memory(copied, rows)
    assert copied.dtype == RUN_TABLE_DTYPE
    assert copied.tobytes() == rows.tobytes()
    target = np.zeros(7, dtype=RUN_TABLE_DTYPE)
    row_bytes(target)[rows["idx"]] = row_bytes(rows)
    assert target["idx"].tolist() == [0, 0, 0, 0, 4, 5, 6]
    assert bytes(target["point_id"][4]) == b"\x00" * 15 + b"\x01"
    assert target["status"].tolist() == [0, 0, 0, 0, 2, 3, 0]
    with pytest.raises(TypeError, match="run-table rows expected"):
        row_bytes(np.zeros(2, dtype=np.int64))


def test_positions_of_a_complete_column_and_of_one_with_gaps() -> None:
    wanted = np.array([0, 9, 10, 15, 19, 20, 25])
    complete = ColumnData(runs=np.arange(10, 20), values=[])
    assert positions_of(complete, wanted).tolist() == [-1, -1, 0, 5, 9, -1, -1]
    gaps = ColumnData(runs=np.array([10, 15, 19]), values=[])
    assert positions_of(gaps, wanted).tolist() == [-1, -1, 0, 1, 2, -1, -1]


def test_a_bulk_append_of_a_range_of_runs_is_still_checked() -> None:
    rows = np.zeros(4, dtype=RUN_TABLE_DTYPE)
    rows["idx"] = [13, 10, 11, 12]
    table = RunTableData(rows=rows, hosts=[], failures=[])
    check_bulk(table, {("results.z", "z"): ColumnData(runs=np.arange(10, 14), values=[])})
    outside = {("results.z", "z"): ColumnData(runs=np.array([10, 14]), values=[1.0, 2.0])}
    with pytest.raises(ValueError, match="holds values of runs without a row"):
        check_bulk(table, outside)
    rows["idx"] = [10, 11, 11, 13]
    with pytest.raises(ValueError, match="two rows of one run"):
        check_bulk(table, {})
