"""The run table of ``pytraj runs`` as plain numpy columns, without pandas.

``traj.to_dataframe()`` gives the same table, but importing pandas costs about a third
of a second at every start of the command (more under load), which is most of what
``pytraj runs FILE --limit 20`` takes on a big file. The columns come from the query
layer (:class:`~pytraj.trajectory.query.RunColumns`), which reads each one once with
numpy; only the rows shown are formatted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pytraj.errors import NodeTypeError, OptionError
from pytraj.leaves import Parameter
from pytraj.trajectory.frames import scalar_items
from pytraj.trajectory.query import RunColumns, short_names

if TYPE_CHECKING:
    from pytraj.trajectory.trajectory import Trajectory

__all__ = ["RunsTable", "runs_table"]

#: Run-table fields ``pytraj runs`` shows after the parameters and results.
FIELDS = ("status", "runtime")


@dataclass
class _Column:
    """One value per run: ``values[i]`` is run i's, meaningful where ``present[i]``."""

    values: np.ndarray
    present: np.ndarray

    def cell(self, idx: int) -> Any:
        if not self.present[idx]:
            return None
        value = self.values[idx]
        return value.item() if isinstance(value, np.generic) else value


@dataclass
class RunsTable:
    """Named columns over the ``n`` runs of a trajectory, in display order."""

    n: int
    columns: dict[str, _Column]

    @property
    def names(self) -> list[str]:
        """The column names, as ``--columns`` and ``--sort`` take them."""
        return list(self.columns)

    def select(self, wanted: list[str]) -> RunsTable:
        """Only the columns ``wanted``, in that order (an unknown name is an error)."""
        unknown = [name for name in wanted if name not in self.columns]
        if unknown:
            raise OptionError(
                f"--columns: no column {', '.join(map(repr, unknown))}; columns: "
                f"{', '.join(self.columns)}"
            )
        return RunsTable(self.n, {name: self.columns[name] for name in wanted})

    def sort(self, runs: np.ndarray, by: str, *, descending: bool) -> np.ndarray:
        """``runs`` ordered by column ``by`` (stable; runs without a value last)."""
        if by == "idx":
            return runs[::-1] if descending else runs
        column = self.columns.get(by)
        if column is None:
            raise OptionError(f"--sort: no column {by!r}; columns: idx, {', '.join(self.columns)}")
        values = column.values[runs]
        present = column.present[runs]
        if values.dtype.kind == "f":
            present = present & ~np.isnan(values)
        kept, missing = runs[present], runs[~present]
        if values.dtype.kind in "biuf":
            key = values[present]
            if descending:
                # Negated rather than reversed: equal values keep their run order.
                key = -key.astype(np.float64) if key.dtype.kind == "b" else -key
            order = np.argsort(key, kind="stable")
            return np.concatenate([kept[order], missing])
        cells = [(column.cell(int(idx)), int(idx)) for idx in kept]
        cells.sort(key=lambda pair: pair[0], reverse=descending)  # stable either way
        return np.concatenate([np.array([idx for _, idx in cells], dtype=np.int64), missing])

    def records(self, runs: np.ndarray) -> list[dict[str, Any]]:
        """One dict per run of ``runs``: ``idx`` and every column (None: no value)."""
        return [
            {"idx": int(idx), **{name: col.cell(int(idx)) for name, col in self.columns.items()}}
            for idx in runs
        ]

    def text(self, runs: np.ndarray) -> str:
        """The rows of ``runs`` as aligned text: a header, an ``idx`` line, one row each."""
        header = ["", *self.columns]
        rows = [[str(int(idx))] for idx in runs]
        for column in self.columns.values():
            cells = [column.cell(int(idx)) for idx in runs]
            missing = "NaN" if column.values.dtype.kind in "fc" else "<NA>"
            for row, cell in zip(rows, _formatted(cells, missing), strict=True):
                row.append(cell)
        width = [
            max([len(header[k]), *(len(row[k]) for row in rows)], default=0)
            for k in range(len(header))
        ]
        width[0] = max(width[0], len("idx"))
        lines = [
            "  ".join(
                cell.ljust(width[0]) if k == 0 else cell.rjust(width[k])
                for k, cell in enumerate(header)
            ),
            "idx",
        ]
        for row in rows:
            lines.append(
                "  ".join(
                    cell.ljust(width[0]) if k == 0 else cell.rjust(width[k])
                    for k, cell in enumerate(row)
                )
            )
        return "\n".join(line.rstrip() for line in lines)


def _formatted(cells: list[Any], missing: str) -> list[str]:
    """A column's shown cells as text; floats as pandas prints them (fixed decimals,
    common trailing zeros dropped; scientific when very large or small)."""
    floats = [c for c in cells if isinstance(c, float) and math.isfinite(c)]
    sizes = [abs(c) for c in floats if c != 0.0]
    fixed = not sizes or (min(sizes) >= 1e-6 and max(sizes) < 1e6)
    texts = [f"{c:.6f}" if fixed else f"{c:.6e}" for c in floats]
    if fixed and texts:
        # Drop the trailing zeros every value has, keeping one decimal.
        drop = min(len(t) - len(t.rstrip("0")) for t in texts)
        drop = min(drop, 5)
        texts = [t[: len(t) - drop] for t in texts]
    shown = iter(texts)
    out = []
    for cell in cells:
        if cell is None:
            out.append(missing)
        elif isinstance(cell, float):
            out.append(next(shown) if math.isfinite(cell) else str(cell).replace("nan", "NaN"))
        else:
            out.append(str(cell))
    return out


def _spread(values: np.ndarray, runs: np.ndarray | None, n: int) -> _Column:
    if runs is None:
        return _Column(values, np.ones(n, dtype=bool))
    present = np.zeros(n, dtype=bool)
    present[runs] = True
    full = (
        np.zeros(n, dtype=values.dtype)
        if values.dtype.kind != "U"
        else np.full(n, "", values.dtype)
    )
    if values.dtype.kind in "fc":
        full = np.full(n, np.nan, dtype=values.dtype)
    elif values.dtype == object:
        full = np.full(n, None, dtype=object)
    full[runs] = values
    return _Column(full, present)


def runs_table(traj: Trajectory, columns: RunColumns) -> RunsTable:
    """Explored parameters, scalar per-run results, status and runtime of every run.

    The same columns, names and order as ``traj.to_dataframe(include=("status",
    "runtime"))``; results that hold arrays or containers (and pickled ones, never read)
    are left out.
    """
    n = len(traj)
    found: dict[str, _Column] = {}
    for leaf in traj.par.iter_leaves():
        if isinstance(leaf, Parameter) and leaf.is_explored:
            column = columns.get(leaf.full_name)
            found[leaf.full_name] = _spread(column.values, column.runs, n)
    for name, _, _ in scalar_items(traj, pickled=False):
        try:
            column = columns.get(name)
        except NodeTypeError:
            continue  # arrays or containers: not one cell per run
        found[name] = _spread(column.values, column.runs, n)
    renamed = short_names(list(found))
    table = {renamed[name]: column for name, column in found.items()}
    for field in FIELDS:
        column = columns.get(field)
        table[field] = _spread(column.values, column.runs, n)
    return RunsTable(n, table)
