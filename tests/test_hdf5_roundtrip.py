"""Store then load is the identity, for every kind of value, in every place it can go."""

from __future__ import annotations

import pickle
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pytraj as pt
from pytraj.io import load
from pytraj.testing.compare import assert_same_value
from pytraj.testing.strategies import storable_values
from pytraj.testing.trajectories import assert_trajectory_equal

# Each example writes and reads a real file (about 0.1 s): several seconds per test.
pytestmark = [pytest.mark.storage, pytest.mark.slow]


def store_and_load(
    default: Any,
    result: Any,
    per_run: list[Any],
    *,
    comment: str = "",
    allow_pickle: bool = True,
    pickled: bool = False,
) -> tuple[pt.Trajectory, pt.Trajectory]:
    folder = tempfile.mkdtemp()
    path = Path(folder) / "values.h5"
    parameter_class = pt.PickleParameter if pickled else pt.Parameter
    result_class = pt.PickleResult if pickled else pt.Result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pt.errors.DuplicatePointWarning)
        traj = pt.Trajectory("values", filename=path, comment=comment)
        traj.add_parameter("p", default, comment=comment, leaf_class=parameter_class)
        traj.node("parameters.p").annotations["note"] = result if not pickled else 1
        traj.add_parameter("i", 0)
        traj.explore({"i": list(range(len(per_run)))})
        traj.add_result("r", result, leaf_class=result_class)
        for idx, value in enumerate(per_run):
            with traj.start_run(idx):
                traj.add_result("q", value, leaf_class=result_class)
        traj.close()
    return traj, load(path, allow_pickle=allow_pickle)


@given(
    default=storable_values(),
    result=storable_values(),
    per_run=st.lists(storable_values(), min_size=1, max_size=4),
    comment=st.text(max_size=8),
    allow_pickle=st.booleans(),
)
def test_values_come_back_exactly(
    default: Any, result: Any, per_run: list[Any], comment: str, allow_pickle: bool
) -> None:
    original, loaded = store_and_load(
        default, result, per_run, comment=comment, allow_pickle=allow_pickle
    )
    assert_same_value(loaded.node("parameters.p").default, default, "default")
    assert loaded.node("parameters.p").comment == comment
    assert_same_value(loaded.node("parameters.p").annotations["note"], result, "annotation")
    assert_same_value(loaded.results.r, result, "result")
    for idx, value in enumerate(per_run):
        assert_same_value(loaded.results.q[idx], value, f"run {idx}")
    column = loaded.storage.read_column("results.q", "q")
    assert_same_value([column.value_at(p) for p in range(len(column))], per_run, "column")
    assert_trajectory_equal(loaded, original)


def repickled(value: Any) -> Any:
    return pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


@given(
    default=storable_values(),
    result=storable_values(),
    per_run=st.lists(storable_values(), min_size=1, max_size=3),
)
def test_pickled_values_come_back_exactly(default: Any, result: Any, per_run: list[Any]) -> None:
    """As exactly as pickle keeps them (it turns some big-endian datetime arrays native)."""
    _, loaded = store_and_load(default, result, per_run, pickled=True)
    assert_same_value(loaded.node("parameters.p").default, repickled(default), "default")
    assert_same_value(loaded.results.r, repickled(result), "result")
    for idx, value in enumerate(per_run):
        assert_same_value(loaded.results.q[idx], repickled(value), f"run {idx}")


@given(values=st.lists(storable_values(), min_size=2, max_size=5), seed=st.integers(0, 99))
def test_stored_values_do_not_depend_on_the_order_of_runs(values: list[Any], seed: int) -> None:
    """The first value fixes a column's store; whatever comes first, values are exact."""
    order = np.random.default_rng(seed).permutation(len(values)).tolist()
    folder = tempfile.mkdtemp()
    path = Path(folder) / "order.h5"
    traj = pt.Trajectory("order", filename=path)
    traj.add_parameter("i", 0)
    traj.explore({"i": list(range(len(values)))})
    for idx in order:
        with traj.start_run(idx):
            traj.add_result("v", values[idx])
    traj.close()
    loaded = load(path)
    assert_same_value([loaded.results.v[idx] for idx in range(len(values))], values)
