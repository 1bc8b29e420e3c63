"""Views over runs: ``traj.runs[i]`` and the per-run view ``traj.results.z``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from pytraj.errors import (
    NodeAttributeError,
    NodeNotFoundError,
    PathTypeError,
    RunValueMissingError,
)
from pytraj.leaves.parameter import Parameter
from pytraj.leaves.result import Result
from pytraj.storage.interface import ColumnData
from pytraj.storage.records import STATUS_NAMES, WRITER_KEY, FailureRecord
from pytraj.trajectory.exploration import parameters_of
from pytraj.trajectory.notebook import per_run_html, run_html, runs_html
from pytraj.tree.node import Group, Node

if TYPE_CHECKING:
    import pandas as pd

    from pytraj.trajectory.trajectory import Trajectory

__all__ = ["PerRunView", "RunNodeView", "RunView", "RunsView"]

_MISSING: Any = object()


def _positions(column: ColumnData, runs: np.ndarray) -> np.ndarray:
    """Positions of ``runs`` (each one the column holds) in ``column.runs``."""
    return np.searchsorted(column.runs, runs)


class PerRunView:
    """The values of one per-run result item across runs (``traj.results.z``).

    ``view[i]`` is run i's value (negative i counts from the last run); a run without
    a value raises :class:`~pytraj.errors.RunValueMissingError` naming its status.
    ``len(view)`` counts the runs that have a value. Slices, lists of run indices and
    boolean masks over all runs give sub-views.
    """

    __slots__ = ("_item", "_leaf", "_selection", "_traj")

    def __init__(
        self, traj: Trajectory, leaf: Result, item: str, selection: np.ndarray | None = None
    ) -> None:
        self._traj = traj
        self._leaf = leaf
        self._item = item
        self._selection = selection  # run indices this view is limited to, or None: all

    @property
    def name(self) -> str:
        """``"results.z"``, or ``"results.stats.mean"`` for one item of several."""
        path = self._leaf.full_name
        return path if self._item == self._leaf.name else f"{path}.{self._item}"

    @property
    def runs(self) -> np.ndarray:
        """Indices of the runs (in this view) that have a value."""
        # Only where the values are, not the values: len() and repr() of a view of
        # large arrays read no array data.
        runs = self._traj.storage.read_column_runs(self._leaf.full_name, self._item)
        if self._selection is None:
            return runs
        return runs[np.isin(runs, self._selection)]

    def _selected(self) -> np.ndarray:
        if self._selection is None:
            return np.arange(len(self._traj))
        return self._selection

    def __len__(self) -> int:
        return len(self.runs)

    def _runs_of(self, column: ColumnData) -> np.ndarray:
        """The runs of this view that ``column`` holds: taken from the column itself, so a
        writer's flush between two reads of a live file cannot make them disagree."""
        if self._selection is None:
            return column.runs
        return column.runs[np.isin(column.runs, self._selection)]

    def __iter__(self) -> Iterator[Any]:
        column = self._traj.column_cache.column(self._leaf.full_name, self._item)
        for idx in self._runs_of(column):
            yield column.value_at(column.position_of(int(idx)))

    @overload
    def __getitem__(self, key: int) -> Any: ...
    @overload
    def __getitem__(self, key: slice | Sequence[int] | np.ndarray) -> PerRunView: ...

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, int | np.integer):
            idx = self._traj.check_index(int(key))
            if self._selection is not None and idx not in self._selection:
                raise RunValueMissingError(f"run {idx} is not part of this view of {self.name}")
            return self._traj.column_cache.cell(self._leaf.full_name, self._item, idx)
        all_runs = self._selected()
        if isinstance(key, slice):
            chosen = np.arange(len(self._traj))[key]
        else:
            array = np.asarray(key)
            if array.dtype == bool:
                if len(array) != len(self._traj):
                    raise IndexError(
                        f"a boolean mask over {self.name} needs {len(self._traj)} entries "
                        f"(one per run), got {len(array)}"
                    )
                chosen = np.flatnonzero(array)
            else:
                chosen = np.array([self._traj.check_index(int(i)) for i in array], dtype=np.int64)
        if self._selection is not None:
            chosen = chosen[np.isin(chosen, all_runs)]
        return PerRunView(self._traj, self._leaf, self._item, np.asarray(chosen, dtype=np.int64))

    def get(self, idx: int, default: Any = None) -> Any:
        """Run ``idx``'s value, or ``default`` when it has none or does not exist.

        Like ``dict.get``: a run index past the end (``view.get(999, 0.0)``) is a
        missing key, not an error.
        """
        if not isinstance(idx, int | np.integer) or isinstance(idx, bool):
            raise PathTypeError(
                f"{self.name}.get() takes a run index (int), got {type(idx).__name__}; "
                "sub-views come from view[a:b], view[[i, j]] or view[mask]"
            )
        if not -len(self._traj) <= int(idx) < len(self._traj):
            return default
        try:
            return self[idx]
        except RunValueMissingError:
            return default

    def to_series(self) -> pd.Series:
        """A pandas Series indexed by run index (only runs with a value)."""
        import pandas as pd

        runs, values = self.to_arrays()
        index = pd.Index(runs, name="idx")
        if values.dtype != object:
            return pd.Series(values, index=index, name=self.name)
        return pd.Series(values, index=index, name=self.name, dtype=object)

    def to_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(runs, values)``: the runs of this view that have a value, ascending, and
        their values (a typed array for a plain numeric column, else an object array of
        the values with their exact types); what :meth:`to_series` is built from."""
        column = self._traj.column_cache.column(self._leaf.full_name, self._item)
        runs = self._runs_of(column)
        if isinstance(column.values, np.ndarray) and column.values.ndim == 1:
            # All of the column's runs: its values as they are (a copy), no search.
            every = runs is column.runs
            taken = column.values.copy() if every else column.values[_positions(column, runs)]
            return runs, taken
        positions = _positions(column, runs)
        values = [column.value_at(int(p)) for p in positions]
        data = np.empty(len(values), dtype=object)
        data[:] = values
        return runs, data

    def to_numpy(self, *, fill: Any = _MISSING) -> np.ndarray:
        """The values as an array, in run order.

        Scalars give a 1-D array, fixed-shape arrays a stacked ``(n, *shape)`` array,
        anything else an object array. Runs without a value raise unless ``fill`` is
        given, which then stands in for them.
        """
        column = self._traj.column_cache.column(self._leaf.full_name, self._item)
        wanted = self._selected()
        if (
            isinstance(column.values, np.ndarray)
            and column.values.ndim >= 1
            and np.array_equal(column.runs, wanted)
        ):
            # Every wanted run has a value, in order (the usual whole column): no search.
            return column.values.copy()
        positions = np.searchsorted(column.runs, wanted)
        positions = np.minimum(positions, max(len(column.runs) - 1, 0))
        present = (
            column.runs[positions] == wanted if len(column.runs) else np.zeros(len(wanted), bool)
        )
        if not present.all() and fill is _MISSING:
            missing = wanted[~present]
            shown = ", ".join(map(str, missing[:10].tolist()))
            raise RunValueMissingError(
                f"{len(missing)} runs have no value for {self.name} ({shown}"
                f"{' ...' if len(missing) > 10 else ''}); pass fill= to stand in for them"
            )
        if isinstance(column.values, np.ndarray) and column.values.ndim >= 1:
            taken = column.values[positions[present]] if present.any() else column.values[:0]
            if present.all():
                return np.asarray(taken)
            dtype = (
                np.result_type(taken.dtype, np.min_scalar_type(fill))
                if np.isscalar(fill)
                else object
            )
            out = np.empty((len(wanted), *taken.shape[1:]), dtype=dtype)
            out[present] = taken
            out[~present] = fill
            return out
        values = [
            column.value_at(int(p)) if ok else fill
            for p, ok in zip(positions, present, strict=True)
        ]
        return _stack(values)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self.to_numpy()
        return array.astype(dtype) if dtype is not None else array

    def __repr__(self) -> str:
        total = len(self._selected())
        return f"<PerRunView {self.name!r} {len(self)} of {total} runs>"

    def _repr_html_(self) -> str:
        return per_run_html(self)


def _stack(values: list[Any]) -> np.ndarray:
    """Stack equal-shape arrays or scalars; anything ragged becomes an object array."""
    if values and all(isinstance(v, np.ndarray) for v in values):
        shapes = {v.shape for v in values}
        dtypes = {v.dtype for v in values}
        if len(shapes) == 1 and len(dtypes) == 1:
            return np.stack(values)
    if values and all(isinstance(v, bool | int | float | complex | np.generic) for v in values):
        return np.asarray(values)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


class RunNodeView:
    """A group of the tree as run ``idx`` sees it (``traj.runs[3].results``)."""

    __slots__ = ("_group", "_idx", "_traj")

    def __init__(self, traj: Trajectory, idx: int, group: Group) -> None:
        self._traj = traj
        self._idx = idx
        self._group = group

    def _value(self, node: Node) -> Any:
        if node.is_link:
            node = node.target  # type: ignore[attr-defined]  # a Link
        if isinstance(node, Group):
            return RunNodeView(self._traj, self._idx, node)
        if isinstance(node, Parameter):
            return node.value_at(self._idx)
        if isinstance(node, Result) and node.per_run:
            names = node.item_names()
            if len(names) == 1:
                return self._traj.column_cache.cell(node.full_name, names[0], self._idx)
            return RunResultView(self._traj, self._idx, node)
        return node.natural_value()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        child = self._group.child(name)
        if child is None:
            child = self._group.find_below(name)
        return self._value(child)

    def __getitem__(self, path: str) -> Any:
        """The value at ``path``; ``"results.diag.peak"`` reaches an item of a result."""
        try:
            node = self._group.node(path)
        except NodeNotFoundError:
            owner_path, _, item = path.rpartition(".")
            owner = self._group.node(owner_path) if owner_path else None
            if isinstance(owner, Result) and item in owner.item_names():
                if owner.per_run:
                    return self._traj.column_cache.cell(owner.full_name, item, self._idx)
                return owner[item]
            raise
        return self._value(node)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._group.keys()))

    def __repr__(self) -> str:
        return f"<run {self._idx} of {self._group!r}>"


class RunResultView:
    """A multi-item per-run result as one run sees it (``traj.runs[3].results.stats``)."""

    __slots__ = ("_idx", "_leaf", "_traj")

    def __init__(self, traj: Trajectory, idx: int, leaf: Result) -> None:
        self._traj = traj
        self._idx = idx
        self._leaf = leaf

    def __getitem__(self, item: str) -> Any:
        if item not in self._leaf.item_names():
            raise NodeAttributeError(f"result {self._leaf.full_name!r} has no item {item!r}")
        return self._traj.column_cache.cell(self._leaf.full_name, item, self._idx)

    def __getattr__(self, item: str) -> Any:
        if item.startswith("_"):
            raise AttributeError(item)
        return self[item]

    def __repr__(self) -> str:
        return f"<run {self._idx} of {self._leaf!r}>"


class RunView(RunNodeView):
    """One run: its index, point id, status and values (``traj.runs[3]``)."""

    __slots__ = ()

    def __init__(self, traj: Trajectory, idx: int) -> None:
        super().__init__(traj, idx, traj)

    @property
    def idx(self) -> int:
        """The run's index."""
        return self._idx

    @property
    def point_id(self) -> str:
        """The stable id of the run's parameter point (32 hex characters)."""
        return self._traj.point_id(self._idx).hex()

    @property
    def status(self) -> str:
        """``"pending"``, ``"completed"`` or ``"failed"``."""
        return STATUS_NAMES[self._traj.run_table.status(self._idx)]

    @property
    def attempt(self) -> int:
        """How many times the run was tried."""
        return int(self._traj.run_table.rows["attempt"][self._idx])

    @property
    def start(self) -> float:
        """When the latest attempt started (UTC epoch seconds, 0 before it ran)."""
        return float(self._traj.run_table.rows["start"][self._idx])

    @property
    def finish(self) -> float:
        """When the latest attempt finished (UTC epoch seconds, 0 before it ran)."""
        return float(self._traj.run_table.rows["finish"][self._idx])

    @property
    def host(self) -> str:
        """The machine that ran it."""
        return self._traj.run_table.host(self._idx)

    @property
    def pid(self) -> int:
        """The process that ran it."""
        return int(self._traj.run_table.rows["pid"][self._idx])

    @property
    def failure(self) -> FailureRecord | None:
        """Why the latest attempt failed (None unless it failed)."""
        return self._traj.run_table.failure(self._idx)

    @property
    def provenance(self) -> dict[str, Any] | None:
        """Where the run was computed: the writer session that stored it (``file`` and
        ``trajectory`` written to, ``host``, ``pid``, ``pytraj`` version, ``executor``,
        ``start``), kept across merges. None when unknown: a manual run, or a file of
        layout 1 (written before pytraj recorded it)."""
        try:
            writer = self._traj.storage.read_cell(*WRITER_KEY, self._idx)
        except KeyError:
            return None
        writers = self._traj.provenance.get("writers", [])
        if not isinstance(writer, int) or not 0 <= writer < len(writers):
            return None
        return dict(writers[writer])

    @property
    def log(self) -> str:
        """Captured log and output of the run, when the study captured them."""
        return self._traj.storage.read_run_log(self._idx)

    def parameters_dict(self) -> dict[str, Any]:
        """Every parameter's value in this run, by full name."""
        return {p.full_name: p.value_at(self._idx) for p in parameters_of(self._traj)}

    def __repr__(self) -> str:
        return f"<Run {self._idx} of {self._traj.name!r} ({self.status})>"

    def _repr_html_(self) -> str:
        return run_html(self)


class RunsView(Sequence[RunView]):
    """All runs of a trajectory as a sequence of :class:`RunView`."""

    __slots__ = ("_traj",)

    def __init__(self, traj: Trajectory) -> None:
        self._traj = traj

    def __len__(self) -> int:
        return len(self._traj)

    @overload
    def __getitem__(self, key: int) -> RunView: ...
    @overload
    def __getitem__(self, key: slice) -> list[RunView]: ...

    def __getitem__(self, key: int | slice) -> RunView | list[RunView]:
        if isinstance(key, slice):
            return [RunView(self._traj, i) for i in range(len(self._traj))[key]]
        return RunView(self._traj, self._traj.check_index(key))

    def __iter__(self) -> Iterator[RunView]:
        for idx in range(len(self._traj)):
            yield RunView(self._traj, idx)

    def where(self, *predicates: str | Callable[[Any], Any], **conditions: Any) -> list[RunView]:
        """The runs matching a query, as :class:`RunView` objects, in run order.

        Takes what :meth:`Trajectory.find` takes: a query string in the documented
        grammar (``traj.runs.where("x >= 2 and not status == 'failed'")``), conditions
        (``traj.runs.where(x__ge=2, z__isnull=False)``) or a callable taking a run.
        """
        return [RunView(self._traj, idx) for idx in self._traj.find(*predicates, **conditions)]

    def to_dataframe(self) -> pd.DataFrame:
        """The run table: status, attempt, start, finish, host, pid and point id per run."""
        import pandas as pd

        table = self._traj.run_table
        rows = table.rows
        hosts = table.hosts
        return pd.DataFrame(
            {
                "status": pd.Categorical(
                    [STATUS_NAMES[int(s)] for s in rows["status"]],
                    categories=list(STATUS_NAMES.values()),
                ),
                "attempt": rows["attempt"].astype(np.int64),
                "start": rows["start"],
                "finish": rows["finish"],
                "host": [hosts[h] if h >= 0 else "" for h in rows["host"]],
                "pid": rows["pid"],
                "point_id": [p.hex() for p in table.point_ids()],
            },
            index=pd.Index(rows["idx"], name="idx"),
        )

    def __repr__(self) -> str:
        return f"<Runs of {self._traj.name!r}: {len(self)}>"

    def _repr_html_(self) -> str:
        return runs_html(self._traj)
