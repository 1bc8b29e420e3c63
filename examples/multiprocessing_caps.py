"""Parallel runs under resource caps, with a time limit and per-run log capture.

- ``ncores=0`` starts one worker process per CPU;
- ``cpu_cap`` / ``memory_cap`` / ``swap_cap``: no new run starts while the machine is
  busier than that (one run always proceeds); ``niceness`` lowers the workers'
  priority so the machine stays responsive;
- ``run_timeout`` kills a run that hangs and records it as failed; the study goes on;
- ``log_stdout=True`` stores each run's log records and printed output with the run;
- ``on_error="continue"`` logs failed runs instead of raising at the end.

Run with ``python examples/multiprocessing_caps.py`` (``PYTRAJ_EXAMPLE_SMALL=1``: fewer runs).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

import pytraj as pt

log = logging.getLogger("examples.caps")


def simulate(traj: pt.Trajectory) -> float:
    """A random walk of ``steps`` steps; the point with ``hang=True`` never ends."""
    if traj.hang:
        time.sleep(3600)  # a simulation that got stuck: run_timeout ends it
    rng = np.random.default_rng(traj.seed)  # reproducible per point
    walk = np.cumsum(rng.standard_normal(traj.steps))
    log.info("run %d: %d steps, final position %.3f", traj.idx, traj.steps, walk[-1])
    print(f"run {traj.idx} done in process {os.getpid()}")
    traj.add_result("final", float(walk[-1]), comment="position after the last step")
    traj.add_result("spread", float(walk.std()))
    return float(walk[-1])


def main(
    n_runs: int = 40, filename: str | Path = "out/caps.h5", run_timeout: float = 5.0
) -> pt.Trajectory:
    """Run the capped study and print how it went."""
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)  # workers inherit the levels of the main process
    env = pt.Environment(
        trajectory="walks",
        filename=filename,
        ncores=0,
        cpu_cap=90.0,
        memory_cap=90.0,
        swap_cap=50.0,
        niceness=10,
        run_timeout=run_timeout,
        log_stdout=True,
        on_error="continue",
        overwrite=True,
    )
    traj = env.trajectory
    traj.add_parameter("steps", 1000, comment="number of steps")
    traj.add_parameter("hang", False, comment="simulate a stuck run")
    traj.explore(
        {"steps": [1000 + 100 * i for i in range(n_runs)], "hang": [i == 3 for i in range(n_runs)]}
    )
    env.run(simulate)
    table = traj.runs.to_dataframe()
    print(table["status"].value_counts().to_string())
    print(f"worker processes used: {table['pid'].nunique()}")
    print(f"failed: {traj.runs[3].failure.message}")
    print(f"captured by run 0:\n{traj.runs[0].log}")
    env.close()
    return traj


if __name__ == "__main__":
    small = os.environ.get("PYTRAJ_EXAMPLE_SMALL") == "1"
    main(n_runs=8 if small else 40, run_timeout=2.0 if small else 5.0)
