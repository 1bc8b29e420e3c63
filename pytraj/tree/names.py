"""Node names and paths: validation and splitting.

A name is ``[A-Za-z0-9_-]+`` without a leading underscore (names with one are
reserved for pytraj's internals). A path joins names with ``.`` or ``/``.
"""

from __future__ import annotations

import re
import reprlib

from pytraj.errors import InvalidNameError, PathTypeError

__all__ = ["is_valid_name", "join_path", "split_path", "validate_name"]

_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")
_SEPARATORS = re.compile(r"[./]")


def is_valid_name(name: object) -> bool:
    """Return whether ``name`` may name a node."""
    return isinstance(name, str) and bool(_NAME.match(name)) and not name.startswith("_")


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
        if not is_valid_name(part):
            validate_name(part, parent=path)
    return parts


def join_path(*parts: str) -> str:
    """Join names into a dotted full name, skipping empty parts."""
    return ".".join(part for part in parts if part)
