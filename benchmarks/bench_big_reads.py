"""Reads on big files: bytes and wall time of ``pt.load`` and of one value, by file size.

A child process runs a study through an Environment whose runs each store a ragged
float64 array (~100 KB, length varying by ±50 %), a float and a fixed-shape array of 64
floats, until the file holds the target size. Meanwhile this process loads the file
fresh every few tenths of a second and reads one ragged value of a flushed run (the file
is being written: a journal is pending, the writer flushes on its budget); after the
writer closed, it does the same again. Bytes are ``rchar`` of ``/proc/self/io`` (every
byte read through a system call, whether the page cache held it or not), so they do
not depend on the machine's load; wall times do.

Run ``python -m benchmarks.bench_big_reads`` (200 MB and 2 GB; needs ~4.5 GB free in the
temporary folder, ~3 minutes) or ``--sizes-mb 200`` for one size; ``--dir`` picks the
folder. Linux only (``/proc/self/io``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["main", "measure_size"]

#: Mean bytes of a run's ragged array.
RAGGED_BYTES = 100_000
#: Pause between two probes while the study is written.
PROBE_EVERY = 0.3


def _values(i: int) -> tuple[Any, float, Any]:
    import numpy as np

    rng = np.random.default_rng(i)
    ragged = rng.random(int(RAGGED_BYTES / 8 * rng.uniform(0.5, 1.5)))
    return ragged, float(i), rng.random(64)


def _simulate(traj: Any) -> None:
    ragged, scalar, fixed = _values(traj.x)
    traj.add_result("z", ragged)
    traj.add_result("s", scalar)
    traj.add_result("f", fixed)


def write_study(path: Path, n_runs: int) -> None:
    """The writer: an Environment running ``n_runs`` runs into ``path``."""
    import pytraj as pt

    env = pt.Environment(trajectory="big", filename=path, progress=False)
    traj = env.trajectory
    traj.add_parameter("x", 0)
    traj.explore({"x": list(range(n_runs))})
    env.run(_simulate)
    env.close()


def bytes_read() -> int:
    """Bytes this process has read through system calls so far."""
    with open("/proc/self/io") as stream:
        for line in stream:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise RuntimeError("no rchar in /proc/self/io")


def _counted(action: Callable[[], Any]) -> tuple[Any, int, float]:
    before = bytes_read()
    start = time.perf_counter()
    value = action()
    return value, bytes_read() - before, time.perf_counter() - start


def probe(path: Path) -> dict[str, float] | None:
    """Load ``path`` fresh and read one ragged value of a flushed run."""
    import numpy as np

    from pytraj.io import load

    traj, load_bytes, load_seconds = _counted(lambda: load(path))
    try:
        runs = traj.results.z.runs
    except AttributeError:
        traj.close()
        return None  # nothing flushed yet: no result in the file
    if not len(runs):
        traj.close()
        return None
    idx = int(runs[len(runs) // 2])
    value, value_bytes, value_seconds = _counted(lambda: traj.results.z[idx])
    if not np.array_equal(value, _values(idx)[0]):
        raise AssertionError(f"run {idx}'s value read back wrong")
    traj.close()
    return {
        "load_bytes": load_bytes,
        "load_s": load_seconds,
        "value_bytes": value_bytes,
        "value_s": value_seconds,
        "runs": len(runs),
    }


def _warm(folder: Path) -> None:
    """Import and run every read path once, so that the counts are of file reads only."""
    path = folder / "warm.h5"
    write_study(path, 3)
    probe(path)
    path.unlink()


def _summary(label: str, probes: list[dict[str, float]]) -> str:
    def median(key: str) -> float:
        return statistics.median(p[key] for p in probes)

    def most(key: str) -> float:
        return max(p[key] for p in probes)

    return (
        f"| {label} | {len(probes)} | {median('load_s') * 1000:.1f} / {most('load_s') * 1000:.1f}"
        f" | {most('load_bytes') / 1e3:.0f} | {median('value_s') * 1000:.1f} / "
        f"{most('value_s') * 1000:.1f} | {most('value_bytes') / 1e3:.0f} |"
    )


def measure_size(folder: Path, megabytes: int) -> list[str]:
    """Write a study of about ``megabytes`` MB in a child while probing; then probe again."""
    from pytraj.errors import PytrajError

    path = folder / f"big-{megabytes}MB.h5"
    n_runs = megabytes * 1_000_000 // RAGGED_BYTES
    child = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_big_reads", "--write", str(path), str(n_runs)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    writing: list[dict[str, float]] = []
    started = time.perf_counter()
    try:
        while child.poll() is None:
            time.sleep(PROBE_EVERY)
            if path.exists() and child.poll() is None:
                try:
                    found = probe(path)
                except PytrajError:
                    continue  # the study is not in the file yet
                if found is not None:
                    writing.append(found)
        if child.returncode != 0:
            raise RuntimeError(f"the writer failed with exit code {child.returncode}")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    written = time.perf_counter() - started
    closed = [found for found in (probe(path) for _ in range(5)) if found is not None]
    size = path.stat().st_size
    path.unlink()
    lines = [
        f"{size / 1e6:,.0f} MB file, {n_runs:,} runs, written in {written:.1f} s:",
    ]
    if writing:
        lines.append(_summary(f"{size / 1e6:,.0f} MB, while written", writing))
    lines.append(_summary(f"{size / 1e6:,.0f} MB, after close", closed))
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--dir", type=Path, default=None, help="folder for the files")
    parser.add_argument("--write", nargs=2, metavar=("PATH", "RUNS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write:
        write_study(Path(args.write[0]), int(args.write[1]))
        return
    if not Path("/proc/self/io").exists():
        sys.exit("bench_big_reads counts bytes with /proc/self/io: Linux only")
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        _warm(Path(folder))
        header = [
            "| file | probes | pt.load ms (median / max) | pt.load KB read (max) "
            "| one ragged value ms (median / max) | one value KB read (max) |",
            "|---|---|---|---|---|---|",
        ]
        notes, rows = [], []
        for megabytes in args.sizes_mb:
            lines = measure_size(Path(folder), megabytes)
            notes.append(lines[0])
            rows.extend(lines[1:])
    print("\n".join([*notes, "", *header, *rows]))


if __name__ == "__main__":
    main()
