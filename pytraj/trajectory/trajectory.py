"""The Trajectory: root of the tree, its four branches, and the runs of a study."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pytraj.errors import (
    AmbiguousNameError,
    NodeAttributeError,
    NodeExistsError,
    NodeNotFoundError,
    NodeTypeError,
    OptionError,
    RunError,
)
from pytraj.leaves.base import Leaf
from pytraj.leaves.parameter import Parameter
from pytraj.leaves.result import Result
from pytraj.storage.interface import ColumnData, Storage
from pytraj.storage.memory import MemoryStorage
from pytraj.storage.records import RunRecord
from pytraj.trajectory import exploration, lifecycle
from pytraj.trajectory.analysis import StudyViews
from pytraj.trajectory.mergeentry import MergeEntry
from pytraj.trajectory.running import RunState
from pytraj.trajectory.runtable import RunTable
from pytraj.trajectory.views import RunsView
from pytraj.tree.names import split_path
from pytraj.tree.node import Group, Node

if TYPE_CHECKING:
    from pytraj.trajectory.spaces import ParameterSpace

__all__ = ["BRANCHES", "Trajectory"]

#: The four standard branches, in the order ``traj.x`` searches them.
BRANCHES = ("parameters", "derived_parameters", "results", "config")
_PREFERENCE = {name: rank for rank, name in enumerate(BRANCHES)}


class Trajectory(StudyViews, MergeEntry, Group):
    """The root of a study: parameters, derived parameters, results, config and runs.

    Parameters
    ----------
    name
        Name of the trajectory (one file can hold several).
    comment
        What the study is about.
    filename
        An HDF5 file to store the trajectory in (created if needed; other trajectories
        in the file are kept). Without it the trajectory lives in memory.
    overwrite
        Replace a trajectory of the same name in ``filename`` (only that one);
        otherwise an existing one is an error.
    file_options
        Compression and checksum settings for the file
        (:class:`pytraj.storage.hdf5.FileOptions`).
    storage
        A ready storage backend (advanced; excludes ``filename``).

    Examples
    --------
    >>> import pytraj as pt
    >>> traj = pt.Trajectory("demo")
    >>> _ = traj.add_parameter("x", 1.0, comment="first dimension")
    >>> traj.explore({"x": [1.0, 2.0, 3.0]})
    >>> len(traj), traj.x
    (3, 1.0)
    >>> with traj.start_run(1):
    ...     _ = traj.add_result("z", traj.x * 10)
    >>> traj.results.z[1]
    20.0
    """

    __slots__ = (
        "_active_run",
        "_column_cache",
        "_created",
        "_current_idx",
        "_data_version",
        "_definition_dirty",
        "_parameters_locked",
        "_per_run_nodes",
        "_point_ids_valid",
        "_provenance",
        "_run_table",
        "_short_names",
        "_storage",
        "_study_dir",
    )

    def __init__(
        self,
        name: str = "trajectory",
        *,
        comment: str = "",
        filename: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        file_options: Any = None,
        storage: Storage | None = None,
    ) -> None:
        super().__init__(name, comment=comment)
        if filename is not None:
            if storage is not None:
                raise OptionError("give either filename= or storage=, not both")
            from pytraj.storage.hdf5 import open_new_trajectory

            storage = open_new_trajectory(filename, name, overwrite=overwrite, options=file_options)
        self._current_idx = -1
        self._active_run: RunState | None = None
        self._run_table = RunTable(1)
        self._storage: Storage = storage if storage is not None else MemoryStorage(name)
        self._created = time.time()
        self._provenance: dict[str, Any] = {}
        self._data_version = 0
        self._column_cache: dict[tuple[str, str], tuple[int, ColumnData]] = {}
        self._point_ids_valid = False
        self._definition_dirty = True
        self._study_dir: Path | None = None
        # Hot-path caches for runs: every parameter locked already; name -> per-run leaf.
        self._parameters_locked = False
        self._per_run_nodes: dict[tuple[str, str], tuple[Result, str]] = {}
        # traj.x -> the node it resolved to; any attach or detach clears it.
        self._short_names: dict[str, Node] = {}
        for branch in BRANCHES:
            self.add_group(branch)

    # -- shortcuts -------------------------------------------------------------------
    @property
    def par(self) -> Group:
        """The ``parameters`` branch."""
        return self._branch("parameters")

    @property
    def dpar(self) -> Group:
        """The ``derived_parameters`` branch."""
        return self._branch("derived_parameters")

    @property
    def res(self) -> Group:
        """The ``results`` branch."""
        return self._branch("results")

    @property
    def conf(self) -> Group:
        """The ``config`` branch."""
        return self._branch("config")

    def _branch(self, name: str) -> Group:
        return self._children[name]  # type: ignore[return-value]  # branches are groups

    @property
    def storage(self) -> Storage:
        """The backend holding this trajectory's runs."""
        return self._storage

    @property
    def created(self) -> float:
        """When the trajectory was created (UTC epoch seconds)."""
        return self._created

    @property
    def provenance(self) -> dict[str, Any]:
        """Versions, platform, user, script ... recorded when the study ran."""
        return self._provenance

    # -- adding leaves ---------------------------------------------------------------
    def add_parameter(
        self,
        name: str | Parameter,
        value: Any = None,
        comment: str = "",
        *,
        leaf_class: type[Parameter] = Parameter,
    ) -> Parameter:
        """Add a parameter under ``parameters`` (dotted names create groups).

        Parameters
        ----------
        name
            Name or dotted path below ``parameters`` (``"net.size"``), or a ready
            :class:`Parameter`.
        value
            The default value.
        comment
            What the parameter means.
        leaf_class
            A :class:`Parameter` subclass, e.g. :class:`PickleParameter`.
        """
        self._ensure_no_active_run("add parameters")
        if isinstance(name, Parameter):
            return self._add_leaf("parameters", name.name, name)
        leaf = leaf_class(_last(name), value, comment=comment)
        return self._add_leaf("parameters", name, leaf)

    def add_config(
        self,
        name: str,
        value: Any = None,
        comment: str = "",
        *,
        leaf_class: type[Parameter] = Parameter,
    ) -> Parameter:
        """Add a configuration value under ``config`` (not part of the parameter point)."""
        self._ensure_no_active_run("add config")
        return self._add_leaf("config", name, leaf_class(_last(name), value, comment=comment))

    def add_derived_parameter(
        self,
        name: str,
        value: Any = None,
        comment: str = "",
        *,
        leaf_class: type[Leaf] | None = None,
    ) -> Leaf:
        """Add a derived parameter: computed from the parameters, per run inside a run."""
        if self._active_run is not None:
            return self._add_per_run(
                "derived_parameters", name, {_last(name): value}, comment, leaf_class or Result
            )
        cls = leaf_class or Parameter
        if not issubclass(cls, Parameter):
            raise NodeTypeError(
                f"derived parameters outside runs are Parameters; {cls.__name__} is not one"
            )
        return self._add_leaf("derived_parameters", name, cls(_last(name), value, comment=comment))

    def add_result(
        self,
        name: str | Result,
        /,
        *args: Any,
        comment: str = "",
        leaf_class: type[Result] = Result,
        **items: Any,
    ) -> Result:
        """Add a result under ``results``; inside a run it belongs to that run.

        ``add_result("z", 42)`` stores one item named ``z``; ``add_result("stats",
        mean=1.0, std=0.2)`` stores two (``traj.results.stats.mean``).

        Every name works for the single value: ``add_result("comment", 1)`` and
        ``add_result("name", 1)`` store an item ``comment`` / ``name``. As keyword items,
        ``comment`` and ``leaf_class`` are this method's options; add such an item with
        ``traj.node("results.stats")["comment"] = 1`` (outside runs).
        """
        if isinstance(name, Result):
            if self._active_run is not None:
                return self._add_per_run("results", name.name, name.items, name.comment, type(name))
            return self._add_leaf("results", name.name, name)
        if len(args) > 1:
            raise TypeError(f"add_result({name!r}, ...) takes one positional value")
        if args:
            if _last(name) in items:
                raise NodeExistsError(
                    f"item {_last(name)!r} of result {name!r} is given twice (as the "
                    "positional value and as a keyword)"
                )
            items = {_last(name): args[0], **items}
        if self._active_run is not None:
            return self._add_per_run("results", name, items, comment, leaf_class)
        # Items are set one by one rather than passed as keywords, so that no item name
        # (``comment``, ``per_run``, ...) can collide with a keyword of the leaf class.
        leaf = leaf_class(_last(name), comment=comment)
        for item, value in items.items():
            leaf[item] = value
        return self._add_leaf("results", name, leaf)

    def _add_leaf(self, branch: str, path: str, leaf: Leaf) -> Any:
        parts = split_path(path)
        if parts[0] == branch and len(parts) > 1:
            parts = parts[1:]
        group = self._branch(branch)
        parent = group.require_group(".".join(parts[:-1])) if len(parts) > 1 else group
        if parts[-1] in parent._children:
            raise NodeExistsError(
                f"{parent._children[parts[-1]].full_name!r} exists already; "
                "change it through traj.node(path), or remove it first"
            )
        if leaf.name != parts[-1]:
            leaf._name = parts[-1]
        parent._attach(leaf)
        self._definition_dirty = True
        if isinstance(leaf, Parameter) and branch == "parameters":
            self._parameters_locked = False
            self._parameters_changed(leaf)
        return leaf

    def _on_attach_below(self, node: Node) -> None:
        self._short_names.clear()

    def _on_detach(self, node: Node) -> None:
        self._short_names.clear()
        self._per_run_nodes.clear()
        self._column_cache.clear()
        self._definition_dirty = True
        self._point_ids_valid = False  # a removed parameter changes pending points
        self._parameters_locked = False

    def _existing(self, full: str) -> Node | None:
        try:
            return Group.node(self, full)
        except NodeNotFoundError:
            return None

    # -- natural naming --------------------------------------------------------------
    def _find_below(self, name: str) -> Node:
        """``traj.x``: the unique leaf named x, searching the branches in order."""
        found = self._short_names.get(name)
        if found is None:
            found = self._short_names[name] = self._search(name)
        return found

    def _search(self, name: str) -> Node:
        candidates = self._candidates(name)
        leaves = [node for node in candidates if node.is_leaf]
        if leaves:
            best = min(_PREFERENCE.get(node.full_name.split(".")[0], 99) for node in leaves)
            chosen = [n for n in leaves if _PREFERENCE.get(n.full_name.split(".")[0], 99) == best]
            if len(chosen) == 1:
                return chosen[0]
            names = ", ".join(repr(node.full_name) for node in chosen)
            raise AmbiguousNameError(f"{name!r} matches several leaves: {names}; use a full path")
        groups = [node for node in candidates if node.is_group]
        if len(groups) == 1:
            return groups[0]
        if groups:
            names = ", ".join(repr(node.full_name) for node in groups)
            raise AmbiguousNameError(f"{name!r} matches several groups: {names}; use a full path")
        raise NodeAttributeError(f"trajectory {self.name!r} has no node named {name!r}")

    def node(self, path: str) -> Node:
        """Return the node at ``path``; a single name is searched as ``traj.x`` does."""
        if not isinstance(path, str):
            raise self._key_error(path)
        if "." not in path and "/" not in path and path not in self._children:
            try:
                return self._find_below(path)
            except NodeAttributeError:
                raise NodeNotFoundError(
                    f"trajectory {self.name!r} has no node named {path!r}"
                ) from None
        return super().node(path)

    def _key_hint(self, key: object) -> str:
        # traj[0] is the natural guess for "run 0" (pypet users index runs by number).
        if isinstance(key, int | np.integer | slice) and not isinstance(key, bool):
            if isinstance(key, slice):
                shown = ":".join("" if end is None else str(end) for end in (key.start, key.stop))
            else:
                shown = str(key)
            return f"; runs are traj.runs[{shown}] (run values: traj.runs[i].x)"
        return ""

    def _set_child_value(self, name: str, value: Any) -> None:
        raise AttributeError(
            f"cannot assign traj.{name}: add leaves with add_parameter / add_result, and "
            f"change a parameter's default with traj.node({name!r}).value = ..."
        )

    # -- runs ------------------------------------------------------------------------
    def __len__(self) -> int:
        """The number of runs (1 when nothing is explored)."""
        return len(self._run_table)

    @property
    def idx(self) -> int:
        """Index of the run the trajectory is set to, -1 when none."""
        return self._current_idx

    @property
    def run_table(self) -> RunTable:
        """Status, attempts, times and hosts of every run."""
        return self._run_table

    @property
    def runs(self) -> RunsView:
        """The runs as a sequence: ``traj.runs[3].x``, ``traj.runs[3].results.z``."""
        return RunsView(self)

    @property
    def seed(self) -> int:
        """A reproducible seed for the current run, derived from its point id."""
        if self._current_idx < 0:
            raise RunError("traj.seed needs a current run (inside a run or after set_run)")
        return int.from_bytes(self.point_id(self._current_idx)[:8], "little") >> 1

    @property
    def study_dir(self) -> Path:
        """Folder for files the study writes besides results (per-run working dirs).

        Beside the HDF5 file (``<file stem>_<trajectory>/``) when an Environment set it,
        else ``./<trajectory>_files``.
        """
        if self._study_dir is None:
            return Path.cwd() / f"{self.name}_files"
        return self._study_dir

    @study_dir.setter
    def study_dir(self, path: str | os.PathLike[str]) -> None:
        self._study_dir = Path(path)

    @property
    def run_dir(self) -> Path:
        """A working directory for the current run, created on first use.

        Named by run index and point id (``runs/run_00000003_1a2b3c4d``), so a rerun of
        the same point in a later study finds its own folder again.
        """
        if self._current_idx < 0:
            raise RunError("traj.run_dir needs a current run (inside a run or after set_run)")
        idx = self._current_idx
        folder = self.study_dir / "runs" / f"run_{idx:08d}_{self.point_id(idx).hex()[:8]}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def point_id(self, idx: int) -> bytes:
        """The 16-byte point id of run ``idx`` (``traj.runs[idx].point_id`` is its hex)."""
        exploration.ensure_point_ids(self)
        return self._run_table.point_id(self._check_index(idx))

    def set_run(self, idx: int | None) -> _RestoreRun:
        """Set the trajectory to run ``idx`` (None: back to the defaults).

        Returns an object that also works as a context manager restoring the previous
        state: ``with traj.set_run(3): ...``.
        """
        if self._active_run is not None:
            raise RunError(f"run {self._active_run.idx} is in progress; finish it first")
        previous = self._current_idx
        self._current_idx = -1 if idx is None else self._check_index(idx)
        return _RestoreRun(self, previous)

    def _check_index(self, idx: int) -> int:
        n = len(self._run_table)
        if not isinstance(idx, int | np.integer):
            raise TypeError(f"run indices are integers, got {type(idx).__name__}")
        position = int(idx) + n if idx < 0 else int(idx)
        if not 0 <= position < n:
            raise RunError(f"run {idx} does not exist: trajectory {self.name!r} has {n} runs")
        return position

    @contextmanager
    def start_run(self, idx: int) -> Iterator[Trajectory]:
        """Run ``idx`` by hand: results added in the block belong to the run.

        On a clean exit the run is committed as completed; if the block raises, the run
        is recorded as failed (with the traceback) and the exception propagates. An
        interrupt (Ctrl-C) leaves the run pending.
        """
        state = self._open_run(idx)
        try:
            yield self
        except Exception as exc:
            record = self._close_run(state, exc)
            self._commit_records([record])
            raise
        except BaseException:
            self._abandon_run()
            raise
        else:
            self._commit_records([self._close_run(state)])

    # The run machinery lives in pytraj.trajectory.lifecycle; these are its entry points
    # (the Environment and its workers drive runs through them).
    def _open_run(self, idx: int) -> RunState:
        return lifecycle.open_run(self, idx)

    def _close_run(self, state: RunState, exc: BaseException | None = None) -> RunRecord:
        return lifecycle.close_run(self, state, exc)

    def _abandon_run(self) -> None:
        lifecycle.abandon_run(self)

    def _commit_records(self, records: list[RunRecord]) -> None:
        lifecycle.commit_records(self, records)

    def _add_per_run(
        self, branch: str, path: str, items: Mapping[str, Any], comment: str, cls: type[Leaf]
    ) -> Any:
        return lifecycle.add_per_run(self, branch, path, items, comment=comment, cls=cls)

    def _create_per_run_leaf(
        self, full: str, class_name: str, comment: str, item_names: list[str]
    ) -> Result:
        return lifecycle.create_per_run_leaf(self, full, class_name, comment, item_names)

    def _per_run_set(self, leaf: Result, item: str, value: Any, full: str | None = None) -> None:
        lifecycle.per_run_set(self, leaf, item, value, full)

    def _per_run_item(self, leaf: Result, item: str) -> Any:
        return lifecycle.per_run_item(self, leaf, item)

    def _column(self, path: str, item: str) -> ColumnData:
        return lifecycle.column(self, path, item)

    def _cell(self, path: str, item: str, idx: int) -> Any:
        return lifecycle.cell(self, path, item, idx)

    # -- exploration -----------------------------------------------------------------
    def explore(self, space: Mapping[str, Any] | ParameterSpace) -> None:
        """Give explored parameters one value per run (equal-length iterables).

        Accepts a dict of name -> values (``cartesian_product`` gives one) or a
        :class:`ParameterSpace`. Values are coerced to each parameter's type first, so
        nothing changes when one of them is refused.
        """
        self._ensure_no_active_run("explore")
        exploration.explore(self, space)

    def expand(self, space: Mapping[str, Any] | ParameterSpace) -> None:
        """Add points to an explored trajectory; existing runs keep their values."""
        self._ensure_no_active_run("expand")
        exploration.expand(self, space)

    def _parameters_changed(self, parameter: Parameter) -> None:
        if parameter.full_name.startswith("parameters."):
            self._point_ids_valid = False
            self._definition_dirty = True

    def _ensure_no_active_run(self, action: str) -> None:
        if self._active_run is not None:
            raise RunError(f"cannot {action} while run {self._active_run.idx} is in progress")

    # -- storage ---------------------------------------------------------------------
    def store_definition(self) -> None:
        """Write the tree, explored ranges and trajectory-level values to storage."""
        from pytraj.trajectory.definition import to_definition

        exploration.ensure_point_ids(self)
        self._storage.write_definition(to_definition(self, keep_lazy=True))
        self._definition_dirty = False

    def store(self) -> None:
        """Write everything to storage and make it durable."""
        self.store_definition()
        self._storage.flush()

    def close(self) -> None:
        """Store and release the file (an in-memory trajectory stays usable)."""
        try:
            if self._storage.writable:
                self.store_definition()
        finally:
            # Even when storing fails (a full disk) the file is released; its journal
            # keeps what could not be stored.
            self._storage.close()

    def __enter__(self) -> Trajectory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- rendering -------------------------------------------------------------------
    def __repr__(self) -> str:
        counts = self._run_table.counts()
        done = counts["completed"]
        text = f"<Trajectory {self.name!r} {len(self)} runs"
        if done or counts["failed"]:
            text += f" ({done} completed"
            text += f", {counts['failed']} failed)" if counts["failed"] else ")"
        return text + ">"

    def _summary(self) -> str:
        return repr(self)


class _RestoreRun:
    """Returned by :meth:`Trajectory.set_run`; restores the previous run on exit."""

    __slots__ = ("_previous", "_traj")

    def __init__(self, traj: Trajectory, previous: int) -> None:
        self._traj = traj
        self._previous = previous

    def __enter__(self) -> Trajectory:
        return self._traj

    def __exit__(self, *exc_info: object) -> None:
        self._traj._current_idx = self._previous


def _last(path: str) -> str:
    return split_path(path)[-1]
