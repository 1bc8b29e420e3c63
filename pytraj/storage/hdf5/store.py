"""One trajectory's group in an open file: the reads, and the bulk writes of a writer.

:class:`TrajectoryStore` reads the definition (skeleton), run table and columns on demand,
one read per store; run i's value of a column is one row, found through the column's
run -> row index, which is read once and kept. It also holds the writer's buffers and
writes them into a file that its caller opened (:meth:`TrajectoryStore.write_pending`).
It takes no lock and keeps no journal: recovery replays a journal through it, and
:class:`~pytraj.storage.hdf5.backend.HDF5Storage` adds the writer role on top.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pytraj.crashpoints import crash_point
from pytraj.errors import TrajectoryNotFoundError
from pytraj.storage.explored import is_stored_column
from pytraj.storage.hdf5 import runs as run_nodes
from pytraj.storage.hdf5.buffering import RunBuffers
from pytraj.storage.hdf5.cells import (
    ColumnState,
    list_columns,
    read_cell_value,
    read_column_data,
    read_mapping,
    read_run_row,
    write_column,
)
from pytraj.storage.hdf5.codecs import (
    Pickled,
    PickleLoader,
    get_attr,
    lazy_value,
    pickled_lazy,
    read_value,
)
from pytraj.storage.hdf5.columns import ColumnSpec
from pytraj.storage.hdf5.definitions import materialize, write_definition
from pytraj.storage.hdf5.files import FileState
from pytraj.storage.hdf5.layout import (
    JOURNAL_ID,
    JOURNAL_RUNS,
    LOG_KEY,
    RUN_TABLE,
    RUNS,
    column_path,
    node_path,
    traj_path,
)
from pytraj.storage.hdf5.options import FileOptions
from pytraj.storage.hdf5.samedefinition import same_explored
from pytraj.storage.hdf5.sizes import check_count, read_leaf
from pytraj.storage.hdf5.skeleton import holds_definition, read_definition, read_items
from pytraj.storage.hdf5.skeletonnode import ReadAttrs
from pytraj.storage.interface import BLOCK_BYTES, ColumnData, RunTableData, value_nbytes
from pytraj.storage.records import LazyValue, StudyDefinition

__all__ = ["CELL_READS_PER_COLUMN", "TrajectoryStore"]

#: Cell reads of one column after which the whole column is read (and kept) instead.
CELL_READS_PER_COLUMN = 16

_Key = tuple[str, str]


class TrajectoryStore(RunBuffers):
    """Trajectory ``name`` in a pytraj HDF5 file: reads, buffers and bulk writes.

    Parameters
    ----------
    state
        The process-wide state of the file.
    name
        The trajectory's name (its group in the file).
    allow_pickle
        Whether values of Pickle leaves may be unpickled on access.
    options
        Compression settings for nodes this storage creates.
    read_only
        Whether the trajectory may never be written through this object.
    """

    #: Set for a file that a crash discards anyway (a merge writing a temporary file
    #: that is renamed into place once complete): its writer keeps no journal, which
    #: would protect nothing, and does not fsync on close (the owner of the temporary
    #: file fsyncs it once, before renaming it into place).
    disposable = False

    def __init__(
        self,
        state: FileState,
        name: str,
        *,
        allow_pickle: bool = True,
        options: FileOptions | None = None,
        read_only: bool = False,
    ) -> None:
        self._state = state
        # A read-only storage never writes (nor replays a journal): ``writable`` tells
        # the trajectory not to store its definition on close.
        self.writable = not read_only
        self.name = name
        self.allow_pickle = allow_pickle
        self.options = options if options is not None else FileOptions()
        self._stored: StudyDefinition | None = None
        self._pending_definition: StudyDefinition | None = None
        self._is_writer = False
        # Buffers of the writer, emptied by every flush.
        self._rows: list[tuple[Any, ...]] = []
        self._row_blocks: list[np.ndarray] = []
        self._failures: list[Any] = []
        self._new_hosts: list[str] = []
        self._buffers: dict[_Key, tuple[list[int], list[Any]]] = {}
        self._bulk_bytes = 0
        self._dirty = False
        # What the writer knows of the file.
        self._pickled: dict[str, bool] = {}
        self._host_ids: dict[str, int] = {}
        self._n_failures = 0
        self._committed = np.zeros(0, dtype=bool)
        self._unread_below = 0
        self._known_columns: set[_Key] = set()
        self._column_states: dict[_Key, ColumnState] = {}
        # Read caches, valid for one flush generation.
        self._mappings: dict[_Key, tuple[int, ColumnSpec, np.ndarray, np.ndarray]] = {}
        self._specs: dict[_Key, tuple[int, ColumnSpec]] = {}
        self._columns: dict[_Key, tuple[int, ColumnData]] = {}
        self._cell_reads: dict[_Key, int] = {}
        # In a held reading scope: each column's group node, valid for one handle
        # (FileState.epoch) and one flush generation.
        self._held_groups: dict[_Key, tuple[int, int, Any, ColumnSpec]] = {}
        # Explored columns read lazily from this file (see _pin_stored_columns).
        self._handed_out: list[weakref.ref[Any]] = []

    # -- identity --------------------------------------------------------------------
    @property
    def path(self) -> Path:
        """The HDF5 file."""
        return self._state.path

    @property
    def has_pending(self) -> bool:
        """Whether committed runs or a definition wait to be written to HDF5."""
        return self._dirty

    @property
    def is_writer(self) -> bool:
        """Whether this storage currently writes its file."""
        return self._is_writer

    @property
    def stored_definition(self) -> StudyDefinition | None:
        """The definition the file holds, as last read or written here (None before)."""
        return self._stored

    # -- writing into an open file ---------------------------------------------------
    def buffer_definition(self, definition: StudyDefinition) -> None:
        for leaf in definition.leaves:
            self._pickled[leaf.path] = leaf.pickled
        self._pending_definition = definition
        self._dirty = True

    def start_writing(self, h5: Any, *, new: bool = False) -> None:
        """Learn what the writer needs from the file (called when it becomes the writer).

        ``new`` says that the trajectory's group was just created: it holds the empty
        definition, which is not read back.
        """
        group = h5.get_node(traj_path(self.name))
        runs = group._f_get_child(RUNS)
        hosts = run_nodes.read_hosts(runs)
        self._host_ids = {host: position for position, host in enumerate(hosts)}
        self._n_failures = run_nodes.count_failures(runs)
        table = runs._f_get_child(RUN_TABLE)
        self._committed = np.zeros(0, dtype=bool)
        # The runs the file holds are read when a commit first touches a run below this
        # bound (a run is committed only after the definition that counts it), not here:
        # a merge appends runs above it, and reading 100,000 rows would be wasted.
        self._unread_below = (
            max(int(get_attr(group._v_attrs, "n_runs", 1)), int(table.nrows)) if table.nrows else 0
        )
        self._known_columns = set(list_columns(runs))
        self._column_states = {}
        if new:
            self._stored = StudyDefinition(name=self.name, n_runs=1, created=0.0)
        elif self._stored is None:
            self._stored = read_definition(h5, group, self)
            self._hand_out(self._stored)
        for leaf in self._stored.leaves:
            self._pickled.setdefault(leaf.path, leaf.pickled)
        self._is_writer = True

    def read_committed(self) -> None:
        """Mark the runs the file holds as committed (see :meth:`start_writing`)."""
        self._unread_below = 0
        with self._state.reading(f"{traj_path(self.name)}/{RUNS}/{RUN_TABLE}") as h5:
            group = self._group(h5)
            table = group._f_get_child(RUNS)._f_get_child(RUN_TABLE)
            indices = read_leaf(table, field="idx")
            if not len(indices):
                return
            # A run index sizes an array: a damaged one must not ask for terabytes. A run
            # is committed only after the definition that counts it (or by this writer).
            known = max(
                int(get_attr(group._v_attrs, "n_runs", 1)), int(table.nrows), len(self._committed)
            )
            top = check_count(table, int(indices.max()) + 1, known, "run index")
        self._mark_committed(top - 1)
        self._committed[indices] = True

    def stop_writing(self) -> None:
        """Forget the writer's view of the file (called when it gives the role up)."""
        self._is_writer = False

    def write_pending(self, h5: Any) -> None:
        """Write the buffers into the open file (called by the file's flush)."""
        group = self._group(h5)
        runs = group._f_get_child(RUNS)
        pending = self._pending_definition
        if pending is not None:
            if not same_explored(self._stored, pending):
                self._pin_stored_columns()
            write_definition(h5, group, self._stored, pending, self.options)
            self._stored = pending
            self._pending_definition = None
        expected = max(self._stored.n_runs if self._stored is not None else 1, 1)
        for key in list(self._buffers):
            idxs, values = self._buffers[key]
            self._column_states[key] = write_column(
                h5,
                column_path(self.name, key),
                runs,
                key,
                state=self._column_states.get(key),
                idxs=idxs,
                values=values,
                pickled=self._pickled.get(key[0], False),
                options=self.options,
                expected=expected,
            )
            del self._buffers[key]  # written: a retry after an error must not repeat it
            crash_point("column")
        if self._new_hosts:
            run_nodes.append_hosts(runs, self._new_hosts)
            self._new_hosts = []
        if self._failures:
            run_nodes.append_failures(runs, self._failures, self.options)
            self._n_failures += len(self._failures)
            self._failures = []
        rows = self.pending_rows()
        if len(rows):
            run_nodes.append_rows(runs, rows)
        self.drop_rows()
        self._bulk_bytes = 0
        journal = self._state.journal
        if journal is not None:
            group._v_attrs[JOURNAL_ID] = journal.header.journal_id.hex()
            group._v_attrs[JOURNAL_RUNS] = self._state.journal_counts.get(self.name, 0)
        self._dirty = False

    # -- definitions -----------------------------------------------------------------
    def materialized(self, definition: StudyDefinition, *, journal: bool) -> StudyDefinition:
        """``definition`` with the items it left in the file read (see :func:`materialize`)."""
        return materialize(definition, self._read_items_now, journal=journal)

    def _read_items_now(self, path: str) -> dict[str, Any]:
        """Items of a stored result, straight from the file (no flush)."""
        with self._state.reading(node_path(self.name, path)) as h5:
            try:
                return read_items(h5, self._group(h5), path, self)
            except KeyError:
                return {}

    # Loaders for the skeleton: lazily read and unpickled values.
    def lazy(self, path: str, description: str) -> LazyValue:
        """A value of node ``path`` read when first accessed."""
        state = self._state
        allowed = self.allow_pickle

        def load() -> Any:
            with state.reading(path) as h5:
                value = read_value(h5.get_node(path))
            if type(value) is Pickled:
                return PickleLoader(value.raw, allowed, description)()
            return value

        return lazy_value(load, description)

    def pickled(self, raw: bytes, where: str) -> LazyValue:
        """A pickled value, unpickled when first accessed (if allowed)."""
        return pickled_lazy(raw, self.allow_pickle, where)

    def table_field(
        self, path: str, field: str, convert: Callable[[np.ndarray], np.ndarray]
    ) -> Callable[[], np.ndarray]:
        """A reader of column ``field`` of table ``path``: one read of that field."""
        state = self._state
        traj = self.name

        def load() -> np.ndarray:
            with state.reading(path) as h5:
                try:
                    table = h5.get_node(path)
                except LookupError:
                    raise TrajectoryNotFoundError(
                        f"{state.path} no longer holds {path} of trajectory {traj!r} (was it "
                        "overwritten or removed?); load it again with pytraj.load"
                    ) from None
                return convert(read_leaf(table, field=field))

        return load

    def _hand_out(self, definition: StudyDefinition) -> None:
        """Remember the columns of ``definition`` still in the file (see below)."""
        columns = [leaf.explored for leaf in definition.leaves]
        alive = [ref for ref in self._handed_out if ref() is not None]
        alive += [weakref.ref(c) for c in [*columns, definition.point_ids] if is_stored_column(c)]
        self._handed_out = alive

    def _pin_stored_columns(self) -> None:
        """Read every explored column handed out and not read yet: the file's explored
        table is about to be rewritten or grow, and they must keep what it holds now
        (the definition being written may hold some of them)."""
        handed_out, self._handed_out = self._handed_out, []
        for ref in handed_out:
            column = ref()
            if column is not None:
                column.load()

    # -- reading ---------------------------------------------------------------------
    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Keep the file open across several reads (loading a trajectory makes a few)."""
        self._state.flush_pending()
        with self._state.reading():
            yield

    @contextlib.contextmanager
    def held_open(self) -> Iterator[None]:
        """Keep the file open for reading until the block ends (``traj.reading()``)."""
        self._state.flush_pending()
        with self._state.holding():
            yield

    def _group(self, h5: Any) -> Any:
        try:
            return h5.get_node(traj_path(self.name))
        except LookupError:
            raise TrajectoryNotFoundError(
                f"{self.path} no longer holds trajectory {self.name!r} (was it overwritten "
                "or removed?); load it again with pytraj.load"
            ) from None

    def read_definition(self) -> StudyDefinition:
        self._state.flush_pending()
        with self._state.reading(traj_path(self.name)) as h5:
            definition = read_definition(h5, self._group(h5), self)
        self._hand_out(definition)
        # What the file holds now: later definitions are compared with it.
        self._stored = definition
        return definition

    def has_definition(self) -> bool:
        if self._pending_definition is not None:
            return True
        self._state.flush_pending()
        with self._state.reading() as h5:
            return holds_definition(self._group(h5))

    def read_items(self, path: str) -> dict[str, Any]:
        self._state.flush_pending()
        items = self._read_items_now_or_raise(path)
        stored = self._stored
        if stored is not None:
            for leaf in stored.leaves:
                if leaf.path == path and not leaf.per_run:
                    # Remember what was handed out: an unchanged item is not rewritten.
                    leaf.items.update(items)
        return items

    def _read_items_now_or_raise(self, path: str) -> dict[str, Any]:
        with self._state.reading(node_path(self.name, path)) as h5:
            return read_items(h5, self._group(h5), path, self)

    def column_keys(self) -> list[tuple[str, str]]:
        """Every per-run column the file holds, as ``(leaf path, item)`` keys."""
        self._state.flush_pending()
        with self._state.reading() as h5:
            return list_columns(h5.get_node(f"{traj_path(self.name)}/{RUNS}"))

    def read_run_table(self) -> RunTableData:
        self._state.flush_pending()
        with self._state.reading(f"{traj_path(self.name)}/{RUNS}") as h5:
            runs = self._group(h5)._f_get_child(RUNS)
            rows, failures = run_nodes.read_rows(runs), run_nodes.read_failures(runs)
            run_nodes.check_failure_ids(rows, failures)
            return RunTableData(rows=rows, hosts=run_nodes.read_hosts(runs), failures=failures)

    def _mapping(self, h5: Any, key: _Key) -> tuple[ColumnSpec, np.ndarray, np.ndarray] | None:
        generation = self._state.generation
        cached = self._mappings.get(key)
        if cached is not None and cached[0] == generation:
            return cached[1], cached[2], cached[3]
        try:
            group = h5.get_node(column_path(self.name, key))
        except LookupError:
            return None
        spec = ColumnSpec.from_attrs(ReadAttrs(group._v_attrs))
        if spec is None:
            return None
        runs, rows = read_mapping(group)
        self._mappings[key] = (generation, spec, runs, rows)
        return spec, runs, rows

    def read_column(self, path: str, item: str) -> ColumnData:
        self._state.flush_pending()
        key = (path, item)
        cached = self._columns.get(key)
        if cached is not None and cached[0] == self._state.generation:
            return cached[1]
        with self._state.reading(column_path(self.name, key)) as h5:
            self._group(h5)
            found = self._mapping(h5, key)
            if found is None:
                column = ColumnData(runs=np.zeros(0, dtype=np.int64), values=[])
            else:
                spec, runs, rows = found
                column = read_column_data(
                    h5.get_node(column_path(self.name, key)),
                    spec,
                    runs,
                    rows,
                    allow_pickle=self.allow_pickle,
                    where=f"{path}[{item!r}]",
                )
        self._columns[key] = (self._state.generation, column)
        return column

    def iter_column(
        self, path: str, item: str, block_bytes: int = BLOCK_BYTES
    ) -> Iterator[ColumnData]:
        """Scalars and text: the whole column at once (one read); arrays, ragged values
        and pickles: row by row, in blocks of about ``block_bytes`` (the file is open
        only while a block is read)."""
        self._state.flush_pending()
        key = (path, item)
        with self._state.reading() as h5:
            self._group(h5)
            found = self._mapping(h5, key)
        if found is None:
            return
        spec, runs, rows = found
        if spec.is_small:
            column = self.read_column(path, item)
            if len(column):
                yield column
            return
        start = 0
        while start < len(runs):
            values: list[Any] = []
            size = 0
            stop = start
            with self._state.reading() as h5:
                group = h5.get_node(column_path(self.name, key))
                while stop < len(runs) and (size < block_bytes or stop == start):
                    value = read_cell_value(
                        group,
                        spec,
                        int(rows[stop]),
                        allow_pickle=self.allow_pickle,
                        where=f"{path}[{item!r}] of run {int(runs[stop])}",
                    )
                    values.append(value)
                    size += value_nbytes(value)
                    stop += 1
            yield ColumnData(runs=runs[start:stop], values=values)
            start = stop

    def read_column_runs(self, path: str, item: str) -> np.ndarray:
        self._state.flush_pending()
        key = (path, item)
        cached = self._columns.get(key)
        if cached is not None and cached[0] == self._state.generation:
            return cached[1].runs
        with self._state.reading() as h5:
            self._group(h5)
            found = self._mapping(h5, key)
        return found[1] if found is not None else np.zeros(0, dtype=np.int64)

    def read_cell(self, path: str, item: str, idx: int) -> Any:
        self._state.flush_pending()
        key = (path, item)
        generation = self._state.generation
        cached = self._columns.get(key)
        if self._state.is_held and (cached is None or cached[0] != generation):
            return self._held_cell(key, idx, generation)
        if cached is None or cached[0] != generation:
            reads = self._cell_reads.get(key, 0) + 1
            self._cell_reads[key] = reads
            known = self._specs.get(key)
            if reads > CELL_READS_PER_COLUMN and known is not None and known[1].is_small:
                # Many single reads of a column of scalars or text: one read of all of it
                # is cheaper (never for arrays, which could fill the memory).
                self.read_column(path, item)
                cached = self._columns.get(key)
        if cached is not None and cached[0] == generation:
            position = cached[1].position_of(idx)
            if position < 0:
                raise KeyError((path, item, idx))
            return cached[1].value_at(position)
        with self._state.reading(column_path(self.name, key)) as h5:
            try:
                group = h5.get_node(column_path(self.name, key))
            except LookupError:
                # The trajectory's group is opened only here: PyTables reads every
                # attribute of a node it opens, and this one has dozens.
                self._group(h5)
                raise KeyError((path, item, idx)) from None
            spec = ColumnSpec.from_attrs(ReadAttrs(group._v_attrs))
            if spec is None:
                raise KeyError((path, item, idx))
            self._specs[key] = (generation, spec)
            # One element of the column's run -> row index; files of layout 1 have none,
            # and their whole mapping is read (once per flush generation) instead.
            row = read_run_row(group, idx)
            if row is None:
                row = self._row_from_mapping(h5, key, idx)
            if row == -1:
                raise KeyError((path, item, idx))
            return read_cell_value(
                group,
                spec,
                row,
                allow_pickle=self.allow_pickle,
                where=f"{path}[{item!r}] of run {idx}",
            )

    def _held_cell(self, key: _Key, idx: int, generation: int) -> Any:
        """Run ``idx``'s value in a held reading scope: the column's group node and its
        run -> row mapping are resolved once (per handle and flush) and reused."""
        where = column_path(self.name, key)
        with self._state.reading(where) as h5:
            epoch = self._state.epoch
            held = self._held_groups.get(key)
            if held is None or held[0] != epoch or held[1] != generation:
                self._group(h5)
                try:
                    group = h5.get_node(where)
                except LookupError:
                    raise KeyError((*key, idx)) from None
                spec = ColumnSpec.from_attrs(ReadAttrs(group._v_attrs))
                if spec is None:
                    raise KeyError((*key, idx))
                held = self._held_groups[key] = (epoch, generation, group, spec)
            row = self._row_from_mapping(h5, key, idx)
            if row == -1:
                raise KeyError((*key, idx))
            return read_cell_value(
                held[2],
                held[3],
                row,
                allow_pickle=self.allow_pickle,
                where=f"{key[0]}[{key[1]!r}] of run {idx}",
            )

    def _row_from_mapping(self, h5: Any, key: _Key, idx: int) -> int:
        found = self._mapping(h5, key)
        if found is None:
            return -1
        _, runs, rows = found
        position = int(np.searchsorted(runs, idx))
        if position >= len(runs) or runs[position] != idx:
            return -1
        return int(rows[position])

    def read_run_log(self, idx: int) -> str:
        try:
            log = self.read_cell(*LOG_KEY, idx)
        except KeyError:
            return ""
        return str(log)
