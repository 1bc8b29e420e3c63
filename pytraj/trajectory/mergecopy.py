"""Reading the runs a merge touches, column by column and streamed.

The second half of a merge (:mod:`pytraj.trajectory.merging` decides what to copy):
each per-run column of the other trajectory is read once, in blocks
(:meth:`~pytraj.storage.interface.Storage.iter_column`), and handed to the writer as
run-table rows and whole columns a batch at a time (:func:`column_batches`), so memory
holds one block and one batch whatever the size of the data.
Runs completed on both sides are compared the same way (:func:`differing_runs`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from pytraj.storage.interface import (
    RUN_TABLE_DTYPE,
    ColumnData,
    RunTableData,
    row_bytes,
    value_nbytes,
)
from pytraj.storage.records import WRITER_KEY, FailureRecord
from pytraj.trajectory.mergecheck import values_equal

if TYPE_CHECKING:
    from pytraj.trajectory.merging import MergePlan
    from pytraj.trajectory.trajectory import Trajectory

__all__ = [
    "BATCH_BYTES",
    "BATCH_RUNS",
    "BULK_RUNS",
    "column_batches",
    "differing_runs",
    "positions_of",
]


def positions_of(column: ColumnData, runs: np.ndarray) -> np.ndarray:
    """Position of each run in ``column`` (-1 where it has no value)."""
    have = column.runs
    if not len(have):
        return np.full(len(runs), -1, dtype=np.int64)
    first, last = int(have[0]), int(have[-1])
    if last - first + 1 == len(have) and bool((have[1:] > have[:-1]).all()):
        # Every run from first to last has a value (a column of a study whose runs all
        # completed): positions by subtraction, not a binary search of each run.
        inside = (runs >= first) & (runs <= last)
        return np.where(inside, runs - first, -1).astype(np.int64, copy=False)
    position = np.searchsorted(column.runs, runs)
    clipped = np.minimum(position, len(column.runs) - 1)
    return np.where(column.runs[clipped] == runs, clipped, -1)


# -- the columns to copy ----------------------------------------------------------------------
#: Bytes of values per batch handed to the writer.
BATCH_BYTES = 8 * 1024 * 1024


def _next_step(nbytes: int, runs: int, most: int = 4096) -> int:
    """Runs per read from the cursors: a quarter of a batch's bytes (1 to ``most`` runs)."""
    per_run = nbytes / max(runs, 1)
    return int(min(most, max(1, BATCH_BYTES // 4 / max(per_run, 1.0))))


#: Most runs per batch of :func:`column_batches` (a batch also ends at about
#: :data:`BATCH_BYTES` of values): for a disposable storage, which stores columns as
#: they come, and for one that turns them into run records to journal them.
BULK_RUNS = 100_000
BATCH_RUNS = 10_000

_Columns = dict[tuple[str, str], ColumnData]


def column_batches(
    plan: MergePlan, there: Trajectory, point_ids: np.ndarray, most_runs: int = BULK_RUNS
) -> Iterator[tuple[RunTableData, _Columns]]:
    """The planned runs of ``there`` as run-table rows and columns, a batch at a time.

    For :meth:`~pytraj.storage.interface.Storage.append_columns`. A copied run's rows
    keep its status, attempt, times, host and pid; its failures (earlier attempts
    first, so retries keep their history) and its writer session (renumbered into
    ``plan.writers``) come along. Each column is read once, in blocks
    (:meth:`~pytraj.storage.interface.Storage.iter_column`), into one array (plain
    numbers) or list per column and batch, never run by run; a batch holds at most
    ``most_runs`` runs or about :data:`BATCH_BYTES` of values, so memory does not grow
    with the size of the data (the caller makes each batch durable before the next).

    Parameters
    ----------
    plan
        From :func:`pytraj.trajectory.merging.plan_merge`.
    there
        The other trajectory.
    point_ids
        Point ids (``V16``) of the trajectory merged into, after the new points were added.
    most_runs
        Most runs per batch.
    """
    if not len(plan.sources):
        return
    table = there.run_table
    history: dict[int, list[int]] = {}
    for position, failure in enumerate(table.failures):
        history.setdefault(failure.idx, []).append(position)
    order = np.argsort(plan.sources, kind="stable")
    sources, targets = plan.sources[order], plan.targets[order]
    ids = np.asarray(point_ids, dtype=RUN_TABLE_DTYPE["point_id"])
    cursors = [
        (key, _Cursor(there.storage.iter_column(*key, block_bytes=BATCH_BYTES)))
        for key in plan.columns
    ]
    writer_cursor = _Cursor(
        iter([plan.writer_column])  # read for the plan already: small integers
        if plan.writer_column is not None
        else there.storage.iter_column(*WRITER_KEY)
    )
    begin, step = 0, 16
    while begin < len(sources):
        batch_begin = begin
        found: dict[tuple[str, str], tuple[list[np.ndarray], list[Any]]] = {}
        writers: tuple[list[np.ndarray], list[Any]] = ([], [])
        size = 0
        while begin < len(sources) and begin - batch_begin < most_runs and size < BATCH_BYTES:
            end = min(begin + step, len(sources), batch_begin + most_runs)
            chunk = sources[begin:end]
            chunk_bytes = 0
            for key, cursor in cursors:
                where, values, nbytes = cursor.pick(chunk)
                parts = found.setdefault(key, ([], []))
                parts[0].append(where + (begin - batch_begin))
                parts[1].extend(values)
                chunk_bytes += nbytes
            where, values, _ = writer_cursor.pick(chunk)
            writers[0].append(where + (begin - batch_begin))
            writers[1].extend(values)
            size += chunk_bytes
            step = _next_step(chunk_bytes, end - begin, most_runs)
            begin = end
        batch = slice(batch_begin, begin)
        batch_targets = targets[batch]
        columns: _Columns = {}
        for key, (wheres, values) in found.items():
            where = np.concatenate(wheres)
            if len(where):
                columns[key] = _column_of(batch_targets[where], values)
        writer_column = _writer_column(plan, batch_targets, writers)
        if writer_column is not None:
            columns[WRITER_KEY] = writer_column
        rows = _rows_of(table.rows, sources[batch], batch_targets, ids)
        failures = _failures_of(table.failures, history, rows, sources[batch])
        yield RunTableData(rows=rows, hosts=table.hosts, failures=failures), columns


def _writer_column(
    plan: MergePlan, targets: np.ndarray, found: tuple[list[np.ndarray], list[Any]]
) -> ColumnData | None:
    """The writer sessions of the copied runs, renumbered into the merged list."""
    unknown = plan.unknown_writer
    mapped = np.full(len(targets), unknown, dtype=np.int64)
    where = np.concatenate(found[0]) if found[0] else np.zeros(0, dtype=np.int64)
    written = _int_array(found[1])
    if len(written):
        # Writer sessions are small integers: renumbered through one lookup array.
        lookup = np.full(max(int(written.max()), max(plan.writer_map, default=0)) + 2, unknown)
        for writer, position in plan.writer_map.items():
            lookup[writer] = position
        mapped[where] = lookup[np.where(written >= 0, written, len(lookup) - 1)]
    keep = mapped >= 0
    if not keep.any():
        return None
    return ColumnData(runs=targets[keep], values=mapped[keep], convert=int)


def _rows_of(
    rows: np.ndarray, sources: np.ndarray, targets: np.ndarray, ids: np.ndarray
) -> np.ndarray:
    """Rows of the copied runs, renumbered (their ``error`` is set by :func:`_failures_of`)."""
    copied = _take(rows, sources)
    copied["idx"] = targets
    copied["point_id"] = _take(ids, targets)
    return copied


def _take(array: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """A copy of ``array[positions]``; one slice when the positions are consecutive (the
    runs appended by a merge), which copies rows in blocks instead of one by one."""
    raw = row_bytes(array) if array.dtype == RUN_TABLE_DTYPE else array
    if len(positions) > 1:
        first, last = int(positions[0]), int(positions[-1])
        if last - first + 1 == len(positions) and bool((np.diff(positions) == 1).all()):
            return raw[first : last + 1].copy().view(array.dtype)
    return raw[positions].view(array.dtype)


def _failures_of(
    failures: list[FailureRecord],
    history: dict[int, list[int]],
    rows: np.ndarray,
    sources: np.ndarray,
) -> list[FailureRecord]:
    """The failures of the copied runs (earlier attempts first), renumbered; points each
    row's ``error`` into the returned list."""
    errors = rows["error"].copy()
    rows["error"] = -1
    found: list[FailureRecord] = []
    if not history:
        return found
    for k in np.flatnonzero(np.isin(sources, list(history))).tolist():
        target = int(rows["idx"][k])
        error = int(errors[k])
        for position in history[int(sources[k])]:
            if position != error:
                found.append(replace(failures[position], idx=target))
        if error >= 0:
            rows["error"][k] = len(found)
            found.append(replace(failures[error], idx=target))
    return found


def differing_runs(
    here: Trajectory, there: Trajectory, runs: np.ndarray, columns: Sequence[tuple[str, str]]
) -> list[str]:
    """Of ``runs`` (ascending, completed on both sides), those whose values differ.

    Each column of both trajectories is read once, in blocks, so comparing needs no
    more memory than copying. Returns ``"run i: <leaf>['<item>'], ..."`` texts.
    """
    found: dict[int, list[str]] = {}
    for path, item in columns:
        ours = _Cursor(here.storage.iter_column(path, item, block_bytes=BATCH_BYTES))
        theirs = _Cursor(there.storage.iter_column(path, item, block_bytes=BATCH_BYTES))
        begin, step = 0, 16
        while begin < len(runs):
            chunk = runs[begin : begin + step]
            mine, mine_bytes = ours.take(chunk)
            other, other_bytes = theirs.take(chunk)
            for k, (a, b) in enumerate(zip(mine, other, strict=True)):
                if (a is _MISSING) != (b is _MISSING) or (
                    a is not _MISSING and not values_equal(a, b)
                ):
                    found.setdefault(int(chunk[k]), []).append(f"{path}[{item!r}]")
            begin += len(chunk)
            step = _next_step(mine_bytes + other_bytes, len(chunk))
    return [f"run {idx}: {', '.join(items)}" for idx, items in sorted(found.items())]


class _Cursor:
    """Reads one column block by block, for runs asked for in ascending order."""

    __slots__ = ("_block", "_blocks", "_done")

    def __init__(self, blocks: Iterator[ColumnData]) -> None:
        self._blocks = blocks
        self._block: ColumnData | None = None
        self._done = False

    def _block_for(self, run: int) -> ColumnData | None:
        """The block that may hold ``run`` (blocks before it are dropped); None at the end."""
        while True:
            block = self._block
            if block is not None and len(block.runs) and run <= block.runs[-1]:
                return block
            if self._done:
                return None
            self._block = next(self._blocks, None)
            if self._block is None:
                self._done = True

    def pick(self, runs: np.ndarray) -> tuple[np.ndarray, list[Any], int]:
        """Of ``runs``, the positions that have a value, those values and about how many
        bytes they hold.

        The values are a list of parts: a :class:`_Plain` array of a plain numeric
        column (kept an array), else the values with their exact types.
        """
        wheres: list[np.ndarray] = []
        values: list[Any] = []
        nbytes = 0
        k = 0
        while k < len(runs):
            block = self._block_for(int(runs[k]))
            if block is None:
                break
            stop = int(np.searchsorted(runs, block.runs[-1], side="right"))
            positions = positions_of(block, runs[k:stop])
            present = positions >= 0
            wheres.append(np.flatnonzero(present) + k)
            picked = positions[present]
            if _is_plain(block):
                assert isinstance(block.values, np.ndarray)
                values.append(_Plain(block.values[picked], block.convert))
                nbytes += 8 * len(picked)
            else:
                part = [block.value_at(p) for p in picked.tolist()]
                nbytes += sum(value_nbytes(v) for v in part)
                values += part
            k = stop
        where = np.concatenate(wheres) if wheres else np.zeros(0, dtype=np.int64)
        return where, values, nbytes

    def take(self, runs: np.ndarray) -> tuple[list[Any], int]:
        """Values of ``runs`` (``_MISSING`` where none) and about how many bytes they hold."""
        found: list[Any] = [_MISSING] * len(runs)
        nbytes = 0
        k = 0
        while k < len(runs):
            block = self._block
            if block is None or not len(block.runs) or runs[k] > block.runs[-1]:
                if self._done:
                    break
                self._block = next(self._blocks, None)
                if self._block is None:
                    self._done = True
                continue
            stop = int(np.searchsorted(runs, block.runs[-1], side="right"))
            part = _values_at(block, positions_of(block, runs[k:stop]))
            found[k:stop] = part
            if not _is_plain(block):
                nbytes += sum(value_nbytes(v) for v in part if v is not _MISSING)
            else:
                nbytes += 8 * (stop - k)
            k = stop
        return found, nbytes


@dataclass(frozen=True)
class _Plain:
    """Values of a plain numeric column picked by a cursor, still an array."""

    values: np.ndarray
    convert: Any


def _int_array(parts: list[Any]) -> np.ndarray:
    """A cursor's picked parts of an integer column as one int64 array."""
    if all(isinstance(part, _Plain) for part in parts):
        arrays = [part.values.astype(np.int64, copy=False) for part in parts]
        return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
    return np.asarray(_listed(parts), dtype=np.int64)


def _listed(parts: list[Any]) -> list[Any]:
    """A cursor's picked parts as one list of values with their exact types."""
    listed: list[Any] = []
    for part in parts:
        if isinstance(part, _Plain):
            listed += part.values.tolist()
        else:
            listed.append(part)
    return listed


def _column_of(runs: np.ndarray, parts: list[Any]) -> ColumnData:
    """The column of ``runs`` from a cursor's picked parts: one array when every part is
    a plain array of one dtype and conversion (a column of Python floats: no Python
    object per value), else a list of the values with their exact types."""
    plain = [part for part in parts if isinstance(part, _Plain)]
    if plain and len(plain) == len(parts):
        first = plain[0]
        if all(p.values.dtype == first.values.dtype and p.convert is first.convert for p in plain):
            values = np.concatenate([p.values for p in plain])
            return ColumnData(runs=runs, values=values, convert=first.convert)
    return ColumnData(runs=runs, values=_listed(parts))


#: Marks a run without a value in a column (None is a value).
_MISSING: Any = object()
#: Conversions that ``ndarray.tolist`` already does, with the dtype kinds they apply to.
_PLAIN_CONVERSIONS: dict[Any, str] = {bool: "b", int: "iu", float: "f"}


def _is_plain(column: ColumnData) -> bool:
    """Whether the column's values convert to Python bool/int/float in one step."""
    values = column.values
    return (
        isinstance(values, np.ndarray)
        and values.ndim == 1
        and values.dtype.kind in _PLAIN_CONVERSIONS.get(column.convert, "")
    )


def _values_at(column: ColumnData, positions: np.ndarray) -> list[Any]:
    """The values at ``positions`` (``_MISSING`` where -1), with their exact types."""
    present = positions >= 0
    found: list[Any] = [_MISSING] * len(positions)
    where = np.flatnonzero(present).tolist()
    values = column.values
    if _is_plain(column):
        assert isinstance(values, np.ndarray)
        # Python bool/int/float columns: one vectorised conversion.
        picked = values[positions[present]].tolist()
    else:
        picked = [column.value_at(int(p)) for p in positions[present].tolist()]
    for k, value in zip(where, picked, strict=True):
        found[k] = value
    return found
