"""Loading is lazy: the skeleton first, result data only when asked for, one row at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tables

import pytraj as pt
from pytraj.io import load

pytestmark = pytest.mark.storage

N_RUNS = 100_000
WIDTH = 32  # float64 values per run in the array result: 25.6 MB in all
#: Bytes loading may read besides the run table and the explored table: the tree of
#: groups and attributes, the definition, HDF5 B-trees and heaps.
SKELETON_ALLOWANCE = 1_000_000


def bytes_read() -> int:
    """Bytes this process has read through system calls so far (Linux)."""
    with open("/proc/self/io") as stream:
        for line in stream:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def result_store_bytes(path: Path) -> int:
    with tables.open_file(str(path)) as f:
        return sum(
            f.get_node(f"/big/results/{name}/{name}/values").size_on_disk for name in ("z", "v")
        )


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lazy") / "big.h5"
    rng = np.random.default_rng(1)
    z = rng.random(N_RUNS)
    v = rng.random((N_RUNS, WIDTH))
    traj = pt.Trajectory("big", filename=path)
    traj.add_parameter("x", 0)
    traj.explore({"x": list(range(N_RUNS))})
    for i in range(N_RUNS):
        with traj.start_run(i):
            traj.add_result("z", float(z[i]))
            traj.add_result("v", v[i])
    traj.close()
    return path


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
@pytest.mark.slow
def test_loading_reads_no_result_data(big_file: Path) -> None:
    store = result_store_bytes(big_file)
    assert store > 25_000_000
    with tables.open_file(str(big_file)) as f:
        run_table = f.get_node("/big/runs/table").size_on_disk
        explored = f.get_node("/big/runs/explored").size_on_disk

    before = bytes_read()
    traj = load(big_file)
    table = traj.run_table.counts()
    loaded = bytes_read() - before
    assert table["completed"] == N_RUNS
    # The skeleton and the run table only: both tables of 100,000 runs (stored
    # uncompressed: random point ids) plus the tree, column indices and attributes
    # (SKELETON_ALLOWANCE), well under half of the 26 MB of result data.
    assert loaded < run_table + explored + SKELETON_ALLOWANCE, (loaded, run_table, explored)
    assert loaded < store / 2, (loaded, store)

    before = bytes_read()
    value = traj.results.v[54_321]
    one_row = bytes_read() - before
    assert value.shape == (WIDTH,)
    # One row: its chunk and the column's run -> row index, not the 25 MB column.
    assert one_row < 1_500_000, one_row

    before = bytes_read()
    assert type(traj.results.z[99_999]) is float
    assert bytes_read() - before < 1_000_000


@pytest.mark.slow
def test_reading_a_whole_column_is_exact(big_file: Path) -> None:
    traj = load(big_file)
    rng = np.random.default_rng(1)
    z = rng.random(N_RUNS)
    v = rng.random((N_RUNS, WIDTH))
    assert np.array_equal(traj.results.z.to_numpy(), z)
    assert np.array_equal(traj.results.v.to_numpy(), v)
    assert traj.results.z.to_series().index[-1] == N_RUNS - 1


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
@pytest.mark.slow
def test_the_run_table_is_read_only_when_asked_for(big_file: Path) -> None:
    with tables.open_file(str(big_file)) as f:
        run_table = f.get_node("/big/runs/table").size_on_disk
    assert run_table > 1_000_000

    before = bytes_read()
    traj = load(big_file)
    assert len(traj) == N_RUNS
    z = traj.results.z.to_numpy()
    without = bytes_read() - before
    assert len(z) == N_RUNS

    before = bytes_read()
    counts = traj.run_table.counts()
    with_table = bytes_read() - before
    assert counts["completed"] == N_RUNS
    assert with_table > run_table  # read now, and not before
    assert traj.runs[N_RUNS - 1].status == "completed"
    assert bytes_read() - before < with_table + 100_000  # once
    assert without < 6_000_000, without
