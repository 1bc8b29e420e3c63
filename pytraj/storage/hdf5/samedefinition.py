"""Whether two study definitions, or parts of them, are the same.

A definition write changes only what changed (:mod:`pytraj.storage.hdf5.definitions`);
these comparisons decide what that is. Values compare with their exact types (``1`` and
``1.0`` differ), floats bit for bit, and a range that is still the file's column compares
as arrays, without reading it into Python objects.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from pytraj.storage.explored import StoredPointIds, same_stored_values
from pytraj.storage.hdf5.codecs import same_value
from pytraj.storage.records import NOT_LOADED, GroupRecord, LeafRecord, StudyDefinition

__all__ = [
    "catalog_entries",
    "id_array",
    "padded_ids",
    "same_definition",
    "same_explored",
    "same_explored_points",
    "same_group",
    "same_items",
    "same_leaf_meta",
    "same_list",
    "same_mapping",
    "same_plain_list",
]


def catalog_entries(definition: StudyDefinition) -> list[str]:
    """The catalog rows: every group, leaf and link of the definition, in order."""
    rows = [f"group\t{group.path}" for group in definition.groups]
    rows += [f"leaf\t{leaf.path}" for leaf in definition.leaves]
    rows += [f"link\t{link.path}\t{link.target}" for link in definition.links]
    return rows


def same_mapping(old: dict[str, Any], new: dict[str, Any], pickled: bool = False) -> bool:
    if list(old) != list(new):
        return False
    return all(same_value(old[key], new[key], pickled) for key in new)


def same_list(old: list[Any] | None, new: list[Any] | None, pickled: bool) -> bool:
    if old is None or new is None:
        return old is new
    if old is new:
        return True
    if len(old) != len(new):
        return False
    stored = same_stored_values(old, new)  # a range still the file's column: as arrays
    if stored is not None:
        return stored
    if all(map(operator.is_, old, new)):
        return True  # the usual case (a range copied, not changed), checked in C
    same = same_plain_list(old, new)
    if same is not None:
        return same
    return all(a is b or same_value(a, b, pickled) for a, b in zip(old, new, strict=True))


#: Types whose ``==`` is exactly "stores the same" when both sides have that one type.
_EXACT_EQUALITY = frozenset({int, bool, str, bytes})


def same_plain_list(old: list[Any], new: list[Any]) -> bool | None:
    """Whether two equally long lists of one plain type store the same (None: other lists).

    A re-run compares a million stored explored values with the script's own: one type
    check and one C-level comparison instead of a million value encodings. Floats are
    compared by their bits (``-0.0`` is not ``0.0``; a NaN is the NaN with its bits).
    """
    kinds = set(map(type, old))
    if len(kinds) != 1 or set(map(type, new)) != kinds:
        return None
    kind = kinds.pop()
    if kind in _EXACT_EQUALITY:
        return old == new
    if kind is float:
        bits_old = np.array(old, dtype=np.float64).view(np.int64)
        return bool(np.array_equal(bits_old, np.array(new, dtype=np.float64).view(np.int64)))
    return None


def same_leaf_meta(old: LeafRecord, new: LeafRecord) -> bool:
    return (
        old.leaf_class == new.leaf_class
        and old.comment == new.comment
        and old.per_run == new.per_run
        and old.pickled == new.pickled
        and list(old.items) == list(new.items)
        and same_mapping(old.annotations, new.annotations)
    )


def same_items(old: LeafRecord, new: LeafRecord) -> bool:
    if new.per_run:
        return True
    return all(
        value is NOT_LOADED or same_value(old.items.get(item), value, new.pickled)
        for item, value in new.items.items()
    )


def same_group(old: GroupRecord | None, new: GroupRecord) -> bool:
    return (
        old is not None
        and old.comment == new.comment
        and same_mapping(old.annotations, new.annotations)
    )


def padded_ids(point_ids: list[bytes]) -> list[bytes]:
    # Ids are 16 bytes; one that a reader of an S16 column cut short gets its NULs back.
    if isinstance(point_ids, StoredPointIds):
        return point_ids  # 16 bytes each (V16), and no bytes object made per run
    if set(map(type, point_ids)) <= {bytes} and min(map(len, point_ids), default=16) >= 16:
        return point_ids  # the usual case, checked without a Python-level loop
    return [bytes(p).ljust(16, b"\x00") if len(p) < 16 else bytes(p) for p in point_ids]


def id_array(point_ids: list[bytes]) -> np.ndarray | None:
    """The ids as one ``V16`` array (shorter ids padded back with NULs); None when one
    is longer than 16 bytes.

    Ids held as an array (a definition made from a run table, or read from the file)
    are taken as they are: a merge appends 50,000 of them, and turning each into a
    ``bytes`` object to compare and join them cost more than writing them.
    """
    if isinstance(point_ids, StoredPointIds):
        return point_ids.to_numpy()
    padded = padded_ids(point_ids)
    joined = b"".join(padded)
    if len(joined) != 16 * len(padded):
        return None  # padded ids are at least 16 bytes: then all are exactly 16
    return np.frombuffer(joined, dtype="V16")


def same_explored_points(old: StudyDefinition, new: StudyDefinition) -> bool:
    if len(old.point_ids) != len(new.point_ids):
        return False  # cheap first: a merge or an expansion adds points
    if old.point_ids != new.point_ids:
        old_ids, new_ids = id_array(old.point_ids), id_array(new.point_ids)
        if old_ids is None or new_ids is None or not np.array_equal(old_ids, new_ids):
            return False
    old_leaves = {leaf.path: leaf for leaf in old.leaves}
    explored_new = {leaf.path for leaf in new.leaves if leaf.explored is not None}
    explored_old = {leaf.path for leaf in old.leaves if leaf.explored is not None}
    if explored_new != explored_old:
        return False
    return all(
        same_list(old_leaves[leaf.path].explored, leaf.explored, leaf.pickled)
        for leaf in new.leaves
        if leaf.explored is not None
    )


def same_explored(old: StudyDefinition | None, new: StudyDefinition) -> bool:
    """Whether ``new`` holds the explored points and values ``old`` (the stored one) does."""
    return old is not None and same_explored_points(old, new)


def same_definition(old: StudyDefinition | None, new: StudyDefinition) -> bool:
    """Whether ``new`` holds nothing that ``old`` (the stored definition) does not."""
    if old is None:
        return False
    if (
        old.name != new.name
        or old.comment != new.comment
        or old.created != new.created
        or old.n_runs != new.n_runs
        # A tree rebuilt from a file may list siblings in another order: not a change.
        or sorted(catalog_entries(old)) != sorted(catalog_entries(new))
        or not same_mapping(old.provenance, new.provenance)
        or [link.comment for link in old.links] != [link.comment for link in new.links]
    ):
        return False
    old_groups = {group.path: group for group in old.groups}
    if not all(same_group(old_groups.get(group.path), group) for group in new.groups):
        return False
    old_leaves = {leaf.path: leaf for leaf in old.leaves}
    for leaf in new.leaves:
        previous = old_leaves[leaf.path]
        if not (
            same_leaf_meta(previous, leaf)
            and same_items(previous, leaf)
            and same_value(previous.default, leaf.default, leaf.pickled)
        ):
            return False
    return same_explored_points(old, new)
