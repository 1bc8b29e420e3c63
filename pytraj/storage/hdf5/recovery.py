"""Opening a file whose writer did not close cleanly: replay or rebuild from the journal.

What is protected: every run whose commit returned (it is in the journal, written with
one ``os.writev`` before the commit returns, so a killed process loses nothing; fsynced
at every flush, so a machine crash loses at most the runs since the last flush) and
every study definition written, since the last clean close. Recovery then:

* **replays** the journal's records that the HDF5 file lacks: a trajectory group records
  which journal it was last flushed from and how many of its records it holds;
* **rebuilds** the file when it cannot be opened or read (a kill during a flush can
  damage an HDF5 file): the damaged file is moved aside to ``<file>.damaged-<n>``, what
  can still be read from it is copied (salvaged), and every trajectory of the journal is
  written again from its definition and run records.

Either way a :class:`~pytraj.errors.RecoveryWarning` says what happened. The journal is
kept (and continued by the next writer) until a writer closes the file cleanly, so a
later damage can still be repaired from it. Not protected: runs stored before the last
clean close of a file that is later damaged beyond salvage.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from pytraj.crashpoints import ENV_VAR as CRASH_ENV_VAR
from pytraj.crashpoints import crash_point
from pytraj.errors import DamagedFileError, FileFormatError, RecoveryWarning, StorageError
from pytraj.storage.hdf5.cells import forget_run_rows
from pytraj.storage.hdf5.codecs import resolve, set_attr
from pytraj.storage.hdf5.damage import check_file, check_hdf5
from pytraj.storage.hdf5.files import (
    RESERVE_BYTES,
    FileBusyError,
    FileState,
    file_state,
    forget_state,
)
from pytraj.storage.hdf5.groups import (
    create_file,
    damaged_structure,
    journal_attrs,
    new_trajectory_group,
    stored_names,
)
from pytraj.storage.hdf5.journal import JournalContents, journal_path_for, read_journal
from pytraj.storage.hdf5.journal_format import JournalScan, iter_frames
from pytraj.storage.hdf5.layout import (
    JOURNAL_ID,
    JOURNAL_RUNS,
    JOURNAL_SIZE,
    LOG_KEY,
    RUNS,
    TRAJECTORIES,
    column_path,
    traj_path,
)
from pytraj.storage.hdf5.options import FileOptions
from pytraj.storage.hdf5.store import TrajectoryStore
from pytraj.storage.records import STATUS_NAMES, RunRecord, StudyDefinition

__all__ = ["recover"]


class _Damaged(Exception):
    """The HDF5 file cannot be used; carries why."""


def _damage_errors() -> tuple[type[BaseException], ...]:
    import tables  # keeps import pytraj fast: PyTables loads on first use

    return (tables.HDF5ExtError, tables.NodeError, DamagedFileError, KeyError, ValueError)


def _unreadable() -> tuple[type[BaseException], ...]:
    """What reading a damaged file may raise (salvage skips what raises it)."""
    return (FileFormatError, StorageError, *_damage_errors())


def recover(state: FileState) -> tuple[dict[str, int], set[str]] | None:
    """Bring the file up to its journal (the caller holds the lock).

    Returns
    -------
    tuple or None
        Run records per trajectory in the journal and the trajectories it mentions, to
        continue it; None when the journal cannot be continued (a new one is needed).
    """
    # Recovery starts from the journal whatever an earlier write left in the file (a
    # replay refused for lack of room is tried again once there is room).
    state.write_failure = None
    journal_path = journal_path_for(state.path)
    notes: list[str] = []
    tail = _unflushed_frames(state)
    if tail is not None:
        try:
            replayed = _replay(state, tail, tail=True)
        except _Damaged:
            replayed = None  # the file is rebuilt below, from the whole journal
        if replayed is not None:
            notes_warning(state, _replay_notes(replayed))
            _close_replay(state, tail)
            return _journal_counts(state, tail)
    contents = read_journal(journal_path, salvage=True)
    if contents.header is None:
        return None  # torn while being created: it holds nothing
    try:
        notes += _replay_notes(_replay(state, contents))
    except _Damaged as exc:
        notes += _rebuild(state, contents, str(exc))
    _close_replay(state, contents)
    continued: tuple[dict[str, int], set[str]] | None = (
        {name: len(entry.runs) for name, entry in contents.trajectories.items()},
        set(contents.trajectories),
    )
    if contents.damaged_at is not None:
        state.fsync_data()
        aside = _free_name(journal_path, "damaged")
        os.replace(journal_path, aside)
        notes.append(
            f"the journal was damaged at byte {contents.damaged_at}; what came after it is "
            f"lost (the journal was moved to {aside.name})"
        )
        continued = None
    notes_warning(state, notes)
    return continued


def notes_warning(state: FileState, notes: list[str]) -> None:
    """Tell what recovery did (nothing to tell: no warning)."""
    if notes:
        warnings.warn(
            RecoveryWarning(f"{state.path} was not closed cleanly; " + "; ".join(notes) + "."),
            stacklevel=6,
        )


def _replay_notes(replayed: list[tuple[str, int]]) -> list[str]:
    return [
        f"replayed {n} run{'' if n == 1 else 's'} of trajectory {name!r}" for name, n in replayed
    ]


def _close_replay(state: FileState, contents: JournalContents) -> None:
    """Record that the file holds everything the journal does: later opens need not read it."""
    assert contents.header is not None
    with state.writing() as h5:
        h5.root._v_attrs[JOURNAL_ID] = contents.header.journal_id.hex()
        h5.root._v_attrs[JOURNAL_SIZE] = contents.valid_size


def _unflushed_frames(state: FileState) -> JournalContents | None:
    """The journal's frames after the data file's last flush, when that is all it lacks.

    Every flush records the journal's id and size on the file's root, and each
    trajectory's count of journal records; what comes before that size is in the file.
    Reading only the rest keeps opening a file whose writer was killed proportional to
    what it lacks, not to the whole study. None when that cannot be relied on (another
    journal, a file that does not open, a trajectory the file does not know from this
    journal): then the whole journal is read.
    """
    journal_path = journal_path_for(state.path)
    try:
        check_hdf5(state.path)
        with state.reading() as h5:
            check_file(h5, state.path)
            attrs = h5.root._v_attrs
            flushed_id = str(attrs[JOURNAL_ID]) if JOURNAL_ID in attrs else ""
            flushed_size = int(attrs[JOURNAL_SIZE]) if JOURNAL_SIZE in attrs else -1
            names = stored_names(h5)
            known = {name for name in names if journal_attrs(h5, name)[0] == flushed_id}
            damage = damaged_structure(h5)
        if flushed_size <= 0 or damage is not None:
            return None
        tail = read_journal(journal_path, start=flushed_size)
    except _unreadable():
        return None
    if (
        tail.header is None
        or tail.header.journal_id.hex() != flushed_id
        or not set(tail.trajectories) <= known
    ):
        return None
    return tail


def _journal_counts(state: FileState, contents: JournalContents) -> tuple[dict[str, int], set[str]]:
    """Journal records per trajectory as the file records them (to continue the journal)."""
    assert contents.header is not None
    journal_id = contents.header.journal_id.hex()
    counts = {}
    with state.reading() as h5:
        for name in stored_names(h5):
            stored_id, count = journal_attrs(h5, name)
            if stored_id == journal_id:
                counts[name] = count
    return counts, set(counts)


def journal_is_flushed(state: FileState) -> bool:
    """Whether the file is whole and holds everything its journal does (then the journal
    need not be read).

    The file records the journal's id and size at every flush; a journal of that id and
    size was not written to since. A kill during a flush can keep that record and lose or
    tear a node inside a trajectory, so the file's structure is checked too
    (:func:`~pytraj.storage.hdf5.groups.damaged_structure`): once per change of the file
    or the journal in this process.
    """
    journal_path = journal_path_for(state.path)
    try:
        seen = _stat_key(state.path) + _stat_key(journal_path)
    except OSError:
        return False
    if seen == state.found_flushed:
        return True
    scan = JournalScan()
    try:
        frames = iter_frames(journal_path, scan)
        next(frames, None)  # reads the header
        close = getattr(frames, "close", None)  # a generator: release the file now
        if close is not None:
            close()
        with state.reading() as h5:
            attrs = h5.root._v_attrs
            flushed_id = str(attrs[JOURNAL_ID]) if JOURNAL_ID in attrs else ""
            flushed_size = int(attrs[JOURNAL_SIZE]) if JOURNAL_SIZE in attrs else -1
            flushed = (
                scan.header is not None
                and scan.header.journal_id.hex() == flushed_id
                and journal_path.stat().st_size == flushed_size
                and damaged_structure(h5) is None
            )
    except _unreadable():
        return False
    state.found_flushed = seen if flushed else None
    return flushed


def _stat_key(path: Path) -> tuple[int, int, int]:
    found = path.stat()
    return (found.st_ino, found.st_size, found.st_mtime_ns)


def _free_name(path: Path, word: str) -> Path:
    number = 1
    while True:
        candidate = path.with_name(f"{path.name}.{word}-{number}")
        if not candidate.exists():
            return candidate
        number += 1


def _replay(
    state: FileState, contents: JournalContents, *, tail: bool = False
) -> list[tuple[str, int]]:
    """Write the journal records the file lacks; raise _Damaged if it cannot be used.

    With ``tail``, ``contents`` holds only the frames after the file's last flush
    (:func:`_unflushed_frames`): all of its records are new.
    """
    assert contents.header is not None
    try:
        check_hdf5(state.path)
    except DamagedFileError as exc:
        raise _Damaged(exc.reason) from exc
    except StorageError as exc:
        raise _Damaged(str(exc)) from exc
    try:
        with state.reading() as h5:
            check_file(h5, state.path)
            # A tail comes from _unflushed_frames, which checked the structure already.
            damage = None if tail else damaged_structure(h5)
    except DamagedFileError as exc:
        raise _Damaged(exc.reason) from exc
    if damage is not None:
        # A kill while HDF5 rewrote the file's metadata can leave the root's attributes
        # (the list of trajectories, the journal size flushed) without a trajectory's
        # group, or a node inside one lost or torn: the file opens, but misses data.
        raise _Damaged(damage)
    journal_id = contents.header.journal_id.hex()
    replayed = []
    # Room for everything the journal holds, so that a disk still full refuses the
    # replay before it touches the file.
    room = contents.valid_size * 9 // 8 + RESERVE_BYTES
    try:
        with state.writing(reserve=room) as h5:
            for name, entry in contents.trajectories.items():
                present = name in stored_names(h5)
                if not present and entry.definition is None:
                    continue  # removed from the file since; nothing to rebuild it from
                total = len(entry.runs)
                if present:
                    stored_id, count = journal_attrs(h5, name)
                    done = count if stored_id == journal_id else 0
                    if tail:
                        done, total = 0, count + len(entry.runs)
                else:
                    _new_group(h5, name)
                    done = 0
                todo = entry.runs[done:]
                _apply(
                    state,
                    h5,
                    name,
                    definition=entry.definition,
                    records=todo,
                    journal_id=journal_id,
                    count=total,
                    provenance=entry.provenance,
                )
                if todo:
                    replayed.append((name, len(todo)))
                crash_point("replay")
            if not contents.trajectories:
                # Nothing written since the last flush: the pass still holds the file
                # open for writing (its room reserved), a moment the crash tests kill in.
                crash_point("replay")
    except FileBusyError:
        raise
    except _damage_errors() as exc:
        raise _Damaged(f"{type(exc).__name__}: {exc}") from exc
    return replayed


def _new_group(h5: Any, name: str) -> None:
    names = stored_names(h5)
    new_trajectory_group(h5, name, FileOptions(), "", 0)
    set_attr(h5.root._v_attrs, TRAJECTORIES, ",".join([*names, name]))


def _apply(
    state: FileState,
    h5: Any,
    name: str,
    *,
    definition: StudyDefinition | None,
    records: list[RunRecord],
    journal_id: str,
    count: int,
    provenance: dict[str, Any] | None = None,
) -> None:
    """Write a definition and run records into trajectory ``name`` of the open file.

    ``provenance`` (with no ``definition``) is that of a provenance frame whose definition
    frame came before the frames replayed: the file holds that definition, amended here.
    """
    storage = TrajectoryStore(state, name)
    # The cells are authoritative; the run -> row indexes a killed flush may have left
    # half rewritten are rebuilt from them by the writes below.
    runs_group = h5.get_node(f"{traj_path(name)}/{RUNS}")
    forget_run_rows(h5, runs_group, lambda key: column_path(name, key))
    storage.start_writing(h5)
    stored = storage.stored_definition
    if definition is None and provenance is not None and stored is not None:
        definition = replace(stored, provenance=provenance)
    if definition is not None:
        storage.buffer_definition(definition)
    if records:
        storage.buffer_runs(records)
    storage.write_pending(h5)
    storage.stop_writing()
    attrs = h5.get_node(f"/{name}")._v_attrs
    attrs[JOURNAL_ID] = journal_id
    attrs[JOURNAL_RUNS] = count


def _rebuild(state: FileState, contents: JournalContents, reason: str) -> list[str]:
    """Move the damaged file aside and write the trajectories again."""
    assert contents.header is not None
    notes = [f"it could not be read ({reason})"]
    aside: Path | None = None
    if state.path.exists():
        aside = _free_name(state.path, "damaged")
        os.replace(state.path, aside)
        notes.append(f"the damaged file was moved to {aside.name}")
    salvaged: dict[str, tuple[StudyDefinition, list[RunRecord]]] = {}
    if aside is not None:
        crashed = _salvage_crashes(aside)
        if crashed is None:
            salvaged = _salvage(aside)
        else:
            notes.append(f"nothing was salvaged from it (reading it made HDF5 crash: {crashed})")
    create_file(state)
    crash_point("rebuild")
    journal_id = contents.header.journal_id.hex()
    rebuilt = []
    with state.writing() as h5:
        for name, (definition, records) in salvaged.items():
            _new_group(h5, name)
            _apply(state, h5, name, definition=definition, records=records, journal_id="", count=0)
        for name, entry in contents.trajectories.items():
            if name not in salvaged:
                if entry.definition is None:
                    notes.append(f"trajectory {name!r} could not be rebuilt (no definition)")
                    continue
                _new_group(h5, name)
            _apply(
                state,
                h5,
                name,
                definition=entry.definition,
                records=entry.runs,
                journal_id=journal_id,
                count=len(entry.runs),
                provenance=entry.provenance,
            )
            rebuilt.append(f"{name!r} ({len(entry.runs)} journaled runs)")
    if salvaged:
        notes.append(f"salvaged {', '.join(map(repr, salvaged))} from the damaged file")
    notes.append(f"rebuilt {', '.join(rebuilt) or 'nothing'} from the journal")
    return notes


#: How long the child process that tries a salvage first may take.
SALVAGE_PROBE_SECONDS = 600.0


def _salvage_crashes(path: Path) -> str | None:
    """Why salvaging ``path`` would crash this process, or None when it is safe.

    Some damage makes HDF5 itself crash rather than report an error: a file cut in half
    and padded back to its recorded size (see :func:`_padded_copy`) made ``H5Fopen``
    segfault reading the zeros where its root group had been. So the salvage runs in a
    child process first, and here only if the child survived it (the same bytes give the
    same reads).
    """
    env = {key: value for key, value in os.environ.items() if key != CRASH_ENV_VAR}
    # The child must import this very pytraj, wherever this process found it.
    package_root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    command = [
        sys.executable,
        "-c",
        "import sys; from pytraj.storage.hdf5.recovery import probe_salvage; "
        "probe_salvage(sys.argv[1])",
        str(path),
    ]
    pattern = glob.escape(path.name) + ".padded-*"
    before = set(path.parent.glob(pattern))
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=env,
            timeout=SALVAGE_PROBE_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        crashed = f"no answer after {SALVAGE_PROBE_SECONDS:.0f} s"
    else:
        if done.returncode >= 0:
            return None  # what the salvage raises is caught the same way here
        try:
            crashed = signal.Signals(-done.returncode).name
        except ValueError:
            crashed = f"signal {-done.returncode}"
    for leftover in set(path.parent.glob(pattern)) - before:
        leftover.unlink(missing_ok=True)  # the padded copy the crashed child left
    return crashed


def probe_salvage(path: str) -> None:
    """Salvage ``path`` and discard the result (run in a child by :func:`_salvage_crashes`)."""
    _salvage(Path(path))


def _padded_copy(path: Path, reason: str) -> Path | None:
    """A copy of a truncated file grown back to the size its superblock records.

    A kill during a flush can leave the file shorter than HDF5 expects; with the end
    padded, the parts written before are often readable again.
    """
    match = re.search(r"stored_eof = (\d+)", reason)
    if match is None:
        return None
    copy = _free_name(path, "padded")
    shutil.copyfile(path, copy)
    with open(copy, "r+b") as stream:
        stream.truncate(int(match.group(1)))
    return copy


def _salvage(path: Path) -> dict[str, tuple[StudyDefinition, list[RunRecord]]]:
    """Whatever trajectories can still be read from a damaged file, as records."""
    found: dict[str, tuple[StudyDefinition, list[RunRecord]]] = {}
    try:
        with file_state(path).reading() as h5:
            check_file(h5, path)
        return _salvage_from(path)
    except DamagedFileError as exc:
        copy = _padded_copy(path, exc.reason)
    except _unreadable():
        return found
    if copy is None:
        return found
    try:
        return _salvage_from(copy)
    except _unreadable():
        return found
    finally:
        forget_state(copy)
        copy.unlink()


def _salvage_from(path: Path) -> dict[str, tuple[StudyDefinition, list[RunRecord]]]:
    """The trajectories of ``path`` that can be read, as records (those of a trajectory
    that lost a node may lack values: the journal's runs are written over them)."""
    source = file_state(path)
    found: dict[str, tuple[StudyDefinition, list[RunRecord]]] = {}
    with source.reading() as h5:
        check_file(h5, path)
        names = stored_names(h5)
    for name in names:
        try:
            storage = TrajectoryStore(source, name)
            definition = _detached(storage.materialized(storage.read_definition(), journal=True))
            found[name] = (definition, _records_of(storage, definition))
        except _unreadable():
            continue
    return found


def _detached(definition: StudyDefinition) -> StudyDefinition:
    """Every value read now: the damaged file (or its padded copy) goes away."""
    leaves = [
        replace(
            leaf,
            default=resolve(leaf.default),
            explored=None if leaf.explored is None else [resolve(v) for v in leaf.explored],
            items={item: resolve(value) for item, value in leaf.items.items()},
        )
        for leaf in definition.leaves
    ]
    # Point ids too: a loaded definition leaves them in the file until first used.
    return replace(definition, leaves=leaves, point_ids=list(definition.point_ids))


def _records_of(storage: TrajectoryStore, definition: StudyDefinition) -> list[RunRecord]:
    """Run records rebuilt from a stored run table and columns."""
    keys = storage.column_keys()
    table = storage.read_run_table()
    point_ids = np.ascontiguousarray(table.rows["point_id"]).view("V16").tolist()
    records = {}
    for position, row in enumerate(table.rows):
        idx = int(row["idx"])
        if not 0 <= idx < definition.n_runs or int(row["status"]) not in STATUS_NAMES:
            continue  # a row torn by the kill that damaged the file
        host = int(row["host"])
        error = int(row["error"])
        records[idx] = RunRecord(
            idx=idx,
            point_id=point_ids[position],
            status=int(row["status"]),
            attempt=int(row["attempt"]),
            start=float(row["start"]),
            finish=float(row["finish"]),
            host=table.hosts[host] if 0 <= host < len(table.hosts) else "",
            pid=int(row["pid"]),
            failure=table.failures[error] if 0 <= error < len(table.failures) else None,
        )
    for key in keys:
        column = storage.read_column(*key)
        for position, idx in enumerate(column.runs.tolist()):
            record = records.get(idx)
            if record is None:
                continue
            value = column.value_at(position)
            if key == LOG_KEY:
                record.log = value
            else:
                record.values[key] = value
    return [records[idx] for idx in sorted(records)]
