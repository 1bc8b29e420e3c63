"""The writer role of a file: lock, journal, recovery on open, creating trajectories.

One process writes a file at a time. It takes ``<file>.lock``; if a journal is left
beside the file (the last writer did not close cleanly), it replays it first
(:mod:`~pytraj.storage.hdf5.recovery`) and continues appending to it; otherwise it
starts a new journal. The role is shared by every trajectory the process writes in the
file and given up when the last of them closes: a clean close flushes, fsyncs the HDF5
file and only then removes the journal and the lock.
"""

from __future__ import annotations

import contextlib
import time

from pytraj.crashpoints import crash_point
from pytraj.errors import FileLockedError, OptionError, StorageError
from pytraj.storage.hdf5 import recovery
from pytraj.storage.hdf5.codecs import remove_big_attrs_below, set_attr
from pytraj.storage.hdf5.damage import check_file, check_hdf5
from pytraj.storage.hdf5.files import FileState, WriterLock
from pytraj.storage.hdf5.groups import create_file, new_trajectory_group, stored_names
from pytraj.storage.hdf5.journal import Journal, journal_path_for
from pytraj.storage.hdf5.layout import TRAJECTORIES, is_plain_name, traj_path
from pytraj.storage.hdf5.options import FileOptions
from pytraj.storage.hdf5.skeleton import holds_definition
from pytraj.storage.hdf5.store import TrajectoryStore

__all__ = ["acquire", "create_file", "create_trajectory", "prepare_read", "release"]


def _start(state: FileState, *, journaled: bool = True) -> None:
    """Take the writer role of the file: lock, recovery, journal (none when not
    ``journaled``: a disposable file, see :attr:`HDF5Storage.disposable`)."""
    lock = WriterLock.acquire(state.path)
    journal: Journal | None
    try:
        journal_path = journal_path_for(state.path)
        if journal_path.exists():
            found = recovery.recover(state)
            if found is None:
                journal = Journal.create(journal_path, state.path, overwrite=True)
                state.journal_counts, state.journal_names = {}, set()
            else:
                journal = Journal.open(journal_path)
                state.journal_counts, state.journal_names = found
        else:
            if not state.path.exists():
                create_file(state)
            else:
                check_hdf5(state.path)
                with state.reading() as h5:
                    check_file(h5, state.path)
            journal = Journal.create(journal_path, state.path) if journaled else None
            state.journal_counts, state.journal_names = {}, set()
    except BaseException:
        lock.release()
        raise
    state.lock = lock
    state.journal = journal
    state.last_flush = time.monotonic()
    state.journal_size_at_flush = journal.size if journal is not None else 0


def acquire(state: FileState, storage: TrajectoryStore) -> None:
    """Make ``storage`` a writer of its file (taking the file's writer role if needed)."""
    with state.rlock:
        other = state.writers.get(storage.name)
        if other is not None and other is not storage:
            raise StorageError(
                f"trajectory {storage.name!r} in {state.path} is being written by another "
                "Trajectory object of this process; close that one first"
            )
        started = False
        if not state.is_writer:
            _start(state, journaled=not storage.disposable)
            started = True
        try:
            with state.reading() as h5:
                storage.start_writing(h5)
        except BaseException:
            if started and not state.writers:
                _stop(state, clean=False)
            raise
        state.writers[storage.name] = storage


def release(state: FileState, storage: TrajectoryStore, *, clean: bool) -> None:
    """Give up ``storage``'s writer role; the last writer gives up the file's."""
    with state.rlock:
        if state.writers.get(storage.name) is storage:
            del state.writers[storage.name]
        storage.stop_writing()
        if not state.writers and state.is_writer:
            _stop(state, clean=clean)


def _stop(state: FileState, *, clean: bool) -> None:
    journal, lock = state.journal, state.lock
    state.journal, state.lock = None, None
    state.journal_counts, state.journal_names = {}, set()
    failure, state.write_failure = state.write_failure, None
    try:
        if journal is not None:
            # The journal is the last copy of the runs until the file is known good:
            # every write of this process verified, and the file on disk.
            remove = clean and failure is None
            try:
                if remove:
                    state.fsync_data()
                    crash_point("close")
            except BaseException:
                remove = False
                raise
            finally:
                journal.close(remove=remove)
    finally:
        if lock is not None:
            lock.release()


def prepare_read(state: FileState) -> None:
    """Before reading a file: write this process's buffered runs, or replay a journal
    left by a writer that did not close cleanly (if no live process writes the file)."""
    with state.rlock:
        if state.is_writer:
            state.flush_pending()
            return
        if not journal_path_for(state.path).exists():
            return
        try:
            lock = WriterLock.acquire(state.path)
        except FileLockedError:
            return  # a live writer: read what it flushed so far
        try:
            if recovery.journal_is_flushed(state):
                return
            found = recovery.recover(state)
            if found is None:
                with contextlib.suppress(FileNotFoundError):
                    journal_path_for(state.path).unlink()
        finally:
            # The journal stays until a writer closes cleanly: it still protects the runs
            # it holds should a later kill damage the file.
            lock.release()


def _swap_journal(state: FileState) -> None:
    """Start a fresh journal (the file holds everything, fsynced), keeping the writers'
    current definitions in it."""
    assert state.journal is not None
    state.fsync_data()
    old = state.journal
    state.journal = Journal.create(journal_path_for(state.path), state.path, overwrite=True)
    old.close()
    state.journal_counts, state.journal_names = {}, set()
    state.journal_size_at_flush = state.journal.size
    for writer in state.writers.values():
        assert isinstance(writer, TrajectoryStore)  # acquire() registers only those
        stored = writer.stored_definition
        if stored is not None:
            state.journal.append_definition(writer.name, writer.materialized(stored, journal=True))
            state.journal_names.add(writer.name)


def create_trajectory(
    state: FileState,
    storage: TrajectoryStore,
    *,
    overwrite: bool,
    options: FileOptions,
) -> None:
    """Create trajectory ``storage.name`` in the file and make ``storage`` its writer."""
    name = storage.name
    if not is_plain_name(name) or name.startswith("_"):
        raise OptionError(
            f"{name!r} cannot name a trajectory in a file; use letters, digits, '_' and '-'"
        )
    with state.rlock:
        if name in state.writers:
            raise StorageError(
                f"trajectory {name!r} in {state.path} is open for writing in this process; "
                "close that Trajectory first"
            )
        started = False
        if not state.is_writer:
            _start(state, journaled=not storage.disposable)
            started = True
        try:
            state.flush()
            with state.writing() as h5:
                names = stored_names(h5)
                replaced = name in names
                if replaced:
                    # A trajectory created but never defined holds no study (its
                    # writer was killed before the definition became durable): it
                    # is started afresh, as if it were not there.
                    if not overwrite and holds_definition(h5.get_node(traj_path(name))):
                        raise StorageError(
                            f"{state.path} holds a trajectory {name!r} already; continue it "
                            f"with pytraj.load({str(state.path)!r}, {name!r}), or pass "
                            "overwrite=True to replace it (the file's other trajectories stay)"
                        )
                    h5.remove_node("/", name, recursive=True)
                    remove_big_attrs_below(h5, f"/{name}")
                    names.remove(name)
                    # Unlisted with its group: a root naming a trajectory it does not
                    # hold is a damaged file (recovery rebuilds it from the journal).
                    set_attr(h5.root._v_attrs, TRAJECTORIES, ",".join(names))
            if name in state.journal_names:
                # The journal must not replay the old trajectory's runs into the new one.
                _swap_journal(state)
            journal = state.journal
            with state.writing() as h5:
                new_trajectory_group(
                    h5,
                    name,
                    options,
                    journal.header.journal_id.hex() if journal is not None else "",
                    state.journal_counts.get(name, 0),
                )
                set_attr(h5.root._v_attrs, TRAJECTORIES, ",".join([*names, name]))
            with state.reading() as h5:
                storage.start_writing(h5, new=True)
            state.writers[name] = storage
        except BaseException:
            if started and not state.writers:
                _stop(state, clean=False)
            raise
