"""Where things live in a pytraj HDF5 file: names, the schema version, path mapping.

A file holds one group per trajectory below the root; the tree of each trajectory is
mirrored by HDF5 groups, and the run records sit beside it in ``runs/``::

    /                               pytraj_schema, pytraj_trajectories (creation order),
                                    pytraj_journal_id/_size (journal at the last flush)
    /<trajectory>/                  pytraj_schema, comment, created, n_runs, provenance
                                    (one attribute; earlier releases: provenance.<key>
                                    and provenance_order, still read),
                                    pytraj_journal_id/_runs (journal records it holds)
                                    pytraj_skeleton(_generation): what loading needs,
                                    in one record (added to layout 2; optional)
        catalog                     the definition's groups, leaves and links, in order
        parameters/x/               a leaf: pytraj_leaf, comment, annotation.* ...
            default                 its value, in natural form where one exists
            explored                non-scalar explored values, one row per run
        results/stats/mean          an item of a trajectory-level result
        results/z/z/                a per-run item: one column across all runs
            values                  EArray: one scalar or array per row, or a byte heap
                                    (uint8 bytes end to end + values_ends offsets)
            cells                   EArray (n, 2): (idx, row), which row holds which run
            run_rows                EArray: per run index the row of its latest cell (-1:
                                    none), so that reading one run's value reads one
                                    element, not all cells (layout 2; absent in layout 1)
            overflow                byte heap: exact values that do not fit ``values``
        runs/
            table                   the run table (append-only; the latest row per run wins);
                                    point ids as 16 uint8 (layout 1: S16)
            explored                Table: point ids and scalar explored values, one row per run
            hosts                   host names the run table indexes
            failures                Table (idx, attempt) + failure_* texts, one row per failure;
                                    created with the first failure (absent until then;
                                    files of earlier releases hold them empty)
            columns                 every per-run column, as "leaf path<TAB>item"
            log/                    the captured per-run logs (a column like the others)
            writer/                 per run: its writer session in provenance.writers
                                    (layout 2; absent in files of layout 1)

    /_pytraj_attributes/a<32 hex>   uint8 array: one attribute value of more than 16 KiB
                                    (pytraj_type "text" = UTF-8, "valuecodec"; owner =
                                    the node's path, attribute = its name); the node's
                                    attribute ``<name>@node`` holds the array's name

A row of ``cells`` maps run ``idx`` to ``row`` of ``values`` (``row >= 0``), to row
``-2 - row`` of ``overflow`` (``row <= -2``), or to nothing (``row == -1``: the run was
committed again without this item). ``run_rows[idx]`` holds the same row as the
latest cell of run ``idx`` (-1 when it has none, or beyond the end). The number of
nodes never grows with the runs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = [
    "ANNOTATIONS",
    "CATALOG",
    "CELLS",
    "COLUMNS",
    "COMMENT",
    "DEFAULT",
    "EXPLORED",
    "EXPLORED_COLUMN_PATHS",
    "FAILURES",
    "FAILURE_TEXTS",
    "HOSTS",
    "ITEMS",
    "JOURNAL_ID",
    "JOURNAL_RUNS",
    "JOURNAL_SIZE",
    "JOURNAL_SUFFIX",
    "LEAF_CLASS",
    "LINK_COMMENT",
    "LOG",
    "LOG_KEY",
    "OVERFLOW",
    "PER_RUN",
    "PICKLED",
    "POINT_ID_DTYPES",
    "PROVENANCE",
    "RESERVED",
    "RUNS",
    "RUN_ROWS",
    "RUN_TABLE",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SKELETON",
    "SKELETON_GENERATION",
    "TRAJECTORIES",
    "VALUES",
    "column_path",
    "is_plain_name",
    "node_path",
    "traj_path",
    "journal_path_for",
]

#: Major version of the layout. Files of a higher version are refused; files of the same
#: version stay readable by every pytraj that writes it. Layout 2 stores point ids as 16
#: uint8 (``S16`` columns of layout 1 read back without trailing NUL bytes) and records
#: the run function (``provenance.run_*``); layout-1 files are read, and continued in
#: their own layout (see :data:`POINT_ID_DTYPES`).
SCHEMA_VERSION = 2

#: The column type of point ids in the run and explored tables, by layout version. Both
#: hold the 16 bytes verbatim on disk; layout 2 uses integers so that no reader can drop
#: a byte value (numpy's ``S16`` strips trailing NULs, which one id in 256 ends with).
POINT_ID_DTYPES: dict[int, str] = {1: "S16", 2: "(16,)u1"}

# -- attributes -------------------------------------------------------------------------------
#: Layout version, on the root and on each trajectory group.
SCHEMA = "pytraj_schema"
#: On the root: trajectory names in creation order, comma separated.
TRAJECTORIES = "pytraj_trajectories"
#: Which journal the trajectory's flushed runs came from, and how many of its records.
JOURNAL_ID = "pytraj_journal_id"
JOURNAL_RUNS = "pytraj_journal_runs"
#: On the root: the journal's size when the file was last flushed (with JOURNAL_ID), so
#: that opening a file whose journal holds nothing newer needs not read the journal.
JOURNAL_SIZE = "pytraj_journal_size"
COMMENT = "comment"
ANNOTATIONS = "annotation"
PROVENANCE = "provenance"
#: On a leaf group: the registered leaf class name; its flags; its item names in order.
LEAF_CLASS = "pytraj_leaf"
PER_RUN = "per_run"
PICKLED = "pickled"
ITEMS = "pytraj_items"
#: On a group holding links: ``link_comment.<name>``.
LINK_COMMENT = "link_comment"
#: On ``runs/explored``: the full names of its columns (after point_id), comma separated.
EXPLORED_COLUMN_PATHS = "pytraj_columns"
#: On a trajectory group: the skeleton record of its definition (what loading needs,
#: see :mod:`~pytraj.storage.hdf5.skeletonnode`), and the generation of the last
#: definition written, which a current record repeats. Added to layout 2: files
#: without them load from the catalog and the nodes.
SKELETON = "pytraj_skeleton"
SKELETON_GENERATION = "pytraj_skeleton_generation"

# -- nodes ------------------------------------------------------------------------------------
CATALOG = "catalog"
RUNS = "runs"
RUN_TABLE = "table"
EXPLORED = "explored"
HOSTS = "hosts"
FAILURES = "failures"
#: The texts of each failure, one VLArray per field, aligned with ``failures`` rows.
FAILURE_TEXTS = ("exc_types", "messages", "tracebacks", "logs")
COLUMNS = "columns"
LOG = "log"
DEFAULT = "default"
VALUES = "values"
CELLS = "cells"
OVERFLOW = "overflow"
#: Per column: run index -> row of its latest cell (added in layout 2).
RUN_ROWS = "run_rows"

#: Top-level names a trajectory's own tree cannot use in a file.
RESERVED = frozenset([CATALOG, RUNS])
#: Column key of the per-run logs (no leaf path can be empty).
LOG_KEY = ("", LOG)

_PLAIN = re.compile(r"[A-Za-z0-9_-]+\Z")


def is_plain_name(name: str) -> bool:
    """Whether ``name`` can be part of an attribute name or a comma-separated list."""
    return bool(_PLAIN.match(name))


def traj_path(name: str) -> str:
    """HDF5 path of the trajectory group ``name``."""
    return f"/{name}"


def node_path(traj: str, path: str) -> str:
    """HDF5 path of the tree node with full name ``path`` (``"results.z"``)."""
    return f"/{traj}/{path.replace('.', '/')}"


def column_path(traj: str, key: tuple[str, str]) -> str:
    """HDF5 path of the group holding the per-run column ``(leaf path, item)``."""
    if not key[0]:  # the run machinery's own columns (logs, writer sessions)
        return f"/{traj}/{RUNS}/{key[1]}"
    return f"{node_path(traj, key[0])}/{key[1]}"


#: The write-ahead journal sits beside its data file, named ``<file>.journal``.
JOURNAL_SUFFIX = ".journal"


def journal_path_for(data_path: str | os.PathLike[str]) -> Path:
    """Return the journal path of a data file: ``<file>.journal`` beside it."""
    path = Path(data_path)
    return path.with_name(path.name + JOURNAL_SUFFIX)
