"""The crash harness: run an unchanged study script, kill it at a moment, run it again.

A *scenario* runs :data:`SCRIPT` (an ``Environment`` study of :data:`N_RUNS` points:
scalar, string and int results, a 100 KB array every :data:`BIG_EVERY` runs, a failing
run every 97) into a fresh file once per step of a *plan*, each step killing it
differently, and finally once more to let it finish. Steps (strings):

``early``
    SIGKILL within the first 100 ms after the script reached ``env.run``.
``mid``
    SIGKILL 0.1 to 0.5 s after it reached ``env.run`` (runs, commits, flushes).
``at:<point>``
    The script kills itself at a named moment (``PYTRAJ_CRASH_AT``, see
    :mod:`pytraj.crashpoints`): ``run.start``, ``definition``, ``flush@n``,
    ``column@n``, ``close``, ``replay``.
``rebuild``
    The file's content (what its superblock records) is cut in half first (as a torn
    write can leave it), then the script is killed while it rebuilds the file from the
    journal on open.

A step ending in ``:group`` kills the whole process group; otherwise only the main
process is killed, and no worker may outlive it by more than a few seconds. After each
kill a copy of the file must open (replaying or rebuilding from the journal) and hold
every run an earlier check saw completed, with its values; at the end the study must
equal an uninterrupted one by point id (values, types, statuses).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

from pytraj.errors import RecoveryWarning
from pytraj.io import load
from pytraj.storage.hdf5 import journal_path_for
from pytraj.storage.hdf5.writeguard import stored_eof

N_RUNS = 2500
BIG_EVERY = 20
BIG_SIZE = 12_500  # float64 values: 100 KB
TOKEN_VAR = "PYTRAJ_CRASH_TEST_TOKEN"

SCRIPT = textwrap.dedent(
    f"""
    import os, sys, time
    import numpy as np
    import pytraj as pt

    def simulate(traj):
        time.sleep(0.004)  # a simulation takes time: twelve kills land before it ends
        if traj.n % 97 == 13:
            raise ValueError(f"point {{traj.n}} fails")
        traj.add_result("z", traj.x * 2.0, comment="twice x")
        traj.add_result("label", f"n={{traj.n}}")
        traj.add_result("count", traj.n * 3)
        if traj.n % {BIG_EVERY} == 0:
            traj.add_result("big", np.full({BIG_SIZE}, traj.x))
        return traj.n

    def points():
        # Points whose id ends in a 0x00 byte cannot be continued until the fix of
        # issue 9 defect 1 (another branch) lands; leave them out until then.
        scratch = pt.Trajectory("scratch")
        scratch.add_parameter("x", 0.0)
        scratch.add_parameter("n", 0)
        scratch.explore({{"x": [i / 4 for i in range({N_RUNS})], "n": list(range({N_RUNS}))}})
        keep = [i for i in range({N_RUNS}) if scratch.point_id(i)[-1] != 0]
        return {{"x": [i / 4 for i in keep], "n": keep}}

    if __name__ == "__main__":
        path, ncores, method = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        env = pt.Environment(
            trajectory="crash", filename=path, ncores=ncores, on_error="continue",
            mp_context=None if method == "default" else method, progress=False,
        )
        traj = env.trajectory
        traj.add_parameter("x", 0.0)
        traj.add_parameter("n", 0)
        traj.explore(points())
        os.write(1, b"running\\n")
        env.run(simulate)
        env.close()
        os.write(1, b"done\\n")
    """
)


@dataclass
class Outcome:
    """What one scenario did."""

    kills: int = 0
    main_only_kills: int = 0
    finished_early: bool = False
    steps: list[str] = field(default_factory=list)


def _token_holders(token: str) -> list[int]:
    """Pids of live processes started by the scenario (they carry its token)."""
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            mine = process.environ().get(TOKEN_VAR) == token
            if mine and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process.pid)
        except psutil.Error:
            continue
    return found


def _assert_no_survivor(token: str, seconds: float = 8.0) -> None:
    deadline = time.monotonic() + seconds
    alive = _token_holders(token)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = _token_holders(token)
    for pid in alive:  # never leave them behind, even when failing
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not alive, f"processes {alive} outlived their killed main process"


class Scenario:
    """One study in ``folder``, driven by :meth:`step` and :meth:`finish`."""

    def __init__(self, folder: Path, ncores: int, method: str, rng: random.Random) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.script = folder / "study.py"
        self.script.write_text(SCRIPT)
        self.path = folder / "study.h5"
        self.ncores = ncores
        self.method = method
        self.rng = rng
        self.seen: dict[str, tuple[str, Any]] = {}  # point id -> (status, z) seen so far
        self.outcome = Outcome()

    def _start(self, crash_at: str | None, token: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env.pop("PYTRAJ_CRASH_AT", None)
        if crash_at is not None:
            env["PYTRAJ_CRASH_AT"] = crash_at
        env[TOKEN_VAR] = token
        return subprocess.Popen(
            [sys.executable, str(self.script), str(self.path), str(self.ncores), self.method],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # its own process group: a group kill hits only it
        )

    def step(self, step: str) -> None:
        """Run the script once, killed as ``step`` says; then check the file."""
        if self.outcome.finished_early:
            return
        self.outcome.steps.append(step)
        group = step.endswith(":group")
        kind = step.removesuffix(":group")
        token = uuid.uuid4().hex
        crash_at = None
        if kind.startswith("at:"):
            crash_at = kind[3:] + (":group" if group else "")
        elif kind == "rebuild":
            self._cut_file()
            crash_at = "rebuild" + (":group" if group else "")
        child = self._start(crash_at, token)
        assert child.stdout is not None
        assert child.stderr is not None
        if kind in ("early", "mid"):
            line = child.stdout.readline()
            if line == b"running\n":
                low, high = (0.0, 0.1) if kind == "early" else (0.1, 0.5)
                time.sleep(self.rng.uniform(low, high))
                if child.poll() is None:
                    if group:
                        os.killpg(child.pid, signal.SIGKILL)
                    else:
                        os.kill(child.pid, signal.SIGKILL)
        out = child.stdout.read()
        err = child.stderr.read().decode(errors="replace")
        child.wait(timeout=300)
        if child.returncode == -signal.SIGKILL:
            self.outcome.kills += 1
            if not group:
                self.outcome.main_only_kills += 1
            _assert_no_survivor(token)
        elif child.returncode == 0 and out.endswith(b"done\n"):
            # The moment never came (e.g. nothing to replay): the study finished.
            self.outcome.finished_early = True
        else:
            raise AssertionError(f"step {step!r}: the script failed ({child.returncode}):\n{err}")
        self._check_copy()

    def finish(self) -> None:
        """Run the unchanged script to the end."""
        token = uuid.uuid4().hex
        child = self._start(None, token)
        out, err = child.communicate(timeout=600)
        assert child.returncode == 0, err.decode(errors="replace")
        assert out.endswith(b"done\n")

    def _cut_file(self) -> None:
        """Cut the HDF5 file's content in half, as a torn write may leave it.

        Half of what its superblock records, not of the file's size: a writer reserves
        room at the end of the file before each write, so a writer killed during a flush
        leaves a file far longer than its content, and half of that size would cut only
        the reserved room (HDF5 then reads the file as it was before the flush, and
        there is nothing to rebuild).
        """
        if self.path.exists() and journal_path_for(self.path).exists():
            with open(self.path, "r+b") as stream:
                size = os.fstat(stream.fileno()).st_size
                recorded = stored_eof(stream.fileno())
                content = size if recorded is None else min(size, recorded)
                stream.truncate(content // 2)

    def _check_copy(self) -> None:
        """Open a copy (the next step must find the file as the kill left it)."""
        if not self.path.exists():
            return
        check = self.folder / "check"
        shutil.rmtree(check, ignore_errors=True)
        check.mkdir()
        copy = check / self.path.name
        shutil.copyfile(self.path, copy)
        journal = journal_path_for(self.path)
        if journal.exists():
            shutil.copyfile(journal, journal_path_for(copy))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RecoveryWarning)
            traj = load(copy, "crash")
        try:
            statuses = {traj.point_id(i).hex(): run.status for i, run in enumerate(traj.runs)}
            lost = [pid for pid, (status, _) in self.seen.items() if statuses.get(pid) != status]
            assert not lost, f"after {self.outcome.steps}: runs lost or changed: {lost[:5]}"
            frame = traj.to_dataframe(status=True) if len(traj) > 1 else None
            if frame is not None and "z" in frame:
                for i in np.flatnonzero(frame["status"].to_numpy() == "completed"):
                    pid = traj.point_id(int(i)).hex()
                    assert frame["z"].iloc[i] == frame["x"].iloc[i] * 2.0
                    self.seen[pid] = ("completed", frame["z"].iloc[i])
                for i in np.flatnonzero(frame["status"].to_numpy() == "failed"):
                    self.seen[traj.point_id(int(i)).hex()] = ("failed", None)
        finally:
            traj.close()
        shutil.rmtree(check, ignore_errors=True)


def study_table(path: Path) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The study by point id: statuses and scalar results (with their dtypes), and the
    big arrays; plus a check of the Python types of single values."""
    traj = load(path, "crash")
    try:
        frame = traj.to_dataframe(status=True)
        ids = [traj.point_id(i).hex() for i in range(len(traj))]
        frame.index = pd.Index(ids, name="point_id")
        frame = frame.sort_index()
        big = traj.results.big
        n = traj.parameters.node("n").range
        arrays = {
            ids[i]: np.asarray(big[i])
            for i in range(len(traj))
            if traj.runs[i].status == "completed" and n[i] % BIG_EVERY == 0
        }
        completed = next(i for i, run in enumerate(traj.runs) if run.status == "completed")
        assert type(traj.results.z[completed]) is float
        assert type(traj.results.label[completed]) is str
        assert type(traj.results.count[completed]) is int
        return frame, arrays
    finally:
        traj.close()


def reference(folder: Path) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The uninterrupted study, with its values checked against the script's formulas."""
    scenario = Scenario(folder, 1, "default", random.Random(0))
    scenario.finish()
    frame, arrays = study_table(scenario.path)
    assert len(frame) > N_RUNS * 0.95
    failed = frame["n"] % 97 == 13
    assert (frame["status"][failed] == "failed").all()
    done = frame[~failed]
    assert (done["status"] == "completed").all()
    assert (done["z"] == done["x"] * 2.0).all()
    assert (done["count"] == done["n"] * 3).all()
    assert (done["label"] == "n=" + done["n"].astype(str)).all()
    assert len(arrays) == ((done["n"] % BIG_EVERY) == 0).sum()
    return frame, arrays


def assert_same_study(path: Path, expected: tuple[pd.DataFrame, dict[str, np.ndarray]]) -> None:
    """The study in ``path`` equals the uninterrupted one by point id."""
    frame, arrays = study_table(path)
    pd.testing.assert_frame_equal(frame, expected[0])
    assert arrays.keys() == expected[1].keys()
    for pid, values in expected[1].items():
        assert arrays[pid].shape == values.shape
        assert np.array_equal(arrays[pid], values)


def run_scenario(
    folder: Path,
    plan: list[str],
    expected: tuple[pd.DataFrame, dict[str, np.ndarray]],
    *,
    ncores: int,
    method: str = "default",
    seed: int = 0,
) -> Outcome:
    """Kill the study as ``plan`` says, finish it, and compare it with ``expected``."""
    scenario = Scenario(folder, ncores, method, random.Random(seed))
    for step in plan:
        scenario.step(step)
    if not scenario.outcome.finished_early:
        scenario.finish()
    assert_same_study(scenario.path, expected)
    return scenario.outcome


def random_plan(rng: random.Random, length: int) -> list[str]:
    """A plan of ``length`` steps, mostly mid-study kills, ending with a kill at close.

    The first step finds a fresh file (no journal to replay yet, and the definition is
    written then); the others find the journal a kill left.
    """
    first = ["early", "mid", "at:run.start", "at:definition", "at:flush@1", "at:column@2"]
    later = ["early", "mid", "mid", "at:run.start", "at:replay", "rebuild"]
    plan = [rng.choice(first)]
    for _ in range(length - 2):
        flush, column = f"at:flush@{rng.randint(1, 2)}", f"at:column@{rng.randint(1, 8)}"
        plan.append(rng.choice([*later, flush, column]))
    plan.append("at:close")
    return [step + (":group" if rng.random() < 0.4 else "") for step in plan]
