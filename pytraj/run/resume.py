"""Continuing a stored study: compare, adopt, plan.

Re-running a script builds its trajectory in memory as usual. When the file already
holds a trajectory of that name, ``env.run`` compares the two definitions
(:func:`compare`): the parameters (names, classes, defaults) must be the same and the
explored points must agree run by run, compared by point id, as far as both go. Then
the script's trajectory adopts the stored one (:func:`adopt`): its storage, run table
and every stored node the script did not define, so completed runs are skipped and
points the script adds are appended. Otherwise :class:`~pytraj.errors.StudyMismatchError`
lists the differences and the ways out.

A script may also define *fewer* points than stored, e.g. a study that later grew
with ``traj.expand``: the stored points beyond the script's are kept in the file and
recognised again when the script expands to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pytraj.errors import OptionError, StudyMismatchError
from pytraj.leaves.result import Result
from pytraj.storage.explored import StoredPointIds
from pytraj.storage.records import COMPLETED, FAILED, LazyValue, StudyDefinition
from pytraj.trajectory.exploration import parameters_of
from pytraj.trajectory.pointid import encode_value
from pytraj.trajectory.runtable import RunTable
from pytraj.trajectory.trajectory import Trajectory
from pytraj.tree.node import Link, quiet_shadowing

__all__ = [
    "Difference",
    "RunPlan",
    "adopt",
    "check_retry",
    "compare",
    "make_plan",
    "mismatch_error",
    "refresh_run_table",
]

#: How many differing runs a mismatch message lists.
SHOWN_POINTS = 5


@dataclass(frozen=True, slots=True)
class Difference:
    """One way the script's study differs from the stored one."""

    name: str
    stored: str
    script: str

    def __str__(self) -> str:
        return f"{self.name}: stored {self.stored}, script {self.script}"


def _short(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _same_value(a: Any, b: Any) -> bool:
    """Compare two defaults by their canonical encoding (arrays, NaN, types included)."""
    try:
        return encode_value(a) == encode_value(b)
    except Exception:  # values without a canonical encoding (pickled objects)
        try:
            return bool(a == b)
        except Exception:
            return repr(a) == repr(b)


def compare(script: Trajectory, stored: StudyDefinition) -> list[Difference]:
    """The differences between the script's trajectory and a stored definition."""
    differences: list[Difference] = []
    stored_parameters = {
        leaf.path: leaf for leaf in stored.leaves if leaf.path.startswith("parameters.")
    }
    script_parameters = {p.full_name: p for p in parameters_of(script)}
    for path in sorted(stored_parameters.keys() - script_parameters.keys()):
        leaf = stored_parameters[path]
        differences.append(Difference(path, f"{leaf.leaf_class} {_short(leaf.default)}", "-"))
    for path in sorted(script_parameters.keys() - stored_parameters.keys()):
        parameter = script_parameters[path]
        differences.append(
            Difference(path, "-", f"{type(parameter).__name__} {_short(parameter.default)}")
        )
    for path in sorted(script_parameters.keys() & stored_parameters.keys()):
        leaf, parameter = stored_parameters[path], script_parameters[path]
        if leaf.leaf_class != type(parameter).__name__:
            differences.append(
                Difference(f"{path} (class)", leaf.leaf_class, type(parameter).__name__)
            )
        elif not _same_value(_loaded(leaf.default), parameter.default):
            differences.append(
                Difference(
                    f"{path} (default)", _short(_loaded(leaf.default)), _short(parameter.default)
                )
            )
    if differences:
        return differences
    return _point_differences(script, stored)


def _loaded(value: Any) -> Any:
    return value.load() if type(value) is LazyValue else value


def _point_differences(script: Trajectory, stored: StudyDefinition) -> list[Difference]:
    script.exploration.ensure_point_ids()
    theirs = stored.point_ids
    if isinstance(theirs, StoredPointIds):
        # The file's ids as one array against the run table's: no bytes object per run.
        run_ids = script.run_table.rows["point_id"]
        common = min(len(run_ids), len(theirs))
        if np.array_equal(run_ids[:common], theirs.to_numpy()[:common]):
            return []
    # Compared as 16 raw bytes each: an id read back from a layout-1 ``S16`` column by a
    # reader that dropped trailing NULs gets them back first.
    ours = script.run_table.point_ids()
    if set(map(type, theirs)) - {bytes} or set(map(len, theirs)) - {16}:
        theirs = [bytes(pid).ljust(16, b"\x00") for pid in theirs]
    common = min(len(ours), len(theirs))
    if ours[:common] == theirs[:common]:
        return []  # the usual case, one C-level comparison of the lists
    differing = [i for i in range(common) if ours[i] != theirs[i]]
    explored = [p for p in parameters_of(script) if p.is_explored]
    stored_ranges = {
        leaf.path: leaf.explored for leaf in stored.leaves if leaf.path.startswith("parameters.")
    }
    differences = []
    for idx in differing[:SHOWN_POINTS]:
        mine = ", ".join(f"{p.name}={_short(p.value_at(idx), 20)}" for p in explored)
        stored_values = []
        for path, values in stored_ranges.items():
            if values is not None and idx < len(values):
                name = path.rsplit(".", 1)[-1]
                stored_values.append(f"{name}={_short(_loaded(values[idx]), 20)}")
        differences.append(
            Difference(f"run {idx}", ", ".join(stored_values) or "defaults", mine or "defaults")
        )
    if len(differing) > SHOWN_POINTS:
        differences.append(
            Difference(f"... {len(differing) - SHOWN_POINTS} more runs", "differ", "differ")
        )
    return differences


def mismatch_error(name: str, path: Path, differences: Sequence[Difference]) -> StudyMismatchError:
    """The error for a script whose study differs from the stored one."""
    listed = "\n".join(f"  {difference}" for difference in differences)
    error = StudyMismatchError(
        f"trajectory {name!r} in {path} differs from the one this script defines:\n{listed}\n"
        "Ways out: Environment(..., overwrite=True) replaces the stored trajectory (only "
        "that one); a new trajectory name starts a separate study in the same file; to "
        "add points to the stored study, explore the stored points as before and add the "
        "new ones with traj.expand(...)",
        differences=list(differences),
    )
    return error


def adopt(script: Trajectory, stored: Trajectory) -> bool:
    """Make ``script`` continue the stored trajectory ``stored`` (already compared).

    The script's trajectory takes over the stored storage and run table, and every
    stored node it does not define itself (results, derived parameters, and the whole
    tree when the script defines no parameters). Returns whether the file holds more
    points than the script (then the stored definition is left as it is until the
    script reaches those points).
    """
    whole = not parameters_of(script)
    n = len(stored) if whole else len(script)
    if whole:
        # The script's own table has one run; the stored runs keep the ids they ran with
        # (each run's seed derives from its id).
        stored.exploration.ensure_point_ids()
        stored_ids = stored.run_table.point_id_array()
    with quiet_shadowing():  # stored names warned when the study was defined
        for node in list(stored.iter_nodes(links=False)):
            _take_node(script, stored, node)
        for node in list(stored.iter_nodes()):
            if isinstance(node, Link) and node.full_name not in script:
                target = node.target.full_name
                if target in script:
                    script.add_link(node.full_name, target, comment=node.comment)
    if not script.comment:
        script.comment = stored.comment
    # The stored history (earlier sessions, writer sessions, merges) carries on: each
    # stored run refers to its writer session by position in provenance["writers"].
    history = {**stored.provenance, **script.provenance}
    script.provenance.clear()
    script.provenance.update(history)
    if whole:
        ids = stored_ids
    else:
        script.exploration.ensure_point_ids()
        # As one V16 array (set_point_ids copies it): no bytes object per run.
        ids = script.run_table.point_id_array()[:n]
    table = RunTable.from_stored(stored.storage.read_run_table(), n)
    table.set_point_ids(ids)
    longer = len(stored) > n
    script.rebind(
        stored.storage,
        table,
        created=stored.created,
        point_ids_valid=True,
        definition_dirty=not longer,  # never shrink the stored definition
    )
    return longer


def _take_node(script: Trajectory, stored: Trajectory, node: Any) -> None:
    """Move one stored node into the script's tree unless the script has it."""
    path = node.full_name
    if node.is_group:
        group = script.require_group(path)
        if not group.comment and node.comment:
            group.comment = node.comment
        return
    existing = script.node_at(path)
    if existing is None:
        parent = node.parent
        if parent is None:
            return
        parent.detach(node)
        script.require_group(parent.full_name).attach(node)
        return
    if not (isinstance(existing, Result) and isinstance(node, Result)):
        return
    if existing.per_run and node.per_run:
        # Items the stored runs produced that the script lacks.
        existing.declare_items(node.raw_items)


def refresh_run_table(script: Trajectory, path: Path) -> bool:
    """Re-read the run table of a trajectory whose file holds more points than it has.

    Called before each ``env.run`` after the script expanded: the stored points it
    reached are compared and their stored status adopted. Returns whether the file
    still holds more points.
    """
    definition = script.storage.read_definition()
    differences = compare(script, definition)
    if differences:
        raise mismatch_error(script.name, path, differences)
    n = len(script)
    ids = script.run_table.point_id_array()[:n]  # copied into the new table
    table = RunTable.from_stored(script.storage.read_run_table(), n)
    table.set_point_ids(ids)
    longer = len(definition.point_ids) > n
    script.rebind(run_table=table, definition_dirty=script.definition_dirty and not longer)
    return longer


@dataclass(slots=True)
class RunPlan:
    """What ``env.run`` (or ``env.resume``) would run, found without running or writing.

    Attributes
    ----------
    new
        Runs whose points are not in the file yet.
    pending
        Stored runs that never completed (not started, interrupted, killed).
    failed
        Runs whose last attempt failed: run again only with ``retry_failed=True``.
    completed
        Runs that completed: never run again.
    """

    trajectory: str
    filename: Path
    new: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    retry_failed: bool = False
    points: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def to_run(self) -> list[int]:
        """The runs that would run, in order."""
        runs = self.new + self.pending + (self.failed if self.retry_failed else [])
        return sorted(runs)

    def __len__(self) -> int:
        return len(self.to_run)

    def to_dataframe(self) -> Any:
        """One row per run that would run (and per failed run): status and point."""
        import pandas as pd

        rows = []
        status = dict.fromkeys(self.new, "new")
        status.update(dict.fromkeys(self.pending, "pending"))
        status.update(dict.fromkeys(self.failed, "failed"))
        for idx in sorted(status):
            rows.append({"run": idx, "status": status[idx], **self.points.get(idx, {})})
        frame = pd.DataFrame(rows)
        return frame.set_index("run") if rows else frame

    def __repr__(self) -> str:
        parts = [f"{len(self.new)} new", f"{len(self.pending)} pending"]
        if self.failed:
            parts.append(
                f"{len(self.failed)} failed ({'retried' if self.retry_failed else 'not retried'})"
            )
        return (
            f"<RunPlan {self.trajectory!r}: {len(self)} runs to run ({', '.join(parts)}), "
            f"{len(self.completed)} completed>"
        )


def make_plan(
    script: Trajectory,
    filename: Path,
    statuses: Sequence[int | None],
    retry_failed: bool,
) -> RunPlan:
    """Sort the script's runs by what would happen to them.

    ``statuses[i]`` is run i's stored status, or None for a point not in the file.
    """
    plan = RunPlan(script.name, filename, retry_failed=retry_failed)
    explored = [p for p in parameters_of(script) if p.is_explored]
    for idx, status in enumerate(statuses):
        if status is None:
            plan.new.append(idx)
        elif status == COMPLETED:
            plan.completed.append(idx)
            continue
        elif status == FAILED:
            plan.failed.append(idx)
        else:
            plan.pending.append(idx)
        plan.points[idx] = {p.name: p.value_at(idx) for p in explored}
    return plan


def check_retry(value: Any) -> bool:
    """Validate ``retry_failed``."""
    if not isinstance(value, bool):
        raise OptionError(f"retry_failed={value!r} is invalid: expected True or False")
    return value
