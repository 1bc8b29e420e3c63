"""``python -m benchmarks``: pytraj against the raw-PyTables floor (``make bench``).

Examples
--------
Full run (all workloads at 1,000 / 10,000 / 100,000 runs, 3 repetitions; about an
hour on 2 cores)::

    python -m benchmarks

A few cells::

    python -m benchmarks --workloads W1 W5 --sizes 1000 10000 --repetitions 1

The test suite's smoke run (tiny N, one repetition, checks the stored data, writes no
results)::

    python -m benchmarks --smoke

At scale (``make bench-large``: W1 and W5 at 1,000,000 runs, the 2 x 1 GB array merge,
continuing a finished and a half-finished 1,000,000-run study; 3 repetitions each, no
single-run cut; saved with the tag ``large``), and its smoke mode::

    python -m benchmarks --large
    python -m benchmarks --large --smoke
"""

from __future__ import annotations

import argparse
import compileall
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.harness import REPO_ROOT, CellResult, Harness, Plan
from benchmarks.report import render_markdown, save
from benchmarks.workloads import LARGE_ONLY, WORKLOADS

__all__ = ["build_parser", "compile_sources", "main", "plan_from", "run_plan", "tag_from"]

RESULTS = REPO_ROOT / "benchmarks" / "results"
#: Seconds one cell (one child) may take: ``make bench`` / ``make bench-large``.
BUDGET = 600.0
LARGE_BUDGET = 3_600.0


def build_parser(prog: str = "python -m benchmarks") -> argparse.ArgumentParser:
    """The command-line options shared by ``benchmarks`` and ``benchmarks.compare``."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny N, 1 repetition, no results saved (the test suite's mode)",
    )
    parser.add_argument(
        "--large",
        action="store_true",
        help="the cells at scale (make bench-large): their sizes, no single-run cut, tag 'large'",
    )
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), metavar="W")
    parser.add_argument(
        "--sizes", nargs="+", type=int, metavar="N", help="run counts (default: per workload)"
    )
    parser.add_argument(
        "--systems",
        nargs="+",
        choices=["floor", "pytraj", "pypet", "psweep"],
        help="systems to run (default: floor and pytraj; compare: all four)",
    )
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help=f"seconds per cell (default {BUDGET:.0f}; --large: {LARGE_BUDGET:.0f})",
    )
    parser.add_argument(
        "--long-cell",
        type=float,
        default=None,
        help="a cell slower than this runs once (default 60; --large: never)",
    )
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "out" / "bench-work")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where tables go")
    parser.add_argument("--no-save", action="store_true", help="print the table only")
    parser.add_argument(
        "--tag", default=None, help="suffix of the saved file names (--large: 'large')"
    )
    return parser


def plan_from(args: argparse.Namespace, systems: list[str]) -> Plan:
    """The plan the options describe."""
    large = bool(getattr(args, "large", False))
    if args.workloads:
        keys = list(args.workloads)
    elif large:
        keys = [k for k, w in WORKLOADS.items() if w.large_sizes]
    else:
        keys = [k for k in WORKLOADS if k not in LARGE_ONLY]
    if args.smoke:
        sizes = {k: WORKLOADS[k].smoke_sizes for k in keys}
    elif args.sizes:
        fixed = {"W2L", "IMPORT", "W6A"}  # their N is part of their definition
        sizes = {k: tuple(args.sizes) if k not in fixed else WORKLOADS[k].sizes for k in keys}
    elif large:
        sizes = {k: WORKLOADS[k].large_sizes or WORKLOADS[k].sizes for k in keys}
    else:
        sizes = {k: WORKLOADS[k].sizes for k in keys}
    budget = args.budget if args.budget is not None else LARGE_BUDGET if large else BUDGET
    long_cell = args.long_cell if args.long_cell is not None else math.inf if large else 60.0
    return Plan(
        systems=systems,
        workloads=keys,
        sizes=sizes,
        repetitions=1 if args.smoke else args.repetitions,
        budget=budget,
        long_cell=long_cell,
        workdir=args.workdir,
    )


def tag_from(args: argparse.Namespace) -> str:
    """The saved files' suffix: ``--tag``, else ``large`` for ``--large``, else none."""
    if args.tag is not None:
        return str(args.tag)
    return "large" if getattr(args, "large", False) else ""


def compile_sources() -> None:
    """Byte-compile pytraj and the benchmarks, as installing a package does.

    The children import from this checkout (an editable install), and with
    ``PYTHONDONTWRITEBYTECODE`` set nothing would ever be cached: every child would
    compile pytraj again inside its timed section.
    """
    for package in ("pytraj", "benchmarks"):
        compileall.compile_dir(REPO_ROOT / package, quiet=1)


def run_plan(plan: Plan, results_folder: Path | None, tag: str = "") -> list[CellResult]:
    """Run ``plan``, print the markdown report, save it unless ``results_folder`` is None."""
    started = time.time()
    compile_sources()
    results = Harness(plan).run()
    print(render_markdown(results, plan, started))
    if results_folder is not None:
        md_path, json_path = save(results, plan, started, results_folder, tag=tag)
        print(f"saved {md_path} and {json_path}", file=sys.stderr)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; exit 1 if a measurement failed (a crash or wrong data)."""
    args = build_parser().parse_args(argv)
    plan = plan_from(args, args.systems or ["floor", "pytraj"])
    folder = None if args.smoke or args.no_save else args.results
    results = run_plan(plan, folder, tag=tag_from(args))
    return 1 if any(r.status == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
