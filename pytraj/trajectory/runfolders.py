"""What a run derives from its point: a reproducible seed and a working directory.

:class:`RunFolders` is a part of :class:`~pytraj.trajectory.trajectory.Trajectory`
(a mixin) built only on its public ``idx``, ``point_id`` and ``study_dir``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pytraj.errors import RunError

__all__ = ["RunFolders"]


class RunFolders:
    """``traj.seed`` and ``traj.run_dir`` of the current run."""

    __slots__ = ()

    if TYPE_CHECKING:

        @property
        def idx(self) -> int: ...

        @property
        def study_dir(self) -> Path: ...

        def point_id(self, idx: int) -> bytes: ...

    @property
    def seed(self) -> int:
        """A reproducible seed for the current run, derived from its point id."""
        idx = self.idx
        if idx < 0:
            raise RunError("traj.seed needs a current run (inside a run or after set_run)")
        return int.from_bytes(self.point_id(idx)[:8], "little") >> 1

    @property
    def run_dir(self) -> Path:
        """A working directory for the current run, created on first use.

        Named by run index and point id (``runs/run_00000003_1a2b3c4d``), so a rerun of
        the same point in a later study finds its own folder again.
        """
        idx = self.idx
        if idx < 0:
            raise RunError("traj.run_dir needs a current run (inside a run or after set_run)")
        folder = self.study_dir / "runs" / f"run_{idx:08d}_{self.point_id(idx).hex()[:8]}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
