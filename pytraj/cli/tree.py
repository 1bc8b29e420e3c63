"""``pytraj tree FILE [PATH]``: the tree of a trajectory with types, shapes and comments."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from pytraj.cli.common import add_file_arguments, open_study, result_items

if TYPE_CHECKING:
    from pytraj.trajectory.trajectory import Trajectory
    from pytraj.tree import Group

__all__ = ["add_parser", "run_tree"]

_EXAMPLES = """\
examples:
  pytraj tree out/study.h5                       the whole tree
  pytraj tree out/study.h5 parameters --depth 1  one branch, one level deep
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tree",
        help="the tree of a trajectory with types and comments",
        description=(
            "Draw the tree of a trajectory (or of the group at PATH): parameters with "
            "their type and default, results with their items, comments after '#'. "
            "Reads the skeleton only and never writes."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_file_arguments(parser)
    parser.add_argument("path", nargs="?", metavar="PATH", help="a group, e.g. results.stats")
    parser.add_argument("--depth", type=int, metavar="N", help="draw at most N levels")
    parser.add_argument(
        "--max-children",
        type=int,
        default=50,
        metavar="N",
        help="children shown per group (default 50; the rest are counted)",
    )
    parser.set_defaults(handler=run_tree)


def run_tree(args: argparse.Namespace) -> int:
    """The handler of ``pytraj tree``."""
    from pytraj.errors import NodeTypeError, OptionError
    from pytraj.tree import Group

    if args.depth is not None and args.depth < 1:
        raise OptionError(f"--depth must be 1 or more, got {args.depth}")
    traj = open_study(args)
    group = traj if args.path is None else traj.node(args.path)
    if not isinstance(group, Group):
        raise NodeTypeError(
            f"{args.path!r} is a leaf, not a group; show its value with "
            f"'pytraj show {args.file} {args.path}'"
        )
    print(
        group.tree(
            max_children=args.max_children,
            max_depth=args.depth,
            comments=True,
            summaries=_per_run_types(traj, group),
        )
    )
    return 0


def _per_run_types(traj: Trajectory, group: Group) -> dict[str, str]:
    """``per run: peak float, steps int`` for each per-run result below ``group``.

    A leaf does not know the type of its per-run values until one is read; one row
    per item is (of the first completed runs), never the columns.
    """
    from pytraj.leaves import Result

    completed = traj.find(status="completed")[:3]
    summaries = {}
    for leaf in group.iter_leaves():
        if isinstance(leaf, Result) and leaf.per_run:
            items = result_items(leaf, completed)
            typed = ", ".join(f"{i['item']} {i['type']}" for i in items)
            summaries[leaf.full_name] = f"per run: {typed}"
    return summaries
