"""explore holds columns of plain numbers as one array (8 bytes a run), values unchanged."""

from __future__ import annotations

import math
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import tables

import pytraj as pt
from pytraj.storage.explored import ExploredColumn
from pytraj.storage.recordslots import number_slots, slot_bytes


def _raw(traj: pt.Trajectory, name: str) -> object:
    return traj.par.node(name).raw_range


@pytest.mark.parametrize(
    ("default", "values", "kind", "dtype"),
    [
        (0.0, [0.25, -0.0, 1e300, -2.5], float, np.float64),
        (0, [1, -(2**63), 2**63 - 1, 7], int, np.int64),
        (False, [True, False], bool, np.bool_),
    ],
)
def test_plain_numbers_are_held_as_one_array(
    default: object, values: list[object], kind: type, dtype: type
) -> None:
    traj = pt.Trajectory("t")
    traj.add_parameter("x", default)
    traj.explore({"x": values})
    column = _raw(traj, "x")
    assert type(column) is ExploredColumn
    assert column.to_numpy().dtype == np.dtype(dtype)
    assert traj.par.node("x").range == tuple(values)
    for i, value in enumerate(values):
        got = traj.par.node("x").value_at(i)
        assert type(got) is kind
        assert got == value
    assert column[-1] == values[-1]
    assert pickle.loads(pickle.dumps(column)) == values


def test_float_bits_and_nan_survive_the_array() -> None:
    nan = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000123))[0]
    traj = pt.Trajectory("t")
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [-0.0, nan, 1.5]})
    got = [traj.par.node("x").value_at(i) for i in range(3)]
    assert struct.pack("<d", got[0]) == struct.pack("<d", -0.0)
    assert math.isnan(got[1])
    assert struct.pack("<d", got[1]) == struct.pack("<d", nan)
    assert got[2] == 1.5


@pytest.mark.parametrize(
    ("default", "values"),
    [
        (0j, [1j, 2 + 0j]),
        (np.float32(0), [np.float32(1.5), np.float32(2.5)]),  # numpy scalars keep their type
        ("a", ["b", "c"]),
    ],
)
def test_other_values_stay_a_list(default: object, values: list[object]) -> None:
    traj = pt.Trajectory("t")
    traj.add_parameter("x", default)
    traj.explore({"x": values})
    raw = _raw(traj, "x")
    assert type(raw) is list
    assert raw == values
    assert [type(v) for v in traj.par.node("x").range] == [type(v) for v in values]


def test_ints_beyond_64_bits_are_not_an_array() -> None:
    assert ExploredColumn.of_values([1, 2**70], description="x") is None
    assert ExploredColumn.of_values([1, True], description="x") is None
    assert ExploredColumn.of_values([], description="x") is None


def test_an_explored_array_runs_stores_and_expands(tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    env = pt.Environment(trajectory="s", filename=path, progress=False)
    traj = env.trajectory
    traj.add_parameter("x", 0.0)
    traj.add_parameter("n", 0)
    traj.explore(pt.cartesian_product({"x": [0.5, 1.5], "n": [1, 2]}))
    assert type(_raw(traj, "x")) is ExploredColumn
    results = env.run(lambda t: t.x * t.n)
    assert results == [(0, 0.5), (1, 1.0), (2, 1.5), (3, 3.0)]
    traj.expand({"x": [2.5], "n": [3]})
    assert env.run(lambda t: t.x * t.n) == [(4, 7.5)]
    env.close()
    loaded = pt.load(path)
    assert loaded.par.node("x").range == (0.5, 0.5, 1.5, 1.5, 2.5)
    assert loaded.par.node("n").range == (1, 2, 1, 2, 3)
    assert [type(v) for v in loaded.par.node("n").range] == [int] * 5


@pytest.mark.parametrize(
    "values",
    [[0.25, -0.0, 1e300, -2.5], [1, -(2**63), 2**63 - 1, 7], [True, False, True]],
)
def test_a_column_journals_the_bytes_of_its_values(values: list[object]) -> None:
    column = ExploredColumn.of_values(values, description="x")
    assert column is not None
    from_column, from_list = number_slots(column), number_slots(values)
    if isinstance(values[0], bool):  # bools are encoded value by value, either way
        assert from_column is None
        assert from_list is None
        return
    assert from_column is not None
    assert from_list is not None
    assert bytes(from_column) == bytes(from_list)
    assert bytes(from_column) == b"".join(slot_bytes(v, False, ("x",)) for v in values)


def test_an_explored_table_of_many_blocks_holds_every_point(tmp_path: Path) -> None:
    # 150,000 rows: the explored table is written in several blocks of whole chunks.
    n = 150_000
    path = tmp_path / "b.h5"
    traj = pt.Trajectory("b", filename=path)
    traj.add_parameter("x", 0.0)
    traj.add_parameter("k", 0)
    traj.add_parameter("f", np.float32(0))
    floats = [np.float32(i % 1000) for i in range(n)]  # numpy scalars: a list, in blocks
    traj.explore({"x": [i / 3 for i in range(n)], "k": list(range(n)), "f": floats})
    assert type(_raw(traj, "x")) is ExploredColumn
    assert type(_raw(traj, "f")) is list
    ids = np.ascontiguousarray(traj.run_table.rows["point_id"]).tobytes()
    traj.store()
    with tables.open_file(path) as h5:
        table = h5.get_node("/b/runs/explored")
        assert table.nrows == n
        rows = table.read()
    assert rows["x"].tolist() == [i / 3 for i in range(n)]
    assert rows["k"].tolist() == list(range(n))
    assert rows["f"].dtype == np.float32
    assert rows["f"].tolist() == [float(i % 1000) for i in range(n)]
    assert np.ascontiguousarray(rows["point_id"]).tobytes() == ids
    loaded = pt.load(path)
    assert loaded.par.node("x").value_at(n - 1) == (n - 1) / 3
    assert loaded.par.node("k").range[-3:] == (n - 3, n - 2, n - 1)
    assert type(loaded.par.node("f").value_at(1001)) is np.float32


def test_definitions_share_point_ids_only_while_the_ids_are_the_same() -> None:
    traj = pt.Trajectory("t")
    traj.add_parameter("x", 0.0)
    traj.add_parameter("y", 1)
    traj.explore({"x": [0.5, 1.5, 2.5]})
    first = traj.exploration.point_id_record(3)
    assert first.tolist() == traj.run_table.point_ids()
    assert traj.exploration.point_id_record(3) is first  # unchanged ids: the same array
    assert traj.exploration.point_id_record(2) is not first
    held = traj.exploration.point_id_record(3)
    traj.par.node("y").value = 2  # every point id changes
    traj.exploration.ensure_point_ids()
    changed = traj.exploration.point_id_record(3)
    assert changed is not held
    assert changed.tolist() == traj.run_table.point_ids()
    assert changed.tolist() != held.tolist()
    assert held.tolist() == first.tolist()  # a definition's ids never change under it


def test_a_trajectory_pickles_after_a_definition_recorded_its_ids() -> None:
    traj = pt.Trajectory("t")
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [0.5, 1.5]})
    record = traj.exploration.point_id_record(2)
    copy = pickle.loads(pickle.dumps(traj))
    assert copy.par.node("x").range == (0.5, 1.5)
    assert copy.run_table.point_ids() == record.tolist()
    assert copy.exploration.point_id_record(2).tolist() == record.tolist()
