"""A pending journal laid over its file in memory, for reading without writing.

A study that runs (or crashed) holds its latest runs only in the write-ahead journal
until the next flush (or replay). A read-only open shows them anyway:
:class:`JournalOverlay` holds the journal's records the file lacks for one trajectory
(read exactly as recovery would replay them: the frames after the file's last flush,
or the journal's records beyond the trajectory's count), and
:class:`OverlaidStorage` answers every read from the file's storage with those records
laid over it. Nothing is written: not the file, not the journal, not the lock.

Consistency with a live writer: every read opens the file under HDF5's own file lock,
which the writer's flush holds exclusively (opening waits and retries while a flush
runs), and reads the file's flush marker (the journal id and size it was last flushed
from) inside that same open. When the marker moved (a flush came in between), the
journal's tail is read again from the new marker, so a run is never counted twice nor
lost. A read that finds the file damaged (a writer killed in the middle of a flush) is
tried again a few times before the error is raised.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from pytraj.errors import DamagedFileError, StorageError
from pytraj.storage.hdf5.backend import HDF5Storage
from pytraj.storage.hdf5.codecs import pickled_lazy
from pytraj.storage.hdf5.files import FileState
from pytraj.storage.hdf5.groups import journal_attrs
from pytraj.storage.hdf5.journal_format import JournalContents, journal_path_for, read_journal
from pytraj.storage.hdf5.layout import JOURNAL_ID, JOURNAL_SIZE, LOG_KEY
from pytraj.storage.interface import (
    BLOCK_BYTES,
    RUN_TABLE_DTYPE,
    ColumnData,
    RunTableData,
    Storage,
    run_table_row,
)
from pytraj.storage.records import RunRecord, StudyDefinition

__all__ = ["READ_ATTEMPTS", "JournalOverlay", "OverlaidStorage", "read_overlay"]

#: How often a read that finds the file damaged is tried (a writer killed during a
#: flush can leave it so for a moment only if it was still writing; a file that stays
#: damaged raises after the last attempt).
READ_ATTEMPTS = 5
_PAUSE_SECONDS = 0.2

_Key = tuple[str, str]
_T = TypeVar("_T")
#: Python scalar types a column keeps as a numpy array (as the file does).
_PLAIN = {float: np.float64, int: np.int64, bool: np.bool_, complex: np.complex128}


@dataclass(slots=True)
class JournalOverlay:
    """What a pending journal holds for one trajectory beyond its file.

    Attributes
    ----------
    marker
        The file's flush marker (journal id, journal size) when the journal was read.
    definition
        The latest definition the journal holds (replay writes it), or None.
    records
        Run records the file lacks, in the order journaled (a retried run comes again).
    """

    marker: tuple[str, int]
    definition: StudyDefinition | None = None
    records: list[RunRecord] = field(default_factory=list)
    latest: dict[int, RunRecord] = field(init=False)
    _runs: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        # A run committed again replaces everything it stored before (as a replay does).
        self.latest = {record.idx: record for record in self.records}
        self._runs = np.array(sorted(self.latest), dtype=np.int64)

    def __len__(self) -> int:
        """Run records from the journal (a retried run counts once per attempt)."""
        return len(self.records)

    # -- the run table ------------------------------------------------------------------
    def run_table(self, base: RunTableData) -> RunTableData:
        """``base`` with the journal's rows appended: the latest row of each run wins."""
        if not self.records:
            return base
        hosts = list(base.hosts)
        host_ids = {host: position for position, host in enumerate(hosts)}
        failures = list(base.failures)
        rows = []
        for record in self.records:
            host = host_ids.get(record.host)
            if host is None:
                host = host_ids[record.host] = len(hosts)
                hosts.append(record.host)
            error = -1
            if record.failure is not None:
                error = len(failures)
                failures.append(record.failure)
            rows.append(run_table_row(record, host, error))
        both = np.concatenate([base.rows, np.array(rows, dtype=RUN_TABLE_DTYPE)])
        _, last = np.unique(both["idx"][::-1], return_index=True)
        return RunTableData(rows=both[len(both) - 1 - last], hosts=hosts, failures=failures)

    # -- per-run values -----------------------------------------------------------------
    def _new_cells(self, key: _Key) -> tuple[list[int], list[Any]]:
        runs, values = [], []
        for idx in self._runs.tolist():
            record = self.latest[idx]
            if key == LOG_KEY:
                if record.log:
                    runs.append(idx)
                    values.append(record.log)
            elif key in record.values:
                runs.append(idx)
                values.append(record.values[key])
        return runs, values

    def column_runs(self, key: _Key, base: np.ndarray) -> np.ndarray:
        """The runs that have a value of ``key``, the journal's laid over ``base``."""
        if not self.latest:
            return base
        runs, _ = self._new_cells(key)
        kept = base[~np.isin(base, self._runs)]
        return np.sort(np.concatenate([kept, np.array(runs, dtype=np.int64)]))

    def column(self, key: _Key, base: ColumnData) -> ColumnData:
        """All values of ``key``: the file's, with the journal's runs replacing theirs."""
        if not self.latest:
            return base
        keep = ~np.isin(base.runs, self._runs)
        new_runs, new_values = self._new_cells(key)
        if bool(keep.all()) and not new_runs:
            return base
        runs = np.concatenate([base.runs[keep], np.array(new_runs, dtype=np.int64)])
        order = np.argsort(runs, kind="stable")
        packed = _packed(new_values)
        if isinstance(base.values, np.ndarray) and packed is not None:
            new_array, convert = packed
            if not len(base) or (
                new_array.dtype == base.values.dtype
                and new_array.shape[1:] == base.values.shape[1:]
                and convert is base.convert
            ):
                values = np.concatenate([base.values[keep], new_array]) if len(base) else new_array
                return ColumnData(runs=runs[order], values=values[order], convert=convert)
        kept = [base.value_at(position) for position in np.flatnonzero(keep).tolist()]
        every = [*kept, *new_values]
        every = [every[position] for position in order.tolist()]
        repacked = _packed(every)
        if repacked is not None:
            return ColumnData(runs=runs[order], values=repacked[0], convert=repacked[1])
        return ColumnData(runs=runs[order], values=every)

    def cell(self, key: _Key, idx: int) -> tuple[bool, Any]:
        """``(True, value)`` when the journal holds run ``idx``; ``(False, None)`` when
        the file decides. Raises KeyError when the journal's latest record of the run
        has no value of ``key`` (a replay would leave none)."""
        record = self.latest.get(idx)
        if record is None:
            return False, None
        if key == LOG_KEY and record.log:
            return True, record.log
        if key in record.values:
            return True, record.values[key]
        raise KeyError((*key, idx))

    def log(self, idx: int) -> str | None:
        """Run ``idx``'s captured log when the journal decides it, else None."""
        record = self.latest.get(idx)
        return None if record is None else record.log

    def items(self, path: str) -> dict[str, Any] | None:
        """The items of trajectory-level result ``path`` from the journal's definition."""
        if self.definition is None:
            return None
        for leaf in self.definition.leaves:
            if leaf.path == path:
                return dict(leaf.items)
        raise KeyError(path)


def _packed(values: Sequence[Any]) -> tuple[np.ndarray, Any] | None:
    """``values`` as one numpy array and the type that gives each element back, when
    they are all of one plain kind (as the file keeps such a column); else None."""
    if not values:
        return None
    kind = type(values[0])
    if any(type(value) is not kind for value in values):
        return None
    dtype = _PLAIN.get(kind)
    if dtype is not None:
        return np.array(values, dtype=dtype), kind
    if issubclass(kind, np.generic) and kind is not np.object_:
        return np.array(values), None
    return None


def file_marker(h5: Any) -> tuple[str, int]:
    """The journal id and size the open file was last flushed from (("", -1): never)."""
    attrs = h5.root._v_attrs
    journal_id = str(attrs[JOURNAL_ID]) if JOURNAL_ID in attrs else ""
    size = int(attrs[JOURNAL_SIZE]) if JOURNAL_SIZE in attrs else -1
    return journal_id, size


def read_overlay(path: Path, h5: Any, name: str, *, allow_pickle: bool) -> JournalOverlay:
    """Read what the journal of ``path`` holds for trajectory ``name`` beyond the open file.

    ``h5`` is the file, open for reading for the whole call: a writer cannot flush
    meanwhile, so the file's counts and the journal's frames agree. Values of Pickle
    leaves stay pickled (unpickled on access, and only with ``allow_pickle``).
    """
    marker = file_marker(h5)
    stored_id, count = journal_attrs(h5, name)
    journal_path = journal_path_for(path)

    def unpickle(raw: bytes) -> Any:
        return pickled_lazy(raw, allow_pickle, f"a pickled value in {journal_path.name}")

    # The frames after the file's last flush are all it lacks, when this trajectory was
    # flushed from that journal then (as recovery reads them: only the tail).
    tail = marker[1] > 0 and stored_id == marker[0]
    contents = _read(journal_path, marker[1] if tail else 0, unpickle)
    if contents is None or contents.header is None:
        return JournalOverlay(marker)
    journal_id = contents.header.journal_id.hex()
    if tail and journal_id != marker[0]:
        # Another journal than the file was flushed from: its records are all new to
        # the trajectories it names, as replay takes them.
        tail = False
        contents = _read(journal_path, 0, unpickle)
        if contents is None or contents.header is None:
            return JournalOverlay(marker)
    entry = contents.trajectories.get(name)
    if entry is None:
        return JournalOverlay(marker)
    done = 0 if tail else (count if stored_id == journal_id else 0)
    return JournalOverlay(marker, entry.definition, entry.runs[done:])


def _read(
    journal_path: Path, start: int, unpickle: Callable[[bytes], Any]
) -> JournalContents | None:
    """The journal's frames from ``start``; None when there is no journal (any more)."""
    if not journal_path.exists():
        return None
    try:
        # Salvage: a reader takes the good frames before any damage, as recovery does.
        return read_journal(journal_path, salvage=True, start=start, unpickle=unpickle)
    except StorageError:
        if not journal_path.exists():
            return None  # removed meanwhile: the writer closed cleanly
        raise


class OverlaidStorage(Storage):
    """A read-only trajectory of a file with its pending journal laid over it.

    Answers the reads of :class:`~pytraj.storage.interface.Storage` as the file would
    after a replay of the journal, writing nothing. Get one from
    :func:`pytraj.storage.hdf5.open_trajectory` with ``read_only=True``.

    Parameters
    ----------
    state
        The file's process-wide state (this process does not write the file).
    name
        The trajectory.
    allow_pickle
        Whether values of Pickle leaves may be unpickled (on access).
    """

    writable = False

    def __init__(self, state: FileState, name: str, *, allow_pickle: bool = True) -> None:
        self._state = state
        self.name = name
        self.allow_pickle = allow_pickle
        self._base = self._new_base()
        self._overlay: JournalOverlay | None = None

    def _new_base(self) -> HDF5Storage:
        return HDF5Storage(self._state, self.name, allow_pickle=self.allow_pickle, read_only=True)

    @property
    def path(self) -> Path:
        """The HDF5 file."""
        return self._state.path

    @property
    def overlay(self) -> JournalOverlay:
        """The journal's records as last read (read now if never)."""
        return self._consistent(lambda overlay: overlay)

    def __repr__(self) -> str:
        return f"<OverlaidStorage {self.name!r} in {str(self.path)!r} (reading with its journal)>"

    def _current(self, h5: Any) -> JournalOverlay:
        overlay = self._overlay
        if overlay is None or overlay.marker != file_marker(h5):
            if overlay is not None:
                # A flush came in: the file's storage caches reads per flush of this
                # process only, so a fresh one reads what the flush wrote.
                self._base = self._new_base()
            overlay = self._overlay = read_overlay(
                self.path, h5, self.name, allow_pickle=self.allow_pickle
            )
        return overlay

    def _consistent(self, read: Callable[[JournalOverlay], _T]) -> _T:
        """``read`` with the file open throughout, so file and overlay agree."""
        for attempt in range(READ_ATTEMPTS):
            try:
                with self._state.reading() as h5:
                    return read(self._current(h5))
            except DamagedFileError:
                if attempt == READ_ATTEMPTS - 1:
                    raise
                self._overlay = None
                time.sleep(_PAUSE_SECONDS)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Keep the file open across several reads (loading a trajectory makes a few)."""
        with self._state.reading() as h5:
            self._current(h5)
            yield

    @contextlib.contextmanager
    def held_open(self) -> Iterator[None]:
        """Keep the file open for reading until the block ends (``traj.reading()``)."""
        with self._state.holding():
            yield

    # -- writes are refused -------------------------------------------------------------
    def _refuse(self) -> StorageError:
        return StorageError(
            f"{self.path} was opened read-only (e.g. by the pytraj command); load it "
            "with pytraj.load to change it"
        )

    def write_definition(self, definition: StudyDefinition) -> None:
        raise self._refuse()

    def commit_runs(self, records: Sequence[RunRecord]) -> None:
        if records:
            raise self._refuse()

    # -- reads --------------------------------------------------------------------------
    def has_definition(self) -> bool:
        return self._consistent(
            lambda overlay: overlay.definition is not None or self._base.has_definition()
        )

    def read_definition(self) -> StudyDefinition:
        def read(overlay: JournalOverlay) -> StudyDefinition:
            return overlay.definition or self._base.read_definition()

        return self._consistent(read)

    def read_items(self, path: str) -> dict[str, Any]:
        def read(overlay: JournalOverlay) -> dict[str, Any]:
            items = overlay.items(path)
            return items if items is not None else self._base.read_items(path)

        return self._consistent(read)

    def read_run_table(self) -> RunTableData:
        return self._consistent(lambda overlay: overlay.run_table(self._base.read_run_table()))

    def read_column(self, path: str, item: str) -> ColumnData:
        key = (path, item)
        return self._consistent(lambda overlay: overlay.column(key, self._base.read_column(*key)))

    def read_column_runs(self, path: str, item: str) -> np.ndarray:
        key = (path, item)
        return self._consistent(
            lambda overlay: overlay.column_runs(key, self._base.read_column_runs(*key))
        )

    def iter_column(
        self, path: str, item: str, block_bytes: int = BLOCK_BYTES
    ) -> Iterator[ColumnData]:
        if not self.overlay.latest:
            yield from self._base.iter_column(path, item, block_bytes)
            return
        # Journal runs may fall between the file's: one merged column keeps them ordered.
        column = self.read_column(path, item)
        if len(column):
            yield column

    def read_cell(self, path: str, item: str, idx: int) -> Any:
        def read(overlay: JournalOverlay) -> Any:
            decided, value = overlay.cell((path, item), idx)
            return value if decided else self._base.read_cell(path, item, idx)

        return self._consistent(read)

    def read_run_log(self, idx: int) -> str:
        def read(overlay: JournalOverlay) -> str:
            log = overlay.log(idx)
            return log if log is not None else self._base.read_run_log(idx)

        return self._consistent(read)
