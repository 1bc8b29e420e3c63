"""The HDF5 backend on PyTables: file layout, codecs and the write-ahead journal.

Most code meets it through :class:`pytraj.Trajectory` (``filename=``) and
:func:`pytraj.load`; the functions here are the layer below them.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "study.h5"
>>> storage = open_new_trajectory(path, "demo")
>>> storage.close()
>>> list_trajectories_in(path)
['demo']
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from pytraj.errors import OptionError, StorageError, TrajectoryNotFoundError
from pytraj.storage.hdf5 import writer
from pytraj.storage.hdf5.backend import FLUSH_BYTES, FLUSH_RUNS, FLUSH_SECONDS, HDF5Storage
from pytraj.storage.hdf5.damage import check_file, check_hdf5
from pytraj.storage.hdf5.files import FileState, file_state
from pytraj.storage.hdf5.groups import stored_names
from pytraj.storage.hdf5.inspect import JournalStatus, journal_status
from pytraj.storage.hdf5.layout import SCHEMA_VERSION, journal_path_for
from pytraj.storage.hdf5.options import FileOptions, available_complibs
from pytraj.storage.hdf5.overlay import OverlaidStorage

__all__ = [
    "FLUSH_BYTES",
    "FLUSH_RUNS",
    "FLUSH_SECONDS",
    "SCHEMA_VERSION",
    "FileOptions",
    "HDF5Storage",
    "JournalStatus",
    "OverlaidStorage",
    "available_complibs",
    "journal_status_of",
    "list_trajectories_in",
    "loading_trajectory",
    "open_new_trajectory",
    "open_trajectory",
]


def open_new_trajectory(
    filename: str | os.PathLike[str],
    name: str,
    *,
    overwrite: bool = False,
    options: FileOptions | None = None,
    disposable: bool = False,
) -> HDF5Storage:
    """Create trajectory ``name`` in ``filename`` (created if needed) and return its storage.

    Other trajectories in the file are kept; missing folders are created. The process
    becomes the file's writer: a second process writing it gets
    :class:`~pytraj.errors.FileLockedError`.

    Parameters
    ----------
    filename
        The HDF5 file.
    name
        The trajectory's name.
    overwrite
        Replace a trajectory of that name (only that one); otherwise it is an error.
    options
        Compression settings (:class:`FileOptions`).
    disposable
        The file is temporary and discarded after a crash (a merge's output before it
        is renamed into place): writes skip the journal (see
        :attr:`HDF5Storage.disposable`).

    Raises
    ------
    StorageError
        When the trajectory exists and ``overwrite`` is false, or the file cannot be used.
    FileLockedError
        When another process writes the file.
    """
    if options is None:
        options = FileOptions()
    elif not isinstance(options, FileOptions):
        raise OptionError(
            f"file_options must be a pytraj.storage.hdf5.FileOptions, got {type(options).__name__}"
        )
    state = file_state(filename)
    try:
        state.path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot create the folder {state.path.parent} for {state.path} ({exc.strerror}); "
            "choose a folder you can write to"
        ) from exc
    storage = HDF5Storage(state, name, options=options)
    storage.disposable = disposable
    writer.create_trajectory(state, storage, overwrite=overwrite, options=options)
    return storage


def _prepared_state(filename: str | os.PathLike[str], *, read_only: bool = False) -> FileState:
    """The file's state, its journal replayed first unless ``read_only``."""
    state = file_state(filename)
    if read_only and not state.is_writer:
        pass  # read what the writer flushed so far; a journal stays as it is
    elif state.is_writer or journal_path_for(state.path).exists():
        # Buffered runs to flush or a journal to replay.
        writer.prepare_read(state)
    check_hdf5(state.path)
    return state


def _stored_names(state: FileState, h5: Any) -> list[str]:
    check_file(h5, state.path)
    return stored_names(h5)


def _open_state(
    filename: str | os.PathLike[str], *, read_only: bool = False
) -> tuple[FileState, list[str]]:
    state = _prepared_state(filename, read_only=read_only)
    with state.reading() as h5:
        names = _stored_names(state, h5)
    return state, names


def list_trajectories_in(filename: str | os.PathLike[str], *, read_only: bool = False) -> list[str]:
    """Names of the trajectories in ``filename``, in creation order.

    With ``read_only``, a journal left by a writer is not replayed (see
    :func:`journal_status_of`).
    """
    return _open_state(filename, read_only=read_only)[1]


def journal_status_of(filename: str | os.PathLike[str]) -> JournalStatus | None:
    """The pending journal of ``filename`` (a study writes it, or crashed), or None.

    Reads the journal and the file without changing either and without taking the
    writer lock.
    """
    return journal_status(file_state(filename))


def open_trajectory(
    filename: str | os.PathLike[str],
    name: str | None = None,
    index: int = -1,
    *,
    allow_pickle: bool = True,
    read_only: bool = False,
) -> HDF5Storage | OverlaidStorage:
    """Open a stored trajectory for lazy reading (it becomes a writer on its first write).

    Parameters
    ----------
    filename
        The HDF5 file.
    name
        The trajectory's name; when None, ``index`` picks one in creation order.
    index
        Position in creation order (-1: the newest).
    allow_pickle
        Whether values of Pickle leaves may be unpickled (on access).
    read_only
        Never write: a write raises :class:`~pytraj.errors.StorageError`, and a journal
        left by a writer (running or crashed) is not replayed but laid over the file in
        memory (an :class:`OverlaidStorage`): reads show what a replay would give.

    Raises
    ------
    TrajectoryNotFoundError
        When no trajectory has that name or index (the message lists those present).
    """
    state, names = _open_state(filename, read_only=read_only)
    return _storage_of(state, names, name, index, allow_pickle=allow_pickle, read_only=read_only)


@contextlib.contextmanager
def loading_trajectory(
    filename: str | os.PathLike[str],
    name: str | None = None,
    index: int = -1,
    *,
    allow_pickle: bool = True,
    read_only: bool = False,
) -> Iterator[HDF5Storage | OverlaidStorage]:
    """:func:`open_trajectory`, with the file left open for the block (one open of the
    file for finding the trajectory and reading its skeleton, as ``pytraj.load`` does)."""
    state = _prepared_state(filename, read_only=read_only)
    with state.reading() as h5:
        names = _stored_names(state, h5)
        yield _storage_of(state, names, name, index, allow_pickle=allow_pickle, read_only=read_only)


def _storage_of(
    state: FileState,
    names: list[str],
    name: str | None,
    index: int,
    *,
    allow_pickle: bool,
    read_only: bool,
) -> HDF5Storage | OverlaidStorage:
    path = state.path
    if name is None:
        if not names:
            raise TrajectoryNotFoundError(f"{path} holds no trajectory")
        if isinstance(index, bool) or not isinstance(index, int):
            raise OptionError(f"index must be an int, got {type(index).__name__}")
        if not -len(names) <= index < len(names):
            raise TrajectoryNotFoundError(
                f"{path} holds {len(names)} trajectories ({', '.join(names)}); index "
                f"{index} is out of range"
            )
        name = names[index]
    elif name not in names:
        present = ", ".join(repr(n) for n in names) or "none"
        raise TrajectoryNotFoundError(f"{path} holds no trajectory {name!r}; it holds {present}")
    if read_only and not state.is_writer and journal_path_for(path).exists():
        return OverlaidStorage(state, name, allow_pickle=allow_pickle)
    return HDF5Storage(state, name, allow_pickle=allow_pickle, read_only=read_only)
