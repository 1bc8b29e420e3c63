"""Merge policy: what joining one trajectory into another means, decided before writing.

Written once above the storage interface (:mod:`pytraj.storage.interface`), so a merge
behaves the same on every backend. :func:`plan_merge` reads both trajectories through
their public surface (parameters, per-run leaves, run tables, stored columns), checks
that they can be joined (:mod:`pytraj.trajectory.mergecheck`) and decides, for every
run of the other trajectory, where it goes; :func:`~pytraj.trajectory.mergecopy.column_batches`
then hands the runs to copy to the storage as rows and whole columns, reading each
per-run column once (column by column, never run by run), in blocks. The trajectory applies the plan
(:meth:`pytraj.Trajectory.merge`); nothing is written before the plan exists, so a
conflict leaves both trajectories untouched.

Two kinds of merge, told apart by the point ids:

* **the same study** (shards of one study, or copies continued on two machines): the
  point ids of both agree on their common runs. Runs are matched by point id; a run
  completed in either is completed in the result. Runs of the other trajectory beyond
  the common ones are appended.
* **different studies**: every run of the other trajectory is appended and renumbered
  after the runs already present.

Rules for values present on both sides:

* a run completed in both keeps the values of the trajectory merged *into*; runs whose
  values differ are reported (``MergeReport.differing``), or refused with ``strict``;
* a run failed in the other trajectory and pending here takes the other's failure (with
  its history); a run failed here and completed there becomes completed (the failure
  history stays);
* a trajectory-level result, derived parameter or config value present on one side only
  is kept; equal values are kept once; a differing value of the other trajectory is kept
  under ``<branch>.<other name>.<rest of the path>``, never dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pytraj.errors import MergeConflictError
from pytraj.leaves.base import Leaf
from pytraj.leaves.parameter import Parameter
from pytraj.leaves.result import Result
from pytraj.storage.explored import ExploredColumn
from pytraj.storage.interface import RUN_TABLE_DTYPE, ColumnData
from pytraj.storage.records import COMPLETED, FAILED, PENDING, WRITER_KEY, LeafRecord
from pytraj.trajectory.mergecheck import (
    MergeOptions,
    check_mergeable,
    describe,
    parameters,
    source_name,
    values_equal,
)
from pytraj.trajectory.mergecopy import differing_runs, positions_of
from pytraj.trajectory.pointbatch import point_ids

if TYPE_CHECKING:
    from pytraj.trajectory.trajectory import Trajectory

__all__ = [
    "SAME_STUDY",
    "DIFFERENT_STUDIES",
    "MergeOptions",
    "MergePlan",
    "MergeReport",
    "TrajectoryLevelCopy",
    "plan_merge",
    "point_key",
    "values_equal",
]

SAME_STUDY = "same study"
DIFFERENT_STUDIES = "different studies"
#: Branches whose trajectory-level leaves merge by the rules above (parameters must agree).
_DATA_BRANCHES = ("derived_parameters", "results", "config")

#: Turns a 16-byte point id into the key of the duplicate lookup. The lookup is a dict,
#: so each id is hashed once and compared only with ids of equal hash; tests replace this
#: hook with a key that counts its comparisons.
point_key: Callable[[bytes], Hashable] = bytes


@dataclass(slots=True)
class MergeReport:
    """What a merge did (or, for a dry run, would do).

    Attributes
    ----------
    kind
        :data:`SAME_STUDY` or :data:`DIFFERENT_STUDIES`.
    source
        The other trajectory: ``"<file>:<name>"`` or its name when in memory.
    runs_before, runs_after
        Runs of the trajectory merged into, before and after.
    other_runs
        Runs of the other trajectory.
    appended
        Runs of the other trajectory appended as new runs.
    updated
        Runs present in both that took the other trajectory's state (completed there,
        not here; or failed there and pending here).
    duplicates_removed
        Runs of the other trajectory dropped because their point was present.
    completed_in_both
        Runs completed on both sides (the values here were kept).
    differing
        Of those, the runs whose values differ, as ``"run i: <item>"`` texts.
    added
        Trajectory-level nodes and per-run leaves copied from the other trajectory.
    renamed
        Trajectory-level nodes of the other trajectory whose values differ, with the
        path they were kept under (``"results.s -> results.b.s"``).
    dry_run
        Whether nothing was written.
    """

    kind: str
    source: str
    runs_before: int
    runs_after: int
    other_runs: int
    appended: int = 0
    updated: int = 0
    duplicates_removed: int = 0
    completed_in_both: int = 0
    differing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    dry_run: bool = False

    def to_record(self) -> dict[str, Any]:
        """The merge record stored in the trajectory's provenance (``merges``)."""
        return {
            "when": time.time(),
            "kind": self.kind,
            "source": self.source,
            "other_runs": self.other_runs,
            "runs_before": self.runs_before,
            "runs_after": self.runs_after,
            "appended": self.appended,
            "updated": self.updated,
            "duplicates_removed": self.duplicates_removed,
            "completed_in_both": self.completed_in_both,
            "differing": list(self.differing),
            "added": list(self.added),
            "renamed": list(self.renamed),
        }

    def summary(self) -> str:
        """A few lines for people (the ``pytraj merge`` command prints them)."""
        lines = [
            f"{self.source}: {self.kind}, {self.other_runs} runs",
            f"  runs {self.runs_before} -> {self.runs_after}: {self.appended} appended, "
            f"{self.updated} updated, {self.duplicates_removed} duplicates removed, "
            f"{self.completed_in_both} completed in both",
        ]
        lines += [f"  differing (kept this side's): {text}" for text in self.differing[:20]]
        if len(self.differing) > 20:
            lines.append(f"  ... {len(self.differing) - 20} more differing")
        lines += [f"  added {path}" for path in self.added]
        lines += [f"  kept under a new name: {text}" for text in self.renamed]
        return "\n".join(lines)


@dataclass(slots=True)
class TrajectoryLevelCopy:
    """A trajectory-level leaf of the other trajectory to copy to ``destination``."""

    leaf: Leaf
    destination: str


@dataclass(slots=True)
class MergePlan:
    """Everything :meth:`pytraj.Trajectory.merge` needs to apply a merge.

    Attributes
    ----------
    report
        What the merge does.
    new_points
        Explored parameter full name -> values of the appended runs (in order).
    new_ids
        Point ids of the appended runs (``V16``, one per run).
    sources
        Run indices of the other trajectory to copy (appended or updated).
    targets
        The run index each of ``sources`` gets here.
    per_run_leaves
        Per-run leaves to create here (only the other trajectory has them).
    copies
        Trajectory-level leaves to copy.
    columns
        Per-run columns ``(leaf path, item)`` of the other trajectory to copy.
    writers
        The writer sessions of the merged trajectory (``provenance["writers"]``): ours,
        then the other's that are new here.
    writer_map
        Position of each of the other's writer sessions in ``writers``.
    unknown_writer
        Position in ``writers`` of the entry for copied runs whose writer the other
        trajectory does not know (manual runs, layout-1 files); -1 when none is needed.
    writer_column
        The other trajectory's per-run writer column (small integers, read once for
        the plan and the copy).
    """

    report: MergeReport
    new_points: dict[str, Sequence[Any]]
    new_ids: np.ndarray
    sources: np.ndarray
    targets: np.ndarray
    per_run_leaves: list[LeafRecord]
    copies: list[TrajectoryLevelCopy]
    columns: list[tuple[str, str]]
    writers: list[dict[str, Any]] = field(default_factory=list)
    writer_map: dict[int, int] = field(default_factory=dict)
    unknown_writer: int = -1
    writer_column: ColumnData | None = None


# -- the trajectories' parts ------------------------------------------------------------------
def _per_run_leaves(traj: Trajectory) -> dict[str, Result]:
    return {
        leaf.full_name: leaf
        for leaf in traj.iter_leaves()
        if isinstance(leaf, Result) and leaf.per_run
    }


def _data_leaves(traj: Trajectory) -> dict[str, Leaf]:
    """Trajectory-level leaves of the data branches (not per-run)."""
    found: dict[str, Leaf] = {}
    for leaf in traj.iter_leaves():
        path = leaf.full_name
        if path.split(".", 1)[0] not in _DATA_BRANCHES:
            continue
        if isinstance(leaf, Leaf) and not (isinstance(leaf, Result) and leaf.per_run):
            found[path] = leaf
    return found


def _leaf_value(leaf: Leaf) -> Any:
    if isinstance(leaf, Parameter):
        return leaf.default
    if isinstance(leaf, Result):
        return leaf.items
    return None  # pragma: no cover - every leaf is a Parameter or a Result


# -- planning -------------------------------------------------------------------------------
def plan_merge(here: Trajectory, there: Trajectory, options: MergeOptions) -> MergePlan:
    """Decide how ``there`` joins ``here``; raise before anything is written.

    Both trajectories need valid point ids (the caller computes missing ones).

    Raises
    ------
    MergeConflictError
        When the parameters disagree (names, types, defaults of unexplored ones, which
        are explored), a node is of different kinds on both sides, or ``strict`` and a
        run completed on both sides has different values. The message lists every
        difference with both values.
    OptionError
        When ``trial_parameter`` is not an explored int parameter of both.
    """
    explored = check_mergeable(here, there, options)
    ours_table, theirs_table = here.run_table, there.run_table
    # Point ids as V16 columns: compared, sliced and taken without an object per run.
    ours_ids, theirs_ids = ours_table.point_id_array(), theirs_table.point_id_array()
    n_ours, n_theirs = len(ours_ids), len(theirs_ids)
    common = min(n_ours, n_theirs)
    trial = options.trial_parameter
    same = trial is None and bool(np.array_equal(ours_ids[:common], theirs_ids[:common]))
    report = MergeReport(
        kind=SAME_STUDY if same else DIFFERENT_STUDIES,
        source=source_name(there),
        runs_before=n_ours,
        runs_after=n_ours,
        other_runs=n_theirs,
    )
    ours_status = ours_table.rows["status"]
    theirs_status = theirs_table.rows["status"]

    # Runs of a shared point: completed there and not here (or failed there, pending
    # here) are copied over; completed on both sides are compared below.
    updated = np.zeros(0, dtype=np.int64)
    both = np.zeros(0, dtype=np.int64)
    first = 0
    if same:
        mine, theirs = ours_status[:common], theirs_status[:common]
        done_here = mine == COMPLETED
        both = np.flatnonzero(done_here & (theirs == COMPLETED))
        updated = np.flatnonzero(
            ~done_here & ((theirs == COMPLETED) | ((theirs == FAILED) & (mine == PENDING)))
        )
        report.updated = len(updated)
        report.completed_in_both = len(both)
        first = common

    # Points of the appended runs (trial numbers moved after ours, ids recomputed).
    theirs_parameters = parameters(there)
    ranges = {path: _explored_values(theirs_parameters[path]) for path in explored}
    new_ids: np.ndarray = theirs_ids
    if trial is not None:
        full = trial if trial.startswith("parameters.") else f"parameters.{trial}"
        values = list(ranges[full])
        shift = max(parameters(here)[full].range) + 1 - min(values)
        ranges[full] = [value + shift for value in values]
        new_ids = np.array(_point_ids(there, ranges), dtype=RUN_TABLE_DTYPE["point_id"])

    if options.remove_duplicates:
        # One hash lookup per point (never a comparison of every pair).
        seen = {point_key(pid): idx for idx, pid in enumerate(ours_ids.tolist())}
        candidates = new_ids.tolist()
        kept: list[int] = []
        for idx in range(first, n_theirs):
            key = point_key(candidates[idx])
            if key in seen:
                report.duplicates_removed += 1
                continue
            seen[key] = n_ours + len(kept)
            kept.append(idx)
        appended = np.array(kept, dtype=np.int64)
        new_points = {path: _values_at(values, appended) for path, values in ranges.items()}
    else:
        appended = np.arange(first, n_theirs, dtype=np.int64)
        new_points = {
            path: _values_at(values, slice(first, None)) for path, values in ranges.items()
        }
    appended_ids = new_ids[appended]  # a copy: ``there``'s table is not referenced
    report.appended = len(appended)
    report.runs_after = n_ours + len(appended)
    copied = theirs_status[appended] != PENDING
    sources_array = np.concatenate([updated, appended[copied]])
    targets_array = np.concatenate([updated, n_ours + np.flatnonzero(copied)])

    # Leaves and columns.
    ours_per_run = _per_run_leaves(here)
    per_run_leaves: list[LeafRecord] = []
    columns: list[tuple[str, str]] = []
    for path, leaf in _per_run_leaves(there).items():
        if options.ignores(path):
            continue
        items = [item for item in leaf.item_names() if not options.ignores(f"{path}.{item}")]
        columns += [(path, item) for item in items]
        known = ours_per_run.get(path)
        if known is None or set(items) - set(known.item_names()):
            per_run_leaves.append(
                LeafRecord(
                    path=path,
                    leaf_class=type(leaf).__name__,
                    comment=leaf.comment,
                    per_run=True,
                    pickled=leaf.pickles_values,
                    items=dict.fromkeys(items),
                )
            )
            if known is None:
                report.added.append(path)
    copies = _trajectory_level_copies(here, there, options, report)
    if len(both):
        report.differing = differing_runs(here, there, both, columns)
        if options.strict and report.differing:
            raise MergeConflictError(
                f"cannot merge {source_name(there)} into {here.name!r} with strict=True: "
                f"{len(report.differing)} runs completed in both differ; nothing was written:"
                "\n  " + "\n  ".join(report.differing[:50]),
                report.differing,
            )
    writer_column = there.storage.read_column(*WRITER_KEY)
    writers, writer_map, unknown = _writers(here, there, sources_array, writer_column)
    return MergePlan(
        writers=writers,
        writer_map=writer_map,
        unknown_writer=unknown,
        writer_column=writer_column,
        report=report,
        new_points=new_points,
        new_ids=appended_ids,
        sources=sources_array,
        targets=targets_array,
        per_run_leaves=per_run_leaves,
        copies=copies,
        columns=columns,
    )


def _writers(
    here: Trajectory, there: Trajectory, sources: np.ndarray, known: ColumnData
) -> tuple[list[dict[str, Any]], dict[int, int], int]:
    """The merged list of writer sessions, where the other's go, and the entry for
    copied runs without a writer (-1 when every copied run has one)."""
    writers = [dict(w) for w in here.provenance.get("writers", [])]
    mapping: dict[int, int] = {}
    for position, writer in enumerate(there.provenance.get("writers", [])):
        if writer in writers:  # merged before (or the same shard again)
            mapping[position] = writers.index(writer)
        else:
            writers.append(dict(writer))
            mapping[position] = len(writers) - 1
    unknown = -1
    # Runs of a column are ascending: one sorted lookup, not np.isin's hashing.
    if len(sources) and bool((positions_of(known, sources) < 0).any()):
        location = getattr(there.storage, "path", None)  # file-backed storages have one
        entry = {
            "file": None if location is None else str(location),
            "trajectory": there.name,
            "host": None,
            "pid": None,
            "pytraj": None,
            "executor": None,
            "start": None,
        }
        if entry in writers:
            unknown = writers.index(entry)
        else:
            writers.append(entry)
            unknown = len(writers) - 1
    return writers, mapping, unknown


def _explored_values(parameter: Parameter) -> Sequence[Any]:
    """A parameter's explored values: the column itself when it is one of Python scalars
    (kept an array through the merge: sliced, appended and stored without a Python
    object per run), else a list."""
    raw = parameter.raw_range
    if type(raw) is ExploredColumn and raw.has_python_values:
        return raw
    return list(parameter.range)


def _values_at(values: Sequence[Any], positions: slice | np.ndarray) -> Sequence[Any]:
    """``values`` at ``positions`` (a slice, or ascending indices): a column stays one."""
    if isinstance(values, ExploredColumn):
        return values.take(positions)
    if isinstance(positions, slice):
        return list(values[positions])
    return [values[i] for i in positions.tolist()]


def _point_ids(traj: Trajectory, ranges: dict[str, Sequence[Any]]) -> list[bytes]:
    """Point ids of ``traj``'s runs with its explored values replaced by ``ranges``."""
    fixed = {path: p.default for path, p in parameters(traj).items() if not p.is_explored}
    return point_ids(fixed, ranges, range(len(traj)))


def _trajectory_level_copies(
    here: Trajectory, there: Trajectory, options: MergeOptions, report: MergeReport
) -> list[TrajectoryLevelCopy]:
    ours = _data_leaves(here)
    ours_all = {leaf.full_name for leaf in here.iter_leaves()}
    copies: list[TrajectoryLevelCopy] = []
    for path, leaf in _data_leaves(there).items():
        if options.ignores(path):
            continue
        mine = ours.get(path)
        if mine is None:
            copies.append(TrajectoryLevelCopy(leaf, path))
            report.added.append(path)
            continue
        if _values_match(_leaf_value(mine), _leaf_value(leaf)):
            continue
        branch, rest = path.split(".", 1)
        destination = f"{branch}.{there.name}.{rest}"
        kept = ours.get(destination)
        if kept is not None and _values_match(_leaf_value(kept), _leaf_value(leaf)):
            continue  # merged before: the differing value is there already
        if destination in ours_all:
            raise MergeConflictError(
                f"cannot merge {source_name(there)} into {here.name!r}: {path} differs "
                f"({describe(_leaf_value(mine))} here, {describe(_leaf_value(leaf))} there) "
                f"and {destination}, where the other value would be kept, holds another "
                "value; nothing was written",
                [f"{path}: {describe(_leaf_value(mine))} / {describe(_leaf_value(leaf))}"],
            )
        copies.append(TrajectoryLevelCopy(leaf, destination))
        report.renamed.append(f"{path} -> {destination}")
    return copies


def _values_match(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    return values_equal(a, b)
