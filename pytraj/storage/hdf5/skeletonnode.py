"""The skeleton record: what loading a trajectory needs, kept in one attribute of its group.

Every write of a study definition ends by writing, as attribute ``pytraj_skeleton`` of
the trajectory group, one valuecodec-encoded record of what
:func:`~pytraj.storage.hdf5.skeleton.read_definition` would read from the catalog, the
groups, the leaves and the explored table: names, classes, comments, annotations, item
names, small plain defaults, links and the explored table's columns. A load then reads
the trajectory group alone (it opens it anyway) instead of about one node per group
and leaf. The record is an addition to layout 2: files without it load as before, and
pytraj versions that do not know it ignore it.

A record is used only while it is current. Each write bumps the generation
(``pytraj_skeleton_generation`` on the group, the same number in the record); the
record holds a digest of the group's ``comment``, ``created``, ``n_runs`` and provenance,
which every writer of a definition rewrites (also a pytraj that does not know the
record), and the length of the catalog; and every group and leaf it names must still be
in the file. A record that fails any of these is stale, and the load reads the nodes
instead (:func:`~pytraj.storage.hdf5.skeleton.read_definition`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from pytraj.storage.hdf5.codecs import (
    DTYPE_ATTR,
    TYPE_ATTR,
    get_attr,
    get_mapping,
    has_attr,
    node_nbytes,
    set_attr,
)
from pytraj.storage.hdf5.layout import (
    COMMENT,
    DEFAULT,
    EXPLORED,
    EXPLORED_COLUMN_PATHS,
    PROVENANCE,
    RUNS,
    SKELETON,
    SKELETON_GENERATION,
    node_path,
)
from pytraj.storage.records import LazyValue, StudyDefinition
from pytraj.storage.valuecodec import dumps

__all__ = [
    "LAZY_BYTES",
    "ReadAttrs",
    "SKELETON_FORMAT",
    "explored_meta",
    "header_digest",
    "read_header",
    "read_skeleton",
    "same_header",
    "write_skeleton",
]

#: Version of the record's own format; a record of another version is not used.
SKELETON_FORMAT = 2
#: Defaults a load reads at once (as :func:`~pytraj.storage.hdf5.skeleton.read_node`
#: does: values of nodes up to this size) are kept in the record; bigger ones and
#: pickles are read from their node when first used.
LAZY_BYTES = 64 * 1024

#: Comments and annotations whose valuecodec bytes exceed this are read from their node's
#: attributes when loading, and so are defaults bigger than :data:`INLINE_DEFAULT_BYTES`:
#: the record stays small (one attribute, no copy of big values).
INLINE_META_BYTES = 1024
INLINE_DEFAULT_BYTES = 4096

# What the record says of a leaf's default, and of its explored values.
DEFAULT_VALUE = "value"  # the default is in the record
DEFAULT_READ = "read"  # read from the leaf's ``default`` node when loading
DEFAULT_NODE = "node"  # read from the leaf's ``default`` node on first use
DEFAULT_NONE = "none"  # no default node: the default is None
EXPLORED_TABLE = "table"  # a column of ``runs/explored``
EXPLORED_ROWS = "rows"  # the leaf's own ``explored`` store (read when loading)


def _size(value: Any) -> int | None:
    """The value's valuecodec size, or None for a value this pytraj does not encode."""
    try:
        return len(dumps(value))
    except (TypeError, ValueError):
        return None


def _meta(comment: str, annotations: dict[str, Any]) -> list[Any] | None:
    """A node's comment and annotations for the record; None: read them from the node."""
    meta = [comment, dict(annotations)]
    size = _size(meta)
    return meta if size is not None and size <= INLINE_META_BYTES else None


def _default_entry(traj_group: Any, path: str, value: Any) -> list[Any]:
    """What the record says of a (non-pickled) default: the value itself when small;
    else whether a load from the nodes reads it at once (its node holds at most
    ``LAZY_BYTES``) or on first use, as the record's load then does too."""
    if type(value) is LazyValue:
        return [DEFAULT_NODE]
    size = _size(value)
    if size is not None and size <= INLINE_DEFAULT_BYTES:
        return [DEFAULT_VALUE, value]
    node = traj_group._v_file.get_node(f"{node_path(traj_group._v_name, path)}/{DEFAULT}")
    return [DEFAULT_NODE] if node_nbytes(node) > LAZY_BYTES else [DEFAULT_READ]


def explored_meta(traj_group: Any) -> dict[str, Any] | None:
    """The explored table's length and columns, read from its attributes (None: no table).

    ``columns`` lists ``[parameter path, column name, type tag, dtype string]``.
    """
    runs = traj_group._f_get_child(RUNS)
    if EXPLORED not in runs._v_children:
        return None
    table = runs._f_get_child(EXPLORED)
    attrs = table._v_attrs
    paths = [path for path in str(get_attr(attrs, EXPLORED_COLUMN_PATHS)).split(",") if path]
    names = [name for name in table.dtype.names if name != "point_id"]
    return {
        "length": int(table.nrows),
        "point_ids": bool(attrs["pytraj_point_ids"]),
        "columns": [
            [path, name, str(attrs[f"{name}.{TYPE_ATTR}"]), str(attrs[f"{name}.{DTYPE_ATTR}"])]
            for path, name in zip(paths, names, strict=True)
        ],
    }


class ReadAttrs:
    """A node's attributes as PyTables read them when it opened the node.

    PyTables reads every attribute of a node when it opens it, but ``attrs[name]`` reads
    the attribute from the file again; this reads what was read (an attribute set
    changed since is read anew). It serves :func:`~pytraj.storage.hdf5.codecs.get_attr`
    and :func:`~pytraj.storage.hdf5.codecs.get_mapping` in place of the attribute set.
    """

    __slots__ = ("_attrs",)

    def __init__(self, attrs: Any) -> None:
        self._attrs = attrs

    def __contains__(self, name: str) -> bool:
        return name in self._attrs

    def __getitem__(self, name: str) -> Any:
        return getattr(self._attrs, name)

    @property
    def _v_node(self) -> Any:
        """The node (big values are read from nodes beside it)."""
        return self._attrs._v_node


def read_header(traj_group: Any) -> dict[str, Any]:
    """The trajectory group's own attributes that a definition holds, as stored."""
    attrs = ReadAttrs(traj_group._v_attrs)
    return {
        "comment": get_attr(attrs, COMMENT, ""),
        "created": float(get_attr(attrs, "created", 0.0)),
        "n_runs": int(get_attr(attrs, "n_runs", 1)),
        "provenance": get_mapping(attrs, PROVENANCE),
    }


def header_digest(header: dict[str, Any]) -> bytes:
    """A digest of the group's attributes (of their valuecodec bytes: types included)."""
    return hashlib.blake2b(dumps(header), digest_size=16).digest()


def same_header(record: dict[str, Any], header: dict[str, Any]) -> bool:
    """Whether the group's attributes are what they were when the record was written."""
    return bool(record["header"] == header_digest(header))


def write_skeleton(traj_group: Any, definition: StudyDefinition) -> None:
    """Write the skeleton record of ``definition``, just written into ``traj_group``."""
    meta = explored_meta(traj_group)
    in_table = {column[0] for column in meta["columns"]} if meta is not None else set()
    leaves = []
    for leaf in definition.leaves:
        default: list[Any] = [DEFAULT_NONE]
        explored = None
        if not leaf.items:
            if leaf.default is not None or leaf.explored is not None:
                default = (
                    [DEFAULT_NODE]
                    if leaf.pickled
                    else _default_entry(traj_group, leaf.path, leaf.default)
                )
            if leaf.path in in_table:
                explored = EXPLORED_TABLE
            elif leaf.explored is not None:
                explored = EXPLORED_ROWS
        leaves.append(
            [
                leaf.path,
                leaf.leaf_class,
                _meta(leaf.comment, leaf.annotations),
                bool(leaf.per_run),
                bool(leaf.pickled),
                list(leaf.items),
                default,
                explored,
            ]
        )
    attrs = traj_group._v_attrs
    generation = int(get_attr(attrs, SKELETON_GENERATION, 0)) + 1
    record = {
        "format": SKELETON_FORMAT,
        "generation": generation,
        "header": header_digest(read_header(traj_group)),
        "groups": [[g.path, _meta(g.comment, g.annotations)] for g in definition.groups],
        "leaves": leaves,
        "links": [[k.path, k.target, _meta(k.comment, {})] for k in definition.links],
        "explored": meta,
    }
    attrs[SKELETON_GENERATION] = np.int64(generation)
    set_attr(attrs, SKELETON, record)


def read_skeleton(traj_group: Any) -> dict[str, Any] | None:
    """The group's skeleton record when it is of this format and generation, else None."""
    attrs = ReadAttrs(traj_group._v_attrs)
    if not has_attr(attrs, SKELETON) or SKELETON_GENERATION not in attrs:
        return None
    record = get_attr(attrs, SKELETON)
    if (
        type(record) is not dict
        or record.get("format") != SKELETON_FORMAT
        or record.get("generation") != int(attrs[SKELETON_GENERATION])
    ):
        return None
    return record
