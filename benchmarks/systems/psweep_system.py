"""psweep 0.16 through ``psweep.run``, with its default options.

psweep keeps a study as a pandas DataFrame pickled once at the end of ``run``
(``<calc_dir>/database.pk``). W1 times ``ps.run(simulate, params)`` (parameter list
built before the clock starts); W4 passes ``poolsize=2`` (a ``multiprocessing.Pool``
of the default context, switched to spawn for W4spawn). psweep has no merge (W6).
"""

from __future__ import annotations

import multiprocessing
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


def simulate_w1(pset: dict[str, Any]) -> dict[str, Any]:
    """W1: one float."""
    return {"z": expected_z(pset["x"])}


def simulate_w2(pset: dict[str, Any]) -> dict[str, Any]:
    """W2: one array of 1,000 float64."""
    return {"z": _BASE + pset["x"]}


def simulate_w2l(pset: dict[str, Any]) -> dict[str, Any]:
    """W2L: one array of 100,000 float64."""
    return {"z": _LARGE_BASE + pset["x"]}


def simulate_w3(pset: dict[str, Any]) -> dict[str, Any]:
    """W3: ten scalars and the small dict as one more column."""
    scalars, info = w3_values(pset["x"], pset["idx"])
    return {**scalars, "info": info}


def simulate_w4(pset: dict[str, Any]) -> dict[str, Any]:
    """W4: busy-work, then W1's float."""
    busy_work(pset["iterations"])
    return {"z": expected_z(pset["x"])}


def _version() -> str:
    import psweep

    return str(getattr(psweep, "__version__", "?"))


def _run(
    cell: Cell, simulate: Any, extra: dict[str, Any] | None = None, offset: int = 0, **options: Any
) -> tuple[str, float]:
    import psweep as ps

    calc_dir = str(cell.path(f"calc-{offset}"))
    params = ps.plist("x", x_values(cell.n, offset))
    for i, pset in enumerate(params):
        pset.update({"idx": offset + i, **(extra or {})})
    with timed() as watch:
        ps.run(simulate, params, calc_dir=calc_dir, **options)
    return f"{calc_dir}/database.pk", watch.seconds


def _column(path: str, name: str) -> list[Any]:
    import psweep as ps

    df = ps.df_read(path).sort_values("idx")
    return list(df[name])


def w1(cell: Cell) -> Outcome:
    """W1: ``ps.run`` of a one-float simulation."""
    path, seconds = _run(cell, simulate_w1)
    return Outcome(seconds, [path], check_z(_column(path, "z"), cell.n), version=_version())


def prepare(cell: Cell) -> Outcome:
    """A W1 database of ``n`` runs starting at ``offset`` (input of W5)."""
    path, seconds = _run(cell, simulate_w1, offset=cell.offset)
    return Outcome(seconds, [path], version=_version())


def _arrays(cell: Cell, simulate: Any, length: int) -> Outcome:
    path, seconds = _run(cell, simulate)
    check = check_arrays(np.stack(_column(path, "z")), cell.n, length)
    return Outcome(seconds, [path], check, version=_version())


def w2(cell: Cell) -> Outcome:
    """W2: 1,000 float64 per run, as objects in the DataFrame."""
    return _arrays(cell, simulate_w2, ARRAY_LENGTH)


def w2l(cell: Cell) -> Outcome:
    """W2L: 100,000 float64 per run."""
    return _arrays(cell, simulate_w2l, LARGE_ARRAY_LENGTH)


def w3(cell: Cell) -> Outcome:
    """W3: ten scalar columns and a dict column."""
    path, seconds = _run(cell, simulate_w3)
    scalars = {f"s{k}": np.array(_column(path, f"s{k}"), dtype=float) for k in range(10)}
    check = check_w3(scalars, _column(path, "info"), cell.n)
    return Outcome(seconds, [path], check, version=_version())


def w4(cell: Cell) -> Outcome:
    """W4: ``poolsize=2``."""
    if cell.start_method != multiprocessing.get_start_method(allow_none=True):
        multiprocessing.set_start_method(cell.start_method, force=True)
    work = measure_work_time(cell.iterations)
    path, seconds = _run(cell, simulate_w4, extra={"iterations": cell.iterations}, poolsize=WORKERS)
    check = check_z(_column(path, "z"), cell.n)
    extra = {"work_s": work, "efficiency": parallel_efficiency(cell.n, work, seconds)}
    return Outcome(seconds, [path], check, extra, version=_version())


def w5(cell: Cell) -> Outcome:
    """W5: read the pickled DataFrame + all z / + one run's z / + the DataFrame itself."""
    import psweep as ps

    path = cell.sources[0]
    with timed() as all_z:
        z = ps.df_read(path)["z"].to_numpy(dtype=float)
    middle = cell.n // 2
    with timed() as one:
        z_one = ps.df_read(path)["z"].iloc[middle]
    with timed() as frame:
        df = ps.df_read(path)
    check = check_z(z, cell.n)
    if z_one != expected_z(x_values(cell.n)[middle]) or len(df) != cell.n:
        raise DataMismatchError(f"W5: run {middle}'s z or the DataFrame's length is wrong")
    extra = {"one_s": one.seconds, "df_s": frame.seconds}
    return Outcome(all_z.seconds, [], check, extra, version=_version())


def unavailable(workload: str) -> str | None:
    """psweep has no merge of two studies (W6) and no manual-run API (W1S)."""
    return "no such feature" if workload in {"W6", "W1S"} else None


RUNNERS = {
    "prepare": prepare,
    "W1": w1,
    "W2": w2,
    "W2L": w2l,
    "W3": w3,
    "W4": w4,
    "W4spawn": w4,
    "W5": w5,
}
