"""Study scripts in real processes: Ctrl-C, start methods, functions from ``python -c``.

The Ctrl-C script runs a study on 2 worker processes; each run writes ``<idx>.start``
(with the time) when it starts and ``<idx>.end`` when it ends. The tests send SIGINT to
the script's process group, as a terminal does on Ctrl-C, and check what was stored.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytraj.io import load

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from pytraj.run import Environment

    MARKS = Path(sys.argv[2])
    SECONDS = float(os.environ.get("RUN_SECONDS", "0.5"))

    def simulate(traj):
        (MARKS / f"{traj.idx}.start").write_text(repr(time.time()))
        time.sleep(SECONDS)
        traj.add_result("z", traj.x * 2.0)
        (MARKS / f"{traj.idx}.end").write_text(repr(time.time()))

    if __name__ == "__main__":
        env = Environment("study", sys.argv[1], ncores=2, progress=False)
        env.trajectory.add_parameter("x", 0.0)
        env.trajectory.explore({"x": [float(i) for i in range(12)]})
        try:
            env.run(simulate)
        except KeyboardInterrupt:
            env.close()
            sys.exit(130)
        env.close()
    """
)


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child Python: this checkout importable, plus ``extra``."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path, **extra)


def start_study(tmp_path: Path, seconds: float) -> subprocess.Popen[str]:
    script = tmp_path / "study.py"
    script.write_text(SCRIPT)
    marks = tmp_path / "marks"
    marks.mkdir(exist_ok=True)
    env = child_env(RUN_SECONDS=str(seconds))
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "study.h5"), str(marks)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a job in a terminal
    )


def wait_for_starts(tmp_path: Path, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while len(list((tmp_path / "marks").glob("*.start"))) < count:
        assert time.monotonic() < deadline, "the study did not start its runs"
        time.sleep(0.02)


def marks(tmp_path: Path, kind: str) -> dict[int, float]:
    found = {}
    for path in (tmp_path / "marks").glob(f"*.{kind}"):
        found[int(path.stem)] = float(path.read_text())
    return found


def test_first_ctrl_c_finishes_running_runs_and_starts_no_new_one(tmp_path: Path) -> None:
    process = start_study(tmp_path, seconds=0.6)
    wait_for_starts(tmp_path, 3)
    signalled = time.time()
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr

    started = marks(tmp_path, "start")
    assert all(at < signalled for at in started.values())  # nothing started afterwards
    assert marks(tmp_path, "end").keys() == started.keys()  # in-flight runs finished
    traj = load(tmp_path / "study.h5", "study")
    statuses = {i: traj.runs[i].status for i in range(12)}
    assert {i for i, s in statuses.items() if s == "completed"} == set(started)
    assert "failed" not in statuses.values()
    assert len(started) < 12

    again = start_study(tmp_path, seconds=0.01)  # re-running the script completes it
    _, stderr = again.communicate(timeout=120)
    assert again.returncode == 0, stderr
    traj = load(tmp_path / "study.h5", "study")
    assert [traj.runs[i].status for i in range(12)] == ["completed"] * 12
    assert [traj.results.z[i] for i in range(12)] == [2.0 * i for i in range(12)]


def test_second_ctrl_c_stops_at_once_and_the_study_can_continue(tmp_path: Path) -> None:
    process = start_study(tmp_path, seconds=30.0)
    wait_for_starts(tmp_path, 2)
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.5)
    stopping = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert time.monotonic() - stopping < 10  # not the 30 s the runs would take
    assert process.returncode == 130, stderr
    assert marks(tmp_path, "end") == {}

    traj = load(tmp_path / "study.h5", "study")  # readable; the killed runs are pending
    assert [traj.runs[i].status for i in range(12)] == ["pending"] * 12

    again = start_study(tmp_path, seconds=0.01)
    _, stderr = again.communicate(timeout=120)
    assert again.returncode == 0, stderr
    traj = load(tmp_path / "study.h5", "study")
    assert [traj.runs[i].status for i in range(12)] == ["completed"] * 12


def test_a_function_from_python_c_under_spawn_gets_a_clear_error(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        from pytraj.run import Environment
        def simulate(traj):
            traj.add_result("z", traj.x)
        env = Environment("study", {str(tmp_path / "c.h5")!r}, ncores=2, mp_context="spawn",
                          progress=False)
        env.trajectory.add_parameter("x", 0.0)
        env.trajectory.explore({{"x": [1.0, 2.0]}})
        env.run(simulate)
        """
    )
    env = child_env()
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "RunError" in done.stderr
    assert "simulate is defined in the __main__ of an interactive session" in done.stderr
    assert "Move the function into a module" in done.stderr
    assert "mp_context='fork'" in done.stderr


MAIN_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pytraj.run import Environment

    def simulate(traj):
        traj.add_result("z", traj.x * 3.0)
        return os.getpid()

    if __name__ == "__main__":
        env = Environment("study", sys.argv[1], ncores=2, mp_context=sys.argv[2],
                          progress=False)
        env.trajectory.add_parameter("x", 0.0)
        env.trajectory.explore({"x": [1.0, 2.0, 3.0, 4.0]})
        pids = {pid for _, pid in env.run(simulate)}
        env.close()
        print(len(pids - {os.getpid()}))
    """
)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_function_in_a_scripts_main_runs_under(tmp_path: Path, method: str) -> None:
    script = tmp_path / "main_script.py"
    script.write_text(MAIN_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "m.h5"), method],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"  # both workers ran, none of it in the main process
    traj = load(tmp_path / "m.h5", "study")
    assert [traj.results.z[i] for i in range(4)] == [3.0, 6.0, 9.0, 12.0]
