"""An exact binary encoding of the plain storage records, for the write-ahead journal.

:func:`encode_run` / :func:`decode_run` turn a :class:`~pytraj.storage.records.RunRecord`
into bytes and back, :func:`encode_definition` / :func:`decode_definition` do the same for
a :class:`~pytraj.storage.records.StudyDefinition`; every field comes back with its type.
Values go through :mod:`pytraj.storage.valuecodec`; only values of Pickle leaves are
pickled. Each value carries its own tag, so decoding needs no outside knowledge of which
leaves are pickled. Encoding a run runs once per run in the writer, so it is kept to a
few struct packs and one join.

The format is described in :mod:`pytraj.storage.recordformat`; decoding lives in
:mod:`pytraj.storage.recorddecode` (re-exported here).

Examples
--------
>>> from pytraj.storage.records import RunRecord
>>> record = RunRecord(idx=3, point_id=bytes(16), values={("results.z", "z"): 1.5})
>>> decode_run(encode_run(record)) == record
True
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from pytraj.errors import UnsupportedValueError
from pytraj.storage.explored import StoredPointIds
from pytraj.storage.recorddecode import (
    RecordDecodeError,
    decode_definition,
    decode_run,
    decode_runs,
)
from pytraj.storage.recordformat import (
    DEFINITION_HEAD,
    EMPTY_MAP,
    EXPLORED,
    FAILURE_HEAD,
    PER_RUN,
    PICKLED,
    RECORD_FORMAT_VERSION,
    RUN_HEAD,
    TWO_U32,
    U32,
    VARIABLE_WIDTH,
    VERSION_BYTE,
)
from pytraj.storage.records import (
    LeafRecord,
    RunRecord,
    StudyDefinition,
)
from pytraj.storage.recordslots import (
    SLOT_HEAD,
    Chunks,
    number_slots,
    put_slot,
    slot_bytes,
    where_text,
)
from pytraj.storage.runbatch import encode_uniform_into, uniform_runs
from pytraj.storage.valuecodec import dumps

__all__ = [
    "definition_chunks",
    "RECORD_FORMAT_VERSION",
    "RecordDecodeError",
    "decode_definition",
    "decode_run",
    "decode_runs",
    "encode_definition",
    "encode_run",
    "encode_runs",
    "encode_runs_into",
]

# Encoded (path, item) keys: a study uses few of them, once per run each. The cache is
# emptied when it grows past the limit, so odd workloads cannot make it grow forever.
_KEY_CACHE: dict[tuple[str, str], bytes] = {}
_KEY_CACHE_LIMIT = 4096


# -- encoding -------------------------------------------------------------------------------


def _text(value: str) -> bytes:
    # surrogatepass: names coming from os.fsdecode may hold lone surrogates.
    return value.encode("utf-8", "surrogatepass")


def _put_str(out: Chunks, value: str) -> None:
    raw = value.encode("utf-8", "surrogatepass")
    out.append(U32.pack(len(raw)))
    out.append(raw)


def _put_map(
    out: Chunks, mapping: dict[str, Any], pickled: bool, where: tuple[object, ...]
) -> None:
    if not mapping:
        out.append(EMPTY_MAP)
        return
    out.append(U32.pack(len(mapping)))
    for key, value in mapping.items():
        if type(key) is not str:
            raise UnsupportedValueError(
                f"{where_text(where)} has the key {key!r} of type {type(key).__name__}; keys "
                "must be str"
            )
        _put_str(out, key)
        put_slot(out, value, pickled, (*where, "['", key, "']"))


def _put_leaf(out: Chunks, leaf: LeafRecord) -> None:
    pickled = bool(leaf.pickled)
    explored = leaf.explored
    flags = (
        (PER_RUN if leaf.per_run else 0)
        | (PICKLED if pickled else 0)
        | (0 if explored is None else EXPLORED)
    )
    path = leaf.path
    out.append(bytes([flags]))
    _put_str(out, path)
    _put_str(out, leaf.leaf_class)
    _put_str(out, leaf.comment)
    _put_map(out, leaf.annotations, False, ("the annotations of ", path))
    out.append(slot_bytes(leaf.default, pickled, ("the default of ", path)))
    if explored is not None:
        out.append(U32.pack(len(explored)))
        slots = None if pickled else number_slots(explored)
        if slots is not None:
            out.append(slots)
        else:
            where = ("the explored values of ", path)
            out.extend([slot_bytes(value, pickled, where) for value in explored])
    _put_map(out, leaf.items, pickled, ("the items of ", path))


def _key(path: str, item: str) -> bytes:
    encoded = _KEY_CACHE.get((path, item))
    if encoded is None:
        if len(_KEY_CACHE) >= _KEY_CACHE_LIMIT:
            _KEY_CACHE.clear()
        raw_path, raw_item = _text(path), _text(item)
        encoded = b"".join([U32.pack(len(raw_path)), raw_path, U32.pack(len(raw_item)), raw_item])
        _KEY_CACHE[(path, item)] = encoded
    return encoded


def _put_run(out: Chunks, record: RunRecord, pickled: Collection[str]) -> None:
    point_id = bytes(record.point_id)
    host = record.host.encode("utf-8", "surrogatepass")
    log = record.log.encode("utf-8", "surrogatepass")
    failure = record.failure
    leaves = record.leaves
    values = record.values
    out.append(
        RUN_HEAD.pack(
            record.idx,
            record.status,
            record.attempt,
            record.start,
            record.finish,
            record.pid,
            len(point_id),
            len(host),
            len(log),
            failure is not None,
            len(leaves),
            len(values),
        )
    )
    out.append(point_id + host + log)
    if failure is not None:
        out.append(FAILURE_HEAD.pack(failure.idx, failure.attempt))
        _put_str(out, failure.exc_type)
        _put_str(out, failure.message)
        _put_str(out, failure.traceback)
        _put_str(out, failure.log)
    own_pickled: set[str] | None = None
    for leaf in leaves:
        _put_leaf(out, leaf)
        if leaf.pickled:
            own_pickled = own_pickled or set()
            own_pickled.add(leaf.path)
    for (path, item), value in values.items():
        out.append(_key(path, item))
        is_pickled = path in pickled or (own_pickled is not None and path in own_pickled)
        if not is_pickled and type(value) is float:
            # The commonest value: skip the generic path (valuecodec's own fast path).
            data = dumps(value)
            out.append(SLOT_HEAD.pack(b"v", len(data)) + data)
        else:
            where = ("run ", record.idx, "'s item ", path, ".", item)
            put_slot(out, value, is_pickled, where)


def encode_runs_into(
    out: list[bytes], records: Sequence[RunRecord], *, pickled: Collection[str] = ()
) -> None:
    """Append the encoding of ``records`` to ``out`` (as :func:`encode_runs` would return it).

    The journal uses this to checksum and write a batch with a single copy.

    Parameters
    ----------
    out
        Chunks to extend; ``b"".join(out)`` afterwards gives the encoding.
    records
        The run records, in order.
    pickled
        Paths of Pickle leaves known from the study definition; leaves a record carries
        itself (``record.leaves``) are taken into account without it.
    """
    out.append(VERSION_BYTE + U32.pack(len(records)))
    batch = uniform_runs(records, pickled)
    if batch is not None:
        encode_uniform_into(out, batch)  # the same bytes, column by column
        return
    for record in records:
        _put_run(out, record, pickled)


def encode_runs(records: Sequence[RunRecord], *, pickled: Collection[str] = ()) -> bytes:
    """Encode several run records, in order; read them back with :func:`decode_runs`.

    ``pickled`` names Pickle leaves known from the study definition (see
    :func:`encode_run`).
    """
    out: Chunks = []
    encode_runs_into(out, records, pickled=pickled)
    return b"".join(out)


def encode_run(record: RunRecord, *, pickled: Collection[str] = ()) -> bytes:
    """Encode one run record exactly.

    Parameters
    ----------
    record
        The record; :class:`~pytraj.storage.records.LazyValue` values are loaded and
        :data:`~pytraj.storage.records.NOT_LOADED` ones kept as a marker.
    pickled
        Paths of Pickle leaves known from the study definition, whose values are pickled.
        A leaf the record itself carries with ``pickled=True`` counts too.

    Returns
    -------
    bytes
        The encoding, starting with :data:`RECORD_FORMAT_VERSION`.

    Raises
    ------
    UnsupportedValueError
        For a value the value codec cannot hold, naming the run and item.
    """
    out: Chunks = [VERSION_BYTE]
    _put_run(out, record, pickled)
    return b"".join(out)


def encode_definition(definition: StudyDefinition) -> bytes:
    """Encode a study definition exactly; read it back with :func:`decode_definition`.

    Values of leaves with ``pickled=True`` are pickled; :data:`NOT_LOADED` items are kept
    as a marker, so a definition meant to rebuild a file needs its items loaded first.
    """
    return b"".join(definition_chunks(definition))


def definition_chunks(definition: StudyDefinition) -> Chunks:
    """:func:`encode_definition` as the chunks it joins: point ids and explored numbers
    as memoryviews of their arrays, which the journal writes without joining them (a
    million points: 16 + 15 MB not copied twice more)."""
    out: Chunks = [VERSION_BYTE]
    _put_str(out, definition.name)
    _put_str(out, definition.comment)
    out.append(DEFINITION_HEAD.pack(definition.created, definition.n_runs))
    _put_map(out, definition.provenance, False, ("the provenance of ", definition.name))
    out.append(U32.pack(len(definition.groups)))
    for group in definition.groups:
        _put_str(out, group.path)
        _put_str(out, group.comment)
        _put_map(out, group.annotations, False, ("the annotations of ", group.path))
    out.append(U32.pack(len(definition.leaves)))
    for leaf in definition.leaves:
        _put_leaf(out, leaf)
    out.append(U32.pack(len(definition.links)))
    for link in definition.links:
        _put_str(out, link.path)
        _put_str(out, link.target)
        _put_str(out, link.comment)
    if isinstance(definition.point_ids, StoredPointIds):
        # Ids held as one V16 array (a definition made from the run table): written as
        # they are, without a bytes object per run (16 MB more at the peak for 100,000).
        ids = definition.point_ids.to_numpy()
        out.append(TWO_U32.pack(len(ids), 16))
        out.append((ids if ids.flags.c_contiguous else ids.copy()).view("u1").data)
        return out
    point_ids = list(map(bytes, definition.point_ids))
    width = len(point_ids[0]) if point_ids else 16
    # Ids of one non-zero width (the normal case) are stored back to back.
    if width and set(map(len, point_ids)) <= {width}:
        out.append(TWO_U32.pack(len(point_ids), width))
        out.append(b"".join(point_ids))
    else:
        out.append(TWO_U32.pack(len(point_ids), VARIABLE_WIDTH))
        for point_id in point_ids:
            out.append(U32.pack(len(point_id)))
            out.append(point_id)
    return out
