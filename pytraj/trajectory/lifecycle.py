"""Running: the life of runs on a trajectory and the values they add.

One path serves every way of running: manual runs (``with traj.start_run(i)``), the
serial Environment and worker processes all open a run, let the simulation add per-run
values, close the run into a :class:`~pytraj.storage.records.RunRecord` and commit
records through the single writer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytraj.errors import NodeExistsError, NodeTypeError, RunError, RunValueMissingError
from pytraj.leaves.base import Leaf, leaf_class
from pytraj.leaves.parameter import Parameter
from pytraj.leaves.result import Result
from pytraj.storage.interface import ColumnData, RunTableData
from pytraj.storage.records import COMPLETED, STATUS_NAMES, LeafRecord, RunRecord
from pytraj.trajectory import exploration
from pytraj.trajectory.running import RunState, failure_record
from pytraj.tree.names import split_path, validate_name

if TYPE_CHECKING:
    from pytraj.trajectory.trajectory import Trajectory

__all__ = [
    "abandon_run",
    "add_per_run",
    "cell",
    "close_run",
    "column",
    "commit_records",
    "create_per_run_leaf",
    "learn_per_run_leaf",
    "open_run",
    "per_run_item",
    "per_run_set",
]


def add_per_run(
    traj: Trajectory,
    branch: str,
    path: str,
    items: Mapping[str, Any],
    *,
    comment: str,
    cls: type[Leaf],
) -> Any:
    """Add per-run ``items`` under ``branch.path`` in the active run (creating the leaf once)."""
    state = traj._active_run
    assert state is not None  # callers check
    cached = traj._per_run_nodes.get((branch, path))
    if cached is None:
        parts = split_path(path)
        if parts[0] == branch and len(parts) > 1:
            parts = parts[1:]
        full = ".".join((branch, *parts))
        existing = traj._existing(full)
        if existing is None:
            # Check the first values on a detached leaf before the tree gets the node: a
            # refused value must not leave an empty per-run result behind.
            probe = cls(parts[-1], comment=comment)
            for item, value in items.items():
                validate_name(item, parent=full)
                probe.check_value(value, f"{full}[{item!r}]")
            existing = traj._create_per_run_leaf(full, cls.__name__, comment, [])
        elif not isinstance(existing, Result) or not existing.per_run:
            raise NodeTypeError(
                f"{full!r} is a trajectory-level {type(existing).__name__}; a name is "
                "either per run or for the whole trajectory. Use another name inside runs"
            )
        cached = traj._per_run_nodes[(branch, path)] = (existing, full)
    node, full = cached
    for item, value in items.items():
        traj._per_run_set(node, item, value, full)
    return node


def create_per_run_leaf(
    traj: Trajectory, full: str, class_name: str, comment: str, item_names: list[str]
) -> Result:
    """Create the per-run leaf at ``full`` (a registered Result class) in the tree."""
    cls = leaf_class(class_name)
    if not issubclass(cls, Result):
        raise NodeTypeError(f"per-run leaves must be Results, got {class_name}")
    parts = full.split(".")
    leaf = cls(parts[-1], comment=comment, per_run=True)
    leaf._items = dict.fromkeys(item_names)
    parent = traj.require_group(".".join(parts[:-1]))
    parent._attach(leaf)
    traj._definition_dirty = True
    return leaf


def open_run(traj: Trajectory, idx: int) -> RunState:
    """Start run ``idx``: set the current point, lock the parameters, return its state."""
    if traj._active_run is not None:
        raise RunError(f"run {traj._active_run.idx} is in progress; runs cannot nest")
    idx = traj._check_index(idx)
    if traj._run_table.status(idx) == COMPLETED:
        raise RunError(
            f"run {idx} of {traj.name!r} is completed already; completed runs are not "
            "run again (expand the trajectory to add points)"
        )
    exploration.ensure_point_ids(traj)
    if not traj._parameters_locked:
        for leaf in traj._branch("parameters").iter_leaves():
            if isinstance(leaf, Parameter):
                leaf.lock()
        traj._parameters_locked = True
    state = RunState(idx, traj._run_table.point_id(idx), traj._run_table.next_attempt(idx))
    traj._active_run = state
    traj._current_idx = idx
    return state


def close_run(traj: Trajectory, state: RunState, exc: BaseException | None = None) -> RunRecord:
    """End a run: the record of a completed attempt, or a failed one when ``exc`` is given."""
    traj._active_run = None
    traj._current_idx = -1
    failure = None if exc is None else failure_record(state.idx, state.attempt, exc, state.log)
    return state.finish(failure)


def abandon_run(traj: Trajectory) -> None:
    """Drop the active run without a record (an interrupt): it stays pending."""
    traj._active_run = None
    traj._current_idx = -1


def commit_records(traj: Trajectory, records: list[RunRecord]) -> None:
    """Enter finished runs into the tree, the run table and storage (one writer)."""
    for record in records:
        for leaf in record.leaves:
            learn_per_run_leaf(traj, leaf)
    if traj._definition_dirty and traj._storage.writable:
        traj.store_definition()
    traj._storage.commit_runs(records)
    for record in records:
        traj._run_table.record(record)
    traj._data_version += 1


def commit_columns(
    traj: Trajectory,
    table: RunTableData,
    columns: Mapping[tuple[str, str], ColumnData],
    leaves: Sequence[LeafRecord] = (),
) -> None:
    """Enter finished runs in bulk, column by column (a merge): the columnar form of
    :func:`commit_records`, whose leaves the caller has created already."""
    if traj._definition_dirty and traj._storage.writable:
        traj.store_definition()
    traj._storage.append_columns(table, columns, leaves)
    traj._run_table.enter(table)
    traj._data_version += 1


def learn_per_run_leaf(traj: Trajectory, record: LeafRecord) -> None:
    """Enter finished runs into the tree, the run table and storage (the one writer)."""
    node = traj._existing(record.path)
    if node is None:
        traj._create_per_run_leaf(
            record.path, record.leaf_class, record.comment, list(record.items)
        )
        return
    if not isinstance(node, Result) or not node.per_run:
        raise NodeTypeError(
            f"a run produced per-run values for {record.path!r}, which is a "
            f"trajectory-level {type(node).__name__}"
        )
    for item in record.items:
        if item not in node._items:
            node._items[item] = None
            traj._definition_dirty = True


# -- per-run values --------------------------------------------------------------
def per_run_set(
    traj: Trajectory, leaf: Result, item: str, value: Any, full: str | None = None
) -> None:
    """Add run-local value ``item`` of per-run ``leaf`` (the hot path of every run).

    The run's record declares a leaf (class, comment, items) only when this tree
    learned something new about it in this run; a writer learns it from the first
    record that uses it, and a worker's first record always carries it.
    """
    state = traj._active_run
    full = full or leaf.full_name
    if state is None:
        raise RunError(
            f"{full!r} holds one value per run; set it inside a run (traj.start_run or env.run)"
        )
    key = (full, item)
    if key in state.values:
        raise NodeExistsError(f"{full}[{item!r}] in run {state.idx} was added already")
    leaf.check_value(value, f"{full}[{item!r}]")
    if item not in leaf._items:
        validate_name(item, parent=full)
        leaf._items[item] = None
        spec = state.leaves.get(full)
        if spec is None:
            spec = state.leaves[full] = LeafRecord(
                path=full,
                leaf_class=type(leaf).__name__,
                comment=leaf.comment,
                per_run=True,
                pickled=leaf.pickles_values,
            )
        spec.items.update(dict.fromkeys(leaf._items))
        traj._definition_dirty = True
    state.values[key] = value


def per_run_item(traj: Trajectory, leaf: Result, item: str) -> Any:
    """``traj.results.z``: this run's value in a run, else a per-run view."""
    state = traj._active_run
    key = (leaf.full_name, item)
    if state is not None:
        if key in state.values:
            return state.values[key]
        raise RunValueMissingError(
            f"run {state.idx} has not added {leaf.full_name}[{item!r}] yet; other runs' "
            f"values are in traj.runs[i].{leaf.full_name}"
        )
    if traj._current_idx >= 0:
        return traj._cell(leaf.full_name, item, traj._current_idx)
    from pytraj.trajectory.views import PerRunView

    return PerRunView(traj, leaf, item)


def column(traj: Trajectory, path: str, item: str) -> ColumnData:
    """Create or extend the per-run leaf a run record declares."""
    cached = traj._column_cache.get((path, item))
    if cached is not None and cached[0] == traj._data_version:
        return cached[1]
    column = traj._storage.read_column(path, item)
    traj._column_cache[(path, item)] = (traj._data_version, column)
    return column


def cell(traj: Trajectory, path: str, item: str, idx: int) -> Any:
    """Run ``idx``'s value of one per-run item, or RunValueMissingError naming its status."""
    cached = traj._column_cache.get((path, item))
    if cached is not None and cached[0] == traj._data_version:
        position = cached[1].position_of(idx)
        if position >= 0:
            return cached[1].value_at(position)
    else:
        try:
            return traj._storage.read_cell(path, item, idx)
        except KeyError:
            pass
    status = STATUS_NAMES[traj._run_table.status(idx)]
    raise RunValueMissingError(f"run {idx} has no value for {path}[{item!r}] (status: {status})")
