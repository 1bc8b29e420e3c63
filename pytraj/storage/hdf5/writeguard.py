"""Writing an HDF5 file when the disk may fill up: reserve space first, verify after.

HDF5 does not report every failed write: PyTables ignores the error of ``H5Fclose``,
so a full disk (``ENOSPC``) or a file size limit (``EFBIG``) during a flush leaves a file
cut short, or holes of zeros with a stale superblock, while the flush seems to succeed.
The journal is the last copy of the runs until the HDF5 file is known good, so every
write of the file goes through two checks:

* :func:`reserve` allocates the room a write needs at the end of the file before HDF5
  opens it (``posix_fallocate``; HDF5 writes there and cuts the file back to its own end
  when it closes it). Without room the write is refused and the file stays as it was.
* :func:`verify` checks, after HDF5 closed the file, that the end of file recorded in
  its superblock is the file's size and that the part written has no holes; a file that
  fails is not known good, and its journal must stay.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from pytraj.errors import FileWriteError

__all__ = ["NO_SPACE", "give_back", "reserve", "stored_eof", "verify", "way_out"]

#: Errors that mean the disk (or the file's size limit, or the user's quota) is full.
NO_SPACE = frozenset({errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)})

_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# Where HDF5 looks for a superblock: offset 0, then powers of two from 512.
_SUPERBLOCK_OFFSETS = (0, 512, 1024, 2048, 4096, 8192)


def way_out(path: Path) -> str:
    """What to do after a failed write (the journal keeps the runs)."""
    return (
        f"its journal {path.name}.journal keeps every run reported completed: free disk "
        "space (or raise the file size limit), then open the file or run the script again "
        "to continue; nothing is lost"
    )


def reserve(path: Path, nbytes: int) -> int:
    """Allocate ``nbytes`` at the end of ``path``; return the file's size before.

    Raises
    ------
    FileWriteError
        When the disk or a size limit has no room; the file is left as it was.
    """
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return 0
    try:
        size = os.fstat(fd).st_size
        if nbytes <= 0 or not hasattr(os, "posix_fallocate"):  # macOS, Windows: verify only
            return size
        try:
            os.posix_fallocate(fd, size, nbytes)
        except OSError as exc:
            # A failed allocation may have grown the file part of the way: give it back.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            if exc.errno not in NO_SPACE:
                return size  # no fallocate on this file system: the check after the write
            raise FileWriteError(
                f"cannot write {path}: {exc.strerror} (the write needs about "
                f"{_megabytes(nbytes)} more); nothing was written into the file, and "
                + way_out(path),
                path,
            ) from exc
        return size
    finally:
        os.close(fd)


def give_back(path: Path, size_before: int) -> None:
    """Return the room :func:`reserve` took when the write did not happen after all."""
    with contextlib.suppress(OSError):
        if os.stat(path).st_size > size_before:
            os.truncate(path, size_before)


def verify(path: Path, size_before: int) -> None:
    """Check that HDF5 wrote ``path`` completely (after it closed the file).

    Parameters
    ----------
    path
        The HDF5 file, closed.
    size_before
        Its size before this write (from :func:`reserve`): the part after it must have
        no holes.

    Raises
    ------
    FileWriteError
        When the file is shorter or longer than its superblock says, or has a hole where
        this write went: a write failed (a full disk, a size limit, an I/O error).
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        size = os.fstat(fd).st_size
        recorded = stored_eof(fd)
        if recorded is not None and recorded != size:
            raise FileWriteError(
                f"writing {path} failed: HDF5 records {recorded:,} bytes but the file has "
                f"{size:,} (a full disk or a file size limit cut it short); " + way_out(path),
                path,
            )
        hole = _first_hole(fd, size_before, size)
        if hole is not None:
            raise FileWriteError(
                f"writing {path} failed: bytes from {hole:,} on never reached the disk (a "
                "full disk); " + way_out(path),
                path,
            )
    finally:
        os.close(fd)


def stored_eof(fd: int) -> int | None:
    """The end of file recorded in an HDF5 superblock (None if it cannot be read).

    Per the HDF5 file format specification the superblock holds, from byte 24 (28 in
    version 1), the base address, the free-space address and the end-of-file address;
    versions 2 and 3 hold, from byte 12, the base address, the superblock extension
    address and the end-of-file address. pytraj's files have their superblock at byte 0
    and base address 0; other placements are not checked.
    """
    for offset in _SUPERBLOCK_OFFSETS:
        head = os.pread(fd, 64, offset)
        if len(head) < 48:
            return None
        if head[:8] != _SIGNATURE:
            continue
        version = head[8]
        if version in (0, 1):
            width = head[13]
            start = 24 + (4 if version == 1 else 0)
        elif version in (2, 3):
            width = head[9]
            start = 12
        else:
            return None
        if width not in (2, 4, 8):
            return None
        if offset or int.from_bytes(head[start : start + width], "little"):
            return None  # a user block: addresses are relative, and pytraj writes none
        end = start + 2 * width
        return int.from_bytes(head[end : end + width], "little")
    return None


def _first_hole(fd: int, start: int, size: int) -> int | None:
    """The first hole (unallocated block) in ``[start, size)``, if the OS can tell."""
    seek_hole = getattr(os, "SEEK_HOLE", None)
    if seek_hole is None or start >= size:
        return None
    try:
        hole = os.lseek(fd, start, seek_hole)
    except OSError:
        return None  # the file system cannot tell
    return hole if hole < size else None


def _megabytes(nbytes: int) -> str:
    return f"{nbytes / 1e6:.1f} MB"
