"""Pool workers end when the main process dies (issue 9, defect 5).

SIGKILL of only the main process during an ``ncores=2`` run used to leave both workers
alive, parented to init, for ever (under fork they hold the main process's pipe ends
themselves, so no pipe ever closes). Now the Linux parent-death signal and a watch of
the parent pid end them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

pytestmark = [pytest.mark.slow]

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import pytraj as pt

    def simulate(traj):
        os.write(1, f"worker {os.getpid()}\\n".encode())  # one write: lines never mix
        time.sleep(float(sys.argv[3]))

    if __name__ == "__main__":
        env = pt.Environment(
            trajectory="t", filename=sys.argv[1], ncores=2, mp_context=sys.argv[2],
            progress=False,
        )
        env.trajectory.add_parameter("x", 0)
        env.trajectory.explore({"x": list(range(40))})
        env.run(simulate)
    """
)


def _wait_gone(pids: set[int], seconds: float) -> set[int]:
    """The pids still alive (not zombies) after up to ``seconds``."""
    deadline = time.monotonic() + seconds
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {pid for pid in alive if _alive(pid)}
        time.sleep(0.05)
    return alive


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _kill_main_only(tmp_path: Path, method: str, run_seconds: float) -> set[int]:
    """Start a pool study, SIGKILL its main process once both workers run; their pids."""
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    main = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "s.h5"), method, str(run_seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert main.stdout is not None
    workers: set[int] = set()
    try:
        for line in main.stdout:
            workers.add(int(line.split()[1]))
            if len(workers) == 2:
                break
        assert len(workers) == 2
        assert {child.pid for child in psutil.Process(main.pid).children(recursive=True)} >= workers
        os.kill(main.pid, signal.SIGKILL)
        main.wait(timeout=30)
    finally:
        if main.poll() is None:
            main.kill()
            main.wait()
    return workers


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
@pytest.mark.parametrize("run_seconds", [0.0, 30.0], ids=["idle", "running"])
def test_workers_exit_when_only_the_main_process_is_killed(
    tmp_path: Path, method: str, run_seconds: float
) -> None:
    workers = _kill_main_only(tmp_path, method, run_seconds)
    survivors = _wait_gone(workers, 5.0)
    for pid in survivors:  # do not leave them behind if the test fails
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"workers {sorted(survivors)} survived their main process"


FALLBACK = textwrap.dedent(
    """
    import multiprocessing, os, sys, time
    from pytraj.run.parentwatch import exit_with_parent

    def child(main_pid):
        # Without the Linux death signal: only the watch of the parent pid ends it.
        exit_with_parent(main_pid, "fork", death_signal=False)
        time.sleep(60)

    if __name__ == "__main__":
        process = multiprocessing.get_context("fork").Process(target=child, args=(os.getpid(),))
        process.start()
        print(process.pid, flush=True)
        time.sleep(60)
    """
)


def test_without_the_death_signal_the_parent_watch_ends_an_orphan(tmp_path: Path) -> None:
    script = tmp_path / "fallback.py"
    script.write_text(FALLBACK)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    time.sleep(0.3)  # the child is past its start-up checks
    assert _alive(child)
    parent.kill()
    parent.wait(timeout=30)
    survivors = _wait_gone({child}, 5.0)
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert not survivors
