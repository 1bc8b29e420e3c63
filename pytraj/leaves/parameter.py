"""Parameters: one default value and, once explored, one value per run."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pytraj.errors import ExplorationError, ParameterLockedError
from pytraj.leaves.base import Leaf, check_picklable, register_leaf_class
from pytraj.leaves.values import coerce_range, describe, short_repr
from pytraj.storage.records import LazyValue

__all__ = ["Parameter", "PickleParameter"]


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
    def _restore(
        cls, name: str, default: Any, explored: list[Any] | None, *, comment: str = ""
    ) -> Parameter:
        """Rebuild a stored parameter without checking its values again."""
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
        if LazyValue in set(map(type, self._range)):
            return tuple(self.value_at(i) for i in range(len(self._range)))
        return tuple(self._range)  # one C-level copy: 100,000 values in about 1 ms

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
    def _coerce_range(self, values: Iterable[Any]) -> list[Any]:
        """Coerce explored values to the default's type, raising before anything changes."""
        return coerce_range(self._default, list(values), where=self.full_name or self.name)

    def _set_range(self, values: Sequence[Any] | None) -> None:
        """Install already coerced values (or None to stop exploring)."""
        self._range = list(values) if values is not None else None
        self._changed()

    def _extend_range(self, values: Sequence[Any]) -> None:
        if self._range is None:
            raise ExplorationError(f"{self.full_name!r} is not explored; explore it first")
        self._range.extend(values)
        self._changed()

    def _changed(self) -> None:
        """Tell the root that parameter values changed (point ids must be recomputed)."""
        root = self.root
        hook = getattr(root, "_parameters_changed", None)
        if hook is not None and root is not self:
            hook(self)

    def _natural(self) -> Any:
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

    def _coerce_range(self, values: Iterable[Any]) -> list[Any]:
        where = self.full_name or self.name
        values = list(values)
        for position, value in enumerate(values):
            self.check_value(value, f"{where}[{position}]")
        return values
