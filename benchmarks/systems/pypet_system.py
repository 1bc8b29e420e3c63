"""pypet 0.6.1 through its documented API, with its default options.

Runs only in ``.venv-compare`` (pypet needs numpy < 2). The Environment is built with
pypet's defaults (``multiproc=False``; W4 sets ``multiproc=True, ncores=2`` and keeps
the rest: a new process per run, storage through a lock). The child runs in its work
folder, where pypet writes its ``logs/``. W1 times ``env.run(simulate)``, as for
pytraj. W5 loads with ``f_load(load_results=LOAD_DATA)`` (everything) and collects z
with ``f_get_from_runs``; one run's z loads the skeleton and then that one item.
"""

from __future__ import annotations

import multiprocessing
import shutil
from typing import Any

import numpy as np

from benchmarks.child import Cell, Outcome
from benchmarks.systems.common import (
    DataMismatchError,
    check_arrays,
    check_w3,
    check_z,
    timed,
)
from benchmarks.workloads import (
    ARRAY_LENGTH,
    LARGE_ARRAY_LENGTH,
    WORKERS,
    busy_work,
    expected_z,
    measure_work_time,
    parallel_efficiency,
    w3_values,
    x_values,
)

__all__ = ["RUNNERS"]

_BASE = np.arange(float(ARRAY_LENGTH))
_LARGE_BASE = np.arange(float(LARGE_ARRAY_LENGTH))
# pypet's load levels (pypetconstants): 1 skeleton, 2 data.
_SKELETON = 1
_DATA = 2


def simulate_w1(traj: Any) -> None:
    """W1: one float."""
    traj.f_add_result("z", expected_z(traj.x))


def simulate_w2(traj: Any) -> None:
    """W2: one array of 1,000 float64."""
    traj.f_add_result("z", _BASE + traj.x)


def simulate_w2l(traj: Any) -> None:
    """W2L: one array of 100,000 float64."""
    traj.f_add_result("z", _LARGE_BASE + traj.x)


def simulate_w3(traj: Any) -> None:
    """W3: ten scalars in one result, the small dict in another."""
    scalars, info = w3_values(traj.x, traj.v_idx)
    traj.f_add_result("stats", **scalars)
    traj.f_add_result("info", info)


def simulate_w4(traj: Any, iterations: int) -> None:
    """W4: busy-work, then W1's float."""
    busy_work(iterations)
    traj.f_add_result("z", expected_z(traj.x))


def _version() -> str:
    import pypet

    return str(pypet.__version__)


def _run(
    cell: Cell, simulate: Any, *args: Any, offset: int = 0, name: str = "pypet.h5", **options: Any
) -> tuple[str, float]:
    from pypet import Environment, cartesian_product

    path = str(cell.path(name))
    env = Environment(trajectory=cell.workload.lower(), filename=path, **options)
    traj = env.trajectory
    traj.f_add_parameter("x", 0.0)
    traj.f_explore(cartesian_product({"x": x_values(cell.n, offset)}))
    with timed() as watch:
        env.run(simulate, *args)
    env.disable_logging()
    return path, watch.seconds


def _loaded(path: str, results: int = _DATA) -> Any:
    from pypet import Trajectory

    traj = Trajectory(filename=path)
    traj.f_load(index=-1, load_parameters=_DATA, load_results=results)
    return traj


def _per_run(traj: Any, name: str) -> list[Any]:
    found = traj.f_get_from_runs(name, fast_access=True, use_indices=True)
    return [found[i] for i in sorted(found)]


def w1(cell: Cell) -> Outcome:
    """W1: ``env.run`` of a one-float simulation."""
    path, seconds = _run(cell, simulate_w1)
    check = check_z(_per_run(_loaded(path), "z"), cell.n)
    return Outcome(seconds, [path], check, version=_version())


def prepare(cell: Cell) -> Outcome:
    """A W1 file of ``n`` runs starting at ``offset`` (input of W5 and W6)."""
    path, seconds = _run(cell, simulate_w1, offset=cell.offset, name=f"w1-{cell.offset}.h5")
    return Outcome(seconds, [path], version=_version())


def _arrays(cell: Cell, simulate: Any, length: int) -> Outcome:
    path, seconds = _run(cell, simulate)
    check = check_arrays(np.array(_per_run(_loaded(path), "z")), cell.n, length)
    return Outcome(seconds, [path], check, version=_version())


def w2(cell: Cell) -> Outcome:
    """W2: 1,000 float64 per run."""
    return _arrays(cell, simulate_w2, ARRAY_LENGTH)


def w2l(cell: Cell) -> Outcome:
    """W2L: 100,000 float64 per run."""
    return _arrays(cell, simulate_w2l, LARGE_ARRAY_LENGTH)


def w3(cell: Cell) -> Outcome:
    """W3: ten scalars and a small dict per run."""
    path, seconds = _run(cell, simulate_w3)
    traj = _loaded(path)
    stats = _per_run(traj, "stats")  # Result objects: a multi-item result has no fast access
    scalars = {f"s{k}": np.array([r.f_get(f"s{k}") for r in stats]) for k in range(10)}
    infos = _per_run(traj, "info")
    return Outcome(seconds, [path], check_w3(scalars, infos, cell.n), version=_version())


def w4(cell: Cell) -> Outcome:
    """W4: ``multiproc=True, ncores=2`` (pypet's default: a new process per run)."""
    if cell.start_method != multiprocessing.get_start_method(allow_none=True):
        multiprocessing.set_start_method(cell.start_method, force=True)
    work = measure_work_time(cell.iterations)
    path, seconds = _run(cell, simulate_w4, cell.iterations, multiproc=True, ncores=WORKERS)
    check = check_z(_per_run(_loaded(path), "z"), cell.n)
    extra = {"work_s": work, "efficiency": parallel_efficiency(cell.n, work, seconds)}
    return Outcome(seconds, [path], check, extra, version=_version())


def w5(cell: Cell) -> Outcome:
    """W5: load everything + all z / skeleton + one run's z / everything + a DataFrame."""
    import pandas as pd

    path = cell.sources[0]
    with timed() as all_z:
        z = _per_run(_loaded(path), "z")
    middle = cell.n // 2
    with timed() as one:
        traj = _loaded(path, results=_SKELETON)
        traj.v_auto_load = True
        traj.f_set_crun(middle)
        z_one = traj.crun.z
    with timed() as frame:
        traj = _loaded(path)
        df = pd.DataFrame({"x": traj.f_get("x").f_get_range(), "z": _per_run(traj, "z")})
    check = check_z(z, cell.n)
    if z_one != expected_z(x_values(cell.n)[middle]) or len(df) != cell.n:
        raise DataMismatchError(f"W5: run {middle}'s z or the DataFrame's length is wrong")
    extra = {"one_s": one.seconds, "df_s": frame.seconds}
    return Outcome(all_z.seconds, [], check, extra, version=_version())


def w6(cell: Cell) -> Outcome:
    """W6: load both trajectories, ``f_merge`` (defaults) the second into the first.

    pypet merges in place and, by default, first backs up the other trajectory beside
    its file, so both inputs are copied into this repetition's folder (untimed), the
    other one into a subfolder: the two backups have the same name.
    """
    path = str(cell.path("pypet-merged.h5"))
    cell.path("other").mkdir()
    other_path = str(cell.path("other/pypet-other.h5"))
    shutil.copyfile(cell.sources[0], path)
    shutil.copyfile(cell.sources[1], other_path)
    with timed() as watch:
        merged = _loaded(path)
        other = _loaded(other_path)
        merged.f_merge(other)
    z = _per_run(_loaded(path), "z")
    return Outcome(watch.seconds, [path], check_z(z, cell.n), version=_version())


def unavailable(workload: str) -> str | None:
    """W1S (pytraj's manual runs) has no counterpart measured for pypet."""
    return "not measured" if workload == "W1S" else None


RUNNERS = {
    "prepare": prepare,
    "W1": w1,
    "W2": w2,
    "W2L": w2l,
    "W3": w3,
    "W4": w4,
    "W4spawn": w4,
    "W5": w5,
    "W6": w6,
}
