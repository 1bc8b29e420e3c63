"""Continuing a study: the W1 script re-run on its finished file and on one killed half-way.

The same script writes the input and continues it, as a user re-runs a script:
``python -m benchmarks.systems.continuation SYSTEM PATH N MARKS [--kill-at K]``.
pytraj builds its Environment, explores the N points and calls ``env.run``, which skips the
completed runs; the floor opens its table, reads the ``idx`` column and appends the
missing rows. The run function appends ``first <time.monotonic()>`` to ``MARKS`` on its
first call (the clock the runner reads too, system-wide on Linux) and the script appends
``new <count>`` and ``peak <MB>`` (its own maxrss) at its end.

The killed input: pytraj's writer SIGKILLs itself when run ``K`` starts (runs before it
are in the journal, at most a batch is lost). The floor has no journal and a raw PyTables
writer killed mid-write may leave an unreadable file, so its half-finished input is the
first ``K`` rows, closed cleanly: what a floor that checkpoints would leave.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.child import Cell, Outcome
from benchmarks.systems.common import BatchWriter, check_z
from benchmarks.workloads import expected_z, x_values

__all__ = ["RUNNERS_FOR", "main", "read_marks"]

_FLOOR_ROW = np.dtype([("idx", "<i8"), ("x", "<f8"), ("z", "<f8")])
_BATCH_ROWS = 1_000


class _Marks:
    """The script's side of the clock: the first new run's time and the count of new runs."""

    def __init__(self, path: str, kill_at: int | None) -> None:
        self.path = path
        self.kill_at = kill_at
        self.count = 0

    def started(self, idx: int) -> None:
        """Called as run ``idx`` starts: mark the first, count, die at ``kill_at``."""
        if self.count == 0:
            with open(self.path, "a", encoding="utf-8") as marks:
                marks.write(f"first {time.monotonic()!r}\n")
        self.count += 1
        if idx == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def finished(self) -> None:
        """Record how many runs this script ran and its peak memory."""
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
        with open(self.path, "a", encoding="utf-8") as marks:
            marks.write(f"new {self.count}\npeak {peak_mb!r}\n")


_MARKS: list[_Marks] = []  # the script's, for the module-level run function


def simulate(traj: Any) -> None:
    """W1's run function, marking the first new run (module level: picklable)."""
    _MARKS[0].started(traj.idx)
    traj.add_result("z", expected_z(traj.x))


def _pytraj_script(path: str, n: int) -> None:
    import pytraj as pt

    env = pt.Environment(trajectory="resume", filename=path)
    traj = env.trajectory
    traj.add_parameter("x", 0.0)
    traj.explore(pt.cartesian_product({"x": x_values(n)}))
    env.run(simulate)
    env.close()


def _floor_script(path: str, n: int, kill_at: int | None) -> None:
    import tables

    marks = _MARKS[0]
    with tables.open_file(path, mode="a") as h5:
        if "/runs" in h5:
            table = h5.root.runs
        else:
            table = h5.create_table("/", "runs", _FLOOR_ROW, expectedrows=n)
        done = np.zeros(n, dtype=bool)
        done[table.col("idx")] = True
        todo = np.flatnonzero(~done)
        if kill_at is not None:
            todo = todo[todo < kill_at]
        xs = x_values(n)
        rows = BatchWriter(table.append, _BATCH_ROWS)
        for idx in todo.tolist():
            marks.started(idx)
            rows.add((idx, xs[idx], expected_z(xs[idx])))
        rows.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """The script: run (or continue) the W1 study of N runs in PATH."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.systems.continuation")
    parser.add_argument("system", choices=["floor", "pytraj"])
    parser.add_argument("path")
    parser.add_argument("n", type=int)
    parser.add_argument("marks")
    parser.add_argument("--kill-at", type=int, default=None)
    args = parser.parse_args(argv)
    _MARKS.append(_Marks(args.marks, args.kill_at))
    if args.system == "pytraj":
        _pytraj_script(args.path, args.n)
    else:
        _floor_script(args.path, args.n, args.kill_at)
    _MARKS[0].finished()
    return 0


# -- the runners (in the harness's child) ------------------------------------------------
def read_marks(path: Path) -> dict[str, float]:
    """What the script marked: ``first`` (monotonic time), ``new`` (runs), ``peak`` (MB)."""
    found: dict[str, float] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(" ")
            found.setdefault(key, float(value))
    return found


def _script(system: str, path: Path, n: int, kill_at: int | None = None) -> dict[str, Any]:
    """Run the script in a fresh interpreter; time it as a user pays it."""
    marks = path.with_name(path.name + ".marks")
    marks.unlink(missing_ok=True)
    command = [sys.executable, "-m", "benchmarks.systems.continuation", system, str(path)]
    command += [str(n), str(marks)]
    if kill_at is not None:
        command += ["--kill-at", str(kill_at)]
    start = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    end = time.monotonic()
    found = read_marks(marks)
    marks.unlink(missing_ok=True)
    return {
        "returncode": done.returncode,
        "stderr": done.stderr[-3000:],
        "first_run_s": found["first"] - start if "first" in found else None,
        "end_s": end - start,
        "new_runs": found.get("new", 0.0),
        "peak_mb": found.get("peak"),
    }


def _prepare(system: str, killed: bool) -> Any:
    def prepare(cell: Cell) -> Outcome:
        path = cell.path(f"{system}-resume.h5")
        kill_at = cell.n // 2 if killed else None
        ran = _script(system, path, cell.n, kill_at)
        expected = -signal.SIGKILL if killed and system == "pytraj" else 0
        if ran["returncode"] != expected:
            raise RuntimeError(
                f"writing the input ended with {ran['returncode']} (expected {expected}): "
                f"{ran['stderr']}"
            )
        return Outcome(ran["end_s"], [str(path)])

    return prepare


def _stored_z(system: str, path: Path) -> np.ndarray:
    if system == "pytraj":
        import pytraj as pt

        return np.asarray(pt.load(str(path), name="resume").results.z.to_numpy())
    import tables

    with tables.open_file(str(path)) as h5:
        data = h5.root.runs.read()
    return np.asarray(data["z"][np.argsort(data["idx"])])


def _resume(system: str) -> Any:
    def resume(cell: Cell) -> Outcome:
        source = Path(cell.sources[0])
        path = cell.path(source.name)
        for sibling in source.parent.glob(source.name + "*"):  # the journal and lock too
            shutil.copy2(sibling, cell.path(sibling.name))
        ran = _script(system, path, cell.n)
        if ran["returncode"] != 0:
            raise RuntimeError(f"the re-run ended with {ran['returncode']}: {ran['stderr']}")
        check = check_z(_stored_z(system, path), cell.n)
        first = ran["first_run_s"]
        extra = {"end_s": ran["end_s"], "new_runs": ran["new_runs"]}
        if first is not None:
            extra["first_run_s"] = first
        version = ""
        if system == "pytraj":
            import pytraj

            version = str(pytraj.__version__)
        seconds = first if first is not None else ran["end_s"]
        return Outcome(seconds, [str(path)], check, extra, version=version, peak_mb=ran["peak_mb"])

    return resume


#: System -> its continuation runners, merged into the system's ``RUNNERS``.
RUNNERS_FOR = {
    system: {
        "prepare RESUME": _prepare(system, killed=False),
        "prepare RESUMEK": _prepare(system, killed=True),
        "RESUME": _resume(system),
        "RESUMEK": _resume(system),
    }
    for system in ("floor", "pytraj")
}


if __name__ == "__main__":
    sys.exit(main())
