"""Reads cost what they read on big files: loading and one value read a bounded number of
bytes, whatever the size of the data, while another process writes the file and after.

Bytes are counted with ``rchar`` of ``/proc/self/io`` (every byte this process read
through a system call, page cache or not). The benchmark ``benchmarks/bench_big_reads.py``
shows the same at 200 MB and 2 GB, with wall times.
"""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tables

import pytraj as pt
from pytraj.errors import RecoveryWarning, RunValueMissingError
from pytraj.io import load
from pytraj.storage.hdf5 import open_new_trajectory, open_trajectory
from pytraj.storage.hdf5.layout import journal_path_for
from pytraj.testing.conformance import run_record

pytestmark = [
    pytest.mark.storage,
    pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io"),
]

ROOT = Path(pt.__file__).resolve().parents[1]
#: Bytes that loading, or reading one value, may read at most, whatever the file's size.
LIMIT = 2_000_000
#: Mean size of a run's ragged array.
RAGGED_KB = 100
#: Runs committed after the writer's last flush: in its journal only.
PENDING = 3


def values(i: int) -> tuple[np.ndarray, float, np.ndarray]:
    """Run i's ragged array (~100 KB), scalar and fixed-shape array (the writer's too)."""
    rng = np.random.default_rng(i)
    ragged = rng.random(int(RAGGED_KB * 128 * rng.uniform(0.5, 1.5)))
    return ragged, float(i), rng.random(64)


WRITER = """
import sys
import numpy as np
import pytraj as pt
from pytraj.storage.hdf5 import backend

RAGGED_KB = {ragged_kb}
{values}
# Only the byte budget and the explicit flush below write HDF5: the last runs stay in
# the journal, whatever the machine's speed.
backend.FLUSH_SECONDS = 1e9
path, flushed, pending = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
traj = pt.Trajectory("big", filename=path)
traj.add_parameter("x", 0)
traj.explore({{"x": list(range(flushed + pending))}})
for i in range(flushed + pending):
    if i == flushed:
        traj.store()
    ragged, scalar, fixed = values(i)
    with traj.start_run(i):
        traj.add_result("z", ragged)
        traj.add_result("s", scalar)
        traj.add_result("f", fixed)
print("ready", flush=True)
sys.stdin.readline()
traj.close()
print("closed", flush=True)
"""


def bytes_read() -> int:
    """Bytes this process has read through system calls so far (Linux)."""
    with open("/proc/self/io") as stream:
        for line in stream:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def counted(read: Callable[..., Any], *args: Any) -> tuple[Any, int]:
    """``read(*args)`` and the bytes it read."""
    before = bytes_read()
    value = read(*args)
    return value, bytes_read() - before


@pytest.fixture(scope="module", autouse=True)
def warm(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Import and touch every read path once, so that counts hold file reads only."""
    path = tmp_path_factory.mktemp("warm") / "warm.h5"
    traj = pt.Trajectory("warm", filename=path)
    traj.add_parameter("x", 0)
    traj.explore({"x": [0, 1, 2]})
    for i in range(2):
        ragged, scalar, fixed = values(i)
        with traj.start_run(i):
            traj.add_result("z", ragged[: 10 + i])
            traj.add_result("s", scalar)
            traj.add_result("f", fixed)
    traj.close()
    loaded = load(path)
    loaded.results.z[1], loaded.results.s[1], loaded.results.f[1]
    loaded.runs[1].results.z
    len(loaded.results.z), repr(loaded.results.z)
    with pytest.raises(RunValueMissingError):
        loaded.results.z[2]
    loaded.close()


class Writer:
    """A child process writing a study of ``flushed`` runs + ``PENDING`` journaled ones."""

    def __init__(self, path: Path, flushed: int) -> None:
        # The writer makes its values with the source of values() above: no copy to drift.
        source = inspect.getsource(values)
        code = textwrap.dedent(WRITER).format(ragged_kb=RAGGED_KB, values=source)
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, str(path), str(flushed), str(PENDING)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def expect(self, word: str) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if line != word:
            self.process.kill()
            _, err = self.process.communicate()
            raise AssertionError(f"the writer said {line!r}, not {word!r}: {err}")

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("close\n")
        self.process.stdin.flush()
        self.expect("closed")
        assert self.process.wait(timeout=60) == 0

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


@pytest.fixture(params=[500, 2000], ids=["50MB", "200MB"])
def study(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, int, Writer]]:
    """A file of ``n`` flushed runs of ~100 KB ragged arrays, its writer still running."""
    path = tmp_path / "big.h5"
    writer = Writer(path, request.param)
    try:
        writer.expect("ready")
        yield path, request.param, writer
    finally:
        writer.kill()


def check_reads(path: Path, present: list[int], missing: list[int]) -> int:
    """Load ``path`` fresh and read single values; return the most bytes one step read."""
    traj, most = counted(lambda: load(path))
    for i in present:
        ragged, scalar, fixed = values(i)
        for read, expected in [
            (lambda k: traj.results.z[k], ragged),
            (lambda k: traj.runs[k].results.z, ragged),
            (lambda k: traj.results.f[k], fixed),
        ]:
            value, used = counted(read, i)
            assert type(value) is np.ndarray
            assert np.array_equal(value, expected)
            most = max(most, used)
        value, used = counted(lambda k: traj.results.s[k], i)
        assert type(value) is float
        assert value == scalar
        most = max(most, used)
    for i in missing:
        with pytest.raises(RunValueMissingError, match=f"run {i} has no value"):
            traj.results.z[i]
    # How many runs have a value: where the values are, not the values.
    (length, shown), used = counted(lambda: (len(traj.results.z), repr(traj.results.z)))
    assert length == len(traj) - len(missing)
    assert f"{length} of {len(traj)} runs" in shown
    most = max(most, used)
    traj.close()
    return most


@pytest.mark.slow
def test_load_and_one_value_read_little_while_written_and_after(
    study: tuple[Path, int, Writer],
) -> None:
    path, n, writer = study
    size = path.stat().st_size
    assert size > n * RAGGED_KB * 1000 * 0.9  # the ragged arrays are in the file
    journal = journal_path_for(path)
    assert journal.stat().st_size > size  # the writer holds a journal of every run

    pending = list(range(n, n + PENDING))
    # While another process writes: what it flushed reads, what it only journaled does
    # not, and the journal is not read (it alone is larger than the limit many times).
    most = check_reads(path, present=[0, n // 2, n - 1], missing=pending)
    assert most < LIMIT, most
    assert journal.exists()

    writer.close()
    assert not journal.exists()
    most = check_reads(path, present=[0, n // 2, n - 1, *pending], missing=[])
    assert most < LIMIT, most


@pytest.mark.slow
def test_opening_after_the_writer_was_killed_reads_only_what_the_file_lacks(
    study: tuple[Path, int, Writer],
) -> None:
    path, n, writer = study
    writer.process.kill()
    writer.kill()
    journal = journal_path_for(path)
    assert journal.stat().st_size > 20 * LIMIT
    pending = list(range(n, n + PENDING))
    # The journal's frames up to the last flush are in the file: only the rest is read
    # and replayed, not the whole journal of every run.
    with pytest.warns(RecoveryWarning, match=f"replayed {PENDING} runs"):
        traj, used = counted(load, path)
    assert used < LIMIT, used
    assert len(traj) == n + PENDING
    traj.close()
    most = check_reads(path, present=[0, n - 1, *pending], missing=[])
    assert most < LIMIT, most
    # Opened again: nothing left to replay, the journal is not read at all.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, used = counted(load, path)
    assert used < LIMIT, used


def test_ragged_float_arrays_go_to_an_uncompressed_heap(tmp_path: Path) -> None:
    # Compressing them gains a few percent and made each 64 MB flush take seconds, while
    # the writer holds the file and readers wait for it.
    path = tmp_path / "heaps.h5"
    traj = pt.Trajectory("heaps", filename=path)
    traj.add_parameter("x", 0)
    traj.explore({"x": [0, 1, 2]})
    for i in range(3):
        ragged = values(i)[0]
        with traj.start_run(i):
            traj.add_result("z", ragged[: 1000 * (i + 1)])  # overflow heap after run 0
            traj.add_result("parts", [ragged[:500], ragged[500:1000]])  # an encoded heap
            traj.add_result("text", "a line of text that repeats. " * 500)
    traj.close()
    with tables.open_file(str(path)) as f:
        assert f.get_node("/heaps/results/z/z/overflow").filters.complevel == 0
        assert f.get_node("/heaps/results/parts/parts/values").filters.complevel == 0
        text = f.get_node("/heaps/results/text/text/values")
        assert text.filters.complevel > 0  # text still compresses
        assert text.size_on_disk < text.nrows / 2
    loaded = load(path)
    assert np.array_equal(loaded.results.z[2], values(2)[0][:3000])
    assert np.array_equal(loaded.results.parts[1][1], values(1)[0][500:1000])
    assert loaded.results.text[0] == "a line of text that repeats. " * 500


# -- one run's row: one element of the column's run -> row index ---------------------------

N_SHUFFLED = 2_000
ROUNDS = 60


def test_one_value_reads_one_index_element_not_the_cells(tmp_path: Path) -> None:
    # Every run committed 60 times in a random order: 120,000 cells in no order, where
    # the latest of each run wins.
    path = tmp_path / "retried.h5"
    storage = open_new_trajectory(path, "retried")
    rng = np.random.default_rng(7)
    for round_ in range(ROUNDS):
        order = rng.permutation(N_SHUFFLED)
        storage.commit_runs([run_record(int(i), z=round_ * 10_000 + int(i)) for i in order])
    storage.close()
    with tables.open_file(str(path)) as f:
        cells = f.get_node("/retried/results/z/z/cells")
        assert cells.nrows == N_SHUFFLED * ROUNDS
        cells_on_disk = cells.size_on_disk
    assert cells_on_disk > 400_000

    reader = open_trajectory(path, "retried")
    reader.read_cell("results.z", "z", 0)  # opens, imports: not counted below
    reader = open_trajectory(path, "retried")
    latest = (ROUNDS - 1) * 10_000
    for idx in (1, 977, N_SHUFFLED - 1):
        value, used = counted(reader.read_cell, "results.z", "z", idx)
        assert value == latest + idx
        assert type(value) is int
        assert used < cells_on_disk / 4, (used, cells_on_disk)
    column = reader.read_column("results.z", "z")
    assert column.runs.tolist() == list(range(N_SHUFFLED))
    assert [column.value_at(p) for p in range(N_SHUFFLED)] == [
        latest + i for i in range(N_SHUFFLED)
    ]


def test_a_run_committed_again_without_an_item_loses_it_in_the_index(tmp_path: Path) -> None:
    path = tmp_path / "again.h5"
    storage = open_new_trajectory(path, "again")
    storage.commit_runs([run_record(i, z=float(i)) for i in range(5)])
    storage.flush()
    storage.commit_runs([run_record(3), run_record(1, z=-1.0), run_record(7, z=7.5)])
    storage.close()
    reader = open_trajectory(path, "again")
    assert reader.read_cell("results.z", "z", 1) == -1.0
    assert reader.read_cell("results.z", "z", 7) == 7.5
    for idx in (3, 5, 6, 8, 10**6):
        with pytest.raises(KeyError):
            reader.read_cell("results.z", "z", idx)
    assert reader.read_column_runs("results.z", "z").tolist() == [0, 1, 2, 4, 7]
    with tables.open_file(str(path)) as f:
        assert f.get_node("/again/results/z/z/run_rows").read().tolist() == [
            0, 5, 2, -1, 4, -1, -1, 6
        ]  # fmt: skip


# -- files of layout 1: no index, read through the cells; continued, the index is built ------

LAYOUT1 = Path(__file__).parent / "data" / "layout1" / "finished.h5"


def test_a_layout1_file_reads_and_gets_the_index_when_continued(tmp_path: Path) -> None:
    path = tmp_path / "finished.h5"
    shutil.copy(LAYOUT1, path)
    with tables.open_file(str(path)) as f:
        assert "run_rows" not in f.get_node("/layout1/results/ragged/ragged")
    traj = load(path)
    assert np.array_equal(traj.results.ragged[3], np.arange(703 % 7, dtype=np.int32))
    assert traj.results.z[599] == 2 * 1299
    assert len(traj.results.ragged) == 599  # run 5 (x=705) failed
    with pytest.raises(RunValueMissingError, match="status: failed"):
        traj.results.z[5]
    # Continue: the failed run succeeds now; its columns get the index, from all cells.
    with traj.start_run(5):
        traj.add_result("z", -1)
        traj.add_result("ragged", np.arange(3, dtype=np.int32))
    traj.close()

    with tables.open_file(str(path)) as f:
        group = f.get_node("/layout1/results/z/z")
        index = group.run_rows.read()
        idx, row = group.cells.read().T
    expected = np.full(600, -1)
    expected[idx] = row  # in commit order: the latest cell of a run wins
    assert index.tolist() == expected.tolist()
    assert index[5] >= 0
    loaded = load(path)
    assert loaded.results.z[5] == -1
    assert loaded.results.z[599] == 2 * 1299
    assert np.array_equal(loaded.results.ragged[5], np.arange(3, dtype=np.int32))
    assert np.array_equal(loaded.results.ragged[3], np.arange(703 % 7, dtype=np.int32))
    assert len(loaded.results.z) == 600
    assert loaded.results.z.to_numpy().tolist() == [
        -1 if i == 5 else 2 * (700 + i) for i in range(600)
    ]


def test_an_index_that_misses_cells_is_not_used_and_is_rebuilt(tmp_path: Path) -> None:
    # A writer that does not keep the index (layout 1) appends a cell: run 2 now has the
    # value in row 4. The index, which covers fewer cells, must not be believed.
    path = tmp_path / "stale.h5"
    storage = open_new_trajectory(path, "stale")
    storage.commit_runs([run_record(i, z=float(i)) for i in range(5)])
    storage.close()
    with tables.open_file(str(path), "a") as f:
        f.get_node("/stale/results/z/z/cells").append(np.array([[2, 4]]))
    reader = open_trajectory(path, "stale")
    assert reader.read_cell("results.z", "z", 2) == 4.0
    assert reader.read_cell("results.z", "z", 3) == 3.0
    # The next writer rebuilds it from the cells.
    writer = open_trajectory(path, "stale")
    writer.commit_runs([run_record(6, z=6.0)])
    writer.close()
    with tables.open_file(str(path)) as f:
        index = f.get_node("/stale/results/z/z/run_rows")
        assert index.read().tolist() == [0, 1, 4, 3, 4, -1, 5]
        assert index.attrs["cells"] == 7
    reader = open_trajectory(path, "stale")
    assert [reader.read_cell("results.z", "z", i) for i in (2, 6)] == [4.0, 6.0]
