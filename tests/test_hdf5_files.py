"""Files and handles: writer locks across processes, readers beside writers, clear errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

import pytraj as pt
from pytraj.errors import (
    FileFormatError,
    FileLockedError,
    StorageError,
    TrajectoryNotFoundError,
)
from pytraj.io import list_trajectories, load
from pytraj.storage.hdf5 import open_new_trajectory

pytestmark = pytest.mark.storage

ROOT = Path(pt.__file__).resolve().parents[1]


def python(code: str) -> subprocess.Popen[str]:
    """Start a Python child running ``code`` with this pytraj importable."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def small_study(path: Path, name: str = "study", n: int = 3) -> None:
    traj = pt.Trajectory(name, filename=path)
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [float(i) for i in range(n)]})
    for i in range(n):
        with traj.start_run(i):
            traj.add_result("z", traj.x * 3)
    traj.close()


# -- writers and readers ----------------------------------------------------------------------


def test_a_second_writer_process_gets_file_locked_error(tmp_path: Path) -> None:
    path = tmp_path / "busy.h5"
    child = python(
        f"""
        import sys, time
        import pytraj as pt
        traj = pt.Trajectory("first", filename={str(path)!r})
        traj.add_parameter("x", 1.0)
        with traj.start_run(0):
            traj.add_result("z", 1.0)
        print("writing", flush=True)
        sys.stdin.read() if False else time.sleep(30)
        """
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "writing"
        locked = rf"busy\.h5 is being written by process {child.pid} on host"
        with pytest.raises(FileLockedError, match=locked):
            open_new_trajectory(path, "second")
        # Reading works while the other process writes.
        assert list_trajectories(path) == ["first"]
    finally:
        child.kill()
        child.wait()
    # The kill released the lock: the file can be written again at once (after the
    # run the killed writer had not flushed yet is replayed from its journal).
    with pytest.warns(pt.errors.RecoveryWarning, match="replayed 1 run of trajectory 'first'"):
        storage = open_new_trajectory(path, "second")
    storage.close()
    assert list_trajectories(path) == ["first", "second"]
    assert load(path, "first").results.z[0] == 1.0


def test_a_stale_lock_file_of_a_dead_process_does_not_block(tmp_path: Path) -> None:
    path = tmp_path / "stale.h5"
    small_study(path)
    (tmp_path / "stale.h5.lock").write_text("process 999999 on host gone\n")
    storage = open_new_trajectory(path, "next")
    storage.close()
    assert list_trajectories(path) == ["study", "next"]
    assert not (tmp_path / "stale.h5.lock").exists()


def test_a_reader_in_the_same_process_does_not_block_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "shared.h5"
    small_study(path, "old")
    reader = load(path, "old")
    assert reader.results.z[1] == 3.0
    writer = pt.Trajectory("new", filename=path)
    writer.add_parameter("y", 0)
    writer.explore({"y": [0, 1, 2]})
    for i in range(3):
        with writer.start_run(i):
            writer.add_result("w", writer.y * 10)
        # The reader goes on reading between the writer's commits.
        assert reader.results.z[i] == 3.0 * i
    writer.close()
    assert list(load(path, "new").results.w) == [0, 10, 20]
    assert list(reader.results.z) == [0.0, 3.0, 6.0]


def test_two_trajectories_written_by_one_process(tmp_path: Path) -> None:
    path = tmp_path / "two.h5"
    a = pt.Trajectory("a", filename=path)
    b = pt.Trajectory("b", filename=path)
    for traj in (a, b):
        traj.add_parameter("x", 0.0)
        traj.explore({"x": [0.0, 1.0]})
    for i in range(2):
        for traj, factor in ((a, 1.0), (b, 2.0)):
            with traj.start_run(i):
                traj.add_result("z", traj.x * factor)
    a.close()
    assert (tmp_path / "two.h5.journal").exists()  # b still writes
    b.close()
    assert not (tmp_path / "two.h5.journal").exists()
    assert not (tmp_path / "two.h5.lock").exists()
    assert list(load(path, "a").results.z) == [0.0, 1.0]
    assert list(load(path, "b").results.z) == [0.0, 2.0]


def test_the_same_trajectory_cannot_be_written_twice_in_one_process(tmp_path: Path) -> None:
    path = tmp_path / "twice.h5"
    storage = open_new_trajectory(path, "t")
    with pytest.raises(StorageError, match="open for writing in this process"):
        open_new_trajectory(path, "t", overwrite=True)
    storage.close()


def test_a_reader_process_reads_between_flushes(tmp_path: Path) -> None:
    path = tmp_path / "live.h5"
    traj = pt.Trajectory("live", filename=path)
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [0.0, 1.0, 2.0]})
    with traj.start_run(0):
        traj.add_result("z", 5.0)
    traj.store()  # flushed: visible to other processes
    child = python(
        f"""
        from pytraj.io import load
        traj = load({str(path)!r})
        print(traj.results.z[0], traj.run_table.counts()["completed"])
        """
    )
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.split() == ["5.0", "1"]
    traj.close()


# -- errors -----------------------------------------------------------------------------------


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"no file .*missing\.h5"):
        load(tmp_path / "missing.h5")


def test_a_file_that_is_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "notes.h5"
    path.write_text("just some notes\n")
    with pytest.raises(FileFormatError, match=r"notes\.h5 is not an HDF5 file"):
        load(path)
    with pytest.raises(FileFormatError, match="not an HDF5 file"):
        pt.Trajectory("t", filename=path)
    assert path.read_text() == "just some notes\n"  # never overwritten


def test_an_hdf5_file_that_pytraj_did_not_write(tmp_path: Path) -> None:
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["data"] = np.arange(3)
    with pytest.raises(FileFormatError, match="not a pytraj file"):
        load(path)
    with pytest.raises(FileFormatError, match="not a pytraj file"):
        pt.Trajectory("t", filename=path)


def test_a_file_of_a_newer_layout(tmp_path: Path) -> None:
    path = tmp_path / "future.h5"
    small_study(path)
    with h5py.File(path, "a") as f:
        f.attrs["pytraj_schema"] = 99
    with pytest.raises(FileFormatError, match="newer pytraj .*layout 99.*upgrade pytraj"):
        load(path)


def test_a_truncated_file_without_journal(tmp_path: Path) -> None:
    path = tmp_path / "cut.h5"
    small_study(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError, match=r"cut\.h5 .*damaged or truncated.*backup"):
        load(path)


def test_a_missing_trajectory_lists_those_present(tmp_path: Path) -> None:
    path = tmp_path / "named.h5"
    small_study(path, "alpha")
    small_study(path, "beta")
    with pytest.raises(
        TrajectoryNotFoundError, match="holds no trajectory 'gamma'.*'alpha', 'beta'"
    ):
        load(path, "gamma")
    with pytest.raises(TrajectoryNotFoundError, match="index -3 is out of range"):
        load(path, index=-3)


def test_a_reserved_name_in_the_tree_is_refused_before_runs(tmp_path: Path) -> None:
    traj = pt.Trajectory("t", filename=tmp_path / "r.h5")
    traj.add_group("catalog")
    with pytest.raises(StorageError, match="'catalog'.*reserves"):
        traj.store()


def test_killed_writer_leaves_a_readable_file_behind(tmp_path: Path) -> None:
    path = tmp_path / "killed.h5"
    child = python(
        f"""
        import pytraj as pt
        traj = pt.Trajectory("k", filename={str(path)!r})
        traj.add_parameter("x", 0.0)
        traj.explore({{"x": [float(i) for i in range(50)]}})
        for i in range(50):
            with traj.start_run(i):
                traj.add_result("z", traj.x)
        print("done", flush=True)
        import time; time.sleep(60)
        """
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "done"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with pytest.warns(pt.errors.RecoveryWarning, match="replayed 50 runs"):
        traj = load(path)
    assert list(traj.results.z) == [float(i) for i in range(50)]


def test_missing_folders_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "study.h5"
    small_study(path)
    assert list_trajectories(path) == ["study"]
