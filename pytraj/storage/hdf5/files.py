"""Files and handles: one PyTables handle per file per process, and the writer lock.

Handles are opened for one operation and closed after it (nested operations share it).
So a trajectory loaded for reading never holds the file: a writer in the same process
opens it in the mode it needs, and HDF5's own file locks never keep a writer in another
process waiting for longer than one read. The single writer of a file holds
``<file>.lock`` (``fcntl.flock``, released by the kernel when the process dies, so a
crashed writer never blocks the next one) and the write-ahead journal, both shared by all
trajectories the process writes in that file.

The state of a file knows its writers only as :class:`TrajectoryWriter` (what a flush
needs); taking and giving up the writer role is :mod:`~pytraj.storage.hdf5.writer`'s job,
and what damaged bytes raise is :mod:`~pytraj.storage.hdf5.damage`'s.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from pytraj.crashpoints import crash_point
from pytraj.errors import (  # DamagedFileError keeps its old import path here
    DamagedFileError,
    FileLockedError,
    FileWriteError,
    StorageError,
)
from pytraj.storage.hdf5 import writeguard
from pytraj.storage.hdf5.damage import damaged_error, read_errors, read_guard
from pytraj.storage.hdf5.journal import Journal
from pytraj.storage.hdf5.layout import JOURNAL_ID, JOURNAL_SIZE

__all__ = [
    "DamagedFileError",
    "FileBusyError",
    "FileState",
    "TrajectoryWriter",
    "WriterLock",
    "all_states",
    "file_state",
    "forget_all",
    "forget_state",
    "read_errors",
    "read_guard",
]

#: How long an operation waits for another process's HDF5 lock (a flush or a read).
LOCK_WAIT_SECONDS = 30.0
#: Room reserved at the end of the file before every write, beyond the data it writes
#: (HDF5's own metadata: B-tree nodes, heaps, a new chunk).
RESERVE_BYTES = 64 * 1024
_LOCK_SUFFIX = ".lock"


class TrajectoryWriter(Protocol):
    """What a file's state needs of the storages that write into it (HDF5Storage)."""

    name: str

    @property
    def has_pending(self) -> bool:
        """Whether buffered data waits to go into the file."""

    def write_pending(self, h5: Any) -> None:
        """Write the buffered data into the open file ``h5``."""


class FileBusyError(StorageError):
    """Another program kept the HDF5 file open (HDF5's own lock) for too long."""


def _is_hdf5_lock_error(exc: BaseException) -> bool:
    return "unable to lock" in str(exc)


class WriterLock:
    """An exclusive ``flock`` on ``<file>.lock``, naming its holder inside the file."""

    __slots__ = ("_fd", "path")

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def acquire(cls, data_path: Path) -> WriterLock:
        """Take the lock of ``data_path`` or raise :class:`FileLockedError`."""
        path = data_path.with_name(data_path.name + _LOCK_SUFFIX)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory locks; single writer by trust
            return cls(path, -1)
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                raise StorageError(
                    f"cannot create the lock file {path} ({exc.strerror}); pytraj needs write "
                    "access to the folder of the file it writes"
                ) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise FileLockedError(
                    f"{data_path} is being written by {holder}; only one process can write "
                    "a file at a time: wait until it finishes, or write to another file"
                ) from None
            # The previous holder may have removed the file between our open and flock:
            # then our lock is on a deleted file, and we must take the lock anew.
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on host {socket.gethostname()}\n".encode())
        return cls(path, fd)

    def release(self, remove: bool = True) -> None:
        """Give the lock up (removing the lock file first, while still holding it)."""
        if self._fd < 0:
            return
        if remove:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        os.close(self._fd)
        self._fd = -1

    def forget(self) -> None:
        """Drop the descriptor without unlocking (in a forked child: the parent holds it)."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = -1


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "another process"


class FileState:
    """Everything this process holds for one file: handle, lock, journal, writers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: Any = None
        self._mode = ""
        self._depth = 0
        #: How many of the open handle's users are reading scopes a caller holds
        #: (:meth:`holding`), not operations of pytraj's own.
        self._held = 0
        #: Bumped at every open of a handle: node objects of older handles are closed.
        self.epoch = 0
        self.lock: WriterLock | None = None
        self.journal: Journal | None = None
        #: Run records per trajectory in the journal (those flushed are in the file).
        self.journal_counts: dict[str, int] = {}
        #: Trajectories the journal holds frames of.
        self.journal_names: set[str] = set()
        self.writers: dict[str, TrajectoryWriter] = {}
        #: Bumped at every flush: cached reads of older generations are stale.
        self.generation = 0
        self.last_flush = time.monotonic()
        self.journal_size_at_flush = 0
        #: Set when a write of the file failed: it is not known good any more, so this
        #: process writes nothing more into it and keeps its journal (until the writer
        #: role ends; the next writer replays or rebuilds from the journal).
        self.write_failure: FileWriteError | None = None
        #: The file's and its journal's (inode, size, mtime) when a reader last found the
        #: file whole and holding everything its journal does (see
        #: :func:`~pytraj.storage.hdf5.recovery.journal_is_flushed`): unchanged since,
        #: they need not be checked again.
        self.found_flushed: tuple[int, ...] | None = None
        self.rlock = threading.RLock()

    # -- handles ---------------------------------------------------------------------
    @contextlib.contextmanager
    def reading(self, node: str = "") -> Iterator[Any]:
        """The file open for reading for the duration of one operation.

        What damaged bytes make HDF5, PyTables or numpy raise inside the block becomes a
        :class:`~pytraj.errors.DamagedFileError` naming the file and ``node`` (the HDF5
        path read, "" for the file as a whole).
        """
        with self.rlock:
            if self._handle is not None:
                self._depth += 1
                try:
                    with read_guard(self.path, node, self._handle):
                        yield self._handle
                finally:
                    self._depth -= 1
                return
            self._handle = self._open("r", LOCK_WAIT_SECONDS)
            self._mode = "r"
            self._depth = 1
            try:
                with read_guard(self.path, node, self._handle):
                    yield self._handle
            finally:
                self._depth = 0
                handle, self._handle = self._handle, None
                if handle is not None:  # None: a write in a held scope failed to reopen
                    with contextlib.suppress(*read_errors()):
                        # Closing a handle of a damaged file may raise again; the first
                        # error (already raised) is the one that says what is wrong.
                        handle.close()

    @property
    def is_held(self) -> bool:
        """Whether a caller keeps the file open for reading (:meth:`holding`)."""
        return self._held > 0 and self._handle is not None

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Keep the file open for reading until the block ends (a caller's scope).

        Reads inside share the one handle, and may keep the node objects they resolved
        (valid while :attr:`epoch` stays the same). Another process cannot write the
        file meanwhile (HDF5's own lock: its writer waits, then gets
        :class:`FileBusyError`); a write of this process inside the block closes the
        handle, writes, and opens it again (:meth:`writing`).
        """
        with self.reading():
            self._held += 1
            try:
                yield
            finally:
                self._held -= 1

    @contextlib.contextmanager
    def _read_handle_set_aside(self) -> Iterator[None]:
        """Close the handle of the held reading scopes for a write, and reopen it after."""
        depth, self._depth = self._depth, 0
        handle, self._handle = self._handle, None
        handle.close()
        try:
            yield
        finally:
            self._handle = self._open("r", LOCK_WAIT_SECONDS)
            self._mode = "r"
            self._depth = depth

    @contextlib.contextmanager
    def writing(
        self,
        *,
        create: bool = False,
        wait: float = LOCK_WAIT_SECONDS,
        reserve: int = RESERVE_BYTES,
    ) -> Iterator[Any]:
        """The file open for writing for one operation; closed (so flushed) at the end.

        HDF5 does not report every failed write, so the room a write needs is reserved
        first (``reserve`` bytes beyond the file's end) and the file is checked after it
        was closed (:mod:`~pytraj.storage.hdf5.writeguard`).

        Raises
        ------
        FileWriteError
            When there is no room (nothing was written), when the check after the write
            fails (the file is not known good: this process writes no more into it), or
            when an earlier write of this process failed.
        """
        import tables  # keeps import pytraj fast: PyTables loads on first use

        with self.rlock:
            if self._handle is not None and self._mode == "r" and self._depth == self._held:
                # Only held reading scopes use the handle (no read is under way): the
                # write of this process goes first, as it would outside the scope.
                with (
                    self._read_handle_set_aside(),
                    self.writing(create=create, wait=wait, reserve=reserve) as h5,
                ):
                    yield h5
                return
            if self._handle is not None:
                if self._mode == "r":
                    raise StorageError(
                        f"{self.path}: a write was started inside a read; this is a bug in "
                        "pytraj, please report it"
                    )
                self._depth += 1
                try:
                    yield self._handle
                finally:
                    self._depth -= 1
                return
            if self.write_failure is not None:
                raise FileWriteError(
                    f"{self.path} is not written to any more by this process: an earlier "
                    f"write failed ({self.write_failure})",
                    self.path,
                ) from self.write_failure
            size_before = 0 if create else writeguard.reserve(self.path, reserve)
            try:
                self._handle = self._open("w" if create else "a", wait)
            except BaseException:
                if not create:
                    writeguard.give_back(self.path, size_before)
                raise
            self._mode = "a"
            self._depth = 1
            try:
                with warnings.catch_warnings():
                    # Node names such as "class" or "1x" are valid pytraj names.
                    warnings.simplefilter("ignore", tables.NaturalNameWarning)
                    yield self._handle
            finally:
                self._depth = 0
                handle, self._handle = self._handle, None
                handle.close()
                self._check_written(size_before)

    def _check_written(self, size_before: int) -> None:
        try:
            writeguard.verify(self.path, size_before)
        except FileWriteError as exc:
            self.write_failure = exc
            raise

    def _open(self, mode: str, wait: float) -> Any:
        import tables  # keeps import pytraj fast: PyTables loads on first use

        deadline = time.monotonic() + wait
        pause = 0.005
        self.epoch += 1
        while True:
            try:
                return tables.open_file(str(self.path), mode)
            except FileNotFoundError:
                raise StorageError(
                    f"no file {self.path}; check the path (pytraj.list_trajectories lists "
                    "what a file holds)"
                ) from None
            except (tables.HDF5ExtError, OSError, SystemError, ValueError) as exc:
                if _is_hdf5_lock_error(exc) and time.monotonic() < deadline:
                    time.sleep(pause)  # another process reads or flushes: a short wait
                    pause = min(pause * 2, 0.1)
                    continue
                if _is_hdf5_lock_error(exc):
                    raise FileBusyError(
                        f"{self.path} stayed open in another program for {wait:.1f} s (HDF5 "
                        "file lock); close it there and try again"
                    ) from exc
                raise damaged_error(self.path, exc) from exc

    # -- flushing --------------------------------------------------------------------
    def has_pending(self) -> bool:
        """Whether a writer of this process holds data not in the file yet."""
        return any(writer.has_pending for writer in self.writers.values())

    def journal_size_pending(self) -> int:
        """Journaled bytes not flushed into HDF5 yet."""
        return self.journal.size - self.journal_size_at_flush if self.journal is not None else 0

    def flush(self, *, patient: bool = True) -> None:
        """Write every writer's buffers into HDF5 in one open, fsyncing the journal meanwhile.

        The journal's fsync runs in a thread while HDF5 is written, and the flush returns
        after both. Overlapping them is safe: until the flush returns, a power loss may
        lose this flush's runs, and the HDF5 pages written meanwhile reach the disk
        before the journal's only if the kernel writes them back within this moment; a
        file that then holds runs its journal lacks is read as it is (recovery replays
        only what the file lacks), and a damaged one is rebuilt from the journal's
        frames up to the previous flush, which were synced then.

        Parameters
        ----------
        patient
            Wait up to :data:`LOCK_WAIT_SECONDS` for another program holding the HDF5
            file; otherwise give up after a moment with :class:`FileBusyError`.
        """
        with self.rlock:
            pending = [writer for writer in self.writers.values() if writer.has_pending]
            if not pending:
                return
            syncing = self.journal.start_sync() if self.journal is not None else None
            wait = LOCK_WAIT_SECONDS if patient else 0.2
            # The data goes in about as large as the journal holds it.
            reserve = self.journal_size_pending() * 9 // 8 + RESERVE_BYTES
            writing = False
            try:
                with self.writing(wait=wait, reserve=reserve) as h5:
                    writing = True
                    for writer in pending:
                        writer.write_pending(h5)
                    crash_point("flush")
                    if self.journal is not None and not self.has_pending():
                        attrs = h5.root._v_attrs
                        attrs[JOURNAL_ID] = self.journal.header.journal_id.hex()
                        attrs[JOURNAL_SIZE] = self.journal.size
            except BaseException as exc:
                if syncing is not None:
                    syncing.wait(check=False)  # the error that stopped the write says more
                if writing and self.write_failure is None:
                    # Stopped half-way: what reached the file is unknown, so the journal
                    # must outlive this process's writing.
                    self.write_failure = FileWriteError(
                        f"writing {self.path} stopped half-way ({type(exc).__name__}: "
                        f"{exc}); " + writeguard.way_out(self.path),
                        self.path,
                    )
                raise
            if syncing is not None:
                syncing.wait()
            self.generation += 1
            self.last_flush = time.monotonic()
            self.journal_size_at_flush = self.journal.size if self.journal is not None else 0

    def flush_pending(self) -> None:
        """Flush when a writer holds data a read needs."""
        if self.writers and self.has_pending():
            self.flush()

    # -- the writer role -------------------------------------------------------------
    @property
    def is_writer(self) -> bool:
        """Whether this process holds the lock (and journal) of the file."""
        return self.lock is not None

    def fsync_data(self) -> None:
        """Make the HDF5 file durable (after its handle was closed).

        Raises
        ------
        FileWriteError
            When the fsync fails (an I/O error, or a full disk found only now): the
            file is not known good.
        """
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            os.fsync(fd)
        except OSError as exc:
            self.write_failure = FileWriteError(
                f"cannot fsync {self.path}: {exc.strerror}; " + writeguard.way_out(self.path),
                self.path,
            )
            raise self.write_failure from exc
        finally:
            os.close(fd)

    def forget(self) -> None:
        """Drop what a forked child inherited, touching nothing the parent still uses."""
        if self.lock is not None:
            self.lock.forget()
        self.lock = None
        if self.journal is not None:
            journal, self.journal = self.journal, None
            journal.forget()
        self.writers.clear()
        self.journal_counts.clear()
        self.journal_names.clear()
        self.write_failure = None
        self._handle = None
        self._depth = 0
        self._held = 0
        self.rlock = threading.RLock()


_STATES: dict[Path, FileState] = {}
_STATES_LOCK = threading.Lock()


def file_state(path: str | os.PathLike[str]) -> FileState:
    """The process-wide state of the file at ``path`` (one per file: symlinks resolved)."""
    key = Path(os.path.realpath(path))
    with _STATES_LOCK:
        state = _STATES.get(key)
        if state is None:
            state = _STATES[key] = FileState(key)
        return state


def forget_state(path: str | os.PathLike[str]) -> None:
    """Drop the state of a file this process no longer uses (a temporary copy)."""
    with _STATES_LOCK:
        _STATES.pop(Path(os.path.realpath(path)), None)


def forget_all() -> None:
    """Forget every file state (a forked child must not touch its parent's files)."""
    global _STATES_LOCK  # noqa: PLW0603  # a lock held by another thread at fork is dead here
    _STATES_LOCK = threading.Lock()
    for state in _STATES.values():
        state.forget()
    _STATES.clear()


def all_states() -> list[FileState]:
    """The state of every file this process uses."""
    with _STATES_LOCK:
        return list(_STATES.values())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=forget_all)
