"""A study on a SLURM cluster through dask-jobqueue (a recipe: not run in CI).

Run this script on the cluster's login node (or in a small job of its own): it starts
a Dask scheduler here, submits SLURM jobs that each start Dask workers, and runs the
study on them; this process writes the HDF5 file. The compute nodes must reach this
node over the network and share the filesystem of ``STUDY_DIR`` (per-run working
directories); pytraj checks the latter before the first run. Where compute nodes
cannot reach the login node, use shards and merge instead (``slurm_array.sh``).

PBS and SGE work the same way with ``PBSCluster`` / ``SGECluster``. Print the job
script dask-jobqueue would submit, without submitting anything::

    python examples/slurm_dask.py --show-job-script

Needs ``pip install "pytraj-explore[dask]"`` on the login node *and* on the compute
nodes (the same environment: the workers import pytraj and this module).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytraj as pt

#: A folder on the shared filesystem (e.g. your scratch space).
STUDY_DIR = Path.home() / "scratch" / "pytraj-study"


def simulate(traj: pt.Trajectory) -> None:
    """Your simulation: here a stand-in that takes a while."""
    total = sum((k * traj.x) % 7 for k in range(200_000))
    traj.add_result("total", total)


def make_cluster() -> object:
    """Ten jobs of 4 cores each: 40 single-threaded workers (CPU-bound Python code)."""
    from dask_jobqueue import SLURMCluster

    return SLURMCluster(
        queue="normal",  # the partition
        account="my-project",
        cores=4,
        processes=4,  # 4 worker processes per job, 1 thread each
        memory="16GB",  # per job; each worker gets memory / processes as memory_limit
        walltime="02:00:00",
        job_extra_directives=["--output=dask-worker-%j.out"],
        # Activate the same Python environment the login node uses:
        job_script_prologue=["source ~/venvs/pytraj/bin/activate"],
    )


def main() -> None:
    from distributed import Client

    cluster = make_cluster()
    if "--show-job-script" in sys.argv:
        print(cluster.job_script())  # type: ignore[attr-defined]  # a JobQueueCluster
        return
    cluster.scale(jobs=10)  # type: ignore[attr-defined]  # or .adapt(minimum_jobs=1, maximum_jobs=10)
    with Client(cluster) as client:
        client.wait_for_workers(4)  # start once the first job runs; others join later
        env = pt.Environment(
            trajectory="study",
            filename=STUDY_DIR / "study.h5",
            executor=client,
            study_dir=STUDY_DIR / "runs",
            git_repository=Path(__file__).resolve().parent.parent,  # the code's repository
            comment="a parameter sweep on SLURM",
        )
        traj = env.trajectory
        traj.add_parameter("x", 1.0)
        traj.explore({"x": [float(k) for k in range(10_000)]})
        env.run(simulate)  # re-running the script continues where it stopped
        env.close()


if __name__ == "__main__":
    main()
