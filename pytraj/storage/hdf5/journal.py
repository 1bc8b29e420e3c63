"""The write-ahead journal that makes a study survive kills and crashes.

The single writer appends each batch of finished runs to ``<file>.journal`` (see
:func:`journal_path_for`) before it puts them into the HDF5 file, and fsyncs the journal
once per batch; HDF5 is flushed on a budget. A run counts as completed once it is in the
journal. Opening a file that was not closed cleanly replays the journal
(:func:`read_journal`); if a kill during a flush damaged the HDF5 file, the file is
rebuilt from the journal, which also holds the study definition. A clean close removes
the journal (``close(remove=True)``). The format is described in
:mod:`pytraj.storage.hdf5.journal_format`; its reading API is re-exported here.

Examples
--------
>>> import tempfile, pathlib
>>> from pytraj.storage.records import RunRecord
>>> data = pathlib.Path(tempfile.mkdtemp()) / "study.h5"
>>> with Journal.create(journal_path_for(data), data) as journal:
...     journal.append_runs("mult", [RunRecord(idx=0, point_id=bytes(16))])
...     journal.sync()
>>> [record.idx for record in read_journal(journal_path_for(data)).runs["mult"]]
[0]
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from pytraj.errors import FileFormatError, FileWriteError, StorageError
from pytraj.storage.hdf5.journal_format import (
    CHECKPOINT,
    DEFINITION,
    JOURNAL_FORMAT_VERSION,
    JOURNAL_SUFFIX,
    PROVENANCE,
    PROVENANCE_VERSION,
    RUNS,
    JournalContents,
    JournalEntry,
    JournalHeader,
    JournalScan,
    JournalTrajectory,
    checkpoint_payload,
    decode_entry,
    encode_header,
    frame_parts,
    iter_frames,
    iter_journal,
    journal_path_for,
    name_chunk,
    provenance_body,
    read_journal,
)
from pytraj.storage.hdf5.writeguard import NO_SPACE
from pytraj.storage.recordcodec import definition_chunks, encode_runs_into
from pytraj.storage.records import RunRecord, StudyDefinition
from pytraj.storage.runbatch import batch_leaves

__all__ = [
    "CHECKPOINT",
    "DEFINITION",
    "JOURNAL_FORMAT_VERSION",
    "JOURNAL_SUFFIX",
    "PROVENANCE",
    "RUNS",
    "Journal",
    "JournalContents",
    "JournalEntry",
    "JournalHeader",
    "JournalTrajectory",
    "PendingSync",
    "iter_journal",
    "journal_path_for",
    "read_journal",
]

_O_BINARY = getattr(os, "O_BINARY", 0)
_DROP_FROM_CACHE: int | None = getattr(os, "POSIX_FADV_DONTNEED", None)


def _sync_directory(path: Path) -> None:
    """Make a created, renamed or removed directory entry durable (POSIX only)."""
    if os.name == "nt":  # Windows cannot open directories; NTFS journals its metadata
        return
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Buffers per os.writev call, below every platform's IOV_MAX (1024 on Linux and macOS).
_WRITEV_BUFFERS = 512


def _write_all(fd: int, buffers: Sequence[Any]) -> None:
    """Write ``buffers`` (bytes and memoryviews) in order, however the kernel splits them."""
    if not hasattr(os, "writev"):  # Windows
        for buffer in buffers:
            _write_rest(fd, memoryview(buffer))
        return
    start = 0
    while start < len(buffers):
        group = buffers[start : start + _WRITEV_BUFFERS]
        written = os.writev(fd, group)
        for buffer in group:
            start += 1
            size = len(buffer) if type(buffer) is bytes else memoryview(buffer).nbytes
            if written < size:
                # A short write (full disk, or above ~2 GB at once): finish this buffer
                # on its own, then go on with the next group.
                _write_rest(fd, memoryview(buffer).cast("B")[written:])
                break
            written -= size


def _write_rest(fd: int, view: memoryview) -> None:
    while view:
        # A regular file takes all bytes at once except on a full disk or above ~2 GB.
        written = os.write(fd, view)
        view = view[written:]


def _append_error(path: Path, exc: OSError) -> StorageError:
    """The error of a failed append: what is lost (this batch) and what is not."""
    data = path.name.removesuffix(JOURNAL_SUFFIX)
    if exc.errno in NO_SPACE:
        return FileWriteError(
            f"cannot append to the journal {path}: {exc.strerror} (the disk is full or a "
            "file size limit is reached); the runs of this batch are not stored, every run "
            f"stored before is safe in the journal: free disk space, then open {data} or "
            "run the script again to continue",
            path,
        )
    return FileWriteError(
        f"cannot append to the journal {path}: {exc.strerror}; the runs of this batch are "
        f"not stored, every run stored before is safe in the journal: fix the cause, then "
        f"open {data} or run the script again to continue",
        path,
    )


class PendingSync:
    """An fsync of a journal running in a thread (see :meth:`Journal.start_sync`)."""

    __slots__ = ("_error", "_thread", "path")

    def __init__(self, fd: int, path: Path) -> None:
        self.path = path
        self._error: OSError | None = None
        # fsync releases the GIL: the disk write overlaps whatever the caller does next.
        self._thread = threading.Thread(
            target=self._run, args=(fd,), name="pytraj-journal-fsync", daemon=True
        )
        self._thread.start()

    def _run(self, fd: int) -> None:
        try:
            os.fsync(fd)
        except OSError as exc:
            self._error = exc
            return
        if _DROP_FROM_CACHE is not None:
            # The journal is read back only to recover: once on disk its pages may go, so
            # that it does not crowd the page cache (and removing it later is cheap).
            with contextlib.suppress(OSError):
                os.posix_fadvise(fd, 0, 0, _DROP_FROM_CACHE)

    def wait(self, *, check: bool = True) -> None:
        """Wait for the fsync; with ``check``, raise :class:`StorageError` if it failed."""
        self._thread.join()
        if check and self._error is not None:
            raise StorageError(
                f"cannot fsync the journal {self.path}: {self._error.strerror}; the runs "
                "since the last flush would not survive a power loss (check the disk)"
            ) from self._error


def _frame_name(path: Path, offset: int, kind: int, payload: bytes) -> str:
    """The trajectory a frame belongs to, read from its head (the whole frame is decoded,
    raising its error, only when the head is not a name)."""
    try:
        (size,) = _NAME_SIZE.unpack_from(payload)
        if 4 + size <= len(payload):
            return str(payload[4 : 4 + size], "utf-8", "surrogatepass")
    except (struct.error, UnicodeDecodeError):
        pass
    return decode_entry(path, offset, kind, payload).name


#: The u32 length in front of a frame's trajectory name (see ``name_chunk``).
_NAME_SIZE = struct.Struct("<I")


class Journal:
    """An open journal that the single writer appends to.

    Create one with :meth:`create` or continue one with :meth:`open`; both return a
    journal positioned at its end. An append is one ``os.writev`` (large arrays are
    written from their own buffers, uncopied): once it returns, the frame is in the page
    cache and survives a kill of the process; :meth:`sync` makes it survive a power loss
    too.
    """

    __slots__ = ("_defined", "_fd", "_pickled", "_size", "_undecoded", "header", "path")

    def __init__(self, path: Path, fd: int, header: JournalHeader, size: int) -> None:
        self.path = path
        self.header = header
        self._fd = fd
        self._size = size
        # Pickle leaves per trajectory, learned from definitions, so that run records
        # need not carry their leaves for their values to be pickled.
        self._pickled: dict[str, set[str]] = {}
        # Definition frames of a continued journal not decoded yet, by trajectory name.
        self._undecoded: dict[str, tuple[int, bytes]] = {}
        # Trajectories with a definition frame in this journal: only those may take a
        # provenance frame (it amends that definition).
        self._defined: set[str] = set()

    # -- construction ----------------------------------------------------------------
    @classmethod
    def create(
        cls,
        journal_path: str | os.PathLike[str],
        data_path: str | os.PathLike[str],
        *,
        overwrite: bool = False,
    ) -> Journal:
        """Create a new, empty journal for ``data_path`` and make it durable.

        Parameters
        ----------
        journal_path
            Where to create it (normally ``journal_path_for(data_path)``).
        data_path
            The data file it protects; recorded in the header.
        overwrite
            Replace an existing journal (atomically). Without it an existing journal is
            an error, so that runs not yet replayed are never thrown away.

        Raises
        ------
        StorageError
            When a journal exists (and ``overwrite`` is false) or cannot be written.
        """
        path = Path(journal_path)
        header = JournalHeader(
            JOURNAL_FORMAT_VERSION, Path(os.path.abspath(data_path)), time.time(), os.urandom(16)
        )
        raw = encode_header(header)
        flags = os.O_WRONLY | os.O_CREAT | _O_BINARY
        try:
            if overwrite:
                # Write aside and rename, so a kill leaves either journal whole.
                temporary = path.with_name(f"{path.name}.tmp{os.getpid()}")
                fd = os.open(temporary, flags | os.O_TRUNC, 0o666)
                try:
                    try:
                        _write_all(fd, [raw])
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                    os.replace(temporary, path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(temporary)
                    raise
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | _O_BINARY)
            else:
                fd = os.open(path, flags | os.O_EXCL | os.O_APPEND, 0o666)
                try:
                    _write_all(fd, [raw])
                    os.fsync(fd)
                except BaseException:
                    os.close(fd)
                    os.unlink(path)
                    raise
            try:
                _sync_directory(path)
            except BaseException:
                os.close(fd)
                raise
        except FileExistsError:
            raise StorageError(
                f"the journal {path} already exists and may hold runs not yet in "
                f"{data_path}; replay it (read_journal) and continue it with Journal.open, "
                "or pass overwrite=True once its runs are stored"
            ) from None
        except OSError as exc:
            raise StorageError(f"cannot create the journal {path}: {exc.strerror}") from exc
        return cls(path, fd, header, len(raw))

    @classmethod
    def open(cls, journal_path: str | os.PathLike[str]) -> Journal:
        """Continue an existing journal (after replaying it with :func:`read_journal`).

        The header and every frame are checked; a torn last write is cut off, so that new
        frames follow the last good one.

        Raises
        ------
        FileFormatError
            When the file is not a journal, is damaged, or has no complete header (then
            it holds nothing: create a new one with ``overwrite=True``).
        """
        path = Path(journal_path)
        # Each trajectory's newest definition, decoded only if its Pickle leaves are
        # needed before a new definition replaces it (a re-run journals its own first):
        # decoding a definition of a million explored values takes seconds.
        newest: dict[str, tuple[int, bytes]] = {}
        scan = JournalScan()
        for offset, kind, payload in iter_frames(path, scan):
            if kind == DEFINITION:
                newest[_frame_name(path, offset, kind, payload)] = (offset, payload)
        header = scan.header
        if header is None:
            raise FileFormatError(
                f"the journal {path} has no complete header (a kill came while it was "
                "created), so it holds no runs; replace it with "
                "Journal.create(path, data_path, overwrite=True)"
            )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | _O_BINARY)
            try:
                if scan.torn_tail:
                    os.ftruncate(fd, scan.valid_size)
                    os.fsync(fd)
            except BaseException:
                os.close(fd)
                raise
        except OSError as exc:
            raise StorageError(f"cannot open the journal {path}: {exc.strerror}") from exc
        journal = cls(path, fd, header, scan.valid_size)
        journal._undecoded = newest
        journal._defined = set(newest)
        return journal

    def _pickled_of(self, traj_name: str) -> set[str] | None:
        """The Pickle leaves of ``traj_name`` (None: none known), decoding its newest
        journaled definition on first need."""
        found = self._undecoded.pop(traj_name, None)
        if found is not None:
            offset, payload = found
            entry = decode_entry(self.path, offset, DEFINITION, payload)
            leaves = entry.definition.leaves if entry.definition is not None else []
            self._pickled[traj_name] = {leaf.path for leaf in leaves if leaf.pickled}
        return self._pickled.get(traj_name)

    # -- appending -------------------------------------------------------------------
    def _append(self, kind: int, chunks: list[bytes]) -> None:
        if self._fd < 0:
            raise StorageError(f"the journal {self.path} is closed; open it again to append")
        buffers, size = frame_parts(kind, chunks)
        try:
            _write_all(self._fd, buffers)
        except BaseException as exc:
            # Even a KeyboardInterrupt between two partial writes must not leave a torn
            # frame in front of the next one.
            self._undo_partial_write()
            if isinstance(exc, OSError):
                raise _append_error(self.path, exc) from exc
            raise
        self._size += size

    def _undo_partial_write(self) -> None:
        """Cut off what a failed write left, so that later frames follow good ones."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            # The file may now end in a torn frame; appending after it would turn it
            # into damage in the middle, so this journal takes no more frames.
            os.close(self._fd)
            self._fd = -1

    def append_definition(self, traj_name: str, definition: StudyDefinition) -> None:
        """Append the study definition of trajectory ``traj_name`` (replaces earlier ones).

        Items of trajectory-level results should be loaded (not ``NOT_LOADED``) for the
        journal to be able to rebuild the file.
        """
        self._append(DEFINITION, [name_chunk(traj_name), *definition_chunks(definition)])
        self._undecoded.pop(traj_name, None)  # replaced: never decoded
        self._pickled[traj_name] = {leaf.path for leaf in definition.leaves if leaf.pickled}
        self._defined.add(traj_name)

    def takes_provenance(self, traj_name: str) -> bool:
        """Whether a provenance frame of ``traj_name`` may be appended: this journal holds
        a definition of it and is of a version whose readers know provenance frames (a
        continued version-1 journal takes whole definitions only)."""
        return traj_name in self._defined and self.header.version >= PROVENANCE_VERSION

    def append_provenance(self, traj_name: str, provenance: dict[str, Any]) -> None:
        """Append a new provenance for the latest definition of ``traj_name``.

        A study whose only change is its provenance (a writer session starting or
        ending) journals this small frame instead of its whole definition again.

        Raises
        ------
        StorageError
            When the journal holds no definition of ``traj_name`` to amend.
        """
        if not self.takes_provenance(traj_name):
            raise StorageError(
                f"the journal {self.path} (format version {self.header.version}) holds no "
                f"definition of trajectory {traj_name!r} for a provenance frame to amend; "
                "append the whole definition instead"
            )
        self._append(PROVENANCE, [name_chunk(traj_name), provenance_body(traj_name, provenance)])

    def append_runs(self, traj_name: str, records: Sequence[RunRecord]) -> None:
        """Append a batch of finished runs of trajectory ``traj_name`` as one frame.

        One ``os.writev`` and no fsync: once this returns the batch survives a kill of the
        process; call :meth:`sync` for it to survive a crash of the machine.
        """
        if not records:
            return
        pickled = self._pickled_of(traj_name)
        for leaf in batch_leaves(records):
            if leaf.pickled:
                if pickled is None:
                    pickled = self._pickled[traj_name] = set()
                pickled.add(leaf.path)
        chunks = [name_chunk(traj_name)]
        encode_runs_into(chunks, records, pickled=pickled or ())
        self._append(RUNS, chunks)

    def append_checkpoint(self) -> None:
        """Mark that the data file now holds everything journaled so far.

        Call it only after the data file was flushed and fsynced; replay into an intact
        file may then skip the runs before it (:attr:`JournalTrajectory.flushed`).
        """
        self._append(CHECKPOINT, [checkpoint_payload(time.time())])

    def sync(self) -> None:
        """fsync the journal: everything appended so far survives a power loss."""
        self.start_sync().wait()

    def start_sync(self) -> PendingSync:
        """Start :meth:`sync` in a thread and return at once; ``wait()`` on the result.

        A flush writes HDF5 while the journal goes to disk (see
        :meth:`pytraj.storage.hdf5.files.FileState.flush`). Append nothing and do not
        close the journal before the wait returned.
        """
        if self._fd < 0:
            raise StorageError(f"the journal {self.path} is closed; open it again to sync")
        return PendingSync(self._fd, self.path)

    # -- state -----------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Bytes in the journal (header and frames)."""
        return self._size

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._fd < 0

    def close(self, remove: bool = False) -> None:
        """Close the journal; with ``remove``, delete it (a clean close of the data file).

        Without ``remove`` the journal is fsynced and kept, to be replayed or continued.
        Closing twice does nothing.
        """
        try:
            if self._fd >= 0:
                fd, self._fd = self._fd, -1
                try:
                    if not remove:
                        os.fsync(fd)
                finally:
                    os.close(fd)
            if remove:
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    return
                _sync_directory(self.path)
        except OSError as exc:
            raise StorageError(f"cannot close the journal {self.path}: {exc.strerror}") from exc

    def forget(self) -> None:
        """Close the descriptor a forked child inherited: no fsync, nothing removed.

        The parent still writes the journal; the child only lets go of it.
        """
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return f"<Closed Journal {str(self.path)!r}>"
        return f"<Journal {str(self.path)!r} ({self._size:,} bytes)>"

    def __del__(self) -> None:
        # A forgotten journal must not leak its descriptor; its frames are on disk already.
        fd = getattr(self, "_fd", -1)
        if fd >= 0:
            self._fd = -1
            # OSError: already closed behind our back; nothing is left to release.
            with contextlib.suppress(OSError):
                os.close(fd)
