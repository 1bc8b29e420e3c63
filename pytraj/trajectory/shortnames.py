"""Which node a short name means (``traj.x``): the unique leaf, searching the branches in order."""

from __future__ import annotations

from pytraj.errors import AmbiguousNameError, NodeAttributeError
from pytraj.tree.node import Node

__all__ = ["BRANCHES", "choose"]

#: The four standard branches, in the order ``traj.x`` searches them.
BRANCHES = ("parameters", "derived_parameters", "results", "config")
_PREFERENCE = {name: rank for rank, name in enumerate(BRANCHES)}


def _rank(node: Node) -> int:
    return _PREFERENCE.get(node.full_name.split(".")[0], 99)


def choose(candidates: list[Node], name: str, trajectory: str) -> Node:
    """The node ``name`` means among the nodes so named: a leaf of the first branch that
    has one, else the only group; AmbiguousNameError or NodeAttributeError otherwise."""
    leaves = [node for node in candidates if node.is_leaf]
    if leaves:
        best = min(map(_rank, leaves))
        chosen = [node for node in leaves if _rank(node) == best]
        if len(chosen) == 1:
            return chosen[0]
        names = ", ".join(repr(node.full_name) for node in chosen)
        raise AmbiguousNameError(f"{name!r} matches several leaves: {names}; use a full path")
    groups = [node for node in candidates if node.is_group]
    if len(groups) == 1:
        return groups[0]
    if groups:
        names = ", ".join(repr(node.full_name) for node in groups)
        raise AmbiguousNameError(f"{name!r} matches several groups: {names}; use a full path")
    raise NodeAttributeError(f"trajectory {trajectory!r} has no node named {name!r}")
