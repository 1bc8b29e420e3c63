"""The workloads of DESIGN §7, defined once for every system.

Each workload fixes the explored parameter (``x``, one float per run), what a run
computes from it and the exact values it stores, so every system stores the same data
and a child process can check what it stored (:func:`expected_z`, :func:`w3_values`).

Workloads
---------
W1
    One float result per run: ``z = 2 x + 1``.
W1S
    W1 through pytraj's manual runs (``with traj.start_run(i)``), without the
    Environment: the storage path alone. Other systems run their W1 code.
W2
    One float64 array of 1,000 values per run: ``arange(1000) + x``.
W2L
    One float64 array of 100,000 values (800 KB) per run, at small N.
W3
    Ten scalars (``s0 … s9``: ``x + k``) and a small dict per run.
W4
    W1 plus about 5 ms of CPU busy-work per run, on 2 worker processes.
W5
    Open a finished W1 file; read all z, one run's z, the DataFrame (each timed with
    its own open).
W6
    Merge two W1 files of N/2 runs each into one.
IMPORT
    ``import pytraj`` in a fresh process.

The cells of ``make bench-large`` only (``python -m benchmarks --large``; not part of
``make bench``):

W6A
    Merge two studies of N/2 runs, each run one float64 array of 125,000 values (1 MB):
    at N = 2,000 two files of 1 GB each (issue 12's "2 x 1 GB array merge").
RESUME
    Re-run the W1 script of N runs on its finished file (nothing is left to run).
RESUMEK
    Re-run the W1 script of N runs on its file killed (SIGKILL) at run N/2.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ARRAY_LENGTH",
    "LARGE_ARRAY_LENGTH",
    "LARGE_ONLY",
    "MERGE_ARRAY_LENGTH",
    "WORKERS",
    "WORKLOADS",
    "Workload",
    "busy_work",
    "calibrate_busy_work",
    "cpu_above_work",
    "cpu_seconds",
    "expected_z",
    "measure_work_cpu",
    "measure_work_time",
    "parallel_efficiency",
    "timed_busy_work",
    "w3_values",
    "x_values",
]

#: Length of W2's array and of W2L's (100,000 float64 = 800 KB).
ARRAY_LENGTH = 1_000
LARGE_ARRAY_LENGTH = 100_000
#: Length of W6A's per-run array (125,000 float64 = 1 MB).
MERGE_ARRAY_LENGTH = 125_000
#: Worker processes in W4.
WORKERS = 2
#: W4's busy-work per run, in seconds.
WORK_SECONDS = 0.005


@dataclass(frozen=True, slots=True)
class Workload:
    """One workload: its key, what it measures and the N it runs at by default.

    Attributes
    ----------
    key
        Short name (``"W1"``).
    title
        One line for the tables.
    sizes
        The run counts N of a full benchmark.
    smoke_sizes
        The run counts of the smoke mode.
    per_run
        Whether the timed figure is reported per run (µs); else in ms in total.
    large_sizes
        The run counts of ``make bench-large`` (empty: not part of it).
    large_only
        Whether only ``make bench-large`` runs it (``make bench`` leaves it out).
    """

    key: str
    title: str
    sizes: tuple[int, ...]
    smoke_sizes: tuple[int, ...]
    per_run: bool = True
    notes: tuple[str, ...] = field(default=())
    large_sizes: tuple[int, ...] = ()
    large_only: bool = False


_FULL = (1_000, 10_000, 100_000)
_MILLION = 1_000_000

WORKLOADS: dict[str, Workload] = {
    w.key: w
    for w in (
        Workload("W1", "one float per run (env.run)", _FULL, (20,), large_sizes=(_MILLION,)),
        Workload("W1S", "one float per run, manual runs (storage path only)", _FULL, (20,)),
        Workload("W2", "1,000-float64 array per run", _FULL, (10,)),
        Workload("W2L", "100,000-float64 array (800 KB) per run", (200,), (4,)),
        Workload("W3", "ten scalars + a small dict per run", _FULL, (10,)),
        Workload("W4", "W1 + 5 ms CPU per run, 2 workers, fork", _FULL, (8,)),
        Workload("W4spawn", "W1 + 5 ms CPU per run, 2 workers, spawn", (1_000, 10_000), (8,)),
        Workload("W4dask", "W4 on a 2-worker Dask LocalCluster", (1_000, 10_000), (8,)),
        Workload("W1dask", "W1 through a 2-worker Dask LocalCluster", (1_000, 10_000), (20,)),
        Workload(
            "W5",
            "open a W1 file + read all z",
            _FULL,
            (20,),
            per_run=False,
            large_sizes=(_MILLION,),
        ),
        Workload("W6", "merge two W1 files of N/2 runs", _FULL, (20,), per_run=False),
        Workload("IMPORT", "import pytraj in a fresh process", (0,), (0,), per_run=False),
        Workload(
            "W6A",
            "merge two studies of N/2 runs x a 1 MB array",
            (2_000,),
            (4,),
            per_run=False,
            large_sizes=(2_000,),
            large_only=True,
        ),
        Workload(
            "RESUME",
            "re-run the W1 script on its finished file",
            (_MILLION,),
            (20,),
            per_run=False,
            large_sizes=(_MILLION,),
            large_only=True,
        ),
        Workload(
            "RESUMEK",
            "re-run the W1 script on its file killed at run N/2",
            (_MILLION,),
            (20,),
            per_run=False,
            large_sizes=(_MILLION,),
            large_only=True,
        ),
    )
}

#: The workloads only ``make bench-large`` runs.
LARGE_ONLY = tuple(key for key, workload in WORKLOADS.items() if workload.large_only)


def x_values(n: int, offset: int = 0) -> list[float]:
    """The explored values of ``x``: run i has ``x = (offset + i) / 4`` (exact in binary)."""
    return [(offset + i) * 0.25 for i in range(n)]


def expected_z(x: float) -> float:
    """W1's result for ``x``."""
    return 2.0 * x + 1.0


def w3_values(x: float, idx: int) -> tuple[dict[str, float], dict[str, Any]]:
    """W3's ten scalars and its small dict for run ``idx`` with parameter ``x``."""
    scalars = {f"s{k}": x + k for k in range(10)}
    info = {"label": "ok" if idx % 2 == 0 else "odd", "k": idx, "flag": idx % 3 == 0}
    return scalars, info


def busy_work(iterations: int) -> int:
    """Burn CPU for a fixed amount of work (a pure-Python loop) and return a checksum.

    Fixed work instead of "spin for 5 ms" on purpose: contention from the writing
    process then shows up as lost efficiency, as it would for a real simulation.
    """
    acc = 0
    for k in range(iterations):
        acc = (acc + k * k) % 1_000_003
    return acc


def calibrate_busy_work(seconds: float = WORK_SECONDS) -> int:
    """Iterations of :func:`busy_work` that take about ``seconds`` on this machine."""
    trial = 20_000
    best = min(_time_once(trial) for _ in range(5))
    return max(1, round(trial * seconds / best))


def measure_work_time(iterations: int, repeats: int = 21) -> float:
    """Median wall time of one :func:`busy_work` call, measured serially here."""
    times = sorted(_time_once(iterations) for _ in range(repeats))
    return times[len(times) // 2]


def measure_work_cpu(iterations: int, repeats: int = 21) -> float:
    """Median CPU time of one :func:`busy_work` call, measured serially here."""
    times = sorted(_time_once(iterations, time.process_time) for _ in range(repeats))
    return times[len(times) // 2]


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its children that ended.

    A worker's CPU counts once it has ended and been waited for: read it after the
    pool is closed.
    """
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def cpu_above_work(n: int, work_cpu_total: float, cpu_spent: float) -> float:
    """W4's CPU per run above the work: ``(CPU of all processes - the runs' work) / N``.

    ``work_cpu_total`` is the CPU the N busy-work calls took, each measured in the
    worker that ran it (:func:`timed_busy_work`): on a shared machine one call's CPU
    measured serially in another process differs from it by more than the framework's
    cost (it came out negative for the floor at load 4). ``cpu_spent`` is what the main
    process and its workers used from the start of the runs to the end of the pool
    (:func:`cpu_seconds`). What is left is the framework's cost per run: handing points
    out, sending results back, storing, starting and stopping workers.
    """
    return (cpu_spent - work_cpu_total) / n


def timed_busy_work(iterations: int) -> float:
    """Run :func:`busy_work` and return the CPU seconds it took in this process."""
    start = time.process_time()
    busy_work(iterations)
    return time.process_time() - start


def parallel_efficiency(n: int, work_seconds: float, wall_seconds: float) -> float:
    """W4's parallel efficiency: ``(N x single-run work time) / (workers x wall time)``.

    ``work_seconds`` is one busy-work call measured serially in the same process
    (:func:`measure_work_time`); ``wall_seconds`` the timed run of all N runs on
    :data:`WORKERS` workers, pool start and storing included. 1.0 means the workers
    never waited and the framework cost nothing.
    """
    return n * work_seconds / (WORKERS * wall_seconds)


def _time_once(iterations: int, clock: Callable[[], float] = time.perf_counter) -> float:
    start = clock()
    busy_work(iterations)
    return clock() - start
