"""One measurement in a fresh process: ``python -m benchmarks.child SPEC_JSON``.

The harness starts this module once per system x workload x N x repetition, in the
virtual environment the system needs (pypet and psweep live in ``.venv-compare``).
The child runs the workload, checks the stored data against what was computed,
measures the files it wrote and its own peak memory, and prints one line
``BENCH-RESULT {json}`` on stdout (libraries such as pypet log to stdout too).

Only the standard library is imported at the top: the system's own modules are
imported inside the runner, so ``import pytraj`` can itself be measured (IMPORT) and
a pypet child never imports pytraj.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import resource
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RESULT_PREFIX", "Cell", "Outcome", "count_nodes", "main", "run_cell"]

RESULT_PREFIX = "BENCH-RESULT "

#: System name -> module defining ``RUNNERS: dict[str, Callable[[Cell], Outcome]]`` and,
#: optionally, ``unavailable(workload) -> str | None`` (why it cannot run, e.g. "not yet
#: measurable").
SYSTEM_MODULES = {
    "floor": "benchmarks.systems.floor",
    "pytraj": "benchmarks.systems.pytraj_system",
    "pypet": "benchmarks.systems.pypet_system",
    "psweep": "benchmarks.systems.psweep_system",
}


@dataclass(slots=True)
class Cell:
    """What one child measures.

    Attributes
    ----------
    system, workload, n
        The measurement: ``"pytraj"``, ``"W1"``, 10_000.
    workdir
        An empty folder the child may write into.
    phase
        ``"measure"``; ``"prepare"``: write a W1 file of ``n`` runs whose explored
        values start at ``offset`` (the input of W5 and W6), timing nothing that counts;
        ``"probe"``: only say whether the system can run the workload at all.
    sources
        Input files (W5: one W1 file; W6: two W1 files of N/2 runs).
    iterations
        W4's busy-work iterations (calibrated once by the harness).
    start_method
        W4's multiprocessing start method.
    """

    system: str
    workload: str
    n: int
    workdir: str
    phase: str = "measure"
    offset: int = 0
    sources: list[str] = field(default_factory=list)
    iterations: int = 0
    start_method: str = "fork"

    def path(self, name: str) -> Path:
        """A path inside the work folder."""
        return Path(self.workdir) / name


@dataclass(slots=True)
class Outcome:
    """What a runner reports.

    Attributes
    ----------
    seconds
        The timed figure (DESIGN §7's definition for the workload).
    files
        The data files written, measured for size and HDF5 nodes after the timing.
    check
        What was verified about the stored data (a failed check raises instead).
    extra
        Further figures: ``close_s``, ``one_s``, ``df_s``, ``work_s``, ``efficiency``...
    status
        ``"ok"``, or ``"not yet measurable"`` when the system lacks the feature.
    version
        The system's version.
    peak_mb
        The peak memory of the process that did the timed work when that is not this
        one (the continuation's script); None: this process's.
    """

    seconds: float
    files: list[str] = field(default_factory=list)
    check: str = ""
    extra: dict[str, float] = field(default_factory=dict)
    status: str = "ok"
    version: str = ""
    peak_mb: float | None = None


def count_nodes(path: str) -> int | None:
    """HDF5 nodes in ``path`` (the root group included), or None for other files."""
    try:
        import tables
    except ImportError:  # pragma: no cover - every benchmark venv has PyTables
        return None
    if not tables.is_hdf5_file(path):
        return None
    with tables.open_file(path, mode="r") as h5:
        return sum(1 for _ in h5.walk_nodes("/"))


def _peak_mb(who: int) -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(who).ru_maxrss / 1024.0


def run_cell(cell: Cell) -> dict[str, Any]:
    """Run one cell here and return the JSON-ready report."""
    wall_start = time.perf_counter()
    report: dict[str, Any] = {
        "cell": asdict(cell),
        "ok": False,
        "python": platform.python_version(),
    }
    try:
        module = importlib.import_module(SYSTEM_MODULES[cell.system])
        runners: dict[str, Callable[[Cell], Outcome]] = module.RUNNERS
        key = cell.workload
        if cell.phase == "prepare":  # W1's input is plain "prepare"; others name theirs
            key = "prepare" if cell.workload == "W1" else f"prepare {cell.workload}"
        unavailable = getattr(module, "unavailable", lambda workload: None)(cell.workload)
        if cell.phase == "probe" or unavailable:
            report.update(ok=True, status=unavailable or "ok", seconds=None)
            return report
        if key not in runners:
            report.update(ok=True, status="not measured", seconds=None)
            return report
        outcome = runners[key](cell)
        from benchmarks.systems.common import timed_peak_mb

        report["peak_mb"] = outcome.peak_mb or timed_peak_mb() or _peak_mb(resource.RUSAGE_SELF)
        report["children_peak_mb"] = _peak_mb(resource.RUSAGE_CHILDREN)
        sizes = [os.path.getsize(f) for f in outcome.files if os.path.exists(f)]
        nodes = [count_nodes(f) for f in outcome.files if os.path.exists(f)]
        report.update(
            ok=True,
            status=outcome.status,
            seconds=outcome.seconds,
            check=outcome.check,
            extra=outcome.extra,
            files=outcome.files,
            file_bytes=sum(sizes) if sizes else None,
            nodes=sum(n for n in nodes if n is not None)
            if any(n is not None for n in nodes)
            else None,
            version=outcome.version,
        )
    except Exception as exc:
        report.update(
            ok=False, error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()
        )
    report["wall"] = time.perf_counter() - wall_start
    return report


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the cell described by the JSON argument, print the report."""
    args = sys.argv[1:] if argv is None else argv
    cell = Cell(**json.loads(args[0]))
    report = run_cell(cell)
    sys.stdout.flush()
    print(RESULT_PREFIX + json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
