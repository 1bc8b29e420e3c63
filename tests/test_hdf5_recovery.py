"""Unclean shutdowns for real: journal replay, continuing the journal, rebuilds."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import pytraj as pt
from pytraj.errors import RecoveryWarning
from pytraj.io import list_trajectories, load
from pytraj.storage.hdf5.journal import RUNS, read_journal
from pytraj.storage.hdf5.journal_format import JournalScan, iter_frames

pytestmark = pytest.mark.storage

ROOT = Path(pt.__file__).resolve().parents[1]

# Commits runs ``first``..``last - 1`` of trajectory "crash" (created or continued), then
# leaves the way it is told: ``exit`` (os._exit, no cleanup), ``kill`` (SIGKILL itself),
# ``flushed`` (flushed into the file, then os._exit), ``close`` (a clean close).
CHILD = """
import os, signal, sys
import numpy as np
import pytraj as pt
from pytraj.io import list_trajectories, load

path, first, last, how = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if os.path.exists(path) and "crash" in list_trajectories(path):
    traj = load(path, "crash")
else:
    traj = pt.Trajectory("crash", filename=path, comment="survives")
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [float(i) for i in range(100)]})
    traj.add_result("setup", note="made before the runs", table=np.arange(4.0))
for i in range(first, last):
    with traj.start_run(i):
        traj.add_result("z", traj.x * 2.0)
        traj.add_result("vec", np.full(3, traj.x))
if how == "flushed":  # everything in the file, then gone without a clean close
    traj.store()
    os._exit(0)
if how == "exit":
    os._exit(0)
if how == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
traj.close()
"""


def run_child(path: Path, first: int, last: int, how: str) -> int:
    script = path.with_name("child.py")
    script.write_text(textwrap.dedent(CHILD))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(script), str(path), str(first), str(last), how],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if done.returncode not in (0, -9):
        raise AssertionError(done.stderr)
    return done.returncode


def check_runs(path: Path, runs: range) -> pt.Trajectory:
    traj = load(path, "crash")
    assert traj.results.z.runs.tolist() == list(runs)
    assert list(traj.results.z) == [2.0 * i for i in runs]
    vectors = traj.results.vec[list(runs)].to_numpy()
    assert np.array_equal(vectors, np.repeat(np.array(runs, float), 3).reshape(-1, 3))
    assert traj.results.setup.note == "made before the runs"
    assert traj.comment == "survives"
    return traj


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_runs_committed_before_an_unclean_exit_are_replayed(tmp_path: Path, how: str) -> None:
    path = tmp_path / "crash.h5"
    run_child(path, 0, 30, how)
    journal = tmp_path / "crash.h5.journal"
    assert journal.exists()
    assert len(read_journal(journal).runs["crash"]) == 30
    with pytest.warns(RecoveryWarning, match="replayed 30 runs of trajectory 'crash'"):
        traj = check_runs(path, range(30))
    traj.close()
    # The journal stays until a writer closes cleanly; replaying again finds nothing new.
    assert journal.exists()
    check_runs(path, range(30)).close()


def test_the_journal_is_continued_until_a_clean_close(tmp_path: Path) -> None:
    path = tmp_path / "crash.h5"
    journal = tmp_path / "crash.h5.journal"
    run_child(path, 0, 10, "exit")
    run_child(path, 10, 20, "kill")  # replays 0-9 (in the child), then appends 10-19
    assert len(read_journal(journal).runs["crash"]) == 20
    with warnings.catch_warnings():
        # Whether runs 10-19 were flushed before the kill depends on the flush budget.
        warnings.simplefilter("ignore", RecoveryWarning)
        check_runs(path, range(20))
    run_child(path, 20, 25, "close")
    assert not journal.exists()
    assert not (tmp_path / "crash.h5.lock").exists()
    check_runs(path, range(25))


def test_a_file_holding_runs_its_journal_lost_is_read_as_it_is(tmp_path: Path) -> None:
    # A flush fsyncs the journal while it writes HDF5: after a power loss the file may
    # hold runs whose journal frames never reached the disk. Simulated: the journal
    # loses its last 10 run frames after a flush put all 30 runs into the file.
    path = tmp_path / "crash.h5"
    journal = tmp_path / "crash.h5.journal"
    run_child(path, 0, 30, "flushed")
    scan = JournalScan()
    run_frames = [offset for offset, kind, _ in iter_frames(journal, scan) if kind == RUNS]
    assert len(run_frames) == 30  # manual runs commit one frame each
    os.truncate(journal, run_frames[20])
    assert len(read_journal(journal).runs["crash"]) == 20
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecoveryWarning)
        check_runs(path, range(30))
    # Continuing the shortened journal and replaying it later adds exactly the new runs.
    run_child(path, 30, 40, "kill")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecoveryWarning)
        check_runs(path, range(40)).close()


def test_a_damaged_file_is_rebuilt_from_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "crash.h5"
    run_child(path, 0, 40, "kill")
    # Damage the HDF5 file as a kill during a flush can: its superblock is garbage.
    data = bytearray(path.read_bytes())
    data[0:64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    with pytest.warns(RecoveryWarning, match=r"moved to crash\.h5\.damaged-1.*rebuilt 'crash'"):
        traj = check_runs(path, range(40))
    assert (tmp_path / "crash.h5.damaged-1").exists()
    assert len(traj) == 100
    assert traj.node("parameters.x").range[7] == 7.0
    traj.close()


@pytest.mark.parametrize("reading", ["load", "continue"])
def test_a_root_that_lost_a_trajectory_s_group_is_rebuilt_from_the_journal(
    tmp_path: Path, reading: str
) -> None:
    """A kill while HDF5 rewrote the root can keep the root's attributes (the trajectory
    listed, the whole journal recorded as flushed) and lose the link to the group: the
    file reads, and only the root's list tells that a trajectory is gone."""
    import tables

    path = tmp_path / "crash.h5"
    run_child(path, 0, 40, "flushed")  # the file holds everything its journal does
    with tables.open_file(str(path), "a") as h5:
        assert (
            h5.root._v_attrs.pytraj_journal_size == (tmp_path / "crash.h5.journal").stat().st_size
        )
        h5.remove_node("/crash", recursive=True)
    message = r"lists trajectory 'crash' but holds no such group.*rebuilt 'crash' \(40 journaled"
    if reading == "continue":  # a writer recovers it (its warning is the child's)
        assert run_child(path, 40, 45, "close") == 0
        traj = check_runs(path, range(45))
    else:
        with pytest.warns(RecoveryWarning, match=message):
            traj = check_runs(path, range(40))
    assert (tmp_path / "crash.h5.damaged-1").exists()
    assert len(traj) == 100
    traj.close()


def test_a_truncated_file_is_rebuilt_and_other_trajectories_salvaged(tmp_path: Path) -> None:
    path = tmp_path / "crash.h5"
    other = pt.Trajectory("other", filename=path)
    other.add_parameter("y", 3)
    other.add_parameter("things", {1, 2}, leaf_class=pt.PickleParameter)
    other.add_result("big", np.arange(20_000.0))  # big enough to be read lazily
    other.explore({"y": [3, 4]})
    for i in range(2):
        with other.start_run(i):
            other.add_result("w", other.y * 10)
    other.close()
    run_child(path, 0, 12, "exit")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 2048])  # a torn tail of the HDF5 file
    with pytest.warns(RecoveryWarning) as caught:
        traj = check_runs(path, range(12))
    message = str(caught[0].message)
    assert "truncated file" in message
    assert "moved to crash.h5.damaged-1" in message
    assert "salvaged 'other' from the damaged file" in message
    traj.close()
    assert list_trajectories(path) == ["other", "crash"]
    salvaged = load(path, "other")
    assert salvaged.y == 3
    assert salvaged.node("parameters.things").default == {1, 2}
    assert np.array_equal(salvaged.results.big, np.arange(20_000.0))
    assert list(salvaged.results.w) == [30, 40]
    assert salvaged.run_table.counts()["completed"] == 2


def test_a_rebuilt_file_cut_in_half_is_rebuilt_again_without_crashing(tmp_path: Path) -> None:
    # A rebuild killed right after it created the new, empty file; then that file is
    # cut in half. Salvaging it meant opening a copy padded back to its recorded size,
    # on which HDF5 segfaulted (the crash suite's "rebuild" steps found it).
    path = tmp_path / "crash.h5"
    run_child(path, 0, 12, "kill")
    data = bytearray(path.read_bytes())
    data[0:64] = b"\xff" * 64  # damaged: the next open rebuilds it
    path.write_bytes(bytes(data))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    load_crash = "import sys, pytraj as pt; pt.load(sys.argv[1], 'crash')"
    killed = subprocess.run(
        [sys.executable, "-c", load_crash, str(path)],
        env={**env, "PYTRAJ_CRASH_AT": "rebuild"},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -9
    os.truncate(path, path.stat().st_size // 2)
    # In a child: a crash inside HDF5 must fail this test, not end the test run.
    show = (
        "import sys, warnings, pytraj as pt\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    traj = pt.load(sys.argv[1], 'crash')\n"
        "print(len(traj), traj.results.z.runs.tolist(), list(traj.results.z))\n"
        "print(caught[0].message)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", show, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    counts, message = done.stdout.splitlines()
    runs = list(range(12))
    assert counts == f"100 {runs} {[2.0 * i for i in runs]}"
    assert "truncated file" in message
    assert "moved to crash.h5.damaged-2" in message
    assert "nothing was salvaged from it (reading it made HDF5 crash: SIGSEGV)" in message
    assert "rebuilt 'crash' (12 journaled runs) from the journal" in message
    assert sorted(p.name for p in tmp_path.glob("crash.h5*")) == [
        "crash.h5",
        "crash.h5.damaged-1",
        "crash.h5.damaged-2",
        "crash.h5.journal",
    ]


def test_a_missing_file_with_a_journal_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "crash.h5"
    run_child(path, 0, 5, "exit")
    path.unlink()
    with pytest.warns(RecoveryWarning, match="rebuilt 'crash'"):
        check_runs(path, range(5)).close()


def test_a_script_that_forgets_to_close_leaves_a_clean_file(tmp_path: Path) -> None:
    path = tmp_path / "forgot.h5"
    code = f"""
import pytraj as pt
traj = pt.Trajectory("forgot", filename={str(path)!r})
traj.add_parameter("x", 0.0)
traj.explore({{"x": [0.0, 1.0, 2.0]}})
for i in range(3):
    with traj.start_run(i):
        traj.add_result("z", traj.x + 1)
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    assert not (tmp_path / "forgot.h5.journal").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(load(path).results.z) == [1.0, 2.0, 3.0]


def _fails_on_odd(traj: pt.Trajectory) -> None:
    if traj.x % 2:
        raise ValueError(f"odd x={traj.x}")
    traj.add_result("z", 2 * traj.x)


@pytest.mark.storage
def test_failure_nodes_left_uneven_by_a_killed_flush_are_read_and_continued(
    tmp_path: Path,
) -> None:
    """A kill between the failure table and its text nodes leaves them uneven."""
    import tables

    from pytraj.storage.hdf5.codecs import encode_text

    path = tmp_path / "study.h5"
    env = pt.Environment(trajectory="t", filename=path, on_error="continue", progress=False)
    env.trajectory.add_parameter("x", 0)
    env.trajectory.explore({"x": [0, 1, 2, 3]})
    env.run(_fails_on_odd)  # on_error="continue": the failures are recorded
    env.close()
    # What a flush killed after the table's append and before the texts' leaves behind.
    with tables.open_file(path, "a") as h5:
        failures = h5.get_node("/t/runs/failures")
        failures.append(np.array([(9, 1)], dtype=failures.dtype))
        h5.get_node("/t/runs/failure_exc_types").append(encode_text("Torn"))
    loaded = load(path)
    # The torn row reads as it is (no text), and no run refers to it.
    assert [(f.idx, f.attempt, f.message) for f in loaded.run_table.failures] == [
        (1, 1, "odd x=1"),
        (3, 1, "odd x=3"),
        (9, 1, ""),
    ]
    assert loaded.run_table.failure(3).message == "odd x=3"
    loaded.close()

    env = pt.Environment(trajectory="t", filename=path, on_error="continue", progress=False)
    env.trajectory.add_parameter("x", 0)
    env.trajectory.explore({"x": [0, 1, 2, 3, 5]})
    env.run(_fails_on_odd)  # on_error="continue": the failures are recorded
    env.close()
    loaded = load(path)
    # The failure recorded after the torn row keeps its own texts.
    assert [(f.idx, f.attempt, f.exc_type, f.message) for f in loaded.run_table.failures] == [
        (1, 1, "ValueError", "odd x=1"),
        (3, 1, "ValueError", "odd x=3"),
        (9, 1, "Torn", ""),
        (4, 1, "ValueError", "odd x=5"),
    ]
    assert [f.message for f in loaded.run_table.failures_of(4)] == ["odd x=5"]
    assert loaded.runs[4].status == "failed"
    assert loaded.run_table.failure(4).message == "odd x=5"
    loaded.close()
