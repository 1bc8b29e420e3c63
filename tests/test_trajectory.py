"""The Trajectory: branches, adding leaves, natural naming, exploration, current point."""

from __future__ import annotations

import numpy as np
import pytest

import pytraj as pt
from pytraj.errors import (
    AmbiguousNameError,
    ExplorationError,
    NodeExistsError,
    NodeNotFoundError,
    NodeTypeError,
    ParameterLockedError,
    RunError,
    UnsupportedValueError,
)


@pytest.fixture
def traj() -> pt.Trajectory:
    traj = pt.Trajectory("study", comment="a test study")
    traj.add_parameter("x", 1.0, comment="first dimension")
    traj.add_parameter("y", 2)
    traj.add_parameter("net.size", 5)
    return traj


def test_branches_and_shortcuts(traj: pt.Trajectory) -> None:
    assert traj.keys() == ["parameters", "derived_parameters", "results", "config"]
    assert traj.par is traj.parameters
    assert traj.dpar is traj.derived_parameters
    assert traj.res is traj.results
    assert traj.conf is traj.config
    assert traj.comment == "a test study"


def test_attribute_and_item_access_return_values(traj: pt.Trajectory) -> None:
    assert traj.x == 1.0
    assert traj.parameters.x == 1.0
    assert traj["parameters.x"] == 1.0
    assert traj["parameters/net/size"] == 5
    assert traj.size == 5
    assert traj.net.size == 5


def test_node_returns_the_node_object(traj: pt.Trajectory) -> None:
    node = traj.node("parameters.x")
    assert isinstance(node, pt.Parameter)
    assert node.comment == "first dimension"
    assert node.full_name == "parameters.x"
    assert traj.node("x") is node
    assert traj.parameters.node("x") is node
    node.annotations["unit"] = "mV"
    assert traj.node("x").annotations["unit"] == "mV"
    with pytest.raises(NodeNotFoundError, match="no node named 'nope'"):
        traj.node("nope")


def test_search_prefers_parameters_then_derived_then_results_then_config() -> None:
    traj = pt.Trajectory("t")
    traj.add_config("v", "config")
    assert traj.v == "config"
    traj.add_result("v", "result")
    assert traj.v == "result"
    traj.add_derived_parameter("v", "derived")
    assert traj.v == "derived"
    traj.add_parameter("v", "parameter")
    assert traj.v == "parameter"


def test_two_candidates_at_the_same_level_are_an_error(traj: pt.Trajectory) -> None:
    traj.add_parameter("other.size", 7)
    with pytest.raises(AmbiguousNameError) as info:
        _ = traj.size
    assert "'parameters.net.size'" in str(info.value)
    assert "'parameters.other.size'" in str(info.value)
    assert traj["parameters.other.size"] == 7


def test_adding_an_existing_name_fails(traj: pt.Trajectory) -> None:
    with pytest.raises(NodeExistsError, match="'parameters.x' exists already"):
        traj.add_parameter("x", 3.0)
    with pytest.raises(NodeExistsError):
        traj.add_parameter("parameters.x", 3.0)


def test_unsupported_values_fail_at_add_time(traj: pt.Trajectory) -> None:
    with pytest.raises(UnsupportedValueError) as info:
        traj.add_parameter("s", {1, 2})
    assert "set" in str(info.value)
    assert "PickleParameter" in str(info.value)
    with pytest.raises(UnsupportedValueError):
        traj.add_result("r", object())
    assert "s" not in traj.parameters


def test_pickle_leaves_accept_picklable_objects(traj: pt.Trajectory) -> None:
    traj.add_parameter("s", {1, 2}, leaf_class=pt.PickleParameter)
    assert traj.s == {1, 2}
    traj.add_result("r", frozenset({3}), leaf_class=pt.PickleResult)
    assert traj.r == frozenset({3})
    with pytest.raises(UnsupportedValueError, match="cannot be pickled"):
        traj.add_result("lam", lambda: 1, leaf_class=pt.PickleResult)


def test_results_with_several_items(traj: pt.Trajectory) -> None:
    traj.add_result("stats", mean=1.0, std=0.2, comment="summary")
    stats = traj.results.stats
    assert isinstance(stats, pt.Result)
    assert stats.mean == 1.0
    assert stats["std"] == 0.2
    assert stats.item_names() == ["mean", "std"]
    assert traj.node("results.stats").comment == "summary"
    with pytest.raises(NodeTypeError, match="2 items"):
        _ = stats.value
    stats["median"] = 0.9
    assert traj.results.stats.median == 0.9


def test_single_item_result_returns_its_value(traj: pt.Trajectory) -> None:
    traj.add_result("z", 42)
    assert traj.results.z == 42
    assert traj.z == 42
    assert traj.node("results.z").items == {"z": 42}


def test_parameter_value_can_change_until_locked(traj: pt.Trajectory) -> None:
    node = traj.node("x")
    node.value = 3.0
    assert traj.x == 3.0
    node.lock()
    with pytest.raises(ParameterLockedError, match="'parameters.x' is locked"):
        node.value = 4.0
    node.unlock()
    node.value = 4.0
    assert traj.x == 4.0


def test_assigning_through_natural_naming_explains_the_way(traj: pt.Trajectory) -> None:
    with pytest.raises(AttributeError, match=r"traj.node\('x'\).value"):
        traj.x = 3.0


def test_len_is_one_until_explored(traj: pt.Trajectory) -> None:
    assert len(traj) == 1
    traj.explore({"x": [1.0, 2.0, 3.0]})
    assert len(traj) == 3
    assert traj.node("x").range == (1.0, 2.0, 3.0)
    assert traj.node("x").is_explored
    assert not traj.node("y").is_explored


def test_explore_coerces_before_changing_anything(traj: pt.Trajectory) -> None:
    with pytest.raises(ExplorationError, match="same number of values"):
        traj.explore({"x": [1.0, 2.0], "y": [1, 2, 3]})
    with pytest.raises(Exception, match="parameters.y"):
        traj.explore({"x": [1.0, 2.0], "y": [1, 2.5]})
    assert not traj.node("x").is_explored
    assert len(traj) == 1
    traj.explore({"x": np.arange(2.0), "y": [1, 2]})
    assert traj.node("x").range == (0.0, 1.0)
    assert all(type(v) is float for v in traj.node("x").range)


def test_explore_unknown_parameter(traj: pt.Trajectory) -> None:
    with pytest.raises(ExplorationError, match="no such parameter"):
        traj.explore({"nope": [1, 2]})


def test_equal_points_give_equal_ids_whatever_the_input_type() -> None:
    a, b = pt.Trajectory("a"), pt.Trajectory("b")
    for t in (a, b):
        t.add_parameter("x", 0.0)
    a.explore({"x": [0.0, 1.0]})
    b.explore({"x": np.arange(2.0)})
    assert [r.point_id for r in a.runs] == [r.point_id for r in b.runs]
    assert a.runs[0].point_id != a.runs[1].point_id
    assert len(a.runs[0].point_id) == 32


def test_exploring_a_point_twice_warns_and_keeps_both(traj: pt.Trajectory) -> None:
    with pytest.warns(pt.errors.DuplicatePointWarning, match="2 explored runs"):
        traj.explore({"x": [1.0, 2.0, 1.0]})
    assert len(traj) == 3
    assert traj.runs[0].point_id == traj.runs[2].point_id


def test_cartesian_product_exploration(traj: pt.Trajectory) -> None:
    traj.explore(pt.cartesian_product({"x": [1.0, 2.0], "y": [6, 7, 8]}))
    assert len(traj) == 6
    assert [(r.x, r.y) for r in traj.runs] == [
        (1.0, 6),
        (1.0, 7),
        (1.0, 8),
        (2.0, 6),
        (2.0, 7),
        (2.0, 8),
    ]


def test_explore_twice_needs_expand(traj: pt.Trajectory) -> None:
    traj.explore({"x": [1.0, 2.0]})
    with pytest.raises(ExplorationError, match="expand"):
        traj.explore({"x": [3.0]})
    traj.expand({"x": [3.0, 4.0]})
    assert traj.node("x").range == (1.0, 2.0, 3.0, 4.0)
    assert len(traj) == 4
    with pytest.raises(ExplorationError, match="missing: parameters.x"):
        traj.expand({"y": [1]})


def test_expand_a_new_parameter_keeps_old_runs_at_the_default(traj: pt.Trajectory) -> None:
    traj.explore({"x": [1.0, 2.0]})
    old_ids = [r.point_id for r in traj.runs]
    traj.expand({"x": [3.0], "y": [10]})
    assert traj.node("y").range == (2, 2, 10)
    assert [r.point_id for r in traj.runs][:2] == old_ids


def test_set_run_sets_the_current_point(traj: pt.Trajectory) -> None:
    traj.explore({"x": [1.0, 2.0, 3.0]})
    assert traj.idx == -1
    traj.set_run(2)
    assert traj.x == 3.0
    assert traj.idx == 2
    traj.set_run(None)
    assert traj.x == 1.0
    with traj.set_run(1):
        assert traj.x == 2.0
        assert traj.y == 2
    assert traj.x == 1.0
    with traj.set_run(-1):
        assert traj.x == 3.0
    with pytest.raises(RunError, match="3 runs"):
        traj.set_run(3)


def test_run_views(traj: pt.Trajectory) -> None:
    traj.explore({"x": [1.0, 2.0]})
    runs = traj.runs
    assert len(runs) == 2
    assert runs[1].idx == 1
    assert runs[1].x == 2.0
    assert runs[1].parameters.x == 2.0
    assert runs[1]["parameters.net.size"] == 5
    assert runs[-1].idx == 1
    assert [run.idx for run in runs] == [0, 1]
    assert runs[1].status == "pending"
    assert runs[1].parameters_dict() == {
        "parameters.x": 2.0,
        "parameters.y": 2,
        "parameters.net.size": 5,
    }
    assert repr(runs[0]) == "<Run 0 of 'study' (pending)>"


def test_repr(traj: pt.Trajectory) -> None:
    assert repr(traj) == "<Trajectory 'study' 1 runs>"
    assert repr(traj.node("x")) == "<Parameter 'parameters.x' float=1.0>"
    traj.explore({"x": [1.0, 2.0]})
    assert repr(traj.node("x")) == "<Parameter 'parameters.x' float=1.0 (explored: 2 values)>"
    assert "x" in traj.tree()
    assert "explored: 2 values" in traj.tree()


def test_user_leaf_classes_can_be_registered() -> None:
    @pt.register_leaf_class
    class PositiveParameter(pt.Parameter):
        def check_value(self, value: object, where: str) -> None:
            super().check_value(value, where)
            if isinstance(value, int | float) and value <= 0:
                raise pt.errors.InvalidValueError(f"{where}: must be positive")

    traj = pt.Trajectory("t")
    traj.add_parameter("rate", 2.0, leaf_class=PositiveParameter)
    assert type(traj.node("rate")) is PositiveParameter
    with pytest.raises(pt.errors.InvalidValueError, match="positive"):
        traj.add_parameter("bad", -1.0, leaf_class=PositiveParameter)
    from pytraj.leaves import leaf_class

    assert leaf_class("PositiveParameter") is PositiveParameter
