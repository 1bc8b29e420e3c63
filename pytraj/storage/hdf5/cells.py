"""Per-run columns: one store per item across all runs, its run -> row index, overflow.

The first value written fixes the store (:func:`~pytraj.storage.hdf5.columns.spec_for`);
a later value that does not fit goes, exactly, into the column's ``overflow`` heap as
valuecodec bytes. ``cells`` records, in commit order, which row holds which run's value;
the latest cell of a run wins, so a run committed again simply appends. Reading a whole
column is one read per store; reading one run's value is one row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytraj.storage.hdf5.codecs import PickleLoader, decode_text, encode_text
from pytraj.storage.hdf5.columns import (
    TABLE_CHUNK_BYTES,
    ColumnSpec,
    append_heap,
    append_rows,
    chunk_rows,
    create_heap,
    create_store,
    heap_sample,
    read_all_rows,
    read_heap_all,
    read_heap_row,
    read_one_row,
    spec_for,
    store_length,
)
from pytraj.storage.hdf5.layout import CELLS, COLUMNS, OVERFLOW, RUN_ROWS, VALUES
from pytraj.storage.hdf5.options import FileOptions
from pytraj.storage.hdf5.sizes import read_leaf
from pytraj.storage.interface import ColumnData
from pytraj.storage.valuecodec import dumps, loads

__all__ = [
    "TOMBSTONE",
    "ColumnState",
    "forget_run_rows",
    "has_child",
    "list_columns",
    "read_cell_value",
    "read_column_data",
    "read_mapping",
    "read_run_row",
    "require_group",
    "write_column",
    "write_run_rows",
]

#: Stands in a column buffer for "this run no longer has a value here".
TOMBSTONE: Any = type("Tombstone", (), {"__repr__": lambda self: "TOMBSTONE"})()

_NO_VALUE = -1
#: Runs further apart than this in ``run_rows`` are rewritten as separate blocks.
_BLOCK_GAP = 8192
#: On ``run_rows``: how many cells it covers.
_COVERS = "cells"


@dataclass(slots=True)
class ColumnState:
    """What a storage knows about one column of the file."""

    spec: ColumnSpec | None = None
    nrows: int = 0
    noverflow: int = 0


def require_group(h5: Any, path: str) -> Any:
    """The group at ``path``, created with its parents when missing."""
    try:
        return h5.get_node(path)
    except LookupError:
        parent, _, name = path.rpartition("/")
        return h5.create_group(require_group(h5, parent or "/"), name)


def load_state(group: Any) -> ColumnState:
    """The state of an existing column group."""
    spec = ColumnSpec.from_attrs(group._v_attrs)
    if spec is None:
        return ColumnState()
    noverflow = 0
    if f"{OVERFLOW}_ends" in group._v_children:
        noverflow = store_length(group, OVERFLOW, ColumnSpec("encoded", "encoded"))
    return ColumnState(spec, store_length(group, VALUES, spec), noverflow)


def list_columns(runs_group: Any) -> list[tuple[str, str]]:
    """Every column created in a trajectory, as ``(leaf path, item)`` keys."""
    if COLUMNS not in runs_group._v_children:
        return []
    keys = []
    for raw in read_leaf(runs_group._f_get_child(COLUMNS)):
        path, _, item = decode_text(raw).partition("\t")
        keys.append((path, item))
    return keys


def write_column(
    h5: Any,
    group_path: str,
    runs_group: Any,
    key: tuple[str, str],
    *,
    state: ColumnState | None,
    idxs: Sequence[int],
    values: Sequence[Any],
    pickled: bool,
    options: FileOptions,
    expected: int,
) -> ColumnState:
    """Append buffered cells (run ``idxs[k]`` gets ``values[k]``, maybe a TOMBSTONE).

    Creates the column, fixing its store by the first value, when it does not exist yet.
    Returns the column's new state.
    """
    group = require_group(h5, group_path)
    if state is None:
        state = load_state(group)
    spec = state.spec
    created = spec is None
    if spec is None:
        first = next((value for value in values if value is not TOMBSTONE), TOMBSTONE)
        if first is TOMBSTONE:
            return state  # only "no value" cells for a column that holds nothing
        spec = spec_for(first, pickled)
    main: list[Any] = []
    overflow: list[bytes] = []
    nrows, noverflow = state.nrows, state.noverflow
    if spec.all_fit(values):
        # A column of Python scalars (a merge hands over whole columns): no value needs
        # the overflow heap, and each goes into the next row.
        main = list(values)
        rows = np.arange(nrows, nrows + len(main), dtype=np.int64)
    else:
        rows = np.empty(len(values), dtype=np.int64)
        fits = spec.fits
        for position, value in enumerate(values):
            if value is TOMBSTONE:
                rows[position] = _NO_VALUE
            elif fits(value):
                rows[position] = nrows + len(main)
                main.append(value)
            else:
                rows[position] = -2 - (noverflow + len(overflow))
                overflow.append(dumps(value))
    if created:
        # The first rows decide whether a heap is compressed: only the first few are
        # encoded twice, once per column.
        sample = heap_sample([spec.to_bytes(value) for value in main[:8]]) if spec.is_heap else b""
        create_store(h5, group, VALUES, spec, options=options, expected=expected, sample=sample)
        create_cells(h5, group, options, expected)
        spec.to_attrs(group._v_attrs)
        runs_group._f_get_child(COLUMNS).append(encode_text(f"{key[0]}\t{key[1]}"))
        state.spec = spec
    append_rows(group, VALUES, spec, main)
    if overflow:
        if f"{OVERFLOW}_ends" not in group._v_children:
            create_heap(h5, group, OVERFLOW, options, expected, sample=heap_sample(overflow))
        append_heap(group, OVERFLOW, overflow)
    cells = np.empty((len(values), 2), dtype=np.int64)
    cells[:, 0] = idxs
    cells[:, 1] = rows
    group._f_get_child(CELLS).append(cells)
    write_run_rows(h5, group, options=options, expected=expected, idxs=cells[:, 0], rows=rows)
    return ColumnState(spec, nrows + len(main), noverflow + len(overflow))


def create_cells(h5: Any, group: Any, options: FileOptions, expected: int) -> None:
    """The ``cells`` of a column: (run index, row) pairs, compressed (both mostly grow).

    An EArray rather than a Table: it opens several times faster, which every flush
    pays once per column.
    """
    import tables  # keeps import pytraj fast: PyTables loads on first use

    node = h5.create_earray(
        group,
        CELLS,
        atom=tables.Int64Atom(),
        shape=(0, 2),
        filters=options.table_filters(),
        chunkshape=(chunk_rows(16, expected, TABLE_CHUNK_BYTES), 2),
    )
    node._v_attrs["columns"] = "idx,row"


def _latest(
    idx: np.ndarray[Any, Any], row: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Cells in commit order -> one per run (ascending), the latest cell of each run."""
    if len(idx) > 1 and not bool(np.all(idx[1:] > idx[:-1])):
        # The first occurrence in reversed order is the latest.
        runs, first = np.unique(idx[::-1], return_index=True)
        return runs, row[len(row) - 1 - first]
    return idx, row


def _cells_mapping(group: Any) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The latest cell of each run, read from all of ``cells`` (rows -1 included)."""
    cells = read_leaf(group._f_get_child(CELLS))
    return _latest(np.ascontiguousarray(cells[:, 0]), np.ascontiguousarray(cells[:, 1]))


def _current_index(group: Any, cells: int) -> Any:
    """The column's ``run_rows`` if it covers exactly ``cells`` cells, else None.

    The index records how many cells it covers: one written by a writer that did not
    keep it (layout 1), or cut short by an error, is not used (and is rebuilt by the next
    writer), so the index never says other than the cells do.
    """
    if not has_child(group, RUN_ROWS):
        return None
    node = group._f_get_child(RUN_ROWS)
    covers = getattr(node._v_attrs, _COVERS, -1)
    return node if int(covers) == cells else None


def forget_run_rows(h5: Any, runs_group: Any, paths: Callable[[tuple[str, str]], str]) -> None:
    """Mark every column's ``run_rows`` out of date, so the next write rebuilds it.

    Called before a journal is replayed into a file whose writer stopped uncleanly: a
    kill inside a flush can leave an index whose blocks were rewritten on disk while
    the cells they describe were not, and only the cells are authoritative. ``paths``
    maps a column key to its group's path.
    """
    for key in list_columns(runs_group):
        try:
            group = h5.get_node(paths(key))
        except LookupError:
            continue
        if RUN_ROWS in group._v_children:
            group._f_get_child(RUN_ROWS)._v_attrs[_COVERS] = -1


def write_run_rows(
    h5: Any,
    group: Any,
    *,
    options: FileOptions,
    expected: int,
    idxs: np.ndarray[Any, Any],
    rows: np.ndarray[Any, Any],
) -> None:
    """Enter cells just appended (run ``idxs[k]`` -> ``rows[k]``) into ``run_rows``.

    A column without a current index (a file of layout 1) gets it built from all its
    cells. Rows already in the index are rewritten in blocks around the runs that
    changed; new runs are appended (runs in between get -1).
    """
    import tables  # keeps import pytraj fast: PyTables loads on first use

    cells = int(group._f_get_child(CELLS).nrows)
    node = _current_index(group, cells - len(idxs))
    if node is not None:
        idxs, rows = _latest(idxs, rows)
    else:
        if RUN_ROWS in group._v_children:
            group._f_get_child(RUN_ROWS)._f_remove()
        node = h5.create_earray(
            group,
            RUN_ROWS,
            atom=tables.Int64Atom(),
            shape=(0,),
            filters=options.table_filters(),
            # At least 8 KB a chunk: a study expected small may still grow large.
            chunkshape=(chunk_rows(8, max(expected, 1024), TABLE_CHUNK_BYTES),),
        )
        idxs, rows = _cells_mapping(group)
    length = int(node.nrows)
    inside = int(np.searchsorted(idxs, length))
    if inside:
        # Runs committed again, or out of order by a pool: rewrite the blocks they fall
        # in; gaps of a chunk or more between them start a new block.
        old_idxs, old_rows = idxs[:inside], rows[:inside]
        breaks = np.flatnonzero(np.diff(old_idxs) > _BLOCK_GAP) + 1
        for part_idxs, part_rows in zip(
            np.split(old_idxs, breaks), np.split(old_rows, breaks), strict=True
        ):
            start, stop = int(part_idxs[0]), int(part_idxs[-1]) + 1
            block = read_leaf(node, start, stop)
            block[part_idxs - start] = part_rows
            node[start:stop] = block
    if inside < len(idxs):
        fresh = np.full(int(idxs[-1]) + 1 - length, _NO_VALUE, dtype=np.int64)
        fresh[idxs[inside:] - length] = rows[inside:]
        node.append(fresh)
    node._v_attrs[_COVERS] = cells


def has_child(group: Any, name: str) -> bool:
    """Whether ``group`` holds a node ``name``, looked up by name: listing the group's
    children (``name in group._v_children``) makes PyTables open its parent group too,
    reading every attribute of it."""
    return bool(group._g_get_objinfo(name) != "NoSuchNode")


def _index_of(group: Any) -> Any:
    """The column's current ``run_rows`` (None: read the cells instead)."""
    if not has_child(group, RUN_ROWS):
        return None
    return _current_index(group, int(group._f_get_child(CELLS).nrows))


def read_run_row(group: Any, idx: int) -> int | None:
    """Where run ``idx``'s value is (a ``cells`` row code; -1: it has none).

    Reads one element of ``run_rows``; None when the column has no current index (a
    file of layout 1): then :func:`read_mapping` finds it.
    """
    node = _index_of(group)
    if node is None:
        return None
    if not 0 <= idx < node.nrows:
        return _NO_VALUE
    return int(node[idx])


def read_mapping(group: Any) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """``(runs, rows)``: the runs that have a value (ascending) and where each value is."""
    node = _index_of(group)
    if node is not None:
        every = read_leaf(node)
        runs = np.flatnonzero(every != _NO_VALUE).astype(np.int64, copy=False)
        # Each run with a value has a cell. An index that says more (a flush killed after
        # rewriting some of its blocks, or damaged bytes) would hand some run another
        # run's value: the cells decide instead.
        if len(runs) <= int(getattr(node._v_attrs, _COVERS)):
            # Every run has a value (the usual finished study): the index is the rows.
            return runs, every if len(runs) == len(every) else every[runs]
    idx, row = _cells_mapping(group)
    keep = row != _NO_VALUE
    if not keep.all():
        idx, row = idx[keep], row[keep]
    return idx, row


def _pickle_reader(allowed: bool, where: str) -> Callable[[Any], Any]:
    def unpickle(raw: Any) -> Any:
        return PickleLoader(bytes(raw), allowed, where)()

    return unpickle


def read_column_data(
    group: Any,
    spec: ColumnSpec,
    runs: np.ndarray[Any, Any],
    rows: np.ndarray[Any, Any],
    *,
    allow_pickle: bool,
    where: str,
) -> ColumnData:
    """All values of a column (one read per store)."""
    if not len(runs):
        return ColumnData(runs=runs, values=[])
    stored = read_all_rows(group, VALUES, spec)
    element = _pickle_reader(allow_pickle, where) if spec.kind == "pickle" else spec.element()
    if bool(np.all(rows >= 0)):
        if isinstance(stored, np.ndarray):
            same = len(rows) == len(stored) and bool(np.all(rows == np.arange(len(rows))))
            return ColumnData(runs=runs, values=stored if same else stored[rows], convert=element)
        return ColumnData(runs=runs, values=[stored[r] for r in rows.tolist()], convert=element)
    overflow = [loads(raw) for raw in read_heap_all(group, OVERFLOW)]
    values: list[Any] = []
    for row in rows.tolist():
        if row >= 0:
            value = stored[row]
            values.append(element(value) if element is not None else value)
        else:
            values.append(overflow[-2 - row])
    return ColumnData(runs=runs, values=values)


def read_cell_value(
    group: Any, spec: ColumnSpec, row: int, *, allow_pickle: bool, where: str
) -> Any:
    """One run's value, read from its row."""
    if row <= -2:
        return loads(read_heap_row(group, OVERFLOW, -2 - row))
    value = read_one_row(group, VALUES, spec, row)
    if spec.kind == "pickle":
        return PickleLoader(value, allow_pickle, where)()
    return value
