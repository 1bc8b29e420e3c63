"""Provenance per trajectory that identifies the code: the script and its sha256."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytraj as pt

SCRIPT = """
import sys
import pytraj as pt

def simulate(traj):
    traj.add_result("z", traj.x + 1)

env = pt.Environment("study", sys.argv[1], progress=False)
env.trajectory.add_parameter("x", 0)
env.trajectory.explore({"x": [0, 1]})
env.run(simulate)
env.close()
"""


def test_the_script_and_its_sha256_are_recorded(tmp_path: Path) -> None:
    script = tmp_path / "study_script.py"
    script.write_text(textwrap.dedent(SCRIPT), encoding="utf-8")
    subprocess.run([sys.executable, str(script), str(tmp_path / "s.h5")], check=True)
    provenance = pt.load(tmp_path / "s.h5").provenance
    assert provenance["script"] == str(script)
    assert provenance["script_sha256"] == hashlib.sha256(script.read_bytes()).hexdigest()
    assert str(script) in provenance["command_line"]
    run = pt.load(tmp_path / "s.h5").runs[1]
    assert run.attempt == 1
    assert run.provenance is not None
    assert run.provenance["executor"] == "serial"


CONTINUED = """
import os
import signal
import sys
import time

import pytraj as pt

n_points, kill_at = int(sys.argv[2]), int(sys.argv[3])


def simulate(traj):
    if traj.x == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.4)  # past the 1 s flush budget after three runs: they are journaled
    traj.add_result("z", traj.x + 1)


env = pt.Environment("study", sys.argv[1], progress=False)
env.trajectory.add_parameter("x", 0)
env.trajectory.explore({"x": list(range(n_points))})
print(os.getpid(), flush=True)
env.run(simulate)
env.close()
"""


def _session(script: Path, path: Path, n_points: int, kill_at: int = -1) -> int:
    """Run ``script`` on ``path`` in a subprocess; its pid (it may be killed)."""
    done = subprocess.run(
        [sys.executable, str(script), str(path), str(n_points), str(kill_at)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == (-9 if kill_at >= 0 else 0), done.stderr
    return int(done.stdout.split()[0])


def test_a_continued_study_keeps_each_run_s_writer_session(tmp_path: Path) -> None:
    script = tmp_path / "continued.py"
    script.write_text(textwrap.dedent(CONTINUED), encoding="utf-8")
    path = tmp_path / "c.h5"
    killed = _session(script, path, 4, kill_at=3)  # killed in run 3: runs 0-2 journaled
    extended = _session(script, path, 4)  # continues: run 3
    grown = _session(script, path, 6)  # the script explores two more points: runs 4, 5
    traj = pt.load(path)
    assert len(traj) == 6
    writers = traj.provenance["writers"]
    assert [writer["pid"] for writer in writers] == [killed, extended, grown]
    assert [traj.runs[i].pid for i in range(6)] == [killed] * 3 + [extended] + [grown] * 2
    for i in range(6):
        run_provenance = traj.runs[i].provenance
        assert run_provenance is not None
        assert run_provenance["pid"] == traj.runs[i].pid, i
    # The two earlier sessions are kept, the latest is the trajectory's own.
    assert len(traj.provenance["previous_sessions"]) == 2
    assert list(traj.results.z) == [1, 2, 3, 4, 5, 6]
