"""Analyse a finished study: the DataFrame, queries, an xarray grid and the HTML report.

Run ``make demo`` first (it writes ``out/oscillator.h5``), then
``python examples/analyse_results.py [FILE]``. Nothing here writes to the study file:
it is loaded read-only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytraj as pt
from pytraj.report import write_report


def main(
    filename: str | Path = "out/oscillator.h5", report: str | Path = "out/analysis-report.html"
) -> dict[str, object]:
    """Print what a study holds and write its report; return the numbers printed."""
    traj = pt.load(filename, read_only=True, allow_pickle=False)
    print(repr(traj))

    # One row per run: explored parameters, scalar results, and run-table fields.
    frame = traj.to_dataframe(include=("status", "runtime"))
    print(frame.head(10).to_string(float_format=lambda v: f"{v:9.4f}"))

    # Queries: keyword conditions, a query string, and runs as objects.
    resonant = traj.find(amplitude__gt=3.0)
    print(f"{len(resonant)} runs with an amplitude above 3: {resonant}")
    lightly_damped = traj.runs.where("damping <= 0.1 and status == 'completed'")
    peak = max(lightly_damped, key=lambda run: run.results.amplitude)
    print(
        f"largest amplitude among {len(lightly_damped)} lightly damped runs: "
        f"{peak.results.amplitude:.3f} at drive={peak.drive:.3f} (run {peak.idx})"
    )

    # The grid as an xarray Dataset: the resonance curve of each damping ratio.
    grid = traj.to_xarray(results=["amplitude"])
    best_drive = grid.amplitude.idxmax("drive")
    for damping, drive in zip(grid.damping.values, best_drive.values, strict=True):
        print(f"damping {damping:.2f}: resonance at drive {drive:.3f}")

    path = write_report(traj, report, source=str(filename))
    print(f"report: {path.resolve()}")
    return {
        "runs": len(traj),
        "resonant": resonant,
        "peak_run": peak.idx,
        "resonances": dict(
            zip(grid.damping.values.tolist(), best_drive.values.tolist(), strict=True)
        ),
        "report": path,
    }


if __name__ == "__main__":
    main(*sys.argv[1:3])
