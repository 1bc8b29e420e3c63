"""``with traj.reading():`` keeps the file open for reading; outside, nothing holds it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tables

import pytraj as pt
from pytraj.errors import RunValueMissingError
from pytraj.storage.hdf5.files import file_state

pytestmark = pytest.mark.storage


def _study(path: Path, done: int = 6, n: int = 8) -> None:
    traj = pt.Trajectory("scope", filename=path)
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [float(i) for i in range(n)]})
    for i in range(done):
        with traj.start_run(i):
            traj.add_result("z", traj.x * 10.0)
            traj.add_result("v", np.arange(3) + i)
    traj.close()


@pytest.fixture
def study(tmp_path: Path) -> Path:
    path = tmp_path / "scope.h5"
    _study(path)
    return path


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The modes of every ``tables.open_file`` call from now on."""
    seen: list[str] = []
    real = tables.open_file

    def counting(filename: str, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        seen.append(mode)
        return real(filename, mode, *args, **kwargs)

    monkeypatch.setattr(tables, "open_file", counting)
    return seen


def test_reads_in_the_scope_share_one_open(study: Path, opens: list[str]) -> None:
    traj = pt.load(study)
    z, v = traj.results.z, traj.results.v
    opens.clear()
    with traj.reading():
        assert file_state(study).is_held
        got = [z[i] for i in (5, 0, 3)]
        arrays = [v[i] for i in (1, 4)]
        assert z[-3] == 50.0  # run 5 of 8: negative indices count from the last run
    assert opens == ["r"]
    assert got == [50.0, 0.0, 30.0]
    assert [type(value) for value in got] == [float, float, float]
    np.testing.assert_array_equal(arrays[0], [1, 2, 3])
    np.testing.assert_array_equal(arrays[1], [4, 5, 6])
    assert not file_state(study).is_held
    # Outside the scope each read opens the file again.
    opens.clear()
    assert z[2] == 20.0
    assert opens == ["r"]


def test_a_run_without_a_value_names_its_status_in_the_scope(study: Path) -> None:
    traj = pt.load(study)
    with traj.reading():
        with pytest.raises(RunValueMissingError, match="run 7 has no value .*pending"):
            traj.results.z[7]
        assert traj.results.z.get(6, -1.0) == -1.0
        assert traj.results.z[1] == 10.0


def test_scopes_nest(study: Path, opens: list[str]) -> None:
    traj = pt.load(study)
    opens.clear()
    with traj.reading():
        with traj.reading():
            assert traj.results.z[4] == 40.0
        assert file_state(study).is_held
        assert traj.results.z[2] == 20.0
    assert not file_state(study).is_held
    assert opens == ["r"]


def test_a_write_of_this_process_in_the_scope_goes_through(study: Path, opens: list[str]) -> None:
    reader = pt.load(study)
    writer = pt.load(study)
    opens.clear()
    with reader.reading():
        assert reader.results.z[5] == 50.0
        with writer.start_run(6):
            writer.add_result("z", -6.0)
            writer.add_result("v", np.zeros(3, dtype=np.int64))
        writer.store()  # flushes into HDF5 while the reading scope holds the file
        assert file_state(study).is_held
        # The scope's handle was closed for the write and opened again: reads see it.
        assert reader.results.z[6] == -6.0
        assert reader.results.z[5] == 50.0
    writer.close()
    # The scope's open, the write's, the scope's again; the close had nothing to write.
    assert opens == ["r", "a", "r"]
    assert pt.load(study).results.z.to_numpy(fill=np.nan)[:7].tolist() == [
        0.0,
        10.0,
        20.0,
        30.0,
        40.0,
        50.0,
        -6.0,
    ]


_OTHER_WRITER = """
import sys, tables
try:
    tables.open_file(sys.argv[1], "a").close()
except Exception as exc:
    print("refused:", exc)
else:
    print("written")
"""


def _other_process_writes(path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _OTHER_WRITER, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="HDF5 file locks are POSIX here")
def test_another_process_cannot_write_while_the_scope_is_open(study: Path) -> None:
    traj = pt.load(study)
    with traj.reading():
        outcome = _other_process_writes(study)
    assert outcome.startswith("refused:")
    assert "unable to lock" in outcome
    assert _other_process_writes(study).strip() == "written"


def test_the_scope_on_a_trajectory_in_memory_is_a_no_op() -> None:
    traj = pt.Trajectory("mem")
    traj.add_parameter("x", 1.0)
    traj.explore({"x": [1.0, 2.0]})
    for i in range(2):
        with traj.start_run(i):
            traj.add_result("z", traj.x + 0.5)
    with traj.reading():
        assert traj.results.z[1] == 2.5
