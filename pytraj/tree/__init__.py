"""The trajectory tree: nodes, groups with natural naming, links, walking, rendering."""

from pytraj.tree.annotations import Annotations
from pytraj.tree.names import is_valid_name, join_path, split_path, validate_name
from pytraj.tree.node import Group, Link, Node

__all__ = [
    "Annotations",
    "Group",
    "Link",
    "Node",
    "is_valid_name",
    "join_path",
    "split_path",
    "validate_name",
]
