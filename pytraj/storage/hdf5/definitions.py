"""Writing a study definition into a trajectory group, changing only what changed.

The definition's groups, leaves and links become HDF5 groups, value nodes and soft
links below the trajectory group; their order is kept in the ``catalog``. Explored
values go to ``runs/explored`` (scalars, one column per parameter, beside the point ids)
or to an ``explored`` store in the parameter's group. A definition is compared with the
one the file holds (:mod:`pytraj.storage.hdf5.samedefinition`) so that closing an
unchanged trajectory writes nothing, and writing a changed one rewrites only the parts
that differ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from pytraj.crashpoints import crash_point
from pytraj.errors import StorageError
from pytraj.storage.explored import ExploredColumn
from pytraj.storage.hdf5.cells import require_group
from pytraj.storage.hdf5.codecs import (
    DTYPE_ATTR,
    TYPE_ATTR,
    PickleLoader,
    RawPickle,
    clear_mapping,
    drop_big_attr,
    encode_text,
    get_attr,
    loader_of,
    remove_attrs,
    resolve,
    same_value,
    scalar_tag,
    set_attr,
    set_mapping,
    storage_dtype,
    write_value,
)
from pytraj.storage.hdf5.columns import (
    ARRAY_CHUNK_BYTES,
    ColumnSpec,
    append_rows,
    chunk_rows,
    create_store,
    spec_for,
)
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
    POINT_ID_DTYPES,
    PROVENANCE,
    RESERVED,
    RUNS,
    SCHEMA,
    SCHEMA_VERSION,
    node_path,
)
from pytraj.storage.hdf5.options import FileOptions
from pytraj.storage.hdf5.samedefinition import (
    catalog_entries,
    id_array,
    same_explored_points,
    same_group,
    same_leaf_meta,
)
from pytraj.storage.hdf5.skeletonnode import write_skeleton
from pytraj.storage.records import NOT_LOADED, LeafRecord, StudyDefinition

__all__ = [
    "COLUMN_PATHS",
    "materialize",
    "check_reserved",
    "write_definition",
]

#: Attribute of ``runs/explored`` listing the full names of its columns (after point_id).
COLUMN_PATHS = "pytraj_columns"
_COLUMN_ATTR = "pytraj_column"


def check_reserved(definition: StudyDefinition) -> None:
    """Refuse tree paths that would collide with the file's own nodes."""
    paths = [g.path for g in definition.groups] + [leaf.path for leaf in definition.leaves]
    paths += [link.path for link in definition.links]
    for path in paths:
        top = path.split(".", 1)[0]
        if top in RESERVED:
            raise StorageError(
                f"{path!r} of trajectory {definition.name!r} starts with {top!r}, a name the "
                f"HDF5 layout reserves ({', '.join(sorted(RESERVED))}); rename that node"
            )


# -- journaling --------------------------------------------------------------------------------


def journal_value(value: Any) -> Any:
    """A value ready for the journal: pickles read from a file stay bytes (never unpickled
    on the way), other lazy values stay lazy (the journal's encoder loads them)."""
    loader = loader_of(value)
    if isinstance(loader, PickleLoader) and not loader.loaded:
        return RawPickle(loader.raw)
    return value


def materialize(
    definition: StudyDefinition,
    read_items: Callable[[str], dict[str, Any]],
    *,
    journal: bool,
) -> StudyDefinition:
    """``definition`` with the items it left in the file (:data:`NOT_LOADED`) read.

    The journal must be able to rebuild a file from a definition alone. With
    ``journal``, values of Pickle leaves still in their file are handed on as their
    pickle bytes.
    """
    leaves = []
    for leaf in definition.leaves:
        items = leaf.items
        if not leaf.per_run and any(value is NOT_LOADED for value in items.values()):
            stored = read_items(leaf.path)
            items = {
                item: stored.get(item, value) if value is NOT_LOADED else value
                for item, value in items.items()
            }
        default, explored = leaf.default, leaf.explored
        if journal and leaf.pickled:
            items = {item: journal_value(value) for item, value in items.items()}
            default = journal_value(default)
            explored = None if explored is None else [journal_value(v) for v in explored]
        if items is leaf.items and default is leaf.default and explored is leaf.explored:
            leaves.append(leaf)
            continue
        leaves.append(
            LeafRecord(
                path=leaf.path,
                leaf_class=leaf.leaf_class,
                comment=leaf.comment,
                annotations=leaf.annotations,
                per_run=leaf.per_run,
                pickled=leaf.pickled,
                default=default,
                explored=explored,
                items=items,
            )
        )
    return replace(definition, leaves=leaves)


# -- writing ----------------------------------------------------------------------------------


def write_definition(
    h5: Any,
    traj_group: Any,
    old: StudyDefinition | None,
    new: StudyDefinition,
    options: FileOptions,
) -> None:
    """Bring the trajectory group from ``old`` (what it holds) to ``new``."""
    import tables  # keeps import pytraj fast: PyTables loads on first use

    name = traj_group._v_name
    attrs = traj_group._v_attrs
    set_attr(attrs, COMMENT, new.comment)
    attrs["created"] = float(new.created)
    attrs["n_runs"] = int(new.n_runs)
    # One attribute, not one per key (get_mapping reads both forms): PyTables reads every
    # attribute of a group it opens, and every load opens this one.
    clear_mapping(attrs, PROVENANCE)
    if new.provenance:
        set_attr(attrs, PROVENANCE, dict(new.provenance))

    entries = catalog_entries(new)
    if old is None or catalog_entries(old) != entries:
        if CATALOG in traj_group._v_children:
            h5.remove_node(traj_group, CATALOG)
        catalog = h5.create_vlarray(
            traj_group,
            CATALOG,
            atom=tables.VLStringAtom(),
            filters=options.plain_filters(),
            chunkshape=(max(len(entries), 1),),
        )
        for entry in entries:
            catalog.append(encode_text(entry))

    old_groups = {group.path: group for group in old.groups} if old is not None else {}
    for group in new.groups:
        if same_group(old_groups.get(group.path), group):
            continue
        node = require_group(h5, node_path(name, group.path))
        set_attr(node._v_attrs, COMMENT, group.comment)
        set_mapping(node._v_attrs, ANNOTATIONS, group.annotations)

    old_leaves = {leaf.path: leaf for leaf in old.leaves} if old is not None else {}
    new_paths = {leaf.path for leaf in new.leaves}
    for path, leaf in old_leaves.items():
        if path not in new_paths:
            _remove_leaf(h5, name, leaf)
    for leaf in new.leaves:
        _write_leaf(h5, name, old_leaves.get(leaf.path), leaf)

    crash_point("definition")
    if old is None or [(k.path, k.target, k.comment) for k in old.links] != [
        (k.path, k.target, k.comment) for k in new.links
    ]:
        _write_links(h5, name, old, new)
    if old is None or (
        not same_explored_points(old, new) and not _append_explored(traj_group, old, new)
    ):
        _write_explored(h5, traj_group, old, new, options)
    write_skeleton(traj_group, new)  # last: a record describes what was written


def _write_leaf(h5: Any, traj: str, old: LeafRecord | None, new: LeafRecord) -> None:
    node = require_group(h5, node_path(traj, new.path))
    attrs = node._v_attrs
    if old is None or not same_leaf_meta(old, new):
        attrs[LEAF_CLASS] = new.leaf_class
        set_attr(attrs, COMMENT, new.comment)
        attrs[PER_RUN] = bool(new.per_run)
        attrs[PICKLED] = bool(new.pickled)
        set_attr(attrs, ITEMS, ",".join(new.items))
        set_mapping(attrs, ANNOTATIONS, new.annotations)
    if old is not None and not old.per_run:
        for item in old.items:
            if (item not in new.items or new.per_run) and item in node._v_children:
                h5.remove_node(node, item, recursive=True)
    if new.per_run:
        return
    for item, value in new.items.items():
        if value is NOT_LOADED:
            continue
        unchanged = (
            old is not None
            and not old.per_run
            and item in old.items
            and item in node._v_children
            and same_value(old.items[item], value, new.pickled)
        )
        if unchanged:
            continue
        write_value(h5, node, item, value, pickled=new.pickled)
    if not new.items:
        has_default = new.default is not None or new.explored is not None
        if has_default:
            if (
                old is None
                or DEFAULT not in node._v_children
                or not same_value(old.default, new.default, new.pickled)
            ):
                write_value(h5, node, DEFAULT, new.default, pickled=new.pickled)
        elif DEFAULT in node._v_children:
            h5.remove_node(node, DEFAULT)


def _remove_leaf(h5: Any, traj: str, leaf: LeafRecord) -> None:
    """Take a leaf out of the tree; per-run values stay readable as columns."""
    try:
        node = h5.get_node(node_path(traj, leaf.path))
    except LookupError:
        return
    for child in list(node._v_children.values()):
        if _COLUMN_ATTR not in child._v_attrs:
            h5.remove_node(child, recursive=True)
    remove_attrs(node._v_attrs)
    if not node._v_children:
        h5.remove_node(node)


def _write_links(h5: Any, traj: str, old: StudyDefinition | None, new: StudyDefinition) -> None:
    for link in old.links if old is not None else []:
        parent_path, _, link_name = node_path(traj, link.path).rpartition("/")
        try:
            parent = h5.get_node(parent_path)
        except LookupError:
            continue
        if link_name in parent._v_children:
            h5.remove_node(parent, link_name)
        drop_big_attr(parent._v_attrs, f"{LINK_COMMENT}.{link_name}")
    for link in new.links:
        parent_path, _, link_name = node_path(traj, link.path).rpartition("/")
        parent = require_group(h5, parent_path)
        h5.create_soft_link(parent, link_name, node_path(traj, link.target))
        if link.comment:
            set_attr(parent._v_attrs, f"{LINK_COMMENT}.{link_name}", link.comment)


#: Longest column name of the explored table: the names live in the table's compound type,
#: which HDF5 keeps in one object-header message of less than 64 KiB, so long parameter
#: names are cut (readers map columns to parameters by ``column_paths``, not by name).
_COLUMN_NAME_CHARS = 32


def _table_column_name(path: str, taken: set[str]) -> str:
    base = path.removeprefix("parameters.").replace(".", "_").replace("-", "_")
    base = base[:_COLUMN_NAME_CHARS]
    name, number = base, 1
    while name in taken or name == "point_id":
        number += 1
        name = f"{base}_{number}"
    taken.add(name)
    return name


def _scalar_column(values: list[Any]) -> tuple[str, np.dtype[Any]] | None:
    """The (tag, dtype) shared by every value, when they can form a table column."""
    if not values:
        return None
    first = scalar_tag(values[0])
    if first is None:
        return None
    if isinstance(values, ExploredColumn) and values.has_python_values:
        # Held as one array (plain numbers explored): its dtype says it all, without a
        # Python object per value.
        return first if _column_array(values, first[0], first[1]) is not None else None
    kind_type, dtype = type(values[0]), first[1]
    # Checked in C (a merge appends 50,000 values): one type, and ints that fit int64.
    if set(map(type, values)) != {kind_type}:
        return None
    if first[0] == "numpy" and any(value.dtype != dtype for value in values):
        return None
    if kind_type is int and not (min(values) >= -(2**63) and max(values) < 2**63):
        return None
    return first


def _write_explored(
    h5: Any,
    traj_group: Any,
    old: StudyDefinition | None,
    new: StudyDefinition,
    options: FileOptions,
) -> None:
    """Rewrite the explored table and the per-parameter explored stores."""
    traj = traj_group._v_name
    runs = traj_group._f_get_child(RUNS)
    if EXPLORED in runs._v_children:
        h5.remove_node(runs, EXPLORED)
    for leaf in old.leaves if old is not None else []:
        try:
            node = h5.get_node(node_path(traj, leaf.path))
        except LookupError:
            continue
        if EXPLORED in node._v_children and not leaf.items:
            h5.remove_node(node, EXPLORED, recursive=True)

    # Ids shorter than 16 bytes come from a reader that dropped trailing NULs: padded back.
    # One V16 array (no bytes object per run); None when an id is longer than 16 bytes.
    ids_array = id_array(new.point_ids) if len(new.point_ids) else None
    with_ids = ids_array is not None
    lengths = [len(leaf.explored) for leaf in new.leaves if leaf.explored is not None]
    n_rows = len(ids_array) if ids_array is not None else (max(lengths) if lengths else 0)
    # A trajectory of layout 1 keeps its own id column type (the bytes are the same).
    version = int(get_attr(traj_group._v_attrs, SCHEMA, SCHEMA_VERSION))
    id_dtype = np.dtype(POINT_ID_DTYPES[min(version, SCHEMA_VERSION)])
    fields: list[tuple[str, np.dtype[Any]]] = [("point_id", id_dtype)] if with_ids else []
    columns: list[tuple[LeafRecord, str, str, np.dtype[Any]]] = []
    taken: set[str] = set()
    for leaf in new.leaves:
        if leaf.explored is None:
            continue
        scalar = (
            None if leaf.pickled or len(leaf.explored) != n_rows else _scalar_column(leaf.explored)
        )
        if scalar is None:
            _write_rows_store(h5, traj, leaf, options)
            continue
        column = _table_column_name(leaf.path, taken)
        columns.append((leaf, column, scalar[0], scalar[1]))
        fields.append((column, storage_dtype(scalar[1])))
    if not fields:
        return
    row_dtype = np.dtype(fields)
    chunk = chunk_rows(row_dtype.itemsize, n_rows, ARRAY_CHUNK_BYTES)
    table = h5.create_table(
        runs,
        EXPLORED,
        description=row_dtype,
        filters=options.keyed_table_filters() if with_ids else options.table_filters(),
        chunkshape=(chunk,),
        expectedrows=max(n_rows, 1),
    )
    # Written in blocks of whole chunks: a table of 1,000,000 rows built at once took
    # about 60 MB more at the start of ``env.run`` (the rows, the ids made contiguous,
    # each column copied), where a block takes a few MB. The file holds the same bytes.
    arrays = [_whole_column(leaf.explored, dtype) for leaf, _column, _tag, dtype in columns]
    block = chunk * max(1, _BLOCK_ROWS // chunk)
    for start in range(0, n_rows, block):
        stop = min(start + block, n_rows)
        data = np.empty(stop - start, dtype=row_dtype)
        if ids_array is not None:
            ids = np.ascontiguousarray(ids_array[start:stop]).view(np.uint8).reshape(-1, 16)
            data["point_id"] = ids if id_dtype.subdtype is not None else ids.view("S16")[:, 0]
        for (leaf, column, _tag, dtype), whole in zip(columns, arrays, strict=True):
            assert leaf.explored is not None
            array = (
                whole[start:stop]
                if whole is not None
                else np.array(leaf.explored[start:stop], dtype=dtype)
            )
            data[column] = array.view(np.int64) if dtype.kind in "Mm" else array
        table.append(data)
    set_attr(table._v_attrs, COLUMN_PATHS, ",".join(leaf.path for leaf, *_ in columns))
    table._v_attrs["pytraj_point_ids"] = with_ids
    for _leaf, column, tag, dtype in columns:
        table._v_attrs[f"{column}.{TYPE_ATTR}"] = tag
        table._v_attrs[f"{column}.{DTYPE_ATTR}"] = dtype.str


#: Rows of the explored table written at a time (rounded to whole chunks).
_BLOCK_ROWS = 65536


def _whole_column(values: Sequence[Any] | None, dtype: np.dtype[Any]) -> np.ndarray | None:
    """An explored column already held as one array, as ``dtype`` (the array itself when
    it has that dtype); None for a list (converted block by block)."""
    if not isinstance(values, ExploredColumn):
        return None
    return np.asarray(values, dtype=dtype)


def _append_explored(traj_group: Any, old: StudyDefinition, new: StudyDefinition) -> bool:
    """Append the points ``new`` adds after ``old``'s to the explored table, when that
    is all that changed (a merge or an expansion); False when the table must be rewritten.

    Appending writes (and compresses) only the new rows: merging two files of 50,000
    runs rewrote 100,000 rows before.
    """
    runs = traj_group._f_get_child(RUNS)
    if EXPLORED not in runs._v_children:
        return False
    table = runs._f_get_child(EXPLORED)
    attrs = table._v_attrs
    n_old, n_new = len(old.point_ids), len(new.point_ids)
    if not bool(attrs["pytraj_point_ids"]) or table.nrows != n_old or n_new <= n_old:
        return False
    explored = [leaf for leaf in new.leaves if leaf.explored is not None]
    old_explored = {leaf.path for leaf in old.leaves if leaf.explored is not None}
    paths = [path for path in str(get_attr(attrs, COLUMN_PATHS)).split(",") if path]
    if paths != [leaf.path for leaf in explored] or set(paths) != old_explored:
        return False  # a parameter explored anew, or one stored outside the table
    new_ids = id_array(new.point_ids)
    if new_ids is None:
        return False  # an id longer than 16 bytes: not a point id of this layout
    # A point id hashes the values of every parameter of its run, so equal ids of the
    # first runs mean equal stored rows (``old``'s explored lists may be the very lists
    # a range was extended in, so they cannot tell).
    old_ids = id_array(old.point_ids)
    if old_ids is None or not np.array_equal(new_ids[:n_old], old_ids):
        return False
    data = np.empty(n_new - n_old, dtype=table.dtype)
    ids = np.ascontiguousarray(new_ids[n_old:]).view(np.uint8).reshape(-1, 16)
    id_dtype = table.dtype["point_id"]
    data["point_id"] = ids if id_dtype.subdtype is not None else ids.view("S16")[:, 0]
    columns = [name for name in table.dtype.names if name != "point_id"]
    for leaf, column in zip(explored, columns, strict=True):
        values = leaf.explored
        assert values is not None  # ``explored`` holds explored leaves only
        if leaf.pickled or len(values) != n_new:
            return False
        tag = str(attrs[f"{column}.{TYPE_ATTR}"])
        dtype = np.dtype(str(attrs[f"{column}.{DTYPE_ATTR}"]))
        array = _column_array(values, tag, dtype)
        if array is not None:  # a column held as an array (a merge): no Python objects
            data[column] = array[n_old:]
            continue
        if _scalar_column(values[n_old:]) != (tag, dtype):
            return False  # new values of another type: the column changes
        array = np.array(values[n_old:], dtype=dtype)
        data[column] = array.view(np.int64) if dtype.kind in "Mm" else array
    table.append(data)
    return True


#: The dtype kind of each tag of Python scalars (:func:`~.codecs.scalar_tag`).
_PYTHON_TAG_KINDS = {"bool": "b", "int": "i", "float": "f", "complex": "c"}


def _column_array(values: Sequence[Any], tag: str, dtype: np.dtype[Any]) -> np.ndarray | None:
    """``values`` as the array a table column of ``tag`` and ``dtype`` holds, when they
    are an explored column of Python scalars of exactly that kind (else None)."""
    if not (isinstance(values, ExploredColumn) and values.has_python_values):
        return None
    array = values.to_numpy()
    if _PYTHON_TAG_KINDS.get(tag) != dtype.kind or array.dtype != dtype:
        return None
    return array


def _write_rows_store(h5: Any, traj: str, leaf: LeafRecord, options: FileOptions) -> None:
    """Explored values that are not table scalars: one row per run in the leaf's group."""
    assert leaf.explored is not None
    values = [resolve(value) for value in leaf.explored] if leaf.pickled else leaf.explored
    node = require_group(h5, node_path(traj, leaf.path))
    group = h5.create_group(node, EXPLORED)
    spec = _rows_spec(values, leaf.pickled)
    create_store(h5, group, "values", spec, options=options, expected=len(values))
    spec.to_attrs(group._v_attrs)
    group._v_attrs["nrows"] = len(values)
    append_rows(group, "values", spec, values)


def _rows_spec(values: list[Any], pickled: bool) -> ColumnSpec:
    """One store kind every value fits (falling back to valuecodec bytes)."""
    if not values:
        return ColumnSpec("encoded", "encoded")
    spec = spec_for(values[0], pickled)
    if spec.kind in ("pickle", "encoded") or all(spec.fits(value) for value in values):
        return spec
    return ColumnSpec("encoded", "encoded")
