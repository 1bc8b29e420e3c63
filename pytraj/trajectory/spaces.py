"""Parameter spaces: what ``traj.explore(...)`` takes, and an algebra to build it.

Two ways to say which points a study runs:

- :func:`cartesian_product` (pypet's, including ``combined_parameters``) returns a plain dict of
  equal-length lists, one list per parameter, which ``traj.explore`` zips into points;
- :class:`ParameterSpace` is the same zip of columns as an immutable value with an algebra:
  product ``a * b``, zip ``a & b``, concatenation ``a + b``, difference ``a - b``, ``filter``,
  ``unique``, and random and quasi-random sampling (Latin hypercube, Sobol, Halton) with a seed.

Points are compared by their canonical encoding (:mod:`pytraj.trajectory.pointid`), so ``1.0`` and
``np.float64(1.0)`` are the same point, and so are two NaNs.

Examples
--------
>>> cartesian_product({"x": [1, 2], "y": [3, 4]})
{'x': [1, 1, 2, 2], 'y': [3, 4, 3, 4]}
>>> space = ParameterSpace({"x": [1, 2]}) * ParameterSpace({"y": [3, 4]})
>>> space
<ParameterSpace 4 points over x, y>
>>> (space - ParameterSpace({"x": [1], "y": [4]})).to_dict()
{'x': [1, 2, 2], 'y': [3, 3, 4]}
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, overload

import numpy as np

from pytraj.errors import ExplorationError, PytrajWarning
from pytraj.trajectory.pointid import encode_point
from pytraj.trajectory.sampling import Count, Seed, check_sampling_input, qmc_engine

__all__ = ["ParameterSpace", "as_columns", "cartesian_product"]

Point = dict[str, Any]


def _as_values(name: str, values: Any) -> list[Any]:
    """The list of values a column stands for, refusing inputs that are surely mistakes."""
    if isinstance(values, str | bytes):
        raise ExplorationError(
            f"the values of {name!r} are a single {type(values).__name__} {values!r}, not a "
            f"list of values; write [{values!r}] to explore one value"
        )
    if isinstance(values, Mapping):
        raise ExplorationError(f"the values of {name!r} are a mapping; give a list of dicts")
    if isinstance(values, set | frozenset):
        raise ExplorationError(
            f"the values of {name!r} are a set, whose order is arbitrary; sort them"
        )
    if isinstance(values, np.ndarray):
        if values.ndim == 0:
            raise ExplorationError(
                f"the values of {name!r} are a 0-d array; write [{values!r}] to explore one value"
            )
        return list(values)  # 1-d: numpy scalars; n-d: one (n-1)-d array per point
    try:
        return list(values)
    except TypeError:
        raise ExplorationError(
            f"the values of {name!r} must be a list or another iterable, got "
            f"{type(values).__name__} {values!r}; write [{values!r}] to explore one value"
        ) from None


def _checked_columns(mapping: Mapping[str, Any]) -> dict[str, list[Any]]:
    if not isinstance(mapping, Mapping):
        raise ExplorationError(
            "a parameter space is a mapping of parameter name -> list of values or a "
            f"ParameterSpace, got {type(mapping).__name__}"
        )
    if not mapping:
        raise ExplorationError("a parameter space needs at least one parameter, got an empty one")
    columns: dict[str, list[Any]] = {}
    for name, values in mapping.items():
        if not isinstance(name, str):
            raise ExplorationError(f"parameter names must be strings, got {name!r}")
        columns[name] = _as_values(name, values)
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        listed = ", ".join(f"{name}: {len(values)}" for name, values in columns.items())
        raise ExplorationError(
            f"every parameter needs the same number of values (one per point); got {listed}. "
            "Use cartesian_product(...) for all combinations"
        )
    return columns


# -- cartesian product -------------------------------------------------------------------


def _groups(
    names: Sequence[str], combined_parameters: Sequence[str | Sequence[str]] | None
) -> list[tuple[str, ...]]:
    """The nesting groups of :func:`cartesian_product`, slowest first, checked."""
    if not combined_parameters:
        return [(name,) for name in names]
    if isinstance(combined_parameters, str):
        raise ExplorationError(
            f"combined_parameters must be a tuple of names or tuples of names, got the string "
            f"{combined_parameters!r}; write ({combined_parameters!r},)"
        )
    groups: list[tuple[str, ...]] = []
    for entry in combined_parameters:
        group = (entry,) if isinstance(entry, str) else tuple(entry)
        if not group or not all(isinstance(name, str) for name in group):
            raise ExplorationError(
                f"each entry of combined_parameters is a name or a non-empty tuple of names, "
                f"got {entry!r}"
            )
        groups.append(group)
    listed = [name for group in groups for name in group]
    repeated = sorted({name for name in listed if listed.count(name) > 1})
    unknown = [name for name in listed if name not in names]
    missing = [name for name in names if name not in listed]
    problems = []
    if repeated:
        problems.append(f"named more than once: {', '.join(repeated)}")
    if unknown:
        problems.append(f"not in the parameter dict: {', '.join(unknown)}")
    if missing:
        problems.append(f"missing from combined_parameters: {', '.join(missing)}")
    if problems:
        raise ExplorationError(
            "every parameter must appear exactly once in combined_parameters; "
            + "; ".join(problems)
        )
    return groups


def cartesian_product(
    parameter_dict: Mapping[str, Any],
    combined_parameters: Sequence[str | Sequence[str]] | None = None,
) -> dict[str, list[Any]]:
    """Every combination of the given values, as one equal-length list per parameter.

    The first parameter varies slowest and the last fastest, as in pypet.

    Parameters
    ----------
    parameter_dict : Mapping[str, Iterable]
        Parameter name -> the values to combine.
    combined_parameters : tuple of (str or tuple of str), optional
        The nesting order, slowest first. Names in one inner tuple vary together (they are
        zipped, so their lists must have equal length); a single name needs no inner tuple.
        Every key of ``parameter_dict`` must appear exactly once. By default each parameter is
        its own group, in the order of ``parameter_dict``.

    Returns
    -------
    dict[str, list]
        Parameter name -> one value per point, keys in the order of ``parameter_dict``.

    Raises
    ------
    ExplorationError
        A value list that is not a list, linked parameters with lists of different lengths, or
        ``combined_parameters`` that does not name every parameter exactly once.

    Examples
    --------
    >>> cartesian_product({"a": [1, 2, 3], "b": [4.0, 5.5]})
    {'a': [1, 1, 2, 2, 3, 3], 'b': [4.0, 5.5, 4.0, 5.5, 4.0, 5.5]}
    >>> cartesian_product({"a": [4.0, 5.5], "b": ["u", "v"], "c": [1, 2]}, ("c", ("a", "b")))
    {'a': [4.0, 5.5, 4.0, 5.5], 'b': ['u', 'v', 'u', 'v'], 'c': [1, 1, 2, 2]}
    """
    if not isinstance(parameter_dict, Mapping):
        raise ExplorationError(
            f"cartesian_product takes a mapping of name -> values, got "
            f"{type(parameter_dict).__name__}"
        )
    values = {name: _as_values(name, column) for name, column in parameter_dict.items()}
    groups = _groups(list(values), combined_parameters)
    lengths = []
    for group in groups:
        group_lengths = {name: len(values[name]) for name in group}
        if len(set(group_lengths.values())) > 1:
            listed = ", ".join(f"{name}: {n}" for name, n in group_lengths.items())
            raise ExplorationError(
                f"combined parameters vary together and need lists of equal length; got {listed}"
            )
        lengths.append(len(values[group[0]]))
    total = math.prod(lengths)
    result: dict[str, list[Any]] = {}
    inner = total  # points per full cycle of the current group
    for group, length in zip(groups, lengths, strict=True):
        outer = total // inner if inner else 0  # how often the group's cycle repeats
        inner = inner // length if length else 0  # points per value of the group: its stride
        for name in group:
            if inner == 1:  # the fastest group (often the only one): its values as given
                cycle = list(values[name])
            else:
                cycle = [value for value in values[name] for _ in range(inner)]
            result[name] = cycle * outer
    return {name: result[name] for name in values}


# -- parameter spaces --------------------------------------------------------------------


class ParameterSpace:
    """An immutable list of parameter points, held as one equal-length column per name.

    Parameters
    ----------
    columns : Mapping[str, Iterable] or ParameterSpace
        Parameter name -> one value per point. Any iterable works; a 1-d numpy array becomes a
        list of its numpy scalars. A string is refused (write ``[value]`` for one value).

    Notes
    -----
    Points are compared by the canonical encoding of their values (the one point ids use), so
    ``1.0`` and ``np.float64(1.0)`` are equal, ``1`` and ``1.0`` are not. Equality ignores the
    order of the names. Values are shared, not copied, between spaces built from one another.

    Examples
    --------
    >>> space = ParameterSpace({"x": [1.0, 2.0], "y": [6, 7]})
    >>> space[1]
    {'x': 2.0, 'y': 7}
    >>> len(space * ParameterSpace({"z": ["a", "b", "c"]}))
    6
    >>> (space + space).unique() == space
    True
    """

    __slots__ = ("_columns", "_keys", "_length")

    _columns: dict[str, list[Any]]
    _keys: list[bytes] | None
    _length: int

    def __init__(self, columns: Mapping[str, Any] | ParameterSpace) -> None:
        if isinstance(columns, ParameterSpace):
            self._init(columns._columns)  # shared: both are immutable
        else:
            self._init(_checked_columns(columns))

    def _init(self, columns: dict[str, list[Any]]) -> None:
        object.__setattr__(self, "_columns", columns)
        object.__setattr__(self, "_keys", None)
        object.__setattr__(self, "_length", len(next(iter(columns.values()))))

    @classmethod
    def _from_checked(cls, columns: dict[str, list[Any]]) -> ParameterSpace:
        space = cls.__new__(cls)
        space._init(columns)
        return space

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a ParameterSpace is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"a ParameterSpace is immutable; cannot delete {name!r}")

    # -- reading ------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """The parameter names, in order."""
        return tuple(self._columns)

    @property
    def columns(self) -> dict[str, list[Any]]:
        """Parameter name -> one value per point (new lists; the values are shared)."""
        return {name: list(values) for name, values in self._columns.items()}

    def to_dict(self) -> dict[str, list[Any]]:
        """The columns as a plain dict, as ``traj.explore`` and pypet take them."""
        return self.columns

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[Point]:
        names = self.names
        for values in zip(*self._columns.values(), strict=True):
            yield dict(zip(names, values, strict=True))

    @overload
    def __getitem__(self, index: int | np.integer[Any]) -> Point: ...

    @overload
    def __getitem__(self, index: slice) -> ParameterSpace: ...

    def __getitem__(self, index: int | np.integer[Any] | slice) -> Point | ParameterSpace:
        """Point ``index`` as a dict (negative counts from the end), or a sub-space for a slice."""
        if isinstance(index, slice):
            return self._take(range(self._length)[index])
        if not isinstance(index, int | np.integer) or isinstance(index, bool):
            raise TypeError(f"points are indexed by int or slice, got {type(index).__name__}")
        position = int(index)
        if not -self._length <= position < self._length:
            raise IndexError(f"point {position} is out of range for a space of {self._length}")
        position %= self._length
        return {name: values[position] for name, values in self._columns.items()}

    def __repr__(self) -> str:
        names = self.names
        shown = ", ".join(names[:6]) + (f", ... ({len(names)} names)" if len(names) > 6 else "")
        noun = "point" if self._length == 1 else "points"
        return f"<ParameterSpace {self._length} {noun} over {shown}>"

    def __reduce__(self) -> tuple[Any, ...]:
        # __setattr__ refuses, so pickle and copy rebuild the space from its columns.
        return (type(self)._from_checked, (self._columns,))

    def _point_keys(self) -> list[bytes]:
        """The canonical encoding of every point (computed once: the space is immutable)."""
        keys = self._keys
        if keys is None:
            keys = [encode_point(point) for point in self]
            object.__setattr__(self, "_keys", keys)
        return keys

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParameterSpace):
            return NotImplemented
        return (
            set(self._columns) == set(other._columns)
            and self._length == other._length
            and self._point_keys() == other._point_keys()
        )

    def __hash__(self) -> int:
        return hash((frozenset(self._columns), self._length))

    # -- algebra ------------------------------------------------------------------------

    def _take(self, positions: Iterable[int]) -> ParameterSpace:
        chosen = list(positions)
        return self._from_checked(
            {name: [values[i] for i in chosen] for name, values in self._columns.items()}
        )

    def _require_disjoint(self, other: ParameterSpace, operation: str) -> None:
        _require_space(other, operation)
        shared = [name for name in self._columns if name in other._columns]
        if shared:
            raise ExplorationError(
                f"the {operation} of two spaces needs distinct names; both have {', '.join(shared)}"
            )

    def _require_same_names(self, other: ParameterSpace, operation: str) -> None:
        _require_space(other, operation)
        if set(self._columns) != set(other._columns):
            only_self = [name for name in self._columns if name not in other._columns]
            only_other = [name for name in other._columns if name not in self._columns]
            raise ExplorationError(
                f"the {operation} of two spaces needs the same names; only in the first: "
                f"{', '.join(only_self) or '-'}; only in the second: {', '.join(only_other) or '-'}"
            )

    def __mul__(self, other: ParameterSpace) -> ParameterSpace:
        """The product: every point of ``self`` with every point of ``other`` (``self`` slowest)."""
        self._require_disjoint(other, "product")
        n, m = self._length, other._length
        columns = {
            name: [value for value in values for _ in range(m)]
            for name, values in self._columns.items()
        }
        columns.update({name: values * n for name, values in other._columns.items()})
        return self._from_checked(columns)

    @classmethod
    def product(cls, *spaces: ParameterSpace) -> ParameterSpace:
        """The product of several spaces; the first varies slowest.

        Examples
        --------
        >>> ParameterSpace.product(
        ...     ParameterSpace({"a": [1, 2]}), ParameterSpace({"b": [3, 4]})
        ... ).to_dict()
        {'a': [1, 1, 2, 2], 'b': [3, 4, 3, 4]}
        """
        if not spaces:
            raise ExplorationError("ParameterSpace.product needs at least one space")
        result = spaces[0]
        for space in spaces[1:]:
            result = result * space
        return result

    @classmethod
    def from_product(
        cls,
        parameter_dict: Mapping[str, Any],
        combined_parameters: Sequence[str | Sequence[str]] | None = None,
    ) -> ParameterSpace:
        """The points of :func:`cartesian_product`, as a space."""
        return cls(cartesian_product(parameter_dict, combined_parameters))

    def zip(self, other: ParameterSpace) -> ParameterSpace:
        """Point i of ``self`` joined with point i of ``other``; both need the same length."""
        self._require_disjoint(other, "zip")
        if self._length != other._length:
            raise ExplorationError(
                f"zip needs spaces of equal length; got {self._length} points over "
                f"{', '.join(self._columns)} and {other._length} over {', '.join(other._columns)}"
            )
        return self._from_checked({**self._columns, **other._columns})

    __and__ = zip

    def __add__(self, other: ParameterSpace) -> ParameterSpace:
        """The points of ``self``, then those of ``other`` (same names, in any order)."""
        self._require_same_names(other, "concatenation")
        return self._from_checked(
            {name: values + other._columns[name] for name, values in self._columns.items()}
        )

    def __sub__(self, other: ParameterSpace) -> ParameterSpace:
        """The points of ``self`` that are not points of ``other``, in order."""
        self._require_same_names(other, "difference")
        present = set(other._point_keys())
        return self._take(i for i, key in enumerate(self._point_keys()) if key not in present)

    def filter(self, predicate: Callable[[Point], Any]) -> ParameterSpace:
        """The points for which ``predicate(point)`` is true, in order.

        Examples
        --------
        >>> ParameterSpace.from_product({"x": [1, 2], "y": [1, 2]}).filter(
        ...     lambda p: p["x"] <= p["y"]
        ... ).to_dict()
        {'x': [1, 1, 2], 'y': [1, 2, 2]}
        """
        return self._take(i for i, point in enumerate(self) if predicate(point))

    def unique(self) -> ParameterSpace:
        """The space without repeated points, keeping each first occurrence."""
        seen: set[bytes] = set()
        keep = []
        for i, key in enumerate(self._point_keys()):
            if key not in seen:
                seen.add(key)
                keep.append(i)
        return self._take(keep)

    # -- sampling -----------------------------------------------------------------------

    @classmethod
    def random(
        cls, bounds: Mapping[str, tuple[float, float]], n: Count, *, seed: Seed
    ) -> ParameterSpace:
        """``n`` points drawn uniformly and independently within ``bounds``.

        Parameters
        ----------
        bounds : Mapping[str, tuple[float, float]]
            Parameter name -> ``(low, high)``, finite, ``low < high``.
        n : int
            Number of points.
        seed : int or numpy.random.Generator
            Required, so a study can be reproduced. The same int gives the same points.

        Examples
        --------
        >>> space = ParameterSpace.random({"x": (0.0, 1.0)}, 3, seed=42)
        >>> len(space), all(0.0 <= p["x"] <= 1.0 for p in space)
        (3, True)
        """
        rng, checked, n = check_sampling_input(bounds, n, seed)
        return _scaled(checked, rng.random((n, len(checked))))

    @classmethod
    def latin_hypercube(
        cls, bounds: Mapping[str, tuple[float, float]], n: Count, *, seed: Seed
    ) -> ParameterSpace:
        """``n`` points of a Latin hypercube within ``bounds`` (``scipy.stats.qmc``).

        Every parameter's range splits into ``n`` equal strata, each holding exactly one point.
        Parameters as in :meth:`random`.
        """
        from scipy.stats import qmc

        rng, checked, n = check_sampling_input(bounds, n, seed)
        return _scaled(checked, qmc_engine(qmc.LatinHypercube, len(checked), rng).random(n))

    @classmethod
    def sobol(
        cls, bounds: Mapping[str, tuple[float, float]], n: Count, *, seed: Seed
    ) -> ParameterSpace:
        """``n`` points of a scrambled Sobol' sequence within ``bounds`` (``scipy.stats.qmc``).

        Sobol' points are balanced only when ``n`` is a power of 2; any other ``n`` warns
        (:class:`~pytraj.errors.PytrajWarning`). Parameters as in :meth:`random`.
        """
        from scipy.stats import qmc

        rng, checked, n = check_sampling_input(bounds, n, seed)
        if n & (n - 1):
            warnings.warn(
                f"Sobol' points are balanced only for n a power of 2; got n={n} "
                f"(use {1 << (n - 1).bit_length()} or {1 << (n.bit_length() - 1)})",
                PytrajWarning,
                stacklevel=2,
            )
        engine = qmc_engine(qmc.Sobol, len(checked), rng)
        with warnings.catch_warnings():
            # Warned above already, pointing at the caller instead of into scipy.
            warnings.simplefilter("ignore", UserWarning)
            sample = engine.random(n)
        return _scaled(checked, sample)

    @classmethod
    def halton(
        cls, bounds: Mapping[str, tuple[float, float]], n: Count, *, seed: Seed
    ) -> ParameterSpace:
        """``n`` points of a scrambled Halton sequence within ``bounds`` (``scipy.stats.qmc``).

        Parameters as in :meth:`random`.
        """
        from scipy.stats import qmc

        rng, checked, n = check_sampling_input(bounds, n, seed)
        return _scaled(checked, qmc_engine(qmc.Halton, len(checked), rng).random(n))


def _require_space(other: Any, operation: str) -> None:
    if not isinstance(other, ParameterSpace):
        raise TypeError(f"{operation} needs two ParameterSpaces, got {type(other).__name__}")


def _scaled(bounds: dict[str, tuple[float, float]], unit: np.ndarray) -> ParameterSpace:
    """Columns of Python floats: the unit-cube sample mapped onto ``bounds``."""
    from scipy.stats import qmc

    lows = [low for low, _ in bounds.values()]
    highs = [high for _, high in bounds.values()]
    sample = qmc.scale(unit, lows, highs)
    # Rounding in low + u * (high - low) may step just past high; the bounds are a promise.
    sample = np.clip(sample, lows, highs)
    return ParameterSpace._from_checked(
        {name: sample[:, j].tolist() for j, name in enumerate(bounds)}
    )


def as_columns(spec: Mapping[str, Any] | ParameterSpace) -> dict[str, list[Any]]:
    """Plain columns (name -> list of values) from what ``traj.explore`` accepts.

    Parameters
    ----------
    spec : Mapping[str, Iterable] or ParameterSpace
        Equal-length value lists per name (for instance the result of
        :func:`cartesian_product`), or a space.

    Returns
    -------
    dict[str, list]
        New lists, one value per point.

    Raises
    ------
    ExplorationError
        As :class:`ParameterSpace` (unequal lengths, a string for a list, no parameters ...).

    Examples
    --------
    >>> as_columns({"x": np.arange(2.0)})
    {'x': [np.float64(0.0), np.float64(1.0)]}
    """
    if isinstance(spec, ParameterSpace):
        return spec.columns
    return _checked_columns(spec)
