"""Compare whole trajectories: tree, values, run table and every per-run value.

>>> import pytraj as pt
>>> a = pt.Trajectory("t"); _ = a.add_parameter("x", 1.0)
>>> b = pt.Trajectory("t"); _ = b.add_parameter("x", 1.0)
>>> assert_trajectory_equal(a, b)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from pytraj.testing.compare import assert_same_value

if TYPE_CHECKING:
    from pytraj.trajectory.trajectory import Trajectory

__all__ = ["assert_trajectory_equal"]


def _nodes(traj: Trajectory) -> list[Any]:
    # By name: a tree rebuilt from a file may list siblings in another order.
    return sorted(traj.iter_nodes(), key=lambda node: node.full_name)


def _node_summary(traj: Trajectory) -> list[tuple[str, str, str]]:
    return [(node.full_name, type(node).__name__, node.comment) for node in _nodes(traj)]


def assert_trajectory_equal(
    actual: Trajectory, expected: Trajectory, *, run_table: bool = True
) -> None:
    """Assert that two trajectories hold the same study, with exact types.

    Compares names, comments, the tree (paths, node classes, comments, annotations,
    link targets; siblings in any order), parameter defaults and explored values,
    trajectory-level result items, per-run values of every run, and (with ``run_table``)
    the run table: status, attempt, point id, times, host and pid of every run, and the
    failures.

    Raises
    ------
    AssertionError
        Naming the first difference.
    """
    from pytraj.leaves.parameter import Parameter
    from pytraj.leaves.result import Result
    from pytraj.tree.node import Link

    assert actual.name == expected.name, f"name {actual.name!r} != {expected.name!r}"
    assert actual.comment == expected.comment, "comment"
    assert len(actual) == len(expected), f"runs {len(actual)} != {len(expected)}"
    nodes, wanted = _node_summary(actual), _node_summary(expected)
    assert nodes == wanted, f"trees differ:\n{nodes}\n!=\n{wanted}"
    for node, other in zip(_nodes(actual), _nodes(expected), strict=True):
        where = node.full_name
        assert_same_value(dict(node.annotations), dict(other.annotations), f"{where} annotations")
        if isinstance(node, Link):
            target, wanted = node.target, other.target
            assert target.full_name == wanted.full_name, f"{where} target"
        elif isinstance(node, Parameter):
            assert isinstance(other, Parameter)
            assert_same_value(node.default, other.default, f"{where} default")
            assert node.is_explored == other.is_explored, f"{where} explored"
            assert_same_value(list(node.range), list(other.range), f"{where} range")
        elif isinstance(node, Result):
            assert isinstance(other, Result)
            assert node.per_run == other.per_run, f"{where} per_run"
            assert node.item_names() == other.item_names(), f"{where} items"
            if node.per_run:
                _assert_same_runs(actual, expected, node, other)
            else:
                for item in node.item_names():
                    assert_same_value(node[item], other[item], f"{where}[{item!r}]")
    if run_table:
        _assert_same_run_table(actual, expected)


def _assert_same_runs(actual: Trajectory, expected: Trajectory, node: Any, other: Any) -> None:
    for item in node.item_names():
        got = actual.column_cache.column(node.full_name, item)
        want = expected.column_cache.column(other.full_name, item)
        where = f"{node.full_name}[{item!r}]"
        assert got.runs.tolist() == want.runs.tolist(), f"{where}: runs with a value differ"
        for position in range(len(got)):
            assert_same_value(
                got.value_at(position),
                want.value_at(position),
                f"{where} of run {int(got.runs[position])}",
            )


def _assert_same_run_table(actual: Trajectory, expected: Trajectory) -> None:
    left, right = actual.run_table, expected.run_table
    for field in ("idx", "status", "attempt", "start", "finish", "pid"):
        assert np.array_equal(left.rows[field], right.rows[field]), f"run table {field}"
    ids_left = np.ascontiguousarray(left.rows["point_id"]).tobytes()
    ids_right = np.ascontiguousarray(right.rows["point_id"]).tobytes()
    assert ids_left == ids_right, "run table point ids"
    for idx in range(len(left)):
        assert left.host(idx) == right.host(idx), f"host of run {idx}"
        assert left.failures_of(idx) == right.failures_of(idx), f"failures of run {idx}"
