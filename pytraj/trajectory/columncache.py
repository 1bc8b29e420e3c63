"""The column cache: per-run columns read from storage, kept until the data changes."""

from __future__ import annotations

from typing import Any, Protocol

from pytraj.errors import RunValueMissingError
from pytraj.storage.interface import ColumnData, Storage
from pytraj.storage.records import STATUS_NAMES

__all__ = ["ColumnCache", "ColumnHost"]


class _StatusTable(Protocol):
    def status(self, idx: int) -> int: ...


class ColumnHost(Protocol):
    """What the cache needs of its trajectory: the storage and the run table."""

    @property
    def storage(self) -> Storage: ...

    @property
    def run_table(self) -> _StatusTable: ...


class ColumnCache:
    """Per-run columns read from storage, valid for one version of the stored runs.

    Every commit of runs (or a new storage) makes a new version (:meth:`changed`); a
    column read under an older version is read again.
    """

    __slots__ = ("_columns", "_host", "_version")

    def __init__(self, host: ColumnHost) -> None:
        self._host = host
        self._version = 0
        self._columns: dict[tuple[str, str], tuple[int, ColumnData]] = {}

    def changed(self) -> None:
        """Runs were stored (or the storage replaced): cached columns are stale."""
        self._version += 1

    def clear(self) -> None:
        """Drop every cached column (a node left the tree)."""
        self._columns.clear()

    def column(self, path: str, item: str) -> ColumnData:
        """Every stored run's value of per-run item ``path[item]``."""
        cached = self._columns.get((path, item))
        if cached is not None and cached[0] == self._version:
            return cached[1]
        column = self._host.storage.read_column(path, item)
        self._columns[(path, item)] = (self._version, column)
        return column

    def cell(self, path: str, item: str, idx: int) -> Any:
        """Run ``idx``'s value of one per-run item, or RunValueMissingError naming its status."""
        cached = self._columns.get((path, item))
        if cached is not None and cached[0] == self._version:
            position = cached[1].position_of(idx)
            if position >= 0:
                return cached[1].value_at(position)
        else:
            try:
                return self._host.storage.read_cell(path, item, idx)
            except KeyError:
                pass
        status = STATUS_NAMES[self._host.run_table.status(idx)]
        raise RunValueMissingError(
            f"run {idx} has no value for {path}[{item!r}] (status: {status})"
        )
