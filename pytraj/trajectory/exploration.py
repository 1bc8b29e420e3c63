"""Exploring and expanding a trajectory, and the point id of every run."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from pytraj.errors import DuplicatePointWarning, ExplorationError, NodeNotFoundError
from pytraj.leaves.parameter import Parameter
from pytraj.storage.records import PENDING

if TYPE_CHECKING:
    from pytraj.trajectory.spaces import ParameterSpace
    from pytraj.trajectory.trajectory import Trajectory

__all__ = ["ensure_point_ids", "expand", "explore", "parameters_of", "resolve_parameter"]


def parameters_of(traj: Trajectory) -> list[Parameter]:
    """Every parameter under ``parameters``, in tree order."""
    return [leaf for leaf in traj.par.iter_leaves() if isinstance(leaf, Parameter)]


def resolve_parameter(traj: Trajectory, name: str) -> Parameter:
    """The parameter a name given to ``explore`` means (``x``, ``net.x``, ``parameters.x``)."""
    node: Any
    try:
        if name.startswith("parameters.") or name.startswith("parameters/"):
            node = traj.node(name)
        else:
            try:
                node = traj.par.node(name)
            except NodeNotFoundError:
                node = traj.par._find_below(name)
    except (NodeNotFoundError, AttributeError):
        raise ExplorationError(
            f"cannot explore {name!r}: trajectory {traj.name!r} has no such parameter; "
            "add it first with traj.add_parameter"
        ) from None
    if not isinstance(node, Parameter) or not node.full_name.startswith("parameters."):
        raise ExplorationError(f"cannot explore {name!r}: {node!r} is not a parameter")
    return node


def _coerced_columns(
    traj: Trajectory, space: Mapping[str, Any] | ParameterSpace
) -> tuple[dict[Parameter, list[Any]], int]:
    from pytraj.trajectory.spaces import as_columns

    columns = as_columns(space)
    coerced: dict[Parameter, list[Any]] = {}
    for name, values in columns.items():
        parameter = resolve_parameter(traj, name)
        if parameter in coerced:
            raise ExplorationError(f"{parameter.full_name!r} is given twice (as {name!r})")
        coerced[parameter] = parameter._coerce_range(values)
    n = len(next(iter(coerced.values()))) if coerced else 0
    return coerced, n


def explore(traj: Trajectory, space: Mapping[str, Any] | ParameterSpace) -> None:
    """See :meth:`Trajectory.explore`."""
    stored = len(traj.run_table) - len(traj.run_table.indices(PENDING))
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
        parameter._set_range(values)
    traj.run_table.resize(n)
    traj._point_ids_valid = False
    traj._definition_dirty = True
    ensure_point_ids(traj)
    _warn_duplicates(traj, 0)


def expand(traj: Trajectory, space: Mapping[str, Any] | ParameterSpace) -> None:
    """See :meth:`Trajectory.expand`."""
    coerced, n_new = _coerced_columns(traj, space)
    if n_new == 0:
        return
    explored = [p for p in parameters_of(traj) if p.is_explored]
    missing = [p.full_name for p in explored if p not in coerced]
    if missing:
        raise ExplorationError(
            f"expand needs new values for every explored parameter; missing: {', '.join(missing)}"
        )
    n_old = len(traj)
    ensure_point_ids(traj)
    for parameter, values in coerced.items():
        if parameter.is_explored:
            parameter._extend_range(values)
        else:  # newly explored: earlier runs ran with the default
            parameter._set_range([parameter.default] * n_old + values)
    traj.run_table.resize(n_old + n_new)
    _compute_point_ids(traj, range(n_old, n_old + n_new))
    traj._point_ids_valid = True
    traj._definition_dirty = True
    _warn_duplicates(traj, n_old)


def ensure_point_ids(traj: Trajectory) -> None:
    """Compute the point ids of runs that have not run yet, when parameters changed.

    Runs that ran keep the id they ran with.
    """
    if traj._point_ids_valid:
        return
    pending = traj.run_table.indices(PENDING)
    _compute_point_ids(traj, pending.tolist())
    traj._point_ids_valid = True


def _compute_point_ids(traj: Trajectory, indices: Any) -> None:
    from pytraj.trajectory.pointid import point_ids

    parameters = [(p.full_name, p) for p in parameters_of(traj)]
    fixed = {name: p.default for name, p in parameters if not p.is_explored}
    explored = {name: p._range for name, p in parameters if p.is_explored}
    ids = point_ids(fixed, explored, indices)  # type: ignore[arg-type]  # explored: lists
    if ids:
        rows = traj.run_table.rows
        raw = np.frombuffer(b"".join(ids), dtype=rows.dtype["point_id"])
        rows["point_id"][np.asarray(indices, dtype=np.int64)] = raw


def _warn_duplicates(traj: Trajectory, start: int) -> None:
    ids = traj.run_table.point_ids()
    counted = Counter(ids)
    repeated = [i for i in range(start, len(ids)) if counted[ids[i]] > 1]
    if repeated:
        shown = ", ".join(map(str, repeated[:10])) + (" ..." if len(repeated) > 10 else "")
        warnings.warn(
            f"{len(repeated)} explored runs repeat a parameter point ({shown}); every copy "
            "runs. Use ParameterSpace.unique() or difference to drop repeats",
            DuplicatePointWarning,
            stacklevel=4,
        )
