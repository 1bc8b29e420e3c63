"""Sizes a possibly damaged file claims, checked before anything is allocated by them.

A flipped byte in a node's object header can make it claim billions of rows; reading it
would then allocate tens of GB (``MemoryError``) or read past the data. Every read of a
whole node, or of a range whose size comes from the file, goes through
:func:`read_leaf`, which compares the claimed rows with what the node's storage can hold:
the bytes its chunks occupy (HDF5 counts them from the chunk index, not from the header)
and the size of the file. A compressed chunk is never shorter than
:data:`MIN_CHUNK_BYTES`, so even the best compression bounds the rows a node can hold.

:func:`memory_error_is_damage` decides, for the read guard, whether a ``MemoryError``
came from damaged bytes (the node claims more rows than its storage holds, or a healthy
read of it would need less than half the memory this process may still use) or from a
healthy read too big for this machine, which must stay a ``MemoryError``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pytraj.errors import DamagedFileError

__all__ = [
    "MIN_CHUNK_BYTES",
    "SMALL_READ_BYTES",
    "check_count",
    "check_rows",
    "damaged",
    "max_rows",
    "memory_error_is_damage",
    "read_leaf",
]

#: Reads of at most this many bytes are not checked: allocating them is harmless, and a
#: read of one value stays one read (no walk of the chunk index).
SMALL_READ_BYTES = 16 * 1024 * 1024
#: The smallest a compressed chunk can be on disk (zlib's header and checksum alone take
#: 6 bytes, blosc's header 16): bounds how many chunks a node's storage can hold.
MIN_CHUNK_BYTES = 8
#: Bytes of one row of a variable-length array in its dataset (an HDF5 heap reference).
_VL_REF_BYTES = 16


def _file_path(node: Any) -> Path:
    return Path(node._v_file.filename)


def _damaged(node: Any, claim: str, bound: str) -> DamagedFileError:
    return damaged(_file_path(node), node._v_pathname, f"it claims {claim}, more than {bound}")


def damaged(path: Path, name: str, reason: str) -> DamagedFileError:
    """The error for the node ``name`` of the file ``path`` that cannot be read."""
    return DamagedFileError(
        f"{path}: node {name} cannot be read ({reason}); the file is damaged. Run "
        "`pytraj check FILE` to see what is still readable. If its journal "
        "(<file>.journal) is beside it, opening the file again (with no process writing "
        "it) rebuilds it from the journal when a node is missing or its end is torn; "
        "otherwise restore it from a backup",
        reason,
        name,
    )


def _is_vlarray(node: Any) -> bool:
    import tables  # keeps import pytraj fast: PyTables loads on first use

    return isinstance(node, tables.VLArray)


def _row_bytes(node: Any) -> int:
    """Bytes of one row in the node's dataset (at least 1)."""
    if _is_vlarray(node):
        return _VL_REF_BYTES
    return max(int(node.rowsize), 1)


def _storage_bytes(node: Any, file_size: int) -> int:
    """Bytes the node's data occupies in the file (never more than the file)."""
    if _is_vlarray(node):
        return file_size  # PyTables cannot tell a variable-length array's storage size
    return min(int(node.size_on_disk), file_size)


def max_rows(node: Any) -> int:
    """The most rows the storage of ``node`` can hold, whatever its header says."""
    file_size = os.path.getsize(_file_path(node))
    row_bytes = _row_bytes(node)
    chunkshape = node.chunkshape
    if chunkshape is None:
        # Contiguous: the data is one block inside the file.
        return file_size // row_bytes + 1
    chunk_rows = max(int(chunkshape[0]), 1)
    storage = _storage_bytes(node, file_size)
    # An uncompressed chunk occupies all its rows (plus a checksum, with fletcher32).
    compressed = node.filters.complevel > 0
    per_chunk = MIN_CHUNK_BYTES if compressed else max(chunk_rows * row_bytes, 1)
    return (storage // per_chunk + 1) * chunk_rows


def check_rows(node: Any, start: int = 0, stop: int | None = None) -> int:
    """The rows ``node`` claims, after checking them; reading ``[start, stop)`` is safe.

    Raises
    ------
    DamagedFileError
        When the node claims more rows than its storage can hold (a damaged header).
    """
    if not node.shape:
        return 1  # a scalar
    nrows = int(node.nrows)
    if nrows < 0:
        raise _damaged(node, f"{nrows} rows", "zero")
    end = nrows if stop is None else min(max(int(stop), 0), nrows)
    count = max(end - max(int(start), 0), 0)
    if count * _row_bytes(node) <= SMALL_READ_BYTES:
        return nrows
    bound = max_rows(node)
    if nrows > bound:
        raise _damaged(node, f"{nrows} rows", f"the {bound} its storage can hold")
    return nrows


def read_leaf(node: Any, start: int | None = None, stop: int | None = None, **kwargs: Any) -> Any:
    """``node.read(start, stop, ...)`` once the rows it claims are checked."""
    check_rows(node, start or 0, stop)
    return node.read(start, stop, **kwargs)


def check_count(node: Any, count: int, bound: int, what: str) -> int:
    """``count`` (read from ``node``) if at most ``bound``, else a :class:`DamagedFileError`.

    For sizes that come from a node's values rather than its header (a run index that
    sizes an array), checked against what the file records elsewhere.
    """
    if not 0 <= count <= bound:
        raise _damaged(node, f"{what} {count}", f"the {bound} the file records")
    return count


def _memory_limit() -> int:
    """Bytes this process may still allocate: available memory, or its address-space limit."""
    import resource

    import psutil  # lazy: only a MemoryError needs it

    limit = int(psutil.virtual_memory().available)
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limit = min(limit, int(soft))
    return limit


def _claimed_bytes(node: Any, file_size: int) -> int:
    """Bytes a healthy read of ``node`` needs, as far as the file tells."""
    if _is_vlarray(node):
        # Variable-length data is never compressed: it is inside the file, plus a
        # Python object of some 100 bytes per row.
        return file_size + int(node.nrows) * 100
    if not node.shape:
        return int(node.atom.size)
    return int(node.nrows) * _row_bytes(node)


def memory_error_is_damage(h5: Any, node_path: str) -> bool:
    """Whether a ``MemoryError`` while reading ``node_path`` of the open ``h5`` is damage.

    It is when the node claims more rows than its storage holds, or when a healthy read
    of it needs less than half the memory left (so the allocation that failed was sized
    by damaged bytes inside). A group needs what its leaves need, and its attributes
    (never compressed: the file's size bounds them). Without an open file or a node,
    nothing can be decided: the ``MemoryError`` is kept.
    """
    if h5 is None or not node_path:
        return False
    import tables  # keeps import pytraj fast: PyTables loads on first use

    try:
        node = h5.get_node(node_path)
        file_size = os.path.getsize(h5.filename)
        leaves = [node] if isinstance(node, tables.Leaf) else list(node._f_walknodes("Leaf"))
        claimed = file_size  # the attributes
        for leaf in leaves:
            if leaf.shape and int(leaf.nrows) > max_rows(leaf):
                return True
            claimed += _claimed_bytes(leaf, file_size)
    except (tables.HDF5ExtError, LookupError, ValueError, OverflowError, OSError):
        return True  # the node cannot even be looked at: its header is damaged
    return claimed < _memory_limit() // 2
