"""Whether two trajectories can be merged: every conflict, named with both values.

A merge (:mod:`pytraj.trajectory.merging`) needs both trajectories to explore the same
parameters: the same names and types, the same explored parameters and equal defaults
for the unexplored ones; a node must be of the same kind on both sides (a per-run
result here cannot be a trajectory-level one there). :func:`check_mergeable` lists every
difference at once and raises before anything is written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pytraj.errors import MergeConflictError, OptionError
from pytraj.leaves.parameter import Parameter
from pytraj.leaves.result import Result

if TYPE_CHECKING:
    from pytraj.trajectory.trajectory import Trajectory

__all__ = [
    "MergeOptions",
    "check_mergeable",
    "describe",
    "parameters",
    "source_name",
    "values_equal",
]


@dataclass(frozen=True, slots=True)
class MergeOptions:
    """How to merge (see :meth:`pytraj.Trajectory.merge`)."""

    remove_duplicates: bool = False
    ignore_data: tuple[str, ...] = ()
    trial_parameter: str | None = None
    strict: bool = False

    def ignores(self, path: str) -> bool:
        """Whether the node ``path`` (or a group above it) is named in ``ignore_data``."""
        return any(path == name or path.startswith(name + ".") for name in self.ignore_data)


def values_equal(a: Any, b: Any) -> bool:
    """Whether two stored values are the same value of the same type."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b))
    equals = getattr(a, "equals", None)
    if callable(equals):  # pandas objects
        return bool(equals(b))
    if hasattr(a, "nnz") and hasattr(a, "toarray"):  # scipy.sparse
        return a.shape == b.shape and (a != b).nnz == 0
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return True  # nan == nan for the purpose of "the same value"
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def describe(value: Any) -> str:
    """``repr(value)``, cut to 60 characters for messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parameters(traj: Trajectory) -> dict[str, Parameter]:
    """The parameters of ``traj`` by full name."""
    return {
        leaf.full_name: leaf
        for leaf in traj.iter_leaves()
        if isinstance(leaf, Parameter) and leaf.full_name.startswith("parameters.")
    }


def source_name(traj: Trajectory) -> str:
    """``"<file>:<name>"`` for a trajectory in a file, its name otherwise."""
    location = getattr(traj.storage, "path", None)
    return f"{location}:{traj.name}" if location is not None else traj.name


def check_mergeable(here: Trajectory, there: Trajectory, options: MergeOptions) -> list[str]:
    """The explored parameters (full names, sorted), after checking ``there`` can join ``here``.

    Raises
    ------
    MergeConflictError
        Naming every difference (parameters, kinds of nodes) with both values.
    OptionError
        When ``trial_parameter`` is not an explored int parameter of both.
    """
    conflicts, explored = _parameter_conflicts(here, there, options)
    conflicts += _leaf_conflicts(here, there, options)
    if conflicts:
        raise MergeConflictError(
            f"cannot merge {source_name(there)} into {here.name!r}; nothing was written:\n  "
            + "\n  ".join(conflicts),
            conflicts,
        )
    return explored


def _labels(here: Trajectory, there: Trajectory) -> tuple[str, str]:
    """How conflict messages name both sides: by name, or (shards share one) by place."""
    if here.name != there.name:
        return repr(here.name), repr(there.name)
    return f"{here.name!r} (merged into)", repr(source_name(there))


def _parameter_conflicts(
    here: Trajectory, there: Trajectory, options: MergeOptions
) -> tuple[list[str], list[str]]:
    """Conflicts between the parameters, and the explored parameter names (sorted)."""
    ours, theirs = parameters(here), parameters(there)
    mine_label, their_label = _labels(here, there)
    conflicts: list[str] = []
    for path in sorted(ours.keys() - theirs.keys()):
        conflicts.append(f"{path}: only in {mine_label} (default {describe(ours[path].default)})")
    for path in sorted(theirs.keys() - ours.keys()):
        conflicts.append(
            f"{path}: only in {their_label} (default {describe(theirs[path].default)})"
        )
    explored: list[str] = []
    for path in sorted(ours.keys() & theirs.keys()):
        a, b = ours[path], theirs[path]
        if type(a) is not type(b):
            conflicts.append(
                f"{path}: a {type(a).__name__} in {mine_label}, a {type(b).__name__} in "
                f"{their_label}"
            )
            continue
        da, db = a.default, b.default
        if type(da) is not type(db) or (
            isinstance(da, np.ndarray) and (da.dtype != db.dtype or da.shape != db.shape)
        ):
            conflicts.append(
                f"{path}: type {type(da).__name__} ({describe(da)}) in {mine_label}, "
                f"type {type(db).__name__} ({describe(db)}) in {their_label}"
            )
        elif a.is_explored != b.is_explored:
            which, other = (mine_label, their_label) if a.is_explored else (their_label, mine_label)
            conflicts.append(
                f"{path}: explored in {which} but not in {other} (default "
                f"{describe(da)} here, {describe(db)} there)"
            )
        elif not a.is_explored and not values_equal(da, db):
            conflicts.append(
                f"{path}: default {describe(da)} in {mine_label}, {describe(db)} in {their_label}"
            )
        elif a.is_explored:
            explored.append(path)
    trial = options.trial_parameter
    if trial is not None:
        full = trial if trial.startswith("parameters.") else f"parameters.{trial}"
        parameter = ours.get(full)
        if parameter is None or full not in theirs:
            raise OptionError(
                f"trial_parameter {trial!r} is not a parameter of both {mine_label} and "
                f"{their_label}"
            )
        if not parameter.is_explored or type(parameter.default) is not int:
            raise OptionError(
                f"trial_parameter {trial!r} must be an explored int parameter in both "
                "trajectories (one trial number per run)"
            )
    return conflicts, explored


def _leaf_conflicts(here: Trajectory, there: Trajectory, options: MergeOptions) -> list[str]:
    ours = {leaf.full_name: leaf for leaf in here.iter_leaves()}
    mine_label, their_label = _labels(here, there)
    conflicts: list[str] = []
    for leaf in there.iter_leaves():
        path = leaf.full_name
        mine = ours.get(path)
        if mine is None or path.startswith("parameters.") or options.ignores(path):
            continue
        if type(mine) is not type(leaf):
            conflicts.append(
                f"{path}: a {type(mine).__name__} in {mine_label}, a {type(leaf).__name__} "
                f"in {their_label}"
            )
        elif isinstance(mine, Result) and isinstance(leaf, Result) and mine.per_run != leaf.per_run:
            kinds = ("per-run", "trajectory-level")
            conflicts.append(
                f"{path}: {kinds[not mine.per_run]} in {mine_label}, "
                f"{kinds[not leaf.per_run]} in {their_label}"
            )
    return conflicts
