"""Write the layout-1 fixture files (run once, with pytraj at commit 8cc5ef8).

Files of every earlier on-disk layout stay in ``tests/data/`` so that each later pytraj
is tested to load, replay and continue them (``tests/test_layout_fixtures.py``). This
script documents how the layout-1 files were made; with a pytraj that writes a newer
layout it would write that layout instead, so it is not run by the tests.

* ``finished.h5``: a closed study of 600 int points (x), one failing run, scalar, array,
  ragged, dict and string results; several point ids end in a 0x00 byte.
* ``crashed.h5`` + ``crashed.h5.journal``: the same study killed (``os._exit``) after
  400 runs, between two flushes: the file lacks runs the journal holds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import pytraj as pt

HERE = Path(__file__).resolve().parent
POINTS = list(range(700, 1300))
FAILING = 705
CRASH_AFTER = 400


def simulate(traj: pt.Trajectory) -> int:
    if traj.x == FAILING:
        raise ValueError(f"x={traj.x} is refused on purpose")
    time.sleep(0.002)  # so the session commits batches to the journal before the kill
    traj.add_result("z", traj.x * 2, comment="twice x")
    traj.add_result("mean", float(traj.x) / 3.0)
    traj.add_result("trace", np.arange(4, dtype=np.float64) * traj.x)
    traj.add_result("ragged", np.arange(traj.x % 7, dtype=np.int32))
    traj.add_result("stats", low=traj.x - 1, high=traj.x + 1, label=f"point {traj.x}")
    if traj.idx + 1 == int(os.environ.get("CRASH_AFTER", "0")):
        os._exit(9)  # a kill between two flushes: the journal holds what the file lacks
    return traj.x


def study(filename: Path) -> None:
    env = pt.Environment(
        trajectory="layout1",
        filename=filename,
        comment="layout-1 fixture",
        ncores=1,
        on_error="continue",
        progress=False,
    )
    traj = env.trajectory
    traj.add_parameter("x", 0, comment="an int parameter")
    traj.add_parameter("scale", 0.5, comment="not explored")
    traj.explore({"x": POINTS})
    env.run(simulate)
    env.close()


def main() -> None:
    if len(sys.argv) > 1:
        study(Path(sys.argv[1]))
        return
    work = HERE / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    subprocess.run([sys.executable, __file__, str(work / "finished.h5")], check=True)
    crashed = subprocess.run(
        [sys.executable, __file__, str(work / "crashed.h5")],
        env={**os.environ, "CRASH_AFTER": str(CRASH_AFTER)},
        check=False,
    )
    assert crashed.returncode == 9, crashed.returncode
    for name in ("finished.h5", "crashed.h5", "crashed.h5.journal"):
        shutil.copy(work / name, HERE / name)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
