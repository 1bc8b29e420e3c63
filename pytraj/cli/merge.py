"""``pytraj merge A.h5 B.h5 ... -o ALL.h5``: join shards or studies into one file."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser"]

_DESCRIPTION = """\
Merge the trajectories of several files into one trajectory in OUT.

A new OUT starts as a copy of the first input; into an existing OUT every input is
merged. Shards of one study are matched by point id (OUT holds the study once);
different studies with the same parameters are appended. The result is written beside
OUT and renamed into place, so OUT is either unchanged or complete; inputs are only read.
"""


def add_parser(subparsers: Any) -> None:
    """Add the ``merge`` subcommand."""
    parser = subparsers.add_parser(
        "merge",
        help="merge shards or studies into one file",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="FILE", help="the files to merge")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="the merged file")
    parser.add_argument(
        "--name", metavar="T", help="the trajectory to take from each file (default: newest)"
    )
    parser.add_argument(
        "--remove-duplicates",
        action="store_true",
        help="drop runs whose parameter point is present already",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be merged, write nothing"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Merge, then print one summary per input."""
    from pytraj.io import merge_files

    reports = merge_files(
        args.inputs,
        args.output,
        name=args.name,
        remove_duplicates=args.remove_duplicates,
        dry_run=args.dry_run,
    )
    for report in reports:
        print(report.summary())
    if args.dry_run:
        print(f"dry run: {args.output} was not written")
    else:
        print(f"merged {len(args.inputs)} files into {args.output}")
    return 0
