"""Parameters: one default value and, once explored, one value per run."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pytraj.errors import ExplorationError, ParameterLockedError
from pytraj.leaves.base import Leaf, check_picklable, register_leaf_class
from pytraj.leaves.values import coerce_range, describe, short_repr
from pytraj.storage.explored import ExploredColumn
from pytraj.storage.records import LazyValue

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Parameter", "PickleParameter", "RunValues"]


class RunValues(Protocol):
    """What a parameter reads explored values from: one value per run index."""

    def __getitem__(self, index: int) -> Any: ...

    def __setitem__(self, index: int, value: Any) -> None: ...

    def __len__(self) -> int: ...


@register_leaf_class
class Parameter(Leaf):
    """A parameter of the study: a default value and, when explored, a range.

    ``value`` is the value of the run the trajectory is set to (see
    ``Trajectory.set_run``) and the default otherwise. A parameter locks when a run
    starts; changing a locked parameter raises :class:`ParameterLockedError`.

    Examples
    --------
    >>> p = Parameter("x", 1.0, comment="first dimension")
    >>> p.value, p.is_explored, p.locked
    (1.0, False, False)
    """

    __slots__ = ("_default", "_locked", "_range")
    kind = "parameter"

    def __init__(self, name: str, value: Any = None, *, comment: str = "") -> None:
        super().__init__(name, comment=comment)
        self.check_value(value, name)
        self._default = value
        self._range: list[Any] | None = None
        self._locked = False

    @classmethod
    def restore(
        cls, name: str, default: Any, explored: list[Any] | None, *, comment: str = ""
    ) -> Parameter:
        """Rebuild a stored parameter without checking its values again.

        ``default`` and the ``explored`` values may be :class:`LazyValue` placeholders,
        read on first access; ``explored`` is held as given (not copied).
        """
        leaf = cls.__new__(cls)
        Leaf.__init__(leaf, name, comment=comment)
        leaf._default = default
        leaf._range = explored
        leaf._locked = False
        return leaf

    # -- values ----------------------------------------------------------------------
    @property
    def default(self) -> Any:
        """The value used when no run is set, and by every run when not explored."""
        if type(self._default) is LazyValue:
            self._default = self._default.load()
        return self._default

    @property
    def value(self) -> Any:
        """The value at the current run, or the default."""
        if self._range is not None:
            index = self._current_index()
            if index >= 0:
                return self.value_at(index)
        return self.default

    @value.setter
    def value(self, value: Any) -> None:
        self._ensure_unlocked()
        if self._range is not None:
            raise ExplorationError(
                f"{self.full_name!r} is explored; change its values with traj.expand(...) "
                "or explore a new trajectory"
            )
        self.check_value(value, self.full_name or self.name)
        self._default = value
        self._changed()

    def value_at(self, index: int) -> Any:
        """The value of run ``index`` (the default when not explored)."""
        if self._range is None:
            return self.default
        value = self._range[index]
        if type(value) is LazyValue:
            value = self._range[index] = value.load()
        return value

    @property
    def range(self) -> tuple[Any, ...]:
        """The explored values, one per run (empty when not explored)."""
        if self._range is None:
            return ()
        if type(self._range) is ExploredColumn:
            return tuple(self._range.tolist())  # one read of the column, converted in C
        if LazyValue in set(map(type, self._range)):
            return tuple(self.value_at(i) for i in range(len(self._range)))
        return tuple(self._range)  # one C-level copy: 100,000 values in about 1 ms

    @property
    def raw_default(self) -> Any:
        """The default as held: a :class:`LazyValue` while not read from the file."""
        return self._default

    @property
    def raw_range(self) -> list[Any] | None:
        """The explored values as held, or None when not explored.

        The same list, not a copy (point ids read it for every new point): values not
        read from the file yet are :class:`LazyValue` placeholders. A range loaded from
        a file and not changed since is an
        :class:`~pytraj.storage.explored.ExploredColumn` (a sequence that reads its
        column on first use). Do not change it; exploring goes through
        :meth:`set_range` and :meth:`extend_range`.
        """
        return self._range

    def range_array(self) -> np.ndarray | None:
        """The explored values as the numpy array the file holds, when the range is a
        stored column of Python numbers still unchanged (no Python object per run);
        None otherwise (use :attr:`range`)."""
        stored = self._range
        if type(stored) is ExploredColumn and stored.has_python_values:
            return stored.to_numpy()
        return None

    def load_values(self) -> None:
        """Read the default and every explored value not read from the file yet, now."""
        if type(self._default) is LazyValue:
            self._default = self._default.load()
        if type(self._range) is ExploredColumn:
            self._range.load()
        elif self._range is not None:
            for position, value in enumerate(self._range):
                if type(value) is LazyValue:
                    self._range[position] = value.load()

    @property
    def is_explored(self) -> bool:
        """Whether the parameter has one value per run."""
        return self._range is not None

    # -- locking ---------------------------------------------------------------------
    @property
    def locked(self) -> bool:
        """Whether a run holds the parameter, so that it cannot change."""
        return self._locked

    def lock(self) -> None:
        """Forbid changes (done for every parameter when a run starts)."""
        self._locked = True

    def unlock(self) -> None:
        """Allow changes again; stored runs keep the values they ran with."""
        self._locked = False

    def _ensure_unlocked(self) -> None:
        if self._locked:
            raise ParameterLockedError(
                f"parameter {self.full_name or self.name!r} is locked because a run uses it; "
                "call traj.node(...).unlock() first if you really mean to change it"
            )

    # -- exploration (driven by the trajectory) ----------------------------------------
    # ``traj.explore`` / ``traj.expand`` call these and keep the run table in step; call
    # them directly only on a parameter outside a trajectory.
    def coerce_range(self, values: Iterable[Any]) -> list[Any]:
        """Coerce explored values to the default's type, raising before anything changes."""
        # A list is read as it is (coerce_range returns a new one): no copy of a
        # million values more at the peak of explore.
        given = values if isinstance(values, list) else list(values)
        return coerce_range(self._default, given, where=self.full_name or self.name)

    def set_range(self, values: Sequence[Any] | None) -> None:
        """Install already coerced values, one per run (or None to stop exploring); an
        :class:`ExploredColumn` is held as it is (an array, no object per run)."""
        if type(values) is ExploredColumn:
            self._range = values  # type: ignore[assignment]  # a sequence, as loaded ranges are
        else:
            self._range = list(values) if values is not None else None
        self._changed()

    def extend_range(self, values: Sequence[Any]) -> None:
        """Append already coerced values for new runs to the explored ones."""
        if self._range is None:
            raise ExplorationError(f"{self.full_name!r} is not explored; explore it first")
        if type(self._range) is ExploredColumn:
            # Two columns of one kind (a merge's appended points): one array, no Python
            # object per value. The stored column itself stays as stored.
            joined = self._range.joined(values)
            if joined is not None:
                self._range = joined  # a sequence, as loaded
                self._changed()
                return
            self._range = self._range.tolist()
        self._range.extend(values)
        self._changed()

    def bind_range(self, values: RunValues) -> None:
        """Read the explored values from ``values``, held as given (not copied nor checked).

        For a worker's copy of the tree: ``values`` is a list-like holder that the worker
        fills with the current point only; the root is not told (its point ids come from
        the main process).
        """
        self._range = values  # type: ignore[assignment]  # read as a list: index, len

    def _changed(self) -> None:
        """Tell the root that parameter values changed (point ids must be recomputed)."""
        root = self.root
        hook = getattr(root, "_parameters_changed", None)
        if hook is not None and root is not self:
            hook(self)

    def natural_value(self) -> Any:
        return self.value

    def _summary(self) -> str:
        if type(self._default) is LazyValue:
            text = repr(self._default)
        else:
            text = f"{describe(self._default)}={short_repr(self._default, width=30)}"
        if self._range is not None:
            text += f" (explored: {len(self._range)} values)"
        return text

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.full_name or self.name!r} {self._summary()}>"


@register_leaf_class
class PickleParameter(Parameter):
    """A parameter whose values are stored pickled: for objects no other leaf can hold.

    Pickled values are unpickled only when accessed, and refused when a file is
    loaded with ``allow_pickle=False``.
    """

    __slots__ = ()
    pickles_values = True

    def check_value(self, value: Any, where: str) -> None:
        check_picklable(value, where)

    def coerce_range(self, values: Iterable[Any]) -> list[Any]:
        where = self.full_name or self.name
        values = list(values)
        for position, value in enumerate(values):
            self.check_value(value, f"{where}[{position}]")
        return values
