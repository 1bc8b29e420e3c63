"""The run lifecycle: the life of runs on a trajectory and the values they add.

One path serves every way of running: manual runs (``with traj.start_run(i)``), the
serial Environment and worker processes all :meth:`~RunLifecycle.begin` a run, let the
simulation add per-run values, :meth:`~RunLifecycle.finish` the run into a
:class:`~pytraj.storage.records.RunRecord` and :meth:`~RunLifecycle.commit` records
through the single writer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from pytraj.errors import NodeExistsError, NodeTypeError, RunError, RunValueMissingError
from pytraj.leaves.base import Leaf, leaf_class
from pytraj.leaves.parameter import Parameter
from pytraj.leaves.result import Result
from pytraj.storage.interface import ColumnData, RunTableData, Storage
from pytraj.storage.records import COMPLETED, LeafRecord, RunRecord
from pytraj.storage.runbatch import RunStarts, batch_leaves
from pytraj.trajectory.columncache import ColumnCache
from pytraj.trajectory.exploration import Exploration
from pytraj.trajectory.running import failure_record, finish_record, start_record
from pytraj.trajectory.runtable import RunTable
from pytraj.trajectory.views import PerRunView
from pytraj.tree.names import split_path, validate_name
from pytraj.tree.node import Group, Node

__all__ = ["RestoreRun", "RunHost", "RunLifecycle"]

_Traj = TypeVar("_Traj")
_FLOATS = {float}


class RunHost(Protocol):
    """What the run lifecycle needs of its trajectory."""

    @property
    def name(self) -> str: ...

    @property
    def par(self) -> Group: ...

    @property
    def storage(self) -> Storage: ...

    @property
    def run_table(self) -> RunTable: ...

    @property
    def exploration(self) -> Exploration: ...

    @property
    def column_cache(self) -> ColumnCache: ...

    @property
    def definition_dirty(self) -> bool: ...

    def mark_definition_changed(self) -> None: ...

    def store_definition(self) -> None: ...

    def check_index(self, idx: int) -> int: ...

    def node_at(self, full: str) -> Node | None: ...

    def require_group(self, path: str) -> Group: ...


class RunLifecycle:
    """The runs of one trajectory: the active run, the current index, the commit of records.

    Owns the run in progress (its :class:`~pytraj.storage.records.RunRecord`, filled as
    the run goes), the index the trajectory is set to, the per-run leaves the active runs
    resolved (name -> leaf, the hot path of ``add_result``) and whether every parameter is
    locked already.
    """

    __slots__ = (
        "_active",
        "_current_idx",
        "_host",
        "_parameters_locked",
        "_per_run_nodes",
        "_plans",
        "_single_items",
        "_wheres",
    )

    def __init__(self, host: RunHost) -> None:
        self._host = host
        self._active: RunRecord | None = None
        self._current_idx = -1
        # Hot-path caches for runs: every parameter locked already; name -> per-run leaf.
        self._parameters_locked = False
        self._per_run_nodes: dict[tuple[str, str], tuple[Result, str]] = {}
        # (branch, path) -> (leaf, item names, keys, item names as a set) of the items a
        # plain Result got last time (add_per_run's path for the same float items again).
        self._plans: dict[
            tuple[str, str],
            tuple[Result, tuple[str, ...], tuple[tuple[str, str], ...], frozenset[str]],
        ] = {}
        # (branch, path) -> (leaf, item, (full name, item), where) of single-value adds.
        self._single_items: dict[
            tuple[str, str], tuple[Result, str, tuple[str, str], str, bool]
        ] = {}
        # (full name, item) -> the text errors name a value by (built once, not per run).
        self._wheres: dict[tuple[str, str], str] = {}

    # -- state ---------------------------------------------------------------------
    @property
    def active(self) -> RunRecord | None:
        """The run in progress, or None."""
        return self._active

    @property
    def current_idx(self) -> int:
        """Index of the run the trajectory is set to, -1 when none."""
        return self._current_idx

    def set_run(self, idx: int | None) -> int:
        """Set the trajectory to run ``idx`` (None: the defaults) outside runs; returns the
        index it was set to before."""
        if self._active is not None:
            raise RunError(f"run {self._active.idx} is in progress; finish it first")
        previous = self._current_idx
        self._current_idx = -1 if idx is None else self._host.check_index(idx)
        return previous

    def restore_run(self, idx: int) -> None:
        """Set the current index back to ``idx`` (leaving a ``with traj.set_run(...)`` block)."""
        self._current_idx = idx

    def ensure_idle(self, action: str) -> None:
        """Raise RunError naming ``action`` when a run is in progress."""
        if self._active is not None:
            raise RunError(f"cannot {action} while run {self._active.idx} is in progress")

    def forget_nodes(self) -> None:
        """The tree changed: drop the resolved per-run leaves and unlock the parameters."""
        self._per_run_nodes.clear()
        self._plans.clear()
        self._single_items.clear()
        self._wheres.clear()
        self._parameters_locked = False

    def parameters_changed(self) -> None:
        """A parameter was added: lock every parameter again at the next run."""
        self._parameters_locked = False

    # -- one run -------------------------------------------------------------------
    def begin(self, idx: int) -> RunRecord:
        """Start run ``idx``: set the current point, lock the parameters, return its record
        (the run's values go into it; :meth:`finish` completes it)."""
        if self._active is not None:
            raise RunError(f"run {self._active.idx} is in progress; runs cannot nest")
        host = self._host
        table = host.run_table
        if type(idx) is not int or not 0 <= idx < len(table):
            idx = host.check_index(idx)  # a negative or numpy index, or an error
        status, point_id, attempt = table.start_info(idx)
        if status == COMPLETED:
            raise RunError(
                f"run {idx} of {host.name!r} is completed already; completed runs are not "
                "run again (expand the trajectory to add points)"
            )
        exploration = host.exploration
        if not exploration.ids_valid:
            exploration.ensure_point_ids()
            point_id = table.point_id(idx)
        if not self._parameters_locked:
            self._lock_parameters()
        state = start_record(idx, point_id, attempt)
        self._active = state
        self._current_idx = idx
        return state

    def prepare_runs(self, indices: Sequence[int]) -> RunStarts | None:
        """Read what the runs ``indices`` start from, once for all of them (the serial
        runner's lane; :meth:`enter` starts each). None when they are not distinct run
        indices of this trajectory (the runner then uses :meth:`begin`, which says why)."""
        host = self._host
        n = len(host.run_table)
        if self._active is not None or not len(indices):
            return None
        if type(indices) is range:
            if indices.step != 1 or indices.start < 0 or indices.stop > n:
                return None
            where: np.ndarray | slice = slice(indices.start, indices.stop)
            index_array: np.ndarray | None = None
            listed: Sequence[int] = indices
        else:
            if any(type(idx) is not int for idx in indices):
                return None  # numpy indices: begin() makes them ints
            index_array = np.array(indices, dtype=np.int64)
            if index_array.min() < 0 or index_array.max() >= n:
                return None
            increasing = bool(np.all(index_array[1:] > index_array[:-1]))
            if not increasing and len(np.unique(index_array)) != len(index_array):
                return None
            where, listed = index_array, indices
        exploration = host.exploration
        if not exploration.ids_valid:
            exploration.ensure_point_ids()
        status, point_ids, attempts = host.run_table.start_infos(where)
        completed = frozenset(np.flatnonzero(status == COMPLETED).tolist())
        first = int(attempts[0])
        same = bool(np.all(attempts == first))
        return RunStarts(listed, index_array, point_ids, first if same else attempts, completed)

    def enter(self, record: RunRecord) -> None:
        """Start run ``record.idx`` with ``record`` as its record (:meth:`begin` for a run
        whose status and point id :meth:`prepare_runs` read already); the run's values go
        into ``record.values``, :meth:`leave` or :meth:`finish` ends it."""
        if self._active is not None:
            raise RunError(f"run {self._active.idx} is in progress; runs cannot nest")
        if not self._parameters_locked:
            self._lock_parameters()
        self._active = record
        self._current_idx = record.idx

    def leave(self) -> None:
        """End the run :meth:`enter` started (its record holds what it added)."""
        self._active = None
        self._current_idx = -1

    def _lock_parameters(self) -> None:
        for leaf in self._host.par.iter_leaves():
            if isinstance(leaf, Parameter):
                leaf.lock()
        self._parameters_locked = True

    def finish(self, state: RunRecord, exc: BaseException | None = None) -> RunRecord:
        """End a run: the record of a completed attempt, or a failed one when ``exc`` is given."""
        self._active = None
        self._current_idx = -1
        failure = None if exc is None else failure_record(state.idx, state.attempt, exc, state.log)
        return finish_record(state, failure)

    def abandon(self) -> None:
        """Drop the active run without a record (an interrupt): it stays pending."""
        self._active = None
        self._current_idx = -1

    # -- committing ----------------------------------------------------------------
    def commit(self, records: Sequence[RunRecord]) -> None:
        """Enter finished runs into the tree, the run table and storage (one writer)."""
        host = self._host
        for leaf in batch_leaves(records):
            self.learn_leaf(leaf)
        storage = host.storage
        if host.definition_dirty and storage.writable:
            host.store_definition()
        storage.commit_runs(records)
        host.run_table.record_all(records)
        host.column_cache.changed()

    def commit_columns(
        self,
        table: RunTableData,
        columns: Mapping[tuple[str, str], ColumnData],
        leaves: Sequence[LeafRecord] = (),
    ) -> None:
        """Enter finished runs in bulk, column by column (a merge): the columnar form of
        :meth:`commit`, whose leaves the caller has created already."""
        host = self._host
        if host.definition_dirty and host.storage.writable:
            host.store_definition()
        host.storage.append_columns(table, columns, leaves)
        host.run_table.enter(table)
        host.column_cache.changed()

    def learn_leaf(self, record: LeafRecord) -> None:
        """Create or extend the per-run leaf a run record declares."""
        node = self._host.node_at(record.path)
        if node is None:
            self.create_leaf(record.path, record.leaf_class, record.comment, list(record.items))
            return
        if not isinstance(node, Result) or not node.per_run:
            raise NodeTypeError(
                f"a run produced per-run values for {record.path!r}, which is a "
                f"trajectory-level {type(node).__name__}"
            )
        if node.declare_items(record.items):
            self._host.mark_definition_changed()

    def create_leaf(
        self, full: str, class_name: str, comment: str, item_names: list[str]
    ) -> Result:
        """Create the per-run leaf at ``full`` (a registered Result class) in the tree."""
        cls = leaf_class(class_name)
        if not issubclass(cls, Result):
            raise NodeTypeError(f"per-run leaves must be Results, got {class_name}")
        parts = full.split(".")
        leaf = cls(parts[-1], comment=comment, per_run=True)
        leaf.declare_items(item_names)
        parent = self._host.require_group(".".join(parts[:-1]))
        parent.attach(leaf)
        self._host.mark_definition_changed()
        return leaf

    # -- per-run values --------------------------------------------------------------
    def add_per_run(
        self,
        branch: str,
        path: str,
        items: Mapping[str, Any],
        *,
        comment: str,
        cls: type[Leaf],
    ) -> Any:
        """Add per-run ``items`` under ``branch.path`` in the active run (the leaf once)."""
        cached = self._per_run_nodes.get((branch, path))
        if cached is None:
            parts = split_path(path)
            if parts[0] == branch and len(parts) > 1:
                parts = parts[1:]
            full = ".".join((branch, *parts))
            existing = self._host.node_at(full)
            if existing is None:
                # Check the first values on a detached leaf before the tree gets the node: a
                # refused value must not leave an empty per-run result behind.
                probe = cls(parts[-1], comment=comment)
                for item, value in items.items():
                    validate_name(item, parent=full)
                    probe.check_value(value, f"{full}[{item!r}]")
                existing = self.create_leaf(full, cls.__name__, comment, [])
            elif not isinstance(existing, Result) or not existing.per_run:
                raise NodeTypeError(
                    f"{full!r} is a trajectory-level {type(existing).__name__}; a name is "
                    "either per run or for the whole trajectory. Use another name inside runs"
                )
            cached = self._per_run_nodes[(branch, path)] = (existing, full)
        node, full = cached
        state = self._active
        if state is None:
            for item, value in items.items():
                self.set_value(node, item, value, full)  # raises: no run is active
            return node
        plan = self._plans.get((branch, path))
        if (
            plan is not None
            and plan[0] is node
            and tuple(items) == plan[1]
            and state.values.keys().isdisjoint(plan[2])
            and node.raw_items.keys() >= plan[3]
            and {*map(type, items.values())} == _FLOATS
        ):
            # The same float items as before, all declared, none added yet (W3's ten
            # scalars per run): a float always is storable in a plain Result.
            state.values.update(zip(plan[2], items.values(), strict=True))
            return node
        # set_value inlined for items the leaf knows and the run has not added yet (W3's
        # ten scalars per run); anything else goes through set_value, which says why.
        values, declared, wheres = state.values, node.raw_items, self._wheres
        check = node.check_value
        plain = type(node).check_value is Leaf.check_value
        for item, value in items.items():
            key = (full, item)
            where = wheres.get(key)
            if where is None or key in values or item not in declared:
                self.set_value(node, item, value, full)
                continue
            if not plain or type(value) is not float:  # a float always is storable
                check(value, where)
            values[key] = value
        if plain:
            names = tuple(items)
            self._plans[(branch, path)] = (
                node,
                names,
                tuple((full, item) for item in names),
                frozenset(names),
            )
        return node

    def add_single(
        self, branch: str, path: str, value: Any, *, comment: str, cls: type[Leaf]
    ) -> Any:
        """``add_result("z", value)`` in the active run: :meth:`add_per_run` with one item
        named after the path's last part, through a cache of what the first call resolved
        (the leaf, the value's key and the text errors name it by)."""
        cached = self._single_items.get((branch, path))
        state = self._active
        if cached is None or state is None or cached[1] not in cached[0].raw_items:
            node = self.add_per_run(
                branch, path, {split_path(path)[-1]: value}, comment=comment, cls=cls
            )
            item = split_path(path)[-1]
            full = self._per_run_nodes[(branch, path)][1]
            where = f"{full}[{item!r}]"
            plain = type(node).check_value is Leaf.check_value
            self._single_items[(branch, path)] = (node, item, (full, item), where, plain)
            return node
        leaf, _, key, where, plain = cached
        if key in state.values:
            raise NodeExistsError(f"{where} in run {state.idx} was added already")
        if not plain or type(value) is not float:  # a float always is storable in a Result
            leaf.check_value(value, where)
        state.values[key] = value
        return leaf

    def set_value(self, leaf: Result, item: str, value: Any, full: str | None = None) -> None:
        """Add run-local value ``item`` of per-run ``leaf`` (the hot path of every run).

        The run's record declares a leaf (class, comment, items) only when this tree
        learned something new about it in this run; a writer learns it from the first
        record that uses it, and a worker's first record always carries it.
        """
        state = self._active
        full = full or leaf.full_name
        if state is None:
            raise RunError(
                f"{full!r} holds one value per run; set it inside a run (traj.start_run or env.run)"
            )
        key = (full, item)
        if key in state.values:
            raise NodeExistsError(f"{full}[{item!r}] in run {state.idx} was added already")
        where = self._wheres.get(key)
        if where is None:
            where = self._wheres[key] = f"{full}[{item!r}]"
        leaf.check_value(value, where)
        if item not in leaf.raw_items:
            validate_name(item, parent=full)
            leaf.declare_items((item,))
            spec = next((known for known in state.leaves if known.path == full), None)
            if spec is None:
                spec = LeafRecord(
                    path=full,
                    leaf_class=type(leaf).__name__,
                    comment=leaf.comment,
                    per_run=True,
                    pickled=leaf.pickles_values,
                )
                state.leaves.append(spec)
            spec.items.update(dict.fromkeys(leaf.raw_items))
            self._host.mark_definition_changed()
        state.values[key] = value

    def value(self, leaf: Result, item: str) -> Any:
        """``traj.results.z``: this run's value in a run, else a per-run view."""
        state = self._active
        key = (leaf.full_name, item)
        if state is not None:
            if key in state.values:
                return state.values[key]
            raise RunValueMissingError(
                f"run {state.idx} has not added {leaf.full_name}[{item!r}] yet; other runs' "
                f"values are in traj.runs[i].{leaf.full_name}"
            )
        if self._current_idx >= 0:
            return self._host.column_cache.cell(leaf.full_name, item, self._current_idx)
        return PerRunView(self._host, leaf, item)  # type: ignore[arg-type]  # a Trajectory


class RestoreRun(Generic[_Traj]):
    """Returned by ``traj.set_run``; restores the previous run on exit."""

    __slots__ = ("_lifecycle", "_previous", "_traj")

    def __init__(self, traj: _Traj, lifecycle: RunLifecycle, previous: int) -> None:
        self._traj = traj
        self._lifecycle = lifecycle
        self._previous = previous

    def __enter__(self) -> _Traj:
        return self._traj

    def __exit__(self, *exc_info: object) -> None:
        self._lifecycle.restore_run(self._previous)
