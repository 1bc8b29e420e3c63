"""Crash safety for real: SIGKILL a study at random moments, then check the file.

One study of 2,000 manual runs (every tenth with a 100 KB array) runs in a child
process that continues the study from the file each time it starts. The child prints
each run index after ``start_run`` returned, i.e. after the run was reported
completed. The parent kills it at 20 random moments; after every kill the file must
open (replaying or rebuilding from the journal), every reported run must be there
with its full results, and no run the child never finished may be marked completed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import pytraj as pt
from pytraj.io import list_trajectories, load

pytestmark = [pytest.mark.storage, pytest.mark.slow]

N_RUNS = 2000
BIG_EVERY = 10
BIG_SIZE = 12_500  # float64 values: 100 KB

CHILD = textwrap.dedent(
    f"""
    import os, sys, time
    import numpy as np
    import pytraj as pt
    from pytraj.io import list_trajectories, load

    path = sys.argv[1]
    if os.path.exists(path) and "crash" in list_trajectories(path):
        traj = load(path, "crash")
    else:
        traj = pt.Trajectory("crash", filename=path)
        traj.add_parameter("x", 0.0)
        traj.explore({{"x": [float(i) for i in range({N_RUNS})]}})
    pending = [i for i in range(len(traj)) if traj.runs[i].status != "completed"]
    for i in pending:
        with traj.start_run(i):
            time.sleep(0.001)  # a simulation takes time; lets kills land mid-study
            traj.add_result("z", traj.x * 2.0)
            if i % {BIG_EVERY} == 0:
                traj.add_result("big", np.full({BIG_SIZE}, traj.x))
        sys.stdout.write(f"{{i}}\\n")
        sys.stdout.flush()
    traj.close()
    sys.stdout.write("done\\n")
    """
)


def _run_until_killed(script: Path, path: Path, rng: random.Random | None) -> tuple[set[int], bool]:
    """Run the child and kill it at a random moment (``rng`` None: let it finish).

    The whole study takes well under a second, so kills are placed by progress: after
    a random number of reported runs plus a random delay of up to 20 ms (landing in
    runs, journal writes and HDF5 flushes alike), or, one time in five, during start-up
    and journal replay. Returns the runs the child reported and whether it finished.
    """
    child = subprocess.Popen(
        [sys.executable, str(script), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    lines: list[str] = []
    if rng is not None:
        if rng.random() < 0.2:
            time.sleep(rng.uniform(0.0, 0.4))
        else:
            target = rng.randint(1, N_RUNS // 20)
            for line in child.stdout:
                lines.append(line.strip())
                if len(lines) >= target or line.strip() == "done":
                    break
            time.sleep(rng.uniform(0.0, 0.02))
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
    # Read the rest through the same buffered stream: communicate() would read the raw
    # pipe and miss lines the iteration above had already buffered.
    lines += [line.strip() for line in child.stdout.read().splitlines()]
    assert child.stderr is not None
    err = child.stderr.read()
    child.wait(timeout=300)
    if child.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"child failed ({child.returncode}):\n{err}")
    finished = bool(lines) and lines[-1] == "done"
    return {int(line) for line in lines if line.isdigit()}, finished


def _check(path: Path, reported: set[int]) -> set[int]:
    """Open the file and check every reported run; return the completed runs."""
    if not reported and not (path.exists() and "crash" in list_trajectories(path)):
        return set()  # killed before the study was created
    with warnings.catch_warnings():
        # Replaying or rebuilding from the journal may warn; that is the point here.
        warnings.simplefilter("ignore", pt.errors.RecoveryWarning)
        traj = load(path, "crash")
    try:
        completed = {run.idx for run in traj.runs if run.status == "completed"}
        missing = reported - completed
        assert not missing, f"runs reported completed but lost: {sorted(missing)[:10]}"
        z = traj.results.z
        for i in sorted(reported):
            assert z[i] == i * 2.0
        big = traj.results.big if completed & set(range(0, N_RUNS, BIG_EVERY)) else None
        for i in sorted(reported):
            if i % BIG_EVERY == 0:
                assert big is not None
                values = big[i]
                assert values.shape == (BIG_SIZE,)
                assert np.all(values == float(i))
        return completed
    finally:
        traj.close()


def test_sigkill_at_random_moments_loses_nothing_reported(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    path = tmp_path / "crash.h5"
    rng = random.Random(20261125)
    reported_so_far: set[int] = set()
    for _ in range(20):
        reported, finished = _run_until_killed(script, path, rng)
        assert not finished, "the study ended before the 20th kill; make it longer"
        reported_so_far |= reported
        completed = _check(path, reported_so_far)
        # Nothing the child never finished may be completed: at most the run it was
        # committing when the kill came (stored, killed before it could report it).
        unreported = completed - reported_so_far
        assert len(unreported) <= 1, sorted(unreported)
        reported_so_far |= unreported
    # Finish the study and check that it completes with every value.
    reported, finished = _run_until_killed(script, path, None)
    assert finished
    reported_so_far |= reported
    completed = _check(path, reported_so_far)
    assert completed == set(range(N_RUNS))
