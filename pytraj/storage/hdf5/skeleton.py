"""Reading a study definition back: the skeleton a lazily loaded trajectory starts from.

Names, classes, comments, annotations and small parameter defaults are read;
trajectory-level result items stay in the file (:data:`NOT_LOADED`), big values and
pickles come back as :class:`~pytraj.storage.records.LazyValue` objects that read or
unpickle them on first access, and the explored table (point ids and scalar explored
values) as :mod:`~pytraj.storage.explored` columns read on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pytraj.errors import FileFormatError
from pytraj.storage.explored import ExploredColumn, StoredPointIds
from pytraj.storage.hdf5.cells import has_child
from pytraj.storage.hdf5.codecs import (
    Pickled,
    decode_text,
    get_attr,
    get_mapping,
    node_nbytes,
    read_value,
)
from pytraj.storage.hdf5.columns import ColumnSpec, read_all_rows
from pytraj.storage.hdf5.damage import read_guard
from pytraj.storage.hdf5.layout import (
    ANNOTATIONS,
    CATALOG,
    COMMENT,
    DEFAULT,
    EXPLORED,
    ITEMS,
    LEAF_CLASS,
    LINK_COMMENT,
    PER_RUN,
    PICKLED,
    RUNS,
    node_path,
)
from pytraj.storage.hdf5.sizes import read_leaf
from pytraj.storage.hdf5.skeletonnode import (
    DEFAULT_NODE,
    DEFAULT_READ,
    DEFAULT_VALUE,
    EXPLORED_ROWS,
    EXPLORED_TABLE,
    LAZY_BYTES,
    explored_meta,
    read_header,
    read_skeleton,
    same_header,
)
from pytraj.storage.records import (
    NOT_LOADED,
    GroupRecord,
    LazyValue,
    LeafRecord,
    LinkRecord,
    StudyDefinition,
)

__all__ = [
    "LAZY_BYTES",
    "Loaders",
    "holds_definition",
    "read_definition",
    "read_items",
    "read_node",
]


class Loaders(Protocol):
    """Makes the lazy values of a skeleton (they read through the file manager later)."""

    def lazy(self, path: str, description: str) -> LazyValue:
        """A value read from node ``path`` on first access."""

    def pickled(self, raw: bytes, where: str) -> LazyValue:
        """A pickle unpickled on first access (or refused)."""

    def table_field(
        self, path: str, field: str, convert: Callable[[np.ndarray], np.ndarray]
    ) -> Callable[[], np.ndarray]:
        """A reader of column ``field`` of table ``path`` (one read when called),
        its raw array passed through ``convert``."""


def read_node(node: Any, where: str, loaders: Loaders) -> Any:
    """A value node's value, or a LazyValue for big and pickled ones."""
    if node_nbytes(node) > LAZY_BYTES:
        return loaders.lazy(node._v_pathname, where)
    value = read_value(node)
    if type(value) is Pickled:
        return loaders.pickled(value.raw, where)
    return value


def _catalog(traj_group: Any) -> list[list[str]]:
    if CATALOG not in traj_group._v_children:
        return []
    return [decode_text(raw).split("\t") for raw in read_leaf(traj_group._f_get_child(CATALOG))]


def _explored_table(
    traj_group: Any, loaders: Loaders
) -> tuple[list[bytes] | StoredPointIds, dict[str, ExploredColumn]]:
    """Point ids and the scalar explored values, by parameter path, left in the file.

    Only the table's attributes and length are read here: each column is read (one
    read of that field) when first used, through ``loaders``.
    """
    where = f"{traj_group._v_pathname}/{RUNS}/{EXPLORED}"
    return _explored_columns(where, explored_meta(traj_group), loaders)


def _explored_columns(
    where: str, meta: dict[str, Any] | None, loaders: Loaders
) -> tuple[list[bytes] | StoredPointIds, dict[str, ExploredColumn]]:
    """The lazily read columns of the explored table at ``where``, described by ``meta``
    (:func:`~pytraj.storage.hdf5.skeletonnode.explored_meta`)."""
    if meta is None:
        return [], {}
    length = int(meta["length"])
    point_ids: list[bytes] | StoredPointIds = []
    if meta["point_ids"]:
        point_ids = StoredPointIds(
            length,
            loaders.table_field(where, "point_id", _as_point_ids),
            f"the point ids of {where}",
        )
    explored: dict[str, ExploredColumn] = {}
    for path, column, tag, dtype in meta["columns"]:
        explored[path] = ExploredColumn(
            length,
            loaders.table_field(where, column, _as_values(np.dtype(dtype))),
            numpy_scalars=tag == "numpy",
            description=f"the explored values of {path}",
        )
    return point_ids, explored


def _as_point_ids(raw: np.ndarray) -> np.ndarray:
    # As raw bytes, whatever the layout's column type (S16 in layout 1, 16 uint8 in
    # layout 2): numpy would drop trailing NUL bytes of S16 ids.
    return np.ascontiguousarray(raw).view("V16").reshape(-1)


def _as_values(dtype: np.dtype[Any]) -> Callable[[np.ndarray], np.ndarray]:
    def convert(raw: np.ndarray) -> np.ndarray:
        values = np.ascontiguousarray(raw)
        return values.view(dtype) if dtype.kind in "Mm" else values

    return convert


def _rows_store(node: Any, where: str, loaders: Loaders) -> list[Any]:
    group = node._f_get_child(EXPLORED)
    spec = ColumnSpec.from_attrs(group._v_attrs)
    if spec is None:
        raise FileFormatError(f"{group._v_pathname} has no column type; the file is damaged")
    rows = read_all_rows(group, "values", spec)
    if spec.kind == "pickle":
        return [loaders.pickled(raw, f"{where}[{k}]") for k, raw in enumerate(rows)]
    if isinstance(rows, np.ndarray):
        element = spec.element()
        return [element(row) for row in rows] if element is not None else list(rows)
    return list(rows)


def _read_leaf(
    h5: Any, traj: str, path: str, explored: dict[str, ExploredColumn], loaders: Loaders
) -> LeafRecord:
    try:
        node = h5.get_node(node_path(traj, path))
    except LookupError:
        raise FileFormatError(
            f"the catalog of trajectory {traj!r} lists {path!r}, which the file lacks; the "
            "file is damaged"
        ) from None
    attrs = node._v_attrs
    names = [item for item in get_attr(attrs, ITEMS, "").split(",") if item]
    per_run = bool(get_attr(attrs, PER_RUN, False))
    leaf = LeafRecord(
        path=path,
        leaf_class=get_attr(attrs, LEAF_CLASS),
        comment=get_attr(attrs, COMMENT, ""),
        annotations=get_mapping(attrs, ANNOTATIONS),
        per_run=per_run,
        pickled=bool(get_attr(attrs, PICKLED, False)),
    )
    if per_run:
        leaf.items = dict.fromkeys(names)
        return leaf
    leaf.items = dict.fromkeys(names, NOT_LOADED)
    if not names:
        if DEFAULT in node._v_children:
            leaf.default = read_node(node._f_get_child(DEFAULT), f"the default of {path}", loaders)
        if path in explored:
            leaf.explored = explored[path]  # type: ignore[assignment]  # a list-like column
        elif EXPLORED in node._v_children:
            leaf.explored = _rows_store(node, f"the explored values of {path}", loaders)
    return leaf


def holds_definition(traj_group: Any) -> bool:
    """Whether a study definition was ever written into the trajectory group.

    The first definition written always creates the catalog, and a run is committed only
    after the definition; a group without a catalog is one created and never defined
    (its writer killed before the definition became durable, or its journal lost).
    """
    return CATALOG in traj_group._v_children


def read_definition(h5: Any, traj_group: Any, loaders: Loaders) -> StudyDefinition:
    """The stored definition of a trajectory (its skeleton).

    From the group's skeleton record when it is current (one node read), else from the
    catalog, groups, leaves and explored table.
    """
    header = read_header(traj_group)
    record = _current_record(traj_group, header)
    if record is not None:
        return _from_record(h5, traj_group, record, header, loaders)
    traj = traj_group._v_name
    file_path = Path(h5.filename)
    with read_guard(file_path, f"{traj_group._v_pathname}/{RUNS}/{EXPLORED}", h5):
        point_ids, explored = _explored_table(traj_group, loaders)
    definition = _definition(traj, header, point_ids)
    with read_guard(file_path, f"{traj_group._v_pathname}/{CATALOG}", h5):
        catalog = _catalog(traj_group)
    for entry in catalog:
        if len(entry) < 2 or (entry[0] == "link" and len(entry) < 3):
            raise FileFormatError(
                f"{file_path}: the catalog of trajectory {traj!r} holds a malformed entry "
                f"{chr(9).join(entry)[:80]!r}; the file is damaged (run `pytraj check FILE`; "
                "restore it from a backup, or let its journal rebuild it)"
            )
        with read_guard(file_path, node_path(traj, entry[1]), h5):
            _read_entry(h5, definition, entry, explored=explored, loaders=loaders)
    return definition


def _definition(
    traj: str, header: dict[str, Any], point_ids: list[bytes] | StoredPointIds
) -> StudyDefinition:
    return StudyDefinition(
        name=traj,
        comment=header["comment"],
        created=header["created"],
        provenance=header["provenance"],
        n_runs=header["n_runs"],
        point_ids=point_ids,  # type: ignore[arg-type]  # a sequence of bytes, read on use
    )


def _current_record(traj_group: Any, header: dict[str, Any]) -> dict[str, Any] | None:
    """The group's skeleton record if it is current; None when it is missing or stale
    (then the nodes are read: a record can only save reads, never change an answer)."""
    if not holds_definition(traj_group):
        return None
    try:
        record = read_skeleton(traj_group)
        if (
            record is None
            or not _well_formed(record)
            or not same_header(record, header)
            or not _in_file(traj_group, record)
        ):
            return None
    except Exception:  # a damaged or foreign record: read the nodes,
        return None  # which say what the file holds (and name what is damaged)
    return record


def _well_formed(record: dict[str, Any]) -> bool:
    """Whether the record has the shape this pytraj writes (entries of the right size)."""
    explored = record["explored"]
    return (
        all(len(entry) == 2 and type(entry[0]) is str for entry in record["groups"])
        and all(len(entry) == 8 and type(entry[0]) is str for entry in record["leaves"])
        and all(len(entry) == 3 and type(entry[0]) is str for entry in record["links"])
        and (explored is None or all(len(column) == 4 for column in explored["columns"]))
    )


#: Up to this many groups and leaves, :func:`_in_file` looks each up by name (a few µs
#: each); beyond, it lists the children of each group once.
LOOKUPS_BY_NAME = 256


def _in_file(traj_group: Any, record: dict[str, Any]) -> bool:
    """Whether the file still holds the catalog and every group and leaf of ``record``.

    Only names are looked at (a group lists its children when opened; no attribute or
    value is read): a catalog of another length, or a missing node, sends the load to
    the nodes, which then say what is wrong (or what another writer changed).
    """
    catalog = traj_group._f_get_child(CATALOG)
    if int(catalog.nrows) != len(record["groups"]) + len(record["leaves"]) + len(record["links"]):
        return False
    paths = [group[0] for group in record["groups"]] + [leaf[0] for leaf in record["leaves"]]
    if len(paths) <= LOOKUPS_BY_NAME:
        # One lookup by name each: opening the groups to list their children reads
        # every attribute of each (and PyTables opens a group's parent to list it).
        return all(has_child(traj_group, path.replace(".", "/")) for path in paths)
    opened: dict[str, Any] = {"": traj_group}

    def group_of(path: str) -> Any:
        if path in opened:
            return opened[path]
        parent_path, _, name = path.rpartition(".")
        parent = group_of(parent_path)
        node = None
        if parent is not None and name in parent._v_children:
            node = parent._f_get_child(name)
        opened[path] = node
        return node

    for path in paths:
        parent_path, _, name = path.rpartition(".")
        parent = group_of(parent_path)
        if parent is None or name not in parent._v_children:
            return False
    return True


def _from_record(
    h5: Any, traj_group: Any, record: dict[str, Any], header: dict[str, Any], loaders: Loaders
) -> StudyDefinition:
    """The definition a skeleton record describes. Read from their nodes: big comments
    and annotations, defaults bigger than the record holds, and non-scalar explored
    values (a leaf's own ``explored`` store)."""
    traj = traj_group._v_name
    file_path = Path(h5.filename)
    where = f"{traj_group._v_pathname}/{RUNS}/{EXPLORED}"
    point_ids, explored = _explored_columns(where, record["explored"], loaders)
    definition = _definition(traj, header, point_ids)

    def node_of(path: str) -> Any:
        return h5.get_node(node_path(traj, path))

    def meta_of(path: str, meta: list[Any] | None) -> tuple[str, dict[str, Any]]:
        if meta is not None:
            return meta[0], meta[1]
        with read_guard(file_path, node_path(traj, path), h5):
            attrs = node_of(path)._v_attrs
            return get_attr(attrs, COMMENT, ""), get_mapping(attrs, ANNOTATIONS)

    for path, meta in record["groups"]:
        definition.groups.append(GroupRecord(path, *meta_of(path, meta)))
    for path, leaf_class, meta, per_run, pickled, items, default, kind in record["leaves"]:
        comment, annotations = meta_of(path, meta)
        leaf = LeafRecord(
            path=path,
            leaf_class=leaf_class,
            comment=comment,
            annotations=annotations,
            per_run=per_run,
            pickled=pickled,
        )
        definition.leaves.append(leaf)
        if per_run:
            leaf.items = dict.fromkeys(items)
            continue
        leaf.items = dict.fromkeys(items, NOT_LOADED)
        if items:
            continue
        if default[0] == DEFAULT_VALUE:
            leaf.default = default[1]
        elif default[0] == DEFAULT_NODE:
            default_path = f"{node_path(traj, path)}/{DEFAULT}"
            leaf.default = loaders.lazy(default_path, f"the default of {path}")
        elif default[0] == DEFAULT_READ:
            with read_guard(file_path, f"{node_path(traj, path)}/{DEFAULT}", h5):
                default_node = node_of(path)._f_get_child(DEFAULT)
                leaf.default = read_node(default_node, f"the default of {path}", loaders)
        if kind == EXPLORED_TABLE:
            leaf.explored = explored[path]  # type: ignore[assignment]  # a list-like column
        elif kind == EXPLORED_ROWS:
            with read_guard(file_path, node_path(traj, path), h5):
                leaf.explored = _rows_store(
                    node_of(path), f"the explored values of {path}", loaders
                )
    for path, target, meta in record["links"]:
        if meta is None:
            parent_path, _, name = node_path(traj, path).rpartition("/")
            with read_guard(file_path, parent_path, h5):
                parent_attrs = h5.get_node(parent_path)._v_attrs
                comment = get_attr(parent_attrs, f"{LINK_COMMENT}.{name}", "")
        else:
            comment = meta[0]
        definition.links.append(LinkRecord(path, target, comment))
    return definition


def _read_entry(
    h5: Any,
    definition: StudyDefinition,
    entry: list[str],
    *,
    explored: dict[str, ExploredColumn],
    loaders: Loaders,
) -> None:
    """Add one catalog entry (a group, leaf or link) to ``definition``."""
    traj = definition.name
    kind, path = entry[0], entry[1]
    if kind == "group":
        node = h5.get_node(node_path(traj, path))
        definition.groups.append(
            GroupRecord(
                path,
                get_attr(node._v_attrs, COMMENT, ""),
                get_mapping(node._v_attrs, ANNOTATIONS),
            )
        )
    elif kind == "leaf":
        definition.leaves.append(_read_leaf(h5, traj, path, explored, loaders))
    elif kind == "link":
        parent_path, _, name = node_path(traj, path).rpartition("/")
        parent = h5.get_node(parent_path)
        comment = get_attr(parent._v_attrs, f"{LINK_COMMENT}.{name}", "")
        definition.links.append(LinkRecord(path, entry[2], comment))
    else:
        raise FileFormatError(
            f"the catalog of trajectory {traj!r} holds an entry of unknown kind {kind!r}; "
            "it was written by a newer pytraj"
        )


def read_items(h5: Any, traj_group: Any, path: str, loaders: Loaders) -> dict[str, Any]:
    """The items of the trajectory-level result at ``path`` (big ones lazily)."""
    traj = traj_group._v_name
    try:
        node = h5.get_node(node_path(traj, path))
    except LookupError:
        raise KeyError(path) from None
    names = [item for item in get_attr(node._v_attrs, ITEMS, "").split(",") if item]
    items: dict[str, Any] = {}
    # Each item names itself when its bytes are damaged.
    file_path = Path(h5.filename)
    for item in names:
        if item not in node._v_children:
            raise FileFormatError(
                f"item {item!r} of {path!r} in trajectory {traj!r} is missing from the file"
            )
        with read_guard(file_path, f"{node._v_pathname}/{item}", h5):
            items[item] = read_node(node._f_get_child(item), f"{path}[{item!r}]", loaders)
    return items
