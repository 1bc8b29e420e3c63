"""The parts a Trajectory is made of: the run lifecycle, the exploration, the column cache."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import pytraj as pt
from pytraj.errors import RunError, RunValueMissingError
from pytraj.storage.records import COMPLETED, FAILED, PENDING
from pytraj.trajectory.runtable import RunTable


@pytest.fixture
def traj() -> pt.Trajectory:
    traj = pt.Trajectory("parts")
    traj.add_parameter("x", 1.0)
    traj.explore({"x": [1.0, 2.0, 3.0]})
    return traj


def test_begin_sets_the_current_run_and_finish_gives_its_record(traj: pt.Trajectory) -> None:
    lifecycle = traj.lifecycle
    state = lifecycle.begin(1)
    assert lifecycle.active is state
    assert (traj.idx, lifecycle.current_idx, traj.x) == (1, 1, 2.0)
    traj.add_result("z", 20.0)
    record = lifecycle.finish(state)
    assert lifecycle.active is None
    assert traj.idx == -1
    assert (record.idx, record.status, record.values) == (1, COMPLETED, {("results.z", "z"): 20.0})
    lifecycle.commit([record])
    assert traj.results.z[1] == 20.0
    assert traj.run_table.status(1) == COMPLETED


def test_a_failed_attempt_keeps_no_values_and_an_abandoned_run_stays_pending(
    traj: pt.Trajectory,
) -> None:
    lifecycle = traj.lifecycle
    state = lifecycle.begin(0)
    traj.add_result("z", 1.0)
    record = lifecycle.finish(state, ValueError("boom"))
    assert (record.status, record.values) == (FAILED, {})
    assert record.failure is not None
    assert record.failure.exc_type == "ValueError"
    lifecycle.begin(2)
    lifecycle.abandon()
    assert lifecycle.active is None
    assert traj.run_table.status(2) == PENDING


def test_runs_do_not_nest_and_the_tree_refuses_changes_during_a_run(traj: pt.Trajectory) -> None:
    traj.lifecycle.begin(0)
    with pytest.raises(RunError, match="run 0 is in progress; runs cannot nest"):
        traj.lifecycle.begin(1)
    with pytest.raises(RunError, match="cannot explore while run 0 is in progress"):
        traj.explore({"x": [5.0]})
    with pytest.raises(RunError, match="run 0 is in progress; finish it first"):
        traj.set_run(1)
    traj.lifecycle.abandon()


def test_a_changed_parameter_recomputes_pending_point_ids_only(traj: pt.Trajectory) -> None:
    with traj.start_run(0):
        traj.add_result("z", 1.0)
    before = [traj.point_id(i) for i in range(3)]
    traj.add_parameter("y", 7)  # a new parameter changes every pending point
    after = [traj.point_id(i) for i in range(3)]
    assert after[0] == before[0]  # run 0 ran: it keeps the id it ran with
    assert after[1] != before[1]
    assert after[2] != before[2]


def test_the_column_cache_reads_again_after_a_commit(traj: pt.Trajectory) -> None:
    with traj.start_run(0):
        traj.add_result("z", 1.5)
    first = traj.column_cache.column("results.z", "z")
    assert traj.column_cache.column("results.z", "z") is first  # cached
    with traj.start_run(2):
        traj.add_result("z", 3.5)
    second = traj.column_cache.column("results.z", "z")
    assert second is not first
    assert list(second.runs) == [0, 2]
    assert traj.column_cache.cell("results.z", "z", 2) == 3.5
    with pytest.raises(RunValueMissingError, match=r"run 1 has no value .* \(status: pending\)"):
        traj.column_cache.cell("results.z", "z", 1)


def test_rebind_takes_over_a_run_table_and_drops_cached_columns(traj: pt.Trajectory) -> None:
    with traj.start_run(0):
        traj.add_result("z", 1.5)
    cached = traj.column_cache.column("results.z", "z")
    table = RunTable(3)
    table.set_point_ids(traj.run_table.point_ids())
    traj.rebind(run_table=table, definition_dirty=False)
    assert traj.run_table is table
    assert not traj.definition_dirty
    assert traj.column_cache.column("results.z", "z") is not cached
    traj.mark_definition_changed()
    assert traj.definition_dirty


def test_from_definition_rebuilds_a_stored_trajectory(tmp_path: Path, traj: pt.Trajectory) -> None:
    with pt.Trajectory("stored", filename=tmp_path / "s.h5") as stored:
        stored.add_parameter("x", 1.0)
        stored.explore({"x": [1.0, 2.0]})
        with stored.start_run(1):
            stored.add_result("z", 4.0)
        created = stored.created
    loaded = pt.load(tmp_path / "s.h5")
    assert type(loaded) is pt.Trajectory
    assert (len(loaded), loaded.created, loaded.results.z[1]) == (2, created, 4.0)
    assert not loaded.definition_dirty


def test_repeated_points_are_told_by_whole_ids_not_by_their_first_bytes() -> None:
    from pytraj.errors import DuplicatePointWarning
    from pytraj.trajectory.exploration import _warn_duplicates
    from pytraj.trajectory.runtable import RunTable

    table = RunTable(5)
    same_head = b"\x01" * 8
    table.set_point_ids(
        [same_head + b"\x02" * 8, same_head + b"\x03" * 8, b"\x04" * 16, b"\x04" * 16, b"\x00" * 16]
    )
    with pytest.warns(
        DuplicatePointWarning, match=r"1 explored runs repeat a parameter point \(3\)"
    ):
        _warn_duplicates(table, 3)
    with pytest.warns(DuplicatePointWarning, match=r"2 explored runs .*\(2, 3\)"):
        _warn_duplicates(table, 0)
    table.set_point_ids([same_head + bytes([k]) * 8 for k in range(5)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_duplicates(table, 0)
