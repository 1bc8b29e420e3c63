"""Exploring and expanding a trajectory, and the point id of every run."""

from __future__ import annotations

import warnings
import weakref
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from pytraj.errors import DuplicatePointWarning, ExplorationError, NodeNotFoundError
from pytraj.leaves.parameter import Parameter
from pytraj.storage.explored import ExploredColumn, StoredPointIds
from pytraj.storage.records import PENDING
from pytraj.trajectory.pointbatch import POINT_ID_BATCH, point_ids
from pytraj.trajectory.runtable import RunTable
from pytraj.trajectory.spaces import ParameterSpace, as_columns
from pytraj.tree.node import Group, Node

__all__ = ["Exploration", "ExplorationHost", "parameters_of", "resolve_parameter"]


class ExplorationHost(Protocol):
    """What exploring needs of its trajectory."""

    @property
    def name(self) -> str: ...

    @property
    def par(self) -> Group: ...

    @property
    def run_table(self) -> RunTable: ...

    def node(self, path: str) -> Node: ...

    def mark_definition_changed(self) -> None: ...


class Exploration:
    """The explored points of a trajectory: their ranges and point ids.

    Owns whether the point ids in the run table are valid: any change of a parameter
    makes them stale, and the ids of runs that have not run yet are computed again on
    the next :meth:`ensure_point_ids`. Runs that ran keep the id they ran with.
    """

    __slots__ = ("_host", "_id_record", "_ids_valid")

    def __init__(self, host: ExplorationHost) -> None:
        self._host = host
        self._ids_valid = False
        #: The point ids last handed to a definition, while something (the storage) holds them.
        self._id_record: weakref.ref[StoredPointIds] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # A trajectory pickles with its exploration; the weak reference cannot (and a
        # copy holds no definition's ids).
        return {"_host": self._host, "_ids_valid": self._ids_valid}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._host = state["_host"]
        self._ids_valid = state["_ids_valid"]
        self._id_record = None

    def point_id_record(self, n_runs: int) -> StoredPointIds:
        """The point ids of the first ``n_runs`` runs as one array, for a definition.

        The array last handed out, when it is still held (by the storage, as what the
        file holds) and the run table still has exactly those ids: a study's definition
        is made when a session starts, on a flush and when it ends, and a copy each time
        took 16 MB more at a million runs (the old one kept until the new one replaced
        it, and the freed memory often kept by the allocator).
        """
        ids = self._host.run_table.rows["point_id"][:n_runs]
        last = self._id_record() if self._id_record is not None else None
        if last is not None and len(last) == len(ids) and np.array_equal(last.to_numpy(), ids):
            return last
        record = StoredPointIds.of_array(ids.copy(), f"the point ids of {self._host.name!r}")
        self._id_record = weakref.ref(record)
        return record

    def invalidate(self) -> None:
        """Parameters changed: pending runs' point ids are computed again when needed."""
        self._ids_valid = False

    @property
    def ids_valid(self) -> bool:
        """Whether the pending runs' point ids are up to date."""
        return self._ids_valid

    def set_ids_valid(self, valid: bool = True) -> None:
        """Say that the run table's point ids were set from a trusted source (a file)."""
        self._ids_valid = valid

    def explore(self, space: Mapping[str, Any] | ParameterSpace) -> None:
        """See :meth:`Trajectory.explore`."""
        traj = self._host
        table = traj.run_table
        stored = len(table) - len(table.indices(PENDING))
        if stored:
            raise ExplorationError(
                f"trajectory {traj.name!r} has {stored} stored runs; add points with "
                "traj.expand(...) instead of exploring again"
            )
        already = [p.full_name for p in parameters_of(traj) if p.is_explored]
        if already:
            raise ExplorationError(
                f"trajectory {traj.name!r} is explored already ({', '.join(already)}); "
                "add points with traj.expand(...)"
            )
        coerced, n = _coerced_columns(traj, space)
        if n == 0:
            raise ExplorationError("cannot explore zero points")
        for parameter, values in coerced.items():
            # Plain numbers as one array: a million floats hold 8 MB, not 32.
            column = ExploredColumn.of_values(
                values, description=f"the explored values of {parameter.full_name}"
            )
            parameter.set_range(values if column is None else column)
        del coerced, values  # the lists, once held as arrays, go before the run table grows
        table.resize(n)
        self._ids_valid = False
        traj.mark_definition_changed()
        self.ensure_point_ids()
        _warn_duplicates(table, 0)

    def expand(self, space: Mapping[str, Any] | ParameterSpace) -> None:
        """See :meth:`Trajectory.expand`."""
        traj = self._host
        coerced, n_new = _coerced_columns(traj, space)
        if n_new == 0:
            return
        explored = [p for p in parameters_of(traj) if p.is_explored]
        missing = [p.full_name for p in explored if p not in coerced]
        if missing:
            raise ExplorationError(
                "expand needs new values for every explored parameter; missing: "
                + ", ".join(missing)
            )
        n_old = len(traj.run_table)
        self.ensure_point_ids()
        for parameter, values in coerced.items():
            if parameter.is_explored:
                parameter.extend_range(values)
            else:  # newly explored: earlier runs ran with the default
                parameter.set_range([parameter.default] * n_old + values)
        traj.run_table.resize(n_old + n_new)
        _compute_point_ids(traj, range(n_old, n_old + n_new))
        self._ids_valid = True
        traj.mark_definition_changed()
        _warn_duplicates(traj.run_table, n_old)

    def append_points(self, points: Mapping[str, Sequence[Any]], ids: np.ndarray) -> None:
        """Add runs whose (already coerced) values and point ids (``V16``) are known (a
        merge)."""
        traj = self._host
        table = traj.run_table
        n_old = len(table)
        for path, values in points.items():
            parameter = traj.node(path)
            assert isinstance(parameter, Parameter)  # the plan names explored parameters
            parameter.extend_range(values)
        table.resize(n_old + len(ids))
        table.set_point_ids(np.concatenate([table.point_id_array()[:n_old], ids]))
        self._ids_valid = True
        traj.mark_definition_changed()

    def ensure_point_ids(self) -> None:
        """Compute the point ids of runs that have not run yet, when parameters changed.

        Runs that ran keep the id they ran with.
        """
        if self._ids_valid:
            return
        indices = _as_range(self._host.run_table.indices(PENDING))  # usually a range: no array
        _compute_point_ids(self._host, indices)
        self._ids_valid = True


def parameters_of(traj: ExplorationHost) -> list[Parameter]:
    """Every parameter under ``parameters``, in tree order."""
    return [leaf for leaf in traj.par.iter_leaves() if isinstance(leaf, Parameter)]


def resolve_parameter(traj: ExplorationHost, name: str) -> Parameter:
    """The parameter a name given to ``explore`` means (``x``, ``net.x``, ``parameters.x``)."""
    node: Any
    try:
        if name.startswith("parameters.") or name.startswith("parameters/"):
            node = traj.node(name)
        else:
            try:
                node = traj.par.node(name)
            except NodeNotFoundError:
                node = traj.par.find_below(name)
    except (NodeNotFoundError, AttributeError):
        raise ExplorationError(
            f"cannot explore {name!r}: trajectory {traj.name!r} has no such parameter; "
            "add it first with traj.add_parameter"
        ) from None
    if not isinstance(node, Parameter) or not node.full_name.startswith("parameters."):
        raise ExplorationError(f"cannot explore {name!r}: {node!r} is not a parameter")
    return node


def _coerced_columns(
    traj: ExplorationHost, space: Mapping[str, Any] | ParameterSpace
) -> tuple[dict[Parameter, list[Any]], int]:
    columns = as_columns(space)
    coerced: dict[Parameter, list[Any]] = {}
    for name, values in columns.items():
        parameter = resolve_parameter(traj, name)
        if parameter in coerced:
            raise ExplorationError(f"{parameter.full_name!r} is given twice (as {name!r})")
        coerced[parameter] = parameter.coerce_range(values)
    n = len(next(iter(coerced.values()))) if coerced else 0
    return coerced, n


def _as_range(indices: np.ndarray) -> range | list[int]:
    """Ascending run indices as a ``range`` when they are consecutive (a study explored
    at once: no Python int per run), else as a list."""
    # Ascending and distinct (np.flatnonzero): consecutive when they span their count.
    if len(indices) and int(indices[-1]) - int(indices[0]) + 1 == len(indices):
        return range(int(indices[0]), int(indices[-1]) + 1)
    return indices.tolist()


def _compute_point_ids(traj: ExplorationHost, indices: Any) -> None:
    parameters = [(p.full_name, p) for p in parameters_of(traj)]
    fixed = {name: p.default for name, p in parameters if not p.is_explored}
    explored = {name: p.raw_range for name, p in parameters if p.is_explored}
    rows = traj.run_table.rows
    # A batch at a time into the table: no list of a million ids is held meanwhile.
    for start in range(0, len(indices), POINT_ID_BATCH):
        batch = indices[start : start + POINT_ID_BATCH]
        ids = point_ids(fixed, explored, batch)  # type: ignore[arg-type]  # explored: lists
        raw = np.frombuffer(b"".join(ids), dtype=rows.dtype["point_id"])
        if isinstance(batch, range):
            rows["point_id"][batch.start : batch.stop] = raw
        else:
            rows["point_id"][np.asarray(batch, dtype=np.int64)] = raw


def _id_heads(rows: np.ndarray) -> np.ndarray:
    """The first 8 bytes of every run's point id, as uint64 (a new array, 8 bytes a run:
    the ids themselves are not copied)."""
    raw = np.ascontiguousarray(rows).view(np.uint8).reshape(len(rows), -1)
    fields = rows.dtype.fields
    assert fields is not None  # run-table rows are structured
    offset = int(fields["point_id"][1])
    return np.ascontiguousarray(raw[:, offset : offset + 8]).view(np.uint64).reshape(-1)


def _warn_duplicates(table: RunTable, start: int) -> None:
    rows = table.rows
    if not len(rows):
        return
    # Ids are hashes: runs whose first 8 bytes match are the only candidates, found with
    # numpy (no Python object per run); the candidates are then compared whole.
    ordered = _id_heads(rows)
    ordered.sort()  # in place: a million runs hold 8 MB here, not 16 of ids and 8 sorted
    if not np.any(ordered[1:] == ordered[:-1]):
        return  # the usual case, told by one sort (about half of np.unique with counts)
    del ordered
    ids = rows["point_id"]
    head = _id_heads(rows)
    _, inverse, counts = np.unique(head, return_inverse=True, return_counts=True)
    suspects = np.flatnonzero(counts[inverse.reshape(-1)] > 1).tolist()
    counted = Counter(bytes(ids[i]) for i in suspects)
    repeated = [i for i in suspects if i >= start and counted[bytes(ids[i])] > 1]
    if repeated:
        shown = ", ".join(map(str, repeated[:10])) + (" ..." if len(repeated) > 10 else "")
        warnings.warn(
            f"{len(repeated)} explored runs repeat a parameter point ({shown}); every copy "
            "runs. Use ParameterSpace.unique() or difference to drop repeats",
            DuplicatePointWarning,
            stacklevel=4,
        )
