"""The HDF5 writer's buffers: finished runs wait here, column by column, for a flush.

:class:`RunBuffers` is the part of :class:`~pytraj.storage.hdf5.backend.HDF5Storage`
that enters runs into its buffers: run by run (:meth:`RunBuffers.buffer_runs`, the hot
path of every committed run) or whole columns at a time
(:meth:`RunBuffers.buffer_columns`, the bulk path of a merge). Nothing here touches
HDF5 or the journal; the backend's flush writes the buffers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pytraj.storage.hdf5.cells import TOMBSTONE
from pytraj.storage.hdf5.layout import LOG_KEY
from pytraj.storage.interface import (
    RUN_TABLE_DTYPE,
    ColumnData,
    RunTableData,
    check_bulk,
    renumbered_rows,
    run_table_row,
    uniform_table_rows,
)
from pytraj.storage.records import FailureRecord, LeafRecord, RunRecord
from pytraj.storage.runbatch import UniformRuns, uniform_runs

__all__ = ["RunBuffers"]

_Key = tuple[str, str]


class RunBuffers:
    """Buffers of committed runs not written to HDF5 yet (a mixin of the HDF5 backend).

    Rows wait as tuples (one per committed run) and as blocks of rows (one per bulk
    append), in commit order, so a later row of a run still wins when read.
    """

    _rows: list[tuple[Any, ...]]
    _row_blocks: list[np.ndarray]
    _failures: list[FailureRecord]
    _new_hosts: list[str]
    _buffers: dict[_Key, tuple[list[int], list[Any]]]
    _dirty: bool
    _pickled: dict[str, bool]
    _host_ids: dict[str, int]
    _n_failures: int
    _committed: np.ndarray
    #: Runs below this may be committed in the file and are not in ``_committed`` yet:
    #: :meth:`read_committed` reads them when a commit first touches one (0: none).
    _unread_below: int
    _known_columns: set[_Key]

    def read_committed(self) -> None:
        """Enter the runs the file holds into ``_committed`` (the storage reads them)."""
        raise NotImplementedError  # pragma: no cover - TrajectoryStore implements it

    def buffer_runs(self, records: Sequence[RunRecord]) -> None:
        """Enter records into the buffers (the per-run hot path: no HDF5 call)."""
        batch = uniform_runs(records)
        if batch is not None and self._buffer_uniform(batch):
            return
        if self._unread_below and min(record.idx for record in records) < self._unread_below:
            self.read_committed()
        rows = self._rows
        buffers = self._buffers
        host_ids = self._host_ids
        for record in records:
            idx = record.idx
            for leaf in record.leaves:
                self._pickled.setdefault(leaf.path, leaf.pickled)
            host = host_ids.get(record.host)
            if host is None:
                host = host_ids[record.host] = len(host_ids)
                self._new_hosts.append(record.host)
            error = -1
            if record.failure is not None:
                error = self._n_failures + len(self._failures)
                self._failures.append(record.failure)
            rows.append(run_table_row(record, host, error))
            values = record.values
            for key, value in values.items():
                buffer = buffers.get(key)
                if buffer is None:
                    buffer = buffers[key] = ([], [])
                    self._known_columns.add(key)
                buffer[0].append(idx)
                buffer[1].append(value)
            if record.log:
                self._buffer_cell(LOG_KEY, idx, record.log)
            committed = self._committed
            if idx < len(committed) and committed[idx]:
                # Committed again: it replaces everything the run stored before.
                for key in list(self._known_columns):
                    if key not in values and not (key == LOG_KEY and record.log):
                        self._buffer_cell(key, idx, TOMBSTONE)
            else:
                self._mark_committed(idx)
        self._dirty = True

    def _buffer_uniform(self, batch: UniformRuns) -> bool:
        """Enter a uniform batch column by column; False (nothing done) when one of its
        runs was committed before (the run-by-run path then replaces its cells)."""
        idxs = np.array(batch.idx, dtype=np.int64)
        if self._unread_below and int(idxs.min()) < self._unread_below:
            self.read_committed()
        committed = self._committed
        inside = idxs[idxs < len(committed)]
        if committed[inside].any():
            return False
        host = self._host_ids.get(batch.host)
        if host is None:
            host = self._host_ids[batch.host] = len(self._host_ids)
            self._new_hosts.append(batch.host)
        rows = uniform_table_rows(batch, host)
        if self._rows:  # keep commit order: earlier single rows go first
            self._row_blocks.append(np.array(self._rows, dtype=RUN_TABLE_DTYPE))
            self._rows = []
        self._row_blocks.append(rows)
        for key, values in zip(batch.keys, batch.values, strict=True):
            buffer = self._buffers.get(key)
            if buffer is None:
                buffer = self._buffers[key] = ([], [])
                self._known_columns.add(key)
            buffer[0].extend(batch.idx)
            buffer[1].extend(values)
        self._mark_committed(int(idxs.max()))
        self._committed[idxs] = True
        self._dirty = True
        return True

    def buffer_columns(
        self,
        table: RunTableData,
        columns: Mapping[_Key, ColumnData],
        leaves: Sequence[LeafRecord] = (),
    ) -> None:
        """Enter whole columns and run-table rows into the buffers (the bulk path).

        The same buffers as :meth:`buffer_runs` end up holding the same cells and rows,
        built with one list extension per column instead of one step per value.
        """
        check_bulk(table, columns)
        for leaf in leaves:
            self._pickled.setdefault(leaf.path, leaf.pickled)
        # Hosts and failures renumbered into this trajectory's lists.
        host_ids = []
        for host in [*table.hosts, ""]:
            found = self._host_ids.get(host)
            if found is None:
                found = self._host_ids[host] = len(self._host_ids)
                self._new_hosts.append(host)
            host_ids.append(found)
        first_failure = self._n_failures + len(self._failures)
        rows = renumbered_rows(table, host_ids[:-1], host_ids[-1], first_failure)
        idxs = rows["idx"]
        self._failures.extend(table.failures)
        if self._rows:  # keep commit order: earlier single rows go first
            self._row_blocks.append(np.array(self._rows, dtype=RUN_TABLE_DTYPE))
            self._rows = []
        self._row_blocks.append(rows)
        # Runs committed before lose what this commit does not give them again.
        if self._unread_below and len(idxs) and int(idxs.min()) < self._unread_below:
            self.read_committed()
        committed = self._committed
        inside = idxs[idxs < len(committed)]
        again = inside[committed[inside]]
        for key in list(self._known_columns) if len(again) else ():
            column = columns.get(key)
            gone = again if column is None else np.setdiff1d(again, column.runs)
            for idx in gone.tolist():
                self._buffer_cell(key, idx, TOMBSTONE)
        for key, column in columns.items():
            buffer = self._buffers.get(key)
            if buffer is None:
                buffer = self._buffers[key] = ([], [])
                self._known_columns.add(key)
            buffer[0].extend(column.runs.tolist())
            buffer[1].extend(column.exact_values())
        if len(idxs):
            self._mark_committed(int(idxs.max()))
            self._committed[idxs] = True
        self._dirty = True

    def _buffer_cell(self, key: _Key, idx: int, value: Any) -> None:
        buffer = self._buffers.get(key)
        if buffer is None:
            buffer = self._buffers[key] = ([], [])
            self._known_columns.add(key)
        buffer[0].append(idx)
        buffer[1].append(value)

    def _mark_committed(self, idx: int) -> None:
        committed = self._committed
        if idx >= len(committed):
            grown = np.zeros(max(idx + 1, 2 * len(committed), 1024), dtype=bool)
            grown[: len(committed)] = committed
            self._committed = committed = grown
        committed[idx] = True

    def pending_rows(self) -> np.ndarray:
        """The buffered rows in commit order (they stay buffered until :meth:`drop_rows`,
        so a write that fails half-way loses none)."""
        blocks = self._row_blocks
        if self._rows:
            blocks.append(np.array(self._rows, dtype=RUN_TABLE_DTYPE))
            self._rows = []
        if len(blocks) > 1:
            blocks[:] = [np.concatenate(blocks)]
        return blocks[0] if blocks else np.zeros(0, dtype=RUN_TABLE_DTYPE)

    def drop_rows(self) -> None:
        """Forget the buffered rows (they were written)."""
        self._rows, self._row_blocks = [], []

    def buffered_runs(self) -> int:
        """Rows waiting in the buffers."""
        return len(self._rows) + sum(len(block) for block in self._row_blocks)

    def buffered_columns(self) -> int:
        """How many per-run columns have values waiting in the buffers."""
        return len(self._buffers)
