"""Quickstart: explore a small grid by hand and look at the results.

Run with ``make demo`` or ``python examples/quickstart.py``.
"""

from __future__ import annotations

import math

import pytraj as pt


def simulate(traj: pt.Trajectory) -> None:
    """A toy simulation: a damped oscillation sampled at the point (x, y)."""
    value = math.exp(-traj.x / 10.0) * math.cos(traj.y)
    traj.add_result("z", value, comment="damped oscillation")
    traj.add_result("stats", product=traj.x * traj.y, total=traj.x + traj.y)


def main() -> pt.Trajectory:
    traj = pt.Trajectory("quickstart", comment="a first study")
    traj.add_parameter("x", 1.0, comment="decay time")
    traj.add_parameter("y", 0.0, comment="phase")
    traj.explore(pt.cartesian_product({"x": [1.0, 2.0, 4.0, 8.0], "y": [0.0, 0.5, 1.0]}))
    for idx in range(len(traj)):
        with traj.start_run(idx):
            simulate(traj)
    frame = traj.to_dataframe()
    print(f"{len(traj)} runs; best z at run {int(frame['z'].idxmax())}")
    print(frame.to_string(float_format=lambda v: f"{v:8.4f}"))
    return traj


if __name__ == "__main__":
    main()
