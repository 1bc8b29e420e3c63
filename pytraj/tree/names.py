"""Node names and paths: validation and splitting.

A name is ``[A-Za-z0-9_-]+`` without a leading underscore (names with one are
reserved for pytraj's internals), at most :data:`MAX_NAME_LENGTH` characters. A path
joins names with ``.`` or ``/``.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeGuard

from pytraj.errors import InvalidNameError, PathTypeError

__all__ = [
    "MAX_NAME_LENGTH",
    "is_valid_name",
    "join_path",
    "split_path",
    "stored_names",
    "validate_name",
]

#: Longest node name. Names end up in HDF5 attributes (a result's item list), which hold
#: at most 64 KB: one longer name made the file unreadable. 255 is also what file
#: systems and HDF5 viewers handle comfortably.
MAX_NAME_LENGTH = 255

# True while a tree is rebuilt from a file: its names were accepted when written, so a
# file written before the length limit existed still loads.
_STORED: ContextVar[bool] = ContextVar("pytraj_stored_names", default=False)


@contextmanager
def stored_names() -> Iterator[None]:
    """Accept names of any length inside the block (names read back from a file)."""
    token = _STORED.set(True)
    try:
        yield
    finally:
        _STORED.reset(token)


_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")
_SEPARATORS = re.compile(r"[./]")


def _well_formed(name: object) -> TypeGuard[str]:
    return isinstance(name, str) and bool(_NAME.match(name)) and not name.startswith("_")


def is_valid_name(name: object) -> bool:
    """Return whether ``name`` may name a new node."""
    return _well_formed(name) and (len(name) <= MAX_NAME_LENGTH or _STORED.get())


def validate_name(name: object, *, parent: str = "") -> str:
    """Return ``name`` if it may name a node, else raise :class:`InvalidNameError`.

    Parameters
    ----------
    name
        The candidate name.
    parent
        Full name of the group the node would join, for the message.
    """
    if is_valid_name(name):
        return name  # type: ignore[return-value]  # is_valid_name checked the type
    where = f" under '{parent}'" if parent else ""
    if not isinstance(name, str):
        shown = reprlib.repr(name)
        raise PathTypeError(f"node names are strings, got {type(name).__name__} {shown}{where}")
    if name.startswith("_"):
        reason = "names starting with '_' are reserved for pytraj"
    elif not name:
        reason = "the name is empty"
    elif _NAME.match(name):
        reason = f"it has {len(name):,} characters, more than the {MAX_NAME_LENGTH} allowed"
        name = name[:40] + "..."
    else:
        bad = sorted({ch for ch in name if not re.match(r"[A-Za-z0-9_-]", ch)})
        reason = f"it contains {''.join(bad)!r}; use letters, digits, '_' and '-'"
    raise InvalidNameError(f"invalid node name {name!r}{where}: {reason}")


def split_path(path: str) -> list[str]:
    """Split a dotted or slashed path into validated names.

    >>> split_path("parameters.net/size")
    ['parameters', 'net', 'size']
    """
    if not isinstance(path, str):
        shown = reprlib.repr(path)
        raise PathTypeError(f"paths are strings, got {type(path).__name__} {shown}")
    parts = _SEPARATORS.split(path.strip("/"))
    for part in parts:
        # No length limit here: looking up a long name of an older file must work, and
        # every new node's name is checked (length too) when the node is made.
        if not _well_formed(part):
            validate_name(part, parent=path)
    return parts


def join_path(*parts: str) -> str:
    """Join names into a dotted full name, skipping empty parts."""
    return ".".join(part for part in parts if part)
