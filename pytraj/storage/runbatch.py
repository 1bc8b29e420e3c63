"""A batch of run records that differ only in their values, held as columns.

Most commits are batches of runs that all completed on one host, each with the same
per-run items: W1's one float, W3's ten floats and a small dict. :func:`uniform_runs`
recognises such a batch and gives its columns once; the journal then encodes the whole
batch column by column (:func:`encode_uniform_into`, the same bytes
:mod:`pytraj.storage.recordcodec` writes run by run): the run heads, point ids, item keys
and every item whose values are all floats (or all ints) with numpy structured arrays,
only the values of other items (a dict, a bool, an array) one by one. The writer's
buffers and the run table take whole columns. Any other batch (a failure, a log, a new
leaf, a pickled value, another host) returns None and goes run by run.

The serial runner does not even make records for its plain runs: a :class:`RunLane`
gathers each completed run's index, times and values as it ends, and hands them over as a
:class:`ColumnBatch`, a sequence of records whose columns are known already (records are
made only for a reader that asks for them, such as the in-memory backend).
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, overload

import numpy as np

from pytraj.storage.records import COMPLETED, LeafRecord, RunRecord
from pytraj.storage.recordslots import Chunks, put_slot
from pytraj.storage.valuecodec import FORMAT_VERSION, dumps_flat_dicts

__all__ = [
    "ColumnBatch",
    "LaneRun",
    "RecordBatch",
    "RunLane",
    "RunStarts",
    "UniformRuns",
    "batch_leaves",
    "encode_uniform",
    "encode_uniform_into",
    "uniform_runs",
]

_U32 = struct.Struct("<I")
_SLOT_V = struct.Struct("<cI")  # a value slot's tag and payload length (recordslots)
# One run's head as recordcodec packs it: "<qqqddqIIIBII".
_HEAD_FIELDS = [
    ("idx", "<i8"),
    ("status", "<i8"),
    ("attempt", "<i8"),
    ("start", "<f8"),
    ("finish", "<f8"),
    ("pid", "<i8"),
    ("n_point_id", "<u4"),
    ("n_host", "<u4"),
    ("n_log", "<u4"),
    ("has_failure", "u1"),
    ("n_leaves", "<u4"),
    ("n_values", "<u4"),
]
# A float or int value slot: slot tag, payload length, value codec version, type tag, 8 bytes.
_NUMBER_LENGTH = 10
_NUMBER_TAGS = {float: (b"f", "<f8"), int: (b"i", "<i8")}


@dataclass(slots=True)
class UniformRuns:
    """The columns of a uniform batch of completed runs (see :func:`uniform_runs`).

    ``values[k]`` holds every run's value of ``keys[k]``, all of type ``kinds[k]`` when
    that is ``float`` or ``int`` (ints within int64), of any types when it is ``object``.
    """

    idx: list[int]
    point_ids: list[bytes]
    status: list[int]
    attempt: list[int]
    start: list[float]
    finish: list[float]
    pid: list[int]
    host: str
    keys: tuple[tuple[str, str], ...]
    values: list[list[Any]]
    kinds: list[type]


class RecordBatch(list[RunRecord]):
    """The records of one commit: a list that keeps its :func:`uniform_runs` columns once
    computed, for the journal, the writer's buffers and the run table to share.

    The columns describe the records as they were when first computed; appending
    computes them again, any other change to the list is not noticed.
    """

    __slots__ = ("columns",)

    def __init__(self, records: Sequence[RunRecord] = ()) -> None:
        super().__init__(records)
        #: ``(len(self), the columns or None)`` once computed, else None.
        self.columns: tuple[int, UniformRuns | None] | None = None


def uniform_runs(records: Sequence[RunRecord], pickled: Collection[str] = ()) -> UniformRuns | None:
    """The columns of ``records`` when they form a uniform batch, else None.

    Uniform: at least two records, no failure, log or leaf declaration in any record,
    one host, point ids of one width, the same items in the same order in every record,
    none of them of a Pickle leaf (``pickled``), and no run twice. An item whose values
    are all floats, or all ints within int64 (exact types: a bool or a numpy scalar is
    neither), is a number column; any other item is an ``object`` column. A
    :class:`RecordBatch` computes its columns once.
    """
    if type(records) is ColumnBatch:
        batch: UniformRuns | None = records.columns[1]
    elif type(records) is RecordBatch:
        cached = records.columns
        if cached is None or cached[0] != len(records):
            cached = records.columns = (len(records), _columns(records))
        batch = cached[1]
    else:
        batch = _columns(records)
    if batch is not None and pickled and any(path in pickled for path, _ in batch.keys):
        return None
    return batch


def _columns(records: Sequence[RunRecord]) -> UniformRuns | None:
    if len(records) < 2:
        return None  # a single run goes run by run: columns would cost more than they save
    first = records[0]
    host = first.host
    keys = tuple(first.values)
    width = len(first.point_id)
    if not width:
        return None
    for record in records:
        if (
            record.failure is not None
            or record.leaves
            or record.log
            or record.host != host
            or type(record.point_id) is not bytes
            or len(record.point_id) != width
            or tuple(record.values) != keys
        ):
            return None
    idx = [record.idx for record in records]
    if len(set(idx)) != len(idx):
        return None
    values = [[record.values[key] for record in records] for key in keys]
    return UniformRuns(
        idx=idx,
        point_ids=[record.point_id for record in records],
        status=[record.status for record in records],
        attempt=[record.attempt for record in records],
        start=[record.start for record in records],
        finish=[record.finish for record in records],
        pid=[record.pid for record in records],
        host=host,
        keys=keys,
        values=values,
        kinds=[column_kind(column) for column in values],
    )


def column_kind(column: list[Any]) -> type:
    """``float`` or ``int`` when every value of ``column`` is one (ints within int64;
    exact types: a bool or a numpy scalar is neither), else ``object``."""
    kind = type(column[0])
    if kind not in _NUMBER_TAGS or set(map(type, column)) != {kind}:
        return object
    if kind is int and not (min(column) >= -(2**63) and max(column) < 2**63):
        return object  # the run-by-run slot says which value does not fit
    return kind


def batch_leaves(records: Sequence[RunRecord]) -> Iterator[LeafRecord]:
    """The leaf declarations the records of a commit carry, in order (a
    :class:`ColumnBatch` carries none, and is not turned into records to say so)."""
    if type(records) is ColumnBatch:
        return
    for record in records:
        yield from record.leaves


class ColumnBatch(Sequence[RunRecord]):
    """Completed runs held as the columns of a uniform batch (:class:`UniformRuns`).

    :func:`uniform_runs` gives the columns as they are; indexing or iterating makes a
    :class:`~pytraj.storage.records.RunRecord` per run, for the readers that go run by
    run (the in-memory backend, a journal of a study with Pickle leaves).
    """

    __slots__ = ("columns",)

    def __init__(self, runs: UniformRuns) -> None:
        #: ``(len(self), the columns)``, as :attr:`RecordBatch.columns` holds them.
        self.columns: tuple[int, UniformRuns] = (len(runs.idx), runs)

    def __len__(self) -> int:
        return self.columns[0]

    @overload
    def __getitem__(self, i: int) -> RunRecord: ...

    @overload
    def __getitem__(self, i: slice) -> list[RunRecord]: ...

    def __getitem__(self, i: int | slice) -> RunRecord | list[RunRecord]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        runs = self.columns[1]
        return RunRecord(
            runs.idx[i],
            runs.point_ids[i],
            runs.status[i],
            runs.attempt[i],
            runs.start[i],
            runs.finish[i],
            runs.host,
            runs.pid[i],
            {key: column[i] for key, column in zip(runs.keys, runs.values, strict=True)},
        )

    def __iter__(self) -> Iterator[RunRecord]:
        return (self[i] for i in range(len(self)))


def _transpose(runs: list[dict[tuple[str, str], Any]]) -> list[list[Any]] | None:
    """The values of ``runs`` as one list per key of the first run, or None when the
    runs do not all have the same keys."""
    keys = tuple(runs[0])
    if set(map(len, runs)) != {len(keys)}:
        return None
    if not keys:
        return []
    try:
        rows = list(map(itemgetter(*keys), runs))  # same length, all keys: the same keys
    except KeyError:
        return None
    if len(keys) == 1:
        return [rows]
    return [list(column) for column in zip(*rows, strict=True)]


@dataclass(slots=True)
class RunStarts:
    """What the runs of one job start from, read from the run table once for all of them.

    Position ``k`` is run ``indices[k]``: ``point_ids[k]`` its point id (``V16``),
    ``attempts[k]`` the number of the attempt it would make (one int when every run makes
    the same, as in a fresh study); ``completed`` holds the positions of runs completed
    already (such a run is refused when it comes to start). ``index_array`` holds the
    indices as int64 unless they are a range of step 1 (a million runs: no 8 MB array).
    """

    indices: Sequence[int]
    index_array: np.ndarray | None
    point_ids: np.ndarray
    attempts: np.ndarray | int
    completed: frozenset[int]

    def point_id(self, k: int) -> bytes:
        """The point id of the run at position ``k``."""
        return bytes(self.point_ids[k])

    def attempt(self, k: int) -> int:
        """The attempt number of the run at position ``k``."""
        attempts = self.attempts
        return attempts if isinstance(attempts, int) else int(attempts[k])

    def indices_at(self, positions: np.ndarray) -> list[int]:
        """The run indices at ``positions``."""
        if self.index_array is None:
            return (positions + self.indices[0]).tolist()
        return self.index_array[positions].tolist()

    def attempts_at(self, positions: np.ndarray) -> list[int]:
        """The attempt numbers of the runs at ``positions``."""
        attempts = self.attempts
        if isinstance(attempts, int):
            return [attempts] * len(positions)
        return attempts[positions].tolist()


#: One run of a :class:`RunLane`: its position in the job, start and finish times, values.
LaneRun = tuple[int, float, float, dict[tuple[str, str], Any]]


class RunLane:
    """Completed runs of one host gathered as they end (the serial runner's per-run
    path: no record per run, no transposing of records at the commit).

    A run is one tuple in :attr:`runs`: its position in the job (:class:`RunStarts`),
    its start and finish times and its values (``(leaf path, item) -> value``);
    :meth:`take` turns the runs gathered so far into a :class:`ColumnBatch`.
    """

    __slots__ = ("host", "pid", "runs", "starts")

    def __init__(self, starts: RunStarts, host: str, pid: int) -> None:
        self.starts = starts
        self.host = host
        self.pid = pid
        #: ``(position, start, finish, values)`` of each run gathered, in order.
        self.runs: list[LaneRun] = []

    def __len__(self) -> int:
        return len(self.runs)

    def seconds(self) -> float:
        """The run time of the runs gathered (the sum of finish - start)."""
        return sum(finish - start for _, start, finish, _ in self.runs)

    def take(self, extra: dict[tuple[str, str], Any]) -> Sequence[RunRecord]:
        """The runs gathered so far, each with the values of ``extra`` added (the writer
        session's column), as one batch; the lane is empty afterwards.

        A :class:`ColumnBatch` when every run has the same items, else their records.
        """
        runs, self.runs = self.runs, []
        if not runs:
            return RecordBatch()
        starts = self.starts
        positions_t, start_t, finish_t, values_t = zip(*runs, strict=True)
        positions = np.array(positions_t, dtype=np.intp)
        idx = starts.indices_at(positions)
        point_ids: list[bytes] = starts.point_ids[positions].tolist()
        attempt = starts.attempts_at(positions)
        start, finish, values = list(start_t), list(finish_t), list(values_t)
        n = len(idx)
        columns = _transpose(values) if n > 1 else None
        if columns is not None:
            keys = (*values[0], *extra)
            columns += [[value] * n for value in extra.values()]
            return ColumnBatch(
                UniformRuns(
                    idx=idx,
                    point_ids=point_ids,
                    status=[COMPLETED] * n,
                    attempt=attempt,
                    start=start,
                    finish=finish,
                    pid=[self.pid] * n,
                    host=self.host,
                    keys=keys,
                    values=columns,
                    kinds=[column_kind(column) for column in columns],
                )
            )
        return RecordBatch(
            [
                RunRecord(
                    idx[i],
                    point_ids[i],
                    COMPLETED,
                    attempt[i],
                    start[i],
                    finish[i],
                    self.host,
                    self.pid,
                    {**values[i], **extra},
                )
                for i in range(n)
            ]
        )


def _key_bytes(path: str, item: str) -> bytes:
    raw_path = path.encode("utf-8", "surrogatepass")
    raw_item = item.encode("utf-8", "surrogatepass")
    return b"".join([_U32.pack(len(raw_path)), raw_path, _U32.pack(len(raw_item)), raw_item])


def encode_uniform(batch: UniformRuns) -> bytes:
    """The records of ``batch`` encoded back to back, as ``recordcodec`` encodes each run
    (see :func:`encode_uniform_into`)."""
    out: Chunks = []
    encode_uniform_into(out, batch)
    return b"".join(out)


def encode_uniform_into(out: Chunks, batch: UniformRuns) -> None:
    """Append the records of ``batch``, encoded back to back as ``recordcodec`` encodes
    each run (head, point id, host, then per item its key and value slot), to ``out``.

    Everything but the values of ``object`` columns is built column by column in numpy
    structured arrays, one per stretch of a record between two such values; those values
    are encoded one by one in between (arrays as their own memory, as run by run).

    Raises
    ------
    UnsupportedValueError
        For a value the value codec cannot hold, naming the run and the item.
    """
    host = batch.host.encode("utf-8", "surrogatepass")
    width = len(batch.point_ids[0])
    fields: list[tuple[str, Any]] = [*_HEAD_FIELDS, ("point_id", f"V{width}")]
    if host:
        fields.append(("host", f"V{len(host)}"))
    # A record is stretches of fixed width, each but the last followed by an object slot.
    stretches: list[list[tuple[str, Any]]] = [fields]
    fills: list[list[tuple[str, Any]]] = [[]]  # (field, value) to set in each stretch
    objects: list[int] = []  # the columns of the object slots, in record order
    for k, ((path, item), kind) in enumerate(zip(batch.keys, batch.kinds, strict=True)):
        stretches[-1].append((f"key{k}", f"V{len(_key_bytes(path, item))}"))
        fills[-1].append((f"key{k}", np.void(_key_bytes(path, item))))
        if kind is object:
            objects.append(k)
            stretches.append([])
            fills.append([])
            continue
        tag, layout = _NUMBER_TAGS[kind]
        stretches[-1] += [
            (f"slot{k}", "S1"),
            (f"length{k}", "<u4"),
            (f"version{k}", "u1"),
            (f"tag{k}", "S1"),
            (f"value{k}", layout),
        ]
        fills[-1] += [
            (f"slot{k}", b"v"),
            (f"length{k}", _NUMBER_LENGTH),
            (f"version{k}", FORMAT_VERSION),
            (f"tag{k}", tag),
            (f"value{k}", batch.values[k]),
        ]
    n = len(batch.idx)
    head = np.zeros(n, dtype=np.dtype(fields))
    head["idx"] = batch.idx
    head["status"] = batch.status
    head["attempt"] = batch.attempt
    head["start"] = batch.start
    head["finish"] = batch.finish
    head["pid"] = batch.pid
    head["n_point_id"] = width
    head["n_host"] = len(host)
    head["n_values"] = len(batch.keys)
    head["point_id"] = np.frombuffer(b"".join(batch.point_ids), dtype=f"V{width}")
    if host:
        head["host"] = np.void(host)
    blocks: list[bytes] = []
    for number, (stretch, fill) in enumerate(zip(stretches, fills, strict=True)):
        rows = head if number == 0 else np.zeros(n, dtype=np.dtype(stretch))
        for name, value in fill:
            rows[name] = value
        blocks.append(rows.tobytes())
    if not objects:
        out.append(blocks[0])
        return
    _interleave(out, batch, blocks, objects)


def _interleave(out: Chunks, batch: UniformRuns, blocks: list[bytes], objects: list[int]) -> None:
    """Append each run's stretches (``blocks``, one row per run each) and, between them,
    its values of the ``objects`` columns as value slots."""
    n = len(batch.idx)
    sizes = [len(block) // n for block in blocks]
    last, last_size = blocks[-1], sizes[-1]
    named = [(batch.keys[k], batch.values[k]) for k in objects]
    ready = [_dict_slots(column) for _, column in named]
    if len(objects) == 1:  # the common case (W3: a dict after the numbers), kept flat
        ((path, item), column), first, size, slots = named[0], blocks[0], sizes[0], ready[0]
        for i, value in enumerate(column):
            out.append(first[i * size : (i + 1) * size])
            if slots is not None:
                out.append(slots[i])
            else:
                put_slot(out, value, False, ("run ", batch.idx[i], "'s item ", path, ".", item))
            if last_size:
                out.append(last[i * last_size : (i + 1) * last_size])
        return
    for i in range(n):
        for block, size, ((path, item), column), slots in zip(
            blocks, sizes, named, ready, strict=False
        ):
            if size:
                out.append(block[i * size : (i + 1) * size])
            if slots is not None:
                out.append(slots[i])
            else:
                put_slot(out, column[i], False, ("run ", batch.idx[i], "'s item ", path, ".", item))
        if last_size:
            out.append(last[i * last_size : (i + 1) * last_size])


def _dict_slots(column: list[Any]) -> list[bytes] | None:
    """The value slots of a column of small flat dicts, built key by key, or None.

    The column qualifies when every value is a dict with the same str keys in the same
    order and each key's values are all floats, all ints within int64, all bools or all
    strs (W3's ``{"label": ..., "k": ..., "flag": ...}``); the bytes are those
    :func:`~pytraj.storage.recordslots.put_slot` gives value by value (a value slot
    holding :func:`~pytraj.storage.valuecodec.dumps` of the dict).
    """
    payloads = dumps_flat_dicts(column)
    if payloads is None:
        return None
    return [_SLOT_V.pack(b"v", len(payload)) + payload for payload in payloads]
