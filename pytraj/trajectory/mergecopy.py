"""Reading the runs a merge touches, column by column and streamed.

The second half of a merge (:mod:`pytraj.trajectory.merging` decides what to copy):
each per-run column of the other trajectory is read once, in blocks
(:meth:`~pytraj.storage.interface.Storage.iter_column`), and turned into run records a
batch at a time, so memory holds one block and one batch whatever the size of the data.
Runs completed on both sides are compared the same way (:func:`differing_runs`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from pytraj.storage.interface import ColumnData, value_nbytes
from pytraj.storage.records import FAILED, WRITER_KEY, FailureRecord, RunRecord
from pytraj.trajectory.mergecheck import values_equal

if TYPE_CHECKING:
    from pytraj.trajectory.merging import MergePlan
    from pytraj.trajectory.trajectory import Trajectory

__all__ = ["BATCH_BYTES", "BATCH_RUNS", "differing_runs", "positions_of", "run_records"]


def positions_of(column: ColumnData, runs: np.ndarray) -> np.ndarray:
    """Position of each run in ``column`` (-1 where it has no value)."""
    if not len(column.runs):
        return np.full(len(runs), -1, dtype=np.int64)
    position = np.searchsorted(column.runs, runs)
    clipped = np.minimum(position, len(column.runs) - 1)
    return np.where(column.runs[clipped] == runs, clipped, -1)


# -- the records to copy ------------------------------------------------------------------
#: Runs and bytes of values per batch of records handed to the writer.
BATCH_RUNS = 10_000
BATCH_BYTES = 8 * 1024 * 1024


def run_records(
    plan: MergePlan, there: Trajectory, point_ids: Sequence[bytes]
) -> Iterator[list[RunRecord]]:
    """Run records that copy the planned runs of ``there``, a batch at a time.

    A run's earlier failed attempts come first (so retries keep their history), then its
    latest state with its values. Each column is read once, in blocks
    (:meth:`~pytraj.storage.interface.Storage.iter_column`), and a batch holds at most
    :data:`BATCH_RUNS` runs or about :data:`BATCH_BYTES` of values, so memory does not
    grow with the size of the data (the caller makes each batch durable before the next).

    Parameters
    ----------
    plan
        From :func:`plan_merge`.
    there
        The other trajectory.
    point_ids
        Point ids of the trajectory merged into, after the new points were added.
    """
    sources = plan.sources
    if not len(sources):
        return
    table = there.run_table
    rows = table.rows
    hosts = table.hosts
    failures = table.failures
    history: dict[int, list[int]] = {}
    for position, failure in enumerate(failures):
        history.setdefault(failure.idx, []).append(position)
    # Sources ascend (matched runs, then appended ones): each column is read in one pass.
    order = np.argsort(sources, kind="stable")
    sources, targets_all = sources[order], plan.targets[order]
    cursors = [
        (key, _Cursor(there.storage.iter_column(*key, block_bytes=BATCH_BYTES)))
        for key in plan.columns
    ]
    writer_cursor = _Cursor(there.storage.iter_column(*WRITER_KEY))
    writer_map, unknown_writer = plan.writer_map, plan.unknown_writer
    fields = {name: rows[name][sources].tolist() for name in _ROW_FIELDS}
    targets = targets_all.tolist()
    leaves = list(plan.per_run_leaves)
    records: list[RunRecord] = []
    size = 0
    step = 16  # runs per read from the cursors; grows while values are small
    begin = 0
    while begin < len(sources):
        end = min(begin + step, len(sources))
        chunk = sources[begin:end]
        found = [(key, cursor.take(chunk)) for key, cursor in cursors]
        writers = writer_cursor.take(chunk)[0]
        chunk_bytes = sum(nbytes for _, (_, nbytes) in found)
        for k in range(begin, end):
            target = targets[k]
            error = fields["error"][k]
            for position in history.get(int(sources[k]), ()):
                if position != error:
                    records.append(_failed_attempt(failures[position], target, point_ids[target]))
            values = {}
            for key, (picked, _) in found:
                value = picked[k - begin]
                if value is not _MISSING:
                    values[key] = value
            writer = writers[k - begin]
            writer = (
                unknown_writer if writer is _MISSING else writer_map.get(writer, unknown_writer)
            )
            if writer >= 0:
                values[WRITER_KEY] = writer
            host = fields["host"][k]
            records.append(
                RunRecord(
                    idx=target,
                    point_id=point_ids[target],
                    status=fields["status"][k],
                    attempt=fields["attempt"][k],
                    start=fields["start"][k],
                    finish=fields["finish"][k],
                    host=hosts[host] if host >= 0 else "",
                    pid=fields["pid"][k],
                    values=values,
                    failure=replace(failures[error], idx=target) if error >= 0 else None,
                )
            )
        size += chunk_bytes
        step = _next_step(chunk_bytes, end - begin)
        begin = end
        if len(records) >= BATCH_RUNS or size >= BATCH_BYTES or begin >= len(sources):
            if leaves:
                records[0].leaves = leaves  # the writer creates the new per-run leaves once
                leaves = []
            yield records
            records, size = [], 0


_ROW_FIELDS = ("status", "attempt", "start", "finish", "host", "pid", "error")


def _next_step(nbytes: int, runs: int) -> int:
    """Runs per read from the cursors: a quarter of a batch's bytes (1 to 4096 runs)."""
    per_run = nbytes / max(runs, 1)
    return int(min(4096, max(1, BATCH_BYTES // 4 / max(per_run, 1.0))))


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


def _failed_attempt(failure: FailureRecord, target: int, pid: bytes) -> RunRecord:
    return RunRecord(
        idx=target,
        point_id=pid,
        status=FAILED,
        attempt=failure.attempt,
        failure=replace(failure, idx=target),
    )
