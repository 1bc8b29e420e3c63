"""Where trees meet files: load trajectories from pytraj HDF5 files and list them.

>>> import pathlib, tempfile
>>> import pytraj as pt
>>> path = pathlib.Path(tempfile.mkdtemp()) / "study.h5"
>>> traj = pt.Trajectory("demo", filename=path)
>>> _ = traj.add_parameter("x", 1.0)
>>> traj.explore({"x": [1.0, 2.0]})
>>> for i in range(len(traj)):
...     with traj.start_run(i):
...         _ = traj.add_result("z", traj.x * 10)
>>> traj.close()
>>> list_trajectories(path)
['demo']
>>> loaded = load(path)
>>> loaded.results.z[1]
20.0
>>> loaded.close()
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pytraj.storage.records import LazyValue

if TYPE_CHECKING:
    from pytraj.storage.hdf5 import JournalStatus
    from pytraj.trajectory.trajectory import Trajectory

__all__ = ["journal_status", "list_trajectories", "load"]


def list_trajectories(path: str | os.PathLike[str], *, read_only: bool = False) -> list[str]:
    """Names of the trajectories stored in ``path``, in creation order.

    With ``read_only``, a journal left by a study that is running or crashed is not
    replayed: nothing is written (see :func:`journal_status`).

    Raises
    ------
    StorageError
        When the file is missing; :class:`~pytraj.errors.FileFormatError` when it is not a
        pytraj file, has a newer layout, or is damaged without a journal to repair it.
    """
    from pytraj.storage.hdf5 import list_trajectories_in

    return list_trajectories_in(path, read_only=read_only)


def journal_status(path: str | os.PathLike[str]) -> JournalStatus | None:
    """The journal pending beside ``path``, or None when the file was closed cleanly.

    A pending journal means a study is writing the file now (``status.writer`` names
    the process) or its writer died; ``status.unflushed`` counts, per trajectory, the
    runs it holds beyond the file, and ``status.describe()`` says it in one line.
    Nothing is written and no lock is taken.
    """
    from pytraj.storage.hdf5 import journal_status_of

    return journal_status_of(path)


def load(
    path: str | os.PathLike[str],
    name: str | None = None,
    index: int = -1,
    *,
    allow_pickle: bool = True,
    lazy: bool = True,
    read_only: bool = False,
) -> Trajectory:
    """Load a stored trajectory.

    Only the skeleton is read (names, types, comments, parameters, the run table);
    results are read when accessed. The trajectory can go on running: runs committed
    into it are stored in the same file.

    Parameters
    ----------
    path
        The HDF5 file.
    name
        The trajectory's name; when None, ``index`` picks one in creation order.
    index
        Position in creation order (-1, the default: the newest).
    allow_pickle
        Whether values of ``PickleParameter`` / ``PickleResult`` leaves may be unpickled
        (only on access). With False they raise
        :class:`~pytraj.errors.PickleNotAllowedError`; everything else works.
    lazy
        With False, read every value now (trajectory-level values and all per-run
        columns), e.g. before the file goes away.
    read_only
        Never write to the file: a journal left by a study that is running or crashed is
        not replayed (what it holds beyond the file is not seen; :func:`journal_status`
        says how much), and the trajectory cannot run or change.

    Raises
    ------
    TrajectoryNotFoundError
        When the file holds no such trajectory (the message lists those it holds).
    FileFormatError
        When the file is not a pytraj file, has a newer layout, or is damaged without a
        journal to repair it.
    StorageError
        When the file is missing.
    """
    from pytraj.storage.hdf5 import open_trajectory
    from pytraj.trajectory.definition import from_definition

    storage = open_trajectory(path, name, index, allow_pickle=allow_pickle, read_only=read_only)
    with storage.reading():  # one open of the file for the whole skeleton
        traj = from_definition(storage.read_definition(), storage)
    if not lazy:
        load_everything(traj)
    return traj


def load_everything(traj: Trajectory) -> None:
    """Read every stored value of ``traj`` now (pickles only where allowed)."""
    from pytraj.errors import PickleNotAllowedError
    from pytraj.leaves.parameter import Parameter
    from pytraj.leaves.result import Result

    traj.run_table.rows  # noqa: B018  # reads the run table (otherwise read on first use)
    for leaf in traj.iter_leaves():
        try:
            if isinstance(leaf, Parameter):
                if type(leaf._default) is LazyValue:
                    leaf._default = leaf._default.load()
                if leaf._range is not None:
                    for position, value in enumerate(leaf._range):
                        if type(value) is LazyValue:
                            leaf._range[position] = value.load()
            elif isinstance(leaf, Result):
                if leaf.per_run:
                    for item in leaf.item_names():
                        traj._column(leaf.full_name, item)
                else:
                    leaf.items  # noqa: B018  # loads the items
        except PickleNotAllowedError:
            continue  # refused pickles stay in the file, as the caller asked
