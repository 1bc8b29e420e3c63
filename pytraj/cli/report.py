"""``pytraj report FILE -o report.html``: the HTML report of a study."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pytraj.cli.common import add_file_arguments, open_study

__all__ = ["add_parser", "run_report"]

_EXAMPLES = """\
examples:
  pytraj report out/study.h5 -o report.html
  pytraj report out/study.h5 --name mult -o mult.html --max-rows 500

The report is one self-contained HTML file (nothing is fetched when it opens):
summary, parameters, a plot of each scalar result against the explored parameters,
runtimes, a sortable and filterable run table and the failed runs' tracebacks. It
needs matplotlib: pip install 'pytraj-explore[report]'.
"""


def add_parser(subparsers: Any) -> None:
    from pytraj.report import MAX_ROWS

    parser = subparsers.add_parser(
        "report",
        help="write an HTML report with plots and the run table",
        description="Write the HTML report of a trajectory. Never writes to the study file.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_file_arguments(parser)
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.html")
    parser.add_argument(
        "--max-rows",
        type=int,
        default=MAX_ROWS,
        metavar="N",
        help=f"runs embedded in the run table (default {MAX_ROWS})",
    )
    parser.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace) -> int:
    """The handler of ``pytraj report``."""
    from pytraj.errors import OptionError
    from pytraj.report import write_report

    if args.output.resolve() == args.file.resolve():
        raise OptionError(f"-o {args.output} is the study file itself; choose another file")
    if args.max_rows < 0:
        raise OptionError(f"--max-rows must be 0 or more, got {args.max_rows}")
    traj = open_study(args)
    path = write_report(traj, args.output, source=str(args.file), max_rows=args.max_rows)
    size = path.stat().st_size
    print(f"wrote the report of {traj.name!r} ({len(traj):,} runs) to {path} ({size / 1e3:.0f} KB)")
    return 0
