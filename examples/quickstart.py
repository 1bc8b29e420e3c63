"""Quickstart: a study of a few hundred points on 2 cores, stored in one HDF5 file.

Run with ``make demo`` or ``python examples/quickstart.py``. It writes
``out/quickstart.h5``, then opens the file again and prints a small table of results.
Set ``PYTRAJ_EXAMPLE_SMALL=1`` for a quick run with a handful of points.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

import pytraj as pt


def simulate(traj: pt.Trajectory) -> float:
    """A toy simulation: a resonance peak (at x=8) modulated by a phase y."""
    value = math.exp(-((traj.x - 8.0) ** 2) / 20.0) * math.cos(traj.y - 1.5)
    traj.add_result("z", value, comment="response")
    traj.add_result("stats", product=traj.x * traj.y, total=traj.x + traj.y)
    return value


def main(
    points_per_axis: int = 20, filename: str | Path = "out/quickstart.h5", ncores: int = 2
) -> pt.Trajectory:
    """Run the study (points_per_axis² runs) and print what the file holds."""
    env = pt.Environment(
        trajectory="quickstart",
        filename=filename,
        comment="a first study",
        ncores=ncores,
        overwrite=True,  # a demo: start afresh on every call
    )
    traj = env.trajectory
    traj.add_parameter("x", 1.0, comment="driving frequency")
    traj.add_parameter("y", 0.0, comment="phase")
    traj.explore(
        pt.cartesian_product(
            {
                "x": np.linspace(1.0, 20.0, points_per_axis).tolist(),
                "y": np.linspace(0.0, 3.0, points_per_axis).tolist(),
            }
        )
    )
    returned = env.run(simulate)
    env.close()
    print(f"{len(returned)} runs on {ncores} cores into {env.filename}")

    loaded = pt.load(filename)  # the latest trajectory in the file, loaded lazily
    frame = loaded.to_dataframe()
    best = int(frame["z"].idxmax())
    print(
        f"best z = {frame['z'].max():.4f} at run {best}: x={loaded.runs[best].x:.3f}, "
        f"y={loaded.runs[best].y:.3f}"
    )
    print(frame.head(8).to_string(float_format=lambda v: f"{v:8.4f}"))
    workers = loaded.runs.to_dataframe()["pid"].nunique()
    print(f"... {len(frame)} rows; runs were done by {workers} worker processes")
    return loaded


if __name__ == "__main__":
    small = os.environ.get("PYTRAJ_EXAMPLE_SMALL") == "1"
    main(points_per_axis=4 if small else 20)
