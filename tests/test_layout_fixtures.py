"""Files of layout 1 (``tests/data/layout1/``) load, replay their journal and continue.

The fixtures were written by ``make_fixtures.py`` beside them, with the pytraj of layout 1
(point ids in ``S16`` columns). Each test works on a copy in ``tmp_path``; continuing runs
the generating script itself, unchanged, in a subprocess, as a user would re-run it.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

import pytraj as pt
from pytraj.errors import RecoveryWarning

FIXTURES = Path(__file__).parent / "data" / "layout1"
SCRIPT = FIXTURES / "make_fixtures.py"
POINTS = list(range(700, 1300))
FAILING_RUN = 5  # x == 705 raises in the fixture's simulation
NAME = "layout1"
ITEMS = ("z", "mean", "trace", "ragged")
STATS = ("low", "high", "label")


def reference_id(x: int, scale: float) -> bytes:
    """DESIGN §2, written out independently of pytraj: sorted names, tags, little-endian."""
    out = b""
    for name, encoded in (
        ("parameters.scale", b"f" + struct.pack("<d", scale)),
        ("parameters.x", b"i" + struct.pack("<q", x)),
    ):
        raw = name.encode("utf-8")
        out += struct.pack("<I", len(raw)) + raw + encoded
    return hashlib.blake2b(out, digest_size=16).digest()


def copy_fixture(tmp_path: Path, name: str) -> Path:
    for source in FIXTURES.glob(f"{name}*"):
        shutil.copy(source, tmp_path / source.name)
    return tmp_path / name


def load(path: Path) -> pt.Trajectory:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecoveryWarning)
        return pt.load(path)


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return done


def results_by_point(traj: pt.Trajectory) -> dict[str, dict[str, Any]]:
    """Every run's status and values, keyed by point id (what a study must agree on)."""
    out: dict[str, dict[str, Any]] = {}
    for idx in range(len(traj)):
        run = traj.runs[idx]
        entry: dict[str, Any] = {"x": run.x, "status": run.status}
        if run.status == "completed":
            for item in ITEMS:
                value = traj.results[item][idx]
                entry[item] = value.tolist() if isinstance(value, np.ndarray) else value
            for item in STATS:
                entry[f"stats.{item}"] = getattr(traj.results.stats, item)[idx]
        out[run.point_id] = entry
    return out


def run_times(traj: pt.Trajectory) -> dict[int, tuple[float, int]]:
    rows = traj.run_table.rows
    return {
        int(row["idx"]): (float(row["start"]), int(row["attempt"]))
        for row in rows
        if int(row["status"]) != 0
    }


def test_finished_fixture_loads_with_values_types_statuses_and_ids(tmp_path: Path) -> None:
    traj = load(copy_fixture(tmp_path, "finished.h5"))
    assert len(traj) == 600
    assert traj.run_table.counts()["completed"] == 599
    assert traj.runs[FAILING_RUN].status == "failed"
    assert "refused on purpose" in traj.runs[FAILING_RUN].failure.message
    assert list(traj.node("parameters.x").range) == POINTS
    assert all(type(x) is int for x in traj.node("parameters.x").range)
    assert type(traj.parameters.scale) is float
    assert traj.parameters.scale == 0.5
    assert traj.comment == "layout-1 fixture"
    for idx in (0, 3, 499, 500, 599):
        x = POINTS[idx]
        z = traj.results.z[idx]
        assert type(z) is int
        assert z == 2 * x
        assert type(traj.results.mean[idx]) is float
        assert traj.results.mean[idx] == x / 3.0
        trace = traj.results.trace[idx]
        assert trace.dtype == np.float64
        assert trace.tolist() == [0.0, x, 2.0 * x, 3.0 * x]
        ragged = traj.results.ragged[idx]
        assert ragged.dtype == np.int32
        assert ragged.tolist() == list(range(x % 7))
        assert traj.results.stats.low[idx] == x - 1
        assert traj.results.stats.label[idx] == f"point {x}"
    ids = [bytes.fromhex(traj.runs[i].point_id) for i in range(600)]
    assert ids == [reference_id(x, 0.5) for x in POINTS]
    # The case layout 1 got wrong on continuation: run 500's id ends in a NUL byte.
    assert ids[500][-1] == 0
    assert len(ids[500]) == 16


def test_crashed_fixture_replays_its_journal(tmp_path: Path) -> None:
    path = copy_fixture(tmp_path, "crashed.h5")
    with h5py.File(path, "r") as f:
        in_file = int((f[f"{NAME}/runs/table"]["status"] != 0).sum())
    with pytest.warns(RecoveryWarning, match="replayed 360 runs"):
        traj = pt.load(path)
    assert in_file < 360  # the journal holds runs the file lacks
    counts = traj.run_table.counts()
    assert (counts["completed"], counts["failed"], counts["pending"]) == (359, 1, 240)
    assert traj.runs[FAILING_RUN].status == "failed"
    assert all(traj.runs[i].status == "completed" for i in range(360) if i != FAILING_RUN)
    assert [bytes.fromhex(traj.runs[i].point_id) for i in range(600)] == [
        reference_id(x, 0.5) for x in POINTS
    ]
    assert traj.results.z[359] == 2 * POINTS[359]


@pytest.mark.parametrize("fixture", ["finished.h5", "crashed.h5"])
def test_rerunning_the_generating_script_continues_a_layout1_file(
    tmp_path: Path, fixture: str
) -> None:
    path = copy_fixture(tmp_path, fixture)
    before = run_times(load(path))
    run_script(str(SCRIPT), str(path), cwd=tmp_path)
    traj = load(path)
    after = run_times(traj)
    # Runs stored before are never redone; the failed one is not retried unasked.
    assert {idx: after[idx] for idx in before} == before
    assert after[FAILING_RUN][1] == 1
    assert sorted(after) == list(range(600))
    reference = tmp_path / "reference"
    reference.mkdir()
    uninterrupted = load(copy_fixture(reference, "finished.h5"))
    assert results_by_point(traj) == results_by_point(uninterrupted)
    # Continued in its own layout: the ids stay in S16 columns, written byte for byte.
    with h5py.File(path, "r") as f:
        group = f[NAME]
        assert int(group.attrs["pytraj_schema"]) == 1
        assert group["runs/table"].dtype["point_id"] == np.dtype("S16")
        assert group["runs/explored"].dtype["point_id"] == np.dtype("S16")
    assert bytes.fromhex(traj.runs[500].point_id) == reference_id(1200, 0.5)


def test_layout1_file_resumes_failed_runs_on_request(tmp_path: Path) -> None:
    path = copy_fixture(tmp_path, "crashed.h5")
    before = run_times(load(path))
    script = tmp_path / "resume_it.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(FIXTURES)!r})
            import pytraj as pt
            from make_fixtures import simulate

            env = pt.Environment(trajectory={NAME!r}, filename={str(path)!r}, progress=False,
                                 on_error="continue")
            env.resume(simulate, retry_failed=True)
            env.close()
            """
        )
    )
    run_script(str(script), cwd=tmp_path)
    traj = load(path)
    after = run_times(traj)
    assert {idx: after[idx] for idx in before if idx != FAILING_RUN} == {
        idx: before[idx] for idx in before if idx != FAILING_RUN
    }
    assert after[FAILING_RUN][1] == 2  # retried (and failed again, as the script says)
    assert len(traj.run_table.failures_of(FAILING_RUN)) == 2
    assert traj.run_table.counts()["completed"] == 599
    assert [bytes.fromhex(traj.runs[i].point_id) for i in range(600)] == [
        reference_id(x, 0.5) for x in POINTS
    ]


def test_a_new_trajectory_in_a_layout1_file_is_layout2_and_the_root_says_so(
    tmp_path: Path,
) -> None:
    path = copy_fixture(tmp_path, "finished.h5")
    with pt.Environment(trajectory="second", filename=path, progress=False) as env:
        env.trajectory.add_parameter("x", 0)
        env.trajectory.explore({"x": [735, 1]})
        env.run(lambda traj: traj.add_result("z", traj.x))
    with h5py.File(path, "r") as f:
        assert int(f.attrs["pytraj_schema"]) == 2  # an older pytraj refuses the file
        assert int(f[NAME].attrs["pytraj_schema"]) == 1
        assert f[f"{NAME}/runs/table"].dtype["point_id"] == np.dtype("S16")
        assert int(f["second"].attrs["pytraj_schema"]) == 2
        assert f["second/runs/table"]["point_id"].shape == (2, 16)
    old = pt.load(path, NAME)
    assert bytes.fromhex(old.runs[500].point_id) == reference_id(1200, 0.5)
    new = pt.load(path, "second")
    assert new.results.z[0] == 735
    assert new.runs[0].point_id.endswith("00")
