"""A study killed before its definition became durable (issue 9, defect 3).

A kill in the first moments of ``env.run`` (or before it) left a file holding an empty
trajectory; every re-run of the script then failed with ``StudyMismatchError``
(``parameters.x: stored -``). Now ``env.run`` makes the definition durable before it
hands out any run, and a trajectory that was created but never defined counts as not
started: the unchanged script, run again, starts or continues the study.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import pytraj as pt
from pytraj.errors import RecoveryWarning
from pytraj.io import load
from pytraj.storage.hdf5 import journal_path_for

pytestmark = [pytest.mark.storage]

N = 6

# The unchanged script: it kills itself once where a marker file says, then (run again)
# finishes. KILL_BEFORE_RUN: after exploring, before env.run; KILL_IN_RUN: the first run
# kills the main process (its own process when serial, its parent in a worker).
SCRIPT = textwrap.dedent(
    f"""
    import os, signal, sys
    from pathlib import Path
    import pytraj as pt

    path, ncores = Path(sys.argv[1]), int(sys.argv[2])
    before, in_run = path.with_name("KILL_BEFORE_RUN"), path.with_name("KILL_IN_RUN")

    def simulate(traj):
        if in_run.exists():
            in_run.unlink()
            main = os.getpid() if ncores == 1 else os.getppid()
            os.kill(main, signal.SIGKILL)
        traj.add_result("z", traj.x * 10)
        return traj.x

    if __name__ == "__main__":
        env = pt.Environment(trajectory="study", filename=path, ncores=ncores, progress=False)
        traj = env.trajectory
        traj.add_parameter("x", 0)
        traj.explore({{"x": list(range({N}))}})
        if before.exists():
            before.unlink()
            os.kill(os.getpid(), signal.SIGKILL)
        env.run(simulate)
        env.close()
        print("done")
    """
)


def _run(tmp_path: Path, ncores: int = 1) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path / "study.h5"), str(ncores)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _kill_once(tmp_path: Path, marker: str, ncores: int = 1) -> None:
    (tmp_path / marker).touch()
    killed = _run(tmp_path, ncores)
    assert killed.returncode == -9, killed.stderr
    assert not (tmp_path / marker).exists()


def _assert_finished(tmp_path: Path, ncores: int = 1) -> None:
    again = _run(tmp_path, ncores)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "done"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecoveryWarning)
        traj = load(tmp_path / "study.h5", "study")
    try:
        assert [run.status for run in traj.runs] == ["completed"] * N
        assert list(traj.results.z) == [10 * x for x in range(N)]
        assert traj.parameters.node("x").range == tuple(range(N))
    finally:
        traj.close()


def test_a_kill_before_env_run_leaves_a_study_the_rerun_starts(tmp_path: Path) -> None:
    _kill_once(tmp_path, "KILL_BEFORE_RUN")
    _assert_finished(tmp_path)


def test_loading_a_trajectory_that_holds_no_study_yet_says_so(tmp_path: Path) -> None:
    _kill_once(tmp_path, "KILL_BEFORE_RUN")
    with pytest.warns(RecoveryWarning, match="holds no study yet") as caught:
        traj = load(tmp_path / "study.h5", "study")
    assert "run the script again" in str(caught[0].message)
    assert len(traj) == 1
    assert list(traj.parameters.iter_leaves()) == []


@pytest.mark.parametrize("ncores", [1, 2])
def test_a_kill_in_the_first_run_leaves_a_study_the_rerun_continues(
    tmp_path: Path, ncores: int
) -> None:
    _kill_once(tmp_path, "KILL_IN_RUN", ncores)
    # The definition was durable before the first run started: the file itself holds it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecoveryWarning)
        traj = load(tmp_path / "study.h5", "study")
    assert traj.parameters.node("x").range == tuple(range(N))
    traj.close()
    _assert_finished(tmp_path, ncores)


@pytest.mark.parametrize("marker", ["KILL_BEFORE_RUN", "KILL_IN_RUN"])
def test_a_killed_study_whose_journal_is_deleted_starts_or_continues(
    tmp_path: Path, marker: str
) -> None:
    _kill_once(tmp_path, marker)
    journal = journal_path_for(tmp_path / "study.h5")
    assert journal.exists()
    journal.unlink()
    (tmp_path / "study.h5.lock").unlink(missing_ok=True)
    _assert_finished(tmp_path)


def test_a_manual_trajectory_created_and_never_defined_is_created_again(tmp_path: Path) -> None:
    path = tmp_path / "manual.h5"
    code = (
        "import os, signal, sys, pytraj as pt\n"
        "traj = pt.Trajectory('t', filename=sys.argv[1])\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", code, str(path)], timeout=60, check=False)
    assert killed.returncode == -9
    traj = pt.Trajectory("t", filename=path)
    traj.add_parameter("x", 1.5)
    traj.close()
    loaded = load(path, "t")
    assert loaded.x == 1.5
    loaded.close()
