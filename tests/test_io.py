"""pytraj.io: load and list trajectories of real files, and continue them."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import pytraj as pt
from pytraj.errors import PickleNotAllowedError, RunValueMissingError, TrajectoryNotFoundError
from pytraj.io import list_trajectories, load
from pytraj.testing.compare import assert_same_value
from pytraj.testing.trajectories import assert_trajectory_equal

pytestmark = pytest.mark.storage


def make_study(path: Path, name: str = "study", n: int = 4, *, close: bool = True) -> pt.Trajectory:
    traj = pt.Trajectory(name, filename=path, comment=f"the {name} study")
    traj.add_parameter("x", 1.0, comment="first axis")
    traj.add_parameter("net.size", 10)
    traj.add_parameter("label", "abc")
    traj.node("parameters.x").annotations["unit"] = "mV"
    traj.explore({"x": [float(i) for i in range(n)], "net.size": [10 * i for i in range(n)]})
    traj.add_result("summary", mean=0.5, table=np.arange(6.0).reshape(2, 3), tags=["a", "b"])
    for i in range(n):
        with traj.start_run(i):
            traj.add_result("z", traj.x * 2)
            traj.add_result("trace", np.full(3, traj.x))
            traj.add_result("stats", count=i, label=f"run {i}")
    if close:
        traj.close()
    return traj


def test_load_gives_back_the_study(tmp_path: Path) -> None:
    path = tmp_path / "study.h5"
    original = make_study(path)
    loaded = load(path)
    assert_trajectory_equal(loaded, original)
    assert loaded.node("parameters.x").comment == "first axis"
    assert loaded.node("parameters.x").annotations["unit"] == "mV"
    assert loaded.results.z[3] == 6.0
    assert type(loaded.results.z[3]) is float
    assert type(loaded.results.stats.count[2]) is int
    assert loaded.results.stats.label[1] == "run 1"
    assert_same_value(loaded.results.trace.to_numpy(), np.repeat(np.arange(4.0), 3).reshape(4, 3))
    assert_same_value(loaded.results.summary.tags, ["a", "b"])
    assert loaded.runs[2].status == "completed"
    assert loaded.runs[2].point_id == original.runs[2].point_id
    loaded.close()


def test_load_is_lazy_and_lazy_false_reads_everything(tmp_path: Path) -> None:
    path = tmp_path / "study.h5"
    make_study(path)
    lazy = load(path)
    assert lazy.node("results.summary")._loader is not None  # items still in the file
    assert lazy.run_table._source is not None  # the run table too
    eager = load(path, lazy=False)
    assert eager.node("results.summary")._loader is None
    assert eager.run_table._source is None
    assert_trajectory_equal(eager, lazy)


def test_list_and_pick_trajectories_by_name_and_index(tmp_path: Path) -> None:
    path = tmp_path / "many.h5"
    for name in ("first", "second", "third"):
        make_study(path, name, n=2)
    assert list_trajectories(path) == ["first", "second", "third"]
    assert load(path).name == "third"
    assert load(path, index=0).name == "first"
    assert load(path, "second").comment == "the second study"
    with pytest.raises(TrajectoryNotFoundError, match=r"'fourth'.*'first', 'second', 'third'"):
        load(path, "fourth")
    with pytest.raises(TrajectoryNotFoundError, match="index 5 is out of range"):
        load(path, index=5)
    with pytest.raises(KeyError):  # TrajectoryNotFoundError is also a KeyError
        load(path, "nope")


def test_overwrite_replaces_only_that_trajectory(tmp_path: Path) -> None:
    path = tmp_path / "many.h5"
    make_study(path, "keep", n=3)
    make_study(path, "replace", n=3)
    with pytest.raises(pt.errors.StorageError, match="overwrite=True"):
        pt.Trajectory("replace", filename=path)
    fresh = pt.Trajectory("replace", filename=path, overwrite=True)
    fresh.add_parameter("y", 5)
    fresh.close()
    assert list_trajectories(path) == ["keep", "replace"]
    replaced = load(path, "replace")
    assert [leaf.full_name for leaf in replaced.iter_leaves()] == ["parameters.y"]
    assert len(replaced) == 1
    kept = load(path, "keep")
    assert list(kept.results.z) == [0.0, 2.0, 4.0]


def test_a_loaded_trajectory_continues_in_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "study.h5"
    traj = pt.Trajectory("study", filename=path)
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [0.0, 1.0, 2.0, 3.0]})
    for i in (0, 1):
        with traj.start_run(i):
            traj.add_result("z", traj.x + 0.5)
    traj.close()

    loaded = load(path)
    with pytest.raises(RunValueMissingError):
        loaded.results.z[2]
    for i in (2, 3):
        with loaded.start_run(i):
            loaded.add_result("z", loaded.x + 0.5)
            loaded.add_result("extra", i)
    loaded.close()
    assert not (tmp_path / "study.h5.journal").exists()
    again = load(path)
    assert list(again.results.z) == [0.5, 1.5, 2.5, 3.5]
    assert again.results.extra.runs.tolist() == [2, 3]
    assert again.run_table.counts()["completed"] == 4


def test_closing_an_unchanged_loaded_trajectory_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "study.h5"
    make_study(path)
    before = path.stat().st_mtime_ns
    loaded = load(path)
    loaded.results.summary.table  # access items: still nothing to write
    loaded.close()
    assert path.stat().st_mtime_ns == before
    assert not (tmp_path / "study.h5.lock").exists()


def test_pickled_leaves_load_only_on_access(tmp_path: Path) -> None:
    path = tmp_path / "pickles.h5"
    traj = pt.Trajectory("p", filename=path)
    traj.add_parameter("obj", {1, 2}, leaf_class=pt.PickleParameter)
    traj.add_parameter("x", 1.0)
    traj.add_result("thing", frozenset({3}), leaf_class=pt.PickleResult)
    with traj.start_run(0):
        traj.add_result("per_run", {4}, leaf_class=pt.PickleResult)
        traj.add_result("z", 1.5)
    traj.close()

    trusting = load(path)
    assert trusting.node("parameters.obj").default == {1, 2}
    assert trusting.results.thing == frozenset({3})
    assert trusting.results.per_run[0] == {4}

    careful = load(path, allow_pickle=False)
    assert careful.x == 1.0
    assert careful.results.z[0] == 1.5
    with pytest.raises(PickleNotAllowedError, match="allow_pickle"):
        careful.node("parameters.obj").default
    with pytest.raises(PickleNotAllowedError):
        careful.results.thing
    with pytest.raises(PickleNotAllowedError):
        careful.results.per_run[0]
    assert careful.results.z.to_numpy().tolist() == [1.5]


def test_load_without_warnings_for_a_clean_file(tmp_path: Path) -> None:
    path = tmp_path / "study.h5"
    make_study(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load(path).close()


def test_a_loaded_trajectory_can_be_expanded_and_extended(tmp_path: Path) -> None:
    path = tmp_path / "grow.h5"
    make_study(path, n=2)
    traj = load(path)
    traj.node("parameters.x").unlock()
    traj.node("parameters.net.size").unlock()
    traj.expand({"x": [5.0, 6.0], "net.size": [50, 60]})
    traj.add_result("note", text="added later")
    for i in (2, 3):
        with traj.start_run(i):
            traj.add_result("z", traj.x * 2)
    traj.close()
    again = load(path)
    assert len(again) == 4
    assert again.node("parameters.x").range == (0.0, 1.0, 5.0, 6.0)
    assert list(again.results.z) == [0.0, 2.0, 10.0, 12.0]
    assert again.results.note == "added later"
    assert again.results.summary.mean == 0.5  # left in the file, never rewritten
    assert [again.runs[i].point_id for i in range(2)] == [traj.runs[i].point_id for i in range(2)]
