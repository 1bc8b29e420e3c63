"""The storage interface every backend implements, and the run-table layout.

A backend stores one trajectory: its :class:`~pytraj.storage.records.StudyDefinition`,
its run table and its per-run values, organised by column (one column per per-run
result item). Resume and merge are written once, above this interface.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytraj.storage.records import FAILED, FailureRecord, LeafRecord, RunRecord, StudyDefinition
from pytraj.storage.runbatch import UniformRuns

__all__ = [
    "BLOCK_BYTES",
    "RUN_TABLE_DTYPE",
    "ColumnData",
    "RunTableData",
    "Storage",
    "check_bulk",
    "copy_rows",
    "records_of",
    "renumbered_rows",
    "row_bytes",
    "run_table_row",
    "uniform_table_rows",
    "value_nbytes",
]

#: About how many bytes of values :meth:`Storage.iter_column` hands out at a time.
BLOCK_BYTES = 32 * 1024 * 1024

#: One row per run. ``host`` indexes :attr:`RunTableData.hosts`; ``error`` indexes the
#: failure list (-1: none). Kept small because a row is written for every run. Point ids
#: are ``V16`` (raw bytes): ``S16`` would drop trailing NUL bytes, and with them the
#: identity of one point in 256.
RUN_TABLE_DTYPE = np.dtype(
    [
        ("idx", "<i8"),
        ("point_id", "V16"),
        ("status", "u1"),
        ("attempt", "<u2"),
        ("start", "<f8"),
        ("finish", "<f8"),
        ("host", "<i4"),
        ("error", "<i4"),
        ("pid", "<i4"),
    ]
)
#: A row of the run table as one opaque block of bytes (see :func:`row_bytes`).
_ROW_BYTES = np.dtype((np.void, RUN_TABLE_DTYPE.itemsize))


def row_bytes(rows: np.ndarray) -> np.ndarray:
    """``rows`` (:data:`RUN_TABLE_DTYPE`) viewed as one block of bytes per row.

    numpy copies, takes and assigns a packed structured array field by field: 50,000
    rows take 2.3 ms to copy and 4.4 ms to take by index, as blocks of bytes 0.08 and
    0.33 ms. A merge moves every row several times, so whole rows move as bytes.
    """
    if rows.dtype != RUN_TABLE_DTYPE:
        raise TypeError(f"run-table rows expected, got an array of {rows.dtype}")
    return rows.view(_ROW_BYTES)


def copy_rows(rows: np.ndarray) -> np.ndarray:
    """A copy of ``rows`` as run-table rows (converted when of another dtype)."""
    if rows.dtype == RUN_TABLE_DTYPE:
        return row_bytes(rows).copy().view(RUN_TABLE_DTYPE)
    return np.array(rows, dtype=RUN_TABLE_DTYPE, copy=True)


def uniform_table_rows(batch: UniformRuns, host: int) -> np.ndarray:
    """The run-table rows of a uniform batch (:data:`RUN_TABLE_DTYPE`), ``host`` being
    the index of ``batch.host`` in the caller's host list (:func:`run_table_row` at once)."""
    rows = np.zeros(len(batch.idx), dtype=RUN_TABLE_DTYPE)
    rows["idx"] = batch.idx
    rows["point_id"] = batch.point_ids
    rows["status"] = batch.status
    rows["attempt"] = batch.attempt
    rows["start"] = batch.start
    rows["finish"] = batch.finish
    rows["host"] = host
    rows["error"] = -1
    rows["pid"] = batch.pid
    return rows


def run_table_row(record: RunRecord, host: int, error: int) -> tuple[Any, ...]:
    """One row of :data:`RUN_TABLE_DTYPE` for ``record`` (fields in the dtype's order).

    Parameters
    ----------
    record
        The finished attempt.
    host
        Index of ``record.host`` in the host list.
    error
        Index of its failure in the failure list, -1 when it did not fail.
    """
    return (
        record.idx,
        record.point_id,
        record.status,
        record.attempt,
        record.start,
        record.finish,
        host,
        error,
        record.pid,
    )


def value_nbytes(value: Any) -> int:
    """About how many bytes ``value`` holds (for sizing blocks; not exact)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, bytes | str):
        return len(value)
    return 64


#: Conversions that ``ndarray.tolist`` already does, with the dtype kinds they apply to.
_PLAIN_CONVERSIONS: dict[Any, str] = {bool: "b", int: "iu", float: "f"}


@dataclass(slots=True)
class RunTableData:
    """The run table as stored: rows, the host names they index, the failures."""

    rows: np.ndarray
    hosts: list[str]
    failures: list[FailureRecord]


@dataclass(slots=True)
class ColumnData:
    """The values of one per-run item across the runs that have one.

    Attributes
    ----------
    runs
        Run indices (int64, ascending) that have a value.
    values
        One value per entry of ``runs``: a numpy array when the column is a plain
        numeric/bool column, else a list of values.
    convert
        Turns one element of ``values`` into the exact stored type (e.g. ``float`` for
        a column of Python floats held as float64); None when elements are exact.
    """

    runs: np.ndarray
    values: np.ndarray | list[Any]
    convert: Callable[[Any], Any] | None = None

    def __len__(self) -> int:
        return len(self.runs)

    def value_at(self, position: int) -> Any:
        """The value at ``position`` (an index into ``runs``), with its exact type."""
        value = self.values[position]
        return self.convert(value) if self.convert is not None else value

    def exact_values(self) -> list[Any]:
        """Every value with its exact type, in the order of ``runs``.

        A plain numeric column converts in one vectorised step (``ndarray.tolist`` gives
        Python bool/int/float); other columns convert value by value.
        """
        values = self.values
        if (
            isinstance(values, np.ndarray)
            and values.ndim == 1
            and values.dtype.kind in _PLAIN_CONVERSIONS.get(self.convert, "")
        ):
            return values.tolist()
        if self.convert is None:
            return list(values)
        return [self.value_at(position) for position in range(len(self.runs))]

    def position_of(self, idx: int) -> int:
        """Position of run ``idx`` in ``runs``, or -1 when it has no value."""
        position = int(np.searchsorted(self.runs, idx))
        if position < len(self.runs) and self.runs[position] == idx:
            return position
        return -1


class Storage(ABC):
    """Where one trajectory lives: a small interface over plain records.

    Backends: :class:`~pytraj.storage.memory.MemoryStorage` (the reference) and the
    HDF5 backend in :mod:`pytraj.storage.hdf5`.
    """

    #: Whether the backend accepts writes.
    writable: bool = True
    #: Whether a crash discards everything stored here anyway (memory; a merge's
    #: temporary output file): writes then need no journal, and bulk writes
    #: (:meth:`append_columns`) may take large batches.
    disposable: bool = False

    @abstractmethod
    def write_definition(self, definition: StudyDefinition) -> None:
        """Store the study definition, replacing the previous one."""

    @abstractmethod
    def read_definition(self) -> StudyDefinition:
        """Return the stored definition (trajectory-level result items may be
        :data:`~pytraj.storage.records.NOT_LOADED`, fetched by :meth:`read_items`)."""

    @abstractmethod
    def read_items(self, path: str) -> dict[str, Any]:
        """Return the items of the trajectory-level result at ``path``."""

    @abstractmethod
    def commit_runs(self, records: Sequence[RunRecord]) -> None:
        """Store finished runs. A record replaces everything stored earlier for its run
        (its values and its row), so a retried run overwrites its failed attempt; the
        failure history is kept."""

    @abstractmethod
    def read_run_table(self) -> RunTableData:
        """Return the run table rows (runs that were committed), hosts and failures.

        The rows are a new array each call: the caller may keep and change it.
        """

    @abstractmethod
    def read_column(self, path: str, item: str) -> ColumnData:
        """Return all stored values of one per-run item (an empty column if none)."""

    def read_column_runs(self, path: str, item: str) -> np.ndarray:
        """Return the run indices (int64, ascending) that have a value of one per-run item.

        Backends that can tell without reading the values override this.
        """
        return self.read_column(path, item).runs

    def iter_column(
        self, path: str, item: str, block_bytes: int = BLOCK_BYTES
    ) -> Iterator[ColumnData]:
        """The values of one per-run item in blocks of ascending runs.

        A backend that keeps big values (arrays, ragged data) out of memory hands them
        out in blocks of about ``block_bytes``, so a reader of every value (a merge)
        needs memory for one block, not the column. This default yields the whole
        column at once.
        """
        column = self.read_column(path, item)
        if len(column):
            yield column

    @abstractmethod
    def read_cell(self, path: str, item: str, idx: int) -> Any:
        """Return run ``idx``'s value of one per-run item; raise KeyError if it has none."""

    def read_run_log(self, idx: int) -> str:
        """Return the captured log of run ``idx`` ("" when none was captured)."""
        return ""

    def has_definition(self) -> bool:
        """Whether a study definition was ever stored (True for a backend that cannot lose it).

        A file backend answers False for a trajectory that was created in its file but
        whose definition never became durable (the writer was killed first): it holds no
        study yet, and running the script again starts it.
        """
        return True

    def held_open(self) -> contextlib.AbstractContextManager[None]:
        """Keep the backend's file open for reading until the block ends.

        Reads inside reuse what they resolved (a column's node, its run -> row
        positions). Backends without a file (memory) need nothing: a null context.
        """
        return contextlib.nullcontext()

    def flush(self) -> None:  # noqa: B027  # optional hook: memory needs no flush
        """Make everything committed durable."""

    def append_columns(
        self,
        table: RunTableData,
        columns: Mapping[tuple[str, str], ColumnData],
        leaves: Sequence[LeafRecord] = (),
    ) -> None:
        """Store finished runs in bulk, column by column: the columnar form of
        :meth:`commit_runs`, with the same result.

        Parameters
        ----------
        table
            One row per run (``idx`` unique); a row's ``host`` indexes ``table.hosts``
            and its ``error`` indexes ``table.failures`` (-1: none). Every failure of
            ``table.failures`` is added to the failure history, in order, also those no
            row points to (earlier failed attempts).
        columns
            The runs' values, ``(leaf path, item) -> ColumnData``; each column's runs
            are among the rows'. A run without a value in a column has none there.
        leaves
            Per-run leaves the values belong to (as :attr:`RunRecord.leaves`).

        A run stored before is replaced, as by :meth:`commit_runs`. This default turns
        the columns into run records; backends override it to write whole columns.
        """
        self.commit_runs(records_of(table, columns, leaves))

    def close(self) -> None:  # noqa: B027  # optional hook
        """Flush and release resources (files, locks).

        A backend may be written to again after closing: it reopens what it needs (the
        Environment closes the file after every ``env.run`` and may run again).
        """


def check_bulk(table: RunTableData, columns: Mapping[tuple[str, str], ColumnData]) -> None:
    """Check what :meth:`Storage.append_columns` got before anything is stored.

    Raises
    ------
    ValueError
        For two rows of one run, or a failure or value of a run without a row.
    """
    # Sorted once, then every check is a comparison or a binary search. A merge hands
    # over 100,000 runs at a time, usually in order: a stable sort (timsort) finds them
    # sorted in one pass, where the default quicksort took 1.7 ms for 50,000.
    idxs = np.sort(table.rows["idx"], kind="stable")
    if len(idxs) > 1 and not bool((idxs[1:] != idxs[:-1]).all()):
        raise ValueError("append_columns got two rows of one run")
    failed = np.array([failure.idx for failure in table.failures], dtype=np.int64)
    missing = failed[~_present(idxs, failed)]
    if len(missing):
        raise ValueError(f"a failure of run {int(missing[0])} comes with no row of that run")
    for key, column in columns.items():
        if len(column.runs) and not bool(_present(idxs, column.runs).all()):
            raise ValueError(f"column {key} holds values of runs without a row")


def _present(ordered: np.ndarray, runs: np.ndarray) -> np.ndarray:
    """Whether each of ``runs`` is in ``ordered`` (ascending, no run twice)."""
    if not len(ordered):
        return np.zeros(len(runs), dtype=bool)
    first, last = int(ordered[0]), int(ordered[-1])
    if last - first + 1 == len(ordered):
        # Every run from first to last (the runs a merge appends): no search needed.
        return (runs >= first) & (runs <= last)
    position = np.minimum(np.searchsorted(ordered, runs), len(ordered) - 1)
    return ordered[position] == runs


def renumbered_rows(
    table: RunTableData, host_ids: Sequence[int], blank_host: int, first_failure: int
) -> np.ndarray:
    """A copy of ``table.rows`` numbered into a trajectory's own host and failure lists.

    ``host_ids[i]`` is the trajectory's number of ``table.hosts[i]``, and ``blank_host``
    that of the rows without a host (-1); failure ``i`` of the table becomes failure
    ``first_failure + i``. Both backends append columns through it.
    """
    rows = copy_rows(table.rows)
    host_map = np.array([*host_ids, blank_host], dtype=np.int32)
    rows["host"] = host_map[np.where(rows["host"] >= 0, rows["host"], len(host_ids))]
    rows["error"] = np.where(rows["error"] >= 0, rows["error"] + first_failure, -1)
    return rows


def records_of(
    table: RunTableData,
    columns: Mapping[tuple[str, str], ColumnData],
    leaves: Sequence[LeafRecord] = (),
) -> list[RunRecord]:
    """The run records that :meth:`Storage.append_columns` stores, in commit order.

    Earlier failed attempts (failures no row points to) come first, each as a failed
    record of its run, so the failure history keeps its order; then one record per row.
    """
    check_bulk(table, columns)
    rows = table.rows
    hosts, failures = table.hosts, table.failures
    current = {int(error) for error in rows["error"] if error >= 0}
    positions = {int(idx): k for k, idx in enumerate(rows["idx"].tolist())}
    records = [
        RunRecord(
            idx=failure.idx,
            point_id=bytes(rows["point_id"][positions[failure.idx]]),
            status=FAILED,
            attempt=failure.attempt,
            failure=failure,
        )
        for position, failure in enumerate(failures)
        if position not in current
    ]
    values: list[dict[tuple[str, str], Any]] = [{} for _ in range(len(rows))]
    for key, column in columns.items():
        for idx, value in zip(column.runs.tolist(), column.exact_values(), strict=True):
            values[positions[idx]][key] = value
    for k, row in enumerate(rows):
        host, error = int(row["host"]), int(row["error"])
        records.append(
            RunRecord(
                idx=int(row["idx"]),
                point_id=bytes(row["point_id"]),
                status=int(row["status"]),
                attempt=int(row["attempt"]),
                start=float(row["start"]),
                finish=float(row["finish"]),
                host=hosts[host] if host >= 0 else "",
                pid=int(row["pid"]),
                values=values[k],
                failure=failures[error] if error >= 0 else None,
            )
        )
    if records and leaves:
        records[0].leaves = list(leaves)
    return records
