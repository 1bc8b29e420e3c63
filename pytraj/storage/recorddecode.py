"""Decoding of the plain storage records that :mod:`pytraj.storage.recordcodec` encodes.

Every field comes back with its type; bytes that are truncated or damaged raise
:class:`RecordDecodeError` (a ``ValueError``) saying where. The format is described in
:mod:`pytraj.storage.recordformat`.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Callable
from typing import Any

from pytraj.storage.recordformat import (
    DEFINITION_HEAD,
    EXPLORED,
    FAILURE_HEAD,
    PER_RUN,
    PICKLED,
    RECORD_FORMAT_VERSION,
    RUN_HEAD,
    TWO_U32,
    U32,
    VARIABLE_WIDTH,
)
from pytraj.storage.records import (
    NOT_LOADED,
    FailureRecord,
    GroupRecord,
    LeafRecord,
    LinkRecord,
    RunRecord,
    StudyDefinition,
)
from pytraj.storage.valuecodec import ValueDecodeError, loads

__all__ = ["RecordDecodeError", "decode_definition", "decode_run", "decode_runs"]


class RecordDecodeError(ValueDecodeError):
    """Bytes that are not a valid encoding of storage records (truncated or damaged)."""


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
        (size,) = U32.unpack_from(data, pos)
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
        (size,) = U32.unpack_from(data, pos)
        start = pos + 4
        end = start + size
        if end > len(data):
            raise RecordDecodeError(f"truncated: {size} bytes needed at byte {start}")
        self.pos = end
        return data[start:end].decode("utf-8", "surrogatepass")

    def count(self, min_size: int) -> int:
        """Read a count, refusing counts the remaining bytes cannot hold."""
        (count,) = U32.unpack_from(self.data, self.pos)
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
        if flags & ~(PER_RUN | PICKLED | EXPLORED):
            raise RecordDecodeError(f"unknown leaf flags {flags:#04x} at byte {self.pos - 1}")
        path = self.text()
        leaf_class = self.text()
        comment = self.text()
        annotations = self.map()
        default = self.slot()
        explored = None
        if flags & EXPLORED:
            explored = [self.slot() for _ in range(self.count(1))]
        return LeafRecord(
            path=path,
            leaf_class=leaf_class,
            comment=comment,
            annotations=annotations,
            per_run=bool(flags & PER_RUN),
            pickled=bool(flags & PICKLED),
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
        ) = self.unpack(RUN_HEAD)
        point_id = self.take(id_size)
        host = str(self.take(host_size), "utf-8", "surrogatepass")
        log = str(self.take(log_size), "utf-8", "surrogatepass")
        failure = None
        if has_failure > 1:
            raise RecordDecodeError(f"bad failure flag {has_failure} in run {idx}")
        if has_failure:
            failure_idx, failure_attempt = self.unpack(FAILURE_HEAD)
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
        created, n_runs = self.unpack(DEFINITION_HEAD)
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
        count, width = self.unpack(TWO_U32)
        if width == VARIABLE_WIDTH:
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
        return [reader.run() for _ in range(reader.count(RUN_HEAD.size))]

    result: list[RunRecord] = _decode(data, "run records", read, unpickle)
    return result


def decode_definition(
    data: bytes | bytearray | memoryview, unpickle: Callable[[bytes], Any] = pickle.loads
) -> StudyDefinition:
    """Decode a study definition written by :func:`encode_definition` (``unpickle``: as
    for :func:`decode_runs`)."""
    result: StudyDefinition = _decode(data, "a study definition", _Reader.definition, unpickle)
    return result
