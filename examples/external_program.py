"""Runs that call an external program in their own working directory.

Each run gets ``traj.run_dir``: a folder under ``<file stem>_<trajectory>/runs/`` beside
the HDF5 file, named by run index and point id, created on first use. Here every run
writes an input file there, starts a small program (``python -c ...``, standing in for
a solver) with that folder as its working directory, and stores what the program
wrote as results.

Run with ``python examples/external_program.py`` (``PYTRAJ_EXAMPLE_SMALL=1``: fewer runs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytraj as pt

#: The "solver": reads input.json, writes output.json and a log, in its working directory.
SOLVER = """
import json, math
params = json.load(open("input.json"))
energy = params["amplitude"] ** 2 * math.sin(params["frequency"]) ** 2
json.dump({"energy": energy}, open("output.json", "w"))
print(f"solved amplitude={params['amplitude']} frequency={params['frequency']}")
"""


def simulate(traj: pt.Trajectory) -> float:
    """Prepare the input, run the solver in the run's folder, store its output."""
    folder = traj.run_dir
    (folder / "input.json").write_text(
        json.dumps({"amplitude": traj.amplitude, "frequency": traj.frequency})
    )
    done = subprocess.run(
        [sys.executable, "-c", SOLVER],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    output = json.loads((folder / "output.json").read_text())
    traj.add_result("energy", output["energy"], comment="computed by the solver")
    traj.add_result("solver_log", done.stdout.strip())
    return float(output["energy"])


def main(n_points: int = 4, filename: str | Path = "out/external.h5") -> pt.Trajectory:
    """Run n_points² solver calls on 2 cores; print where their files are."""
    env = pt.Environment(trajectory="solver", filename=filename, ncores=2, overwrite=True)
    traj = env.trajectory
    traj.add_parameter("amplitude", 1.0)
    traj.add_parameter("frequency", 0.5)
    traj.explore(
        pt.cartesian_product(
            {
                "amplitude": [1.0 + i for i in range(n_points)],
                "frequency": [0.5 * (1 + i) for i in range(n_points)],
            }
        )
    )
    env.run(simulate)
    with traj.set_run(0):
        print(f"run 0 worked in {traj.run_dir}")
    print(traj.to_dataframe().head().to_string())
    print(f"study folder: {traj.study_dir}")
    env.close()
    return traj


if __name__ == "__main__":
    small = os.environ.get("PYTRAJ_EXAMPLE_SMALL") == "1"
    main(n_points=2 if small else 4)
