"""Crash safety for real: SIGKILL studies at every kind of moment, then continue them.

Two kinds of study run in child processes:

- an ``Environment`` script (serial and on a pool), killed in the first 100 ms of
  ``env.run``, mid-study, and at named moments (definition writes, flushes, large
  columns, close, journal replay and file rebuild on the next open), the whole process
  group or the main process only (then no worker may survive); after each kill the
  unchanged script runs again, and at the end the study equals an uninterrupted one by
  point id (see ``tests/crash_harness.py``);
- a manual study of 2,000 ``start_run`` runs that prints each run index once it was
  reported completed: after every kill every reported run must be in the file with its
  full results, and no run the child never finished may be marked completed.

``make test`` kills 21 times; ``make test-crash`` (marker ``crash``) adds 200 and more.
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
from typing import Any

import numpy as np
import pytest
from crash_harness import random_plan, reference, run_scenario

import pytraj as pt
from pytraj.io import list_trajectories, load

# Not all "storage": the long ones (marker "crash") stay out of the minimum-versions run.
pytestmark = [pytest.mark.slow]

N_RUNS = 2000
BIG_EVERY = 10
BIG_SIZE = 12_500  # float64 values: 100 KB

CHILD = textwrap.dedent(
    f"""
    import os, sys, time, warnings
    import numpy as np
    import pytraj as pt
    from pytraj.io import list_trajectories, load

    path = sys.argv[1]
    traj = None
    if os.path.exists(path) and "crash" in list_trajectories(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pt.errors.RecoveryWarning)
            traj = load(path, "crash")
        if "parameters.x" not in traj:
            traj = None  # killed before its definition was stored: not started
    if traj is None:
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


def _kill_manual_study(tmp_path: Path, kills: int, seed: int) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    path = tmp_path / "crash.h5"
    rng = random.Random(seed)
    reported_so_far: set[int] = set()
    for _ in range(kills):
        reported, finished = _run_until_killed(script, path, rng)
        assert not finished, "the study ended before the last kill; make it longer"
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


@pytest.mark.storage
def test_sigkill_of_a_manual_study_loses_nothing_reported(tmp_path: Path) -> None:
    _kill_manual_study(tmp_path, kills=6, seed=20261125)


@pytest.mark.crash
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_many_sigkills_of_a_manual_study_lose_nothing_reported(tmp_path: Path, seed: int) -> None:
    _kill_manual_study(tmp_path, kills=15, seed=seed)


# -- the Environment script ----------------------------------------------------------
@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The study run once without a kill: what every killed study must end equal to."""
    return reference(tmp_path_factory.mktemp("reference"))


SERIAL_PLAN = [
    "at:definition",  # the first definition write, into a fresh file
    "early",
    "mid",
    "at:replay",  # on the next open, while the journal is replayed
    "at:column@3:group",  # between the columns of one flush (100 KB arrays among them)
    "rebuild",  # the file cut in half, killed while it is rebuilt from the journal
    "at:flush@1",  # HDF5 written and not yet closed
    "at:close",  # fsynced, the journal not yet removed
]
POOL_PLAN = [
    "early",
    "at:run.start",
    "mid:group",
    "at:replay",
    "mid",
    "rebuild:group",
    "at:close",
]


@pytest.mark.storage
def test_a_serial_study_killed_at_every_moment_continues_to_the_same_end(
    tmp_path: Path, uninterrupted: Any
) -> None:
    outcome = run_scenario(tmp_path, SERIAL_PLAN, uninterrupted, ncores=1, seed=11)
    assert outcome.kills == len(SERIAL_PLAN), outcome


@pytest.mark.storage
def test_a_pool_study_killed_at_every_moment_continues_to_the_same_end(
    tmp_path: Path, uninterrupted: Any
) -> None:
    outcome = run_scenario(tmp_path, POOL_PLAN, uninterrupted, ncores=2, seed=12)
    assert outcome.kills == len(POOL_PLAN), outcome
    assert outcome.main_only_kills == 5  # each followed by the check that no worker survived


CRASH_SCENARIOS = [
    (ncores, method, seed)
    for ncores, method, seeds in [
        (1, "default", range(6)),
        (2, "fork", range(6)),
        (2, "spawn", range(3)),
        (2, "forkserver", range(2)),
    ]
    for seed in seeds
]


@pytest.mark.crash
@pytest.mark.parametrize(("ncores", "method", "seed"), CRASH_SCENARIOS)
def test_random_kills_of_a_study_continue_to_the_same_end(
    tmp_path: Path, uninterrupted: Any, ncores: int, method: str, seed: int
) -> None:
    plan = random_plan(random.Random(1000 * ncores + seed), 12)
    outcome = run_scenario(tmp_path, plan, uninterrupted, ncores=ncores, method=method, seed=seed)
    print(f"kills: {outcome.kills} ({outcome.main_only_kills} of the main process only)")
    # A named moment may not come (e.g. a study that finished meanwhile); allow one.
    assert outcome.kills >= len(plan) - 1, outcome
