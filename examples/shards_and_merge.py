"""Shards and merge: one study split over 4 "machines", one of them dies, merge, resume.

Each shard is a separate process running the *same* script with ``PYTRAJ_SHARD=i/4``
(as a SLURM array job would, see ``slurm_array.sh``): it writes the full study
definition into its own file (``study.shard-i-of-4.h5``) and runs only the points whose
point id falls into its shard. Shard 1 is killed partway. ``pt.merge_files`` joins the
four files into one (the study once, not four times); the runs the dead shard never did
are pending in it, and running the script once more against the merged file runs just
those.

Run with ``python examples/shards_and_merge.py`` (``PYTRAJ_EXAMPLE_SMALL=1``: fewer
points). ``python examples/shards_and_merge.py FILE`` is the study itself: it runs the
shard named by ``PYTRAJ_SHARD``, or every missing run when the variable is not set.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytraj as pt

#: Set in the shard that plays the machine that dies (after this many runs).
DIE_AFTER = "SHARDS_EXAMPLE_DIE_AFTER"
_done: list[int] = []


def simulate(traj: pt.Trajectory) -> float:
    """A toy simulation: the damped response of an oscillator."""
    die_after = os.environ.get(DIE_AFTER)
    if die_after is not None and len(_done) >= int(die_after):
        os.kill(os.getpid(), signal.SIGKILL)  # the machine goes away, nothing is closed
    if die_after is not None and len(_done) == int(die_after) - 1:
        time.sleep(1.2)  # so that the runs before are flushed (journaled) before the kill
    _done.append(traj.idx)
    response = traj.amplitude / (1.0 + traj.damping * traj.frequency**2)
    traj.add_result("response", response, comment="peak response")
    return response


def study(filename: Path, small: bool) -> None:
    """The study script: the same for every shard and for the final resume."""
    n = 3 if small else 6
    env = pt.Environment(trajectory="oscillator", filename=filename, progress=False)
    traj = env.trajectory
    traj.add_parameter("amplitude", 1.0, comment="drive amplitude")
    traj.add_parameter("damping", 0.1)
    traj.add_parameter("frequency", 1.0, comment="Hz")
    traj.explore(
        pt.cartesian_product(
            {
                "damping": [0.05 * (k + 1) for k in range(n)],
                "frequency": [0.5 * (k + 1) for k in range(n)],
            }
        )
    )
    where = f"shard {env.shard.index} of {env.shard.count}" if not env.shard.is_whole else "all"
    results = env.run(simulate)
    env.close()
    print(f"{where}: {len(results)} runs into {env.filename.name}")


def main(folder: Path, small: bool = False) -> pt.Trajectory:
    """Run 4 shards as processes (shard 1 dies), merge them, resume, return the result."""
    folder.mkdir(parents=True, exist_ok=True)
    filename = folder / "study.h5"
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTRAJ_SHARD", DIE_AFTER)}
    if small:
        clean["PYTRAJ_EXAMPLE_SMALL"] = "1"
    shards = []
    for i in range(4):
        env = dict(clean, PYTRAJ_SHARD=f"{i}/4")
        if i == 1:
            env[DIE_AFTER] = "1"
        shards.append(subprocess.Popen([sys.executable, __file__, str(filename)], env=env))
    for i, process in enumerate(shards):
        code = process.wait()
        print(f"shard {i}: " + ("killed" if code == -signal.SIGKILL else f"exit status {code}"))

    merged = folder / "merged.h5"
    for report in pt.merge_files(sorted(folder.glob("study.shard-*-of-4.h5")), merged):
        print(report.summary())
    traj = pt.load(merged)
    print("after the merge:", traj.run_table.counts())
    traj.close()

    # The dead shard's points: the unchanged script, run against the merged file.
    subprocess.run([sys.executable, __file__, str(merged)], env=clean, check=True)
    traj = pt.load(merged)
    print("after resuming:", traj.run_table.counts())
    table = traj.to_dataframe(status=True)
    print(table.to_string())
    return traj


if __name__ == "__main__":
    small = bool(os.environ.get("PYTRAJ_EXAMPLE_SMALL"))
    if len(sys.argv) > 1:
        study(Path(sys.argv[1]), small)
    else:
        main(Path("out") / "shards", small)
