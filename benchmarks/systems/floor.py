"""The raw-PyTables floor: the least code a careful engineer writes for each workload.

One table row per run, appended in batches; fixed-shape arrays into one EArray with a
row per run; reading is one column read. No framework, no run records beyond the row,
no crash safety: the lower bound pytraj is measured against.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

import numpy as np
import tables

from benchmarks.child import Cell, Outcome
from benchmarks.systems.common import (
    BatchWriter,
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
    busy_work,
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

BATCH_ROWS = 1_000
#: At most this many bytes of arrays are held before an append (W2L: 80 rows).
BATCH_BYTES = 64 * 2**20

_W1_ROW = np.dtype([("idx", "<i8"), ("x", "<f8"), ("z", "<f8")])
_W2_ROW = np.dtype([("idx", "<i8"), ("x", "<f8")])
_W3_ROW = np.dtype(
    [("idx", "<i8"), ("x", "<f8")]
    + [(f"s{k}", "<f8") for k in range(10)]
    + [("label", "S8"), ("k", "<i8"), ("flag", "?")]
)


def _simulate(x: float) -> float:
    return expected_z(x)


def _write_w1(path: str, n: int, offset: int = 0) -> None:
    with tables.open_file(path, mode="w") as h5:
        table = h5.create_table("/", "runs", _W1_ROW, expectedrows=n)
        rows = BatchWriter(table.append, BATCH_ROWS)
        for i, x in enumerate(x_values(n, offset)):
            rows.add((offset + i, x, _simulate(x)))
        rows.flush()


def w1(cell: Cell) -> Outcome:
    """W1 (and W1S): one table row (idx, x, z) per run, appended 1,000 at a time."""
    path = str(cell.path("floor-w1.h5"))
    with timed() as watch:
        _write_w1(path, cell.n)
    with tables.open_file(path) as h5:
        check = check_z(h5.root.runs.col("z"), cell.n)
    return Outcome(watch.seconds, [path], check, version=tables.__version__)


def prepare(cell: Cell) -> Outcome:
    """A W1 file of ``n`` runs starting at ``offset`` (input of W5 and W6)."""
    path = str(cell.path(f"floor-w1-{cell.offset}.h5"))
    with timed() as watch:
        _write_w1(path, cell.n, cell.offset)
    return Outcome(watch.seconds, [path], version=tables.__version__)


def _write_arrays(path: str, n: int, length: int, offset: int = 0) -> None:
    with tables.open_file(path, mode="w") as h5:
        table = h5.create_table("/", "runs", _W2_ROW, expectedrows=n)
        array = h5.create_earray("/", "z", tables.Float64Atom(), shape=(0, length), expectedrows=n)
        batch = max(1, min(BATCH_ROWS, BATCH_BYTES // (8 * length)))
        rows = BatchWriter(table.append, batch)
        arrays = BatchWriter(lambda values: array.append(np.stack(values)), batch)
        base = np.arange(float(length))
        for i, x in enumerate(x_values(n, offset)):
            rows.add((offset + i, x))
            arrays.add(base + x)
        rows.flush()
        arrays.flush()


def _arrays(cell: Cell, length: int) -> Outcome:
    path = str(cell.path("floor-arrays.h5"))
    with timed() as watch:
        _write_arrays(path, cell.n, length)
    with tables.open_file(path) as h5:
        check = check_arrays(h5.root.z[:], cell.n, length)
    return Outcome(watch.seconds, [path], check, version=tables.__version__)


def w2(cell: Cell) -> Outcome:
    """W2: arrays of 1,000 float64 into one EArray (a row per run), rows in a table."""
    return _arrays(cell, ARRAY_LENGTH)


def w2l(cell: Cell) -> Outcome:
    """W2L: arrays of 100,000 float64 into one EArray, uncompressed."""
    return _arrays(cell, LARGE_ARRAY_LENGTH)


def w3(cell: Cell) -> Outcome:
    """W3: one row per run with ten float columns and the dict's fields as columns."""
    path = str(cell.path("floor-w3.h5"))
    with timed() as watch, tables.open_file(path, mode="w") as h5:
        table = h5.create_table("/", "runs", _W3_ROW, expectedrows=cell.n)
        rows = BatchWriter(table.append, BATCH_ROWS)
        for i, x in enumerate(x_values(cell.n)):
            scalars, info = w3_values(x, i)
            rows.add((i, x, *scalars.values(), info["label"], info["k"], info["flag"]))
        rows.flush()
    with tables.open_file(path) as h5:
        data = h5.root.runs.read()
    infos = [{"label": r["label"], "k": r["k"], "flag": r["flag"]} for r in data]
    check = check_w3({f"s{k}": data[f"s{k}"] for k in range(10)}, infos, cell.n)
    return Outcome(watch.seconds, [path], check, version=tables.__version__)


def _work_run(task: tuple[int, float, int]) -> tuple[int, float, float]:
    idx, x, iterations = task
    busy_work(iterations)
    return idx, x, _simulate(x)


def _timed_work_run(task: tuple[int, float, int]) -> tuple[int, float, float, float]:
    idx, x, iterations = task
    work_cpu = timed_busy_work(iterations)
    return idx, x, _simulate(x), work_cpu


def w4(cell: Cell) -> Outcome:
    """W4: a pool of 2 workers computes, the main process appends rows as results come."""
    work = measure_work_time(cell.iterations)
    work_cpu = 0.0  # the busy-work's CPU, as each worker measured it
    path = str(cell.path("floor-w4.h5"))
    context = multiprocessing.get_context(cell.start_method)
    tasks = [(i, x, cell.iterations) for i, x in enumerate(x_values(cell.n))]
    cpu_before = cpu_seconds()
    with timed() as watch, tables.open_file(path, mode="w") as h5, context.Pool(WORKERS) as pool:
        table = h5.create_table("/", "runs", _W1_ROW, expectedrows=cell.n)
        rows = BatchWriter(table.append, BATCH_ROWS)
        for idx, x, z, run_cpu in pool.imap_unordered(_timed_work_run, tasks, chunksize=4):
            rows.add((idx, x, z))
            work_cpu += run_cpu
        rows.flush()
        pool.close()
        pool.join()  # the workers' CPU counts once they ended
    cpu_above = cpu_above_work(cell.n, work_cpu, cpu_seconds() - cpu_before)
    with tables.open_file(path) as h5:
        data = h5.root.runs.read()
    check = check_z(data["z"][np.argsort(data["idx"])], cell.n)
    extra = {
        "work_s": work,
        "efficiency": parallel_efficiency(cell.n, work, watch.seconds),
        "cpu_above_s": cpu_above,
    }
    return Outcome(watch.seconds, [path], check, extra, version=tables.__version__)


def _work_chunk(tasks: list[tuple[int, float, int]]) -> list[tuple[int, float, float]]:
    return [_work_run(task) for task in tasks]


def on_dask(cell: Cell) -> Outcome:
    """W4dask / W1dask: chunks of runs through ``client.map``, rows appended as chunks
    complete (``as_completed``); chunks of ~0.1 s of work (W1: 1,000 runs)."""
    from distributed import as_completed

    busy = cell.workload == "W4dask"
    iterations = cell.iterations if busy else 0
    work = measure_work_time(iterations) if busy else 0.0
    size = 20 if busy else 1_000
    path = str(cell.path("floor-dask.h5"))
    tasks = [(i, x, iterations) for i, x in enumerate(x_values(cell.n))]
    chunks = [tasks[k : k + size] for k in range(0, len(tasks), size)]
    with dask_client() as client, timed() as watch, tables.open_file(path, mode="w") as h5:
        table = h5.create_table("/", "runs", _W1_ROW, expectedrows=cell.n)
        rows = BatchWriter(table.append, BATCH_ROWS)
        for future in as_completed(client.map(_work_chunk, chunks, pure=False)):
            for row in future.result():
                rows.add(row)
        rows.flush()
    with tables.open_file(path) as h5:
        data = h5.root.runs.read()
    check = check_z(data["z"][np.argsort(data["idx"])], cell.n)
    extra = {"work_s": work}
    if busy:
        extra["efficiency"] = parallel_efficiency(cell.n, work, watch.seconds)
    return Outcome(watch.seconds, [path], check, extra, version=tables.__version__)


def w5(cell: Cell) -> Outcome:
    """W5: open the W1 file and read the z column / one row / the whole table."""
    import pandas as pd

    path = cell.sources[0]
    with timed() as all_z, tables.open_file(path) as h5:
        z = h5.root.runs.col("z")
    middle = cell.n // 2
    with timed() as one, tables.open_file(path) as h5:
        z_one = float(h5.root.runs[middle]["z"])
    with tables.open_file(path) as h5:
        table = h5.root.runs
        float(table[middle]["z"])
        open_one = median_of(lambda j: float(table[j]["z"]), other_runs(cell.n))
    with timed() as frame, tables.open_file(path) as h5:
        df = pd.DataFrame(h5.root.runs.read())
    check = check_z(z, cell.n)
    if z_one != expected_z(x_values(cell.n)[middle]) or len(df) != cell.n:
        raise DataMismatchError(f"W5: run {middle}'s z or the DataFrame's length is wrong")
    extra = {"one_s": one.seconds, "open_one_s": open_one, "df_s": frame.seconds}
    return Outcome(all_z.seconds, [], check, extra, version=tables.__version__)


def w6(cell: Cell) -> Outcome:
    """W6: a new file with one table holding the rows of both inputs."""
    path = str(cell.path("floor-merged.h5"))
    with timed() as watch, tables.open_file(path, mode="w") as out:
        merged = out.create_table("/", "runs", _W1_ROW, expectedrows=cell.n)
        for source in cell.sources:
            with tables.open_file(source) as h5:
                merged.append(h5.root.runs.read())
    with tables.open_file(path) as h5:
        data: Any = h5.root.runs.read()
    order = np.argsort(data["idx"])
    check = check_z(data["z"][order], cell.n)
    if not np.array_equal(data["idx"][order], np.arange(cell.n)):
        raise DataMismatchError("W6: merged run indices are not 0 … N-1")
    return Outcome(watch.seconds, [path], check, version=tables.__version__)


def prepare_w6a(cell: Cell) -> Outcome:
    """W6A's input: ``n`` runs from ``offset``, each a 1 MB array (a row of one EArray)."""
    path = str(cell.path(f"floor-w6a-{cell.offset}.h5"))
    with timed() as watch:
        _write_arrays(path, cell.n, MERGE_ARRAY_LENGTH, cell.offset)
    return Outcome(watch.seconds, [path], version=tables.__version__)


def w6a(cell: Cell) -> Outcome:
    """W6A: a new file with both inputs' rows and arrays, copied block by block (64 MB)."""
    path = str(cell.path("floor-merged-arrays.h5"))
    block = max(1, BATCH_BYTES // (8 * MERGE_ARRAY_LENGTH))
    before = peak_mb_now()
    with timed() as watch, tables.open_file(path, mode="w") as out:
        runs = out.create_table("/", "runs", _W2_ROW, expectedrows=cell.n)
        atom = tables.Float64Atom()
        shape = (0, MERGE_ARRAY_LENGTH)
        merged = out.create_earray("/", "z", atom, shape=shape, expectedrows=cell.n)
        for source in cell.sources:
            with tables.open_file(source) as h5:
                runs.append(h5.root.runs.read())
                arrays = h5.root.z
                for start in range(0, arrays.nrows, block):
                    merged.append(arrays[start : start + block])
    with tables.open_file(path) as h5:
        idx = h5.root.runs.col("idx")
        check = check_some_arrays(lambda i: h5.root.z[i], idx, cell.n, MERGE_ARRAY_LENGTH)
    extra = {"base_mb": before}
    return Outcome(watch.seconds, [path], check, extra, version=tables.__version__)


RUNNERS = {
    "prepare": prepare,
    "W1": w1,
    "W1S": w1,
    "W2": w2,
    "W2L": w2l,
    "W3": w3,
    "W4": w4,
    "W4spawn": w4,
    "W4dask": on_dask,
    "W1dask": on_dask,
    "W5": w5,
    "W6": w6,
    "prepare W6A": prepare_w6a,
    "W6A": w6a,
    **RUNNERS_FOR["floor"],
}
