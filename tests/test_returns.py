"""The (idx, return value) list of env.run: held compactly, returned as a plain sorted list."""

from __future__ import annotations

import json
import pickle

import pytest

import pytraj as pt
from pytraj.run.returns import ReturnValues


def test_pairs_come_back_sorted_by_run_index() -> None:
    values = ReturnValues()
    for idx, value in [(3, "c"), (0, None), (2, 2.5), (1, [1])]:
        values.add(idx, value)
    assert len(values) == 4
    assert list(values) == [(0, None), (1, [1]), (2, 2.5), (3, "c")]


def test_return_values_are_the_objects_returned() -> None:
    returned = {"a": 1}
    values = ReturnValues()
    values.add(5, None)
    values.add(1, returned)
    pairs = list(values)
    assert pairs == [(1, {"a": 1}), (5, None)]
    assert pairs[0][1] is returned


def test_only_none_returned_keeps_no_value_list() -> None:
    values = ReturnValues()
    for idx in (2, 0, 1):
        values.add(idx, None)
    assert list(values) == [(0, None), (1, None), (2, None)]
    assert bool(values)
    assert not ReturnValues()
    assert list(ReturnValues()) == []


def test_pairs_cross_block_boundaries_in_order() -> None:
    values = ReturnValues()
    n = 70_000  # more than one block of tuples
    for idx in range(n - 1, -1, -1):
        values.add(idx, idx * 2 if idx % 3 else None)
    pairs = list(values)
    assert len(pairs) == n
    assert pairs[0] == (0, None)
    assert pairs[1] == (1, 2)
    assert pairs[-2] == (n - 2, 2 * (n - 2))
    assert pairs[-1] == (n - 1, None)  # 69,999 is a multiple of 3
    assert [idx for idx, _ in pairs] == list(range(n))


def test_adding_after_iterating_keeps_every_pair() -> None:
    values = ReturnValues()
    values.add(1, "b")
    assert list(values) == [(1, "b")]
    values.add(0, "a")
    assert list(values) == [(0, "a"), (1, "b")]


@pytest.mark.parametrize("ncores", [1, 2])
def test_env_run_returns_a_plain_list(tmp_path: object, ncores: int) -> None:
    env = pt.Environment(
        trajectory="t",
        filename=tmp_path / "r.h5",
        ncores=ncores,
        progress=False,  # type: ignore[operator]
    )
    traj = env.trajectory
    traj.add_parameter("x", 0)
    traj.explore({"x": [3, 1, 2, 0]})
    results = env.run(_square)
    env.close()
    assert type(results) is list
    assert results == [(0, 9), (1, 1), (2, 4), (3, 0)]
    assert all(type(pair) is tuple for pair in results)
    assert json.loads(json.dumps(results)) == [[0, 9], [1, 1], [2, 4], [3, 0]]
    assert pickle.loads(pickle.dumps(results)) == results


def _square(traj: pt.Trajectory) -> int:
    return int(traj.x) ** 2
