"""pytraj through its public API (DESIGN §1), always with default options.

W1 times exactly ``env.run(simulate)``: pytraj is imported, the Environment built and
the points explored before the clock starts, and closing the Environment afterwards
is reported separately (``close_s``). W1S times the manual-run loop plus the close
(the storage path alone, comparable to the floor's write-and-close).

pytraj is imported inside the runners, never at module level, so IMPORT can time a
first ``import pytraj``.
"""

from __future__ import annotations

import importlib
import multiprocessing
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.child import Cell, Outcome
from benchmarks.systems.common import (
    DataMismatchError,
    check_arrays,
    check_some_arrays,
    check_w3,
    check_z,
    dask_client,
    median_of,
    other_runs,
    peak_mb_now,
    timed,
)
from benchmarks.systems.continuation import RUNNERS_FOR
from benchmarks.workloads import (
    ARRAY_LENGTH,
    LARGE_ARRAY_LENGTH,
    MERGE_ARRAY_LENGTH,
    WORKERS,
    cpu_above_work,
    cpu_seconds,
    expected_z,
    measure_work_time,
    parallel_efficiency,
    timed_busy_work,
    w3_values,
    x_values,
)

__all__ = ["RUNNERS"]

_BASE = np.arange(float(ARRAY_LENGTH))
_LARGE_BASE = np.arange(float(LARGE_ARRAY_LENGTH))
_MERGE_BASE = np.arange(float(MERGE_ARRAY_LENGTH))


# -- the simulations (module level: pool workers import them) ------------------------
def simulate_w1(traj: Any) -> None:
    """W1: one float."""
    traj.add_result("z", expected_z(traj.x))


def simulate_w2(traj: Any) -> None:
    """W2: one array of 1,000 float64."""
    traj.add_result("z", _BASE + traj.x)


def simulate_w2l(traj: Any) -> None:
    """W2L: one array of 100,000 float64."""
    traj.add_result("z", _LARGE_BASE + traj.x)


def simulate_w6a(traj: Any) -> None:
    """W6A's input: one array of 125,000 float64 (1 MB)."""
    traj.add_result("z", _MERGE_BASE + traj.x)


def simulate_w3(traj: Any) -> None:
    """W3: ten scalars in one result, a small dict in another."""
    scalars, info = w3_values(traj.x, traj.idx)
    traj.add_result("stats", **scalars)
    traj.add_result("info", info)


def simulate_w4(traj: Any, iterations: int) -> float:
    """W4: busy-work, then W1's float; returns the busy-work's CPU seconds."""
    work_cpu = timed_busy_work(iterations)
    traj.add_result("z", expected_z(traj.x))
    return work_cpu


# -- helpers ---------------------------------------------------------------------------
def _load(path: str) -> Any:
    import pytraj as pt

    return pt.load(path)


def _version() -> str:
    import pytraj

    return str(pytraj.__version__)


def _study(cell: Cell, path: str, offset: int = 0, **options: Any) -> tuple[Any, Any]:
    """An Environment on ``path`` with ``x`` explored over the cell's points."""
    import pytraj as pt

    env = pt.Environment(trajectory=cell.workload.lower(), filename=path, **options)
    traj = env.trajectory
    traj.add_parameter("x", 0.0)
    traj.explore(pt.cartesian_product({"x": x_values(cell.n, offset)}))
    return env, traj


def _close(env: Any) -> float:
    """Close the Environment (or its trajectory) and return the seconds it took."""
    start = time.perf_counter()
    closer = getattr(env, "close", None) or env.trajectory.close
    closer()
    return time.perf_counter() - start


def _run(
    cell: Cell,
    simulate: Callable[..., float | None],
    *args: Any,
    offset: int = 0,
    name: str = "pytraj.h5",
    **options: Any,
) -> tuple[str, float, dict[str, float]]:
    path = str(cell.path(name))
    # The whole study as a user pays it: the Environment, explore, env.run and close.
    with timed() as study:
        env, _ = _study(cell, path, offset, **options)
        cpu_before = cpu_seconds()
        with timed() as watch:
            returned = env.run(simulate, *args)
        close_s = _close(env)
        # CPU of this process and of the pool's workers (ended and waited for by now).
        cpu_s = cpu_seconds() - cpu_before
    # W4's simulation returns its busy-work's CPU seconds (others return None).
    work_cpu_s = sum(value for _, value in returned if value is not None)
    del returned
    extra = {"close_s": close_s, "cpu_s": cpu_s, "study_s": study.seconds, "work_cpu_s": work_cpu_s}
    return path, watch.seconds, extra


# -- runners ----------------------------------------------------------------------------
def w1(cell: Cell) -> Outcome:
    """W1: ``env.run`` of a one-float simulation."""
    path, seconds, extra = _run(cell, simulate_w1)
    check = check_z(_load(path).results.z.to_numpy(), cell.n)
    return Outcome(seconds, [path], check, extra, version=_version())


def prepare(cell: Cell) -> Outcome:
    """A W1 file of ``n`` runs starting at ``offset`` (input of W5 and W6)."""
    path, seconds, _ = _run(cell, simulate_w1, offset=cell.offset, name=f"w1-{cell.offset}.h5")
    return Outcome(seconds, [path], version=_version())


def w1s(cell: Cell) -> Outcome:
    """W1S: manual runs on a file-backed trajectory, then close (timed together)."""
    import pytraj as pt

    path = str(cell.path("pytraj-manual.h5"))
    traj = pt.Trajectory("w1s", filename=path)
    traj.add_parameter("x", 0.0)
    traj.explore(pt.cartesian_product({"x": x_values(cell.n)}))
    with timed() as watch:
        for i in range(cell.n):
            with traj.start_run(i):
                traj.add_result("z", expected_z(traj.x))
        traj.close()
    check = check_z(_load(path).results.z.to_numpy(), cell.n)
    return Outcome(watch.seconds, [path], check, version=_version())


def w2(cell: Cell) -> Outcome:
    """W2: ``env.run`` of a simulation returning 1,000 float64."""
    path, seconds, extra = _run(cell, simulate_w2)
    check = check_arrays(_load(path).results.z.to_numpy(), cell.n)
    return Outcome(seconds, [path], check, extra, version=_version())


def w2l(cell: Cell) -> Outcome:
    """W2L: ``env.run`` of a simulation returning 100,000 float64 (800 KB)."""
    path, seconds, extra = _run(cell, simulate_w2l)
    view = _load(path).results.z
    rows = _RowsOf(view, LARGE_ARRAY_LENGTH)
    check = check_arrays(rows, cell.n, LARGE_ARRAY_LENGTH)
    return Outcome(seconds, [path], check, extra, version=_version())


class _RowsOf:
    """An (n x length) array-like over a per-run view, read one run at a time."""

    def __init__(self, view: Any, length: int) -> None:
        self._view = view
        self.shape = (len(view), length)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, tuple):  # [:, j]: one element of every run
            return np.array([np.asarray(self._view[i])[key[1]] for i in range(self.shape[0])])
        return np.asarray(self._view[key])


def w3(cell: Cell) -> Outcome:
    """W3: ten scalars and a small dict per run."""
    path, seconds, extra = _run(cell, simulate_w3)
    results = _load(path).results
    scalars = {f"s{k}": results.stats[f"s{k}"].to_numpy() for k in range(10)}
    check = check_w3(scalars, results.info, cell.n)
    return Outcome(seconds, [path], check, extra, version=_version())


def w4(cell: Cell) -> Outcome:
    """W4: W1 with busy-work on ``ncores=2`` (the cell's start method)."""
    work = measure_work_time(cell.iterations)
    # W4 keeps the platform's default start method (no option); W4spawn asks for spawn.
    default = multiprocessing.get_start_method()
    options: dict[str, Any] = {"ncores": WORKERS}
    if cell.start_method != default:
        options["mp_context"] = cell.start_method
    path, seconds, extra = _run(cell, simulate_w4, cell.iterations, **options)
    check = check_z(_load(path).results.z.to_numpy(), cell.n)
    extra.update(
        work_s=work,
        efficiency=parallel_efficiency(cell.n, work, seconds),
        cpu_above_s=cpu_above_work(cell.n, extra["work_cpu_s"], extra["cpu_s"]),
    )
    return Outcome(seconds, [path], check, extra, version=_version())


def w4dask(cell: Cell) -> Outcome:
    """W4dask: W4 with ``executor=client`` on a 2-worker Dask LocalCluster."""
    work = measure_work_time(cell.iterations)
    with dask_client() as client:
        path, seconds, extra = _run(cell, simulate_w4, cell.iterations, executor=client)
    check = check_z(_load(path).results.z.to_numpy(), cell.n)
    extra.update(work_s=work, efficiency=parallel_efficiency(cell.n, work, seconds))
    return Outcome(seconds, [path], check, extra, version=_version())


def w1dask(cell: Cell) -> Outcome:
    """W1dask: W1 with ``executor=client``: pytraj's cost per run through Dask."""
    with dask_client() as client:
        path, seconds, extra = _run(cell, simulate_w1, executor=client)
    check = check_z(_load(path).results.z.to_numpy(), cell.n)
    return Outcome(seconds, [path], check, extra, version=_version())


def w5(cell: Cell) -> Outcome:
    """W5: ``pt.load`` + all z / + one run's z / + the DataFrame, each with its own load.

    The modules a first load imports lazily (PyTables, pytraj's HDF5 backend, the
    views) are imported before the clock, as the floor imports PyTables before its
    clock; their import time is reported apart (``imports_s``).
    """
    import pandas  # noqa: F401  # imported before the clock, as in any analysis session

    path = cell.sources[0]
    load = _load
    with timed() as imports:
        for module in ("tables", "pytraj.storage.hdf5", "pytraj.trajectory.views"):
            importlib.import_module(module)
    with timed() as all_z:
        z = load(path).results.z.to_numpy()
    middle = cell.n // 2
    with timed() as one:
        z_one = load(path).results.z[middle]
    # With the file open (``traj.reading()``, the scope that keeps it open; the
    # trajectory loaded and one value read, as the floor's first read): other runs'.
    traj = load(path)
    view = traj.results.z
    with traj.reading():
        view[middle]
        open_one = median_of(lambda j: view[j], other_runs(cell.n))
    with timed() as frame:
        df = load(path).to_dataframe()
    check = check_z(z, cell.n)
    if z_one != expected_z(x_values(cell.n)[middle]) or len(df) != cell.n:
        raise DataMismatchError(f"W5: run {middle}'s z or the DataFrame's length is wrong")
    extra = {
        "one_s": one.seconds,
        "open_one_s": open_one,
        "df_s": frame.seconds,
        "imports_s": imports.seconds,
    }
    return Outcome(all_z.seconds, [], check, extra, version=_version())


def _merge_files() -> Callable[..., Any] | None:
    try:
        io = importlib.import_module("pytraj.io")
    except ImportError:
        return None
    return getattr(io, "merge_files", None)


def unavailable(workload: str) -> str | None:
    """Why pytraj cannot run ``workload`` yet (None: it can)."""
    if workload in {"W6", "W6A"} and _merge_files() is None:
        return "not yet measurable"
    return None


def w6(cell: Cell) -> Outcome:
    """W6: ``pytraj.merge_files([a, b], out)``: a new file holding both studies' runs.

    pytraj imports PyTables and its HDF5 writing code on first use, to keep ``import
    pytraj`` fast; the floor imports PyTables with its module. Both are imported before
    the clock starts, so the figure is the merge alone on either side.
    """
    merge = _merge_files()
    if merge is None:
        return Outcome(0.0, status="not yet measurable", version=_version())
    for module in ("tables", "pytraj.storage.hdf5.writer", "pytraj.trajectory.definition"):
        importlib.import_module(module)
    path = str(cell.path("pytraj-merged.h5"))
    with timed() as watch:
        merge(cell.sources, path)
    z = _load(path).results.z.to_series().sort_index().to_numpy()
    return Outcome(watch.seconds, [path], check_z(z, cell.n), version=_version())


def prepare_w6a(cell: Cell) -> Outcome:
    """W6A's input: a study of ``n`` runs from ``offset``, each run a 1 MB array."""
    name = f"w6a-{cell.offset}.h5"
    path, seconds, _ = _run(cell, simulate_w6a, offset=cell.offset, name=name)
    return Outcome(seconds, [path], version=_version())


def w6a(cell: Cell) -> Outcome:
    """W6A: ``pytraj.merge_files([a, b], out)`` of two studies of 1 MB arrays per run.

    ``base_mb`` is this process's peak before the merge (pytraj, PyTables and numpy
    imported): the merge's own memory is the peak after it minus that.
    """
    merge = _merge_files()
    if merge is None:
        return Outcome(0.0, status="not yet measurable", version=_version())
    # What the merge needs is imported before the clock and before ``base_mb``.
    import tables  # noqa: F401

    import pytraj  # noqa: F401

    path = str(cell.path("pytraj-merged-arrays.h5"))
    before = peak_mb_now()
    with timed() as watch:
        merge(cell.sources, path)
    view = _load(path).results.z
    runs = list(range(len(view)))  # the view reads run k at position k
    check = check_some_arrays(lambda k: view[k], runs, cell.n, MERGE_ARRAY_LENGTH)
    return Outcome(watch.seconds, [path], check, {"base_mb": before}, version=_version())


def import_time(cell: Cell) -> Outcome:
    """IMPORT: the first ``import pytraj`` of this process."""
    if "pytraj" in sys.modules:
        raise RuntimeError("pytraj was imported before IMPORT could time it")
    with timed() as watch:
        import pytraj
    return Outcome(watch.seconds, check="import pytraj", version=str(pytraj.__version__))


RUNNERS = {
    "prepare": prepare,
    "W1": w1,
    "W1S": w1s,
    "W2": w2,
    "W2L": w2l,
    "W3": w3,
    "W4": w4,
    "W4spawn": w4,
    "W4dask": w4dask,
    "W1dask": w1dask,
    "W5": w5,
    "W6": w6,
    "IMPORT": import_time,
    "prepare W6A": prepare_w6a,
    "W6A": w6a,
    **RUNNERS_FOR["pytraj"],
}
