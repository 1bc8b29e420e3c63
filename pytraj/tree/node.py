"""Nodes of the trajectory tree: the data-free base, groups with natural naming, links.

Natural naming: attribute access looks up methods and properties first and falls back
to children (``group.x``), so methods always win; item access takes dotted or slashed
paths (``group["a.b"]``, ``group["a/b"]``). Both return *values*: a group for a group,
the current value for a parameter (see :meth:`Node.natural_value`). ``group.node(path)``
returns the node object itself.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from pytraj.errors import (
    AmbiguousNameError,
    InvalidNameError,
    NodeAttributeError,
    NodeExistsError,
    NodeNotFoundError,
    NodeTypeError,
    PathTypeError,
    UnsupportedValueError,
)
from pytraj.tree.annotations import Annotations
from pytraj.tree.names import join_path, split_path, validate_name
from pytraj.tree.render import render_html, render_text
from pytraj.tree.shadowing import quiet_shadowing, warn_shadowing

__all__ = ["Group", "Link", "Node", "quiet_shadowing"]

NodeT = TypeVar("NodeT", bound="Node")


class Node:
    """Base of every node: a name, a parent, a comment and annotations; no data."""

    __slots__ = ("__weakref__", "_annotations", "_comment", "_name", "_parent")

    def __init__(self, name: str, *, comment: str = "") -> None:
        self._name = validate_name(name)
        self._parent: Group | None = None
        self._comment = ""
        self._annotations: Annotations | None = None
        self.comment = comment

    # -- identity -------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The node's own name."""
        return self._name

    @property
    def parent(self) -> Group | None:
        """The group holding this node, or None for a root or a detached node."""
        return self._parent

    @property
    def full_name(self) -> str:
        """Dotted path from the root, without the root's own name (``"parameters.x"``)."""
        names: list[str] = []
        node: Node = self
        while node._parent is not None:
            names.append(node._name)
            node = node._parent
        return ".".join(reversed(names))

    @property
    def root(self) -> Node:
        """The topmost node above this one (itself when detached)."""
        node: Node = self
        while node._parent is not None:
            node = node._parent
        return node

    @property
    def depth(self) -> int:
        """Number of groups between this node and its root."""
        depth, node = 0, self
        while node._parent is not None:
            depth, node = depth + 1, node._parent
        return depth

    @property
    def is_leaf(self) -> bool:
        """Whether the node holds data (a parameter or result)."""
        return False

    @property
    def is_group(self) -> bool:
        """Whether the node holds other nodes."""
        return False

    @property
    def is_link(self) -> bool:
        """Whether the node points to another node."""
        return False

    # -- description ----------------------------------------------------------------
    @property
    def comment(self) -> str:
        """Free text describing the node, stored as an HDF5 attribute."""
        return self._comment

    @comment.setter
    def comment(self, text: str) -> None:
        if not isinstance(text, str):
            raise UnsupportedValueError(
                f"the comment of {self.full_name or self._name!r} must be a str, "
                f"got {type(text).__name__}"
            )
        self._comment = text

    @property
    def annotations(self) -> Annotations:
        """Named values describing the node (``node.annotations["unit"] = "mV"``)."""
        if self._annotations is None:
            self._annotations = Annotations(self.full_name or self._name)
        return self._annotations

    @property
    def has_annotations(self) -> bool:
        """Whether the node holds annotations (reading it creates none, unlike ``annotations``)."""
        return bool(self._annotations)

    def natural_value(self) -> Any:
        """What natural naming returns for this node: the node, or its value for leaves."""
        return self

    def _on_attach(self) -> None:
        """Called after the node joined a tree; subclasses may extend it."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.full_name or self._name!r}>"


class Link(Node):
    """A named reference to another node of the same tree."""

    __slots__ = ("_target",)

    def __init__(self, name: str, target: Node, *, comment: str = "") -> None:
        super().__init__(name, comment=comment)
        if isinstance(target, Link):
            target = target.target
        self._target = target

    @property
    def target(self) -> Node:
        """The node this link points to."""
        return self._target

    @property
    def is_link(self) -> bool:
        return True

    def natural_value(self) -> Any:
        return self._target.natural_value()

    def __repr__(self) -> str:
        return f"<Link {self.full_name or self._name!r} -> {self._target.full_name!r}>"


class Group(Node):
    """A node holding named children, with natural naming.

    Examples
    --------
    >>> root = Group("root")
    >>> net = root.require_group("net.layers")
    >>> root["net/layers"] is net and root.net.layers is net
    True
    """

    __slots__ = ("_children", "_index")

    def __init__(self, name: str, *, comment: str = "") -> None:
        super().__init__(name, comment=comment)
        self._children: dict[str, Node] = {}
        # name -> nodes with that name anywhere below; kept only on a root.
        self._index: dict[str, list[Node]] | None = {}

    @property
    def is_group(self) -> bool:
        return True

    @property
    def children(self) -> dict[str, Node]:
        """The direct children by name, in insertion order (a copy)."""
        return dict(self._children)

    # -- mapping protocol (names -> values) -------------------------------------------
    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._children))

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        try:
            self.node(path)
        except (NodeNotFoundError, InvalidNameError):
            return False
        return True

    def keys(self) -> list[str]:
        """Names of the direct children."""
        return list(self._children)

    def child(self, name: str) -> Node | None:
        """The direct child called ``name`` (a link stays a link), or None."""
        return self._children.get(name)

    def __getitem__(self, path: str) -> Any:
        return self.node(path).natural_value()

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup failed, so methods and properties always win.
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            children = object.__getattribute__(self, "_children")
        except AttributeError:  # not initialised yet (unpickling, copying)
            raise AttributeError(name) from None
        child = children.get(name)
        if child is not None:
            return child.natural_value()
        return self.find_below(name).natural_value()

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_") or not hasattr(self, "_children") or hasattr(type(self), name):
            object.__setattr__(self, name, value)
            return
        self._set_child_value(name, value)

    def _set_child_value(self, name: str, value: Any) -> None:
        """Attribute assignment to a child; groups only allow it where a subclass says."""
        raise AttributeError(
            f"cannot set {name!r} on {self!r}: add nodes with add_parameter / add_result / "
            "add_group, and change a parameter with traj.node(path).value = ..."
        )

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._children))

    def _ipython_key_completions_(self) -> list[str]:
        return list(self._children)

    # -- lookup ----------------------------------------------------------------------
    def node(self, path: str) -> Node:
        """Return the node at ``path`` (dotted or slashed, relative to this group).

        Links are followed: the node they point to is returned.

        Raises
        ------
        NodeNotFoundError
            If a part of the path does not exist; the message lists close names.
        """
        if not isinstance(path, str):
            raise self._key_error(path)
        node: Node = self
        for part in split_path(path):
            if isinstance(node, Link):
                node = node.target
            if not isinstance(node, Group):
                raise NodeNotFoundError(
                    f"{node.full_name!r} is a leaf and has no child {part!r} (path {path!r})"
                )
            child = node._children.get(part)
            if child is None:
                raise NodeNotFoundError(node._missing_message(part))
            node = child
        return node.target if isinstance(node, Link) else node

    def get(self, path: str, default: Any = None) -> Any:
        """Return the value at ``path``, or ``default`` when nothing is there."""
        try:
            return self[path]
        except NodeNotFoundError:
            return default

    def _key_error(self, key: object) -> PathTypeError:
        """The error for a key that is not a path; the root may add a hint (runs)."""
        where = repr(self.full_name) if self.full_name else f"{type(self).__name__} {self.name!r}"
        message = (
            f"{where} is indexed by paths (str such as 'x' or 'net.size'), "
            f"got {type(key).__name__} {reprlib.repr(key)}"
        )
        root = self.root
        return PathTypeError(message + (root._key_hint(key) if isinstance(root, Group) else ""))

    def _key_hint(self, key: object) -> str:
        """Extra advice for a non-path key used on any group of this tree (the root's)."""
        return ""

    def _missing_message(self, name: str) -> str:
        where = repr(self.full_name) if self.full_name else "the root"
        close = difflib.get_close_matches(name, list(self._children), n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        return f"{where} has no child {name!r}{hint}"

    def find_below(self, name: str) -> Node:
        """Find the unique node called ``name`` below this group (natural-naming shortcut)."""
        candidates = self._candidates(name)
        if not candidates:
            raise NodeAttributeError(self._missing_message(name))
        leaves = [node for node in candidates if node.is_leaf]
        chosen = leaves or candidates
        if len(chosen) > 1:
            names = ", ".join(repr(node.full_name) for node in chosen)
            raise AmbiguousNameError(
                f"{name!r} matches several nodes below {self.full_name or 'the root'!r}: {names}; "
                "use a longer path"
            )
        return chosen[0]

    def _candidates(self, name: str) -> list[Node]:
        """Nodes named ``name`` strictly below this group, from the root's index."""
        root = self.root
        index = root._index if isinstance(root, Group) else None
        if index is None:
            return []
        found = index.get(name, [])
        if self is root:
            return list(found)
        prefix = self.full_name + "."
        return [node for node in found if node.full_name.startswith(prefix)]

    # -- building --------------------------------------------------------------------
    def add_group(self, path: str, *, comment: str = "") -> Group:
        """Create a group at ``path`` (intermediate groups are created as needed).

        Raises
        ------
        NodeExistsError
            If a node already exists at ``path``.
        """
        parent, name = self._parent_for(path)
        if name in parent._children:
            raise NodeExistsError(
                f"{join_path(parent.full_name, name)!r} exists already; use require_group"
            )
        return parent.attach(self._new_group(name, comment=comment))

    def require_group(self, path: str, *, comment: str = "") -> Group:
        """Return the group at ``path``, creating it (and its parents) if needed."""
        parent, name = self._parent_for(path)
        child = parent._children.get(name)
        if child is None:
            return parent.attach(self._new_group(name, comment=comment))
        if not isinstance(child, Group):
            raise NodeTypeError(f"{child.full_name!r} exists and is not a group")
        return child

    def add_link(self, path: str, target: Node | str, *, comment: str = "") -> Link:
        """Create a link at ``path`` pointing to ``target`` (a node or a path from the root)."""
        if isinstance(target, str):
            root = self.root
            if not isinstance(root, Group):
                raise NodeTypeError("links need a tree to point into")
            target = root.node(target)
        if target.root is not self.root:
            raise NodeTypeError(f"cannot link to {target!r}: it belongs to another tree")
        parent, name = self._parent_for(path)
        if name in parent._children:
            raise NodeExistsError(f"{join_path(parent.full_name, name)!r} exists already")
        return parent.attach(Link(name, target, comment=comment))

    def remove(self, path: str, *, recursive: bool = False) -> None:
        """Remove the node at ``path``; a non-empty group needs ``recursive=True``."""
        parts = split_path(path)
        parent = self.node(".".join(parts[:-1])) if len(parts) > 1 else self
        if not isinstance(parent, Group) or parts[-1] not in parent._children:
            raise NodeNotFoundError(self._missing_message(path))
        child = parent._children[parts[-1]]
        if isinstance(child, Group) and child._children and not recursive:
            raise NodeTypeError(
                f"{child.full_name!r} has {len(child._children)} children; "
                "pass recursive=True to remove them too"
            )
        parent.detach(child)

    def _on_detach(self, node: Node) -> None:
        """Called on the root after ``node`` left its tree; subclasses drop caches here."""

    def _on_attach_below(self, node: Node) -> None:
        """Called on the root after ``node`` joined its tree; subclasses drop caches here."""

    def _new_group(self, name: str, *, comment: str = "") -> Group:
        """Create a child group; subclasses return their own kind."""
        return Group(name, comment=comment)

    def _parent_for(self, path: str) -> tuple[Group, str]:
        parts = split_path(path)
        parent: Group = self
        for part in parts[:-1]:
            parent = parent.require_group(part)
        return parent, parts[-1]

    def attach(self, child: NodeT, *, name: str | None = None) -> NodeT:
        """Make the detached node ``child`` a child of this group and return it.

        Parameters
        ----------
        child
            A node that belongs to no group (see :meth:`detach`).
        name
            The name to give ``child`` here (a valid name; default: its own name).

        Raises
        ------
        NodeExistsError
            If this group has a child of that name.
        NodeTypeError
            If ``child`` belongs to a group.
        """
        name = child.name if name is None else name
        if name in self._children:
            raise NodeExistsError(f"{join_path(self.full_name, name)!r} exists already")
        if child._parent is not None:
            raise NodeTypeError(f"{child!r} belongs to {child._parent!r}; remove it there first")
        child._name = name
        warn_shadowing(self, child)
        self._children[name] = child
        child._parent = self
        moved = list(_walk(child))
        if isinstance(child, Group):
            child._index = None  # only a root keeps an index
        root = self.root
        if isinstance(root, Group) and root._index is not None:
            for node in moved:
                root._index.setdefault(node.name, []).append(node)
        for node in moved:
            node._on_attach()
        if isinstance(root, Group):
            root._on_attach_below(child)
        return child

    def detach(self, child: Node) -> None:
        """Take the direct child ``child`` (a node) out of this group, to attach elsewhere.

        Unlike :meth:`remove`, it takes the node itself and checks nothing: a detached
        group keeps its subtree (and becomes the root of its own name index).
        """
        root = self.root
        if isinstance(root, Group) and root._index is not None:
            for node in _walk(child):
                same = root._index.get(node.name, [])
                same[:] = [other for other in same if other is not node]
                if not same:
                    root._index.pop(node.name, None)
        del self._children[child.name]
        child._parent = None
        if isinstance(root, Group):
            root._on_detach(child)
        if isinstance(child, Group):
            child._index = {}
            for node in _walk(child):
                if node is not child:
                    child._index.setdefault(node.name, []).append(node)

    # -- walking ---------------------------------------------------------------------
    def iter_nodes(
        self,
        *,
        max_depth: int | None = None,
        predicate: Callable[[Node], bool] | None = None,
        links: bool = True,
    ) -> Iterator[Node]:
        """Yield the nodes below this group, depth first, parents before children.

        Parameters
        ----------
        max_depth
            Deepest level to yield, counted from this group (1 = direct children).
        predicate
            Only nodes for which it returns true are yielded (their children still are
            visited).
        links
            Whether to yield link nodes (their targets are never walked through).
        """
        stack: list[tuple[Node, int]] = [(child, 1) for child in reversed(self._children.values())]
        while stack:
            node, level = stack.pop()
            if (links or not node.is_link) and (predicate is None or predicate(node)):
                yield node
            if isinstance(node, Group) and (max_depth is None or level < max_depth):
                stack.extend((child, level + 1) for child in reversed(node._children.values()))

    def iter_leaves(
        self,
        *,
        max_depth: int | None = None,
        predicate: Callable[[Node], bool] | None = None,
    ) -> Iterator[Node]:
        """Yield the leaves below this group (see :meth:`iter_nodes`)."""
        for node in self.iter_nodes(max_depth=max_depth, predicate=predicate, links=False):
            if node.is_leaf:
                yield node

    def iter_groups(self, *, max_depth: int | None = None) -> Iterator[Group]:
        """Yield the groups below this group."""
        for node in self.iter_nodes(max_depth=max_depth, links=False):
            if isinstance(node, Group):
                yield node

    # -- rendering -------------------------------------------------------------------
    def __repr__(self) -> str:
        count = len(self._children)
        return (
            f"<{type(self).__name__} {self.full_name or self.name!r} "
            f"({count} {'child' if count == 1 else 'children'})>"
        )

    def tree(
        self,
        *,
        max_children: int = 20,
        max_depth: int | None = None,
        comments: bool = False,
        summaries: Mapping[str, str] | None = None,
    ) -> str:
        """Return a text drawing of the subtree (truncated for big trees).

        With ``comments``, each node's comment follows its line after ``#``;
        ``summaries`` (full name -> text) replaces the short state drawn after a node.
        """
        return render_text(
            self,
            max_children=max_children,
            max_depth=max_depth,
            comments=comments,
            summaries=summaries,
        )

    def _repr_html_(self) -> str:
        return render_html(self)


def _walk(node: Node) -> Iterator[Node]:
    """Yield ``node`` and every node below it (links are not followed)."""
    yield node
    if isinstance(node, Group):
        for child in node._children.values():
            yield from _walk(child)
