"""The write-ahead journal: format, torn tails, damage, reopening, and real kills."""

from __future__ import annotations

import os
import random
import re
import signal
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest

from pytraj.errors import FileFormatError, StorageError, UnsupportedValueError
from pytraj.storage.hdf5.journal import (
    CHECKPOINT,
    DEFINITION,
    RUNS,
    Journal,
    iter_journal,
    journal_path_for,
    read_journal,
)
from pytraj.storage.hdf5.journal_format import (
    OUT_OF_LINE_BYTES,
    encode_frame,
    frame_parts,
    name_chunk,
)
from pytraj.storage.recordcodec import encode_run, encode_runs, encode_runs_into
from pytraj.storage.records import (
    FAILED,
    FailureRecord,
    GroupRecord,
    LeafRecord,
    RunRecord,
    StudyDefinition,
)

pytestmark = pytest.mark.storage

HEADER_FIXED = 8 + 2 + 2 + 4  # magic, version, flags, body length
TESTS = Path(__file__).resolve().parent


def child_env() -> dict[str, str]:
    """Environment for child scripts: pytraj (from this checkout) and this module importable."""
    paths = [str(TESTS.parent), str(TESTS), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}


def batch_records(batch: int, size: int = 3, big: int = 0) -> list[RunRecord]:
    """Deterministic run records of one batch (the killed child builds the same ones)."""
    records = []
    for position in range(size):
        idx = batch * size + position
        values: dict[tuple[str, str], object] = {
            ("results.z", "z"): idx * 0.5,
            ("results.stats", "label"): f"run {idx}",
            ("results.stats", "trace"): np.arange(idx % 5, dtype=np.int32),
        }
        if big:
            values[("results.big", "big")] = np.full(big, float(idx))
        records.append(
            RunRecord(
                idx=idx,
                point_id=idx.to_bytes(16, "little"),
                attempt=1,
                start=1000.0 + idx,
                finish=1000.5 + idx,
                host="node-1",
                pid=4000 + batch,
                values=values,
                leaves=[
                    LeafRecord(
                        path="results.z", leaf_class="Result", per_run=True, items={"z": None}
                    )
                ],
            )
        )
    return records


def same_records(actual: list[RunRecord], expected: list[RunRecord]) -> bool:
    """Exact equality through the (deterministic, exact) record encoding."""
    return [encode_run(record) for record in actual] == [encode_run(record) for record in expected]


def definition(name: str = "mult", comment: str = "first") -> StudyDefinition:
    return StudyDefinition(
        name=name,
        comment=comment,
        created=1.5,
        provenance={"python": "3.11", "argv": ["run.py", "-v"]},
        groups=[GroupRecord("parameters"), GroupRecord("results", annotations={"unit": "mV"})],
        leaves=[
            LeafRecord("parameters.x", "Parameter", default=1.0, explored=[1.0, 2.0]),
            LeafRecord(
                "results.obj", "PickleResult", per_run=True, pickled=True, items={"o": None}
            ),
        ],
        n_runs=2,
        point_ids=[b"\x01" * 16, b"\x02" * 16],
    )


@pytest.fixture
def data_path(tmp_path: Path) -> Path:
    return tmp_path / "study.h5"


def write_journal(data_path: Path) -> tuple[Path, list[int]]:
    """A journal of a definition and two run batches; returns it and each frame's end."""
    path = journal_path_for(data_path)
    ends = []
    with Journal.create(path, data_path) as journal:
        ends.append(journal.size)
        journal.append_definition("mult", definition())
        ends.append(journal.size)
        journal.append_runs("mult", batch_records(0))
        ends.append(journal.size)
        journal.append_runs("mult", batch_records(1))
        ends.append(journal.size)
        journal.sync()
    return path, ends


# -- basics ---------------------------------------------------------------------------------


def test_journal_path_is_beside_the_data_file(tmp_path: Path) -> None:
    assert journal_path_for(tmp_path / "out" / "study.h5") == tmp_path / "out" / "study.h5.journal"
    assert journal_path_for("study.h5") == Path("study.h5.journal")


def test_written_journal_reads_back_exactly(data_path: Path) -> None:
    path, ends = write_journal(data_path)
    contents = read_journal(path)
    assert contents.header is not None
    assert contents.header.data_path == data_path.resolve()
    assert contents.header.version == 2
    assert len(contents.header.journal_id) == 16
    assert contents.torn_tail is False
    assert contents.valid_size == ends[-1] == path.stat().st_size
    assert list(contents.trajectories) == ["mult"]
    stored = contents.definitions["mult"]
    assert (stored.name, stored.comment, stored.n_runs) == ("mult", "first", 2)
    assert stored.provenance == {"python": "3.11", "argv": ["run.py", "-v"]}
    assert stored.leaves[0].explored == [1.0, 2.0]
    assert stored.groups[1].annotations == {"unit": "mV"}
    assert same_records(contents.runs["mult"], batch_records(0) + batch_records(1))
    assert [record.idx for record in contents.runs["mult"]] == [0, 1, 2, 3, 4, 5]


def test_trajectories_are_kept_apart_and_the_latest_definition_wins(data_path: Path) -> None:
    path = journal_path_for(data_path)
    retry = RunRecord(idx=1, point_id=b"\x02" * 16, attempt=2)
    failed = RunRecord(
        idx=1,
        point_id=b"\x02" * 16,
        status=FAILED,
        failure=FailureRecord(idx=1, attempt=1, exc_type="E", message="m", traceback="t"),
    )
    with Journal.create(path, data_path) as journal:
        journal.append_definition("a", definition("a", "old"))
        journal.append_runs("a", [failed])
        journal.append_definition("b", definition("b"))
        journal.append_runs("b", batch_records(4))
        journal.append_definition("a", definition("a", "new"))
        journal.append_runs("a", [retry])
        journal.append_runs("a", [])  # nothing to write
    contents = read_journal(path)
    assert list(contents.trajectories) == ["a", "b"]
    assert contents.definitions["a"].comment == "new"
    assert contents.runs["a"] == [failed, retry]
    assert same_records(contents.runs["b"], batch_records(4))
    kinds = [entry.kind for entry in iter_journal(path)]
    assert kinds == [DEFINITION, RUNS, DEFINITION, RUNS, DEFINITION, RUNS]


def test_checkpoints_count_the_runs_already_in_the_data_file(data_path: Path) -> None:
    path = journal_path_for(data_path)
    with Journal.create(path, data_path) as journal:
        journal.append_runs("a", batch_records(0))
        journal.append_checkpoint()
        journal.append_runs("a", batch_records(1))
        journal.append_runs("b", batch_records(2))
    contents = read_journal(path)
    assert (len(contents.runs["a"]), contents.trajectories["a"].flushed) == (6, 3)
    assert contents.trajectories["b"].flushed == 0
    assert [entry.kind for entry in iter_journal(path)] == [RUNS, CHECKPOINT, RUNS, RUNS]


def test_pickle_leaves_from_the_definition_are_pickled_even_after_reopening(
    data_path: Path,
) -> None:
    path = journal_path_for(data_path)
    plain = RunRecord(idx=0, point_id=bytes(16), values={("results.obj", "o"): {1, 2}})
    with Journal.create(path, data_path) as journal:
        with pytest.raises(UnsupportedValueError, match=r"results\.obj\.o"):
            journal.append_runs("mult", [plain])
        journal.append_definition("mult", definition())
        journal.append_runs("mult", [plain])
    with Journal.open(path) as journal:
        journal.append_runs("mult", [RunRecord(idx=1, point_id=bytes(16), values=plain.values)])
    assert [record.values for record in read_journal(path).runs["mult"]] == [plain.values] * 2


def large_array_records(count: int) -> list[RunRecord]:
    """Runs whose arrays are above the journal's out-of-line size, in every memory order."""
    records = []
    for idx in range(count):
        base = np.arange(OUT_OF_LINE_BYTES // 8 + 1 + idx, dtype=np.float64) * (idx + 0.5)
        square = np.arange(200 * 60, dtype=np.int64).reshape(200, 60) + idx
        values = {
            ("results.z", "z"): base,
            ("results.f", "f"): np.asfortranarray(square),  # Fortran order
            ("results.s", "s"): base[::2],  # not contiguous
            ("results.t", "t"): float(idx),
        }
        records.append(RunRecord(idx=idx, point_id=idx.to_bytes(16, "little"), values=values))
    return records


def test_large_arrays_go_to_the_journal_uncopied_and_byte_for_byte(data_path: Path) -> None:
    # 300 runs with two out-of-line arrays each: more buffers than one writev call takes.
    records = large_array_records(300)
    path = journal_path_for(data_path)
    with Journal.create(path, data_path) as journal:
        start = journal.size
        journal.append_runs("mult", records)
        assert journal.size == path.stat().st_size
    frame = path.read_bytes()[start:]
    assert frame == encode_frame(RUNS, [name_chunk("mult"), encode_runs(records)])
    chunks: list[bytes] = []
    encode_runs_into(chunks, records[:1])
    buffers, size = frame_parts(RUNS, chunks)
    shared = [
        key
        for key, value in records[0].values.items()
        for buffer in buffers
        if type(buffer) is memoryview and np.shares_memory(np.frombuffer(buffer, np.uint8), value)
    ]
    # Written from the arrays' own memory: the C-ordered and the Fortran-ordered array.
    assert {("results.z", "z"), ("results.f", "f")} <= set(shared)
    assert size == sum(len(memoryview(buffer).cast("B")) for buffer in buffers)
    read = read_journal(path).runs["mult"]
    assert same_records(read, records)
    for got, expected in zip(read, records, strict=True):
        for key, value in expected.values.items():
            np.testing.assert_array_equal(got.values[key], value, strict=True)


def test_short_writes_are_completed(data_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write

    def short_writev(fd: int, buffers: list[bytes | memoryview]) -> int:
        # What a kernel may do on a nearly full disk: take part of the first buffer.
        first = memoryview(buffers[0]).cast("B")
        return real_write(fd, first[: max(1, len(first) // 3)])

    records = large_array_records(3)
    path = journal_path_for(data_path)
    with Journal.create(path, data_path) as journal:
        monkeypatch.setattr(os, "writev", short_writev)
        journal.append_runs("mult", records)
        monkeypatch.undo()
        journal.append_runs("mult", batch_records(0))
        assert journal.size == path.stat().st_size
    assert same_records(read_journal(path).runs["mult"], records + batch_records(0))


def test_a_failed_encoding_leaves_the_journal_unchanged(data_path: Path) -> None:
    path, ends = write_journal(data_path)
    with Journal.open(path) as journal:
        bad = RunRecord(idx=9, point_id=b"", values={("results.f", "f"): object()})
        with pytest.raises(UnsupportedValueError, match=r"run 9's item results\.f\.f"):
            journal.append_runs("mult", [*batch_records(7), bad])
        assert journal.size == ends[-1]
    assert path.stat().st_size == ends[-1]
    assert len(read_journal(path).runs["mult"]) == 6


def test_sync_puts_everything_in_the_file(data_path: Path) -> None:
    path = journal_path_for(data_path)
    journal = Journal.create(path, data_path)
    journal.append_runs("mult", batch_records(0, big=1000))
    journal.sync()
    # Read through another handle while the journal is still open.
    assert path.stat().st_size == journal.size
    assert same_records(read_journal(path).runs["mult"], batch_records(0, big=1000))
    journal.close()
    assert journal.closed
    assert repr(journal) == f"<Closed Journal {str(path)!r}>"


def test_clean_close_removes_the_journal(data_path: Path) -> None:
    path, _ = write_journal(data_path)
    journal = Journal.open(path)
    assert repr(journal).startswith(f"<Journal {str(path)!r} (")
    journal.close(remove=True)
    assert not path.exists()
    journal.close(remove=True)  # twice is fine
    with pytest.raises(StorageError, match="closed; open it again"):
        journal.append_runs("mult", batch_records(0))


# -- creating -------------------------------------------------------------------------------


def test_create_refuses_to_replace_a_journal_unless_asked(data_path: Path) -> None:
    path, _ = write_journal(data_path)
    with pytest.raises(StorageError, match=r"already exists .* overwrite=True"):
        Journal.create(path, data_path)
    assert len(read_journal(path).runs["mult"]) == 6
    with Journal.create(path, data_path, overwrite=True) as journal:
        journal.append_runs("other", batch_records(3))
    contents = read_journal(path)
    assert list(contents.trajectories) == ["other"]
    assert sorted(os.listdir(path.parent)) == [path.name]  # no temporary file left


def test_create_in_a_missing_folder_raises_a_storage_error(tmp_path: Path) -> None:
    data = tmp_path / "missing" / "study.h5"
    with pytest.raises(StorageError, match="cannot create the journal"):
        Journal.create(journal_path_for(data), data)


def test_reading_a_missing_journal_raises(data_path: Path) -> None:
    with pytest.raises(StorageError, match="no journal at"):
        read_journal(journal_path_for(data_path))


# -- torn tails -----------------------------------------------------------------------------


def test_a_torn_last_frame_is_ignored_at_every_byte(data_path: Path) -> None:
    path, ends = write_journal(data_path)
    data = path.read_bytes()
    cut_path = path.with_name("cut.journal")
    for cut in range(ends[-2], ends[-1]):
        cut_path.write_bytes(data[:cut])
        contents = read_journal(cut_path)
        assert contents.torn_tail is (cut > ends[-2]), cut
        assert contents.valid_size == ends[-2]
        assert contents.definitions["mult"].comment == "first"
        assert same_records(contents.runs["mult"], batch_records(0)), cut


def test_a_last_frame_failing_its_checksum_is_ignored(data_path: Path) -> None:
    path, ends = write_journal(data_path)
    data = bytearray(path.read_bytes())
    data[ends[-1] - 1] ^= 0xFF  # the last byte of the last frame: power-loss garbage
    path.write_bytes(data)
    contents = read_journal(path)
    assert contents.torn_tail is True
    assert same_records(contents.runs["mult"], batch_records(0))


def test_open_cuts_a_torn_tail_before_appending(data_path: Path) -> None:
    path, ends = write_journal(data_path)
    with open(path, "r+b") as stream:
        stream.truncate(ends[-1] - 7)
    with Journal.open(path) as journal:
        assert journal.size == ends[-2]
        journal.append_runs("mult", batch_records(5))
    contents = read_journal(path)
    assert contents.torn_tail is False
    assert same_records(contents.runs["mult"], batch_records(0) + batch_records(5))


def test_a_torn_header_means_an_empty_journal(data_path: Path) -> None:
    path, ends = write_journal(data_path)
    data = path.read_bytes()
    for cut in range(ends[0]):
        path.write_bytes(data[:cut])
        contents = read_journal(path)
        assert contents.header is None
        assert contents.torn_tail is True
        assert contents.trajectories == {}
        with pytest.raises(FileFormatError, match=r"no complete header .* overwrite=True"):
            Journal.open(path)
    Journal.create(path, data_path, overwrite=True).close()
    assert read_journal(path).header is not None


# -- damage ---------------------------------------------------------------------------------


@pytest.mark.parametrize("frame", [0, 1])
def test_a_damaged_frame_in_the_middle_raises(data_path: Path, frame: int) -> None:
    path, ends = write_journal(data_path)
    data = bytearray(path.read_bytes())
    data[ends[frame] + 20] ^= 0x01  # one bit inside the frame's payload
    path.write_bytes(data)
    with pytest.raises(FileFormatError, match=rf"damaged at byte {ends[frame]} \(frame {frame}"):
        read_journal(path)
    with pytest.raises(FileFormatError, match=re.escape(str(path))):
        Journal.open(path)
    salvaged = read_journal(path, salvage=True)
    assert salvaged.damaged_at == ends[frame]
    assert salvaged.valid_size == ends[frame]
    assert salvaged.runs.get("mult", []) == []
    assert ("mult" in salvaged.definitions) is (frame == 1)


def test_a_shortened_length_in_the_middle_raises(data_path: Path) -> None:
    path, ends = write_journal(data_path)
    data = bytearray(path.read_bytes())
    (length,) = struct.unpack_from("<I", data, ends[2])
    struct.pack_into("<I", data, ends[2], length - 5)
    path.write_bytes(data)
    with pytest.raises(FileFormatError, match=f"damaged at byte {ends[2]}"):
        read_journal(path)
    salvaged = read_journal(path, salvage=True)
    assert same_records(salvaged.runs["mult"], batch_records(0))


def test_a_frame_that_does_not_decode_raises(data_path: Path) -> None:
    path, _ = write_journal(data_path)
    with open(path, "ab") as stream:
        stream.write(encode_frame(RUNS, [name_chunk("mult"), b"\x01garbage"]))
    with pytest.raises(FileFormatError, match="good checksum but does not decode"):
        read_journal(path)


def test_an_unknown_frame_kind_raises(data_path: Path) -> None:
    path, _ = write_journal(data_path)
    with open(path, "ab") as stream:
        stream.write(encode_frame(99, [b"future"]))
    with pytest.raises(FileFormatError, match="unknown frame kind 99"):
        read_journal(path)


def _header(version: int, magic: bytes = b"\x89PTJRNL\n") -> bytes:
    raw_path = b"/x/study.h5"
    body = struct.pack("<d16s", 1.0, bytes(16)) + struct.pack("<I", len(raw_path)) + raw_path
    head = struct.pack("<8sHHI", magic, version, 0, len(body)) + body
    return head + struct.pack("<I", zlib.crc32(head))


def test_bad_headers_are_refused_with_the_way_out(tmp_path: Path) -> None:
    path = tmp_path / "study.h5.journal"
    path.write_bytes(b"HDF\x89 not a journal at all")
    with pytest.raises(FileFormatError, match=r"not a pytraj journal.*'study\.h5' without it"):
        read_journal(path)
    path.write_bytes(_header(3))
    with pytest.raises(FileFormatError, match="format version 3, newer than this pytraj"):
        read_journal(path)
    damaged = bytearray(_header(1))
    damaged[HEADER_FIXED + 2] ^= 0x10
    path.write_bytes(damaged)
    with pytest.raises(FileFormatError, match=r"header of the journal .* is damaged"):
        read_journal(path)
    path.write_bytes(_header(1))
    contents = read_journal(path)
    assert contents.header is not None
    assert contents.header.data_path == Path("/x/study.h5")
    assert contents.header.created == 1.0


# -- failed writes --------------------------------------------------------------------------

FULL_DISK_CHILD = textwrap.dedent(
    """
    import resource, signal, sys
    from test_journal import batch_records
    from pytraj.errors import StorageError
    from pytraj.storage.hdf5.journal import Journal

    journal = Journal.open(sys.argv[1])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death
    resource.setrlimit(resource.RLIMIT_FSIZE, (journal.size + 5000, resource.RLIM_INFINITY))
    try:
        journal.append_runs("mult", batch_records(9, big=10_000))
    except StorageError as exc:
        print("refused", journal.size, exc)
    journal.append_runs("mult", batch_records(8))  # small: fits under the limit
    journal.close()
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SIGXFSZ as on Linux")
def test_a_partial_write_is_cut_off_so_later_frames_stay_readable(
    data_path: Path, tmp_path: Path
) -> None:
    path, ends = write_journal(data_path)
    script = tmp_path / "full_disk.py"
    script.write_text(FULL_DISK_CHILD)
    result = subprocess.run(
        [sys.executable, str(script), str(path)],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.startswith(f"refused {ends[-1]} cannot append to the journal")
    contents = read_journal(path)
    assert contents.torn_tail is False
    expected = batch_records(0) + batch_records(1) + batch_records(8)
    assert same_records(contents.runs["mult"], expected)


# -- real kills -----------------------------------------------------------------------------

BIG = 50_000  # float64 values: every fifth batch is a 1.2 MB frame, so kills tear some

KILLED_CHILD = textwrap.dedent(
    f"""
    import sys
    from test_journal import batch_records
    from pytraj.storage.hdf5.journal import Journal

    journal = Journal.create(sys.argv[1], sys.argv[2])
    journal.sync()
    print("ready", flush=True)
    batch = 0
    while True:
        journal.append_runs("mult", batch_records(batch, big={BIG} if batch % 5 == 4 else 0))
        if batch % 10 == 9:
            journal.sync()
        sys.stdout.write(f"{{batch}}\\n")
        sys.stdout.flush()
        batch += 1
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_every_batch_reported_before_a_kill_is_read_back(tmp_path: Path, seed: int) -> None:
    script = tmp_path / "append_forever.py"
    script.write_text(KILLED_CHILD)
    data = tmp_path / "study.h5"
    path = journal_path_for(data)
    child = subprocess.Popen(
        [sys.executable, str(script), str(path), str(data)],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "ready\n"
    # Let it run for a random moment, without reading: the pipe buffer holds the lines.
    try:
        child.wait(timeout=random.Random(seed).uniform(0.05, 0.8))
    except subprocess.TimeoutExpired:
        os.kill(child.pid, signal.SIGKILL)
    # Read through the same buffered stream as readline (communicate would skip its buffer).
    out = child.stdout.read()
    err = child.stderr.read() if child.stderr is not None else ""
    assert child.wait(timeout=60) == -signal.SIGKILL, err
    reported = [int(line) for line in out.splitlines() if line.strip().isdigit()]
    assert reported == list(range(len(reported)))
    assert reported, "the child reported no batch before the kill"

    contents = read_journal(path)
    records = contents.runs["mult"]
    # Whole batches only, in order; every reported one is there, and at most the one
    # being written when the kill came on top.
    assert len(records) % 3 == 0
    journaled = len(records) // 3
    assert len(reported) <= journaled <= len(reported) + 1
    for batch in range(journaled):
        expected = batch_records(batch, big=BIG if batch % 5 == 4 else 0)
        assert same_records(records[batch * 3 : batch * 3 + 3], expected), batch

    # The journal continues cleanly after the kill, torn tail or not.
    with Journal.open(path) as journal:
        journal.append_runs("mult", batch_records(10_000))
    assert same_records(read_journal(path).runs["mult"][-3:], batch_records(10_000))
