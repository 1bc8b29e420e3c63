"""The looking side of a trajectory: queries, tables, grids and the notebook view.

:class:`StudyViews` gives :class:`~pytraj.trajectory.trajectory.Trajectory` its
``reading`` (the file kept open for a block of reads), ``find``, ``to_dataframe``,
``to_xarray``, ``get_from_runs`` and ``_repr_html_``; each is a thin entry point to the
module that does the work (``query``, ``frames``, ``xarrays``, ``notebook``), which reads
the trajectory through its public API only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, cast

from pytraj.trajectory.frames import get_from_runs, to_dataframe
from pytraj.trajectory.notebook import trajectory_html
from pytraj.trajectory.query import find_runs
from pytraj.trajectory.xarrays import to_xarray

if TYPE_CHECKING:
    from pytraj.trajectory.trajectory import Trajectory

__all__ = ["StudyViews"]


class StudyViews:
    """Queries and views of the runs of a study (mixed into Trajectory)."""

    __slots__ = ()

    @property
    def _study(self) -> Trajectory:
        return cast("Trajectory", self)

    def reading(self) -> AbstractContextManager[None]:
        """Keep the file open for reading until the block ends (fast repeated reads).

        Outside it every read opens and closes the file. Meanwhile another process cannot
        write the file, and a write of this process closes, writes and reopens it
        (docs/storage.md, "Reading"). ``with traj.reading(): traj.results.z[i]``
        """
        return self._study.storage.held_open()

    def find(self, *predicates: str | Callable[[Any], Any], **conditions: Any) -> list[int]:
        """Indices of the runs matching every predicate and condition.

        Conditions are ``name__op=value`` over parameters, per-run scalar results and
        their items (``**{"diag.peak__gt": 0}``) and run-table fields (``status``,
        ``runtime`` ...); ``op`` is one of ``eq`` (the default), ``ne``, ``lt``, ``le``,
        ``gt``, ``ge``, ``in``, ``between`` (inclusive ``(low, high)``) or ``isnull``
        (the run has no value). A callable value is applied to each value
        (``z=lambda v: v > 0``). Positional predicates are query strings
        (``"x >= 2 and y in [1, 2]"``, see :mod:`pytraj.trajectory.expression`) or
        callables taking a run (``lambda run: run.x > run.y``).

        >>> import pytraj as pt
        >>> traj = pt.Trajectory("t")
        >>> _ = traj.add_parameter("x", 1)
        >>> traj.explore({"x": [1, 2, 3, 4]})
        >>> traj.find(x__between=(2, 3)), traj.find("x in [1, 4] or x > 3")
        ([1, 2], [0, 3])
        """
        return find_runs(self._study, predicates, conditions).tolist()

    def to_dataframe(
        self,
        results: Iterable[str] | None = None,
        include: Iterable[str] = (),
        *,
        status: bool = False,
    ) -> Any:
        """One row per run (index: run index): explored parameters and scalar results.

        Parameters
        ----------
        results
            Per-run result items to show (``"z"``, ``"stats.mean"``, ``"stats"`` for all
            its items); None: every item holding one scalar per run.
        include
            Run-table fields to add: ``status``, ``runtime`` (seconds), ``host``,
            ``attempt``, ``start``, ``finish``, ``pid``.
        status
            The same as ``include=("status",)`` (kept for older scripts).

        Columns keep their dtype (int64 where every run has a value; nullable ``Int64``
        / ``boolean`` where some runs lack one, NaN for floats).
        """
        fields = [include] if isinstance(include, str) else list(include)
        if status and "status" not in fields:
            fields.insert(0, "status")
        return to_dataframe(self._study, results=results, include=fields)

    def to_xarray(self, results: Iterable[str] | None = None) -> Any:
        """The study as an ``xarray.Dataset`` (needs the ``xarray`` extra).

        Explored as a cartesian product: one dimension per explored parameter, so
        ``ds.z.sel(x=2.0)`` works (array results keep their own dimensions after
        them); otherwise a ``run`` dimension. ``results`` as in :meth:`to_dataframe`.
        """
        return to_xarray(self._study, results)

    def get_from_runs(self, name: str) -> dict[int, Any]:
        """Run index -> value of the per-run result ``name``, for runs that have one.

        Works for values of any type (arrays, DataFrames, dicts ...).
        """
        return get_from_runs(self._study, name)

    def _repr_html_(self) -> str:
        return trajectory_html(self._study)
