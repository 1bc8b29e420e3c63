"""Tables of runs: ``traj.to_dataframe()`` and ``traj.get_from_runs()``.

One row per run (the run index is the index), the explored parameters first, then
each per-run result item that holds one scalar per run, then the run-table fields
asked for. Dtypes are kept: a column stays int64 (bool, float64 ...) where every run
has a value; where some runs lack one, ints and bools become pandas' nullable
``Int64`` / ``boolean`` and floats hold NaN.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from pytraj.errors import NodeNotFoundError, OptionError
from pytraj.leaves.parameter import Parameter
from pytraj.leaves.result import PickleResult, Result
from pytraj.storage.records import STATUS_NAMES
from pytraj.trajectory.query import RunColumns, as_array, short_names
from pytraj.trajectory.views import PerRunView

if TYPE_CHECKING:
    import pandas as pd

    from pytraj.trajectory.trajectory import Trajectory

__all__ = ["INCLUDABLE", "get_from_runs", "scalar_items", "to_dataframe", "wanted_items"]

#: Run-table fields that ``to_dataframe(include=...)`` adds after the value columns.
INCLUDABLE: tuple[str, ...] = ("status", "runtime", "host", "attempt", "start", "finish", "pid")


def scalar_items(traj: Trajectory, *, pickled: bool = True) -> list[tuple[str, Result, str]]:
    """``(column name, leaf, item)`` of every per-run result item, in tree order
    (without ``PickleResult`` leaves unless ``pickled``)."""
    found = []
    for branch in (traj.dpar, traj.res):
        for leaf in branch.iter_leaves():
            if isinstance(leaf, PickleResult) and not pickled:
                continue
            if isinstance(leaf, Result) and leaf.per_run:
                for item in leaf.item_names():
                    name = leaf.full_name if item == leaf.name else f"{leaf.full_name}.{item}"
                    found.append((name, leaf, item))
    return found


def wanted_items(
    traj: Trajectory, results: Iterable[str] | None
) -> list[tuple[str, Result, str, bool]]:
    """The result columns to show; the flag says whether the user named it explicitly."""
    # Pickled values are never one scalar per run: listing them all would unpickle them.
    everything = scalar_items(traj, pickled=results is not None)
    if results is None:
        return [(name, leaf, item, False) for name, leaf, item in everything]
    if isinstance(results, str):
        results = [results]
    chosen: list[tuple[str, Result, str, bool]] = []
    for wanted in results:
        matches = [
            (name, leaf, item, True)
            for name, leaf, item in everything
            if wanted in (name, name.split(".", 1)[1], leaf.full_name, leaf.name)
        ]
        if not matches:
            shown = ", ".join(short_names([name for name, _, _ in everything]).values())
            raise NodeNotFoundError(
                f"trajectory {traj.name!r} has no per-run result {wanted!r}; "
                f"per-run results: {shown or 'none'}"
            )
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def _column(view: PerRunView, n: int) -> Any | None:
    """The item as one cell per run, or None when its values are not scalars."""
    import pandas as pd

    runs, values = view.to_arrays()  # what to_series holds, without building it
    if values.dtype == object:
        if not all(isinstance(v, bool | int | float | complex | str | np.generic) for v in values):
            return None  # arrays, lists ...: not one cell per run
        values = as_array(list(values))
    if len(runs) == n:
        return values
    missing = np.ones(n, dtype=bool)
    missing[runs] = False
    if values.dtype.kind in "iub":
        data = np.zeros(n, dtype=values.dtype)
        data[runs] = values
        if values.dtype.kind == "b":
            return pd.arrays.BooleanArray(data, missing)
        return pd.arrays.IntegerArray(data, missing)
    if values.dtype.kind in "fc":
        out = np.full(n, np.nan, dtype=values.dtype)
        out[runs] = values
        return out
    out = np.full(n, None, dtype=object)
    out[runs] = values
    return out


def to_dataframe(
    traj: Trajectory,
    *,
    results: Iterable[str] | None = None,
    include: Iterable[str] = (),
) -> pd.DataFrame:
    """One row per run (see :meth:`Trajectory.to_dataframe`)."""
    import pandas as pd

    include = [include] if isinstance(include, str) else list(include)
    unknown = [field for field in include if field not in INCLUDABLE]
    if unknown:
        raise OptionError(
            f"to_dataframe(include=...) got {unknown}; run-table fields: {', '.join(INCLUDABLE)}"
        )
    n = len(traj)
    columns: dict[str, Any] = {}
    for leaf in traj.par.iter_leaves():
        if isinstance(leaf, Parameter) and leaf.is_explored:
            stored = leaf.range_array()
            if stored is not None and stored.dtype.kind in "biuf":
                # A stored column of Python numbers is the array as_array would build.
                columns[leaf.full_name] = stored.copy()
            else:
                columns[leaf.full_name] = as_array(leaf.range)
    for name, leaf, item, named in wanted_items(traj, results):
        column = _column(PerRunView(traj, leaf, item), n)
        if column is None:
            if named:
                raise OptionError(
                    f"{name!r} holds arrays or containers, not one scalar per run; read it "
                    f"with traj.get_from_runs({name!r}) or traj.results.{name.split('.', 1)[1]}"
                )
            continue
        columns[name] = column
    if include:
        fields = RunColumns(traj)
        for field in include:
            if field == "pid":
                columns[field] = traj.run_table.rows["pid"]
                continue
            column = fields.get(field)
            if column.runs is None:
                values: Any = column.values
            else:  # start, finish, runtime: NaN for runs that never ran
                values = np.full(n, np.nan)
                values[column.runs] = column.values
            if field == "status":
                values = pd.Categorical(values, categories=list(STATUS_NAMES.values()))
            columns[field] = values
    index = pd.RangeIndex(n, name="idx")
    frame = pd.DataFrame(
        {k: (v.array if isinstance(v, pd.Series) else v) for k, v in columns.items()},
        index=index,
    )
    renamed = short_names([c for c in frame.columns if c not in include])
    return frame.rename(columns=renamed)


def get_from_runs(traj: Trajectory, name: str) -> dict[int, Any]:
    """Run index -> value of one per-run result item (see :meth:`Trajectory.get_from_runs`)."""
    for column, leaf, item in scalar_items(traj):
        if name in (column, column.split(".", 1)[1]) or (
            name in (leaf.full_name, leaf.name) and len(leaf.item_names()) == 1
        ):
            view = PerRunView(traj, leaf, item)
            return dict(zip(view.runs.tolist(), view, strict=True))
    shown = ", ".join(short_names([c for c, _, _ in scalar_items(traj)]).values())
    raise NodeNotFoundError(
        f"trajectory {traj.name!r} has no per-run result {name!r}; per-run results: "
        f"{shown or 'none'}"
    )
