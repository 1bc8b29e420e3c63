"""Reads cost what they read on big files: loading and one value read a bounded number of
bytes, whatever the size of the data, while another process writes the file and after.

Bytes are counted with ``rchar`` of ``/proc/self/io`` (every byte this process read
through a system call, page cache or not). The benchmark ``benchmarks/bench_big_reads.py``
shows the same at 200 MB and 2 GB, with wall times.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tables

import pytraj as pt
from pytraj.errors import RunValueMissingError
from pytraj.io import load
from pytraj.storage.hdf5.layout import journal_path_for

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

# The values of run i, made the same way in the writer and in the tests.
VALUES = """
def values(i):
    rng = np.random.default_rng(i)
    ragged = rng.random(int(RAGGED_KB * 128 * rng.uniform(0.5, 1.5)))
    return ragged, float(i), rng.random(64)
"""
exec(VALUES)  # noqa: S102  # the same function as the writer's, without a copy to drift
values: Callable[[int], tuple[np.ndarray, float, np.ndarray]]

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


def counted(read: Callable[[], Any]) -> tuple[Any, int]:
    before = bytes_read()
    value = read()
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
    loaded.results.z[1], loaded.results.s[1], loaded.results.f[1]  # noqa: B018
    loaded.runs[1].results.z  # noqa: B018
    len(loaded.results.z), repr(loaded.results.z)  # noqa: B018
    with pytest.raises(RunValueMissingError):
        loaded.results.z[2]  # noqa: B018
    loaded.close()


class Writer:
    """A child process writing a study of ``flushed`` runs + ``PENDING`` journaled ones."""

    def __init__(self, path: Path, flushed: int) -> None:
        code = textwrap.dedent(WRITER).format(ragged_kb=RAGGED_KB, values=VALUES)
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
            (lambda: traj.results.z[i], ragged),
            (lambda: traj.runs[i].results.z, ragged),
            (lambda: traj.results.f[i], fixed),
        ]:
            value, used = counted(read)
            assert type(value) is np.ndarray
            assert np.array_equal(value, expected)
            most = max(most, used)
        value, used = counted(lambda: traj.results.s[i])
        assert type(value) is float
        assert value == scalar
        most = max(most, used)
    for i in missing:
        with pytest.raises(RunValueMissingError, match=f"run {i} has no value"):
            traj.results.z[i]  # noqa: B018
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
