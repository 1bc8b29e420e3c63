"""Quick benchmark of the Environment: W1 (serial cost per run) and W4 (parallel efficiency).

Run ``python -m benchmarks.bench_environment`` (full: W1 at 1k/10k/100k, W4 with fork
and spawn, 3 repetitions each) or ``--quick`` (W1 at 1k and 10k, one repetition).
Every measurement runs in a fresh process, beside the raw-PyTables floor measured in
the same invocation; medians are reported because the machines are shared and noisy.

Definitions
-----------
W1
    One float result per run (``z = 2 x``) through ``env.run``, serial, default
    options, into a fresh HDF5 file. Timed from the ``env.run`` call to its return,
    in a process where pytraj is imported and the Environment built. Cost per run =
    that time / N. Floor: one PyTables table row per run, appended in batches of
    1,000, flushed at the end.
W4
    W1 plus a fixed amount of CPU busy-work per run (a loop calibrated to take about
    5 ms of CPU time in this process), on 2 worker processes, 1,000 runs.
    ``work`` = N x the median CPU time of the bare busy-work measured serially in the
    same process just before; ``efficiency = work / (2 x wall)``, with ``wall`` the
    ``env.run`` time, worker start-up included. Floor: ``multiprocessing.Pool(2)``
    mapping the same busy-work with results appended to a PyTables table in the
    main process.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BUSY_SECONDS = 0.005
W4_RUNS = 1000


# -- the work ----------------------------------------------------------------------------
def busy(loops: int) -> float:
    """CPU busy-work: ``loops`` iterations of floating-point arithmetic."""
    total = 0.0
    for i in range(loops):
        total += math.sqrt(i + 1.0)
    return total


def calibrate() -> tuple[int, float]:
    """Loop count for about BUSY_SECONDS of work here, and its median time.

    Measured in CPU time (``time.process_time``), so that other processes on a shared
    machine do not change how much work a run is.
    """
    # Warm up for 0.2 s: here the first ~50 ms of such a loop in a fresh process run at
    # half speed, which would halve the work of every run.
    warm = time.process_time()
    while time.process_time() - warm < 0.2:
        busy(10_000)
    loops = 10_000
    while True:
        start = time.process_time()
        busy(loops)
        elapsed = time.process_time() - start
        if elapsed > 0.02:
            break
        loops *= 2
    loops = int(loops * BUSY_SECONDS / elapsed)
    samples = []
    for _ in range(30):
        start = time.process_time()
        busy(loops)
        samples.append(time.process_time() - start)
    return loops, statistics.median(samples)


def w1_run(traj: Any) -> None:
    """W1's run function."""
    traj.add_result("z", traj.x * 2.0)


def w4_run(traj: Any) -> None:
    """W4's run function: busy-work, then W1."""
    busy(traj.loops)
    traj.add_result("z", traj.x * 2.0)


def _floor_work(args: tuple[int, int]) -> tuple[int, float]:
    idx, loops = args
    busy(loops)
    return idx, idx * 2.0


# -- one measurement (runs in a fresh child process) -------------------------------------------
def measure_pytraj(workload: str, n: int, method: str, folder: Path) -> dict[str, Any]:
    """Time one pytraj workload."""
    from pytraj.io import load
    from pytraj.run import Environment

    path = folder / f"{workload}_{n}.h5"
    if workload == "W1":
        env = Environment(trajectory="w1", filename=path)
    else:
        env = Environment(trajectory="w4", filename=path, ncores=2, mp_context=method)
    traj = env.trajectory
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [float(i) for i in range(n)]})
    loops, single = (0, 0.0)
    func = w1_run
    if workload == "W4":
        loops, single = calibrate()
        traj.add_parameter("loops", loops)
        func = w4_run
    start = time.perf_counter()
    env.run(func)
    wall = time.perf_counter() - start
    env.close()
    loaded = load(path)
    assert len(loaded.results.z) == n, "every run must be stored"
    result: dict[str, Any] = {"wall": wall, "per_run_us": wall / n * 1e6}
    result["bytes_per_run"] = path.stat().st_size / n
    if workload == "W4":
        result["efficiency"] = n * single / (2 * wall)
    return result


def measure_floor(workload: str, n: int, method: str, folder: Path) -> dict[str, Any]:
    """Time the raw-PyTables floor of one workload."""
    import numpy as np
    import tables

    path = folder / f"floor_{workload}_{n}.h5"
    loops, single = calibrate() if workload == "W4" else (0, 0.0)
    start = time.perf_counter()
    with tables.open_file(path, "w") as h5:
        table = h5.create_table(
            "/", "runs", np.dtype([("idx", "<i8"), ("z", "<f8")]), expectedrows=n
        )
        buffer = np.zeros(1000, dtype=table.dtype)
        fill = 0

        def append(idx: int, z: float) -> None:
            nonlocal fill
            buffer[fill] = (idx, z)
            fill += 1
            if fill == len(buffer):
                table.append(buffer)
                fill = 0

        if workload == "W1":
            for i in range(n):
                append(i, float(i) * 2.0)
        else:
            context = multiprocessing.get_context(method)
            with context.Pool(2) as pool:
                for idx, z in pool.imap_unordered(
                    _floor_work, [(i, loops) for i in range(n)], chunksize=4
                ):
                    append(idx, z)
        if fill:
            table.append(buffer[:fill])
        table.flush()
    wall = time.perf_counter() - start
    result: dict[str, Any] = {"wall": wall, "per_run_us": wall / n * 1e6}
    result["bytes_per_run"] = path.stat().st_size / n
    if workload == "W4":
        result["efficiency"] = n * single / (2 * wall)
    return result


def _child(system: str, workload: str, n: int, method: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        measure = measure_pytraj if system == "pytraj" else measure_floor
        print(json.dumps(measure(workload, n, method, Path(folder))))


# -- the driver ------------------------------------------------------------------------------
def _run_child(system: str, workload: str, n: int, method: str) -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    command = [sys.executable, "-m", "benchmarks.bench_environment", "--child"]
    command += [system, workload, str(n), method]
    done = subprocess.run(
        command, cwd=root, env=env, capture_output=True, text=True, check=False, timeout=3600
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _median(samples: list[dict[str, Any]], key: str) -> float:
    return statistics.median(sample[key] for sample in samples)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the benchmark and print a table; returns the rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="W1 at 1k and 10k, 1 repetition")
    parser.add_argument("--repeat", type=int, default=None, help="repetitions (default 3)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--child", nargs=4, metavar=("SYSTEM", "WORKLOAD", "N", "METHOD"))
    args = parser.parse_args(argv)
    if args.child:
        system, workload, n, method = args.child
        _child(system, workload, int(n), method)
        return []
    repeat = args.repeat or (1 if args.quick else 3)
    cells = [("W1", n, "fork") for n in ((1000, 10_000) if args.quick else (1000, 10_000, 100_000))]
    cells += [("W4", W4_RUNS, method) for method in ("fork", "spawn")]
    rows = []
    print(f"{'workload':<8} {'N':>7} {'start':>6} | {'pytraj':>10} {'floor':>10} {'ratio':>6}")
    for workload, n, method in cells:
        ours = [_run_child("pytraj", workload, n, method) for _ in range(repeat)]
        floor = [_run_child("floor", workload, n, method) for _ in range(repeat)]
        row: dict[str, Any] = {"workload": workload, "n": n, "start_method": method}
        key = "efficiency" if workload == "W4" else "per_run_us"
        row["pytraj"] = _median(ours, key)
        row["floor"] = _median(floor, key)
        row["pytraj_bytes_per_run"] = _median(ours, "bytes_per_run")
        row["samples"] = {"pytraj": ours, "floor": floor}
        rows.append(row)
        unit = "%" if workload == "W4" else "us"
        scale = 100.0 if workload == "W4" else 1.0
        print(
            f"{workload:<8} {n:>7} {method if workload == 'W4' else '':>6} | "
            f"{row['pytraj'] * scale:>8.1f}{unit:>2} {row['floor'] * scale:>8.1f}{unit:>2} "
            f"{row['pytraj'] / row['floor']:>6.2f}"
        )
    print("W1: cost per run (target <= 50 us, flat); W4: parallel efficiency (target >= 90 %)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
