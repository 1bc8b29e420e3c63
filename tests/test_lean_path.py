"""The per-run hot path keeps every answer of the general path (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

import pytraj as pt
from pytraj.errors import AmbiguousNameError, NodeExistsError, UnsupportedValueError
from pytraj.run.options import Shard
from pytraj.run.shards import runs_to_do
from pytraj.storage.records import COMPLETED


def _study() -> pt.Trajectory:
    traj = pt.Trajectory("lean")
    traj.add_parameter("x", 0.5)
    traj.add_parameter("y", 7)
    traj.explore({"x": [1.0, 2.0, 3.0]})
    return traj


def test_a_short_name_gives_the_value_of_the_current_point_every_time() -> None:
    traj = _study()
    seen = []
    for i in range(3):
        with traj.start_run(i):
            seen.append((traj.x, traj.x, traj.y, traj.idx))
    assert seen == [(1.0, 1.0, 7, 0), (2.0, 2.0, 7, 1), (3.0, 3.0, 7, 2)]
    assert traj.x == 0.5
    with traj.set_run(1):
        assert traj.x == 2.0
    assert traj.x == 0.5


def test_a_short_name_follows_the_tree_when_it_changes() -> None:
    traj = _study()
    assert traj.x == 0.5
    traj.add_config("z", "c")
    assert traj.z == "c"
    traj.add_parameter("z", 3)  # parameters come before config
    assert traj.z == 3
    traj.add_parameter("deep.x", 9.0)  # now two parameters are named x
    with pytest.raises(AmbiguousNameError, match="parameters.deep.x"):
        _ = traj.x


def test_a_single_value_added_twice_in_a_run_names_it() -> None:
    traj = _study()
    for i in range(2):
        state = traj.lifecycle.begin(i)
        traj.add_result("z", 1.0)
        with pytest.raises(NodeExistsError, match=rf"results.z\['z'\] in run {i} was added"):
            traj.add_result("z", 2.0)
        traj.lifecycle.finish(state)  # not committed: the run stays pending
    assert traj.run_table.status(0) != COMPLETED
    with traj.start_run(2):
        traj.add_result("z", 4.0)
    assert traj.results.z.to_series().to_dict() == {2: 4.0}


def test_a_refused_value_is_named_on_the_first_and_on_later_runs() -> None:
    traj = _study()
    with traj.start_run(0):
        traj.add_result("z", 1.0)
    for i in (1, 2):
        state = traj.lifecycle.begin(i)
        with pytest.raises(UnsupportedValueError, match=r"results.z\['z'\]"):
            traj.add_result("z", {1, 2})
        traj.lifecycle.abandon()
        assert state.values == {}
    assert traj.results.z[0] == 1.0
    assert type(traj.results.z[0]) is float


def test_exact_types_come_back_through_the_batched_path(tmp_path: Path) -> None:
    path = tmp_path / "types.h5"

    def simulate(traj: pt.Trajectory) -> None:
        traj.add_result("f", traj.x * 2)
        traj.add_result("i", traj.idx - 2)
        traj.add_result("b", traj.idx % 2 == 0)

    env = pt.Environment(trajectory="types", filename=path, progress=False)
    env.trajectory.add_parameter("x", 0.0)
    env.trajectory.explore({"x": [float(i) for i in range(600)]})
    env.run(simulate)
    env.close()
    loaded = pt.load(path)
    assert [type(loaded.results.f[i]) for i in (0, 599)] == [float, float]
    assert loaded.results.f[599] == 1198.0
    assert loaded.results.i[0] == -2
    assert type(loaded.results.i[0]) is int
    assert loaded.results.b[3] is False
    assert loaded.results.b[4] is True
    assert loaded.run_table.counts()["completed"] == 600


def test_the_runs_to_do_of_a_fresh_study_are_a_range() -> None:
    traj = _study()
    assert runs_to_do(traj.run_table, Shard(), retry_failed=False, name="lean") == range(3)
    with traj.start_run(1):
        traj.add_result("z", 1.0)
    assert runs_to_do(traj.run_table, Shard(), retry_failed=False, name="lean") == [0, 2]
    with traj.start_run(0):
        traj.add_result("z", 1.0)
    assert runs_to_do(traj.run_table, Shard(), retry_failed=False, name="lean") == range(2, 3)
