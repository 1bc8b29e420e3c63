"""Looking at a file from outside, without changing anything: is it being written, and
what does its journal hold that the file does not yet?

Used by read-only opens (the ``pytraj`` command, the report): they lay the journal over
the file in memory (:mod:`~pytraj.storage.hdf5.overlay`) and say how much of what they
show comes from it. Nothing here takes the
writer lock, replays a journal or writes a byte: the writer is found through the
kernel's table of locks (``/proc/locks``), the journal is only read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pytraj.errors import StorageError
from pytraj.storage.hdf5.files import FileState
from pytraj.storage.hdf5.groups import journal_attrs
from pytraj.storage.hdf5.journal import journal_path_for
from pytraj.storage.hdf5.journal_format import read_journal

__all__ = ["JournalStatus", "journal_status", "writer_of"]

_LOCK_SUFFIX = ".lock"  # the writer lock beside the file (see files.WriterLock)


@dataclass(frozen=True)
class JournalStatus:
    """A journal left beside a file: a study is writing it, or its writer died.

    Attributes
    ----------
    path
        The journal.
    writer
        Who writes the file right now (``"process 123 on host h"``), or None when no
        live process holds the writer lock (the study crashed or was killed).
    unflushed
        Per trajectory, run records in the journal that the file does not hold yet
        (the next writer replays them into the file).
    problem
        Why the journal could not be read (then ``unflushed`` is empty), or "".
    """

    path: Path
    writer: str | None
    unflushed: dict[str, int] = field(default_factory=dict)
    problem: str = ""

    @property
    def running(self) -> bool:
        """Whether a live process writes the file."""
        return self.writer is not None

    def describe(self) -> str:
        """One line for a person: what state the study is in and what comes from the journal.

        A read-only open lays the journal over the file in memory
        (:class:`~pytraj.storage.hdf5.overlay.OverlaidStorage`), so what is shown is the
        file plus the journal's runs, as a replay would give.
        """
        pending = sum(self.unflushed.values())
        if self.running:
            state = f"a study is writing this file now ({self.writer})"
        else:
            state = "the study was not closed cleanly (crashed or killed)"
        plural = "s" if pending != 1 else ""
        shown = (
            f"showing the file with its journal laid over it: {pending} run record{plural} "
            "come from the journal (not in the file yet)"
        )
        if self.problem:
            shown = f"showing what is in the file; the journal could not be read ({self.problem})"
        if not self.running:
            shown += "; the next pt.load or Environment on the file replays the journal"
        return f"{state}: {shown}"


def writer_of(path: Path) -> str | None:
    """Who holds the writer lock of ``path`` (without taking it), or None."""
    lock_path = path.with_name(path.name + _LOCK_SUFFIX)
    try:
        info = os.stat(lock_path)
        with open(lock_path, "rb") as stream:
            holder = stream.read(200).decode(errors="replace").strip() or "another process"
    except OSError:
        return None
    try:
        with open("/proc/locks") as table:
            lines = table.read().splitlines()
    except OSError:  # pragma: no cover - not Linux: trust the holder's pid instead
        return holder if _holder_alive(holder) else None
    wanted = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF" (blocked waiters carry "->")
        held = len(fields) >= 6 and "->" not in fields and fields[1] == "FLOCK"
        if held and fields[5] == wanted:
            return holder
    return None


def _holder_alive(holder: str) -> bool:
    words = holder.split()
    try:
        pid = int(words[1])
    except (IndexError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def journal_status(state: FileState) -> JournalStatus | None:
    """The journal beside ``state``'s file, read without changing anything, or None."""
    journal_path = journal_path_for(state.path)
    if not journal_path.exists():
        return None
    writer = writer_of(state.path)
    try:
        # Pickled values stay bytes: counting runs never unpickles anything.
        contents = read_journal(journal_path, unpickle=bytes)
    except StorageError as exc:
        return JournalStatus(journal_path, writer, problem=str(exc).split(";")[0])
    if contents.header is None:
        return JournalStatus(journal_path, writer)
    journal_id = contents.header.journal_id.hex()
    unflushed: dict[str, int] = {}
    with state.reading() as h5:
        for name, entry in contents.trajectories.items():
            try:
                stored_id, count = journal_attrs(h5, name)
            except LookupError:  # tables.NoSuchNodeError: not in the file yet
                stored_id, count = "", 0
            done = count if stored_id == journal_id else 0
            if len(entry.runs) > done:
                unflushed[name] = len(entry.runs) - done
    return JournalStatus(journal_path, writer, unflushed)
