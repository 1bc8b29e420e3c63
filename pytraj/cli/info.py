"""``pytraj info FILE``: what a file holds, read from its skeleton and run tables only."""

from __future__ import annotations

import argparse
import datetime
from typing import TYPE_CHECKING, Any

from pytraj.cli.common import add_file_arguments, print_json, result_items, trajectory_names

if TYPE_CHECKING:
    from pytraj.trajectory.trajectory import Trajectory

__all__ = ["add_parser", "run_info", "summarise"]

_EXAMPLES = """\
examples:
  pytraj info out/study.h5                 every trajectory in the file
  pytraj info out/study.h5 --name mult     one trajectory
  pytraj info out/study.h5 --json | jq '.trajectories[0].runs'
"""

#: Explored parameters with at most this many distinct values list them all.
MAX_LISTED_VALUES = 10
_PROVENANCE_SHOWN = ("pytraj", "python", "platform", "user", "host", "script", "git_commit")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "info",
        help="what a file holds: trajectories, runs by status, parameters, results",
        description=(
            "Show the trajectories of a pytraj file: run counts by status, parameters "
            "(explored ones with their values or range), results with their types, file "
            "size, provenance, and whether a study is writing the file or crashed. Reads "
            "the skeleton and the run table only, and never writes."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_file_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(handler=run_info)


def _timestamp(seconds: float) -> str:
    if not seconds:
        return "-"
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _explored(values: tuple[Any, ...]) -> dict[str, Any]:
    import numpy as np

    summary: dict[str, Any] = {"n_values": len(values)}
    try:
        distinct = list(dict.fromkeys(values))
    except TypeError:  # unhashable values (arrays, lists): no distinct count
        return summary
    summary["n_distinct"] = len(distinct)
    numbers = [v for v in distinct if isinstance(v, int | float | np.integer | np.floating)]
    if numbers and len(numbers) == len(distinct) and not isinstance(numbers[0], bool):
        summary["min"], summary["max"] = min(numbers), max(numbers)
    if len(distinct) <= MAX_LISTED_VALUES:
        summary["values"] = distinct
    return summary


def summarise(traj: Trajectory) -> dict[str, Any]:
    """Everything ``pytraj info`` says about one trajectory, as plain data."""
    from pytraj.leaves import Parameter, PickleParameter, Result
    from pytraj.leaves.values import describe

    table = traj.run_table
    counts = table.counts()
    rows = table.rows
    done = (rows["start"] > 0) & (rows["finish"] > 0)
    runtimes = (rows["finish"] - rows["start"])[done]
    completed = traj.find(status="completed")[:3]
    parameters = []
    for leaf in traj.par.iter_leaves():
        if not isinstance(leaf, Parameter):
            continue
        if isinstance(leaf, PickleParameter):
            # Never unpickled: the command does not run code from the file.
            entry: dict[str, Any] = {"name": leaf.full_name, "type": "pickled (not read)"}
            entry.update(default=None, comment=leaf.comment, explored=leaf.is_explored)
            parameters.append(entry)
            continue
        entry = {
            "name": leaf.full_name,
            "type": describe(leaf.default),
            "default": leaf.default,
            "comment": leaf.comment,
            "explored": leaf.is_explored,
        }
        if leaf.is_explored:
            entry.update(_explored(leaf.range))
        parameters.append(entry)
    results = []
    for branch in (traj.dpar, traj.res):
        for leaf in branch.iter_leaves():
            if isinstance(leaf, Result):
                results.append(
                    {
                        "name": leaf.full_name,
                        "per_run": leaf.per_run,
                        "comment": leaf.comment,
                        "items": result_items(leaf, completed),
                    }
                )
    provenance = traj.provenance
    return {
        "name": traj.name,
        "comment": traj.comment,
        "created": traj.created,
        "runs": {"total": len(traj), **counts},
        "runtime": {
            "total": float(runtimes.sum()),
            "mean": float(runtimes.mean()) if len(runtimes) else None,
            "min": float(runtimes.min()) if len(runtimes) else None,
            "max": float(runtimes.max()) if len(runtimes) else None,
        },
        "parameters": parameters,
        "results": results,
        "provenance": {k: v for k, v in provenance.items() if k != "previous_sessions"},
    }


def _text(path: str, size: int, journal: Any, summaries: list[dict[str, Any]]) -> str:
    from pytraj.leaves.values import short_repr

    count = f"{len(summaries)} {'trajectory' if len(summaries) == 1 else 'trajectories'}"
    lines = [f"file: {path} ({_size(size)}, {count})"]
    if journal is not None:
        lines.append(f"in progress: {journal.describe()}")
    for summary in summaries:
        runs = summary["runs"]
        by_status = ", ".join(
            f"{runs[s]} {s}" for s in ("completed", "failed", "pending", "running") if runs.get(s)
        )
        lines.append("")
        lines.append(f"trajectory {summary['name']!r}: {runs['total']} runs ({by_status or '-'})")
        if summary["comment"]:
            lines.append(f"  comment: {summary['comment']}")
        lines.append(f"  created: {_timestamp(summary['created'])}")
        runtime = summary["runtime"]
        if runtime["mean"] is not None:
            lines.append(
                f"  runtime: {runtime['total']:.3g} s in all; per run mean {runtime['mean']:.3g} s"
                f" (min {runtime['min']:.3g}, max {runtime['max']:.3g})"
            )
        lines.append("  parameters:")
        width = max((len(p["name"]) for p in summary["parameters"]), default=0)
        for p in summary["parameters"]:
            text = f"    {p['name']:<{width}}  {p['type']:<8} default={short_repr(p['default'])}"
            if p["explored"]:
                if "values" in p:
                    shown = ", ".join(short_repr(v, width=20) for v in p["values"])
                    text += f"  explored: [{shown}]"
                else:
                    text += f"  explored: {p.get('n_distinct', p['n_values'])} distinct values"
                    if "min" in p:
                        text += f" in {short_repr(p['min'])} .. {short_repr(p['max'])}"
            lines.append(text)
        if summary["results"]:
            lines.append("  results:")
            for r in summary["results"]:
                kind = "per run" if r["per_run"] else "trajectory"
                for item in r["items"]:
                    shape = f" shape={tuple(item['shape'])}" if item.get("shape") else ""
                    lines.append(f"    {item['name']}  {item['type']}{shape}  ({kind})")
        facts = {k: v for k, v in summary["provenance"].items() if k in _PROVENANCE_SHOWN}
        if facts:
            lines.append(
                "  provenance: " + ", ".join(f"{k}={short_repr(v)}" for k, v in facts.items())
            )
    return "\n".join(lines)


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def run_info(args: argparse.Namespace) -> int:
    """The handler of ``pytraj info``."""
    from pytraj.cli.common import open_study
    from pytraj.io import journal_status

    path = args.file
    journal = journal_status(path)
    if args.name is None and args.index is None:
        names = trajectory_names(path)
        studies = [
            open_study(argparse.Namespace(file=path, name=name, index=None), note=False)
            for name in names
        ]
    else:
        studies = [open_study(args, note=False)]
    summaries = [summarise(traj) for traj in studies]
    size = path.stat().st_size
    if args.json:
        print_json(
            {
                "file": str(path),
                "size": size,
                "journal": None
                if journal is None
                else {
                    "running": journal.running,
                    "writer": journal.writer,
                    "unflushed": journal.unflushed,
                    "note": journal.describe(),
                },
                "trajectories": summaries,
            }
        )
    else:
        print(_text(str(path), size, journal, summaries))
    return 0
