"""Turn a trajectory into a :class:`StudyDefinition` and back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytraj.errors import NodeTypeError
from pytraj.leaves.base import leaf_class
from pytraj.leaves.parameter import Parameter
from pytraj.leaves.result import Result
from pytraj.storage.explored import StoredPointIds, is_stored_column
from pytraj.storage.interface import Storage
from pytraj.storage.records import NOT_LOADED, GroupRecord, LeafRecord, LinkRecord, StudyDefinition
from pytraj.trajectory.runtable import RunTable
from pytraj.tree.names import stored_names
from pytraj.tree.node import Group, Link, quiet_shadowing

if TYPE_CHECKING:
    from pytraj.trajectory.trajectory import Trajectory

__all__ = ["deferred_run_table", "has_point_ids", "restore_tree", "to_definition"]


def to_definition(traj: Trajectory, *, keep_lazy: bool = False) -> StudyDefinition:
    """Describe ``traj`` (its tree, explored ranges and trajectory-level values).

    Parameters
    ----------
    keep_lazy
        Leave values not yet read from the file as :class:`LazyValue` (for writing back
        to the same storage, which keeps them) instead of loading them (for shipping
        the definition elsewhere, e.g. to worker processes).
    """
    groups: list[GroupRecord] = []
    leaves: list[LeafRecord] = []
    links: list[LinkRecord] = []
    for node in traj.iter_nodes():
        annotations = node.annotations.to_dict() if node.has_annotations else {}
        if isinstance(node, Link):
            links.append(LinkRecord(node.full_name, node.target.full_name, node.comment))
        elif isinstance(node, Group):
            groups.append(GroupRecord(node.full_name, node.comment, annotations))
        elif isinstance(node, Parameter):
            leaves.append(
                LeafRecord(
                    path=node.full_name,
                    leaf_class=type(node).__name__,
                    comment=node.comment,
                    annotations=annotations,
                    pickled=node.pickles_values,
                    default=node.raw_default if keep_lazy else node.default,
                    explored=_explored_record(node, keep_lazy),
                )
            )
        elif isinstance(node, Result):
            if node.per_run:
                items: dict[str, Any] = dict.fromkeys(node.raw_items)
            elif not node.is_loaded:
                items = dict.fromkeys(node.item_names(), NOT_LOADED)
            else:
                items = dict(node.raw_items)
            leaves.append(
                LeafRecord(
                    path=node.full_name,
                    leaf_class=type(node).__name__,
                    comment=node.comment,
                    annotations=annotations,
                    per_run=node.per_run,
                    pickled=node.pickles_values,
                    items=items,
                )
            )
        else:  # pragma: no cover - every leaf class derives from Parameter or Result
            raise NodeTypeError(f"cannot describe {node!r}")
    return StudyDefinition(
        name=traj.name,
        comment=traj.comment,
        created=traj.created,
        provenance=dict(traj.provenance),
        groups=groups,
        leaves=leaves,
        links=links,
        n_runs=len(traj),
        # The run table's ids as one array (no bytes object per run until one is asked).
        point_ids=traj.exploration.point_id_record(len(traj)),  # type: ignore[arg-type]
    )


def _explored_record(parameter: Parameter, keep_lazy: bool) -> list[Any] | None:
    """The explored values a definition records for ``parameter`` (None: not explored).

    A range still the column the file holds is handed on as that very column when the
    definition goes back to the same storage: it is not read, and comparing it with
    what the file holds is an identity check.
    """
    raw = parameter.raw_range
    if raw is None:
        return None
    if keep_lazy:
        return raw if is_stored_column(raw) else list(raw)
    return list(parameter.range)


def restore_tree(traj: Trajectory, definition: StudyDefinition, storage: Storage) -> None:
    """Rebuild the tree of a fresh trajectory from its definition, bound to ``storage``.

    Trajectory-level result items marked :data:`NOT_LOADED` are fetched from storage
    on first access. :meth:`Trajectory.from_definition` is the entry point.
    """
    # The names warned (shadowing) and were checked (length) when the study was defined.
    with quiet_shadowing(), stored_names():
        traj.provenance.update(definition.provenance)
        for record in definition.groups:
            group = traj.require_group(record.path)
            group.comment = record.comment
            if record.annotations:
                group.annotations.update(record.annotations)
        for leaf_record in definition.leaves:
            _restore_leaf(traj, leaf_record, storage)
        for link in definition.links:
            traj.add_link(link.path, link.target, comment=link.comment)


def deferred_run_table(definition: StudyDefinition, storage: Storage) -> RunTable:
    """The run table of a stored study, read from ``storage`` on first use."""
    n_runs = max(definition.n_runs, 1)
    point_ids = definition.point_ids

    def read_run_table() -> RunTable:
        table = RunTable.from_stored(storage.read_run_table(), n_runs)
        if len(point_ids) >= n_runs:
            if isinstance(point_ids, StoredPointIds):  # one read, no bytes object per run
                table.set_point_ids(point_ids.to_numpy()[:n_runs])  # V16 ids
            else:
                table.set_point_ids(point_ids[:n_runs])
        return table

    return RunTable.deferred(n_runs, read_run_table)


def has_point_ids(definition: StudyDefinition) -> bool:
    """Whether the definition holds the point id of every run."""
    point_ids = definition.point_ids
    return bool(point_ids) and len(point_ids) >= max(definition.n_runs, 1)


def _restore_leaf(traj: Trajectory, record: LeafRecord, storage: Storage) -> None:
    cls = leaf_class(record.leaf_class)
    parts = record.path.split(".")
    parent = traj.require_group(".".join(parts[:-1]))
    leaf: Any
    if issubclass(cls, Parameter):
        leaf = cls.restore(parts[-1], record.default, record.explored, comment=record.comment)
    elif issubclass(cls, Result):
        if record.per_run:
            leaf = cls.restore(
                parts[-1], dict.fromkeys(record.items), comment=record.comment, per_run=True
            )
        elif any(value is NOT_LOADED for value in record.items.values()):
            path = record.path
            leaf = cls.restore(
                parts[-1],
                dict.fromkeys(record.items),
                comment=record.comment,
                loader=lambda: storage.read_items(path),
            )
        else:
            leaf = cls.restore(parts[-1], dict(record.items), comment=record.comment)
    else:
        raise NodeTypeError(f"{record.leaf_class} is neither a Parameter nor a Result")
    parent.attach(leaf)
    if record.annotations:
        leaf.annotations.update(record.annotations)
