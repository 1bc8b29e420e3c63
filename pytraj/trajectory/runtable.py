"""The in-memory run table: one row per run with its status and provenance."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pytraj.storage.interface import (
    RUN_TABLE_DTYPE,
    RunTableData,
    copy_rows,
    row_bytes,
    run_table_row,
    uniform_table_rows,
)
from pytraj.storage.records import (
    COMPLETED,
    FAILED,
    PENDING,
    STATUS_NAMES,
    FailureRecord,
    RunRecord,
)
from pytraj.storage.runbatch import uniform_runs

__all__ = ["RunTable"]

# Slots a deferred table fills on first use.
_DEFERRED = ("_failures", "_host_ids", "_hosts", "_rows")


class RunTable:
    """Status, attempts, times, hosts and failures of every run of a trajectory.

    Rows live in one numpy structured array (:data:`RUN_TABLE_DTYPE`), grown by
    doubling so that exploring and committing stay O(1) per run.
    """

    __slots__ = ("_failures", "_host_ids", "_hosts", "_n", "_rows", "_source")

    def __init__(self, n_runs: int = 1) -> None:
        self._source: Callable[[], RunTable] | None = None
        self._rows = np.zeros(max(n_runs, 1), dtype=RUN_TABLE_DTYPE)
        self._n = 0
        self._hosts: list[str] = []
        self._host_ids: dict[str, int] = {}
        self._failures: list[FailureRecord] = []
        self.resize(n_runs)

    @classmethod
    def deferred(cls, n_runs: int, source: Callable[[], RunTable]) -> RunTable:
        """A table of ``n_runs`` runs that ``source`` builds when first needed.

        ``len()`` needs no rows, so loading a file and reading a result's values never
        reads its run table (100,000 runs: 5.5 MB to decompress).
        """
        table = cls.__new__(cls)
        table._n = n_runs
        table._source = source
        return table

    def __getattr__(self, name: str) -> Any:
        # Reached only for a slot that is not set: the rows of a deferred table.
        source = self._source if name in _DEFERRED else None
        if source is None:
            raise AttributeError(name)
        loaded = source()
        if len(loaded) != self._n:
            raise AssertionError(f"a deferred run table of {self._n} runs loaded {len(loaded)}")
        for slot in _DEFERRED:
            setattr(self, slot, getattr(loaded, slot))
        self._source = None
        return getattr(self, name)

    def __getstate__(self) -> dict[str, Any]:
        return {slot: getattr(self, slot) for slot in (*_DEFERRED, "_n")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for slot, value in state.items():
            setattr(self, slot, value)
        self._source = None

    def __len__(self) -> int:
        return self._n

    @property
    def rows(self) -> np.ndarray:
        """The rows of all runs (a view; do not modify)."""
        return self._rows[: self._n]

    @property
    def hosts(self) -> list[str]:
        """Host names that the ``host`` column indexes."""
        return list(self._hosts)

    @property
    def failures(self) -> list[FailureRecord]:
        """Every failed attempt, oldest first (retries keep their history)."""
        return list(self._failures)

    def resize(self, n_runs: int) -> None:
        """Grow to ``n_runs`` rows (new rows pending) or shrink (only pending rows)."""
        if n_runs < self._n:
            dropped = self._rows[n_runs : self._n]
            if np.any(dropped["status"] != PENDING):
                raise ValueError("cannot drop runs that have been stored")
        elif n_runs > len(self._rows):
            grown = np.zeros(max(n_runs, 2 * len(self._rows)), dtype=RUN_TABLE_DTYPE)
            row_bytes(grown)[: self._n] = row_bytes(self._rows[: self._n])
            self._rows = grown
        if n_runs > self._n:
            fresh = self._rows[self._n : n_runs]
            fresh["idx"] = np.arange(self._n, n_runs)
            fresh["status"] = PENDING
            fresh["host"] = -1
            fresh["error"] = -1
        self._n = n_runs

    def set_point_ids(self, point_ids: Sequence[bytes] | np.ndarray) -> None:
        """Set the point id of every run (one 16-byte id per run)."""
        if len(point_ids) != self._n:
            # numpy would broadcast a single id to every run: refuse instead.
            raise ValueError(f"{len(point_ids)} point ids given for {self._n} runs")
        self._rows["point_id"][: self._n] = point_ids

    def point_id(self, idx: int) -> bytes:
        """The 16-byte point id of run ``idx``."""
        return bytes(self._rows["point_id"][idx])

    def point_id_array(self) -> np.ndarray:
        """The point ids of all runs as one ``V16`` array (a view; do not modify).

        For code that handles ids as columns (a merge): no Python object per run.
        """
        return self._rows["point_id"][: self._n]

    def point_ids(self) -> list[bytes]:
        """The 16-byte point ids of all runs (raw bytes, trailing NULs included)."""
        return self._rows["point_id"][: self._n].tolist()

    def status(self, idx: int) -> int:
        """The status code of run ``idx``."""
        return int(self._rows["status"][idx])

    def status_name(self, idx: int) -> str:
        """The status of run ``idx`` as a word (``"completed"``)."""
        return STATUS_NAMES[self.status(idx)]

    def counts(self) -> dict[str, int]:
        """How many runs have each status."""
        counted = Counter(self._rows["status"][: self._n].tolist())
        return {name: counted.get(code, 0) for code, name in STATUS_NAMES.items()}

    def indices(self, status: int) -> np.ndarray:
        """Indices of the runs with ``status``."""
        return np.flatnonzero(self._rows["status"][: self._n] == status)

    def host(self, idx: int) -> str:
        """The host that ran ``idx`` ("" before it ran)."""
        host = int(self._rows["host"][idx])
        return self._hosts[host] if host >= 0 else ""

    def failure(self, idx: int) -> FailureRecord | None:
        """The failure of run ``idx``'s latest attempt, if that attempt failed."""
        error = int(self._rows["error"][idx])
        return self._failures[error] if error >= 0 else None

    def failures_of(self, idx: int) -> list[FailureRecord]:
        """All recorded failures of run ``idx``, oldest first, one per attempt.

        An attempt recorded twice (a flush killed after writing its failure, replayed from
        the journal) is listed once, as recorded last.
        """
        by_attempt = {f.attempt: f for f in self._failures if f.idx == idx}
        return [by_attempt[attempt] for attempt in sorted(by_attempt)]

    def record(self, record: RunRecord) -> None:
        """Enter a finished attempt."""
        host = self._host_ids.get(record.host)
        if host is None:
            host = self._host_ids[record.host] = len(self._hosts)
            self._hosts.append(record.host)
        error = -1
        if record.status == FAILED and record.failure is not None:
            error = len(self._failures)
            self._failures.append(record.failure)
        self._rows[record.idx] = run_table_row(record, host, error)

    def record_all(self, records: Sequence[RunRecord]) -> None:
        """Enter finished attempts in order (:meth:`record` for each; a uniform batch of
        completed runs is written as one block of rows)."""
        batch = uniform_runs(records)
        if batch is None:
            for record in records:
                self.record(record)
            return
        host = self._host_ids.get(batch.host)
        if host is None:
            host = self._host_ids[batch.host] = len(self._hosts)
            self._hosts.append(batch.host)
        rows = uniform_table_rows(batch, host)
        self._rows[rows["idx"]] = rows

    def enter(self, data: RunTableData) -> None:
        """Enter finished runs in bulk (rows as :meth:`Storage.append_columns` takes them).

        The same as :meth:`record` for each failure no row points to (an earlier failed
        attempt), then for each row.
        """
        rows = copy_rows(data.rows)
        host_map = np.empty(len(data.hosts) + 1, dtype=np.int32)
        for position, host in enumerate([*data.hosts, ""]):
            found = self._host_ids.get(host)
            if found is None:
                found = self._host_ids[host] = len(self._hosts)
                self._hosts.append(host)
            host_map[position] = found
        rows["host"] = host_map[np.where(rows["host"] >= 0, rows["host"], len(data.hosts))]
        # A row of a run that is not failed points to no failure, as in ``record``.
        failed = (rows["status"] == FAILED) & (rows["error"] >= 0)
        rows["error"] = np.where(failed, rows["error"] + len(self._failures), -1)
        self._failures.extend(data.failures)
        row_bytes(self._rows)[rows["idx"]] = row_bytes(rows)  # whole rows, as bytes

    def start_info(self, idx: int) -> tuple[int, bytes, int]:
        """Status, point id and next attempt of run ``idx``, from one row read (every run
        starts with this; see :meth:`status`, :meth:`point_id` and :meth:`next_attempt`)."""
        row: Any = self._rows.item(idx)  # a tuple of plain Python values, no numpy scalars
        status: int = row[2]
        attempt: int = row[3]
        return status, row[1], 1 if status == PENDING and attempt == 0 else attempt + 1

    def start_infos(self, indices: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`start_info` of many runs at once: their status codes, point ids and
        next attempts, as arrays in the order of ``indices`` (a slice gives views of the
        point ids: no copy of 16 MB for a million runs)."""
        rows = self._rows[: self._n]
        status = rows["status"][indices]
        attempt = rows["attempt"][indices].astype(np.int32)
        fresh = (status == PENDING) & (attempt == 0)
        return status, rows["point_id"][indices], np.where(fresh, 1, attempt + 1)

    def next_attempt(self, idx: int) -> int:
        """The attempt number a new try of run ``idx`` gets."""
        if self.status(idx) == PENDING and int(self._rows["attempt"][idx]) == 0:
            return 1
        return int(self._rows["attempt"][idx]) + 1

    def is_completed(self, idx: int) -> bool:
        """Whether run ``idx`` completed."""
        return self.status(idx) == COMPLETED

    @classmethod
    def from_stored(cls, data: RunTableData, n_runs: int) -> RunTable:
        """Rebuild the table of ``n_runs`` runs from what a backend returned."""
        rows = data.rows
        count = len(rows)
        in_order = count <= n_runs and np.array_equal(rows["idx"], np.arange(count))
        # The usual cases, a finished study and one stopped part-way (one row per run
        # that ran, in order), start from a copy of the rows: the rest grow pending.
        table = cls(0 if in_order else n_runs)
        table._hosts = list(data.hosts)
        table._host_ids = {host: i for i, host in enumerate(data.hosts)}
        table._failures = list(data.failures)
        if in_order:
            if count:
                # Backends return rows of their own making (Storage.read_run_table): the
                # table keeps them, or a copy as bytes (0.08 ms for 50,000 rows, not 2)
                # when they are of another dtype or read-only.
                adopt = rows.dtype == RUN_TABLE_DTYPE and rows.flags.writeable
                table._rows = rows if adopt and rows.flags.c_contiguous else copy_rows(rows)
                table._n = count
            table.resize(n_runs)
            return table
        rows = rows[rows["idx"] < n_runs]
        # The latest row of a run wins (a retry appends a new one): keep last occurrences.
        reversed_idx = rows["idx"][::-1]
        _, first_from_end = np.unique(reversed_idx, return_index=True)
        latest = rows[len(rows) - 1 - first_from_end]
        table._rows[latest["idx"]] = latest
        return table

    def to_stored(self) -> RunTableData:
        """The table as a backend stores it (only runs that ran)."""
        rows = self.rows
        return RunTableData(
            rows=rows[rows["status"] != PENDING].copy(),
            hosts=list(self._hosts),
            failures=list(self._failures),
        )
