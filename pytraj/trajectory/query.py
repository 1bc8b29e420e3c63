"""Which runs match: ``traj.find(...)`` and ``traj.runs.where(...)``, vectorised over columns.

A query works on *run columns*: one value per run for a parameter (``x``,
``parameters.x``), an item of a per-run result (``z``, ``results.z``, ``diag.peak``,
``results.diag.peak``) or a field of the run table (``idx``, ``status``, ``attempt``,
``host``, ``start``, ``finish``, ``runtime``). Each condition is computed over the
whole column with numpy, so a query over 100,000 runs takes milliseconds.

A run without a value for a column (failed, pending, not produced) matches no
condition on it except ``isnull``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pytraj.errors import (
    AmbiguousNameError,
    NodeNotFoundError,
    NodeTypeError,
    OptionError,
)
from pytraj.leaves.parameter import Parameter
from pytraj.leaves.result import Result
from pytraj.storage.records import STATUS_NAMES
from pytraj.trajectory.expression import And, Compare, Expression, In, IsNull, Not, Or, parse
from pytraj.trajectory.views import PerRunView

if TYPE_CHECKING:
    from pytraj.trajectory.trajectory import Trajectory

__all__ = ["OPERATORS", "RunColumn", "RunColumns", "find_runs", "short_names"]

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}
#: Every operator of ``find``: ``name__op=value`` (``eq`` when no operator is given).
OPERATORS: tuple[str, ...] = (*_COMPARE, "in", "between", "isnull")
#: Fields of the run table that queries can use, after parameters and results.
RUN_FIELDS: tuple[str, ...] = ("idx", "status", "attempt", "host", "start", "finish", "runtime")


@dataclass(frozen=True)
class RunColumn:
    """One value per run for the runs that have one.

    Attributes
    ----------
    name
        The name the column was asked by.
    values
        A 1-D array: numeric, bool or str when the values allow it, else object.
    runs
        Run indices of ``values`` (ascending), or None when every run has a value.
    """

    name: str
    values: np.ndarray
    runs: np.ndarray | None = None

    def present(self, n: int) -> np.ndarray:
        """A mask over all ``n`` runs: True where the run has a value."""
        if self.runs is None:
            return np.ones(n, dtype=bool)
        mask = np.zeros(n, dtype=bool)
        mask[self.runs] = True
        return mask

    def spread(self, hit: np.ndarray, n: int) -> np.ndarray:
        """A mask over all ``n`` runs from ``hit`` over ``values`` (False where absent)."""
        if self.runs is None:
            return hit
        mask = np.zeros(n, dtype=bool)
        mask[self.runs] = hit
        return mask


def as_array(values: Sequence[Any]) -> np.ndarray:
    """A typed array when every value is a number or every value a str, else object."""
    if values:
        try:
            # numpy decides in C; only its guesses that can hide a mix are checked below.
            typed = np.asarray(values)
        except (ValueError, TypeError):
            typed = None
        if typed is not None and typed.ndim == 1:
            if typed.dtype.kind in "biuf":
                return typed
            if typed.dtype.kind == "U" and all(isinstance(v, str | np.str_) for v in values):
                return typed
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array


def _is_number(value: Any) -> bool:
    return isinstance(value, bool | int | float | np.bool_ | np.integer | np.floating)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(
        value, bool | int | float | complex | str | bytes | np.generic
    )


class RunColumns:
    """The run columns of one trajectory, read once each (see the module docstring)."""

    def __init__(self, traj: Trajectory) -> None:
        self._traj = traj
        self._cache: dict[str, RunColumn] = {}
        self._table: Any = None

    def names(self) -> list[str]:
        """Every column name a query accepts, shortest unique form first."""
        full = [name for name, _ in self._leaf_columns()]
        return [*short_names(full).values(), *RUN_FIELDS]

    def _leaf_columns(self) -> list[tuple[str, tuple[Parameter | Result, str | None]]]:
        traj = self._traj
        found: list[tuple[str, tuple[Parameter | Result, str | None]]] = []
        for leaf in traj.par.iter_leaves():
            if isinstance(leaf, Parameter):
                found.append((leaf.full_name, (leaf, None)))
        for branch in (traj.dpar, traj.res):
            for leaf in branch.iter_leaves():
                if isinstance(leaf, Result) and leaf.per_run:
                    for item in leaf.item_names():
                        name = leaf.full_name if item == leaf.name else f"{leaf.full_name}.{item}"
                        found.append((name, (leaf, item)))
        return found

    def get(self, name: str) -> RunColumn:
        """The column ``name``.

        Raises
        ------
        NodeNotFoundError
            When no column has that name (the message lists those that exist).
        NodeTypeError
            When ``name`` is a node without one scalar value per run.
        """
        cached = self._cache.get(name)
        if cached is None:
            cached = self._cache[name] = self._read(name)
        return cached

    def _read(self, name: str) -> RunColumn:
        target = self._resolve(name)
        if target is None:
            if name in RUN_FIELDS:
                return self._run_field(name)
            shown = ", ".join(self.names())
            raise NodeNotFoundError(
                f"trajectory {self._traj.name!r} has no column {name!r} to query; columns: {shown}"
            )
        leaf, item = target
        if isinstance(leaf, Parameter):
            n = len(self._traj)
            if leaf.is_explored:
                return RunColumn(name, as_array(leaf.range))
            return RunColumn(name, np.repeat(as_array([leaf.default]), n))
        assert item is not None
        # Through numpy, not a pandas Series: the pytraj command queries without
        # importing pandas (a third of a second at start).
        runs = PerRunView(self._traj, leaf, item).runs.astype(np.int64)
        values = PerRunView(self._traj, leaf, item, runs).to_numpy()
        if values.ndim != 1 or values.dtype == object:
            if values.ndim != 1 or not all(_is_scalar(v) for v in values):
                raise NodeTypeError(
                    f"{name!r} holds arrays or containers, not one scalar per run; queries "
                    "compare scalars (use a callable predicate for anything else)"
                )
            values = as_array(list(values))
        return RunColumn(name, values, runs)

    def _resolve(self, name: str) -> tuple[Parameter | Result, str | None] | None:
        traj = self._traj
        try:
            node = traj.node(name)
        except AmbiguousNameError:
            raise
        except (NodeNotFoundError, NodeTypeError):
            node = None
        if node is None and "." in name:
            # ``diag.peak``: an item of the multi-item result ``diag``.
            path, _, item = name.rpartition(".")
            try:
                owner = traj.node(path)
            except (NodeNotFoundError, NodeTypeError):
                return None
            if isinstance(owner, Result) and owner.per_run and item in owner.item_names():
                return owner, item
            return None
        if isinstance(node, Parameter):
            return node, None
        if isinstance(node, Result) and node.per_run:
            items = node.item_names()
            if len(items) != 1:
                shown = ", ".join(repr(f"{name}.{i}") for i in items)
                raise NodeTypeError(f"{node.full_name!r} has several items; name one: {shown}")
            return node, items[0]
        if node is not None:
            raise NodeTypeError(
                f"{node.full_name!r} has no value per run to compare; columns: "
                f"{', '.join(self.names())}"
            )
        return None

    def _run_field(self, name: str) -> RunColumn:
        table = self._traj.run_table
        rows = table.rows
        if name == "idx":
            return RunColumn(name, rows["idx"].astype(np.int64))
        if name == "status":
            labels = np.array(list(STATUS_NAMES.values()), dtype=str)
            codes = np.array(list(STATUS_NAMES), dtype=np.int64)
            order = np.searchsorted(codes, rows["status"].astype(np.int64))
            return RunColumn(name, labels[order])
        if name == "attempt":
            return RunColumn(name, rows["attempt"].astype(np.int64))
        if name == "host":
            hosts = np.array([*table.hosts, ""], dtype=str)
            return RunColumn(name, hosts[np.where(rows["host"] >= 0, rows["host"], -1)])
        started = np.flatnonzero(rows["start"] > 0)
        if name == "start":
            return RunColumn(name, rows["start"][started], started)
        finished = np.flatnonzero((rows["finish"] > 0) & (rows["start"] > 0))
        if name == "finish":
            return RunColumn(name, rows["finish"][finished], finished)
        return RunColumn(name, (rows["finish"] - rows["start"])[finished], finished)


def short_names(names: list[str]) -> dict[str, str]:
    """Drop the branch prefix of each column where the short name stays unique."""
    short = {name: name.split(".", 1)[1] if "." in name else name for name in names}
    counts: dict[str, int] = {}
    for value in short.values():
        counts[value] = counts.get(value, 0) + 1
    return {name: s if counts[s] == 1 else name for name, s in short.items()}


def _compare(column: RunColumn, op: str, target: Any) -> np.ndarray:
    values = column.values
    compare = _COMPARE[op]
    try:
        if values.dtype != object:
            return np.asarray(compare(values, target), dtype=bool).reshape(len(values))
        return np.fromiter(
            (bool(compare(v, target)) for v in values), dtype=bool, count=len(values)
        )
    except TypeError:
        kind = values.dtype.name if values.dtype != object else "mixed"
        raise NodeTypeError(
            f"cannot compare {column.name!r} ({kind} values) with {target!r} "
            f"({type(target).__name__}) by {op!r}"
        ) from None


def _isin(column: RunColumn, wanted: Iterable[Any], key: str) -> np.ndarray:
    if isinstance(wanted, str | bytes) or not isinstance(wanted, Iterable):
        raise OptionError(f"{key} needs a list of values, got {wanted!r}")
    targets = list(wanted)
    values = column.values
    numeric = values.dtype.kind in "biuf" and all(_is_number(t) for t in targets)
    text = values.dtype.kind == "U" and all(isinstance(t, str) for t in targets)
    if targets and (numeric or text):
        return np.isin(values, np.asarray(targets))
    hit = np.zeros(len(values), dtype=bool)
    for target in targets:  # mixed types: one vectorised comparison per wanted value
        hit |= _compare(column, "eq", target)
    return hit


def condition_mask(column: RunColumn, op: str, target: Any, n: int, key: str = "") -> np.ndarray:
    """The runs (a mask over all ``n``) where ``column op target`` holds."""
    key = key or f"{column.name}__{op}"
    if op == "isnull":
        nulls = ~column.present(n)
        if column.values.dtype == object:
            nulls |= column.spread(np.array([v is None for v in column.values], dtype=bool), n)
        return nulls if target else ~nulls
    if callable(target):
        hit = np.fromiter(
            (bool(target(v)) for v in column.values), dtype=bool, count=len(column.values)
        )
    elif op in _COMPARE:
        hit = _compare(column, op, target)
    elif op == "in":
        hit = _isin(column, target, key)
    elif op == "between":
        if isinstance(target, str | bytes) or not isinstance(target, Sequence) or len(target) != 2:
            raise OptionError(f"{key} needs (low, high), got {target!r}")
        hit = _compare(column, "ge", target[0]) & _compare(column, "le", target[1])
    else:
        raise OptionError(f"unknown operator {op!r} in {key!r}; use one of {', '.join(OPERATORS)}")
    return column.spread(hit, n)


def evaluate(expression: Expression, columns: RunColumns, n: int) -> np.ndarray:
    """The runs (a mask over all ``n``) where a parsed query string holds."""
    if isinstance(expression, Compare):
        return condition_mask(columns.get(expression.name), expression.op, expression.value, n)
    if isinstance(expression, In):
        hit = condition_mask(columns.get(expression.name), "in", expression.values, n)
        if expression.negated:
            hit = ~hit & columns.get(expression.name).present(n)
        return hit
    if isinstance(expression, IsNull):
        return condition_mask(columns.get(expression.name), "isnull", not expression.negated, n)
    if isinstance(expression, Not):
        return ~evaluate(expression.operand, columns, n)
    if isinstance(expression, And):
        return evaluate(expression.left, columns, n) & evaluate(expression.right, columns, n)
    if isinstance(expression, Or):
        return evaluate(expression.left, columns, n) | evaluate(expression.right, columns, n)
    raise TypeError(f"not a query expression: {expression!r}")  # pragma: no cover


def _split_key(key: str, columns: RunColumns) -> tuple[str, str]:
    name, sep, op = key.rpartition("__")
    if not sep:
        return key, "eq"
    if op in OPERATORS:
        return name, op
    try:
        columns.get(key)  # a name that itself holds "__"
    except NodeNotFoundError:
        raise OptionError(
            f"unknown operator {op!r} in {key!r}; use one of {', '.join(OPERATORS)}"
        ) from None
    return key, "eq"


def find_runs(
    traj: Trajectory,
    predicates: Sequence[str | Callable[[Any], Any]],
    conditions: Mapping[str, Any],
    columns: RunColumns | None = None,
) -> np.ndarray:
    """Indices (int64, ascending) of the runs where every predicate and condition holds.

    See :meth:`Trajectory.find` for the forms accepted.
    """
    n = len(traj)
    columns = columns if columns is not None else RunColumns(traj)
    mask = np.ones(n, dtype=bool)
    for key, target in conditions.items():
        name, op = _split_key(key, columns)
        mask &= condition_mask(columns.get(name), op, target, n, key)
    for predicate in predicates:
        if isinstance(predicate, str):
            mask &= evaluate(parse(predicate), columns, n)
        elif callable(predicate):
            candidates = np.flatnonzero(mask)
            keep = [bool(predicate(traj.runs[int(i)])) for i in candidates]
            mask[candidates] = np.asarray(keep, dtype=bool)
        else:
            raise OptionError(
                f"find() takes query strings and callables (run -> bool) as positional "
                f"arguments, got {type(predicate).__name__}"
            )
    return np.flatnonzero(mask)
