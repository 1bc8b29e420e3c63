"""Questions about runs: which runs match, and a table of all of them."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from pytraj.errors import NodeTypeError, OptionError
from pytraj.leaves.parameter import Parameter
from pytraj.leaves.result import Result

if TYPE_CHECKING:
    import pandas as pd

    from pytraj.trajectory.trajectory import Trajectory

__all__ = ["find_runs", "to_dataframe"]

_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


def _as_array(values: list[Any]) -> np.ndarray:
    if all(isinstance(v, bool | int | float | complex | str | np.generic) for v in values):
        return np.asarray(values)
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _values_over_runs(traj: Trajectory, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One value per run for ``name`` and a mask of the runs that have one."""
    node = traj.node(name)
    n = len(traj)
    if isinstance(node, Parameter):
        values = list(node._range) if node._range is not None else [node.default] * n
        return _as_array(values), np.ones(n, dtype=bool)
    if isinstance(node, Result) and node.per_run:
        names = node.item_names()
        if len(names) != 1:
            raise NodeTypeError(
                f"{node.full_name!r} has items {names}; name one, e.g. "
                f"'{node.full_name}.{names[0]}'"
            )
        view = node[names[0]]
        column = traj._column(node.full_name, names[0])
        present = np.zeros(n, dtype=bool)
        present[column.runs] = True
        return view.to_numpy(fill=np.nan if _numeric(column.values) else None), present
    raise NodeTypeError(f"{node.full_name!r} has no value per run to compare")


def _numeric(values: Any) -> bool:
    return isinstance(values, np.ndarray) and values.dtype.kind in "biuf"


def find_runs(traj: Trajectory, conditions: Mapping[str, Any]) -> list[int]:
    """Indices of runs where every condition holds (see :meth:`Trajectory.find`)."""
    mask = np.ones(len(traj), dtype=bool)
    for key, target in conditions.items():
        name, _, op = key.partition("__")
        op = op or "eq"
        values, present = _values_over_runs(traj, name)
        if op == "in":
            wanted = list(target)
            hit = np.array([value in wanted for value in values], dtype=bool)
        elif op in _OPERATORS:
            compare = _OPERATORS[op]
            if values.dtype != object:
                hit = np.asarray(compare(values, target), dtype=bool)
            else:
                hit = np.array([bool(compare(value, target)) for value in values], dtype=bool)
        else:
            raise OptionError(
                f"unknown operator {op!r} in {key!r}; use one of {', '.join([*_OPERATORS, 'in'])}"
            )
        mask &= hit & present
    return np.flatnonzero(mask).tolist()


def to_dataframe(traj: Trajectory, *, status: bool = False) -> pd.DataFrame:
    """One row per run: explored parameters and per-run scalar result items."""
    import pandas as pd

    n = len(traj)
    index = pd.RangeIndex(n, name="idx")
    columns: dict[str, Any] = {}
    if status:
        columns["status"] = traj.runs.to_dataframe()["status"].to_numpy()
    for leaf in traj.par.iter_leaves():
        if isinstance(leaf, Parameter) and leaf.is_explored:
            columns[leaf.full_name] = _as_array(list(leaf._range or []))
    for branch in (traj.dpar, traj.res):
        for leaf in branch.iter_leaves():
            if not (isinstance(leaf, Result) and leaf.per_run):
                continue
            for item in leaf.item_names():
                series = traj._per_run_item(leaf, item).to_series()
                if series.dtype == object and not all(
                    isinstance(v, bool | int | float | complex | str | np.generic) for v in series
                ):
                    continue  # arrays, lists ...: not one cell per run
                name = leaf.full_name if item == leaf.name else f"{leaf.full_name}.{item}"
                columns[name] = series.reindex(index)
    frame = pd.DataFrame(columns, index=index)
    return frame.rename(columns=_short_names(list(frame.columns)))


def _short_names(names: list[str]) -> dict[str, str]:
    """Drop the branch prefix of each column where the short name stays unique."""
    short = {name: name.split(".", 1)[1] if "." in name else name for name in names}
    counts: dict[str, int] = {}
    for value in short.values():
        counts[value] = counts.get(value, 0) + 1
    return {name: s if counts[s] == 1 else name for name, s in short.items()}
