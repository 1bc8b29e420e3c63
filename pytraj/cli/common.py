"""What the looking subcommands share: the FILE / --name / --index arguments, opening a
study read-only, and printing values and tables for a terminal.

Opening never writes: the file is loaded with ``read_only=True`` (a journal left by a
running or crashed study is laid over the file in memory, not replayed; a line on stderr
says so and how many runs come from it) and
``allow_pickle=False`` (the command never unpickles anything). pytraj itself is
imported inside the functions so that ``pytraj --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytraj.leaves import Result
    from pytraj.storage.hdf5 import JournalStatus
    from pytraj.trajectory.trajectory import Trajectory

__all__ = [
    "add_file_arguments",
    "describe_value",
    "journal_note",
    "open_study",
    "print_json",
    "result_items",
    "trajectory_names",
]


def add_file_arguments(parser: argparse.ArgumentParser, *, pick: bool = True) -> None:
    """FILE, and (with ``pick``) ``--name`` / ``--index`` to choose a trajectory."""
    parser.add_argument("file", metavar="FILE", type=Path, help="a pytraj HDF5 file")
    if pick:
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--name", help="the trajectory's name (default: the newest)")
        group.add_argument(
            "--index",
            type=int,
            help="the trajectory's position in creation order (0: the first, -1: the newest)",
        )


def journal_note(path: Path) -> JournalStatus | None:
    """Print the in-progress line on stderr when a journal is pending; return its status."""
    from pytraj.io import journal_status

    status = journal_status(path)
    if status is not None:
        print(f"note: {status.describe()}", file=sys.stderr)
    return status


def trajectory_names(path: Path) -> list[str]:
    """The trajectories of ``path``, read without writing anything."""
    from pytraj.io import list_trajectories

    return list_trajectories(path, read_only=True)


def open_study(args: argparse.Namespace, *, note: bool = True) -> Trajectory:
    """Load the trajectory ``args`` picks, read-only and without unpickling."""
    from pytraj.io import load

    if note:
        journal_note(args.file)
    index = -1 if getattr(args, "index", None) is None else args.index
    return load(
        args.file,
        getattr(args, "name", None),
        index,
        allow_pickle=False,
        read_only=True,
    )


def plain(value: Any) -> Any:
    """``value`` as something ``json.dumps`` takes (numpy scalars and arrays, NaN ...)."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, complex):
        return [value.real, value.imag]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def print_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout (NaN becomes null, so strict parsers read it)."""
    json.dump(plain(data), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")


def describe_value(value: Any, *, max_rows: int = 20) -> str:
    """A value as a person wants to see it in a terminal: arrays summarised, tables cut."""
    import numpy as np

    type_name = type(value).__module__.split(".")[0]
    if isinstance(value, np.ndarray):
        head = f"array shape={value.shape} dtype={value.dtype}"
        if value.size and value.dtype.kind in "biuf":
            head += f" min={value.min()} max={value.max()} mean={value.mean():.6g}"
        with np.printoptions(threshold=50, edgeitems=3, linewidth=100):
            return f"{head}\n{value}"
    if type_name == "pandas":
        import pandas as pd

        if isinstance(value, pd.DataFrame | pd.Series):
            shape = "x".join(map(str, value.shape))
            kind = type(value).__name__
            return f"{kind} ({shape})\n{value.to_string(max_rows=max_rows)}"
    if type_name == "scipy":
        return f"{type(value).__name__} shape={getattr(value, 'shape', '?')} nnz=" + str(
            getattr(value, "nnz", "?")
        )
    text = repr(value)
    if len(text) > 2000:
        text = text[:2000] + f" ... ({len(text)} characters)"
    return text


def result_items(leaf: Result, completed: Sequence[int]) -> list[dict[str, Any]]:
    """Name, type and shape of each item of ``leaf``, as ``pytraj info`` lists them.

    A per-run item's type is that of its value in the first of the ``completed`` runs
    that has one: one row is read, not the column. Pickled values are never read.
    """
    from pytraj.errors import PytrajError
    from pytraj.leaves import PickleResult
    from pytraj.leaves.values import describe

    items = []
    for item in leaf.item_names():
        name = leaf.full_name if item == leaf.name else f"{leaf.full_name}.{item}"
        entry: dict[str, Any] = {"name": name, "item": item, "type": "?"}
        if isinstance(leaf, PickleResult):
            entry["type"] = "pickled (not read)"
        elif leaf.per_run:
            view = leaf[item]
            for idx in completed:
                try:
                    value = view.get(idx, None)
                except PytrajError:
                    break
                if value is not None:
                    entry["type"] = describe(value)
                    shape = getattr(value, "shape", None)
                    if shape is not None:
                        entry["shape"] = list(shape)
                    break
        else:
            entry["type"] = "trajectory-level"
        items.append(entry)
    return items
