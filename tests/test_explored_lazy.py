"""pt.load leaves the explored table in the file: ranges and point ids are read on first use."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

import pytraj as pt
from pytraj.storage.explored import ExploredColumn, StoredPointIds

pytestmark = pytest.mark.storage

N_RUNS = 100_000


def _column(traj: pt.Trajectory, name: str) -> ExploredColumn:
    column = traj.par.node(name).raw_range
    assert type(column) is ExploredColumn
    return column


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("explored") / "big.h5"
    env = pt.Environment(trajectory="big", filename=path, progress=False)
    traj = env.trajectory
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [i / 4 for i in range(N_RUNS)]})
    env.run(lambda t: t.add_result("z", t.x * 2))
    env.close()
    return path


def test_load_of_100k_runs_reads_no_explored_value(big_file: Path) -> None:
    traj = pt.load(big_file)
    x = _column(traj, "x")
    assert len(x) == N_RUNS
    assert not x.is_loaded
    assert len(traj) == N_RUNS
    assert traj.results.z[4321] == 4321 / 2
    assert traj.results.z.to_numpy()[-1] == (N_RUNS - 1) / 2
    assert not x.is_loaded  # results came from their own columns
    assert "explored: 100000 values" in repr(traj.par.node("x"))
    assert not x.is_loaded  # the length is known without a read
    assert traj.par.node("x").value_at(7) == 1.75
    assert x.is_loaded
    assert traj.par.node("x").range[-1] == (N_RUNS - 1) / 4


def test_point_ids_stay_in_the_file_until_the_run_table_is_read(big_file: Path) -> None:
    traj = pt.load(big_file)
    ids = traj.storage.stored_definition.point_ids
    assert type(ids) is StoredPointIds
    assert not ids.is_loaded
    assert traj.results.z[3] == 1.5  # one cell: no point id needed
    assert not ids.is_loaded
    assert traj.run_table.point_ids() == ids.tolist()
    assert ids.is_loaded
    assert all(type(p) is bytes and len(p) == 16 for p in ids.tolist()[:100])


def test_dataframe_of_a_lazy_range_keeps_dtypes(big_file: Path) -> None:
    frame = pt.load(big_file).to_dataframe()
    assert frame["x"].dtype == np.float64
    assert frame["z"].dtype == np.float64
    assert frame["x"].iloc[10] == 2.5
    assert frame["z"].iloc[10] == 5.0
    assert len(frame) == N_RUNS


EXACT = {
    "f": [0.5, -0.0, float("inf")],
    "i": [1, -(2**62), 3],
    "b": [True, False, True],
    "c": [1 + 2j, 0j, -1j],
    "n32": [np.float32(1.5), np.float32(2.5), np.float32(-1)],
    "ni": [np.int16(3), np.int16(-4), np.int16(5)],
    "t": [np.datetime64("2026-01-01T10:00", "s"), np.datetime64(0, "s"), np.datetime64(-5, "s")],
}
DEFAULTS = {
    "f": 0.0,
    "i": 0,
    "b": False,
    "c": 0j,
    "n32": np.float32(0),
    "ni": np.int16(0),
    "t": np.datetime64(1, "s"),
}


@pytest.fixture
def typed_file(tmp_path: Path) -> Path:
    path = tmp_path / "typed.h5"
    traj = pt.Trajectory("typed", filename=path)
    for name, default in DEFAULTS.items():
        traj.add_parameter(name, default)
    traj.explore(EXACT)
    for i in range(3):
        with traj.start_run(i):
            traj.add_result("z", i)
    traj.close()
    return path


@pytest.mark.parametrize("name", sorted(EXACT))
def test_lazy_values_come_back_with_their_exact_types(typed_file: Path, name: str) -> None:
    traj = pt.load(typed_file)
    column = _column(traj, name)
    assert not column.is_loaded
    parameter = traj.par.node(name)
    one = parameter.value_at(2)
    assert type(one) is type(EXACT[name][2])
    assert one == EXACT[name][2]
    values = parameter.range
    assert [type(v) for v in values] == [type(v) for v in EXACT[name]]
    assert list(values) == EXACT[name]
    assert column[-1] == EXACT[name][-1]
    assert column[0:2] == EXACT[name][0:2]
    traj.set_run(1)
    assert type(parameter.value) is type(EXACT[name][1])


def test_float_bits_survive_lazy_loading(typed_file: Path) -> None:
    value = pt.load(typed_file).par.node("f").value_at(1)
    assert type(value) is float
    assert np.signbit(value)  # -0.0, not 0.0


def test_a_lazy_range_pickles_as_a_plain_list(typed_file: Path) -> None:
    traj = pt.load(typed_file)
    column = _column(traj, "i")
    copied = pickle.loads(pickle.dumps(column))
    assert type(copied) is list
    assert copied == EXACT["i"]


def test_a_definition_write_reads_the_columns_handed_out_first(typed_file: Path) -> None:
    traj = pt.load(typed_file)
    columns = {name: _column(traj, name) for name in EXACT}
    assert not any(c.is_loaded for c in columns.values())
    traj.add_parameter("w", 1)
    traj.store()  # writes the changed definition: the explored table may be rewritten
    # Columns handed out were read before the write (to journal the definition, and by
    # the store before it touches the explored table): they hold the stored points.
    assert all(c.is_loaded for c in columns.values())
    assert columns["i"].tolist() == EXACT["i"]
    assert traj.par.node("i").raw_range is columns["i"]  # unchanged ranges stay columns
    traj.close()


def test_expanding_a_loaded_study_keeps_exact_types(typed_file: Path) -> None:
    traj = pt.load(typed_file)
    new_point = {name: [values[0]] for name, values in EXACT.items()}
    new_point["i"] = [7]
    traj.expand(new_point)
    traj.store()
    traj.close()
    again = pt.load(typed_file)
    for name, values in EXACT.items():
        assert list(again.par.node(name).range) == [*values, new_point[name][0]]
        assert type(again.par.node(name).value_at(3)) is type(values[0])


def test_continuing_a_loaded_study_runs_only_new_points(big_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "copy.h5"
    path.write_bytes(big_file.read_bytes())
    traj = pt.load(path)
    assert not _column(traj, "x").is_loaded
    traj.expand({"x": [-1.0, -2.0]})
    env = pt.Environment(trajectory=traj, progress=False)
    env.run(lambda t: t.add_result("z", t.x * 2))
    env.close()
    again = pt.load(path)
    assert len(again) == N_RUNS + 2
    assert again.results.z[N_RUNS + 1] == -4.0
    assert again.results.z[N_RUNS - 1] == (N_RUNS - 1) / 2
    assert again.par.node("x").value_at(N_RUNS) == -1.0
