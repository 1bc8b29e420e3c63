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
