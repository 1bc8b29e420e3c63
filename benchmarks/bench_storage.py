"""Quick benchmark of the HDF5 storage path: W1 through manual runs and W5, beside the floor.

W1 stores one float per run through manual runs (``with traj.start_run(i):
traj.add_result("z", float(i))``), timed from the first run to the return of
``traj.close()``. W5 opens the finished file and reads all z (``load`` +
``to_numpy``), and separately opens it and reads one run's z. The raw-PyTables floor
(one table row per run, appended in batches of 1,000; read back with ``col``) is measured
in the same process, so ratios survive a noisy machine. Medians of 3 repetitions.

Run ``python -m benchmarks.bench_storage --quick`` (N = 1,000) or without ``--quick``
(N = 1,000 / 10,000 / 100,000). The full harness is ``python -m benchmarks``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["main", "measure"]

BATCH = 1000


def _median_time(action: Callable[[], Any], repetitions: int) -> float:
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _node_count(path: Path) -> int:
    import tables

    with tables.open_file(str(path)) as f:
        return sum(1 for _ in f.walk_nodes("/"))


# -- pytraj -----------------------------------------------------------------------------------


def pytraj_w1(path: Path, n: int) -> float:
    """Store n runs of one float through manual runs; return the seconds it took."""
    import pytraj as pt

    if path.exists():
        path.unlink()
    traj = pt.Trajectory("w1", filename=path)
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [float(i) for i in range(n)]})
    start = time.perf_counter()
    for i in range(n):
        with traj.start_run(i):
            traj.add_result("z", float(i))
    traj.close()
    return time.perf_counter() - start


def pytraj_read_all(path: Path, n: int) -> None:
    from pytraj.io import load

    z = load(path).results.z.to_numpy()
    if len(z) != n or z[-1] != n - 1:
        raise AssertionError("pytraj read back wrong values")


def pytraj_read_one(path: Path, n: int) -> None:
    from pytraj.io import load

    if load(path).results.z[n // 2] != n // 2:
        raise AssertionError("pytraj read back a wrong value")


# -- the floor --------------------------------------------------------------------------------


def floor_w1(path: Path, n: int) -> float:
    """The least a careful engineer writes: rows buffered, appended in batches."""
    import numpy as np
    import tables

    if path.exists():
        path.unlink()
    start = time.perf_counter()
    dtype = np.dtype([("idx", "<i8"), ("z", "<f8")])
    with tables.open_file(str(path), "w") as f:
        table = f.create_table(
            "/", "runs", dtype, filters=tables.Filters(1, "zlib", shuffle=True), expectedrows=n
        )
        rows: list[tuple[int, float]] = []
        for i in range(n):
            rows.append((i, float(i)))
            if len(rows) == BATCH:
                table.append(rows)
                rows = []
        if rows:
            table.append(rows)
    return time.perf_counter() - start


def floor_read_all(path: Path, n: int) -> None:
    import tables

    with tables.open_file(str(path)) as f:
        z = f.root.runs.col("z")
    if len(z) != n:
        raise AssertionError("the floor read back wrong values")


def floor_read_one(path: Path, n: int) -> None:
    import tables

    with tables.open_file(str(path)) as f:
        f.root.runs.read(start=n // 2, stop=n // 2 + 1, field="z")


# -- driver -----------------------------------------------------------------------------------


def measure(n: int, repetitions: int, folder: Path) -> dict[str, dict[str, float]]:
    """W1 and W5 at ``n`` runs for pytraj and the floor."""
    results: dict[str, dict[str, float]] = {}
    systems: list[tuple[str, Callable[..., float], Callable[..., None], Callable[..., None]]] = [
        ("floor", floor_w1, floor_read_all, floor_read_one),
        ("pytraj", pytraj_w1, pytraj_read_all, pytraj_read_one),
    ]
    for name, write, read_all, read_one in systems:
        path = folder / f"{name}-{n}.h5"
        write_time = statistics.median(write(path, n) for _ in range(repetitions))
        results[name] = {
            "w1_us_per_run": 1e6 * write_time / n,
            "bytes_per_run": path.stat().st_size / n,
            "nodes": _node_count(path),
            "w5_all_ms": 1e3 * _median_time(lambda f=read_all, p=path: f(p, n), repetitions),
            "w5_one_ms": 1e3 * _median_time(lambda f=read_one, p=path: f(p, n), repetitions),
        }
    return results


def _table(rows: list[tuple[int, dict[str, dict[str, float]]]]) -> str:
    head = (
        "| N | system | W1 µs/run | x floor | bytes/run | nodes | W5 all z ms | x floor "
        "| W5 one z ms |\n|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for n, result in rows:
        floor = result["floor"]
        for name, r in result.items():
            lines.append(
                f"| {n:,} | {name} | {r['w1_us_per_run']:.1f} | "
                f"{r['w1_us_per_run'] / floor['w1_us_per_run']:.1f} | "
                f"{r['bytes_per_run']:.1f} | {int(r['nodes'])} | {r['w5_all_ms']:.1f} | "
                f"{r['w5_all_ms'] / floor['w5_all_ms']:.1f} | {r['w5_one_ms']:.1f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1,000 only")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="*", default=None)
    args = parser.parse_args(argv)
    sizes = args.sizes or ([1000] if args.quick else [1000, 10_000, 100_000])
    folder = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    try:
        import pytraj  # noqa: F401  # imported before timing, as DESIGN §7 says

        rows = [(n, measure(n, args.repetitions, folder)) for n in sizes]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(_table(rows))


if __name__ == "__main__":
    main()
