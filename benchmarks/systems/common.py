"""Checks and small tools every system's runners share."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from benchmarks.workloads import ARRAY_LENGTH, WORKERS, expected_z, w3_values, x_values

__all__ = [
    "BatchWriter",
    "DataMismatchError",
    "Stopwatch",
    "check_arrays",
    "check_some_arrays",
    "check_w3",
    "check_z",
    "dask_client",
    "expected_zs",
    "peak_mb_now",
    "timed",
    "timed_peak_mb",
]


class DataMismatchError(AssertionError):
    """The data a system stored differs from what the workload computed."""


def expected_zs(n: int, offset: int = 0) -> np.ndarray:
    """W1's z for runs ``offset … offset + n - 1``, in run order."""
    return np.array([expected_z(x) for x in x_values(n, offset)], dtype=np.float64)


def check_z(values: Sequence[float] | np.ndarray, n: int, offset: int = 0, what: str = "z") -> str:
    """Raise unless ``values`` are exactly W1's z values for ``n`` runs, in run order."""
    got = np.asarray(values, dtype=np.float64)
    want = expected_zs(n, offset)
    if got.shape != want.shape:
        raise DataMismatchError(f"{what}: {got.shape[0]} values stored, {n} expected")
    bad = np.flatnonzero(got != want)
    if bad.size:
        i = int(bad[0])
        raise DataMismatchError(f"{what}: run {i} stored {got[i]!r}, computed {want[i]!r}")
    return f"{what}: all {n} values equal the computed ones"


def check_arrays(values: Any, n: int, length: int = ARRAY_LENGTH, what: str = "z") -> str:
    """Raise unless ``values`` (n x length) is ``arange(length) + x`` for every run.

    ``values`` is anything with ``shape`` and numpy-style indexing (an array, a
    PyTables EArray), so an 800 MB column is checked without reading it whole.
    """
    got = values
    if tuple(got.shape) != (n, length):
        raise DataMismatchError(f"{what}: shape {got.shape}, expected {(n, length)}")
    xs = np.asarray(x_values(n))
    if not (np.array_equal(got[:, 0], xs) and np.array_equal(got[:, -1], xs + (length - 1))):
        raise DataMismatchError(f"{what}: first/last elements differ from arange({length}) + x")
    for i in {0, n // 2, n - 1}:
        if not np.array_equal(got[i], np.arange(float(length)) + xs[i]):
            raise DataMismatchError(f"{what}: run {i}'s array differs from the computed one")
    return f"{what}: {n} arrays of {length} equal the computed ones (ends of all, 3 in full)"


def check_some_arrays(
    row: Callable[[int], Any], idx: Sequence[int] | np.ndarray, n: int, length: int
) -> str:
    """Raise unless a merge of ``n`` runs of arrays holds each run once and the first, the
    last and the two middle runs' arrays equal ``arange(length) + x``.

    ``row(k)`` reads the k-th stored array; ``idx[k]`` is the run it belongs to (a merged
    file keeps its inputs' order). Four arrays are read, not the gigabytes of all.
    """
    runs = np.asarray(idx)
    if not np.array_equal(np.sort(runs), np.arange(n)):
        raise DataMismatchError(f"merged arrays: runs {runs[:5]}... are not 0 … {n - 1} once each")
    xs = x_values(n)
    where = {int(run): k for k, run in enumerate(runs)}
    for run in sorted({0, n // 2 - 1, n // 2, n - 1}):
        got = np.asarray(row(where[run]))
        if not np.array_equal(got, np.arange(float(length)) + xs[run]):
            raise DataMismatchError(f"merged arrays: run {run}'s array is not arange + its x")
    return f"merged arrays: {n} runs once each, 4 arrays of {length} equal the computed ones"


def check_w3(scalars: dict[str, np.ndarray], infos: Sequence[dict[str, Any]], n: int) -> str:
    """Raise unless W3's ten scalar columns and the dicts match the computed ones."""
    xs = x_values(n)
    for k in range(10):
        column = np.asarray(scalars[f"s{k}"], dtype=np.float64)
        if not np.array_equal(column, np.asarray(xs) + k):
            raise DataMismatchError(f"W3: column s{k} differs from x + {k}")
    if len(infos) != n:
        raise DataMismatchError(f"W3: {len(infos)} dicts stored, {n} expected")
    for i in {0, 1, n // 2, n - 1}:
        want = w3_values(xs[i], i)[1]
        got = {key: _plain(value) for key, value in dict(infos[i]).items()}
        if got != want:
            raise DataMismatchError(f"W3: run {i}'s dict is {got!r}, computed {want!r}")
    return f"W3: 10 scalar columns of {n} runs and 4 dicts equal the computed ones"


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


class Stopwatch:
    """Elapsed seconds of the ``with timed() as watch:`` block, in ``watch.seconds``."""

    __slots__ = ("seconds",)

    def __init__(self) -> None:
        self.seconds = 0.0


_PEAK_KIB = [0]


def peak_mb_now() -> float:
    """This process's peak memory (MB) so far: taken before a timed section, it says how
    much of the peak after it was there already (imports, open files)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed_peak_mb() -> float | None:
    """This process's peak memory (MB) when the last :func:`timed` block ended.

    Read after a runner returns, so the checks that follow the timing (which may
    load a whole column) do not count.
    """
    return _PEAK_KIB[0] / 1024.0 if _PEAK_KIB[0] else None


def other_runs(n: int, count: int = 7) -> list[int]:
    """``count`` runs spread over a study of ``n`` runs, none of them its middle one
    (W5 with the file open: each in another part of the file)."""
    return [(n // 2 + k * n // (count + 1) + 1) % n for k in range(1, count + 1)]


def median_of(read: Callable[[int], Any], runs: Sequence[int]) -> float:
    """The median time (s) of ``read(j)`` over ``runs``, each timed alone."""
    times = []
    for j in runs:
        start = time.perf_counter()
        read(j)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


@contextmanager
def timed() -> Iterator[Stopwatch]:
    """Time the block with :func:`time.perf_counter`."""
    watch = Stopwatch()
    start = time.perf_counter()
    try:
        yield watch
    finally:
        watch.seconds = time.perf_counter() - start
        _PEAK_KIB[0] = max(_PEAK_KIB[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


class BatchWriter:
    """Collect rows and hand them to ``append`` in batches of ``size`` (the floor's loop)."""

    __slots__ = ("_append", "_rows", "_size")

    def __init__(self, append: Any, size: int) -> None:
        self._append = append
        self._rows: list[Any] = []
        self._size = size

    def add(self, row: Any) -> None:
        """Queue one row; write the batch when it is full."""
        self._rows.append(row)
        if len(self._rows) >= self._size:
            self.flush()

    def flush(self) -> None:
        """Write the queued rows."""
        if self._rows:
            self._append(self._rows)
            self._rows = []


@contextmanager
def dask_client() -> Iterator[Any]:
    """A Client on a Dask ``LocalCluster`` of :data:`WORKERS` single-threaded worker
    processes (W4dask, W1dask). Started before the clock: a cluster is infrastructure
    that outlives one study, as a pool of SLURM jobs does."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(WORKERS)
        yield client
