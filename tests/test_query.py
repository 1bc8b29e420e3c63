"""Queries: traj.find, traj.runs.where and the query-string grammar."""

from __future__ import annotations

import operator
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pytraj as pt
from pytraj.errors import NodeNotFoundError, NodeTypeError, OptionError, QuerySyntaxError
from pytraj.trajectory.expression import And, Compare, In, IsNull, Not, Or, names_in, parse


def make_study(filename: Path | None = None) -> pt.Trajectory:
    """x in 1..3 (float) x y in {10, 20} (int) x label; runs 1 and 4 never ran."""
    traj = pt.Trajectory("q", filename=filename)
    traj.add_parameter("x", 1.0)
    traj.add_parameter("y", 10)
    traj.add_parameter("label", "a")
    traj.add_parameter("fixed", 7)
    space = pt.cartesian_product({"x": [1.0, 2.0, 3.0], "y": [10, 20]})
    space["label"] = ["a", "b", "c", "a", "b", "c"]
    traj.explore(space)
    for i in range(len(traj)):
        if i in (1, 4):
            continue
        with traj.start_run(i):
            traj.add_result("z", traj.x * traj.y)
            traj.add_result("diag", peak=traj.x - 2.0, steps=int(traj.y // 10) + i)
            traj.add_result("trace", np.arange(3) * traj.x)
    return traj


@pytest.fixture
def traj() -> pt.Trajectory:
    return make_study()


# x:    1  1  2  2  3  3
# y:   10 20 10 20 10 20
# z:   10  - 20 40  - 60
# peak: -1 -  0  0  -  1
# steps: 1 -  3  5  -  7


def test_every_operator_over_parameters_and_results(traj: pt.Trajectory) -> None:
    assert traj.find(x=2.0) == [2, 3]
    assert traj.find(x__eq=2.0, y=20) == [3]
    assert traj.find(y__ne=10) == [1, 3, 5]
    assert traj.find(x__lt=2) == [0, 1]
    assert traj.find(x__le=2) == [0, 1, 2, 3]
    assert traj.find(z__gt=20) == [3, 5]
    assert traj.find(z__ge=20) == [2, 3, 5]
    assert traj.find(label__in=["a", "c"]) == [0, 2, 3, 5]
    assert traj.find(z__between=(10, 40)) == [0, 2, 3]
    assert traj.find(z__isnull=True) == [1, 4]
    assert traj.find(z__isnull=False) == [0, 2, 3, 5]
    assert traj.find(fixed=7) == [0, 1, 2, 3, 4, 5]
    assert traj.find(label__lt="b") == [0, 3]


def test_missing_values_match_no_condition_but_isnull(traj: pt.Trajectory) -> None:
    # Runs 1 and 4 have no z: "not equal to 20" does not make them match.
    assert traj.find(z__ne=20) == [0, 3, 5]
    assert traj.find("not z == 20") == [0, 1, 3, 4, 5]  # `not` is plain negation of the mask


def test_items_of_multi_item_results_are_columns(traj: pt.Trajectory) -> None:
    # Regression (issue 9, item 8): diag.peak is a column of to_dataframe(), so find
    # reaches it, in every spelling.
    assert "diag.peak" in traj.to_dataframe().columns
    assert traj.find(**{"diag.peak__gt": 0}) == [5]
    assert traj.find(**{"results.diag.peak__ge": 0}) == [2, 3, 5]
    assert traj.find(**{"results.diag.steps": 5}) == [3]
    with pytest.raises(NodeTypeError, match=r"'diag.peak', 'diag.steps'") as info:
        traj.find(diag=1)
    # The error's own suggestion works.
    assert traj.find(**{"diag.steps__in": [1, 7]}) == [0, 5]
    assert isinstance(info.value, pt.PytrajError)


def test_items_of_multi_item_results_in_a_stored_study(tmp_path: Path) -> None:
    make_study(tmp_path / "s.h5").close()
    loaded = pt.load(tmp_path / "s.h5")
    assert loaded.find(**{"diag.peak__gt": 0}) == [5]
    assert loaded.find("diag.steps >= 3 and x < 3") == [2, 3]
    assert [run.idx for run in loaded.runs.where("z is null")] == [1, 4]
    loaded.close()


def test_unknown_names_and_operators_list_what_exists(traj: pt.Trajectory) -> None:
    with pytest.raises(NodeNotFoundError, match="no column 'w'") as info:
        traj.find(w=1)
    message = str(info.value)
    for name in ("x", "y", "label", "fixed", "z", "diag.peak", "diag.steps", "trace", "status"):
        assert name in message
    with pytest.raises(OptionError, match="unknown operator 'like'.*between, isnull"):
        traj.find(x__like=1)
    with pytest.raises(NodeNotFoundError, match="no column 'nothing'"):
        traj.find("nothing > 1")
    with pytest.raises(OptionError, match=r"z__between needs \(low, high\)"):
        traj.find(z__between=3)
    with pytest.raises(OptionError, match="x__in needs a list"):
        traj.find(x__in=2.0)


def test_array_results_and_type_mismatches_are_clear_errors(traj: pt.Trajectory) -> None:
    with pytest.raises(NodeTypeError, match="'trace' holds arrays"):
        traj.find(trace__gt=0)
    with pytest.raises(NodeTypeError, match="cannot compare 'label'"):
        traj.find(label__gt=2)


def test_callable_predicates(traj: pt.Trajectory) -> None:
    assert traj.find(z=lambda v: v % 20 == 0) == [2, 3, 5]
    assert traj.find(lambda run: run.x * 10 == run.y) == [0, 3]
    assert traj.find(lambda run: run.status == "pending", x__gt=1) == [4]
    with pytest.raises(OptionError, match="query strings and callables"):
        traj.find(3)


def test_run_table_fields(traj: pt.Trajectory) -> None:
    assert traj.find(status="pending") == [1, 4]
    assert traj.find("status == 'completed' and idx > 2") == [3, 5]
    assert traj.find(runtime__ge=0) == [0, 2, 3, 5]
    assert traj.find(attempt=0) == [1, 4]


def test_runs_where_returns_run_views(traj: pt.Trajectory) -> None:
    runs = traj.runs.where("x >= 2 and y < 15")
    assert [run.idx for run in runs] == [2, 4]
    assert [run.status for run in runs] == ["completed", "pending"]
    assert runs[0].results.z == 20.0
    assert [r.idx for r in traj.runs.where(y=20, z__isnull=False)] == [3, 5]
    runs = traj.runs.where("(x == 1 or x == 3) and not label in ['a']")
    assert [run.idx for run in runs] == [1, 4, 5]


def test_query_strings(traj: pt.Trajectory) -> None:
    assert traj.find("x == 1 or x == 3 and y == 20") == [0, 1, 5]  # and binds tighter
    assert traj.find("(x == 1 or x == 3) and y == 20") == [1, 5]
    assert traj.find("label not in ['a', 'b']") == [2, 5]
    assert traj.find("label in ['b'] or z is not null") == [0, 1, 2, 3, 4, 5]
    assert traj.find("x = 2") == [2, 3]
    assert traj.find("`diag.peak` < 0") == [0]
    assert traj.find("NOT x != 3.0") == [4, 5]
    assert traj.find("z > 1e1 and z <= 4.0e1") == [2, 3]
    assert traj.find("label in []") == []


def test_the_parser_builds_the_expression_tree() -> None:
    expression = parse("a < -2.5 and not (b in [1, 'two', true, null] or c is null)")
    assert expression == And(
        Compare("a", "lt", -2.5),
        Not(Or(In("b", (1, "two", True, None), negated=False), IsNull("c", negated=False))),
    )
    assert parse("s == 'it\\'s'") == Compare("s", "eq", "it's")
    assert parse('s != "x"') == Compare("s", "ne", "x")
    assert isinstance(parse("n >= 3").value, int)  # type: ignore[union-attr]
    assert names_in(parse("a > 1 or b < 2 and a < 3")) == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("", "the query is empty"),
        ("x >= ", "expected a value.*found the end"),
        ("x >= 2 and", "expected a column name, found the end"),
        ("(x > 1", r"expected '\)'"),
        ("x 2", "expected an operator"),
        ("x in (1, 2)", r"expected '\['"),
        ("x > 1 y < 2", "expected 'and', 'or' or the end, found 'y'"),
        ("__import__('os').system('true')", "unexpected character '.' at position 16"),
        ("__import__('os')", r"expected an operator.*found '\('"),
        ("x > 1; y", "unexpected character ';' at position 5"),
        ("x is 3", "expected 'null'"),
    ],
)
def test_query_syntax_errors_say_where(text: str, where: str) -> None:
    with pytest.raises(QuerySyntaxError, match=where) as info:
        parse(text)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, pt.PytrajError)


# -- every operator against a plain-Python filter, on generated studies ---------------

_PY_OPS = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}
_SYMBOL = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def _plain(value: Any, op: str, target: Any) -> bool:
    """What a user's own loop over the runs would decide (None: the run has no value)."""
    if op == "isnull":
        return (value is None) == bool(target)
    if value is None:
        return False
    if op == "in":
        return value in target
    if op == "between":
        return target[0] <= value <= target[1]
    return bool(_PY_OPS[op](value, target))


def _literal(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


ints = st.integers(-5, 5)
floats = st.floats(-5, 5, allow_nan=False).map(lambda v: round(v, 1))
texts = st.sampled_from(["a", "b", "ab", "B", ""])


@st.composite
def studies(draw: st.DrawFn) -> tuple[pt.Trajectory, dict[str, list[Any]]]:
    n = draw(st.integers(1, 12))
    columns: dict[str, list[Any]] = {
        "i": draw(st.lists(ints, min_size=n, max_size=n)),
        "f": draw(st.lists(floats, min_size=n, max_size=n)),
        "s": draw(st.lists(texts, min_size=n, max_size=n)),
    }
    ran = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    ran[draw(st.integers(0, n - 1))] = True  # at least one run, so that z exists
    traj = pt.Trajectory("gen")
    traj.add_parameter("i", 0)
    traj.add_parameter("f", 0.0)
    traj.add_parameter("s", "")
    with_values = {k: list(v) for k, v in columns.items()}
    with warnings.catch_warnings():
        # Generated points repeat; pytraj runs each copy and says so, which is fine here.
        warnings.simplefilter("ignore", pt.errors.DuplicatePointWarning)
        traj.explore(with_values)
    z: list[Any] = []
    for idx in range(n):
        if ran[idx]:
            with traj.start_run(idx):
                traj.add_result("z", columns["f"][idx] * 2 + columns["i"][idx])
            z.append(columns["f"][idx] * 2 + columns["i"][idx])
        else:
            z.append(None)
    columns["z"] = z
    return traj, columns


def _target(draw: st.DrawFn, column: str, op: str) -> Any:
    scalar = {"i": ints, "f": floats, "z": floats, "s": texts}[column]
    if op == "in":
        return draw(st.lists(scalar, max_size=4))
    if op == "between":
        return tuple(draw(st.tuples(scalar, scalar)))
    if op == "isnull":
        return draw(st.booleans())
    return draw(scalar)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_operator_matches_a_plain_python_filter(data: st.DataObject) -> None:
    traj, columns = data.draw(studies())
    column = data.draw(st.sampled_from(sorted(columns)))
    op = data.draw(st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge", "in", "between", "isnull"]))
    target = _target(data.draw, column, op)
    expected = [i for i, v in enumerate(columns[column]) if _plain(v, op, target)]
    assert traj.find(**{f"{column}__{op}": target}) == expected
    # The same condition written as a query string.
    if op in _SYMBOL:
        text = f"{column} {_SYMBOL[op]} {_literal(target)}"
    elif op == "in":
        text = f"{column} in [{', '.join(_literal(t) for t in target)}]"
    elif op == "between":
        text = f"{column} >= {_literal(target[0])} and {column} <= {_literal(target[1])}"
    else:
        text = f"{column} is {'' if target else 'not '}null"
    assert traj.find(text) == expected
    assert [run.idx for run in traj.runs.where(text)] == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_and_or_not_match_a_plain_python_filter(data: st.DataObject) -> None:
    traj, columns = data.draw(studies())
    a, b = data.draw(ints), data.draw(floats)
    expected = [
        idx
        for idx in range(len(traj))
        if not (columns["i"][idx] > a or columns["f"][idx] <= b) or columns["s"][idx] == "a"
    ]
    assert traj.find(f"not (i > {a} or f <= {b}) or s == 'a'") == expected
