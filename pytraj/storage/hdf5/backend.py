"""The HDF5 storage backend: buffered, journaled writes and lazy, columnar reads.

Writing: :meth:`HDF5Storage.commit_runs` appends the batch to the write-ahead journal
(one ``os.writev``) and buffers it in Python lists; nothing touches HDF5. The buffers go
into the file in bulk on a budget (:data:`FLUSH_SECONDS`, :data:`FLUSH_RUNS`,
:data:`FLUSH_VALUES`, :data:`FLUSH_BYTES`), on :meth:`~HDF5Storage.flush` /
:meth:`~HDF5Storage.close`, and before any read that needs them; each flush fsyncs the
journal (in a thread, while it writes) and opens the HDF5 file only for the time it writes.

Reading (:class:`~pytraj.storage.hdf5.store.TrajectoryStore`): the definition, run
table and columns are read on demand, one read per store.
"""

from __future__ import annotations

import atexit
import contextlib
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace

import numpy as np

from pytraj.errors import PytrajWarning, StorageError
from pytraj.storage.hdf5 import writer
from pytraj.storage.hdf5.definitions import check_reserved
from pytraj.storage.hdf5.files import FileBusyError, all_states
from pytraj.storage.hdf5.samedefinition import same_definition
from pytraj.storage.hdf5.store import TrajectoryStore
from pytraj.storage.interface import ColumnData, RunTableData, Storage, value_nbytes
from pytraj.storage.records import LeafRecord, RunRecord, StudyDefinition

__all__ = ["FLUSH_BYTES", "FLUSH_RUNS", "FLUSH_SECONDS", "FLUSH_VALUES", "HDF5Storage"]

#: Flush budget: buffered runs go into HDF5 after this long, this many runs, this many
#: buffered values (a run's row and each of its items count one), or this many journaled
#: bytes, whichever comes first. Every flush opens the file and its nodes (a few ms), so
#: a study of one float per run flushes every 25,000 runs (each buffered run holds about
#: 200 bytes at the flush), one of a dozen items (W3) about every 11,000.
FLUSH_SECONDS = 1.0
FLUSH_RUNS = 25_000
FLUSH_VALUES = 150_000
FLUSH_BYTES = 64 * 1024 * 1024


def _same_provenance(old: StudyDefinition, new: StudyDefinition) -> bool:
    """Whether two definitions hold the same provenance (compared as stored values)."""
    return same_definition(
        StudyDefinition(old.name, provenance=old.provenance),
        StudyDefinition(old.name, provenance=new.provenance),
    )


class HDF5Storage(TrajectoryStore, Storage):
    """One trajectory in a pytraj HDF5 file.

    Get one from :func:`pytraj.storage.hdf5.open_new_trajectory` (a new trajectory) or
    :func:`pytraj.storage.hdf5.open_trajectory` (a stored one, read lazily; it becomes
    the file's writer on its first write, as a trajectory continued from a file does).
    The parameters are those of :class:`~pytraj.storage.hdf5.store.TrajectoryStore`.
    """

    writable = True

    def __repr__(self) -> str:
        role = "writing" if self._is_writer else "reading"
        return f"<HDF5Storage {self.name!r} in {str(self.path)!r} ({role})>"

    # -- writing ---------------------------------------------------------------------
    def _ensure_writer(self) -> None:
        if not self.writable:
            raise StorageError(
                f"{self.path} was opened read-only (e.g. by the pytraj command); load it "
                "with pytraj.load to change it"
            )
        if not self._is_writer:
            writer.acquire(self._state, self)

    def write_definition(self, definition: StudyDefinition) -> None:
        check_reserved(definition)
        current = self._pending_definition or self._stored
        # Compared with the current provenance: a writer session starting or ending
        # changes only that, and journals it alone (below).
        unchanged: StudyDefinition | None = None  # ``current``, when only provenance differs
        if current is not None and same_definition(
            current, replace(definition, provenance=current.provenance)
        ):
            if _same_provenance(current, definition):
                return
            unchanged = current
        self._ensure_writer()
        journal = self._state.journal
        if journal is not None:
            if unchanged is not None and journal.takes_provenance(self.name):
                # The journal's latest definition of this trajectory is ``current``: a
                # small frame amends it, instead of the whole study (its explored values
                # and point ids) journaled again.
                journal.append_provenance(self.name, definition.provenance)
            else:
                journal.append_definition(self.name, self.materialized(definition, journal=True))
            self._state.journal_names.add(self.name)
        else:
            assert self.disposable  # every other writer holds the journal
        if unchanged is not None:
            # The same study as stored with a new provenance: buffered as the stored
            # records themselves, so writing it compares no explored values again.
            definition = replace(unchanged, provenance=definition.provenance)
        self.buffer_definition(definition)

    def commit_runs(self, records: Sequence[RunRecord]) -> None:
        if not records:
            return
        self._ensure_writer()
        state = self._state
        journal = state.journal
        if journal is not None:
            journal.append_runs(self.name, records)
            state.journal_counts[self.name] = state.journal_counts.get(self.name, 0) + len(records)
            state.journal_names.add(self.name)
        else:
            assert self.disposable  # every other writer holds the journal
        self.buffer_runs(records)
        self._flush_on_budget()

    def append_columns(
        self,
        table: RunTableData,
        columns: Mapping[tuple[str, str], ColumnData],
        leaves: Sequence[LeafRecord] = (),
    ) -> None:
        """Store runs column by column (see :meth:`Storage.append_columns`).

        A :attr:`disposable` storage buffers the columns as they are and writes them on
        the next flush, past the journal; any other journals them run by run first, as
        :meth:`commit_runs` does, so a crash keeps them.
        """
        if not self.disposable:
            super().append_columns(table, columns, leaves)
            return
        if not len(table.rows):
            return
        self._ensure_writer()
        self.buffer_columns(table, columns, leaves)
        self._bulk_bytes += sum(_column_nbytes(column) for column in columns.values())
        self._flush_on_budget()

    def _flush_on_budget(self) -> None:
        state = self._state
        runs = self.buffered_runs()
        if (
            runs >= FLUSH_RUNS
            or runs * (1 + self.buffered_columns()) >= FLUSH_VALUES
            or self._bulk_bytes >= FLUSH_BYTES
            or state.journal_size_pending() >= FLUSH_BYTES
            or time.monotonic() - state.last_flush >= FLUSH_SECONDS
        ):
            self._budget_flush()

    def _budget_flush(self) -> None:
        state = self._state
        try:
            state.flush(patient=state.journal_size_pending() >= 2 * FLUSH_BYTES)
        except FileBusyError:
            # Another program reads the file right now; the runs are safe in the journal.
            state.last_flush = time.monotonic()

    def flush(self) -> None:
        if self._is_writer:
            self._state.flush()

    def close(self) -> None:
        if not self._is_writer:
            return
        clean = False
        try:
            self._state.flush()
            clean = True
        finally:
            writer.release(self._state, self, clean=clean)

    @contextlib.contextmanager
    def kept_open(self) -> Iterator[None]:
        """Keep the file open for writing across several operations (a merge makes
        dozens of reads and writes): one open, and one check of what was written at the
        end, instead of one per operation."""
        with self._state.writing():
            yield


def _column_nbytes(column: ColumnData) -> int:
    """About how many bytes a column's values hold (for the flush budget)."""
    values = column.values
    if isinstance(values, np.ndarray) and values.dtype != object:
        return int(values.nbytes)
    if len(values) and type(values[0]) in _SCALARS:
        return 8 * len(values)  # a column of scalars (sizing the budget needs no more)
    return sum(value_nbytes(value) for value in values)


_SCALARS = (bool, int, float)


def close_at_exit() -> None:
    """Close the files this process still writes when the interpreter exits normally.

    A script that forgets ``traj.close()`` then leaves a clean file (no journal to
    replay). A kill skips this, and the journal covers it.
    """
    for state in all_states():
        for storage in list(state.writers.values()):
            if not isinstance(storage, HDF5Storage):
                continue  # only storages take the writer role (a typing guard)
            try:
                storage.close()
            except Exception as exc:  # at exit there is no caller left to raise to
                warnings.warn(
                    PytrajWarning(
                        f"could not close {state.path} at exit ({exc}); its journal keeps "
                        "the runs, and the next open replays them"
                    ),
                    stacklevel=1,
                )


atexit.register(close_at_exit)
