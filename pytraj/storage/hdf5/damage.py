"""What damaged bytes look like, and the checks that a file is a pytraj file at all.

HDF5, PyTables and numpy raise many kinds of errors on damaged or foreign bytes;
:func:`read_guard` turns them into one :class:`~pytraj.errors.DamagedFileError` that names
the file, the node and the way out. :func:`check_hdf5` and :func:`check_file` refuse what is
not a pytraj file before anything is read from it.
"""

from __future__ import annotations

import contextlib
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pytraj.errors import DamagedFileError, FileFormatError, PytrajError, StorageError
from pytraj.storage.hdf5.layout import SCHEMA, SCHEMA_VERSION
from pytraj.storage.hdf5.sizes import memory_error_is_damage

__all__ = [
    "REPAIR_HINT",
    "check_file",
    "check_hdf5",
    "damaged_error",
    "damaged_node_error",
    "read_errors",
    "read_guard",
]


def read_errors() -> tuple[type[BaseException], ...]:
    """What HDF5, PyTables and numpy raise on damaged or foreign bytes.

    ``SystemError`` is among them: PyTables has raised "Negative size passed to
    PyBytes_FromStringAndSize" on a damaged variable-length row. ``KeyError`` is not: the
    storage uses it to say "no value here".
    """
    import tables  # keeps import pytraj fast: PyTables loads on first use

    return (
        tables.HDF5ExtError,
        tables.NoSuchNodeError,
        SystemError,
        ValueError,
        TypeError,
        IndexError,
        OverflowError,
        AttributeError,
        EOFError,
        zlib.error,
        struct.error,
    )


@contextlib.contextmanager
def read_guard(path: Path, node: str = "", h5: Any = None) -> Iterator[None]:
    """Turn what damaged bytes raise inside the block into a :class:`DamagedFileError`.

    pytraj's own errors pass unchanged, so the innermost guard (the one that knows the
    node best) names it. A ``MemoryError`` becomes one only when the sizes ``node``
    claims in the open file ``h5`` show it came from damaged bytes
    (:func:`~pytraj.storage.hdf5.sizes.memory_error_is_damage`); the ``MemoryError`` of a
    healthy read too big for this machine stays one.
    """
    try:
        yield
    except PytrajError:
        raise
    except read_errors() as exc:
        raise damaged_node_error(path, node, exc) from exc
    except MemoryError as exc:
        if not memory_error_is_damage(h5, node):
            raise
        raise damaged_node_error(path, node, exc) from exc


#: What to do about a damaged node. The journal repairs what a kill during a write
#: leaves (a node lost, or torn at its end: see
#: :func:`~pytraj.storage.hdf5.groups.damaged_structure`), found when the file is next
#: opened with no live writer; older bytes damaged since are not looked at on open.
REPAIR_HINT = (
    "Run `pytraj check FILE` to see what is still readable. If its journal "
    "(<file>.journal) is beside it, opening the file again (with no process writing it) "
    "rebuilds it from the journal when a node is missing or its end is torn; otherwise "
    "restore it from a backup"
)


def damaged_node_error(path: Path, node: str, exc: BaseException) -> DamagedFileError:
    """The error for a node of an open file that cannot be read."""
    reason = _last_line(exc)
    where = f"node {node}" if node else "its structure"
    return DamagedFileError(
        f"{path}: {where} cannot be read ({type(exc).__name__}: {reason}); the file is "
        f"damaged. {REPAIR_HINT}",
        reason,
        node,
    )


def damaged_error(path: Path, exc: BaseException) -> DamagedFileError:
    """The error for an HDF5 file that cannot be opened."""
    reason = _last_line(exc)
    return DamagedFileError(
        f"{path} cannot be opened as an HDF5 file ({reason}); it is damaged or truncated. "
        "With its journal (<file>.journal) beside it pytraj rebuilds it on open; without one, "
        "restore the file from a backup",
        reason,
    )


def _last_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("File ", "End of HDF5"))]
    return useful[-2] if len(useful) >= 2 else (useful[-1] if useful else type(exc).__name__)


def check_file(h5: Any, path: Path) -> None:
    """Refuse a file that pytraj did not write, or wrote with a newer layout."""
    attrs = h5.root._v_attrs
    if SCHEMA not in attrs:
        raise FileFormatError(
            f"{path} is an HDF5 file but not a pytraj file (its root has no {SCHEMA} "
            "attribute). This pytraj reads only files it wrote: it has no pypet reader yet, so "
            "open a pypet file with pypet itself, and any HDF5 file with h5py, PyTables or ptdump"
        )
    raw = attrs[SCHEMA]
    if isinstance(raw, bool | np.bool_) or not isinstance(raw, int | np.integer):
        raise FileFormatError(
            f"{path} is an HDF5 file but not a pytraj file: its {SCHEMA} attribute holds "
            f"{type(raw).__name__} {str(raw)[:40]!r}, not a layout number; give the path of "
            "a file pytraj wrote"
        )
    version = int(raw)
    if version < 1:
        raise FileFormatError(
            f"{path} is not a pytraj file: its {SCHEMA} attribute is {version}, and pytraj "
            "layouts start at 1; give the path of a file pytraj wrote"
        )
    if version > SCHEMA_VERSION:
        raise FileFormatError(
            f"{path} was written by a newer pytraj (file layout {version}; this pytraj reads "
            f"layout {SCHEMA_VERSION}); upgrade pytraj to read it"
        )


def check_hdf5(path: Path) -> None:
    """Raise a clear error when ``path`` is missing or not an HDF5 file at all."""
    import tables  # keeps import pytraj fast: PyTables loads on first use

    if not path.exists():
        raise StorageError(
            f"no file {path}; check the path, or create it by giving filename= to a "
            "Trajectory or an Environment"
        )
    if path.is_dir():
        raise StorageError(f"{path} is a folder, not a pytraj file; give the file's path")
    try:
        is_hdf5 = tables.is_hdf5_file(str(path))
    except (OSError, tables.HDF5ExtError) as exc:
        raise damaged_error(path, exc) from exc
    if not is_hdf5:
        raise FileFormatError(
            f"{path} is not an HDF5 file (it does not start with the HDF5 signature); "
            "give the path of a file pytraj wrote"
        )
