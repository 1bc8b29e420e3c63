"""``pytraj runs FILE``: the run table with parameters and scalar results, filtered and sorted."""

from __future__ import annotations

import argparse
from typing import Any

from pytraj.cli.common import add_file_arguments, open_study, print_json

__all__ = ["add_parser", "run_runs"]

_EXAMPLES = """\
examples:
  pytraj runs out/study.h5                              the first 50 runs
  pytraj runs out/study.h5 --status failed              the runs that failed
  pytraj runs out/study.h5 --where 'x >= 2 and y < 7'   a query (see below)
  pytraj runs out/study.h5 --sort z --desc --limit 5    the five largest z
  pytraj runs out/study.h5 --columns x,z,runtime --json

--where takes comparisons (== != < <= > >=) of a column with a value, 'in [...]',
'not in [...]', 'is null', 'is not null', combined with and / or / not and
parentheses; strings are quoted: "label == 'a' or (x > 1 and not z is null)". Columns
are parameters, per-run results (items as result.item), and idx, status, attempt,
host, start, finish, runtime.
"""

#: Runs printed when --limit is not given.
DEFAULT_LIMIT = 50


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "runs",
        help="the run table with parameters and scalar results",
        description=(
            "List the runs of a trajectory, one per line: explored parameters, scalar "
            "results, status and runtime. Filter with --status and --where, choose "
            "columns, sort and limit. Never writes to the file."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_file_arguments(parser)
    parser.add_argument(
        "--status", choices=("completed", "failed", "pending"), help="only runs of this status"
    )
    parser.add_argument("--where", metavar="QUERY", help="only runs where QUERY holds")
    parser.add_argument("--columns", metavar="A,B,...", help="the columns to show, comma-separated")
    parser.add_argument("--sort", metavar="COLUMN", help="sort by this column")
    parser.add_argument("--desc", action="store_true", help="sort in descending order")
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"show at most N runs (default {DEFAULT_LIMIT}; 0: all)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(handler=run_runs)


def run_runs(args: argparse.Namespace) -> int:
    """The handler of ``pytraj runs``."""
    from pytraj.cli.columns import runs_table
    from pytraj.errors import OptionError
    from pytraj.trajectory.query import RunColumns, find_runs

    if args.limit < 0:
        raise OptionError(f"--limit must be 0 (all) or more, got {args.limit}")
    traj = open_study(args)
    # One set of columns, read once each, serves the query and the table (no pandas).
    columns = RunColumns(traj)
    conditions = {"status": args.status} if args.status else {}
    matching = find_runs(traj, [args.where] if args.where else [], conditions, columns)
    table = runs_table(traj, columns)
    if args.columns:
        table = table.select([c.strip() for c in args.columns.split(",") if c.strip()])
    if args.sort:
        matching = table.sort(matching, args.sort, descending=args.desc)
    total = len(matching)
    shown = matching[: args.limit] if args.limit else matching
    if args.json:
        print_json(
            {
                "trajectory": traj.name,
                "columns": ["idx", *table.names],
                "matching": total,
                "shown": len(shown),
                "runs": table.records(shown),
            }
        )
        return 0
    if total == 0:
        print(f"no runs of {traj.name!r} match ({len(traj)} runs in all)")
        return 0
    print(table.text(shown))
    if total > len(shown):
        print(f"... {total - len(shown)} more runs match (--limit 0 shows all)")
    return 0
