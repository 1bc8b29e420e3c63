"""The Python views of a study: to_dataframe, get_from_runs and to_xarray."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pytraj as pt
from pytraj.errors import NodeNotFoundError, OptionError


def grid_study(filename: Path | None = None, skip: tuple[int, ...] = ()) -> pt.Trajectory:
    """A 3-D grid (x: 2, y: 3, c: 2 values = 12 runs) with scalar and array results."""
    traj = pt.Trajectory("grid", filename=filename)
    traj.add_parameter("x", 0.0, comment="first axis")
    traj.add_parameter("y", 0)
    traj.add_parameter("c", "u")
    traj.explore(pt.cartesian_product({"x": [2.0, 1.0], "y": [10, 20, 30], "c": ["u", "v"]}))
    for i in range(len(traj)):
        if i in skip:
            continue
        with traj.start_run(i):
            traj.add_result("z", traj.x * traj.y + (traj.c == "v"))
            traj.add_result("n", int(traj.y) + i)
            traj.add_result("ok", bool(i % 2))
            traj.add_result("trace", np.arange(3.0) * traj.x + i)
            traj.add_result("label", f"run{i}")
    return traj


def test_dataframe_columns_index_and_dtypes_without_missing_runs() -> None:
    traj = grid_study()
    frame = traj.to_dataframe()
    assert list(frame.columns) == ["x", "y", "c", "z", "n", "ok", "label"]  # trace: arrays
    assert frame.index.name == "idx"
    assert list(frame.index) == list(range(12))
    assert frame["x"].dtype == np.float64
    assert frame["y"].dtype == np.int64
    assert frame["n"].dtype == np.int64
    assert frame["ok"].dtype == np.bool_
    assert frame.loc[5, "label"] == "run5"
    assert frame.loc[5, "n"] == traj.runs[5].y + 5


def test_dataframe_nullable_dtypes_where_runs_miss_a_value() -> None:
    frame = grid_study(skip=(1, 4)).to_dataframe()
    assert frame["n"].dtype == pd.Int64Dtype()
    assert frame["ok"].dtype == pd.BooleanDtype()
    assert frame["z"].dtype == np.float64
    assert frame["n"].isna().tolist() == [i in (1, 4) for i in range(12)]
    assert frame.loc[3, "n"] == 23
    assert frame.loc[3, "ok"]
    assert np.isnan(frame.loc[4, "z"])
    assert pd.isna(frame.loc[4, "label"])
    assert frame["y"].dtype == np.int64  # parameters are never missing


def test_dataframe_results_and_include() -> None:
    traj = grid_study(skip=(2,))
    frame = traj.to_dataframe(results=["z", "n"], include=("status", "runtime", "host"))
    assert list(frame.columns) == ["x", "y", "c", "z", "n", "status", "runtime", "host"]
    assert frame.loc[2, "status"] == "pending"
    assert frame.loc[0, "status"] == "completed"
    assert np.isnan(frame.loc[2, "runtime"])
    assert frame.loc[0, "runtime"] >= 0
    assert frame.loc[0, "host"] == traj.runs[0].host
    with_status = traj.to_dataframe(results="z", status=True)
    assert list(with_status.columns) == ["x", "y", "c", "z", "status"]
    with pytest.raises(NodeNotFoundError, match="no per-run result 'w'; per-run results: z, n"):
        traj.to_dataframe(results=["w"])
    with pytest.raises(OptionError, match="'results.trace' holds arrays"):
        traj.to_dataframe(results=["trace"])
    with pytest.raises(OptionError, match="run-table fields: status, runtime, host"):
        traj.to_dataframe(include=("colour",))


def test_get_from_runs_any_type() -> None:
    traj = grid_study(skip=(0,))
    traces = traj.get_from_runs("trace")
    assert sorted(traces) == list(range(1, 12))
    np.testing.assert_array_equal(traces[3], np.arange(3.0) * 2.0 + 3)
    assert traj.get_from_runs("results.label")[7] == "run7"
    with pytest.raises(NodeNotFoundError, match="no per-run result 'w'"):
        traj.get_from_runs("w")


def test_to_xarray_on_a_3d_grid_equals_the_runs(tmp_path: Path) -> None:
    grid_study(tmp_path / "g.h5").close()
    traj = pt.load(tmp_path / "g.h5")
    ds = traj.to_xarray()
    assert ds.z.dims == ("x", "y", "c")
    assert list(ds.x.values) == [1.0, 2.0]  # sorted coordinates
    assert list(ds.y.values) == [10, 20, 30]
    assert list(ds.c.values) == ["u", "v"]
    assert ds.trace.dims == ("x", "y", "c", "trace_dim_0")
    assert ds.x.attrs["comment"] == "first axis"
    for run in traj.runs:
        at = {"x": run.x, "y": run.y, "c": run.c}
        assert ds.z.sel(at).item() == run.results.z
        assert ds.n.sel(at).item() == run.results.n
        assert ds.label.sel(at).item() == run.results.label
        np.testing.assert_array_equal(ds.trace.sel(at).values, run.results.trace)
    assert ds.z.sel(x=2.0).shape == (3, 2)
    assert ds.n.dtype == np.int64
    traj.close()


def test_to_xarray_with_missing_runs_and_selected_results() -> None:
    ds = grid_study(skip=(0,)).to_xarray(results=["z", "n"])
    assert set(ds.data_vars) == {"z", "n"}
    assert np.isnan(ds.z.sel(x=2.0, y=10, c="u").item())
    assert ds.n.dtype == np.float64  # a missing int becomes NaN
    assert ds.n.sel(x=2.0, y=10, c="v").item() == 11


def test_to_xarray_of_a_non_grid_exploration_has_a_run_dimension() -> None:
    traj = pt.Trajectory("zip")
    traj.add_parameter("x", 0.0)
    traj.add_parameter("y", 0)
    traj.explore({"x": [1.0, 2.0, 3.0], "y": [5, 5, 7]})
    for i in range(3):
        with traj.start_run(i):
            traj.add_result("z", traj.x + traj.y)
    ds = traj.to_xarray()
    assert ds.z.dims == ("run",)
    assert list(ds.run.values) == [0, 1, 2]
    assert list(ds.x.values) == [1.0, 2.0, 3.0]
    assert list(ds.z.values) == [6.0, 7.0, 10.0]
    assert ds.z.sel(run=2).item() == 10.0


def test_a_view_reads_runs_and_values_from_one_column_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A live writer may flush between the column read and a second read of the runs that
    # hold a value; the view must not pair the newer runs with the older values.
    traj = pt.Trajectory("t", filename=tmp_path / "t.h5")
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [0.0, 1.0, 2.0, 3.0]})
    for i in range(3):
        with traj.start_run(i):
            traj.add_result("z", 10.0 * i)
    traj.close()
    loaded = pt.load(tmp_path / "t.h5", read_only=True)
    view = loaded.results.z
    view.to_numpy(fill=np.nan)  # reads (and caches) the column of runs 0-2
    newer = np.array([0, 1, 2, 3])  # what a later read of the runs would see
    monkeypatch.setattr(loaded.storage, "read_column_runs", lambda *key: newer)
    assert view.to_series().to_dict() == {0: 0.0, 1: 10.0, 2: 20.0}
    assert list(view) == [0.0, 10.0, 20.0]
    assert view[[1, 3]].to_series().to_dict() == {1: 10.0}
