"""The file as other tools see it: PyTables, h5py, node counts, sizes, filters."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
import tables

import pytraj as pt
from pytraj.errors import DamagedFileError, OptionError
from pytraj.io import load
from pytraj.storage.hdf5 import FileOptions, available_complibs

pytestmark = pytest.mark.storage


def w1_study(path: Path, n: int, name: str = "w1", options: FileOptions | None = None) -> None:
    """One float result per run, through manual runs."""
    traj = pt.Trajectory(name, filename=path, file_options=options)
    traj.add_parameter("x", 0.0, comment="the axis")
    traj.node("parameters.x").annotations["unit"] = "mV"
    traj.explore({"x": [float(i) for i in range(n)]})
    for i in range(n):
        with traj.start_run(i):
            traj.add_result("z", traj.x * 0.5)
            traj.add_result("n", i)
    traj.close()


def test_plain_pytables_reads_a_per_run_result_as_one_float64_column(tmp_path: Path) -> None:
    path = tmp_path / "w1.h5"
    w1_study(path, 50)
    # No pytraj in this code path: a fresh interpreter with PyTables only.
    code = textwrap.dedent(
        f"""
        import sys, tables
        with tables.open_file({str(path)!r}) as f:
            z = f.get_node("/w1/results/z/z/values").read()
            idx, row = f.get_node("/w1/results/z/z/cells").read().T
            n = f.get_node("/w1/results/n/n/values").read()
            print(z.dtype, n.dtype, len(z), float(z[row[7]]), int(idx[7]))
        print("pytraj" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    first, second = done.stdout.splitlines()
    assert first.split() == ["float64", "int64", "50", "3.5", "7"]
    assert second == "False"


def test_h5py_shows_a_recognisable_tree(tmp_path: Path) -> None:
    path = tmp_path / "w1.h5"
    w1_study(path, 5)
    with h5py.File(path, "r") as f:
        assert int(f.attrs["pytraj_schema"]) == 2
        traj = f["w1"]
        assert int(traj.attrs["pytraj_schema"]) == 2
        assert {"parameters", "derived_parameters", "results", "config", "runs"} <= set(traj)
        x = traj["parameters/x"]
        # PyTables writes text attributes as fixed-width strings, which h5py gives as bytes.
        assert x.attrs["pytraj_leaf"] == b"Parameter"
        assert x.attrs["comment"] == b"the axis"
        assert x.attrs["annotation.unit"] == b"mV"
        assert x["default"][()] == 0.0
        assert bool(traj["results/z"].attrs["per_run"])
        run_table = traj["runs/table"][:]
        assert run_table["idx"].tolist() == [0, 1, 2, 3, 4]
        assert run_table["status"].tolist() == [2] * 5
        # Layout 2: ids are 16 raw bytes, never a string type that drops trailing NULs.
        assert run_table["point_id"].dtype == np.dtype("u1")
        assert run_table["point_id"].shape == (5, 16)
        explored = traj["runs/explored"][:]
        assert explored["x"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
        assert explored["point_id"].dtype == np.dtype("u1")
        assert explored["point_id"].shape == (5, 16)
        assert traj["results/z/z/values"][:].tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]


def count_nodes(path: Path) -> int:
    with tables.open_file(str(path)) as f:
        return sum(1 for _ in f.walk_nodes("/"))


def test_node_count_does_not_grow_with_the_runs(tmp_path: Path) -> None:
    small, large = tmp_path / "small.h5", tmp_path / "large.h5"
    w1_study(small, 10)
    w1_study(large, 25_000)
    assert count_nodes(small) == count_nodes(large)
    assert load(large).results.z[24_999] == 12_499.5


def test_a_study_of_10000_runs_takes_less_than_100_bytes_per_run(tmp_path: Path) -> None:
    path = tmp_path / "w1.h5"
    traj = pt.Trajectory("w1", filename=path)
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [float(i) for i in range(10_000)]})
    for i in range(10_000):
        with traj.start_run(i):
            traj.add_result("z", traj.x * 0.5)
    traj.close()
    assert path.stat().st_size / 10_000 < 100


def _w1_result(traj: pt.Trajectory) -> None:
    traj.add_result("z", 2.0 * traj.x + 1.0)


def test_a_10000_run_environment_study_takes_less_than_100_bytes_per_run(tmp_path: Path) -> None:
    # W1 as the benchmark writes it: through env.run, with the writer column and provenance.
    # The uncompressed run table (55 bytes a row) leaves about 0.2 byte a run of margin.
    path = tmp_path / "w1env.h5"
    env = pt.Environment(trajectory="w1", filename=path)
    env.trajectory.add_parameter("x", 0.0)
    env.trajectory.explore({"x": [i * 0.25 for i in range(10_000)]})
    env.run(_w1_result)
    env.close()
    assert path.stat().st_size / 10_000 < 100
    with tables.open_file(str(path)) as f:
        assert f.get_node("/w1/runs/table").nrows == 10_000
        assert f.get_node("/w1/runs/table").filters.complevel == 0
    assert load(path).results.z[9_999] == 2.0 * 9_999 * 0.25 + 1.0


def test_python_ints_are_int64_and_come_back_as_int(tmp_path: Path) -> None:
    path = tmp_path / "ints.h5"
    traj = pt.Trajectory("ints", filename=path)
    traj.add_parameter("k", 0)
    traj.explore({"k": [0, 2**40, -(2**62)]})
    for i in range(3):
        with traj.start_run(i):
            traj.add_result("big", traj.k * 2)
    traj.close()
    with tables.open_file(str(path)) as f:
        assert f.get_node("/ints/results/big/big/values").dtype == np.int64
        assert f.get_node("/ints/runs/explored").coldtypes["k"] == np.int64
    loaded = load(path)
    assert list(loaded.results.big) == [0, 2**41, -(2**63)]
    assert all(type(v) is int for v in loaded.results.big)
    assert all(type(v) is int for v in loaded.node("parameters.k").range)


def test_float_arrays_and_point_ids_are_not_compressed_by_default_but_tables_are(
    tmp_path: Path,
) -> None:
    path = tmp_path / "arrays.h5"
    traj = pt.Trajectory("a", filename=path)
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [0.5, 1.5]})
    for run in range(2):
        with traj.start_run(run):
            traj.add_result("trace", np.linspace(0, 1, 1000))
            traj.add_result("counts", np.arange(1000))
    traj.close()
    with tables.open_file(str(path)) as f:
        assert f.get_node("/a/results/trace/trace/values").filters.complevel == 0
        assert f.get_node("/a/results/counts/counts/values").filters.complib == "zlib"
        assert f.get_node("/a/results/counts/counts/cells").filters.complib == "zlib"
        assert f.get_node("/a/runs/hosts") is not None
        # Random 16-byte point ids: zlib cannot shrink them and costs ~50 MB/s.
        assert f.get_node("/a/runs/table").filters.complevel == 0
        assert f.get_node("/a/runs/explored").filters.complevel == 0
    assert list(load(path).results.counts[1]) == list(range(1000))


@pytest.mark.parametrize(
    ("complib", "keyed_level", "chunk_rows"),
    [("zlib", 0, 297), ("bzip2", 0, 297), ("blosc2:lz4", 5, 1191)],
)
def test_point_id_tables_are_compressed_by_fast_codecs_only(
    tmp_path: Path, complib: str, keyed_level: int, chunk_rows: int
) -> None:
    if complib not in available_complibs():
        pytest.skip(f"{complib} is not available in this PyTables")
    path = tmp_path / "k.h5"
    w1_study(path, 20, options=FileOptions(complib=complib, complevel=5))
    with tables.open_file(str(path)) as f:
        assert f.get_node("/w1/runs/table").filters.complevel == keyed_level
        assert f.get_node("/w1/runs/explored").filters.complevel == keyed_level
        # Uncompressed, the last chunk is allocated whole: 16 KB chunks (55-byte rows).
        assert f.get_node("/w1/runs/table").chunkshape == (chunk_rows,)
        assert f.get_node("/w1/results/n/n/cells").filters.complib == complib
    loaded = load(path)
    assert list(loaded.results.n) == list(range(20))
    assert [run.status for run in loaded.runs] == ["completed"] * 20


@pytest.mark.parametrize("complib", ["blosc2:zstd", "bzip2", "zlib"])
def test_other_compression_libraries(tmp_path: Path, complib: str) -> None:
    if complib not in available_complibs():
        pytest.skip(f"{complib} is not available in this PyTables")
    path = tmp_path / "c.h5"
    w1_study(path, 20, options=FileOptions(complib=complib, complevel=5))
    with tables.open_file(str(path)) as f:
        assert f.get_node("/w1/results/n/n/cells").filters.complib == complib
    assert list(load(path).results.n) == list(range(20))


def _fails_on_odd(traj: pt.Trajectory) -> None:
    if traj.x % 2:
        raise ValueError(f"odd x={traj.x}")
    traj.add_result("z", 2 * traj.x)


FAILURE_NODES = [
    "failures",
    "failure_exc_types",
    "failure_messages",
    "failure_tracebacks",
    "failure_logs",
]


def test_failure_nodes_are_created_with_the_first_failure(tmp_path: Path) -> None:
    path = tmp_path / "f.h5"
    env = pt.Environment(trajectory="t", filename=path, on_error="continue", progress=False)
    env.trajectory.add_parameter("x", 0)
    env.trajectory.explore({"x": [0, 2]})
    env.run(_fails_on_odd)
    env.close()
    with tables.open_file(str(path)) as f:
        runs = f.get_node("/t/runs")
        assert sorted(runs._v_children) == ["columns", "explored", "hosts", "table", "writer"]
    loaded = load(path)
    assert loaded.run_table.failures == []
    assert [run.status for run in loaded.runs] == ["completed", "completed"]
    loaded.close()

    env = pt.Environment(trajectory="t", filename=path, on_error="continue", progress=False)
    env.trajectory.add_parameter("x", 0)
    env.trajectory.explore({"x": [0, 2, 3]})
    env.run(_fails_on_odd)
    env.close()
    with tables.open_file(str(path)) as f:
        runs = f.get_node("/t/runs")
        assert [name in runs._v_children for name in FAILURE_NODES] == [True] * 5
        assert f.get_node("/t/runs/failures").filters.complib == "zlib"
        assert [f.get_node(f"/t/runs/{name}").nrows for name in FAILURE_NODES] == [1] * 5
    loaded = load(path)
    assert [(x.idx, x.exc_type, x.message) for x in loaded.run_table.failures] == [
        (2, "ValueError", "odd x=3")
    ]
    assert [run.status for run in loaded.runs] == ["completed", "completed", "failed"]
    loaded.close()


def test_a_file_with_empty_failure_nodes_still_reads_and_takes_failures(tmp_path: Path) -> None:
    """Files written before the nodes came with the first failure hold them empty."""
    path = tmp_path / "old.h5"
    env = pt.Environment(trajectory="t", filename=path, on_error="continue", progress=False)
    env.trajectory.add_parameter("x", 0)
    env.trajectory.explore({"x": [0, 2]})
    env.run(_fails_on_odd)
    env.close()
    with tables.open_file(str(path), "a") as f:  # the earlier layout: five empty nodes
        f.create_table("/t/runs", "failures", np.dtype([("idx", "<i8"), ("attempt", "<i8")]))
        for name in FAILURE_NODES[1:]:
            f.create_vlarray("/t/runs", name, atom=tables.VLStringAtom())
    loaded = load(path)
    assert loaded.run_table.failures == []
    loaded.close()
    env = pt.Environment(trajectory="t", filename=path, on_error="continue", progress=False)
    env.trajectory.add_parameter("x", 0)
    env.trajectory.explore({"x": [0, 2, 5]})
    env.run(_fails_on_odd)
    env.close()
    loaded = load(path)
    assert [(x.idx, x.message) for x in loaded.run_table.failures] == [(2, "odd x=5")]
    loaded.close()


@pytest.mark.parametrize("lost", ["all", "table", "cut"])
def test_rows_referring_to_failures_the_file_lost_are_a_damaged_file(
    tmp_path: Path, lost: str
) -> None:
    """A failure node gone (or cut short) by damage is not "no failures": the run rows
    still refer to them, so reading the run table names the damage."""
    path = tmp_path / "lost.h5"
    env = pt.Environment(trajectory="t", filename=path, on_error="continue", progress=False)
    env.trajectory.add_parameter("x", 0)
    env.trajectory.explore({"x": [1, 2, 3]})
    env.run(_fails_on_odd)
    env.close()
    assert len(load(path).run_table.failures) == 2
    with tables.open_file(str(path), "a") as f:
        if lost == "cut":  # the table and its texts one failure short
            for name in FAILURE_NODES:
                node = f.get_node(f"/t/runs/{name}")
                rows = node.read()[:1]
                f.remove_node(node)
                if name == "failures":
                    f.create_table("/t/runs", name, rows)
                else:
                    f.create_vlarray("/t/runs", name, atom=tables.VLStringAtom()).append(rows[0])
        else:
            for name in FAILURE_NODES if lost == "all" else FAILURE_NODES[:1]:
                f.remove_node(f"/t/runs/{name}")
    with pytest.raises(DamagedFileError, match=r"t/runs.*refer to failure 1, the file holds"):
        load(path).runs[2].failure  # reads the run table


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"complib": "lzo"}, r"complib='lzo'.* not available; choose one of zlib"),
        ({"complib": "gzip"}, r"complib='gzip'"),
        ({"complevel": 10}, r"complevel=10.*0 \(none\) to 9"),
        ({"complevel": True}, r"complevel=True"),
        ({"shuffle": "yes"}, r"shuffle='yes'.*True or False"),
        ({"fletcher32": 1}, r"fletcher32=1"),
    ],
)
def test_file_options_are_checked_when_given(options: dict[str, object], message: str) -> None:
    with pytest.raises(OptionError, match=message):
        FileOptions(**options)  # type: ignore[arg-type]


def test_file_options_must_be_file_options(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="FileOptions"):
        pt.Trajectory("t", filename=tmp_path / "o.h5", file_options={"complib": "zlib"})


def test_checksums_on_request(tmp_path: Path) -> None:
    path = tmp_path / "f.h5"
    w1_study(path, 3, options=FileOptions(fletcher32=True))
    with tables.open_file(str(path)) as f:
        assert f.get_node("/w1/runs/table").filters.fletcher32
    assert os.path.getsize(path) > 0
