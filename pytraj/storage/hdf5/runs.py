"""The ``runs`` group of a trajectory: run table, hosts, failures, the list of columns.

The run table is append-only: a run committed again (a retry) appends a new row and the
latest row of each run wins when it is read. ``host`` indexes ``hosts`` and ``error``
indexes ``failures`` (one row per failed attempt, with its texts in four aligned
``VLArray`` nodes), so a row stays small (55 bytes before compression).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pytraj.storage.hdf5.codecs import decode_text, encode_text
from pytraj.storage.hdf5.columns import TABLE_CHUNK_BYTES, chunk_rows
from pytraj.storage.hdf5.layout import (
    COLUMNS,
    FAILURE_TEXTS,
    FAILURES,
    HOSTS,
    POINT_ID_DTYPES,
    RUN_TABLE,
    RUNS,
    SCHEMA_VERSION,
)
from pytraj.storage.hdf5.options import FileOptions
from pytraj.storage.hdf5.sizes import read_leaf
from pytraj.storage.interface import RUN_TABLE_DTYPE
from pytraj.storage.records import FailureRecord

__all__ = [
    "append_failures",
    "append_hosts",
    "append_rows",
    "check_failure_ids",
    "count_failures",
    "create_runs_group",
    "read_failures",
    "read_hosts",
    "read_rows",
    "run_table_file_dtype",
    "UNCOMPRESSED_RUN_CHUNK_BYTES",
]

_FAILURE_DTYPE = np.dtype([("idx", "<i8"), ("attempt", "<i8")])
#: Rows per chunk of the small variable-length lists (hosts, failure texts, columns).
VLARRAY_CHUNK_ROWS = 64
#: Bytes per chunk of an uncompressed run table (297 rows): at most 16 KB unused at its
#: end (1.6 bytes per run at 10,000 runs; 64 KB chunks left up to 6.5).
UNCOMPRESSED_RUN_CHUNK_BYTES = 16 * 1024


def run_table_file_dtype(version: int = SCHEMA_VERSION) -> np.dtype[Any]:
    """The run table's dtype in a file of layout ``version``.

    The same fields, sizes and offsets as :data:`RUN_TABLE_DTYPE` (whose ``V16`` ids
    PyTables cannot store), so rows convert by a view, without copying.
    """
    return np.dtype(
        [
            (name, POINT_ID_DTYPES[version] if name == "point_id" else RUN_TABLE_DTYPE[name])
            for name in RUN_TABLE_DTYPE.names or ()
        ]
    )


def create_runs_group(h5: Any, traj_group: Any, options: FileOptions, expected: int) -> Any:
    """Create the empty ``runs`` group of a new trajectory."""
    import tables  # keeps import pytraj fast: PyTables loads on first use

    runs = h5.create_group(traj_group, RUNS)
    keyed = options.keyed_table_filters()
    # Not sized by ``expected``: a study often grows after its trajectory is created.
    # Not bigger either: compressed (blosc), every flush rewrites the last, partly filled
    # chunk, and HDF5 does not reuse the space of the old copy once the file closed.
    # Uncompressed (zlib, bzip2: see keyed_table_filters), HDF5 allocates the last chunk
    # whole: smaller chunks bound the unused rows at the end of the table.
    chunk_bytes = TABLE_CHUNK_BYTES if keyed.complevel else UNCOMPRESSED_RUN_CHUNK_BYTES
    h5.create_table(
        runs,
        RUN_TABLE,
        description=run_table_file_dtype(),
        filters=keyed,
        chunkshape=(chunk_bytes // RUN_TABLE_DTYPE.itemsize,),
    )
    # Few rows each: small chunks (a VLArray chunk holds 16-byte references).
    plain = options.plain_filters()
    small = (VLARRAY_CHUNK_ROWS,)
    h5.create_vlarray(runs, HOSTS, atom=tables.VLStringAtom(), filters=plain, chunkshape=small)
    h5.create_vlarray(runs, COLUMNS, atom=tables.VLStringAtom(), filters=plain, chunkshape=small)
    # The failure nodes come with the first failure (append_failures): most studies
    # have none, and five empty nodes cost every open, read and merge of the file.
    return runs


def _create_failure_nodes(runs: Any, options: FileOptions) -> None:
    """Create the failure table and its texts where missing (on the first failure)."""
    import tables  # keeps import pytraj fast: PyTables loads on first use

    h5 = runs._v_file
    children = runs._v_children
    if FAILURES not in children:
        h5.create_table(
            runs,
            FAILURES,
            description=_FAILURE_DTYPE,
            filters=options.table_filters(),
            chunkshape=(chunk_rows(_FAILURE_DTYPE.itemsize, 256, TABLE_CHUNK_BYTES),),
        )
    for name in FAILURE_TEXTS:
        if f"failure_{name}" not in children:
            h5.create_vlarray(
                runs,
                f"failure_{name}",
                atom=tables.VLStringAtom(),
                filters=options.plain_filters(),
                chunkshape=(VLARRAY_CHUNK_ROWS,),
            )


def append_rows(runs: Any, rows: np.ndarray[Any, Any]) -> None:
    """Append run-table rows (structured, :data:`RUN_TABLE_DTYPE`).

    Rows go in as the table's own dtype, so a layout-1 table keeps its ``S16`` ids:
    the 16 bytes are written verbatim either way.
    """
    if len(rows):
        table = runs._f_get_child(RUN_TABLE)
        table.append(np.ascontiguousarray(rows, dtype=RUN_TABLE_DTYPE).view(table.dtype))


def append_hosts(runs: Any, hosts: Sequence[str]) -> None:
    """Append host names (their position is the id rows refer to)."""
    node = runs._f_get_child(HOSTS)
    for host in hosts:
        node.append(encode_text(host))


def append_failures(runs: Any, failures: Sequence[FailureRecord], options: FileOptions) -> None:
    """Append failures (their position is the ``error`` id rows refer to); the failure
    nodes are created with the first (``options`` gives their filters)."""
    if not failures:
        return
    _create_failure_nodes(runs, options)
    _even_failures(runs)
    table = np.empty(len(failures), dtype=_FAILURE_DTYPE)
    table["idx"] = [failure.idx for failure in failures]
    table["attempt"] = [failure.attempt for failure in failures]
    runs._f_get_child(FAILURES).append(table)
    for name, field in zip(FAILURE_TEXTS, ("exc_type", "message", "traceback", "log"), strict=True):
        node = runs._f_get_child(f"failure_{name}")
        for failure in failures:
            node.append(encode_text(getattr(failure, field)))


def _failure_nodes(runs: Any) -> list[Any]:
    """The failure table and its four text nodes, those that exist: none in a
    trajectory that never recorded a failure (files of pytraj 0.x before this layout
    change hold them empty), all five once one was."""
    children = runs._v_children
    names = [FAILURES, *(f"failure_{name}" for name in FAILURE_TEXTS)]
    return [runs._f_get_child(name) for name in names if name in children]


def count_failures(runs: Any) -> int:
    """How many failure positions are taken: the rows of the longest failure node.

    A failure is one row in the table and one in each text node, appended one node after
    the other, so a writer killed inside a flush can leave some nodes a few rows longer
    than others. Those rows belong to records the journal still holds and replays; new
    failures go after the longest node, and :func:`append_failures` first pads the others
    (HDF5 cannot shrink a variable-length array).
    """
    return max((int(node.nrows) for node in _failure_nodes(runs)), default=0)


def _even_failures(runs: Any) -> None:
    """Pad the failure nodes a killed flush left short: no run refers to those rows."""
    nodes = _failure_nodes(runs)
    longest = max(int(node.nrows) for node in nodes)
    table, texts = nodes[0], nodes[1:]
    if table.nrows < longest:
        table.append(np.full(longest - table.nrows, -1, dtype=_FAILURE_DTYPE))
    for node in texts:
        for _ in range(longest - node.nrows):
            node.append(encode_text(""))


def read_hosts(runs: Any) -> list[str]:
    """The host names, in id order."""
    return [decode_text(raw) for raw in read_leaf(runs._f_get_child(HOSTS))]


def check_failure_ids(rows: np.ndarray[Any, Any], failures: Sequence[FailureRecord]) -> None:
    """Refuse run rows that refer to a failure the file does not hold.

    Failures are written before the rows that refer to them, so a killed flush never
    leaves such rows: only damage does (a failure node cut short, or unreadable so that
    it reads as never created). Raised inside a read guard, the ``IndexError`` becomes a
    :class:`~pytraj.errors.DamagedFileError` naming the run-table node.
    """
    if len(rows):
        referenced = int(rows["error"].max())
        if referenced >= len(failures):
            raise IndexError(
                f"run rows refer to failure {referenced}, the file holds {len(failures)}"
            )


def read_failures(runs: Any) -> list[FailureRecord]:
    """Every recorded failure, in id order (none when the failure nodes do not exist)."""
    children = runs._v_children
    if FAILURES not in children:
        return []  # created first of the five: the texts cannot hold a failure either
    table = read_leaf(runs._f_get_child(FAILURES))
    # A text node missing (a writer killed while creating them) reads as empty.
    texts = [
        [decode_text(raw) for raw in read_leaf(runs._f_get_child(f"failure_{name}"))]
        if f"failure_{name}" in children
        else []
        for name in FAILURE_TEXTS
    ]
    # Nodes of uneven length are the remains of a flush that was killed (see
    # :func:`count_failures`): the missing rows read as empty, idx -1 (no run's).
    longest = max(len(table), *(len(column) for column in texts))
    for column in texts:
        column.extend([""] * (longest - len(column)))
    idxs = table["idx"].tolist() + [-1] * (longest - len(table))
    attempts = table["attempt"].tolist() + [-1] * (longest - len(table))
    return [
        FailureRecord(
            idx=int(idx),
            attempt=int(attempt),
            exc_type=texts[0][k],
            message=texts[1][k],
            traceback=texts[2][k],
            log=texts[3][k],
        )
        for k, (idx, attempt) in enumerate(zip(idxs, attempts, strict=True))
    ]


def read_rows(runs: Any) -> np.ndarray[Any, Any]:
    """The run table: the latest row of every committed run, ordered by run index."""
    # Viewed, not cast: a cast from layout 1's S16 would lose the ids' trailing NULs.
    rows = np.ascontiguousarray(read_leaf(runs._f_get_child(RUN_TABLE))).view(RUN_TABLE_DTYPE)
    if not len(rows):
        return np.zeros(0, dtype=RUN_TABLE_DTYPE)
    idx = rows["idx"]
    if len(idx) > 1 and not bool(np.all(idx[1:] > idx[:-1])):
        _, first = np.unique(idx[::-1], return_index=True)
        rows = rows[len(rows) - 1 - first]
    return rows
