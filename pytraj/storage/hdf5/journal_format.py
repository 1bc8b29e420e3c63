"""The on-disk format of the write-ahead journal, and reading it back.

The writer side is :class:`pytraj.storage.hdf5.journal.Journal`, which re-exports what
this module offers; import from there.

Format (version 2)
------------------
Little-endian throughout. A header, then frames, each appended with one ``os.writev``::

    header  8s magic b"\\x89PTJRNL\\n", H version, H flags (0), I body length,
            body: d created (UTC epoch seconds), 16s random journal id,
                  I length + the data file's absolute path (file system encoding),
            I crc32 of everything before it
    frame   I payload length, I crc32 (of the length, kind and payload), B kind, payload

The magic, version, flags and body length keep their place in every future version, so
that a newer journal is recognised and refused with a clear message. Frame kinds and
their payloads (records encoded by :mod:`pytraj.storage.recordcodec`)::

    1 definition   I length + UTF-8 trajectory name, encode_definition(...)
    2 runs         I length + UTF-8 trajectory name, encode_runs(...)
    3 checkpoint   d time: the data file held everything before this frame
    4 provenance   I length + UTF-8 trajectory name, encode_definition(...) of a
                   definition holding only the name and the new provenance: it replaces
                   the provenance of the trajectory's latest definition frame, which
                   comes before it in the same journal (version 2 on)

A reader refuses a journal of a newer version than its own with a clear message, and a
writer writes its own version: version 1 readers refuse version 2 journals, which may
hold provenance frames they do not know.

A kill can tear only the frame being appended, so a last frame that is incomplete or
fails its checksum is ignored (``torn_tail``); a bad frame followed by more data is damage and
raises :class:`~pytraj.errors.FileFormatError`. Limit: a damaged length field that
points past the end of the file cannot be told apart from a torn last write, so the
frames after it would be dropped as a torn tail.
"""

from __future__ import annotations

import os
import pickle
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from pytraj.errors import FileFormatError, StorageError
from pytraj.storage.hdf5.layout import JOURNAL_SUFFIX, journal_path_for
from pytraj.storage.recordcodec import (
    RecordDecodeError,
    decode_definition,
    decode_runs,
    encode_definition,
)
from pytraj.storage.records import RunRecord, StudyDefinition

__all__ = [
    "CHECKPOINT",
    "DEFINITION",
    "JOURNAL_FORMAT_VERSION",
    "JOURNAL_SUFFIX",
    "OUT_OF_LINE_BYTES",
    "PROVENANCE",
    "PROVENANCE_VERSION",
    "RUNS",
    "JournalContents",
    "JournalEntry",
    "JournalHeader",
    "JournalScan",
    "JournalTrajectory",
    "checkpoint_payload",
    "decode_entry",
    "encode_frame",
    "encode_header",
    "frame_parts",
    "iter_frames",
    "iter_journal",
    "journal_path_for",
    "move_aside_hint",
    "name_chunk",
    "provenance_body",
    "read_journal",
]

JOURNAL_FORMAT_VERSION = 2
#: Frame kinds.
DEFINITION, RUNS, CHECKPOINT, PROVENANCE = 1, 2, 3, 4
_KINDS = frozenset([DEFINITION, RUNS, CHECKPOINT, PROVENANCE])
#: The first format version with provenance frames.
PROVENANCE_VERSION = 2

_MAGIC = b"\x89PTJRNL\n"  # PNG-style: a high byte and a newline catch text-mode mangling
_HEAD = struct.Struct("<8sHHI")
_BODY = struct.Struct("<d16s")
_U32 = struct.Struct("<I")
_F64 = struct.Struct("<d")
_FRAME = struct.Struct("<IIB")
_LENGTH_AND_KIND = struct.Struct("<IB")
_MAX_FRAME_PAYLOAD = (1 << 32) - 1
#: Array data at least this long is written to the journal from the array's own buffer.
OUT_OF_LINE_BYTES = 1 << 16
# A header body holds a path; anything longer than this is a damaged length field, not a
# header whose writing was cut short.
_MAX_BODY = 1 << 16


@dataclass(frozen=True, slots=True)
class JournalHeader:
    """What a journal says about itself: format version, data file, creation stamp.

    ``journal_id`` is 16 random bytes: a data file may record it to recognise its own
    journal.
    """

    version: int
    data_path: Path
    created: float
    journal_id: bytes


@dataclass(slots=True)
class JournalTrajectory:
    """Everything a journal holds about one trajectory.

    Attributes
    ----------
    definition
        The latest study definition journaled (with the provenance of any provenance
        frame after it), or None.
    provenance
        The provenance of a provenance frame read without the definition frame before
        it (a read that started past it, see :func:`read_journal`'s ``start``), or None.
    runs
        Every run record, in the order journaled (a retried run appears again later).
    flushed
        How many of ``runs`` came before the last checkpoint, i.e. were already in the
        data file when it was last flushed.
    """

    name: str
    definition: StudyDefinition | None = None
    runs: list[RunRecord] = field(default_factory=list)
    flushed: int = 0
    provenance: dict[str, Any] | None = None


@dataclass(slots=True)
class JournalContents:
    """What :func:`read_journal` found.

    Attributes
    ----------
    header
        The header, or None when even the header was torn (a kill while the journal
        was created): then the journal holds nothing.
    trajectories
        Per trajectory name, in the order first seen.
    torn_tail
        Whether a torn last write (incomplete or failing its checksum) was ignored.
    valid_size
        Bytes up to the end of the last good frame; appending continues there.
    damaged_at
        Offset of a damaged frame followed by more data (only with ``salvage=True``).
    """

    path: Path
    header: JournalHeader | None
    trajectories: dict[str, JournalTrajectory] = field(default_factory=dict)
    torn_tail: bool = False
    valid_size: int = 0
    damaged_at: int | None = None

    @property
    def definitions(self) -> dict[str, StudyDefinition]:
        """The latest definition per trajectory name (trajectories that have one)."""
        return {
            name: entry.definition
            for name, entry in self.trajectories.items()
            if entry.definition is not None
        }

    @property
    def runs(self) -> dict[str, list[RunRecord]]:
        """Every run record per trajectory name, in the order journaled."""
        return {name: entry.runs for name, entry in self.trajectories.items()}


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One frame, decoded (``records`` is empty unless ``kind`` is :data:`RUNS`,
    ``provenance`` None unless it is :data:`PROVENANCE`)."""

    offset: int
    kind: int
    name: str = ""
    definition: StudyDefinition | None = None
    records: list[RunRecord] = field(default_factory=list)
    provenance: dict[str, Any] | None = None


@dataclass(slots=True)
class JournalScan:
    """How far reading got: the header, the end of the last good frame, why it stopped."""

    header: JournalHeader | None = None
    valid_size: int = 0
    torn_tail: bool = False
    damaged_at: int | None = None


# -- encoding -------------------------------------------------------------------------------


def encode_header(header: JournalHeader) -> bytes:
    """Return the header bytes that start a journal."""
    raw_path = os.fsencode(os.path.abspath(header.data_path))
    body = _BODY.pack(header.created, header.journal_id) + _U32.pack(len(raw_path)) + raw_path
    head = _HEAD.pack(_MAGIC, header.version, 0, len(body)) + body
    return head + _U32.pack(zlib.crc32(head))


def name_chunk(traj_name: str) -> bytes:
    """Return the trajectory-name prefix of a definition or runs payload."""
    raw = traj_name.encode("utf-8", "surrogatepass")
    return _U32.pack(len(raw)) + raw


def frame_parts(kind: int, chunks: Sequence[Any]) -> tuple[list[Any], int]:
    """Return one frame as buffers to write in order, and its size in bytes.

    ``chunks`` are the payload's bytes and memoryviews. Small chunks are joined; a
    memoryview of at least :data:`OUT_OF_LINE_BYTES` (a large array's data) is passed
    on as it is, so that writing it to the journal copies it only into the page cache.
    ``b"".join`` of the buffers is the frame.
    """
    if memoryview in map(type, chunks):
        parts: list[Any] = []
        small: list[Any] = []
        for chunk in chunks:
            if type(chunk) is memoryview and chunk.nbytes >= OUT_OF_LINE_BYTES:
                if small:
                    parts.append(b"".join(small))
                    small = []
                parts.append(chunk)
            else:
                small.append(chunk)
        if small:
            parts.append(b"".join(small))
    else:
        parts = [b"".join(chunks)]
    length = sum(len(part) if type(part) is bytes else part.nbytes for part in parts)
    if length > _MAX_FRAME_PAYLOAD:
        raise StorageError(
            f"one journal frame holds at most {_MAX_FRAME_PAYLOAD:,} bytes, and this batch "
            f"of records needs {length:,}; store values this large in several results"
        )
    crc = zlib.crc32(_LENGTH_AND_KIND.pack(length, kind))
    for part in parts:
        crc = zlib.crc32(part, crc)
    return [_FRAME.pack(length, crc, kind), *parts], _FRAME.size + length


def encode_frame(kind: int, chunks: list[bytes]) -> bytes:
    """Return one frame holding the concatenated ``chunks`` as its payload."""
    return b"".join(frame_parts(kind, chunks)[0])


def checkpoint_payload(stamp: float) -> bytes:
    """Return the payload of a checkpoint frame."""
    return _F64.pack(stamp)


def provenance_body(traj_name: str, provenance: dict[str, Any]) -> bytes:
    """Return the payload of a provenance frame after its name chunk: a definition
    holding only the name and ``provenance`` (small, whatever the study's size)."""
    return encode_definition(StudyDefinition(traj_name, provenance=provenance))


# -- reading --------------------------------------------------------------------------------


def move_aside_hint(path: Path) -> str:
    """The way out when a journal cannot be used: open the data file without it."""
    data = path.name.removesuffix(JOURNAL_SUFFIX) if path.name.endswith(JOURNAL_SUFFIX) else ""
    target = f"the data file {data!r}" if data else "the data file"
    return f"move the journal aside to open {target} without it"


def _read_header(stream: BinaryIO, path: Path, size: int) -> tuple[JournalHeader | None, int]:
    """Read and check the header; return it (None if torn) and where the frames start."""
    head = stream.read(_HEAD.size)
    magic = head[: len(_MAGIC)]
    if magic != _MAGIC[: len(magic)]:
        raise FileFormatError(
            f"{path} is not a pytraj journal (it does not start with the journal "
            f"signature); {move_aside_hint(path)}"
        )
    if len(head) < _HEAD.size:
        return None, 0  # the kill came while the journal was being created
    _, version, flags, body_size = _HEAD.unpack(head)
    end = _HEAD.size + body_size + _U32.size
    if end > size and body_size <= _MAX_BODY:
        return None, 0
    body = stream.read(body_size) if body_size <= _MAX_BODY else b""
    crc = stream.read(_U32.size)
    if len(crc) < _U32.size or zlib.crc32(body, zlib.crc32(head)) != _U32.unpack(crc)[0]:
        raise FileFormatError(
            f"the header of the journal {path} is damaged (checksum mismatch); "
            f"{move_aside_hint(path)} (runs journaled since its last flush are then lost)"
        )
    if version > JOURNAL_FORMAT_VERSION:
        raise FileFormatError(
            f"the journal {path} has format version {version}, newer than this pytraj "
            f"reads ({JOURNAL_FORMAT_VERSION}); open the file with the pytraj that wrote it"
        )
    if version < 1 or flags != 0 or body_size < _BODY.size + _U32.size:
        raise FileFormatError(f"the header of the journal {path} is malformed")
    created, journal_id = _BODY.unpack_from(body)
    (path_size,) = _U32.unpack_from(body, _BODY.size)
    if _BODY.size + _U32.size + path_size != body_size:
        raise FileFormatError(f"the header of the journal {path} is malformed")
    raw_path = body[_BODY.size + _U32.size :]
    return JournalHeader(version, Path(os.fsdecode(raw_path)), created, journal_id), end


def _open_for_reading(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise StorageError(f"no journal at {path}") from None
    except OSError as exc:
        raise StorageError(f"cannot read the journal {path}: {exc.strerror}") from exc


def iter_frames(
    journal_path: str | os.PathLike[str],
    scan: JournalScan,
    *,
    salvage: bool = False,
    start: int = 0,
) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(offset, kind, payload)`` of every good frame, checksums checked.

    ``scan`` is filled on the way: the header first (None when torn: then nothing is
    yielded), and when the iteration ends, the end of the last good frame and whether a
    torn tail (or, with ``salvage``, damage) stopped it. With ``start`` (the offset of a
    frame, e.g. where the journal ended at the data file's last flush) the frames before
    it are skipped unread.

    Raises
    ------
    FileFormatError
        For a bad header, or a bad frame followed by more data (unless ``salvage``).
    """
    path = Path(journal_path)
    with _open_for_reading(path) as stream:
        size = os.fstat(stream.fileno()).st_size
        scan.header, offset = _read_header(stream, path, size)
        scan.valid_size = offset
        if scan.header is None:
            scan.torn_tail = True
            return
        if start > offset:
            if start > size:
                raise FileFormatError(
                    f"the journal {path} ends at byte {size}, before byte {start} where "
                    f"reading was to start; {move_aside_hint(path)}"
                )
            stream.seek(start)
            offset = scan.valid_size = start
        number = 0
        while offset < size:
            head = stream.read(_FRAME.size)
            if len(head) < _FRAME.size:
                scan.torn_tail = True
                return
            length, crc, kind = _FRAME.unpack(head)
            end = offset + _FRAME.size + length
            if end > size:
                scan.torn_tail = True  # a torn last write (or a damaged length: see above)
                return
            payload = stream.read(length)
            if len(payload) < length:  # the file shrank while we read it
                scan.torn_tail = True
                return
            good = zlib.crc32(payload, zlib.crc32(_LENGTH_AND_KIND.pack(length, kind))) == crc
            if not good and end == size:
                scan.torn_tail = True
                return
            if not good or kind not in _KINDS:
                if salvage:
                    scan.damaged_at = offset
                    return
                reason = "checksum mismatch" if not good else f"unknown frame kind {kind}"
                raise FileFormatError(
                    f"the journal {path} is damaged at byte {offset} (frame {number}: "
                    f"{reason}), with {size - end} more bytes after it; read the frames "
                    f"before it with read_journal(path, salvage=True), or "
                    f"{move_aside_hint(path)}"
                )
            yield offset, kind, payload
            offset = scan.valid_size = end
            number += 1


def decode_entry(
    path: Path,
    offset: int,
    kind: int,
    payload: bytes,
    unpickle: Callable[[bytes], Any] = pickle.loads,
) -> JournalEntry:
    """Decode one frame's payload (``unpickle``: see :func:`read_journal`).

    Raises
    ------
    FileFormatError
        When a frame with a good checksum does not decode (an incompatible writer).
    """
    try:
        if kind == CHECKPOINT:
            _F64.unpack(payload)
            return JournalEntry(offset, kind)
        (size,) = _U32.unpack_from(payload)
        if 4 + size > len(payload):
            raise RecordDecodeError("the trajectory name is truncated")
        name = str(payload[4 : 4 + size], "utf-8", "surrogatepass")
        body = payload[4 + size :]
        if kind == DEFINITION:
            return JournalEntry(offset, kind, name, definition=decode_definition(body, unpickle))
        if kind == PROVENANCE:
            provenance = decode_definition(body, unpickle).provenance
            return JournalEntry(offset, kind, name, provenance=provenance)
        return JournalEntry(offset, kind, name, records=decode_runs(body, unpickle))
    except (RecordDecodeError, struct.error, UnicodeDecodeError) as exc:
        raise FileFormatError(
            f"the frame at byte {offset} of the journal {path} has a good checksum but does "
            f"not decode ({exc}); it was written by an incompatible pytraj: "
            f"{move_aside_hint(path)}"
        ) from exc


def iter_journal(
    journal_path: str | os.PathLike[str], *, salvage: bool = False
) -> Iterator[JournalEntry]:
    """Yield every good frame of a journal, decoded, one at a time.

    For replaying journals too big to hold in memory at once; :func:`read_journal`
    collects the same entries. A torn tail is skipped silently here.
    """
    path = Path(journal_path)
    for offset, kind, payload in iter_frames(path, JournalScan(), salvage=salvage):
        yield decode_entry(path, offset, kind, payload)


def read_journal(
    journal_path: str | os.PathLike[str],
    *,
    salvage: bool = False,
    start: int = 0,
    unpickle: Callable[[bytes], Any] = pickle.loads,
) -> JournalContents:
    """Read a journal: per trajectory the latest definition and every run record.

    Parameters
    ----------
    journal_path
        The journal (see :func:`journal_path_for`).
    salvage
        Stop at a damaged frame in the middle instead of raising, and report its offset
        in :attr:`JournalContents.damaged_at` (what follows it is lost).
    start
        Read only the frames from this offset on (a frame's start): those the data
        file lacks when it holds everything before it.
    unpickle
        Turns the bytes of a Pickle leaf's value into the value records hold (a
        reader that must never unpickle passes one that defers it).

    Returns
    -------
    JournalContents
        With ``torn_tail`` set when a torn last write was ignored.

    Raises
    ------
    FileFormatError
        When the file is not a journal, is of a newer format, or is damaged before its
        last frame.
    StorageError
        When the journal does not exist or cannot be read.
    """
    path = Path(journal_path)
    scan = JournalScan()
    trajectories: dict[str, JournalTrajectory] = {}
    for offset, kind, payload in iter_frames(path, scan, salvage=salvage, start=start):
        entry = decode_entry(path, offset, kind, payload, unpickle)
        if kind == CHECKPOINT:
            for seen in trajectories.values():
                seen.flushed = len(seen.runs)
            continue
        trajectory = trajectories.get(entry.name)
        if trajectory is None:
            trajectory = trajectories[entry.name] = JournalTrajectory(entry.name)
        if kind == DEFINITION:
            trajectory.definition = entry.definition
            trajectory.provenance = None
        elif kind == PROVENANCE:
            assert entry.provenance is not None
            if trajectory.definition is not None:
                trajectory.definition = replace(trajectory.definition, provenance=entry.provenance)
            else:
                trajectory.provenance = entry.provenance
        else:
            trajectory.runs.extend(entry.records)
    return JournalContents(
        path=path,
        header=scan.header,
        trajectories=trajectories,
        torn_tail=scan.torn_tail,
        valid_size=scan.valid_size,
        damaged_at=scan.damaged_at,
    )
