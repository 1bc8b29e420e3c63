"""The ``pytraj merge`` command and a merge killed at random moments (real processes)."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import pytraj as pt
from pytraj.errors import RecoveryWarning


def _study(path: Path, indices: list[int], *, fixed: str = "a", n: int = 12) -> Path:
    traj = pt.Trajectory("study", filename=path)
    traj.add_parameter("x", 1.0)
    traj.add_parameter("fixed", fixed)
    traj.explore({"x": [float(i) for i in range(n)]})
    for idx in indices:
        with traj.start_run(idx):
            traj.add_result("z", traj.x * 2)
    traj.close()
    return path


def _pytraj(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytraj", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_pytraj_merge_command(tmp_path: Path) -> None:
    a = _study(tmp_path / "a.h5", [0, 1])
    b = _study(tmp_path / "b.h5", [1, 2, 3])
    dry = _pytraj("merge", a, b, "-o", tmp_path / "all.h5", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"{b}:study: same study, 12 runs" in dry.stdout
    assert "2 updated" in dry.stdout
    assert "was not written" in dry.stdout
    assert not (tmp_path / "all.h5").exists()
    done = _pytraj("merge", a, b, "-o", tmp_path / "all.h5", "--name", "study")
    assert done.returncode == 0, done.stderr
    assert f"merged 2 files into {tmp_path / 'all.h5'}" in done.stdout
    merged = pt.load(tmp_path / "all.h5")
    assert merged.results.z.to_series().to_dict() == {0: 0.0, 1: 2.0, 2: 4.0, 3: 6.0}
    merged.close()


def test_pytraj_merge_conflict_is_one_line_and_exit_status_1(tmp_path: Path) -> None:
    a = _study(tmp_path / "a.h5", [0])
    b = _study(tmp_path / "b.h5", [1], fixed="b")
    before = a.read_bytes(), b.read_bytes()
    failed = _pytraj("merge", a, b, "-o", tmp_path / "all.h5", "--dry-run")
    assert failed.returncode == 1
    assert failed.stderr.startswith("pytraj merge: error: cannot merge")
    assert f"parameters.fixed: default 'a' in 'study' (merged into), 'b' in '{b}:study'" in (
        failed.stderr
    )
    assert "Traceback" not in failed.stderr
    assert (a.read_bytes(), b.read_bytes()) == before
    assert not (tmp_path / "all.h5").exists()


def test_pytraj_merge_dry_run_names_the_conflicts_of_every_input(tmp_path: Path) -> None:
    a = _study(tmp_path / "a.h5", [0])
    b = _study(tmp_path / "b.h5", [1], fixed="b")
    c = _study(tmp_path / "c.h5", [2])
    d = _study(tmp_path / "d.h5", [3], fixed="d")
    failed = _pytraj("merge", a, b, c, d, "-o", tmp_path / "all.h5", "--dry-run")
    assert failed.returncode == 1
    assert failed.stderr.startswith("pytraj merge: error: 2 of 3 inputs cannot be merged")
    assert f"'b' in '{b}:study'" in failed.stderr
    assert f"'d' in '{d}:study'" in failed.stderr
    assert not (tmp_path / "all.h5").exists()


_MERGE = """
import sys
import pytraj as pt
pt.merge_files(sys.argv[1:-1], sys.argv[-1])
print("done", flush=True)
"""


@pytest.mark.parametrize("existing", [False, True], ids=["new-output", "existing-output"])
def test_sigkill_while_merging_leaves_inputs_identical_and_output_old_or_complete(
    tmp_path: Path, existing: bool
) -> None:
    n = 4_000
    inputs = [_study(tmp_path / f"s{k}.h5", list(range(k, n, 3)), n=n) for k in range(3)]
    out = tmp_path / "all.h5"
    if existing:
        _study(out, [0], n=n)
    before = {p: p.read_bytes() for p in [*inputs, out] if p.exists()}
    # How long an undisturbed merge takes here, to spread the kills over it.
    start = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", _MERGE, *map(str, inputs), str(tmp_path / "t.h5")],
        check=True,
        capture_output=True,
    )
    duration = time.monotonic() - start
    (tmp_path / "t.h5").unlink()
    rng = random.Random(12)
    outcomes = []
    for _ in range(10):
        proc = subprocess.Popen(
            [sys.executable, "-c", _MERGE, *map(str, inputs), str(out)],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(rng.uniform(0.1 * duration, duration))
        proc.send_signal(signal.SIGKILL)
        stdout, _ = proc.communicate()
        outcomes.append("done" in stdout)
        for path, data in before.items():
            if path != out:
                assert path.read_bytes() == data, path
        if out.exists():
            merged = pt.load(out)
            completed = merged.run_table.counts()["completed"]
            merged.close()
            if out in before and out.read_bytes() == before[out]:
                assert completed == 1  # the old state, untouched
            else:
                assert completed == n  # a complete merge
        else:
            assert not existing
        # What a killed merge leaves is its temporary file, never under the output's name.
        for leftover in tmp_path.glob(".all.h5.merging-*"):
            leftover.unlink()
        if out.exists() and not existing:
            out.unlink()
        if existing:
            out.write_bytes(before[out])
    print(f"{sum(outcomes)} of 10 merges finished before the kill; merge took {duration:.2f} s")
    assert sum(outcomes) < 10  # most kills landed during the merge


def test_layout1_fixture_files_merge_and_keep_their_ids(tmp_path: Path) -> None:
    data = Path(__file__).resolve().parent / "data" / "layout1"
    for name in ("crashed.h5", "crashed.h5.journal", "finished.h5"):
        shutil.copy(data / name, tmp_path / name)
    # The crashed study (400 of 600 runs, the rest in its journal or never run) first.
    with pytest.warns(RecoveryWarning, match="replayed 360 runs"):
        reports = pt.merge_files(
            [tmp_path / "crashed.h5", tmp_path / "finished.h5"], tmp_path / "m.h5"
        )
    assert reports[1].kind == "same study"
    merged = pt.load(tmp_path / "m.h5")
    finished = pt.load(tmp_path / "finished.h5")
    assert merged.run_table.counts() == finished.run_table.counts()
    assert merged.run_table.counts()["failed"] == 1
    assert merged.run_table.point_ids() == finished.run_table.point_ids()
    assert sum(pid[-1] == 0 for pid in merged.run_table.point_ids()) > 0  # ids ending in 0x00
    z = merged.results.z.to_series()
    assert z.to_dict() == finished.results.z.to_series().to_dict()
    assert merged.runs[5].failure is not None
    assert "refused on purpose" in merged.runs[5].failure.message
    # Layout 1 recorded no writer sessions: provenance is unknown, and after the merge it
    # names at least the file each run was merged from.
    assert finished.runs[0].provenance is None
    assert Path(merged.runs[0].provenance["file"]).name == "crashed.h5"
    assert Path(merged.runs[599].provenance["file"]).name == "finished.h5"
    assert merged.runs[599].provenance["host"] is None
    merged.close()
    finished.close()


# VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork and exec. After
# the merge, the first input is merged again into the result: its runs are completed on
# both sides there, so all their values are compared (read from both files).
_PEAK = """
import sys
import pytraj as pt
pt.merge_files(sys.argv[1:-1], sys.argv[-1])
(again,) = pt.merge_files(sys.argv[1:2], sys.argv[-1])
assert again.kind == "same study", again.summary()
assert again.completed_in_both == again.other_runs, again.summary()
assert again.differing == [] and again.updated == 0, again.summary()
with open("/proc/self/status") as status:
    print(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
"""


def _array_study(path: Path, megabytes: int, start: int) -> Path:
    traj = pt.Trajectory("big", filename=path)
    traj.add_parameter("x", 0)
    traj.explore({"x": list(range(start, start + megabytes))})
    for idx in range(megabytes):
        with traj.start_run(idx):
            traj.add_result("a", np.full(131_072, float(traj.x)))  # 1 MB per run
    traj.close()
    return path


@pytest.mark.slow
def test_merging_more_array_data_needs_no_more_memory(tmp_path: Path) -> None:
    peaks = {}
    for total in (100, 400):
        half = total // 2
        a = _array_study(tmp_path / f"a{total}.h5", half, 0)
        b = _array_study(tmp_path / f"b{total}.h5", half, half)
        done = subprocess.run(
            [sys.executable, "-c", _PEAK, str(a), str(b), str(tmp_path / f"m{total}.h5")],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
        peaks[total] = int(done.stdout.split()[-1]) / 1024  # VmHWM is in kB
        merged = pt.load(tmp_path / f"m{total}.h5")
        assert len(merged.results.a) == total
        assert float(merged.results.a[total - 1][0]) == total - 1
        merged.close()
        for path in (a, b, tmp_path / f"m{total}.h5"):
            path.unlink()
    print(f"peak RSS: {peaks[100]:.0f} MB (100 MB of arrays), {peaks[400]:.0f} MB (400 MB)")
    assert peaks[400] - peaks[100] < 50
