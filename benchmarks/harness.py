"""The process-per-measurement runner: plan, budget, repetitions, medians.

Every measurement is one child process (:mod:`benchmarks.child`) running one system x
workload x N in its own interpreter, so imports, caches and memory of one measurement
never leak into the next, and pypet can run from a different virtual environment.
Repetitions of a cell alternate between systems (floor, pytraj, floor, pytraj, ...):
the machines are shared and noisy, and a ratio of neighbours is steadier than either.

Budget
------
Before a cell runs, its wall time is predicted from the same system x workload at
smaller N (a power law fitted to the last two sizes, exponent between 1 and 2.5); a
cell predicted to exceed the budget is not started and is reported ``cut: budget``.
A child still running when the budget is spent is killed (with its process group)
and reported the same way. A cell whose first repetition took longer than
``long_cell`` seconds is not repeated.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.child import RESULT_PREFIX, Cell
from benchmarks.workloads import WORKLOADS, calibrate_busy_work

__all__ = ["CellResult", "Harness", "Plan", "median_report"]

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Workloads whose inputs the harness prepares in children of their own (phase
#: "prepare"), once per system x N: W5 reads one W1 file of N runs; W6 merges two of N/2
#: runs; W6A two studies of N/2 runs of 1 MB arrays; RESUME / RESUMEK re-run the W1
#: script on its finished file / on its file killed at run N/2.
_NEEDS_INPUT = {"W5", "W6", "W6A", "RESUME", "RESUMEK"}
#: The workload whose prepared file is another's input (default: its own).
_INPUT_KIND = {"W5": "W1", "W6": "W1"}
#: Workloads only one system has.
_ONLY = {"IMPORT": "pytraj"}
#: The multiprocessing start method of each W4 variant.
_START_METHODS = {"W4": "fork", "W4spawn": "spawn"}


@dataclass(slots=True)
class Plan:
    """What to measure and how.

    Attributes
    ----------
    systems
        System names in column order (``"floor"`` first: the ratios' base).
    workloads
        Workload keys, in order.
    sizes
        Workload key -> the N to run it at.
    repetitions
        Repetitions per cell (the median is reported).
    budget
        Seconds one cell (one child) may take.
    long_cell
        A cell whose first repetition took longer runs only once.
    single_rep_from
        System -> N from which it runs once (pypet: 10,000).
    growth_prior
        System -> the exponent of its cost in N assumed while only one smaller N has
        been measured (default 1: linear).
    pythons
        System -> interpreter; default: this one.
    workdir
        Scratch folder for the children's files (removed afterwards).
    """

    systems: list[str]
    workloads: list[str]
    sizes: dict[str, tuple[int, ...]]
    repetitions: int = 3
    budget: float = 600.0
    long_cell: float = 60.0
    single_rep_from: dict[str, int] = field(default_factory=dict)
    growth_prior: dict[str, float] = field(default_factory=dict)
    pythons: dict[str, str] = field(default_factory=dict)
    workdir: Path = Path("out/bench-work")


@dataclass(slots=True)
class CellResult:
    """The outcome of one system x workload x N: status, repetitions, medians."""

    system: str
    workload: str
    n: int
    status: str
    reps: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    @property
    def measured(self) -> bool:
        """Whether at least one repetition produced a time."""
        return self.status == "ok" and bool(self.reps)

    def median(self, key: str) -> float | None:
        """Median of ``key`` (``seconds``, ``peak_mb``, ``extra.efficiency``...) over reps."""
        values = [v for v in (_dig(rep, key) for rep in self.reps) if v is not None]
        return statistics.median(values) if values else None

    def last(self, key: str) -> Any:
        """``key`` of the last repetition (file size and nodes do not vary)."""
        return _dig(self.reps[-1], key) if self.reps else None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form with the medians spelled out."""
        data = asdict(self)
        data["median_seconds"] = self.median("seconds")
        data["median_peak_mb"] = self.median("peak_mb")
        return data


def _dig(data: dict[str, Any], key: str) -> Any:
    value: Any = data
    for part in key.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def median_report(result: CellResult) -> dict[str, Any]:
    """The figures of one cell for the tables (medians over repetitions)."""
    n = result.n
    seconds = result.median("seconds")
    file_bytes = result.last("file_bytes")
    return {
        "seconds": seconds,
        "per_run_us": seconds / n * 1e6 if seconds is not None and n else None,
        "bytes_per_run": file_bytes / n if file_bytes is not None and n else None,
        "file_bytes": file_bytes,
        "nodes": result.last("nodes"),
        "peak_mb": result.median("peak_mb"),
        "children_peak_mb": result.median("children_peak_mb"),
        "efficiency": result.median("extra.efficiency"),
        "work_s": result.median("extra.work_s"),
        "cpu_above_s": result.median("extra.cpu_above_s"),
        "close_s": result.median("extra.close_s"),
        "study_s": result.median("extra.study_s"),
        "one_s": result.median("extra.one_s"),
        "open_one_s": result.median("extra.open_one_s"),
        "df_s": result.median("extra.df_s"),
        "imports_s": result.median("extra.imports_s"),
        "base_mb": result.median("extra.base_mb"),
        "first_run_s": result.median("extra.first_run_s"),
        "end_s": result.median("extra.end_s"),
        "new_runs": result.median("extra.new_runs"),
        "reps": len(result.reps),
    }


class Harness:
    """Run a :class:`Plan` cell by cell; collect :class:`CellResult` objects.

    Parameters
    ----------
    plan
        What to measure.
    log
        Called with one line per event (default: print to stderr).
    """

    def __init__(self, plan: Plan, log: Callable[[str], None] | None = None) -> None:
        self.plan = plan
        self.results: list[CellResult] = []
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._history: dict[tuple[str, str], list[tuple[int, float]]] = {}
        # (system, input kind, N, offset) -> the prepared files, or why there are none
        self._inputs: dict[tuple[str, str, int, int], list[str] | str] = {}
        self._iterations = 0

    # -- the plan --------------------------------------------------------------------
    def run(self) -> list[CellResult]:
        """Measure every cell of the plan; return the results (also in ``self.results``)."""
        workdir = self.plan.workdir
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        if any(w.startswith("W4") for w in self.plan.workloads):
            self._iterations = calibrate_busy_work()
            self._log(f"W4 busy-work: {self._iterations} iterations ~ 5 ms here")
        try:
            for workload in self.plan.workloads:
                for n in self.plan.sizes.get(workload, WORKLOADS[workload].sizes):
                    self._run_row(workload, n)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return self.results

    def _run_row(self, workload: str, n: int) -> None:
        systems = [s for s in self.plan.systems if _ONLY.get(workload, s) == s]
        cells = {s: CellResult(s, workload, n, "ok") for s in systems}
        for system in systems:
            self._check_before(cells[system])
        for rep in range(self.plan.repetitions):
            for system in systems:
                cell = cells[system]
                if cell.status != "ok" or rep >= self._repetitions(cell):
                    continue
                self._measure(cell, rep)
        for system in systems:
            cell = cells[system]
            self.results.append(cell)
            seconds = cell.median("seconds")
            shown = f"{seconds:.4g} s" if seconds is not None else cell.status
            self._log(f"{workload:8} N={n:<7} {system:7} {shown} ({len(cell.reps)} reps)")

    def _repetitions(self, cell: CellResult) -> int:
        limit = self.plan.repetitions
        start = self.plan.single_rep_from.get(cell.system)
        if start is not None and cell.n >= start:
            limit = 1
        if cell.reps and cell.reps[0].get("wall", 0.0) > self.plan.long_cell:
            limit = 1
        return limit

    def _check_before(self, cell: CellResult) -> None:
        """Cut by budget or skip as unsupported before starting any repetition."""
        predicted = self._predict(cell.system, cell.workload, cell.n)
        if predicted is not None and predicted > self.plan.budget:
            cell.status = "cut: budget"
            cell.note = f"predicted {predicted:.0f} s > budget {self.plan.budget:.0f} s"
            self._remember(cell, predicted)
            return
        if cell.workload in _NEEDS_INPUT:
            probe = self._child(Cell(cell.system, cell.workload, cell.n, "", phase="probe"))
            if probe.get("status") not in {None, "ok"}:
                cell.status = str(probe["status"])

    def _predict(self, system: str, workload: str, n: int) -> float | None:
        base = _INPUT_KIND.get(workload, workload)
        points = sorted(p for p in self._history.get((system, base), []) if p[0] < n)
        if not points:
            return None
        n1, wall1 = points[-1]
        exponent = self.plan.growth_prior.get(system, 1.0)
        if len(points) >= 2:
            n0, wall0 = points[-2]
            if wall0 > 0 and n1 > n0:
                exponent = min(2.5, max(1.0, math.log(wall1 / wall0) / math.log(n1 / n0)))
        predicted = wall1 * (n / n1) ** exponent
        if workload == "W5" and (system, "W1", n, 0) in self._inputs:
            return None  # reads W1's file, written already: reading is cheaper than writing
        return predicted

    # -- one repetition ----------------------------------------------------------------
    def _measure(self, cell: CellResult, rep: int) -> None:
        folder = self.plan.workdir / f"{cell.system}-{cell.workload}-{cell.n}-{rep}"
        folder.mkdir(parents=True, exist_ok=True)
        sources = self._inputs_for(cell)
        if sources is None:
            return
        spec = Cell(
            cell.system,
            cell.workload,
            cell.n,
            str(folder),
            sources=sources,
            iterations=self._iterations,
            start_method=_START_METHODS.get(cell.workload, "fork"),
        )
        report = self._child(spec)
        if report.get("status") == "cut: budget":
            cell.status = "cut: budget"
            cell.note = f"killed after {self.plan.budget:.0f} s"
            # A lower bound of its cost: larger N of the same system are cut unstarted.
            self._remember(cell, self.plan.budget)
        elif not report.get("ok"):
            cell.status = "failed"
            cell.note = str(report.get("error", "no report"))
            self._log(f"FAILED {cell.system} {cell.workload} N={cell.n}: {cell.note}")
            self._log(str(report.get("traceback", report.get("output", ""))))
        elif report.get("status") != "ok":
            cell.status = str(report["status"])
        else:
            cell.reps.append(report)
            self._remember(cell, float(report["wall"]))
        keep = cell.workload == "W1" and "W5" in self.plan.workloads and report.get("ok")
        if keep and report.get("files"):
            old = self._inputs.get((cell.system, "W1", cell.n, 0))
            self._inputs[(cell.system, "W1", cell.n, 0)] = report["files"][:1]
            if isinstance(old, list):
                shutil.rmtree(Path(old[0]).parent, ignore_errors=True)
        else:
            shutil.rmtree(folder, ignore_errors=True)

    def _remember(self, cell: CellResult, wall: float) -> None:
        self._history.setdefault((cell.system, cell.workload), []).append((cell.n, wall))

    def _inputs_for(self, cell: CellResult) -> list[str] | None:
        """The input files of a cell (prepared once per system x N); None if cut."""
        if cell.workload not in _NEEDS_INPUT:
            return []
        kind = _INPUT_KIND.get(cell.workload, cell.workload)
        halves = cell.workload in {"W6", "W6A"}
        offsets = (0, cell.n // 2) if halves else (0,)
        size = cell.n // 2 if halves else cell.n
        files: list[str] = []
        for offset in offsets:
            key = (cell.system, kind, size, offset)
            if key not in self._inputs:
                folder = self.plan.workdir / f"input-{cell.system}-{kind}-{size}-{offset}"
                folder.mkdir(parents=True, exist_ok=True)
                spec = Cell(cell.system, kind, size, str(folder), phase="prepare", offset=offset)
                report = self._child(spec)
                if not report.get("ok") or report.get("status") != "ok":
                    cell.status = (
                        "cut: budget" if report.get("status") == "cut: budget" else "failed"
                    )
                    cell.note = f"preparing its input: {report.get('error', report.get('status'))}"
                    self._log(f"FAILED preparing {kind} N={size} for {cell.system}: {cell.note}")
                    self._log(str(report.get("traceback", report.get("output", ""))))
                    self._inputs[key] = cell.status
                    return None
                self._inputs[key] = report["files"][:1]
                self._history.setdefault((cell.system, kind), []).append(
                    (size, float(report["wall"]))
                )
            found = self._inputs[key]
            if isinstance(found, str):
                cell.status = found
                cell.note = "its input could not be prepared"
                return None
            files.extend(found)
        return files

    def _child(self, cell: Cell) -> dict[str, Any]:
        """Run one child process; return its report (or a synthetic failure/cut)."""
        python = self.plan.pythons.get(cell.system, sys.executable)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        command = [python, "-m", "benchmarks.child", json.dumps(asdict(cell))]
        cwd = cell.workdir or str(self.plan.workdir)
        start = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: a cut kills pool workers too
        )
        try:
            output, _ = process.communicate(timeout=self.plan.budget)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            return {"ok": False, "status": "cut: budget", "wall": time.perf_counter() - start}
        for line in reversed(output.splitlines()):
            if line.startswith(RESULT_PREFIX):
                report: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
                return report
        tail = "\n".join(output.splitlines()[-30:])
        return {"ok": False, "error": f"exit code {process.returncode}, no report", "output": tail}


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have ended on its own meanwhile
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
