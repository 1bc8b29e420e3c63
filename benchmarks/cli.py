"""``python -m benchmarks.cli``: the looking commands on big files, as a user runs them.

Builds a study of N runs on a 2-D grid (``z = sin(x) * y`` and a two-item ``diag``
result per run, one run in 1,000 failed) with ``env.run``, then times ``pytraj info``,
``pytraj runs --limit 20`` and ``pytraj report`` each in a fresh process, wall time
including the interpreter's start (issue 13's targets: <= 1 s for ``info`` and ``runs``
on 100,000 runs; the report <= 10 s and <= 5 MB). Prints a markdown table of medians
with the range; saves nothing (the numbers go into docs/cli.md by hand).

Examples
--------
The issue's measurement (about a minute on 2 cores)::

    python -m benchmarks.cli --sizes 10000 100000 --repetitions 5

The test suite's smoke run (checks what each command prints, times nothing)::

    python -m benchmarks.cli --sizes 400 --repetitions 1 --workdir /tmp/x
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.__main__ import compile_sources
from benchmarks.harness import REPO_ROOT

__all__ = ["COMMANDS", "Timing", "main", "make_study", "time_command"]

#: What is timed, by label: the arguments after ``pytraj`` ({file} and {out} filled in).
COMMANDS: dict[str, tuple[str, ...]] = {
    "info": ("info", "{file}"),
    "runs --limit 20": ("runs", "{file}", "--limit", "20"),
    "report": ("report", "{file}", "-o", "{out}"),
}

_MAKER = """
import sys
import numpy as np
import pytraj as pt

n = int(sys.argv[2])
nx = 400 if n >= 100_000 else max(n // 100, 1)

def simulate(traj):
    if traj.idx % 1000 == 999:
        raise ValueError(f"diverged at x={traj.x}")
    traj.add_result("z", float(np.sin(traj.x) * traj.y))
    traj.add_result("diag", peak=traj.x - traj.y, steps=int(traj.y * 10))

env = pt.Environment(trajectory="big", filename=sys.argv[1], progress=False,
                     on_error="continue")
traj = env.trajectory
traj.add_parameter("x", 0.0, comment="first axis")
traj.add_parameter("y", 0.0, comment="second axis")
grid = {"x": list(np.linspace(0, 10, nx)), "y": list(np.linspace(0, 1, n // nx))}
traj.explore(pt.cartesian_product(grid))
env.run(simulate)
traj.close()
"""


@dataclass(frozen=True)
class Timing:
    """Wall times of one command on one file, and what its last run printed."""

    label: str
    runs: int
    seconds: tuple[float, ...]
    stdout: str
    output_bytes: int = 0  # the report's size, for ``report``

    def cell(self) -> str:
        """``median (min - max)`` in seconds."""
        median = statistics.median(self.seconds)
        return f"{median:.2f} s ({min(self.seconds):.2f} - {max(self.seconds):.2f})"


def make_study(path: Path, runs: int) -> Path:
    """Write the study of ``runs`` runs to ``path`` (in a child process) unless it exists."""
    if not path.exists():
        done = subprocess.run(
            [sys.executable, "-c", _MAKER, str(path), str(runs)],
            capture_output=True,  # the summary of the failed runs: meant, not news
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"building {path} failed: {done.stderr.strip()}")
    return path


def time_command(label: str, path: Path, runs: int, repetitions: int) -> Timing:
    """Run ``pytraj <COMMANDS[label]>`` on ``path`` ``repetitions`` times, each fresh."""
    script = Path(sys.executable).with_name("pytraj")
    out = path.with_suffix(".html")
    args = [part.format(file=path, out=out) for part in COMMANDS[label]]
    seconds = []
    stdout = ""
    for _ in range(repetitions):
        started = time.perf_counter()
        done = subprocess.run(
            [str(script), *args], capture_output=True, text=True, check=False, timeout=600
        )
        seconds.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"pytraj {' '.join(args)} failed: {done.stderr.strip()}")
        stdout = done.stdout
    size = out.stat().st_size if label == "report" else 0
    return Timing(label, runs, tuple(seconds), stdout, size)


def main(argv: Sequence[str] | None = None) -> list[Timing]:
    """Build the files, time every command, print the table; return the timings."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cli", description=__doc__)
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "out" / "bench-cli")
    args = parser.parse_args(argv)
    compile_sources()  # as an installed package is: no compiling inside the timed runs
    args.workdir.mkdir(parents=True, exist_ok=True)
    timings = []
    for runs in args.sizes:
        path = make_study(args.workdir / f"big-{runs}.h5", runs)
        for label in COMMANDS:
            timings.append(time_command(label, path, runs, args.repetitions))
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
    print("| runs | command | wall, median (min - max) | report size |")
    print("|---|---|---|---|")
    for timing in timings:
        size = f"{timing.output_bytes / 1000:.0f} KB" if timing.output_bytes else ""
        print(f"| {timing.runs:,} | `pytraj {timing.label}` | {timing.cell()} | {size} |")
    return timings


if __name__ == "__main__":
    main()
