"""A batch of run records that differ only in their numbers, held as columns.

Most commits are batches of runs that all completed on one host, each with the same
per-run items, every item a float (or every item an int): W1's runs. :func:`uniform_runs`
recognises such a batch and gives its columns once; the journal then encodes the whole
batch with one numpy structured array (:func:`encode_uniform`, the same bytes
:mod:`pytraj.storage.recordcodec` writes run by run), and the writer's buffers and the
run table take whole columns. Any other batch (a failure, a log, a new leaf, a pickled
or non-number value, another host) returns None and goes run by run.
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytraj.storage.records import RunRecord
from pytraj.storage.valuecodec import FORMAT_VERSION

__all__ = ["RecordBatch", "UniformRuns", "encode_uniform", "uniform_runs"]

_U32 = struct.Struct("<I")
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

    ``values[k]`` holds every run's value of ``keys[k]``, all of type ``kinds[k]``
    (``float`` or ``int``).
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
    and each item's values all floats or all ints within int64 (exact types: a bool or a
    numpy scalar is not one), none of them of a Pickle leaf (``pickled``), and no run
    twice. A :class:`RecordBatch` computes its columns once.
    """
    if type(records) is RecordBatch:
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
    if not width or any(type(value) not in _NUMBER_TAGS for value in first.values.values()):
        return None  # no id, or an item that is not a number: nothing to look at further
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
    values: list[list[Any]] = []
    kinds: list[type] = []
    for key in keys:
        column = [record.values[key] for record in records]
        kind = type(column[0])
        if kind not in _NUMBER_TAGS or set(map(type, column)) != {kind}:
            return None
        if kind is int and not all(-(2**63) <= value < 2**63 for value in column):
            return None
        values.append(column)
        kinds.append(kind)
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
        kinds=kinds,
    )


def _key_bytes(path: str, item: str) -> bytes:
    raw_path = path.encode("utf-8", "surrogatepass")
    raw_item = item.encode("utf-8", "surrogatepass")
    return b"".join([_U32.pack(len(raw_path)), raw_path, _U32.pack(len(raw_item)), raw_item])


def encode_uniform(batch: UniformRuns) -> bytes:
    """The records of ``batch`` encoded back to back, as ``recordcodec`` encodes each run
    (head, point id, host, then per item its key and value slot), built column by column."""
    host = batch.host.encode("utf-8", "surrogatepass")
    width = len(batch.point_ids[0])
    fields: list[tuple[str, Any]] = [*_HEAD_FIELDS, ("point_id", f"V{width}")]
    if host:
        fields.append(("host", f"V{len(host)}"))
    key_bytes = [_key_bytes(path, item) for path, item in batch.keys]
    for k, (raw, kind) in enumerate(zip(key_bytes, batch.kinds, strict=True)):
        fields += [
            (f"key{k}", f"V{len(raw)}"),
            (f"slot{k}", "S1"),
            (f"length{k}", "<u4"),
            (f"version{k}", "u1"),
            (f"tag{k}", "S1"),
            (f"value{k}", _NUMBER_TAGS[kind][1]),
        ]
    rows = np.zeros(len(batch.idx), dtype=np.dtype(fields))
    rows["idx"] = batch.idx
    rows["status"] = batch.status
    rows["attempt"] = batch.attempt
    rows["start"] = batch.start
    rows["finish"] = batch.finish
    rows["pid"] = batch.pid
    rows["n_point_id"] = width
    rows["n_host"] = len(host)
    rows["n_values"] = len(batch.keys)
    rows["point_id"] = np.frombuffer(b"".join(batch.point_ids), dtype=f"V{width}")
    if host:
        rows["host"] = np.void(host)
    for k, (raw, kind) in enumerate(zip(key_bytes, batch.kinds, strict=True)):
        rows[f"key{k}"] = np.void(raw)
        rows[f"slot{k}"] = b"v"
        rows[f"length{k}"] = _NUMBER_LENGTH
        rows[f"version{k}"] = FORMAT_VERSION
        rows[f"tag{k}"] = _NUMBER_TAGS[kind][0]
        rows[f"value{k}"] = batch.values[k]
    return rows.tobytes()
