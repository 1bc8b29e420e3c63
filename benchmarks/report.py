"""Tables of a benchmark run: DESIGN §7's targets, PASS/MISS, markdown and JSON.

The summary table has one row per workload x N and a column per system; the details
table one row per system x workload x N with every figure measured. Targets are
judged for pytraj only, from DESIGN §7.
"""

from __future__ import annotations

import json
import platform
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.harness import CellResult, Plan, median_report
from benchmarks.workloads import WORKLOADS

__all__ = ["Criterion", "combine", "evaluate", "load_results", "render_markdown", "save", "to_json"]

#: W1's per-run cost that is required, and the aim (ahead of psweep).
W1_REQUIRED_US = 50.0
W1_AIM_US = 20.0
W1_BYTES_PER_RUN = 100.0
FLAT_FACTOR = 1.5
W2L_FLOOR_FACTOR = 2.0
W4_EFFICIENCY = 0.90
W4DASK_EFFICIENCY = 0.85
W5_LIMITS_S = {10_000: 0.030, 100_000: 0.100}
W6_LIMIT_S = 0.5
W6_FLOOR_FACTOR = 10.0
IMPORT_LIMIT_S = 0.5
#: Issue 11's targets at 1,000,000 runs (``make bench-large``), as ratios to the floor.
MILLION = 1_000_000
W1_MILLION_FLOOR_FACTOR = 20.0
W1_PEAK_FLOOR_FACTOR = 2.0
W5_FLOOR_FACTOR = 3.0
#: Issue 11: one run's z with the file already open (the trajectory loaded).
W5_OPEN_ONE_LIMIT_S = 100e-6
#: Issue 11: W1's and W3's env.run (at every N) and whole study (Environment, explore,
#: env.run, close; from 100,000 runs up) against the floor; W1 at 1,000,000 runs: 20x.
W1_FLOOR_FACTOR = 10.0
W3_FLOOR_FACTOR = 8.0
WHOLE_STUDY_FROM = 100_000
#: Issue 11: W4's CPU per run above the work, against the floor's in the same run.
W4_CPU_FLOOR_FACTOR = 3.0
#: Issue 11: W4's parallel efficiency, or within this many points of the floor's.
W4_ISSUE_EFFICIENCY = 0.95
W4_EFFICIENCY_POINTS = 0.02
#: Issue 11: continuing a 1,000,000-run study starts its first new run within 3 s.
RESUME_LIMIT_S = 3.0


@dataclass(frozen=True, slots=True)
class Criterion:
    """One DESIGN §7 target applied to one row: its wording and whether pytraj meets it."""

    text: str
    passed: bool | None  # None: not measurable in this run

    @property
    def verdict(self) -> str:
        """``PASS``, ``MISS`` or ``n/a``."""
        return {True: "PASS", False: "MISS", None: "n/a"}[self.passed]


class _Index:
    def __init__(self, results: Sequence[CellResult]) -> None:
        self._cells = {(r.system, r.workload, r.n): r for r in results}

    def get(self, system: str, workload: str, n: int) -> CellResult | None:
        return self._cells.get((system, workload, n))

    def figure(self, system: str, workload: str, n: int, key: str) -> float | None:
        cell = self.get(system, workload, n)
        if cell is None or not cell.measured:
            return None
        value = median_report(cell)[key]
        return float(value) if value is not None else None


def evaluate(results: Sequence[CellResult], workload: str, n: int) -> list[Criterion]:
    """The DESIGN §7 targets for pytraj at this workload x N, judged."""
    index = _Index(results)

    def fig(key: str, at: int = n, w: str = workload, system: str = "pytraj") -> float | None:
        return index.figure(system, w, at, key)

    def judge(text: str, value: float | None, ok: Any) -> Criterion:
        return Criterion(text, None if value is None else bool(ok(value)))

    def versus_floor(text: str, key: str, factor: float, floor_key: str = "") -> Criterion:
        pytraj, floor = fig(key), fig(floor_key or key, system="floor")
        ratio = None if pytraj is None or not floor else pytraj / floor
        return judge(f"{text} ≤ {factor:g}x the floor", ratio, lambda v: v <= factor)

    def open_one() -> Criterion:
        """Issue 11: one run's z with the file already open (the trajectory loaded)."""
        limit = W5_OPEN_ONE_LIMIT_S
        text = f"one z with the file open ≤ {limit * 1e6:g} µs"
        return judge(text, fig("open_one_s"), lambda v: v <= limit)

    criteria: list[Criterion] = []
    if n >= MILLION and workload == "W1":
        criteria.append(versus_floor("issue 11: time", "seconds", W1_MILLION_FLOOR_FACTOR))
        criteria.append(
            versus_floor("issue 11: whole study", "study_s", W1_MILLION_FLOOR_FACTOR, "seconds")
        )
        criteria.append(versus_floor("issue 11: peak RSS", "peak_mb", W1_PEAK_FLOOR_FACTOR))
    elif n >= MILLION and workload == "W5":
        criteria.append(versus_floor("issue 11: open + all z", "seconds", W5_FLOOR_FACTOR))
        criteria.append(versus_floor("one z from a fresh open", "one_s", W5_FLOOR_FACTOR))
        criteria.append(open_one())
        criteria.append(versus_floor("DataFrame", "df_s", W5_FLOOR_FACTOR))
    elif workload in {"RESUME", "RESUMEK"}:
        criteria.append(
            judge(
                f"issue 11: first new run (or done) ≤ {RESUME_LIMIT_S:g} s",
                fig("seconds"),
                lambda v: v <= RESUME_LIMIT_S,
            )
        )
    elif workload in {"W1", "W3"} and n < MILLION:
        criteria.extend(_issue_11_study(workload, n, versus_floor))
    if workload == "W1" and n < MILLION:
        criteria.append(
            judge(
                f"≤ {W1_REQUIRED_US:.0f} µs/run", fig("per_run_us"), lambda v: v <= W1_REQUIRED_US
            )
        )
        criteria.append(
            judge(f"aim ≤ {W1_AIM_US:.0f} µs/run", fig("per_run_us"), lambda v: v <= W1_AIM_US)
        )
        if n == 10_000:
            criteria.append(
                judge(
                    f"≤ {W1_BYTES_PER_RUN:.0f} B/run",
                    fig("bytes_per_run"),
                    lambda v: v <= W1_BYTES_PER_RUN,
                )
            )
        smallest = min(WORKLOADS["W1"].sizes)
        if n > smallest and n >= 100_000:
            base, now = fig("per_run_us", smallest), fig("per_run_us")
            flat = None if base is None or now is None else now / base
            criteria.append(
                judge(f"flat: ≤ {FLAT_FACTOR}x the {smallest:,}-run cost", flat, lambda v: v <= 1.5)
            )
            nodes = [fig("nodes", size) for size in WORKLOADS["W1"].sizes]
            known = [v for v in nodes if v is not None]
            constant = None if len(known) < 2 else float(len(set(known)) == 1)
            criteria.append(judge("nodes constant in N", constant, lambda v: v == 1.0))
    elif workload == "W2L":
        pytraj, floor = fig("seconds"), fig("seconds", system="floor")
        ratio = None if pytraj is None or not floor else pytraj / floor
        criteria.append(
            judge(f"≤ {W2L_FLOOR_FACTOR:.0f}x the floor", ratio, lambda v: v <= W2L_FLOOR_FACTOR)
        )
    elif workload in {"W4", "W4spawn"}:
        criteria.append(
            judge(
                f"efficiency ≥ {W4_EFFICIENCY:.0%}",
                fig("efficiency"),
                lambda v: v >= W4_EFFICIENCY,
            )
        )
        criteria.append(
            versus_floor("issue 11: CPU above the work", "cpu_above_s", W4_CPU_FLOOR_FACTOR)
        )
        ours, floors = fig("efficiency"), fig("efficiency", system="floor")
        bar = (
            W4_ISSUE_EFFICIENCY
            if floors is None
            else min(W4_ISSUE_EFFICIENCY, floors - W4_EFFICIENCY_POINTS)
        )
        criteria.append(
            judge(
                f"issue 11: efficiency ≥ {W4_ISSUE_EFFICIENCY:.0%} or within "
                f"{W4_EFFICIENCY_POINTS * 100:.0f} points of the floor's",
                ours,
                lambda v: v >= bar,
            )
        )
    elif workload == "W4dask" and n >= 10_000:
        criteria.append(
            judge(
                f"efficiency ≥ {W4DASK_EFFICIENCY:.0%}",
                fig("efficiency"),
                lambda v: v >= W4DASK_EFFICIENCY,
            )
        )
    elif workload == "W5" and n in W5_LIMITS_S:
        limit = W5_LIMITS_S[n]
        criteria.append(
            judge(f"open + all z ≤ {limit * 1e3:.0f} ms", fig("seconds"), lambda v: v <= limit)
        )
        criteria.append(versus_floor("one z from a fresh open", "one_s", W5_FLOOR_FACTOR))
        criteria.append(open_one())
    elif workload == "W6":
        pytraj, floor = fig("seconds"), fig("seconds", system="floor")
        ratio = None if pytraj is None or not floor else pytraj / floor
        criteria.append(
            judge(f"≤ {W6_FLOOR_FACTOR:.0f}x the floor", ratio, lambda v: v <= W6_FLOOR_FACTOR)
        )
        if n == 100_000:
            criteria.append(
                judge(
                    f"≤ {W6_LIMIT_S:g} s (two 50k files)", fig("seconds"), lambda v: v <= W6_LIMIT_S
                )
            )
    elif workload == "IMPORT":
        criteria.append(
            judge(f"≤ {IMPORT_LIMIT_S} s", fig("seconds"), lambda v: v <= IMPORT_LIMIT_S)
        )
    return criteria


def _issue_11_study(workload: str, n: int, versus_floor: Any) -> list[Criterion]:
    """Issue 11's W1 / W3 targets: ``env.run`` at every N, the whole study from 100k up.

    The floor's time is its whole study already (file, loop, appends, close).
    """
    factor = W1_FLOOR_FACTOR if workload == "W1" else W3_FLOOR_FACTOR
    criteria = [versus_floor("issue 11: env.run", "seconds", factor)]
    if n >= WHOLE_STUDY_FROM:
        criteria.append(versus_floor("issue 11: whole study", "study_s", factor, "seconds"))
    return criteria


# -- rendering ------------------------------------------------------------------------------
def _number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _figure(cell: CellResult | None, per_run: bool) -> str:
    """What a system's column shows for one row."""
    if cell is None:
        return "—"
    if not cell.measured:
        return cell.status
    figures = median_report(cell)
    text = (
        f"{_number(figures['per_run_us'])} µs"
        if per_run
        else f"{_number((figures['seconds'] or 0) * 1e3)} ms"
    )
    if figures["efficiency"] is not None:
        text += f" ({figures['efficiency']:.0%})"
    return text


def _ratio(index: _Index, workload: str, n: int) -> str:
    pytraj = index.figure("pytraj", workload, n, "seconds")
    floor = index.figure("floor", workload, n, "seconds")
    if pytraj is None or not floor:
        return "—"
    return f"{pytraj / floor:.2g}x" if pytraj / floor < 100 else f"{pytraj / floor:,.0f}x"


def _rows(results: Sequence[CellResult]) -> list[tuple[str, int]]:
    seen: dict[tuple[str, int], None] = {}
    for r in results:
        seen.setdefault((r.workload, r.n), None)
    return list(seen)


def summary_table(results: Sequence[CellResult], systems: Sequence[str]) -> str:
    """One row per workload x N: each system's figure, ratio, pytraj's file and memory,
    the target and PASS/MISS."""
    index = _Index(results)
    head = ["workload", "N", *systems, "pytraj/floor", "B/run", "nodes", "peak MB"]
    head += ["target (DESIGN §7)", "result"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for workload, n in _rows(results):
        per_run = WORKLOADS[workload].per_run
        cells = [_figure(index.get(system, workload, n), per_run) for system in systems]
        pytraj = index.get("pytraj", workload, n)
        figures = median_report(pytraj) if pytraj is not None and pytraj.measured else {}
        criteria = evaluate(results, workload, n)
        target = "; ".join(c.text for c in criteria) or "—"
        verdict = "; ".join(c.verdict for c in criteria) or "—"
        row = [workload, f"{n:,}" if n else "—", *cells, _ratio(index, workload, n)]
        row += [
            _number(figures.get("bytes_per_run")),
            _number(figures.get("nodes")),
            _number(figures.get("peak_mb")),
            target,
            verdict,
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def details_table(results: Sequence[CellResult]) -> str:
    """Every measured figure, one row per system x workload x N."""
    index = _Index(results)
    head = ["system", "workload", "N", "reps", "median s", "µs/run", "x floor", "B/run"]
    head += ["nodes", "peak MB", "workers' peak MB", "more", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        f = median_report(r) if r.measured else {}
        floor = index.figure("floor", r.workload, r.n, "seconds")
        ratio = f"{f['seconds'] / floor:.3g}" if f and floor else "—"
        more = []
        for key, label, scale, unit in (
            ("close_s", "close", 1e3, "ms"),
            ("study_s", "whole study", 1e3, "ms"),
            ("one_s", "one z", 1e3, "ms"),
            ("open_one_s", "one z, file open", 1e6, "µs"),
            ("df_s", "DataFrame", 1e3, "ms"),
            ("work_s", "work/run", 1e3, "ms"),
            ("cpu_above_s", "CPU above the work/run", 1e3, "ms"),
            ("imports_s", "lazy imports before the clock", 1e3, "ms"),
            ("base_mb", "peak before the merge", 1, "MB"),
            ("first_run_s", "first new run", 1, "s"),
            ("end_s", "to the end", 1, "s"),
            ("new_runs", "new runs", 1, ""),
        ):
            if f.get(key) is not None:
                more.append(f"{label} {_number(f[key] * scale)} {unit}".rstrip())
        if f.get("efficiency") is not None:
            more.append(f"efficiency {f['efficiency']:.1%}")
        status = r.status + (f" ({r.note})" if r.note else "")
        row = [r.system, r.workload, f"{r.n:,}" if r.n else "—", str(f.get("reps", 0))]
        per_run = f.get("per_run_us") if WORKLOADS[r.workload].per_run else None
        row += [_number(f.get("seconds"), 4), _number(per_run), ratio]
        row += [_number(f.get("bytes_per_run")), _number(f.get("nodes"))]
        row += [_number(f.get("peak_mb")), _number(f.get("children_peak_mb")), ", ".join(more)]
        row += [status]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _meta(plan: Plan, started: float, versions: dict[str, str]) -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": _cpu_count(),
        "elapsed_s": round(time.time() - started, 1),
        "versions": versions,
        "repetitions": plan.repetitions,
        "budget_s": plan.budget,
        "systems": plan.systems,
    }


def _cpu_count() -> int | None:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _versions(results: Sequence[CellResult]) -> dict[str, str]:
    found: dict[str, str] = {}
    for r in results:
        version = r.last("version")
        if version:
            found.setdefault(r.system, str(version))
    return found


def render_markdown(
    results: Sequence[CellResult], plan: Plan, started: float, sources: Sequence[str] = ()
) -> str:
    """The whole report: context, summary table, details table, definitions.

    ``sources`` names the saved runs a combined report was made from.
    """
    meta = _meta(plan, started, _versions(results))
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    origin = (
        f"Combined from {', '.join(sources)} (a later run's cell replaces an earlier one)."
        if sources
        else f"Total {meta['elapsed_s']:.0f} s."
    )
    return "\n".join(
        [
            f"# Benchmarks — {meta['date']} on {meta['host']}",
            "",
            f"{meta['platform']}, Python {meta['python']}, {meta['cpus']} CPUs; {versions}.",
            f"Medians of up to {plan.repetitions} repetitions, each in a fresh process; "
            f"budget {plan.budget:.0f} s per cell. {origin}",
            "",
            summary_table(results, plan.systems),
            "",
            "Figures: µs per run (W5: open + read all z, W6 and W6A: merge, IMPORT, RESUME "
            "and RESUMEK: from starting the script to its first new run, or to its end when "
            "nothing is left to run: in ms); W4 (and "
            "W4dask, on a 2-worker Dask LocalCluster started before the clock) shows "
            "the parallel efficiency = N x (one run's work, measured serially) / (2 workers x "
            "wall). B/run = file size / N; nodes = HDF5 nodes including the root group; peak "
            "MB = the measuring process's maxrss when the timed section ended. pytraj's W1 is "
            "the `env.run` call alone; `close` in the details is the Environment's close "
            "after it. `cut: budget` = predicted or killed beyond the per-cell budget.",
            "",
            "## Details",
            "",
            details_table(results),
            "",
        ]
    )


def to_json(results: Sequence[CellResult], plan: Plan, started: float) -> dict[str, Any]:
    """Everything measured, with the plan and the verdicts."""
    rows = []
    for workload, n in _rows(results):
        rows.append(
            {
                "workload": workload,
                "n": n,
                "criteria": [
                    {"text": c.text, "passed": c.passed} for c in evaluate(results, workload, n)
                ],
            }
        )
    return {
        "meta": _meta(plan, started, _versions(results)),
        "cells": [r.to_json() | {"figures": median_report(r)} for r in results],
        "targets": rows,
    }


def save(
    results: Sequence[CellResult],
    plan: Plan,
    started: float,
    folder: Path,
    *,
    tag: str = "",
    sources: Sequence[str] = (),
) -> tuple[Path, Path]:
    """Write ``<date>-<host>[-tag].md/.json`` and ``latest[-tag].md`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = time.strftime("%Y-%m-%d", time.localtime(started)) + f"-{socket.gethostname()}"
    stem += f"-{tag}" if tag else ""
    markdown = render_markdown(results, plan, started, sources)
    md_path, json_path = folder / f"{stem}.md", folder / f"{stem}.json"
    md_path.write_text(markdown, encoding="utf-8")
    json_path.write_text(json.dumps(to_json(results, plan, started), indent=1), encoding="utf-8")
    (folder / f"latest{'-' + tag if tag else ''}.md").write_text(markdown, encoding="utf-8")
    return md_path, json_path


# -- combining runs -------------------------------------------------------------------------
def load_results(path: Path) -> tuple[list[CellResult], dict[str, Any]]:
    """The cells and meta data of a saved ``.json`` report."""
    data = json.loads(path.read_text(encoding="utf-8"))
    cells = [
        CellResult(c["system"], c["workload"], c["n"], c["status"], c["reps"], c["note"])
        for c in data["cells"]
    ]
    return cells, data["meta"]


def combine(paths: Sequence[Path], systems: Sequence[str]) -> tuple[list[CellResult], Plan]:
    """One result set from several saved runs; a later file's cell replaces an earlier one.

    For a comparison whose systems could not all run at the same time (the rows keep
    the order of first appearance).
    """
    cells: dict[tuple[str, str, int], CellResult] = {}
    repetitions, budget = 1, 0.0
    for path in paths:
        found, meta = load_results(path)
        repetitions = max(repetitions, int(meta["repetitions"]))
        budget = max(budget, float(meta["budget_s"]))
        for cell in found:
            cells[(cell.system, cell.workload, cell.n)] = cell
    order = {s: i for i, s in enumerate(systems)}
    ordered = sorted(
        (c for c in cells.values() if c.system in order),
        key=lambda c: (list(WORKLOADS).index(c.workload), c.n, order[c.system]),
    )
    plan = Plan(list(systems), list(dict.fromkeys(c.workload for c in ordered)), {}, repetitions)
    plan.budget = budget
    return ordered, plan


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.report A.json B.json --systems ... --tag T``: combine runs."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.report", description=combine.__doc__
    )
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--systems", nargs="+", default=["floor", "pytraj", "pypet", "psweep"])
    parser.add_argument("--tag", default="combined")
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    results, plan = combine(args.files, args.systems)
    started = time.time()
    names = [path.name for path in args.files]
    print(render_markdown(results, plan, started, names))
    md_path, json_path = save(results, plan, started, args.results, tag=args.tag, sources=names)
    print(f"saved {md_path} and {json_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
