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
from pytraj.storage.interface import Storage
from pytraj.storage.memory import MemoryStorage
from pytraj.storage.records import StudyDefinition
from pytraj.trajectory.analysis import StudyViews
from pytraj.trajectory.columncache import ColumnCache
from pytraj.trajectory.definition import (
    deferred_run_table,
    has_point_ids,
    restore_tree,
    to_definition,
)
from pytraj.trajectory.exploration import Exploration
from pytraj.trajectory.lifecycle import RestoreRun, RunLifecycle
from pytraj.trajectory.mergeentry import MergeEntry
from pytraj.trajectory.runfolders import RunFolders
from pytraj.trajectory.runtable import RunTable
from pytraj.trajectory.shortnames import BRANCHES, choose
from pytraj.trajectory.views import RunsView
from pytraj.tree.names import split_path
from pytraj.tree.node import Group, Node

if TYPE_CHECKING:
    from pytraj.trajectory.spaces import ParameterSpace

__all__ = ["BRANCHES", "Trajectory"]


class Trajectory(StudyViews, MergeEntry, RunFolders, Group):
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
        "_column_cache",
        "_created",
        "_definition_dirty",
        "_exploration",
        "_lifecycle",
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
            # Imported here: ``import pytraj`` stays fast without PyTables.
            from pytraj.storage.hdf5 import open_new_trajectory

            storage = open_new_trajectory(filename, name, overwrite=overwrite, options=file_options)
        self._run_table = RunTable(1)
        self._storage: Storage = storage if storage is not None else MemoryStorage(name)
        self._created = time.time()
        self._provenance: dict[str, Any] = {}
        self._definition_dirty = True
        self._study_dir: Path | None = None
        # The parts that own the runs, the explored points and the cached columns.
        self._lifecycle = RunLifecycle(self)
        self._exploration = Exploration(self)
        self._column_cache = ColumnCache(self)
        # traj.x -> the node it resolved to; any attach or detach clears it.
        self._short_names: dict[str, Node] = {}
        for branch in BRANCHES:
            self.add_group(branch)

    @classmethod
    def from_definition(cls, definition: StudyDefinition, storage: Storage) -> Trajectory:
        """Rebuild a stored trajectory from its definition, bound to ``storage``.

        The run table is read on first use; trajectory-level values not yet read are
        fetched on first access.
        """
        traj = cls(definition.name, comment=definition.comment, storage=storage)
        restore_tree(traj, definition, storage)
        traj.rebind(
            run_table=deferred_run_table(definition, storage),
            created=definition.created,
            point_ids_valid=has_point_ids(definition),
            definition_dirty=False,
        )
        return traj

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
    def lifecycle(self) -> RunLifecycle:
        """The runs' lifecycle: the active run, the current index, committing records."""
        return self._lifecycle

    @property
    def exploration(self) -> Exploration:
        """The explored points: exploring, expanding and the point ids."""
        return self._exploration

    @property
    def column_cache(self) -> ColumnCache:
        """Per-run columns read from storage (``traj.column_cache.column("results.z", "z")``)."""
        return self._column_cache

    @property
    def definition_dirty(self) -> bool:
        """Whether the tree or the explored points changed since the definition was stored."""
        return self._definition_dirty

    def mark_definition_changed(self) -> None:
        """Say that the definition must be stored again (before the next runs are)."""
        self._definition_dirty = True

    def rebind(
        self,
        storage: Storage | None = None,
        run_table: RunTable | None = None,
        *,
        created: float | None = None,
        point_ids_valid: bool | None = None,
        definition_dirty: bool | None = None,
    ) -> None:
        """Take over a storage and/or a run table (loading or continuing a study).

        Cached columns and resolved per-run leaves are dropped; what is None is kept.
        """
        if storage is not None:
            self._storage = storage
        if run_table is not None:
            self._run_table = run_table
        if created is not None:
            self._created = created
        if point_ids_valid is not None:
            self._exploration.set_ids_valid(point_ids_valid)
        if definition_dirty is not None:
            self._definition_dirty = definition_dirty
        self._column_cache.clear()
        self._column_cache.changed()
        self._lifecycle.forget_nodes()

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
        self._lifecycle.ensure_idle("add parameters")
        if isinstance(name, Parameter):
            return self.add_leaf("parameters", name.name, name)
        leaf = leaf_class(_last(name), value, comment=comment)
        return self.add_leaf("parameters", name, leaf)

    def add_config(
        self,
        name: str,
        value: Any = None,
        comment: str = "",
        *,
        leaf_class: type[Parameter] = Parameter,
    ) -> Parameter:
        """Add a configuration value under ``config`` (not part of the parameter point)."""
        self._lifecycle.ensure_idle("add config")
        return self.add_leaf("config", name, leaf_class(_last(name), value, comment=comment))

    def add_derived_parameter(
        self,
        name: str,
        value: Any = None,
        comment: str = "",
        *,
        leaf_class: type[Leaf] | None = None,
    ) -> Leaf:
        """Add a derived parameter: computed from the parameters, per run inside a run."""
        if self._lifecycle.active is not None:
            return self._lifecycle.add_per_run(
                "derived_parameters",
                name,
                {_last(name): value},
                comment=comment,
                cls=leaf_class or Result,
            )
        cls = leaf_class or Parameter
        if not issubclass(cls, Parameter):
            raise NodeTypeError(
                f"derived parameters outside runs are Parameters; {cls.__name__} is not one"
            )
        return self.add_leaf("derived_parameters", name, cls(_last(name), value, comment=comment))

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
        if len(args) == 1 and not items and type(name) is str and self._lifecycle.active:
            return self._lifecycle.add_single(  # a run's single value: the hot path
                "results", name, args[0], comment=comment, cls=leaf_class
            )
        if isinstance(name, Result):
            if self._lifecycle.active is not None:
                return self._lifecycle.add_per_run(
                    "results", name.name, name.items, comment=name.comment, cls=type(name)
                )
            return self.add_leaf("results", name.name, name)
        if len(args) > 1:
            raise TypeError(f"add_result({name!r}, ...) takes one positional value")
        if args:
            if _last(name) in items:
                raise NodeExistsError(
                    f"item {_last(name)!r} of result {name!r} is given twice (as the "
                    "positional value and as a keyword)"
                )
            items = {_last(name): args[0], **items}
        if self._lifecycle.active is not None:
            return self._lifecycle.add_per_run(
                "results", name, items, comment=comment, cls=leaf_class
            )
        # Items are set one by one rather than passed as keywords, so that no item name
        # (``comment``, ``per_run``, ...) can collide with a keyword of the leaf class.
        leaf = leaf_class(_last(name), comment=comment)
        for item, value in items.items():
            leaf[item] = value
        return self.add_leaf("results", name, leaf)

    def add_leaf(self, branch: str, path: str, leaf: Leaf) -> Any:
        """Attach a ready ``leaf`` at dotted ``path`` below ``branch`` (groups are created).

        The ``add_*`` methods build on it; a merge copies leaves with it.
        """
        parts = split_path(path)
        if parts[0] == branch and len(parts) > 1:
            parts = parts[1:]
        group = self._branch(branch)
        parent = group.require_group(".".join(parts[:-1])) if len(parts) > 1 else group
        existing = parent.child(parts[-1])
        if existing is not None:
            raise NodeExistsError(
                f"{existing.full_name!r} exists already; "
                "change it through traj.node(path), or remove it first"
            )
        parent.attach(leaf, name=parts[-1])
        self._definition_dirty = True
        if isinstance(leaf, Parameter) and branch == "parameters":
            self._lifecycle.parameters_changed()
            self._parameters_changed(leaf)
        return leaf

    def _on_attach_below(self, node: Node) -> None:
        self._short_names.clear()

    def _on_detach(self, node: Node) -> None:
        self._short_names.clear()
        self._lifecycle.forget_nodes()
        self._column_cache.clear()
        self._definition_dirty = True
        self._exploration.invalidate()  # a removed parameter changes pending points

    def node_at(self, full: str) -> Node | None:
        """The node at exactly ``full`` (no search by short name), or None."""
        try:
            return Group.node(self, full)
        except NodeNotFoundError:
            return None

    # -- natural naming --------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        # ``traj.x`` in a run (the hot path): a plain parameter found before, read at the
        # current point without the search; anything else as every group does it.
        try:
            found = self._short_names.get(name) if name[:1] != "_" else None
        except AttributeError:  # not initialised yet (unpickling, copying)
            found = None
        if type(found) is Parameter and name not in self._children:
            idx = self._lifecycle.current_idx
            return found.value_at(idx) if idx >= 0 else found.default
        return super().__getattr__(name)

    def find_below(self, name: str) -> Node:
        """``traj.x``: the unique leaf named x, searching the branches in order."""
        found = self._short_names.get(name)
        if found is None:
            found = self._short_names[name] = choose(self._candidates(name), name, self.name)
        return found

    def node(self, path: str) -> Node:
        """Return the node at ``path``; a single name is searched as ``traj.x`` does."""
        if not isinstance(path, str):
            raise self._key_error(path)
        if "." not in path and "/" not in path and path not in self._children:
            try:
                return self.find_below(path)
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
        return self._lifecycle.current_idx

    @property
    def run_table(self) -> RunTable:
        """Status, attempts, times and hosts of every run."""
        return self._run_table

    @property
    def runs(self) -> RunsView:
        """The runs as a sequence: ``traj.runs[3].x``, ``traj.runs[3].results.z``."""
        return RunsView(self)

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
    def has_study_dir(self) -> bool:
        """Whether a study folder was chosen (else :attr:`study_dir` is the default)."""
        return self._study_dir is not None

    def point_id(self, idx: int) -> bytes:
        """The 16-byte point id of run ``idx`` (``traj.runs[idx].point_id`` is its hex)."""
        self._exploration.ensure_point_ids()
        return self._run_table.point_id(self.check_index(idx))

    def set_run(self, idx: int | None) -> RestoreRun[Trajectory]:
        """Set the trajectory to run ``idx`` (None: back to the defaults).

        Returns an object that also works as a context manager restoring the previous
        state: ``with traj.set_run(3): ...``.
        """
        return RestoreRun(self, self._lifecycle, self._lifecycle.set_run(idx))

    def check_index(self, idx: int) -> int:
        """Run index ``idx`` as a position (negative counts from the end), or RunError."""
        n = len(self._run_table)
        if type(idx) is int and 0 <= idx < n:
            return idx
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
        lifecycle = self._lifecycle
        state = lifecycle.begin(idx)
        try:
            yield self
        except Exception as exc:
            record = lifecycle.finish(state, exc)
            lifecycle.commit([record])
            raise
        except BaseException:
            lifecycle.abandon()
            raise
        else:
            lifecycle.commit([lifecycle.finish(state)])

    # -- exploration -----------------------------------------------------------------
    def explore(self, space: Mapping[str, Any] | ParameterSpace) -> None:
        """Give explored parameters one value per run (equal-length iterables).

        Accepts a dict of name -> values (``cartesian_product`` gives one) or a
        :class:`ParameterSpace`. Values are coerced to each parameter's type first, so
        nothing changes when one of them is refused.
        """
        self._lifecycle.ensure_idle("explore")
        self._exploration.explore(space)

    def expand(self, space: Mapping[str, Any] | ParameterSpace) -> None:
        """Add points to an explored trajectory; existing runs keep their values."""
        self._lifecycle.ensure_idle("expand")
        self._exploration.expand(space)

    def _parameters_changed(self, parameter: Parameter) -> None:
        if parameter.full_name.startswith("parameters."):
            self._exploration.invalidate()
            self._definition_dirty = True

    # -- storage ---------------------------------------------------------------------
    def store_definition(self) -> None:
        """Write the tree, explored ranges and trajectory-level values to storage."""
        self._exploration.ensure_point_ids()
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


def _last(path: str) -> str:
    return split_path(path)[-1]
