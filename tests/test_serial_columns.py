"""The serial runner's columnar lane keeps every answer of the run-by-run path (issue 11).

Plain runs go to the session as columns (:class:`~pytraj.storage.runbatch.RunLane`);
a failure, a new leaf or item, a run that is completed already or indices that are not
plain run indices go as records. Either way the same values are stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pytraj as pt
from pytraj.errors import NodeExistsError, RunError, UnsupportedValueError
from pytraj.run.caps import CapGate, ResourceCaps
from pytraj.run.executors import SerialRunner
from pytraj.run.jobs import RunJob
from pytraj.run.progress import Progress
from pytraj.run.session import InterruptControl, RunSession
from pytraj.storage.records import COMPLETED, WRITER_KEY, RunRecord
from pytraj.storage.runbatch import (
    ColumnBatch,
    RecordBatch,
    RunLane,
    RunStarts,
    batch_leaves,
    uniform_runs,
)


def _env(path: Path, n: int, **options: Any) -> pt.Environment:
    env = pt.Environment(trajectory="lane", filename=path, progress=False, **options)
    env.trajectory.add_parameter("x", 0.0)
    env.trajectory.explore({"x": [float(i) for i in range(n)]})
    return env


def _mixed(traj: pt.Trajectory) -> int:
    """Plain runs, and every way a run can leave the lane."""
    idx = traj.idx
    if idx == 2:
        raise ValueError(f"boom at {traj.x}")
    if idx == 5:
        traj.add_result("z", 5)  # an int where the others add floats
        return idx
    traj.add_result("z", traj.x * 2)
    if idx == 7:
        traj.add_result("w", "seven")  # a new leaf, in one run only
    if idx == 9:
        with traj.start_run(0):  # runs cannot nest: the run fails
            pass
    return idx


def test_plain_and_unusual_runs_store_what_each_run_added(tmp_path: Path) -> None:
    path = tmp_path / "mixed.h5"
    env = _env(path, 700, on_error="continue")
    returned = env.run(_mixed)
    assert returned == [(i, i) for i in range(700) if i not in (2, 9)]
    env.close()
    loaded = pt.load(path)
    z = loaded.results.z
    assert len(z) == 698
    assert z[0] == 0.0
    assert type(z[0]) is float
    assert z[5] == 5
    assert type(z[5]) is int
    assert z[699] == 1398.0
    assert type(z[699]) is float
    assert loaded.results.w.to_series().to_dict() == {7: "seven"}
    assert [loaded.runs[i].status for i in (1, 2, 9, 10)] == [
        "completed",
        "failed",
        "failed",
        "completed",
    ]
    assert loaded.runs[2].failure.message == "boom at 2.0"
    assert "runs cannot nest" in loaded.runs[9].failure.message
    assert loaded.run_table.counts() == {
        "pending": 0,
        "running": 0,
        "completed": 698,
        "failed": 2,
    }
    rows = loaded.run_table.rows
    assert rows["attempt"].tolist() == [1] * 700
    assert bool(np.all(rows["finish"] >= rows["start"]))
    assert bool(np.all(rows["start"] > 0))


def test_a_retry_through_the_lane_counts_the_attempt(tmp_path: Path) -> None:
    path = tmp_path / "retry.h5"
    env = _env(path, 4, on_error="continue")
    env.run(_fails_once)
    assert env.trajectory.runs[1].status == "failed"
    env.resume(retry_failed=True)
    env.close()
    loaded = pt.load(path)
    assert loaded.results.z.to_series().to_dict() == {0: 0.0, 1: 10.0, 2: 20.0, 3: 30.0}
    assert loaded.run_table.rows["attempt"].tolist() == [1, 2, 1, 1]
    assert [f.attempt for f in loaded.run_table.failures_of(1)] == [1]
    assert loaded.runs[1].failure is None


_FAILED_ONCE: set[float] = set()


def _fails_once(traj: pt.Trajectory) -> None:
    if traj.x == 1.0 and traj.x not in _FAILED_ONCE:
        _FAILED_ONCE.add(traj.x)
        raise RuntimeError("first try")
    traj.add_result("z", traj.x * 10)


def test_ctrl_c_in_a_run_keeps_the_runs_before_and_leaves_it_pending(tmp_path: Path) -> None:
    path = tmp_path / "interrupt.h5"

    def simulate(traj: pt.Trajectory) -> None:
        if traj.idx == 300:
            raise KeyboardInterrupt
        traj.add_result("z", traj.x + 0.5)

    env = _env(path, 400)
    with pytest.raises(KeyboardInterrupt):
        env.run(simulate)
    env.close()
    loaded = pt.load(path)
    assert loaded.run_table.counts()["completed"] == 300
    assert loaded.runs[300].status == "pending"
    assert loaded.results.z[299] == 299.5
    assert len(loaded.results.z) == 300


def _job(traj: pt.Trajectory, indices: Any, func: Any) -> tuple[RunJob, RunSession]:
    job = RunJob(traj, indices, func, (), {})
    return job, RunSession(traj, Progress("off", len(indices), traj.name))


def _execute(job: RunJob, session: RunSession) -> None:
    gate = CapGate(ResourceCaps(), lambda: None)  # type: ignore[arg-type,return-value]
    with InterruptControl() as control:
        SerialRunner().execute(job, session, control, gate)
    session.commit()


def _add_z(traj: pt.Trajectory) -> float:
    traj.add_result("z", traj.x + 1.0)
    return traj.x


def test_a_completed_run_in_a_job_is_refused_and_the_runs_before_it_are_kept() -> None:
    traj = pt.Trajectory("done")
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [0.0, 1.0, 2.0, 3.0]})
    with traj.start_run(2):
        traj.add_result("z", 9.0)
    job, session = _job(traj, [0, 1, 2, 3], _add_z)
    with pytest.raises(RunError, match="run 2 of 'done' is completed already"):
        _execute(job, session)
    session.commit()
    assert traj.results.z.to_series().to_dict() == {0: 1.0, 1: 2.0, 2: 9.0}
    assert traj.lifecycle.active is None
    assert traj.idx == -1


@pytest.mark.parametrize(
    ("indices", "lane"),
    [([3, 1], True), (range(1, 3), True), ([np.int64(0), np.int64(2)], False), ([-1], False)],
    ids=repr,
)
def test_indices_the_lane_does_not_take_run_one_by_one(indices: Any, lane: bool) -> None:
    traj = pt.Trajectory("odd")
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [0.0, 1.0, 2.0, 3.0]})
    assert (traj.lifecycle.prepare_runs(indices) is not None) is lane
    job, session = _job(traj, indices, _add_z)
    _execute(job, session)
    runs = sorted(int(i) % 4 for i in indices)
    assert traj.results.z.to_series().to_dict() == {i: i + 1.0 for i in runs}
    assert sorted(session.results) == [(i, float(i)) for i in runs]
    assert all(type(idx) is int for idx, _ in session.results)


def test_a_run_listed_twice_is_not_taken_by_the_lane() -> None:
    traj = pt.Trajectory("twice")
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [0.0, 1.0]})
    assert traj.lifecycle.prepare_runs([1, 0, 1]) is None
    assert traj.lifecycle.prepare_runs([0, 1]) is not None


def test_a_lane_gives_a_column_batch_that_reads_as_its_records() -> None:
    starts = RunStarts(
        indices=range(3, 6),
        index_array=None,
        point_ids=np.array([bytes([k]) * 16 for k in range(3)], dtype="V16"),
        attempts=np.array([1, 2, 1]),
        completed=frozenset(),
    )
    lane = RunLane(starts, "host", 42)
    key = ("results.z", "z")
    for position in (0, 2):
        lane.runs.append((position, 10.0 + position, 11.0 + position, {key: float(position)}))
    assert lane.seconds() == 2.0
    batch = lane.take({WRITER_KEY: 0})
    assert type(batch) is ColumnBatch
    assert len(lane) == 0
    assert len(batch) == 2
    assert list(batch_leaves(batch)) == []
    columns = uniform_runs(batch)
    assert columns is not None
    assert columns.idx == [3, 5]
    assert columns.keys == (key, WRITER_KEY)
    assert columns.values == [[0.0, 2.0], [0, 0]]
    assert columns.kinds == [float, int]
    assert list(batch) == [
        RunRecord(3, b"\0" * 16, COMPLETED, 1, 10.0, 11.0, "host", 42, {key: 0.0, WRITER_KEY: 0}),
        RunRecord(5, b"\2" * 16, COMPLETED, 1, 12.0, 13.0, "host", 42, {key: 2.0, WRITER_KEY: 0}),
    ]
    assert batch[-1].idx == 5
    assert [record.idx for record in batch[:1]] == [3]


def test_runs_with_other_items_leave_the_lane_as_records() -> None:
    starts = RunStarts(
        indices=[0, 1],
        index_array=np.arange(2),
        point_ids=np.zeros(2, dtype="V16"),
        attempts=1,
        completed=frozenset(),
    )
    lane = RunLane(starts, "host", 1)
    for position, values in enumerate([{("a", "a"): 1.0}, {("b", "b"): 2.0}]):
        lane.runs.append((position, 0.0, 1.0, values))
    batch = lane.take({})
    assert type(batch) is RecordBatch
    assert [record.values for record in batch] == [{("a", "a"): 1.0}, {("b", "b"): 2.0}]
    assert uniform_runs(batch) is None


def test_the_in_memory_backend_takes_the_lane_run_by_run() -> None:
    traj = pt.Trajectory("mem")  # no file: the in-memory storage, which reads records
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [float(i) for i in range(300)]})
    job, session = _job(traj, range(300), _add_z)
    _execute(job, session)
    assert traj.results.z[299] == 300.0
    assert type(traj.results.z[0]) is float
    assert traj.run_table.counts()["completed"] == 300
    assert traj.run_table.rows["attempt"].tolist() == [1] * 300
    assert len(session.results) == 300


def test_float_items_added_again_in_later_runs_keep_every_check() -> None:
    traj = pt.Trajectory("items")
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [0.0, 1.0, 2.0, 3.0]})
    with traj.start_run(0):
        traj.add_result("stats", mean=1.0, std=0.5)
    with traj.start_run(1):
        traj.add_result("stats", mean=2.0, std=1.5)  # the same float items: the plan
        with pytest.raises(NodeExistsError, match=r"results.stats\['mean'\] in run 1"):
            traj.add_result("stats", mean=3.0, std=3.5)
    with traj.start_run(2):
        traj.add_result("stats", mean=3, std=2.5)  # an int among them: item by item
    with traj.start_run(3), pytest.raises(UnsupportedValueError, match=r"stats\['mean'\]"):
        traj.add_result("stats", mean={1}, std=4.5)
    assert traj.results.stats.mean.to_series().to_dict() == {0: 1.0, 1: 2.0, 2: 3}
    assert type(traj.results.stats.mean[2]) is int
    assert traj.results.stats.std.to_series().to_dict() == {0: 0.5, 1: 1.5, 2: 2.5}
    assert traj.runs[3].status == "completed"  # the refused value was caught: no stats


def test_the_starts_of_a_job_are_read_once_and_held_compactly() -> None:
    traj = pt.Trajectory("starts")
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [0.0, 1.0, 2.0, 3.0]})
    fresh = traj.lifecycle.prepare_runs(range(4))
    assert fresh is not None
    assert fresh.index_array is None
    assert fresh.attempts == 1
    assert fresh.completed == frozenset()
    assert [fresh.point_id(k) for k in range(4)] == traj.run_table.point_ids()
    with pytest.raises(ValueError, match="no"), traj.start_run(1):
        raise ValueError("no")
    with traj.start_run(2):
        traj.add_result("z", 1.0)
    later = traj.lifecycle.prepare_runs([3, 1, 2])
    assert later is not None
    assert later.indices_at(np.array([0, 1, 2])) == [3, 1, 2]
    assert later.attempts_at(np.array([0, 1, 2])) == [1, 2, 2]
    assert later.completed == frozenset({2})
