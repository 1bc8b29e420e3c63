"""Annotations: a small mapping of named values attached to every node."""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

from pytraj.tree.names import validate_name

__all__ = ["Annotations", "set_value_validator"]

# The tree knows nothing of which values can be stored; the leaves layer installs its
# check here when it is imported, so an unstorable annotation fails when it is set.
_validate_value: Callable[[Any, str], None] = lambda value, where: None  # noqa: E731


def set_value_validator(validator: Callable[[Any, str], None]) -> None:
    """Install the function that checks annotation values (called by ``pytraj.leaves``)."""
    global _validate_value  # noqa: PLW0603  # a single process-wide hook, set once at import
    _validate_value = validator


class Annotations(MutableMapping[str, Any]):
    """Named values describing a node (``node.annotations["unit"] = "mV"``).

    Keys follow the node naming rules; values are any value pytraj can store.
    """

    __slots__ = ("_data", "_owner")

    def __init__(self, owner: str = "", data: dict[str, Any] | None = None) -> None:
        self._owner = owner
        self._data: dict[str, Any] = {}
        if data:
            self.update(data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        validate_name(key, parent=f"{self._owner} annotations")
        _validate_value(value, f"{self._owner or 'node'} annotation {key!r}")
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Annotations({self._data!r})"

    def to_dict(self) -> dict[str, Any]:
        """Return a plain dict copy."""
        return dict(self._data)
