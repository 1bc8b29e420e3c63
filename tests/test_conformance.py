"""Both storage backends pass the shared conformance tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytraj.storage.hdf5 import HDF5Storage, open_new_trajectory, open_trajectory
from pytraj.storage.interface import Storage
from pytraj.storage.memory import MemoryStorage
from pytraj.testing.conformance import StorageConformance

pytestmark = pytest.mark.storage


class TestMemoryStorage(StorageConformance):
    def make_storage(self, tmp_path: Path) -> Storage:
        return MemoryStorage("study")


class TestHDF5Storage(StorageConformance):
    def make_storage(self, tmp_path: Path) -> Storage:
        return open_new_trajectory(tmp_path / "study.h5", "study")

    def reopen(self, storage: Storage, tmp_path: Path) -> Storage:
        storage.close()
        return open_trajectory(tmp_path / "study.h5", "study")


class TestHDF5StorageWithoutReopening(StorageConformance):
    """The same, reading back through the writer itself (buffers flushed on read)."""

    def make_storage(self, tmp_path: Path) -> Storage:
        return open_new_trajectory(tmp_path / "study.h5", "study")


class TestDisposableHDF5Storage(StorageConformance):
    """A merge's temporary output: definitions and bulk appends skip the journal."""

    def make_storage(self, tmp_path: Path) -> Storage:
        storage = open_new_trajectory(tmp_path / "study.h5", "study")
        storage.disposable = True
        return storage

    def reopen(self, storage: Storage, tmp_path: Path) -> Storage:
        storage.close()
        return open_trajectory(tmp_path / "study.h5", "study")


def test_reopened_storage_is_a_reader(tmp_path: Path) -> None:
    open_new_trajectory(tmp_path / "a.h5", "study").close()
    storage = open_trajectory(tmp_path / "a.h5")
    assert isinstance(storage, HDF5Storage)
    assert not storage.is_writer
    assert not (tmp_path / "a.h5.lock").exists()
