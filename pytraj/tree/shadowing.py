"""Shadowing warnings: a child whose name attribute access cannot reach.

Natural naming lets methods and properties win over children, so a child named like
one of them (``group.keys``, or a leaf ``seed`` under a trajectory whose ``traj.seed`` is
the run's seed) is reachable only by item access. Such a name warns once, where the
user created it; trees rebuilt from a stored definition or in a worker process attach
their nodes inside :func:`quiet_shadowing`.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

from pytraj.errors import ShadowingWarning
from pytraj.tree.names import join_path

__all__ = ["quiet_shadowing", "warn_shadowing"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep

# True while a tree is rebuilt (from a file, in a worker): its names warned when created.
_QUIET_SHADOWING: ContextVar[bool] = ContextVar("pytraj_quiet_shadowing", default=False)


class _Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def full_name(self) -> str: ...

    @property
    def is_leaf(self) -> bool: ...

    @property
    def root(self) -> _Named: ...


@contextmanager
def quiet_shadowing() -> Iterator[None]:
    """Attach nodes without :class:`~pytraj.errors.ShadowingWarning` inside the block.

    For trees rebuilt from a stored definition, and for a worker's copy of the tree:
    a shadowing name warns once, where the user created it, not once per process,
    run or load.
    """
    token = _QUIET_SHADOWING.set(True)
    try:
        yield
    finally:
        _QUIET_SHADOWING.reset(token)


def warn_shadowing(parent: _Named, child: _Named) -> None:
    """Warn when ``child`` of ``parent`` cannot be reached by attribute access.

    Parameters
    ----------
    parent
        The group ``child`` is attached to.
    child
        The node just attached.

    Warns
    -----
    ShadowingWarning
        When a method or attribute of ``parent``'s class has the child's name, or a
        leaf has the name of an attribute of the root (which wins over the root's
        shortcut to leaves); pointed at the user's line. Nothing inside
        :func:`quiet_shadowing`.
    """
    if _QUIET_SHADOWING.get():
        return
    name = child.name
    path = join_path(parent.full_name, name)
    # Point the warning at the user's line, however deep inside pytraj it is raised.
    level, frame = 1, sys._getframe()
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    if hasattr(type(parent), name):
        kind = "method" if callable(getattr(type(parent), name)) else "attribute"
        warnings.warn(
            f"{path!r} has the name of the {kind} {name!r} of {type(parent).__name__}, "
            f"which wins: {parent.full_name or parent.name}.{name} is that {kind}; reach it "
            f"with [{name!r}]",
            ShadowingWarning,
            stacklevel=level,
        )
        return
    root = parent.root
    if child.is_leaf and root is not parent and hasattr(type(root), name):
        # The root's shortcut (traj.x searches every branch for a leaf x) meets one of
        # the root's own names first: traj.seed is the run's seed, not a parameter seed.
        warnings.warn(
            f"{path!r} has the name of the attribute {name!r} of {type(root).__name__}, "
            f"which wins over the shortcut: {root.name}.{name} is that attribute; reach it "
            f"with [{path!r}]",
            ShadowingWarning,
            stacklevel=level,
        )
