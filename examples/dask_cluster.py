"""A study on a Dask cluster: a ``LocalCluster`` with 2 worker processes.

The same script runs on a real cluster by swapping the cluster object (see
``slurm_dask.py`` for dask-jobqueue's ``SLURMCluster``): ``Environment(executor=client)``
sends the runs to the workers in batches, and this process stays the only writer of
the file, storing each batch as it completes. Each run records where it ran
(``traj.runs[i].host`` and ``.pid``: a worker), and the writer session that stored it
(``traj.runs[i].provenance``: this process, and the scheduler's address).

Needs the extra: ``pip install "pytraj-explore[dask]"``. Run with
``python examples/dask_cluster.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

from distributed import Client, LocalCluster

import pytraj as pt


def simulate(traj: pt.Trajectory) -> float:
    """A toy simulation: the energy of a damped oscillator after some time."""
    energy = 0.5 * traj.amplitude**2 * math.exp(-2.0 * traj.damping * traj.time)
    traj.add_result("energy", energy, comment="energy at the end")
    return energy


def main(n_points: int = 10, filename: str | Path = "out/dask_cluster.h5") -> pt.Trajectory:
    """Run ``n_points`` x ``n_points`` points on a 2-worker LocalCluster; return the study."""
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        env = pt.Environment(
            trajectory="oscillator",
            filename=filename,
            executor=client,
            overwrite=True,
            progress=False,
            comment="energy of a damped oscillator, on Dask",
        )
        traj = env.trajectory
        traj.add_parameter("amplitude", 1.0)
        traj.add_parameter("damping", 0.1, comment="1/s")
        traj.add_parameter("time", 10.0, comment="s")
        traj.explore(
            pt.cartesian_product(
                {
                    "amplitude": [0.5 * (k + 1) for k in range(n_points)],
                    "damping": [0.02 * (k + 1) for k in range(n_points)],
                }
            )
        )
        env.run(simulate)
        workers = set(client.run(lambda: __import__("os").getpid()).values())
        env.close()
    loaded = pt.load(filename)
    pids = {loaded.runs[i].pid for i in range(len(loaded))}
    print(f"{len(loaded)} runs on a Dask LocalCluster with {len(workers)} worker processes")
    print(f"runs were done by {len(pids & workers)} worker processes")
    print(f"stored by: {loaded.runs[0].provenance['executor']}")
    frame = loaded.to_dataframe()
    best = frame.loc[frame["energy"].idxmax()]
    print(f"highest energy {best['energy']:.4f} at amplitude={best['amplitude']}")
    return loaded


if __name__ == "__main__":
    main()
