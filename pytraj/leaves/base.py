"""The leaf base class and the registry that maps stored class names to leaf classes."""

from __future__ import annotations

import pickle
from typing import Any, ClassVar, TypeVar

from pytraj.errors import NodeTypeError, UnsupportedValueError
from pytraj.leaves.values import check_storable
from pytraj.tree.node import Node
from pytraj.tree.render import leaf_html

__all__ = [
    "Leaf",
    "check_picklable",
    "leaf_class",
    "register_leaf_class",
    "registered_leaf_classes",
]

_REGISTRY: dict[str, type[Leaf]] = {}
LeafT = TypeVar("LeafT", bound="type[Leaf]")


class Leaf(Node):
    """A node that holds data: the base of parameters and results.

    Subclasses are found again when a file is loaded through the name they are
    registered under (see :func:`register_leaf_class`).
    """

    __slots__ = ()

    #: ``"parameter"`` or ``"result"``: which family the leaf belongs to.
    kind: ClassVar[str] = "leaf"
    #: Whether values are pickled (only the explicit Pickle leaves say yes).
    pickles_values: ClassVar[bool] = False

    @property
    def is_leaf(self) -> bool:
        return True

    def _current_index(self) -> int:
        """Index of the run the tree is set to, or -1 (read from the root trajectory)."""
        node = self.root
        # A Trajectory root says which run it is set to (its public ``idx``).
        return int(node.idx) if hasattr(type(node), "idx") else -1  # type: ignore[attr-defined]

    def _summary(self) -> str:
        return ""

    def _repr_html_(self) -> str:
        return leaf_html(self)

    def check_value(self, value: Any, where: str) -> None:
        """Raise if ``value`` cannot be stored in this kind of leaf.

        Subclasses may narrow what they accept; the base accepts what storage can hold.
        """
        check_storable(value, where=where)


def check_picklable(value: Any, where: str) -> None:
    """Raise unless ``value`` can be pickled (what the Pickle leaves accept)."""
    try:
        pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise UnsupportedValueError(
            f"{where}: {type(value).__name__} cannot be pickled ({exc})"
        ) from exc


def register_leaf_class(cls: LeafT) -> LeafT:
    """Register a leaf class so that files storing it load back into it.

    Use as a class decorator on your own subclass of :class:`Parameter` or
    :class:`Result`; the class name is the stored key, so keep it stable.

    >>> from pytraj import Result, register_leaf_class
    >>> @register_leaf_class
    ... class SpikeTrain(Result):
    ...     pass
    """
    if not (isinstance(cls, type) and issubclass(cls, Leaf)):
        raise NodeTypeError(f"only Leaf subclasses can be registered, got {cls!r}")
    known = _REGISTRY.get(cls.__name__)
    if known is not None and known is not cls and known.__module__ != cls.__module__:
        raise NodeTypeError(
            f"a leaf class named {cls.__name__!r} is registered already "
            f"(from {known.__module__}); give yours another name"
        )
    _REGISTRY[cls.__name__] = cls
    return cls


def leaf_class(name: str) -> type[Leaf]:
    """Return the leaf class registered under ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise NodeTypeError(
            f"no leaf class {name!r} is registered; import the module that defines it "
            "(decorated with @register_leaf_class) before loading"
        ) from None


def registered_leaf_classes() -> dict[str, type[Leaf]]:
    """Return a copy of the registry (class name -> class)."""
    return dict(_REGISTRY)
