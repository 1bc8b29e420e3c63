"""An exact binary encoding of the plain storage records, for the write-ahead journal.

:func:`encode_run` / :func:`decode_run` turn a :class:`~pytraj.storage.records.RunRecord`
into bytes and back, :func:`encode_definition` / :func:`decode_definition` do the same for
a :class:`~pytraj.storage.records.StudyDefinition`; every field comes back with its type.
Values go through :mod:`pytraj.storage.valuecodec`; only values of Pickle leaves are
pickled. Each value carries its own tag, so decoding needs no outside knowledge of which
leaves are pickled. Encoding a run runs once per run in the writer, so it is kept to a
few struct packs and one join.

Format (version 1)
------------------
Integers are little-endian; ``q`` is int64, ``d`` float64, ``I`` u32; a *str* is
``I`` byte length + UTF-8 (lone surrogates kept). Each top-level encoding starts with one
version byte. A *value slot* is one tag and its payload::

    N                     None
    n                     NOT_LOADED (an item whose value stayed in the file)
    v  I length + bytes   a value encoded by :func:`pytraj.storage.valuecodec.dumps`
    p  I length + bytes   a pickled value (Pickle leaves only)

(encoded by :mod:`pytraj.storage.recordslots`, decoded here).

A *map* is ``I`` count + count x (str key, value slot). The records::

    run         q idx, q status, q attempt, d start, d finish, q pid,
                I len(point_id), I len(host), I len(log), B has_failure,
                I number of leaves, I number of values;
                point_id, host, log bytes; [failure]; leaves; values as
                count x (str leaf path, str item, value slot)
    failure     q idx, q attempt; str exc_type, message, traceback, log
    leaf        B flags (1 per_run, 2 pickled, 4 has explored); str path, leaf_class,
                comment; annotations map; default slot; [I count + explored slots];
                items map
    definition  str name, comment; d created; q n_runs; provenance map;
                I count + groups (str path, comment; annotations map);
                I count + leaves; I count + links (str path, target, comment);
                I count, I width (0xFFFFFFFF: each id is I length + bytes) + point ids
    runs        I count + count x run

Examples
--------
>>> from pytraj.storage.records import RunRecord
>>> record = RunRecord(idx=3, point_id=bytes(16), values={("results.z", "z"): 1.5})
>>> decode_run(encode_run(record)) == record
True
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Callable, Collection, Sequence
from typing import Any

from pytraj.errors import UnsupportedValueError
from pytraj.storage.explored import StoredPointIds
from pytraj.storage.records import (
    NOT_LOADED,
    FailureRecord,
    GroupRecord,
    LeafRecord,
    LinkRecord,
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
from pytraj.storage.valuecodec import ValueDecodeError, dumps, loads

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

#: Version byte that starts every encoding; decoding refuses versions it does not know.
RECORD_FORMAT_VERSION = 1
_VERSION = bytes([RECORD_FORMAT_VERSION])

_U32 = struct.Struct("<I")
_RUN_HEAD = struct.Struct("<qqqddqIIIBII")
_FAILURE_HEAD = struct.Struct("<qq")
_DEF_HEAD = struct.Struct("<dq")
_TWO_U32 = struct.Struct("<II")
_VARIABLE_WIDTH = 0xFFFFFFFF
_PER_RUN, _PICKLED, _EXPLORED = 1, 2, 4
_EMPTY_MAP = _U32.pack(0)
# Encoded (path, item) keys: a study uses few of them, once per run each. The cache is
# emptied when it grows past the limit, so odd workloads cannot make it grow forever.
_KEY_CACHE: dict[tuple[str, str], bytes] = {}
_KEY_CACHE_LIMIT = 4096


class RecordDecodeError(ValueDecodeError):
    """Bytes that are not a valid encoding of storage records (truncated or damaged)."""


# -- encoding -------------------------------------------------------------------------------


def _text(value: str) -> bytes:
    # surrogatepass: names coming from os.fsdecode may hold lone surrogates.
    return value.encode("utf-8", "surrogatepass")


def _put_str(out: Chunks, value: str) -> None:
    raw = value.encode("utf-8", "surrogatepass")
    out.append(_U32.pack(len(raw)))
    out.append(raw)


def _put_map(
    out: Chunks, mapping: dict[str, Any], pickled: bool, where: tuple[object, ...]
) -> None:
    if not mapping:
        out.append(_EMPTY_MAP)
        return
    out.append(_U32.pack(len(mapping)))
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
        (_PER_RUN if leaf.per_run else 0)
        | (_PICKLED if pickled else 0)
        | (0 if explored is None else _EXPLORED)
    )
    path = leaf.path
    out.append(bytes([flags]))
    _put_str(out, path)
    _put_str(out, leaf.leaf_class)
    _put_str(out, leaf.comment)
    _put_map(out, leaf.annotations, False, ("the annotations of ", path))
    out.append(slot_bytes(leaf.default, pickled, ("the default of ", path)))
    if explored is not None:
        out.append(_U32.pack(len(explored)))
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
        encoded = b"".join([_U32.pack(len(raw_path)), raw_path, _U32.pack(len(raw_item)), raw_item])
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
        _RUN_HEAD.pack(
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
        out.append(_FAILURE_HEAD.pack(failure.idx, failure.attempt))
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
    out.append(_VERSION + _U32.pack(len(records)))
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
    out: Chunks = [_VERSION]
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
    out: Chunks = [_VERSION]
    _put_str(out, definition.name)
    _put_str(out, definition.comment)
    out.append(_DEF_HEAD.pack(definition.created, definition.n_runs))
    _put_map(out, definition.provenance, False, ("the provenance of ", definition.name))
    out.append(_U32.pack(len(definition.groups)))
    for group in definition.groups:
        _put_str(out, group.path)
        _put_str(out, group.comment)
        _put_map(out, group.annotations, False, ("the annotations of ", group.path))
    out.append(_U32.pack(len(definition.leaves)))
    for leaf in definition.leaves:
        _put_leaf(out, leaf)
    out.append(_U32.pack(len(definition.links)))
    for link in definition.links:
        _put_str(out, link.path)
        _put_str(out, link.target)
        _put_str(out, link.comment)
    if isinstance(definition.point_ids, StoredPointIds):
        # Ids held as one V16 array (a definition made from the run table): written as
        # they are, without a bytes object per run (16 MB more at the peak for 100,000).
        ids = definition.point_ids.to_numpy()
        out.append(_TWO_U32.pack(len(ids), 16))
        out.append((ids if ids.flags.c_contiguous else ids.copy()).view("u1").data)
        return out
    point_ids = list(map(bytes, definition.point_ids))
    width = len(point_ids[0]) if point_ids else 16
    # Ids of one non-zero width (the normal case) are stored back to back.
    if width and set(map(len, point_ids)) <= {width}:
        out.append(_TWO_U32.pack(len(point_ids), width))
        out.append(b"".join(point_ids))
    else:
        out.append(_TWO_U32.pack(len(point_ids), _VARIABLE_WIDTH))
        for point_id in point_ids:
            out.append(_U32.pack(len(point_id)))
            out.append(point_id)
    return out


# -- decoding -------------------------------------------------------------------------------


class _Reader:
    """A position in encoded bytes, with readers for each part of the format."""

    __slots__ = ("data", "pos", "unpickle")

    def __init__(
        self, data: bytes, pos: int = 0, unpickle: Callable[[bytes], Any] = pickle.loads
    ) -> None:
        self.data = data
        self.pos = pos
        # A reader that must never unpickle (the pytraj command) passes its own.
        self.unpickle = unpickle

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise RecordDecodeError(f"truncated: {size} bytes needed at byte {self.pos}")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def unpack(self, layout: struct.Struct) -> tuple[Any, ...]:
        values = layout.unpack_from(self.data, self.pos)
        self.pos += layout.size
        return values

    def sized(self) -> bytes:
        """Read a u32-length-prefixed byte string."""
        data, pos = self.data, self.pos
        (size,) = _U32.unpack_from(data, pos)
        start = pos + 4
        end = start + size
        if end > len(data):
            raise RecordDecodeError(f"truncated: {size} bytes needed at byte {start}")
        self.pos = end
        return data[start:end]

    def text(self) -> str:
        # Inlined sized(): names are read several times per run, so replay spends its
        # time here.
        data, pos = self.data, self.pos
        (size,) = _U32.unpack_from(data, pos)
        start = pos + 4
        end = start + size
        if end > len(data):
            raise RecordDecodeError(f"truncated: {size} bytes needed at byte {start}")
        self.pos = end
        return data[start:end].decode("utf-8", "surrogatepass")

    def count(self, min_size: int) -> int:
        """Read a count, refusing counts the remaining bytes cannot hold."""
        (count,) = _U32.unpack_from(self.data, self.pos)
        self.pos += 4
        if count * min_size > len(self.data) - self.pos:
            raise RecordDecodeError(f"a count of {count} at byte {self.pos - 4} is too large")
        return count

    def slot(self) -> Any:
        tag = self.data[self.pos]
        self.pos += 1
        if tag == 0x4E:  # N
            return None
        if tag == 0x6E:  # n
            return NOT_LOADED
        if tag == 0x76:  # v
            return loads(self.sized())
        if tag == 0x70:  # p
            # Only slots written for Pickle leaves carry this tag (the journal is the
            # writer's own file, protected by checksums, like the HDF5 file it repairs).
            return self.unpickle(self.sized())
        raise RecordDecodeError(f"unknown value tag {tag:#04x} at byte {self.pos - 1}")

    def map(self) -> dict[str, Any]:
        return {self.text(): self.slot() for _ in range(self.count(5))}

    def leaf(self) -> LeafRecord:
        flags = self.data[self.pos]
        self.pos += 1
        if flags & ~(_PER_RUN | _PICKLED | _EXPLORED):
            raise RecordDecodeError(f"unknown leaf flags {flags:#04x} at byte {self.pos - 1}")
        path = self.text()
        leaf_class = self.text()
        comment = self.text()
        annotations = self.map()
        default = self.slot()
        explored = None
        if flags & _EXPLORED:
            explored = [self.slot() for _ in range(self.count(1))]
        return LeafRecord(
            path=path,
            leaf_class=leaf_class,
            comment=comment,
            annotations=annotations,
            per_run=bool(flags & _PER_RUN),
            pickled=bool(flags & _PICKLED),
            default=default,
            explored=explored,
            items=self.map(),
        )

    def run(self) -> RunRecord:
        (
            idx,
            status,
            attempt,
            start,
            finish,
            pid,
            id_size,
            host_size,
            log_size,
            has_failure,
            n_leaves,
            n_values,
        ) = self.unpack(_RUN_HEAD)
        point_id = self.take(id_size)
        host = str(self.take(host_size), "utf-8", "surrogatepass")
        log = str(self.take(log_size), "utf-8", "surrogatepass")
        failure = None
        if has_failure > 1:
            raise RecordDecodeError(f"bad failure flag {has_failure} in run {idx}")
        if has_failure:
            failure_idx, failure_attempt = self.unpack(_FAILURE_HEAD)
            failure = FailureRecord(
                idx=failure_idx,
                attempt=failure_attempt,
                exc_type=self.text(),
                message=self.text(),
                traceback=self.text(),
                log=self.text(),
            )
        leaves = [self.leaf() for _ in range(n_leaves)]
        values = {}
        for _ in range(n_values):
            # Separate statements: an assignment evaluates its value before its target.
            key = (self.text(), self.text())
            values[key] = self.slot()
        if len(values) != n_values:
            raise RecordDecodeError(f"run {idx} holds an item twice")
        return RunRecord(
            idx=idx,
            point_id=point_id,
            status=status,
            attempt=attempt,
            start=start,
            finish=finish,
            host=host,
            pid=pid,
            values=values,
            leaves=leaves,
            failure=failure,
            log=log,
        )

    def definition(self) -> StudyDefinition:
        name = self.text()
        comment = self.text()
        created, n_runs = self.unpack(_DEF_HEAD)
        provenance = self.map()
        groups = [
            GroupRecord(path=self.text(), comment=self.text(), annotations=self.map())
            for _ in range(self.count(12))
        ]
        leaves = [self.leaf() for _ in range(self.count(22))]
        links = [
            LinkRecord(path=self.text(), target=self.text(), comment=self.text())
            for _ in range(self.count(12))
        ]
        count, width = self.unpack(_TWO_U32)
        if width == _VARIABLE_WIDTH:
            if count * 4 > len(self.data) - self.pos:
                raise RecordDecodeError(f"a count of {count} point ids is too large")
            point_ids = [self.sized() for _ in range(count)]
        elif width == 0:
            raise RecordDecodeError("point ids of width 0 are never written back to back")
        else:
            block = self.take(count * width)
            point_ids = [block[i : i + width] for i in range(0, count * width, width)]
        return StudyDefinition(
            name=name,
            comment=comment,
            created=created,
            provenance=provenance,
            groups=groups,
            leaves=leaves,
            links=links,
            n_runs=n_runs,
            point_ids=point_ids,
        )


def _decode(
    data: bytes | bytearray | memoryview,
    what: str,
    read: Any,
    unpickle: Callable[[bytes], Any] = pickle.loads,
) -> Any:
    """Check the version byte, run ``read`` on a reader, and insist on using every byte."""
    buf = data if type(data) is bytes else bytes(data)
    if not buf:
        raise RecordDecodeError(f"cannot decode {what}: no bytes")
    if buf[0] != RECORD_FORMAT_VERSION:
        raise RecordDecodeError(
            f"cannot decode {what}: record format version {buf[0]} is not known to this "
            f"pytraj (it reads version {RECORD_FORMAT_VERSION}); a newer pytraj may read it"
        )
    reader = _Reader(buf, 1, unpickle)
    try:
        result = read(reader)
    except RecordDecodeError as exc:
        raise RecordDecodeError(f"cannot decode {what}: {exc}") from None
    except ValueDecodeError as exc:
        raise RecordDecodeError(
            f"cannot decode {what}: a value before byte {reader.pos}: {exc}"
        ) from None
    except (struct.error, IndexError, UnicodeDecodeError, OverflowError, MemoryError) as exc:
        raise RecordDecodeError(
            f"cannot decode {what}: malformed near byte {reader.pos} ({type(exc).__name__})"
        ) from exc
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise RecordDecodeError(
            f"cannot decode {what}: a pickled value near byte {reader.pos} does not unpickle "
            f"({type(exc).__name__}: {exc}); the class it needs must be importable"
        ) from exc
    if reader.pos != len(buf):
        raise RecordDecodeError(f"cannot decode {what}: {len(buf) - reader.pos} bytes left over")
    return result


def decode_run(data: bytes | bytearray | memoryview) -> RunRecord:
    """Decode a run record written by :func:`encode_run`.

    Raises
    ------
    RecordDecodeError
        A ``ValueError``: the bytes are truncated, damaged, or of a newer format.
    """
    result: RunRecord = _decode(data, "a run record", _Reader.run)
    return result


def decode_runs(
    data: bytes | bytearray | memoryview, unpickle: Callable[[bytes], Any] = pickle.loads
) -> list[RunRecord]:
    """Decode run records written by :func:`encode_runs`, in order.

    ``unpickle`` turns the bytes of a Pickle leaf's value into what the record holds
    (a reader that must not unpickle passes a function that defers it).
    """

    def read(reader: _Reader) -> list[RunRecord]:
        return [reader.run() for _ in range(reader.count(_RUN_HEAD.size))]

    result: list[RunRecord] = _decode(data, "run records", read, unpickle)
    return result


def decode_definition(
    data: bytes | bytearray | memoryview, unpickle: Callable[[bytes], Any] = pickle.loads
) -> StudyDefinition:
    """Decode a study definition written by :func:`encode_definition` (``unpickle``: as
    for :func:`decode_runs`)."""
    result: StudyDefinition = _decode(data, "a study definition", _Reader.definition, unpickle)
    return result
