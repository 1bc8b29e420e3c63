"""Adaptive search: post-processing refines a grid around the best point, round by round.

``env.add_postprocessing(refine)`` calls ``refine(traj, results)`` in the main process
after the runs. It returns a finer grid around the best point so far; those points are
added with ``traj.expand`` and run, and ``refine`` is called again, until it returns
None. Points that ran already are not run twice.

Run with ``python examples/adaptive_search.py`` (``PYTRAJ_EXAMPLE_SMALL=1``: fewer rounds).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

import pytraj as pt

#: Where the true minimum of the landscape is; the search does not know it.
TARGET = (1.234, -0.567)


def landscape(traj: pt.Trajectory) -> float:
    """The cost of a point: a bowl around TARGET with some ripples."""
    dx, dy = traj.x - TARGET[0], traj.y - TARGET[1]
    cost = dx * dx + dy * dy + 0.05 * np.sin(5 * traj.x) ** 2
    traj.add_result("cost", float(cost), comment="lower is better")
    return float(cost)


def refine(
    traj: pt.Trajectory, results: list[tuple[int, Any]], rounds: int, width: float
) -> dict[str, list[float]] | None:
    """Propose a 5x5 grid around the best point, half as wide each round."""
    done_rounds = traj.config.rounds_done
    best_idx, best_cost = min(results, key=lambda pair: pair[1])
    best = traj.runs[best_idx]
    print(f"round {done_rounds}: best cost {best_cost:.5f} at x={best.x:.4f}, y={best.y:.4f}")
    if done_rounds >= rounds:
        return None
    traj.node("config.rounds_done").value = done_rounds + 1
    half = width / 2 ** (done_rounds + 1)
    offsets = np.linspace(-half, half, 5)
    return pt.cartesian_product(
        {"x": [best.x + o for o in offsets], "y": [best.y + o for o in offsets]}
    )


def main(rounds: int = 6, filename: str | Path = "out/adaptive.h5") -> pt.Trajectory:
    """Run the search and return the trajectory with every point tried."""
    env = pt.Environment(trajectory="search", filename=filename, overwrite=True, ncores=2)
    traj = env.trajectory
    traj.add_parameter("x", 0.0)
    traj.add_parameter("y", 0.0)
    traj.add_config("rounds_done", 0, comment="refinement rounds so far")
    width = 4.0
    grid = np.linspace(-width / 2, width / 2, 5).tolist()
    traj.explore(pt.cartesian_product({"x": grid, "y": grid}))
    env.add_postprocessing(refine, rounds, width)
    env.run(landscape)
    frame = traj.to_dataframe()
    best = frame["cost"].idxmin()
    print(
        f"{len(frame)} points in {rounds} rounds; best x={frame.loc[best, 'x']:.4f}, "
        f"y={frame.loc[best, 'y']:.4f} (target {TARGET})"
    )
    env.close()
    return traj


if __name__ == "__main__":
    small = os.environ.get("PYTRAJ_EXAMPLE_SMALL") == "1"
    main(rounds=2 if small else 6)
