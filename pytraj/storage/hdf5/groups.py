"""The file's root and its trajectory groups: creating them and reading what they list.

Below the writer role and recovery, which both create files and groups; nothing here
takes a lock or touches the journal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytraj._version import __version__
from pytraj.errors import DamagedFileError
from pytraj.storage.hdf5.codecs import decode_text, get_attr
from pytraj.storage.hdf5.damage import damaged_node_error, read_errors, read_guard
from pytraj.storage.hdf5.files import FileState
from pytraj.storage.hdf5.layout import (
    CATALOG,
    CELLS,
    COLUMNS,
    DEFAULT,
    EXPLORED,
    FAILURE_TEXTS,
    FAILURES,
    HOSTS,
    JOURNAL_ID,
    JOURNAL_RUNS,
    OVERFLOW,
    RUN_TABLE,
    RUNS,
    SCHEMA,
    SCHEMA_VERSION,
    SKELETON_GENERATION,
    TRAJECTORIES,
    VALUES,
    column_path,
    node_path,
    traj_path,
)
from pytraj.storage.hdf5.options import FileOptions
from pytraj.storage.hdf5.runs import create_runs_group
from pytraj.storage.hdf5.sizes import read_leaf
from pytraj.storage.hdf5.skeletonnode import (
    DEFAULT_NODE,
    DEFAULT_READ,
    EXPLORED_ROWS,
    read_skeleton,
)
from pytraj.storage.records import STATUS_NAMES

__all__ = [
    "create_file",
    "damaged_structure",
    "journal_attrs",
    "new_trajectory_group",
    "stored_names",
]


def create_file(state: FileState) -> None:
    """Create an empty pytraj file (the caller holds the lock)."""
    with state.writing(create=True) as h5:
        attrs = h5.root._v_attrs
        attrs[SCHEMA] = SCHEMA_VERSION
        attrs[TRAJECTORIES] = ""
        attrs["pytraj_version"] = __version__


def stored_names(h5: Any) -> list[str]:
    """Trajectory names in creation order (groups the root list misses come last)."""
    text = get_attr(h5.root._v_attrs, TRAJECTORIES, "")
    names = [name for name in text.split(",") if name]
    present = {name for name, group in h5.root._v_groups.items() if SCHEMA in group._v_attrs}
    ordered = [name for name in names if name in present]
    ordered.extend(sorted(present - set(ordered)))
    return ordered


def new_trajectory_group(
    h5: Any, name: str, options: FileOptions, journal_id: str, journal_runs: int
) -> Any:
    """Create the group of a new, empty trajectory (not yet listed on the root)."""
    group = h5.create_group("/", name)
    attrs = group._v_attrs
    attrs[SCHEMA] = SCHEMA_VERSION
    # The root names the newest layout inside, so an older pytraj refuses the file
    # instead of misreading this trajectory (its layout-1 neighbours stay as they are).
    h5.root._v_attrs[SCHEMA] = SCHEMA_VERSION
    attrs["n_runs"] = 1
    attrs[JOURNAL_ID] = journal_id
    attrs[JOURNAL_RUNS] = journal_runs
    create_runs_group(h5, group, options, 1)
    return group


def journal_attrs(h5: Any, name: str) -> tuple[str, int]:
    """The journal id and record count a trajectory group says it holds."""
    attrs = h5.get_node(f"/{name}")._v_attrs
    journal_id = str(attrs[JOURNAL_ID]) if JOURNAL_ID in attrs else ""
    count = int(attrs[JOURNAL_RUNS]) if JOURNAL_RUNS in attrs else 0
    return journal_id, count


def damaged_structure(h5: Any) -> str | None:
    """What a file lacks of the structure its trajectories require (None: nothing).

    Checked on opening a file whose writer did not close cleanly, before its journal is
    trusted as flushed: a kill while HDF5 rewrote its metadata can keep the root's
    record of the flush and lose (or tear) a node inside a trajectory. Only names, the
    catalog, the column list and the last row of the nodes a flush appends to are read.
    """
    names = stored_names(h5)
    # A trajectory's group is created before the root lists it, and unlisted in the same
    # write that removes it (overwrite): only damage (a kill while HDF5 rewrote the root's
    # metadata) leaves a listed name without a group.
    for name in get_attr(h5.root._v_attrs, TRAJECTORIES, "").split(","):
        if name and name not in names:
            return f"its root lists trajectory {name!r} but holds no such group"
    for name in names:
        missing = _trajectory_damage(h5, name)
        if missing is not None:
            return f"trajectory {name!r}: {missing}"
    return None


def _trajectory_damage(h5: Any, name: str) -> str | None:
    """What trajectory ``name`` lacks or cannot read of the nodes it requires (None:
    nothing; see :func:`damaged_structure`)."""
    try:
        return _trajectory_lacks(h5, h5.get_node(traj_path(name)))
    except _Lacks as exc:
        return f"node {exc.args[0]} is missing"
    except DamagedFileError as exc:
        return f"node {exc.node} cannot be read ({exc.reason})"
    except read_errors() as exc:
        reason = damaged_node_error(Path(h5.filename), "", exc).reason
        return f"its structure cannot be read ({reason})"


class _Lacks(Exception):
    """A node the trajectory requires is absent (its path in ``args[0]``)."""


def _node(h5: Any, path: str) -> Any:
    import tables  # keeps import pytraj fast: PyTables loads on first use

    try:
        with read_guard(Path(h5.filename), path, h5):
            return h5.get_node(path)
    except DamagedFileError as exc:
        if isinstance(exc.__cause__, tables.NoSuchNodeError):
            raise _Lacks(path) from None
        raise


def _exists(group: Any, relative: str) -> bool:
    """Whether the node at path ``relative`` below ``group`` exists (its header read, the
    node not opened: PyTables reads every attribute of a node it opens)."""
    with read_guard(Path(group._v_file.filename), f"{group._v_pathname}/{relative}"):
        return bool(group._g_get_objinfo(relative) != "NoSuchNode")


def _last_row(h5: Any, path: str) -> tuple[Any, Any]:
    """The node at ``path`` and its last row (None when empty): a flush appends to the
    end of a node, and a torn one leaves that end unreadable (its chunk index or its
    compressed bytes) or implausible."""
    node = _node(h5, path)
    with read_guard(Path(h5.filename), path, h5):
        return node, node.read(int(node.nrows) - 1) if int(node.nrows) else None


def _trajectory_lacks(h5: Any, group: Any) -> str | None:
    """What trajectory ``group`` lacks or cannot read of what it requires, or None.

    Required: the run table, hosts and column list; every per-run column the list
    names (its cells and values); all five failure nodes or none, and the failure the
    newest run row refers to; once a definition was written (a skeleton generation, or a
    node beside ``runs``), the catalog and every group and leaf it names, and the nodes
    its skeleton record says a load reads (items, defaults, explored values and table).
    """
    name = group._v_name
    runs = f"{traj_path(name)}/{RUNS}"
    n_runs = int(get_attr(group._v_attrs, "n_runs", 1))
    table, last = _last_row(h5, f"{runs}/{RUN_TABLE}")
    hosts, _ = _last_row(h5, f"{runs}/{HOSTS}")
    row = last.reshape(-1)[0] if last is not None else None
    if row is not None and not (
        0 <= int(row["idx"]) < n_runs
        and int(row["status"]) in STATUS_NAMES
        and -1 <= int(row["host"]) < int(hosts.nrows)
        and int(row["error"]) >= -1
    ):
        return (
            f"the last row of {table._v_pathname} is torn (run {int(row['idx'])}, status "
            f"{int(row['status'])}, host {int(row['host'])}, failure {int(row['error'])})"
        )
    with read_guard(Path(h5.filename), f"{runs}/{COLUMNS}", h5):
        listed = [decode_text(raw) for raw in read_leaf(_node(h5, f"{runs}/{COLUMNS}"))]
    for entry in listed:
        path, _, item = entry.partition("\t")
        torn = _column_torn(h5, column_path(name, (path, item)), n_runs)
        if torn is not None:
            return torn
    # The failure table comes with its texts, all five created in one write (see runs.py;
    # a kill during that write loses the texts); rows refer to failures by id. Only
    # the newest row is compared: reading every row's id would cost a read of the whole
    # run table on each open (a run table that refers to a lost failure still raises
    # DamagedFileError naming it when read).
    nodes = [FAILURES, *(f"failure_{text}" for text in FAILURE_TEXTS)]
    present = [_exists(group, f"{RUNS}/{node}") for node in nodes]
    if any(present) and not all(present):
        raise _Lacks(f"{runs}/{nodes[present.index(False)]}")
    referenced = int(row["error"]) if row is not None else -1
    if referenced >= 0:
        failures, _ = _last_row(h5, f"{runs}/{FAILURES}")
        if int(failures.nrows) <= referenced:
            return (
                f"its run table refers to failure {referenced}, and {failures._v_pathname} "
                f"holds {int(failures.nrows)}"
            )
    defined = SKELETON_GENERATION in group._v_attrs or any(
        child != RUNS for child in group._v_children
    )
    if defined:
        for path in _definition_nodes(h5, group):
            if not _exists(group, path.removeprefix(f"{traj_path(name)}/")):
                raise _Lacks(path)
    return None


def _column_torn(h5: Any, column: str, n_runs: int) -> str | None:
    """Whether the per-run column at ``column`` is torn at its end: its newest cell
    unreadable, or naming a run or a row its nodes do not hold (their values are not
    read: the last chunk of an array column can be large)."""
    cells, last = _last_row(h5, f"{column}/{CELLS}")
    values = _node(h5, f"{column}/{VALUES}")
    if last is None:
        return None
    idx, row = (int(value) for value in last.reshape(-1)[:2])
    if row == -1:  # the run was committed again without this item
        rows, held = 0, True
    elif row >= 0:
        heap = _exists(values._v_parent, f"{VALUES}_ends")
        rows = int(_node(h5, f"{column}/{VALUES}_ends").nrows) if heap else int(values.nrows)
        held = row < rows
    else:
        rows = int(_node(h5, f"{column}/{OVERFLOW}_ends").nrows)
        held = -2 - row < rows
    if held and 0 <= idx < n_runs:
        return None
    return f"the last cell of {cells._v_pathname} is torn (run {idx}, row {row} of {rows})"


def _definition_nodes(h5: Any, group: Any) -> list[str]:
    """The nodes of a written definition: those its catalog names (a link: the group
    holding it), and those its skeleton record says a load reads."""
    name = group._v_name
    catalog_path = f"{traj_path(name)}/{CATALOG}"
    with read_guard(Path(h5.filename), catalog_path, h5):
        entries = [decode_text(raw).split("\t") for raw in read_leaf(_node(h5, catalog_path))]
    required = []
    leaves = set()
    for entry in entries:
        if len(entry) < 2:
            raise damaged_node_error(Path(h5.filename), catalog_path, ValueError("bad entry"))
        path = node_path(name, entry[1])
        required.append(path.rpartition("/")[0] if entry[0] == "link" else path)
        if entry[0] == "leaf":
            leaves.add(entry[1])
    return required + _record_nodes(group, leaves)


def _record_nodes(group: Any, leaves: set[str]) -> list[str]:
    """The nodes the group's skeleton record says a load reads, when the record is of
    this format and describes the catalog's leaves (else none: the load reads the nodes
    the catalog names, checked already)."""
    name = group._v_name
    try:
        record = read_skeleton(group)
        if record is None or {leaf[0] for leaf in record["leaves"]} != leaves:
            return []
        required = []
        if record["explored"] is not None:
            required.append(f"{traj_path(name)}/{RUNS}/{EXPLORED}")
        for path, _class, _meta, per_run, _pickled, items, default, kind in record["leaves"]:
            where = node_path(name, path)
            if per_run:
                continue
            required.extend(f"{where}/{item}" for item in items)
            if not items and default[0] in (DEFAULT_NODE, DEFAULT_READ):
                required.append(f"{where}/{DEFAULT}")
            if not items and kind == EXPLORED_ROWS:
                required.append(f"{where}/{EXPLORED}")
    except Exception:  # a damaged or foreign record: the catalog's nodes are checked
        return []
    return required
