"""The checks around every HDF5 write: room reserved before, the file verified after.

HDF5 (through PyTables) does not report every failed write, so these checks are what
stands between a full disk and a clean close that would remove the journal.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pytraj as pt
from pytraj.errors import FileWriteError, StorageError
from pytraj.storage.hdf5.writeguard import reserve, stored_eof, verify

pytestmark = pytest.mark.storage

# A version 0 superblock (what PyTables writes) holds the end-of-file address at byte 40.
EOF_OFFSET = 40


def study(path: Path) -> int:
    traj = pt.Trajectory("study", filename=path)
    traj.add_parameter("x", 0)
    traj.explore({"x": [1, 2, 3]})
    traj.close()
    return path.stat().st_size


def read_eof(path: Path) -> int | None:
    fd = os.open(path, os.O_RDONLY)
    try:
        return stored_eof(fd)
    finally:
        os.close(fd)


def test_a_file_pytraj_wrote_records_its_own_size(tmp_path: Path) -> None:
    path = tmp_path / "study.h5"
    size = study(path)
    assert path.read_bytes()[8] == 0  # superblock version 0, as the offsets here assume
    assert read_eof(path) == size
    verify(path, 0)  # whole file: no hole, the recorded end is the size


def test_a_file_cut_short_fails_the_check(tmp_path: Path) -> None:
    path = tmp_path / "study.h5"
    size = study(path)
    os.truncate(path, size - 100)
    with pytest.raises(FileWriteError, match=f"records {size:,} bytes but the file has") as info:
        verify(path, 0)
    assert "free disk space" in str(info.value)
    assert info.value.path == path


def test_a_stale_superblock_fails_the_check(tmp_path: Path) -> None:
    # A full disk stopped HDF5 before it rewrote the superblock, but its close still
    # grew the file to the end it had in memory.
    path = tmp_path / "study.h5"
    size = study(path)
    os.truncate(path, size + 1_000_000)
    with pytest.raises(FileWriteError, match="a full disk or a file size limit"):
        verify(path, size)


def test_a_hole_where_the_write_went_fails_the_check(tmp_path: Path) -> None:
    # The superblock is right, but the blocks of a data write never reached the disk.
    path = tmp_path / "study.h5"
    size = study(path)
    grown = size + 1_000_000
    os.truncate(path, grown)  # sparse: a hole, as a failed write leaves behind
    with open(path, "r+b") as stream:
        stream.seek(EOF_OFFSET)
        stream.write(grown.to_bytes(8, "little"))
    assert read_eof(path) == grown
    with pytest.raises(FileWriteError, match="never reached the disk"):
        verify(path, size)
    verify(path, grown)  # the part before this write is not this write's to check


def test_reserving_room_that_a_size_limit_refuses_leaves_the_file_as_it_was(
    tmp_path: Path,
) -> None:
    path = tmp_path / "study.h5"
    size = study(path)
    code = textwrap.dedent(
        f"""
        import resource, signal
        from pathlib import Path
        from pytraj.errors import FileWriteError
        from pytraj.storage.hdf5.writeguard import reserve
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({size} + 50_000, resource.RLIM_INFINITY))
        path = Path({str(path)!r})
        print(reserve(path, 10_000))  # fits
        try:
            reserve(path, 1_000_000)
        except FileWriteError as exc:
            print(exc)
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    fits, refused = child.stdout.splitlines()
    assert int(fits) == size
    assert refused.startswith(f"cannot write {path}: File too large (the write needs about 1.0 MB")
    assert "nothing was written into the file" in refused
    # The refused reservation gave its room back; the one that fit is cut by HDF5's
    # next close (or is harmless zeros past the end HDF5 records).
    assert path.stat().st_size == size + 10_000
    assert read_eof(path) == size
    assert len(pt.load(path)) == 3
    traj = pt.load(path)
    traj.add_result("after", 1.0)
    traj.close()  # HDF5 writes into the room and cuts the file to its own end
    assert path.stat().st_size == read_eof(path)
    assert pt.load(path).results.after == 1.0


def test_reserve_on_a_missing_file_reserves_nothing(tmp_path: Path) -> None:
    assert reserve(tmp_path / "none.h5", 1000) == 0


def test_file_write_error_is_a_storage_error_and_an_os_error() -> None:
    error = FileWriteError("disk full", Path("x.h5"))
    assert isinstance(error, StorageError)
    assert isinstance(error, OSError)
    assert str(error) == "disk full"
