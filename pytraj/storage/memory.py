"""The in-memory backend: the reference every other backend is tested against.

Values are kept encoded (with :mod:`pytraj.storage.valuecodec`, or pickled for Pickle
leaves), exactly as a file would hold them, so that reading back gives fresh objects
with their exact types and no aliasing with what the simulation still holds.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from pytraj.storage.interface import (
    RUN_TABLE_DTYPE,
    ColumnData,
    RunTableData,
    Storage,
    check_bulk,
    renumbered_rows,
    run_table_row,
)
from pytraj.storage.records import (
    FailureRecord,
    LazyValue,
    LeafRecord,
    RunRecord,
    StudyDefinition,
)
from pytraj.storage.valuecodec import dumps, loads

__all__ = ["MemoryStorage"]


def _encode(value: Any, pickled: bool) -> bytes:
    if type(value) is LazyValue:
        value = value.load()
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL) if pickled else dumps(value)


def _decode(data: bytes, pickled: bool) -> Any:
    return pickle.loads(data) if pickled else loads(data)  # Pickle leaves only


def _convert(
    definition: StudyDefinition,
    annotation: Callable[[Any], Any],
    value: Callable[[Any, bool], Any],
) -> StudyDefinition:
    """A copy of ``definition`` with annotations and values converted (encoded or decoded).

    Items of per-run results hold no value in a definition (their values are columns).
    """
    leaves = [
        replace(
            leaf,
            annotations={k: annotation(v) for k, v in leaf.annotations.items()},
            default=value(leaf.default, leaf.pickled),
            explored=None
            if leaf.explored is None
            else [value(v, leaf.pickled) for v in leaf.explored],
            items={
                k: None if leaf.per_run else value(v, leaf.pickled) for k, v in leaf.items.items()
            },
        )
        for leaf in definition.leaves
    ]
    groups = [
        replace(g, annotations={k: annotation(v) for k, v in g.annotations.items()})
        for g in definition.groups
    ]
    return replace(
        definition,
        provenance=dict(definition.provenance),
        groups=groups,
        leaves=leaves,
        links=[replace(link) for link in definition.links],
        point_ids=list(definition.point_ids),
    )


class MemoryStorage(Storage):
    """Keep one trajectory in memory.

    Parameters
    ----------
    name
        The trajectory's name.
    """

    #: Nothing here survives the process.
    disposable = True

    def __init__(self, name: str) -> None:
        self.name = name
        self._definition: StudyDefinition | None = None
        self._pickled: dict[str, bool] = {}
        self._rows: dict[int, tuple[Any, ...]] = {}
        self._hosts: list[str] = []
        self._host_ids: dict[str, int] = {}
        self._failures: list[FailureRecord] = []
        self._columns: dict[tuple[str, str], dict[int, bytes]] = {}
        self._run_values: dict[int, list[tuple[str, str]]] = {}
        self._logs: dict[int, str] = {}

    # -- definition ------------------------------------------------------------------
    def write_definition(self, definition: StudyDefinition) -> None:
        for leaf in definition.leaves:
            self._pickled[leaf.path] = leaf.pickled
        self._definition = _convert(definition, dumps, _encode)

    def read_definition(self) -> StudyDefinition:
        if self._definition is None:
            return StudyDefinition(name=self.name)
        return _convert(self._definition, loads, _decode)

    def read_items(self, path: str) -> dict[str, Any]:
        for leaf in self.read_definition().leaves:
            if leaf.path == path:
                return dict(leaf.items)
        raise KeyError(path)

    # -- runs ------------------------------------------------------------------------
    def _host_id(self, host: str) -> int:
        known = self._host_ids.get(host)
        if known is None:
            known = self._host_ids[host] = len(self._hosts)
            self._hosts.append(host)
        return known

    def _learn_leaves(self, leaves: Sequence[LeafRecord]) -> None:
        for leaf in leaves:
            self._pickled.setdefault(leaf.path, leaf.pickled)

    def commit_runs(self, records: Sequence[RunRecord]) -> None:
        for record in records:
            self._learn_leaves(record.leaves)
            for key in self._run_values.pop(record.idx, []):
                self._columns[key].pop(record.idx, None)
            error = -1
            if record.failure is not None:
                error = len(self._failures)
                self._failures.append(replace(record.failure))
            self._rows[record.idx] = run_table_row(record, self._host_id(record.host), error)
            keys = []
            for key, value in record.values.items():
                self._columns.setdefault(key, {})[record.idx] = _encode(
                    value, self._pickled.get(key[0], False)
                )
                keys.append(key)
            self._run_values[record.idx] = keys
            if record.log:
                self._logs[record.idx] = record.log
            else:
                self._logs.pop(record.idx, None)

    def append_columns(
        self,
        table: RunTableData,
        columns: Mapping[tuple[str, str], ColumnData],
        leaves: Sequence[LeafRecord] = (),
    ) -> None:
        """Store runs column by column (see :meth:`Storage.append_columns`)."""
        self._learn_leaves(leaves)
        check_bulk(table, columns)
        rows = table.rows
        idxs = rows["idx"].tolist()
        for idx in idxs:
            for key in self._run_values.pop(idx, []):
                self._columns[key].pop(idx, None)
            self._logs.pop(idx, None)
        hosts = [self._host_id(host) for host in table.hosts]
        blank = self._host_id("") if (rows["host"] < 0).any() else -1
        for row in renumbered_rows(table, hosts, blank, len(self._failures)).tolist():
            self._rows[row[0]] = row
        self._failures.extend(replace(failure) for failure in table.failures)
        values: dict[int, list[tuple[str, str]]] = {idx: [] for idx in idxs}
        for key, column in columns.items():
            pickled = self._pickled.get(key[0], False)
            cells = self._columns.setdefault(key, {})
            for idx, value in zip(column.runs.tolist(), column.exact_values(), strict=True):
                cells[idx] = _encode(value, pickled)
                values[idx].append(key)
        self._run_values.update(values)

    def read_run_table(self) -> RunTableData:
        rows = np.array([self._rows[idx] for idx in sorted(self._rows)], dtype=RUN_TABLE_DTYPE)
        return RunTableData(rows=rows, hosts=list(self._hosts), failures=list(self._failures))

    def read_column(self, path: str, item: str) -> ColumnData:
        cells = self._columns.get((path, item), {})
        runs = np.array(sorted(cells), dtype=np.int64)
        pickled = self._pickled.get(path, False)
        return ColumnData(runs=runs, values=[_decode(cells[int(i)], pickled) for i in runs])

    def read_cell(self, path: str, item: str, idx: int) -> Any:
        cells = self._columns.get((path, item), {})
        if idx not in cells:
            raise KeyError((path, item, idx))
        return _decode(cells[idx], self._pickled.get(path, False))

    def read_run_log(self, idx: int) -> str:
        return self._logs.get(idx, "")
