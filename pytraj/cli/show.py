"""``pytraj show FILE PATH``: one value, printed sensibly (arrays summarised, tables cut)."""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

from pytraj.cli.common import add_file_arguments, describe_value, open_study

__all__ = ["add_parser", "run_show"]

_EXAMPLES = """\
examples:
  pytraj show out/study.h5 parameters.x          a parameter: default and explored values
  pytraj show out/study.h5 results.z             a per-run result: the first runs' values
  pytraj show out/study.h5 results.z --run 3     run 3's value
  pytraj show out/study.h5 results.stats.mean --run 0
"""

#: Runs shown for a per-run result without --run.
SHOWN_RUNS = 10


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "show",
        help="one value: a parameter, a result, one run's value",
        description=(
            "Print one value of a trajectory. Arrays are summarised (shape, dtype, range), "
            "DataFrames shown as tables; pickled values are never read."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_file_arguments(parser)
    parser.add_argument("path", metavar="PATH", help="e.g. parameters.x or results.z")
    parser.add_argument("--run", type=int, metavar="I", help="the value of run I")
    parser.set_defaults(handler=run_show)


def _per_run(path: str, view: Any, total: int) -> str:
    runs = view.runs
    lines = [f"{path}: per-run values, {len(runs)} of {total} runs have one"]
    for idx in runs[:SHOWN_RUNS].tolist():
        text = describe_value(view[idx]).replace("\n", "\n    ")
        lines.append(f"  run {idx}: {text}")
    if len(runs) > SHOWN_RUNS:
        lines.append(f"  ... {len(runs) - SHOWN_RUNS} more (--run I shows run I)")
    return "\n".join(lines)


def run_show(args: argparse.Namespace) -> int:
    """The handler of ``pytraj show``."""
    import numpy as np

    from pytraj.leaves import Parameter, Result
    from pytraj.tree import Group

    traj = open_study(args)
    path = args.path
    if args.run is not None:
        print(describe_value(traj.runs[args.run][path]))
        return 0
    node, item = _resolve(traj, path)
    if isinstance(node, Parameter):
        lines = [f"{node.full_name}: {describe_value(node.default)} (default)"]
        if node.is_explored:
            values = node.range
            array = np.empty(len(values), dtype=object)
            array[:] = list(values)
            with contextlib.suppress(ValueError):  # ragged values stay an object array
                array = np.asarray(values)
            lines.append(f"explored over {len(values)} runs: {describe_value(array)}")
        if node.comment:
            lines.append(f"comment: {node.comment}")
        print("\n".join(lines))
        return 0
    if isinstance(node, Group):
        print(node.tree(comments=True))
        return 0
    assert isinstance(node, Result)
    names = node.item_names()
    if item is None and len(names) == 1:
        item = names[0]
    if item is None:
        items = ", ".join(f"{node.full_name}.{name}" for name in names)
        print(f"{node.full_name}: a result with several items: {items}")
        return 0
    value = node[item]
    if node.per_run:
        print(_per_run(path, value, len(traj)))
        return 0
    print(describe_value(value))
    return 0


def _resolve(traj: Any, path: str) -> tuple[Any, str | None]:
    """The node at ``path``, or a result and one of its items (``results.diag.peak``)."""
    from pytraj.errors import NodeNotFoundError
    from pytraj.leaves import Result

    try:
        return traj.node(path), None
    except NodeNotFoundError:
        owner_path, _, item = path.rpartition(".")
        if owner_path:
            owner = traj.node(owner_path)
            if isinstance(owner, Result) and item in owner.item_names():
                return owner, item
        raise
