"""A read-only load lays a pending journal over its file in memory, writing nothing.

Real writers in subprocesses (running, killed, killed before their first flush, killed
while a reader reads); what the read-only view shows is compared with what a replay
gives (a copy of the file and journal opened normally), and the file, journal and lock
are checked to be byte-for-byte and mtime-for-mtime unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import pytraj as pt
from pytraj.storage.hdf5 import HDF5Storage, OverlaidStorage, open_trajectory
from pytraj.storage.hdf5.files import file_state

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import numpy as np
    import pytraj as pt

    path, marker, release = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    flush_after = int(sys.argv[4])

    def simulate(traj):
        if traj.idx == flush_after:
            time.sleep(1.2)  # past the flush budget: the runs so far go into the file
        if traj.idx == 3:
            raise ValueError("boom in run 3")
        if traj.idx == 4:
            time.sleep(0.4)  # past the commit interval: runs 3-4 get journaled
        if traj.idx == 5:
            marker.write_text("5 runs done")
            while not release.exists():
                time.sleep(0.05)
        traj.add_result("z", traj.x * 2.5)
        traj.add_result("steps", 10 * traj.x)
        traj.add_result("trace", np.arange(3) * traj.x)
        traj.add_result("obj", {traj.x}, leaf_class=pt.PickleResult)

    env = pt.Environment(
        trajectory="live", filename=path, progress=False, on_error="continue"
    )
    env.trajectory.add_parameter("x", 0)
    env.trajectory.explore({"x": list(range(8))})
    env.run(simulate)
    """
)


def _start_writer(tmp_path: Path, flush_after: int = 2) -> tuple[subprocess.Popen[bytes], Path]:
    """A study that has committed runs 0-4 (run 3 failed) and waits in run 5."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    path, marker = tmp_path / "live.h5", tmp_path / "marker"
    process = subprocess.Popen(
        [
            sys.executable,
            str(script),
            str(path),
            str(marker),
            str(tmp_path / "go"),
            str(flush_after),
        ]
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, "the writer exited early"
        assert time.monotonic() < deadline, "the writer never reached run 5"
        time.sleep(0.05)
    return process, path


def _companions(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + ".journal"), path.with_name(path.name + ".lock")]


def _fingerprint(path: Path) -> list[tuple[str, int, int, bytes]]:
    return [
        (p.name, p.stat().st_mtime_ns, p.stat().st_size, p.read_bytes())
        for p in _companions(path)
        if p.exists()
    ]


def _replayed(path: Path, tmp_path: Path) -> pt.Trajectory:
    """What a replay gives: a copy of the file and journal, opened normally."""
    copy = tmp_path / "copy" / path.name
    copy.parent.mkdir()
    for companion in _companions(path)[:2]:
        shutil.copy2(companion, copy.parent / companion.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pt.errors.RecoveryWarning)
        return pt.load(copy, allow_pickle=False)


def _pytraj(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytraj", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _assert_same_study(seen: pt.Trajectory, replayed: pt.Trajectory) -> None:
    """Counts, values, failures and run rows equal those of the replayed copy."""
    assert len(seen) == len(replayed)
    for status in ("completed", "failed", "pending"):
        assert seen.find(status=status) == replayed.find(status=status)
    pd.testing.assert_frame_equal(seen.to_dataframe(), replayed.to_dataframe())
    pd.testing.assert_series_equal(seen.results.z.to_series(), replayed.results.z.to_series())
    assert len(seen.results.z) == len(replayed.results.z)
    for idx in replayed.find(status="completed"):
        assert seen.results.z[idx] == replayed.results.z[idx]
        assert type(seen.results.steps[idx]) is type(replayed.results.steps[idx])
        np.testing.assert_array_equal(
            seen.runs[idx].results.trace, replayed.runs[idx].results.trace
        )
    for idx in range(len(replayed)):
        assert seen.runs[idx].status == replayed.runs[idx].status
        assert seen.runs[idx].point_id == replayed.runs[idx].point_id
        assert seen.runs[idx].failure == replayed.runs[idx].failure
    assert seen.run_table.failures == replayed.run_table.failures


def test_a_crashed_study_shows_its_journaled_runs_as_a_replay_would(tmp_path: Path) -> None:
    process, path = _start_writer(tmp_path)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    before = _fingerprint(path)
    assert len(before) == 3  # file, journal and lock are all there
    status = pt.io.journal_status(path)
    assert status is not None
    assert status.unflushed == {"live": 2}  # runs 3 (failed) and 4: only in the journal

    storage = open_trajectory(path, read_only=True, allow_pickle=False)
    assert isinstance(storage, OverlaidStorage)
    assert [record.idx for record in storage.overlay.records] == [3, 4]

    seen = pt.load(path, read_only=True, allow_pickle=False)
    assert seen.find(status="completed") == [0, 1, 2, 4]
    assert seen.find(status="failed") == [3]
    assert seen.results.z.to_series().to_dict() == {0: 0.0, 1: 2.5, 2: 5.0, 4: 10.0}
    assert seen.results.z[4] == 10.0
    assert seen.results.steps[4] == 40
    assert type(seen.results.steps[4]) is int
    assert seen.runs[3].failure is not None
    assert "boom in run 3" in seen.runs[3].failure.message
    _assert_same_study(seen, _replayed(path, tmp_path))
    seen.close()
    assert _fingerprint(path) == before

    # The command shows the same, says how many runs come from the journal, writes nothing.
    info = _pytraj("info", path, "--json")
    assert info.returncode == 0, info.stderr
    data = json.loads(info.stdout)
    assert data["trajectories"][0]["runs"]["completed"] == 4
    assert data["trajectories"][0]["runs"]["failed"] == 1
    assert data["journal"]["running"] is False
    assert "2 run records come from the journal" in data["journal"]["note"]
    runs = _pytraj("runs", path, "--json", "--where", "z is not null")
    assert [(r["idx"], r["z"]) for r in json.loads(runs.stdout)["runs"]] == [
        (0, 0.0),
        (1, 2.5),
        (2, 5.0),
        (4, 10.0),
    ]
    text = _pytraj("runs", path)
    assert "not closed cleanly" in text.stderr
    assert "2 run records come from the journal" in text.stderr
    show = _pytraj("show", path, "results.z", "--run", "4")
    assert show.stdout == "10.0\n", show.stderr
    assert _fingerprint(path) == before


EARLY = textwrap.dedent(
    """
    import sys
    import pytraj as pt

    env = pt.Environment(trajectory="early", filename=sys.argv[1], progress=False)
    env.trajectory.add_parameter("x", 0, comment="the x")
    env.trajectory.add_parameter("y", 1.5)
    env.trajectory.explore({"x": list(range(8))})
    env.run(lambda traj: traj.add_result("z", traj.x))
    """
)


def test_a_study_killed_before_its_first_flush_shows_its_journaled_definition(
    tmp_path: Path,
) -> None:
    (tmp_path / "early.py").write_text(EARLY)
    path = tmp_path / "early.h5"
    # Killed while its first flush writes the definition: the file holds the
    # trajectory's group but not its study, which only the journal holds.
    done = subprocess.run(
        [sys.executable, str(tmp_path / "early.py"), str(path)],
        env={**os.environ, "PYTRAJ_CRASH_AT": "definition"},
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL
    before = _fingerprint(path)
    assert not HDF5Storage(file_state(path), "early", read_only=True).has_definition()
    seen = pt.load(path, read_only=True, allow_pickle=False)
    assert len(seen) == 8
    assert seen.node("parameters.x").range == tuple(range(8))
    assert seen.node("parameters.x").comment == "the x"
    assert seen.parameters.y == 1.5
    assert seen.find(status="pending") == list(range(8))
    replayed = _replayed(path, tmp_path)
    assert len(replayed) == 8
    assert replayed.node("parameters.x").range == seen.node("parameters.x").range
    pd.testing.assert_frame_equal(seen.to_dataframe(), replayed.to_dataframe())
    seen.close()
    info = _pytraj("info", path, "--json")
    assert info.returncode == 0, info.stderr
    summary = json.loads(info.stdout)["trajectories"][0]
    assert summary["runs"]["pending"] == 8
    assert _fingerprint(path) == before


def test_a_running_study_shows_its_journaled_runs_without_writing(tmp_path: Path) -> None:
    process, path = _start_writer(tmp_path)
    try:
        before = _fingerprint(path)
        seen = pt.load(path, read_only=True, allow_pickle=False)
        assert seen.find(status="completed") == [0, 1, 2, 4]
        assert seen.find(status="failed") == [3]
        _assert_same_study(seen, _replayed(path, tmp_path))
        info = _pytraj("info", path)
        assert info.returncode == 0, info.stderr
        assert "in progress: a study is writing this file now" in info.stdout
        assert "2 run records come from the journal" in info.stdout
        assert "8 runs (4 completed, 1 failed, 3 pending)" in info.stdout
        rows = json.loads(_pytraj("runs", path, "--json", "--status", "failed").stdout)["runs"]
        assert [r["idx"] for r in rows] == [3]
        assert _fingerprint(path) == before
    finally:
        (tmp_path / "go").write_text("go")
        process.wait(timeout=60)
    assert process.returncode == 0
    # Values read after the writer closed cleanly (journal gone) come from the file.
    assert seen.results.z[4] == 10.0
    seen.close()
    assert not isinstance(open_trajectory(path, read_only=True), OverlaidStorage)
    again = pt.load(path, read_only=True, allow_pickle=False)
    assert again.find(status="completed") == [0, 1, 2, 4, 5, 6, 7]
    assert again.results.z.to_series().to_dict() == {i: 2.5 * i for i in (0, 1, 2, 4, 5, 6, 7)}


READER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import numpy as np
    import pytraj as pt

    path, stop = sys.argv[1], Path(sys.argv[2])
    counts, after_stop = [], 0
    while after_stop < 3:
        if stop.exists():
            after_stop += 1
        traj = pt.load(path, read_only=True)
        done = traj.find(status="completed")
        z = traj.results.z.to_series()
        # The run table is read at load and the values after it, so a live writer may
        # have added runs in between; none is lost, and every value is right.
        assert set(done) <= set(z.index.tolist()), (len(z), len(done))
        assert np.array_equal(z.to_numpy(), 2.5 * z.index.to_numpy()), "values differ"
        if after_stop:
            # The writer is dead: nothing changes between the reads any more.
            assert z.index.tolist() == done, (len(z), len(done))
        counts.append(len(done))
        traj.close()
    print(json.dumps(counts))
    """
)

MANY = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import pytraj as pt

    def simulate(traj):
        if traj.idx == 50:
            Path(sys.argv[2]).write_text("started")
        time.sleep(0.0005)
        traj.add_result("z", traj.x * 2.5)

    env = pt.Environment(trajectory="many", filename=sys.argv[1], progress=False)
    env.trajectory.add_parameter("x", 0)
    env.trajectory.explore({"x": list(range(50_000))})
    env.run(simulate)
    """
)


def test_a_reader_retries_while_the_writer_is_killed_in_a_flush(tmp_path: Path) -> None:
    (tmp_path / "many.py").write_text(MANY)
    (tmp_path / "reader.py").write_text(READER)
    path, started, stop = tmp_path / "many.h5", tmp_path / "started", tmp_path / "stop"
    # The writer kills itself inside its third flush, with the HDF5 file open for
    # writing: a reader then waits on HDF5's lock and retries until the kernel drops it.
    writer = subprocess.Popen(
        [sys.executable, str(tmp_path / "many.py"), str(path), str(started)],
        env={**os.environ, "PYTRAJ_CRASH_AT": "flush@3"},
    )
    deadline = time.monotonic() + 60
    while not started.exists():
        assert writer.poll() is None, "the writer exited early"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    reader = subprocess.Popen(
        [sys.executable, str(tmp_path / "reader.py"), str(path), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert writer.wait(timeout=120) == -signal.SIGKILL
    stop.write_text("stop")
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    counts = json.loads(out)
    assert counts == sorted(counts)  # never a run lost between two reads
    before = _fingerprint(path)
    replayed = _replayed(path, tmp_path)
    assert counts[-1] == len(replayed.find(status="completed")) > 0
    seen = pt.load(path, read_only=True)
    pd.testing.assert_series_equal(seen.results.z.to_series(), replayed.results.z.to_series())
    assert _fingerprint(path) == before


RETRY = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import pytraj as pt

    path, marker, phase = sys.argv[1], Path(sys.argv[2]), sys.argv[3]

    def simulate(traj):
        if phase == "first" and traj.idx in (1, 2):
            raise ValueError(f"first attempt of run {traj.idx} fails")
        if phase == "retry" and traj.idx == 1:
            time.sleep(0.3)  # past the commit interval: this retry gets journaled
        if phase == "retry" and traj.idx == 2:
            marker.write_text("retried")
            time.sleep(100)  # killed here, before any flush
        traj.add_result("z", traj.x * 2.5)
        if traj.x > 0:
            traj.add_result("extra", traj.x)

    env = pt.Environment(trajectory="retry", filename=path, progress=False, on_error="continue")
    env.trajectory.add_parameter("x", 0)
    env.trajectory.explore({"x": [0, 1, 2]})
    if phase == "first":
        env.run(simulate)
    else:
        env.resume(simulate, retry_failed=True)
    env.close()
    """
)


def test_a_retried_run_in_the_journal_replaces_its_failed_attempt(tmp_path: Path) -> None:
    script, path, marker = tmp_path / "retry.py", tmp_path / "retry.h5", tmp_path / "marker"
    script.write_text(RETRY)
    first = subprocess.run(
        [sys.executable, str(script), str(path), str(marker), "first"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert first.returncode == 0, first.stderr
    # The retry of run 1 succeeds and is journaled; its writer dies in run 2's retry,
    # before any flush.
    process = subprocess.Popen([sys.executable, str(script), str(path), str(marker), "retry"])
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, "the retry exited early"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    before = _fingerprint(path)
    assert pt.io.journal_status(path).unflushed == {"retry": 1}
    seen = pt.load(path, read_only=True)
    replayed = _replayed(path, tmp_path)
    assert replayed.runs[1].status == "completed"
    assert seen.runs[1].status == "completed"
    assert seen.runs[1].attempt == replayed.runs[1].attempt == 2
    assert seen.runs[2].status == replayed.runs[2].status == "failed"
    assert seen.results.z.to_series().to_dict() == {0: 0.0, 1: 2.5}
    assert seen.results.extra.to_series().to_dict() == {1: 1}
    assert seen.runs[1].failure is None
    # The failure history is kept: the first attempts' failures are still listed.
    assert [f.message for f in seen.run_table.failures] == [
        "first attempt of run 1 fails",
        "first attempt of run 2 fails",
    ]
    assert seen.run_table.failures == replayed.run_table.failures
    pd.testing.assert_frame_equal(seen.to_dataframe(), replayed.to_dataframe())
    assert _fingerprint(path) == before
