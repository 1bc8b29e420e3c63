"""The study's file: whether the Environment's trajectory starts afresh or continues one.

An Environment binds its trajectory to the file once: a new study is created in the
file at once; a stored one is adopted before the first run (its completed runs are not
run again) after checking that the script still defines the same study.
"""

from __future__ import annotations

import logging

from pytraj.io import list_trajectories, load
from pytraj.run.options import FileSettings
from pytraj.run.resume import (
    RunPlan,
    adopt,
    compare,
    make_plan,
    mismatch_error,
    refresh_run_table,
)
from pytraj.storage.memory import MemoryStorage
from pytraj.trajectory.exploration import parameters_of
from pytraj.trajectory.trajectory import Trajectory

# pytraj.storage.hdf5 (and so PyTables) is imported inside the functions that open files:
# ``import pytraj`` stays fast without it.
__all__ = ["StudyBinding"]

log = logging.getLogger("pytraj.run")


class StudyBinding:
    """How a trajectory is bound to its study file: new, continued, or reaching further.

    Parameters
    ----------
    traj
        The Environment's trajectory.
    file
        The file settings (path, overwrite, compression).
    """

    __slots__ = ("_bound", "_file", "_stored_longer", "_traj")

    def __init__(self, traj: Trajectory, file: FileSettings) -> None:
        self._traj = traj
        self._file = file
        self._stored_longer = False
        self._bound = not isinstance(traj.storage, MemoryStorage)
        if not self._bound and (file.overwrite or not self._holds_study(traj.name)):
            self._bind_new()

    @property
    def stored_longer(self) -> bool:
        """Whether the file holds more points than the script explored (kept, not shrunk)."""
        return self._stored_longer

    def stored_names(self) -> list[str]:
        """The trajectories stored in the file (none when it does not exist)."""
        if not self._file.path.exists():
            return []
        return list(list_trajectories(self._file.path))

    def _holds_study(self, name: str) -> bool:
        """Whether the file holds trajectory ``name`` with a stored definition.

        One created but never defined (its writer killed before the definition became
        durable) is not a study to continue: ``_bind_new`` starts it afresh.
        """
        if name not in self.stored_names():
            return False
        from pytraj.storage.hdf5 import open_trajectory

        return open_trajectory(self._file.path, name).has_definition()

    def _bind_new(self) -> None:
        """Create the trajectory in the file (replacing a stored one with overwrite)."""
        from pytraj.storage.hdf5 import open_new_trajectory

        # open_new_trajectory creates the folder, and says clearly when it cannot.
        storage = open_new_trajectory(
            self._file.path,
            self._traj.name,
            overwrite=self._file.overwrite,
            options=self._file.file_options(),
        )
        self._traj.rebind(storage, definition_dirty=True)
        self._bound = True

    def _load_stored(self) -> Trajectory:
        return load(self._file.path, self._traj.name)

    def prepare(self) -> None:
        """Before running: continue the stored study, or check it still matches."""
        traj = self._traj
        if not self._bound:
            stored = self._load_stored()
            if parameters_of(traj):
                differences = compare(traj, stored.storage.read_definition())
                if differences:
                    raise mismatch_error(traj.name, self._file.path, differences)
            self._stored_longer = adopt(traj, stored)
            self._bound = True
            done = traj.run_table.counts()
            log.info(
                "continuing trajectory %r in %s: %d runs completed, %d failed, %d to run",
                traj.name,
                self._file.path,
                done["completed"],
                done["failed"],
                done["pending"],
            )
        elif self._stored_longer:
            self._stored_longer = refresh_run_table(traj, self._file.path)

    def plan(self, retry: bool) -> RunPlan:
        """See :meth:`Environment.plan`."""
        traj = self._traj
        if not self._bound:
            if traj.name not in self.stored_names():
                return make_plan(traj, self._file.path, [None] * len(traj), retry)
            # Loaded for reading only; nothing is written, and a reader never blocks a writer.
            stored = self._load_stored()
            subject = stored
            if parameters_of(traj):
                differences = compare(traj, stored.storage.read_definition())
                if differences:
                    raise mismatch_error(traj.name, self._file.path, differences)
                subject = traj
            statuses = [
                stored.run_table.status(i) if i < len(stored) else None for i in range(len(subject))
            ]
            return make_plan(subject, self._file.path, statuses, retry)
        if self._stored_longer:
            self._stored_longer = refresh_run_table(traj, self._file.path)
        written = len(traj.storage.read_definition().point_ids)
        statuses = [traj.run_table.status(i) if i < written else None for i in range(len(traj))]
        return make_plan(traj, self._file.path, statuses, retry)
