"""The merging side of a trajectory: ``traj.merge`` and its merge records.

:class:`MergeEntry` gives :class:`~pytraj.trajectory.trajectory.Trajectory` its
``merge`` and ``merges``; the decisions (checks, plan, report) are in
:mod:`~pytraj.trajectory.merging`, the copying of runs column by column in
:mod:`~pytraj.trajectory.mergecopy`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from pytraj.errors import OptionError
from pytraj.leaves.base import Leaf
from pytraj.leaves.parameter import Parameter
from pytraj.leaves.result import Result
from pytraj.trajectory import mergecopy, merging
from pytraj.tree.names import split_path

if TYPE_CHECKING:
    from pytraj.trajectory.trajectory import Trajectory

__all__ = ["MergeEntry"]


class MergeEntry:
    """Merging another trajectory into this one (mixed into Trajectory)."""

    __slots__ = ()

    @property
    def _trajectory(self) -> Trajectory:
        return cast("Trajectory", self)

    def merge(
        self,
        other: MergeEntry,
        *,
        remove_duplicates: bool = False,
        ignore_data: tuple[str, ...] | list[str] = (),
        trial_parameter: str | None = None,
        strict: bool = False,
        dry_run: bool = False,
    ) -> merging.MergeReport:
        """Join ``other``'s runs and data into this trajectory (``other`` is not changed).

        Shards of one study (equal point ids) are matched run by run: a run completed in
        either is completed here. Different studies (the same parameters, other points)
        are appended and renumbered. The rules for values on both sides are in
        :mod:`pytraj.trajectory.merging`; :func:`pytraj.merge_files` adds backups and
        deleting the inputs.

        Parameters
        ----------
        other
            The trajectory to merge in.
        remove_duplicates
            Drop runs of ``other`` whose point is present here already.
        ignore_data
            Full names of results / derived parameters / config (or groups) not to copy.
        trial_parameter
            An explored int parameter numbering repeated trials: ``other``'s trials are
            renumbered after this trajectory's first, so its runs become new points.
        strict
            Refuse runs completed on both sides with different values (otherwise the
            values here are kept and the runs reported).
        dry_run
            Only report what would happen.

        Returns
        -------
        MergeReport
            What was merged; also stored in :attr:`merges` (unless ``dry_run``).

        Raises
        ------
        MergeConflictError
            When the two cannot be merged; it names every difference with both values,
            and nothing is written.
        """
        traj = self._trajectory
        traj.lifecycle.ensure_idle("merge")
        if not isinstance(other, MergeEntry) or other is self:
            raise OptionError("merge takes another pytraj.Trajectory")
        source = other._trajectory
        options = merging.MergeOptions(
            remove_duplicates=bool(remove_duplicates),
            ignore_data=tuple(ignore_data),
            trial_parameter=trial_parameter,
            strict=bool(strict),
        )
        traj.exploration.ensure_point_ids()
        source.exploration.ensure_point_ids()
        plan = merging.plan_merge(traj, source, options)
        plan.report.dry_run = bool(dry_run)
        if dry_run:
            return plan.report
        if plan.report.appended:
            traj.exploration.append_points(plan.new_points, plan.new_ids)
        for copy in plan.copies:
            self._copy_leaf(copy.leaf, copy.destination)
        for leaf in plan.per_run_leaves:
            traj.lifecycle.learn_leaf(leaf)
        point_ids = traj.run_table.point_id_array().copy()
        # A storage that journals the runs (a file you opened) gets them in batches as
        # small as env.run's, and the merge is recorded once they are in; a disposable
        # one (memory, merge_files' temporary output, which a crash discards whole)
        # stores whole columns as they come, and the record goes into the definition
        # written with the first batch instead of a second definition after the last.
        disposable = traj.storage.disposable
        most = mergecopy.BULK_RUNS if disposable else mergecopy.BATCH_RUNS
        if disposable:
            self._record(plan)
        for table, columns in mergecopy.column_batches(plan, source, point_ids, most):
            traj.lifecycle.commit_columns(table, columns, plan.per_run_leaves)
            traj.storage.flush()  # memory stays bounded by one batch, whatever the data
        if not disposable:
            self._record(plan)
        if traj.storage.writable:
            if traj.definition_dirty:
                traj.store()
            else:
                traj.storage.flush()
        return plan.report

    def _record(self, plan: merging.MergePlan) -> None:
        """Enter the merge (and the writer sessions it brings) into the provenance."""
        traj = self._trajectory
        if plan.writers:
            traj.provenance["writers"] = plan.writers
        traj.provenance["merges"] = [*self.merges, plan.report.to_record()]
        traj.mark_definition_changed()

    def _copy_leaf(self, leaf: Leaf, destination: str) -> None:
        branch, rest = destination.split(".", 1)
        copy: Leaf
        if isinstance(leaf, Parameter):
            copy = type(leaf)(split_path(rest)[-1], leaf.default, comment=leaf.comment)
        else:
            assert isinstance(leaf, Result)  # every leaf is a Parameter or a Result
            copy = type(leaf)(split_path(rest)[-1], comment=leaf.comment)
            for item, value in leaf.items.items():
                copy.set(item, value)
        self._trajectory.add_leaf(branch, rest, copy)
        if len(leaf.annotations):
            copy.annotations.update(leaf.annotations.to_dict())

    @property
    def merges(self) -> list[dict[str, Any]]:
        """The merges into this trajectory, oldest first (when, what, run counts)."""
        return [dict(record) for record in self._trajectory.provenance.get("merges", [])]
