"""Manual runs, per-run results and their views, queries (in-memory storage)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pytraj as pt
from pytraj.errors import NodeExistsError, NodeTypeError, RunError, RunValueMissingError


@pytest.fixture
def traj() -> pt.Trajectory:
    traj = pt.Trajectory("study")
    traj.add_parameter("x", 1.0)
    traj.add_parameter("y", 10)
    traj.explore(pt.cartesian_product({"x": [1.0, 2.0], "y": [10, 20]}))
    return traj


def run_all(traj: pt.Trajectory, skip: tuple[int, ...] = ()) -> None:
    for i in range(len(traj)):
        if i in skip:
            continue
        with traj.start_run(i):
            traj.add_result("z", traj.x * traj.y)
            traj.add_result("stats", mean=traj.x, n=traj.y)


def test_a_manual_run_sets_the_point_and_commits(traj: pt.Trajectory) -> None:
    with traj.start_run(3) as t:
        assert t is traj
        assert traj.idx == 3
        assert (traj.x, traj.y) == (2.0, 20)
        traj.add_result("z", traj.x * traj.y)
        assert traj.results.z == 40.0
        assert traj.node("x").locked
    assert traj.idx == -1
    assert traj.runs[3].status == "completed"
    assert traj.runs[3].attempt == 1
    assert traj.runs[3].finish >= traj.runs[3].start > 0
    assert traj.runs[3].pid > 0
    assert traj.runs[3].host
    assert traj.runs[0].status == "pending"


def test_per_run_view(traj: pt.Trajectory) -> None:
    run_all(traj)
    z = traj.results.z
    assert len(z) == 4
    assert z[0] == 10.0
    assert z[3] == 40.0
    assert z[-1] == 40.0
    assert type(z[1]) is float
    assert list(z) == [10.0, 20.0, 20.0, 40.0]
    assert traj.runs[2].results.z == 20.0
    assert traj.runs[2].z == 20.0
    assert traj.results.stats.mean[3] == 2.0
    assert traj.results.stats.n[3] == 20
    assert traj.runs[3].results.stats.n == 20
    assert "per run" in repr(traj.node("results.z"))
    assert repr(z) == "<PerRunView 'results.z' 4 of 4 runs>"


def test_views_to_series_and_numpy(traj: pt.Trajectory) -> None:
    run_all(traj, skip=(1,))
    z = traj.results.z
    assert len(z) == 3
    series = z.to_series()
    assert list(series.index) == [0, 2, 3]
    assert list(series) == [10.0, 20.0, 40.0]
    assert series.name == "results.z"
    with pytest.raises(RunValueMissingError, match="1 runs have no value"):
        z.to_numpy()
    filled = z.to_numpy(fill=np.nan)
    assert filled.dtype == np.float64
    np.testing.assert_array_equal(filled, [10.0, np.nan, 20.0, 40.0])


def test_missing_run_value_names_run_and_status(traj: pt.Trajectory) -> None:
    run_all(traj, skip=(1,))
    with pytest.raises(RunValueMissingError) as info:
        _ = traj.results.z[1]
    assert isinstance(info.value, KeyError)
    assert "run 1" in str(info.value)
    assert "status: pending" in str(info.value)
    assert traj.results.z.get(1, "none") == "none"


def test_sub_views(traj: pt.Trajectory) -> None:
    run_all(traj)
    z = traj.results.z
    assert list(z[1:3]) == [20.0, 20.0]
    assert list(z[[3, 0]]) == [10.0, 40.0]
    assert list(z[np.array([True, False, False, True])]) == [10.0, 40.0]
    assert len(z[2:]) == 2
    np.testing.assert_array_equal(z[2:].to_numpy(), [20.0, 40.0])
    with pytest.raises(IndexError, match="4 entries"):
        _ = z[np.array([True, False])]


def test_array_results_stack(traj: pt.Trajectory) -> None:
    for i in range(len(traj)):
        with traj.start_run(i):
            traj.add_result("trace", np.full(3, float(i)))
            traj.add_result("ragged", np.arange(i + 1))
    stacked = traj.results.trace.to_numpy()
    assert stacked.shape == (4, 3)
    np.testing.assert_array_equal(stacked[2], [2.0, 2.0, 2.0])
    ragged = traj.results.ragged.to_numpy()
    assert ragged.dtype == object
    np.testing.assert_array_equal(ragged[3], [0, 1, 2, 3])


def test_failed_block_is_recorded_and_reraised(traj: pt.Trajectory) -> None:
    def failing_run() -> None:
        with traj.start_run(1):
            traj.add_result("z", 1.0)
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        failing_run()
    run = traj.runs[1]
    assert run.status == "failed"
    assert run.failure is not None
    assert run.failure.exc_type == "ZeroDivisionError"
    assert "division by zero" in run.failure.message
    assert "1 / 0" in run.failure.traceback
    assert traj.results.z.get(1) is None  # a failed attempt keeps no partial results
    with traj.start_run(1):
        traj.add_result("z", 2.0)
    assert traj.runs[1].status == "completed"
    assert traj.runs[1].attempt == 2
    assert traj.results.z[1] == 2.0
    assert len(traj.run_table.failures_of(1)) == 1


def test_interrupt_leaves_the_run_pending(traj: pt.Trajectory) -> None:
    with pytest.raises(KeyboardInterrupt), traj.start_run(0):
        raise KeyboardInterrupt
    assert traj.runs[0].status == "pending"
    assert traj.idx == -1


def test_run_misuse(traj: pt.Trajectory) -> None:
    with traj.start_run(0):
        nested = traj.start_run(1)
        with pytest.raises(RunError, match="cannot nest"):
            nested.__enter__()
        with pytest.raises(RunError, match="in progress"):
            traj.add_parameter("late", 1)
        traj.add_result("z", 1.0)
        with pytest.raises(NodeExistsError, match="added already"):
            traj.add_result("z", 2.0)
    with pytest.raises(RunError, match="completed already"), traj.start_run(0):
        pass
    with pytest.raises(RunError, match="does not exist"), traj.start_run(9):
        pass


def test_a_name_is_per_run_or_trajectory_level(traj: pt.Trajectory) -> None:
    traj.add_result("summary", 1.0)
    with pytest.raises(NodeTypeError, match="per run or for the whole"), traj.start_run(0):
        traj.add_result("summary", 2.0)
    run_all(traj, skip=(0,))
    with pytest.raises(RunError, match="inside a run"):
        traj.node("results.z").set("z", 3.0)


def test_derived_parameters_in_runs_are_per_run(traj: pt.Trajectory) -> None:
    for i in range(len(traj)):
        with traj.start_run(i):
            traj.add_derived_parameter("ratio", traj.x / traj.y)
    assert traj.derived_parameters.ratio[3] == pytest.approx(0.1)
    assert len(traj.dpar.ratio) == 4


def test_seed_is_reproducible_per_point(traj: pt.Trajectory) -> None:
    with pytest.raises(RunError):
        _ = traj.seed
    seeds = []
    for i in range(len(traj)):
        with traj.set_run(i):
            seeds.append(traj.seed)
    assert len(set(seeds)) == 4
    assert all(0 <= s < 2**63 for s in seeds)
    with traj.set_run(2):
        assert traj.seed == seeds[2]
    assert seeds[0] == int.from_bytes(traj.point_id(0)[:8], "little") >> 1


def test_set_run_reads_stored_values(traj: pt.Trajectory) -> None:
    run_all(traj)
    with traj.set_run(2):
        assert traj.results.z == 20.0
        assert traj.z == 20.0


def test_find(traj: pt.Trajectory) -> None:
    run_all(traj)
    assert traj.find(x=2.0) == [2, 3]
    assert traj.find(x=2.0, y=10) == [2]
    assert traj.find(y__ge=15) == [1, 3]
    assert traj.find(y__in=[10]) == [0, 2]
    assert traj.find(z__gt=15.0) == [1, 2, 3]
    assert traj.find(x__ne=1.0, z__lt=30) == [2]
    with pytest.raises(pt.errors.OptionError, match="unknown operator 'like'"):
        traj.find(x__like=1)


def test_to_dataframe(traj: pt.Trajectory) -> None:
    run_all(traj, skip=(1,))
    frame = traj.to_dataframe()
    assert list(frame.columns) == ["x", "y", "z", "stats.mean", "stats.n"]
    assert list(frame.index) == [0, 1, 2, 3]
    assert frame.loc[3, "z"] == 40.0
    assert np.isnan(frame.loc[1, "z"])
    assert frame["x"].dtype == np.float64
    with_status = traj.to_dataframe(status=True)
    assert list(with_status["status"]) == ["completed", "pending", "completed", "completed"]


def test_run_table_dataframe(traj: pt.Trajectory) -> None:
    run_all(traj, skip=(1,))
    table = traj.runs.to_dataframe()
    assert isinstance(table, pd.DataFrame)
    assert list(table["status"]) == ["completed", "pending", "completed", "completed"]
    assert list(table["attempt"]) == [1, 0, 1, 1]
    assert table.loc[0, "point_id"] == traj.runs[0].point_id


def test_point_ids_ending_in_nul_bytes_keep_all_16_bytes() -> None:
    from pytraj.trajectory.pointid import point_id

    # About one id in 256 ends with a NUL byte, which numpy's S16 would drop.
    values = [float(v) for v in range(2000)]
    ending_in_nul = [v for v in values if point_id({"parameters.x": v})[-1] == 0]
    assert ending_in_nul
    traj = pt.Trajectory("nul")
    traj.add_parameter("x", 0.0)
    traj.explore({"x": ending_in_nul[:3]})
    for run, value in zip(traj.runs, ending_in_nul, strict=False):
        assert run.point_id == point_id({"parameters.x": value}).hex()
        assert traj.point_id(run.idx) == point_id({"parameters.x": value})
    assert all(len(p) == 16 for p in traj.run_table.point_ids())


def test_a_deferred_run_table_is_built_once_on_first_use() -> None:
    import pickle

    from pytraj.trajectory.runtable import RunTable

    builds = []

    def build() -> RunTable:
        builds.append(1)
        table = RunTable(3)
        table.set_point_ids([bytes([i]) * 16 for i in range(3)])
        return table

    table = RunTable.deferred(3, build)
    assert len(table) == 3
    assert builds == []
    assert table.point_id(2) == b"\x02" * 16
    assert table.counts()["pending"] == 3
    assert builds == [1]
    copy = pickle.loads(pickle.dumps(RunTable.deferred(3, build)))
    assert builds == [1, 1]
    assert copy.point_ids() == [bytes([i]) * 16 for i in range(3)]
    with pytest.raises(AttributeError):
        _ = table.no_such_slot
