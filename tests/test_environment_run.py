"""env.run: serial and pool runs, start methods, failures, time limits, freezing, logs."""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

import pytraj as pt
from pytraj.errors import RunError
from pytraj.io import load
from pytraj.run import Environment
from pytraj.run.caps import ResourceUsage
from pytraj.storage.records import COMPLETED

# -- run functions (top level: worker processes import them by name) -----------------------


def product(traj: pt.Trajectory, scale: float = 1.0, *, offset: float = 0.0) -> Any:
    traj.add_result("z", traj.x * traj.y * scale + offset)
    traj.add_derived_parameter("ratio", traj.x / traj.y)
    return (traj.idx, traj.x, traj.seed)


def slow_product(traj: pt.Trajectory) -> int:
    time.sleep(0.02)
    traj.add_result("z", traj.x * traj.y)
    return os.getpid()


def start_method_seen_from_inside(traj: pt.Trajectory) -> str:
    """Tell how this process was started from its own call stack."""
    stack = "".join(traceback.format_stack())
    traj.add_result("z", traj.x)
    if "forkserver.py" in stack:
        return "forkserver"
    if "spawn.py" in stack:
        return "spawn"
    if "popen_fork.py" in stack:
        return "fork"
    return "main"


def fails_at_two(traj: pt.Trajectory) -> float:
    if traj.x == 2.0:
        raise ValueError(f"boom at x={traj.x}")
    traj.add_result("z", traj.x)
    return traj.x


def hangs_at_two(traj: pt.Trajectory) -> int:
    if traj.x == 2.0:
        time.sleep(120)
    traj.add_result("z", traj.x)
    return os.getpid()


def grows_its_argument(traj: pt.Trajectory, seen: list[int]) -> int:
    seen.append(traj.idx)
    traj.add_result("seen_x", traj.x)  # the point reached the worker either way
    time.sleep(0.01)
    return len(seen)


def applies(traj: pt.Trajectory, transform: Any) -> float:
    return float(transform(traj.x))


def mapped(traj: pt.Trajectory, label: str, weight: float) -> str:
    traj.add_result("weighted", traj.x * weight)
    return f"{label}:{traj.idx}"


def talks(traj: pt.Trajectory) -> int:
    logging.getLogger("pytraj.test.worker").warning("hello from run %d", traj.idx)
    print(f"printed by run {traj.idx}")
    traj.add_result("z", traj.x)
    return os.getpid()


def priority(traj: pt.Trajectory) -> int:
    return os.getpriority(os.PRIO_PROCESS, 0)


def sleeps(traj: pt.Trajectory) -> int:
    time.sleep(0.25)
    traj.add_result("z", traj.x)
    return os.getpid()


def _square(value: float) -> float:
    return value * value


def uses_its_own_pool(traj: pt.Trajectory) -> float:
    with multiprocessing.get_context("fork").Pool(1) as inner:
        return float(inner.apply(_square, (traj.x,)))


def working_dir(traj: pt.Trajectory) -> str:
    (traj.run_dir / "out.txt").write_text(f"{traj.x}")
    return str(traj.run_dir)


# -- helpers -----------------------------------------------------------------------------------


def make_env(path: Path, xs: list[float], **options: Any) -> Environment:
    options.setdefault("progress", False)
    env = Environment("study", path, **options)
    traj = env.trajectory
    traj.add_parameter("x", 1.0)
    traj.add_parameter("y", 10.0)
    traj.explore(pt.cartesian_product({"x": xs, "y": [10.0, 20.0]}))
    return env


def stored_z(path: Path) -> dict[int, float]:
    traj = load(path, "study")
    return {int(i): traj.results.z[int(i)] for i in traj.results.z.runs}


# -- serial ------------------------------------------------------------------------------------


def test_serial_run_forwards_arguments_and_returns_sorted_results(tmp_path: Path) -> None:
    env = make_env(tmp_path / "s.h5", [1.0, 2.0, 3.0])
    traj = env.trajectory
    returned = env.run(product, 2.0, offset=1.0)
    assert [idx for idx, _ in returned] == list(range(6))
    assert [value[0] for _, value in returned] == list(range(6))
    assert [value[1] for _, value in returned] == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    seeds = [value[2] for _, value in returned]
    assert len(set(seeds)) == 6
    for idx, seed in enumerate(seeds):
        assert seed == int.from_bytes(traj.point_id(idx)[:8], "little") >> 1
    assert list(traj.results.z) == [21.0, 41.0, 41.0, 81.0, 61.0, 121.0]
    assert traj.derived_parameters.ratio[5] == 3.0 / 20.0
    assert all(traj.runs[i].status == "completed" for i in range(6))
    assert traj.runs[0].pid == os.getpid()
    env.close()
    assert stored_z(tmp_path / "s.h5") == dict(enumerate([21.0, 41.0, 41.0, 81.0, 61.0, 121.0]))


def test_one_run_when_nothing_is_explored(tmp_path: Path) -> None:
    env = Environment("single", tmp_path / "one.h5", progress=False)
    env.trajectory.add_parameter("x", 3.0)
    env.trajectory.add_parameter("y", 4.0)
    returned = env.run(product)
    seed = int.from_bytes(env.trajectory.point_id(0)[:8], "little") >> 1
    assert returned == [(0, (0, 3.0, seed))]
    assert env.trajectory.results.z[0] == 12.0
    assert len(env.trajectory.results.z) == 1
    env.close()


def test_run_dir_lives_in_the_study_folder_beside_the_file(tmp_path: Path) -> None:
    env = make_env(tmp_path / "files.h5", [1.0])
    returned = dict(env.run(working_dir))
    traj = env.trajectory
    for idx, folder in returned.items():
        path = Path(folder)
        assert path.parent == tmp_path.resolve() / "files_study" / "runs"
        assert path.name == f"run_{idx:08d}_{traj.point_id(idx).hex()[:8]}"
        assert (path / "out.txt").read_text() == "1.0"
    env.close()


# -- the pool ------------------------------------------------------------------------------------


def test_pool_stores_the_same_values_as_serial(tmp_path: Path) -> None:
    xs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    serial = make_env(tmp_path / "serial.h5", xs)
    serial.run(slow_product)
    serial.close()
    pool = make_env(tmp_path / "pool.h5", xs, ncores=2)
    returned = pool.run(slow_product)
    pool.close()
    assert stored_z(tmp_path / "serial.h5") == stored_z(tmp_path / "pool.h5")
    assert len(stored_z(tmp_path / "pool.h5")) == 12
    traj = load(tmp_path / "pool.h5", "study")
    pids = set(traj.runs.to_dataframe()["pid"])
    assert len(pids) >= 2
    assert os.getpid() not in pids
    assert pids == {pid for _, pid in returned}


def sleepy_product(traj: pt.Trajectory) -> None:
    time.sleep(0.002)
    traj.add_result("z", traj.x * traj.y)


def test_the_main_process_lets_results_gather_while_workers_are_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytraj.run import pool

    wakeups = []
    receive = pool.WorkerPool.receive

    def counted(self: pool.WorkerPool, timeout: float) -> Any:
        wakeups.append(time.monotonic())
        return receive(self, timeout)

    monkeypatch.setattr(pool.WorkerPool, "receive", counted)
    env = make_env(tmp_path / "paced.h5", [float(x) for x in range(200)], ncores=2)
    start = time.monotonic()
    env.run(sleepy_product)
    wall = time.monotonic() - start
    env.close()
    assert len(stored_z(tmp_path / "paced.h5")) == 400
    # 400 runs of 2 ms on 2 workers send 400 results: unpaced, that is about a wake-up
    # each; paced, at most one per PACE_SECONDS while every worker has work queued.
    assert len(wakeups) < 0.6 * 400, len(wakeups)
    assert len(wakeups) <= wall / pool.PACE_SECONDS + 60, (len(wakeups), wall)


@pytest.mark.parametrize("method", ["spawn", "forkserver", "fork"])
def test_workers_start_with_the_method_asked_for(tmp_path: Path, method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} is not available here")
    env = make_env(tmp_path / f"{method}.h5", [1.0, 2.0], ncores=2, mp_context=method)
    returned = env.run(start_method_seen_from_inside)
    assert {value for _, value in returned} == {method}
    assert len(env.trajectory.results.z) == 4
    env.close()


def test_a_failing_run_is_recorded_and_the_others_complete(tmp_path: Path) -> None:
    env = make_env(tmp_path / "fail.h5", [1.0, 2.0, 3.0], ncores=2)
    with pytest.raises(pt.RunsFailedError) as caught:
        env.run(fails_at_two)
    assert caught.value.failed == [2, 3]
    assert "ValueError: boom at x=2.0" in str(caught.value)
    traj = env.trajectory
    failure = traj.runs[2].failure
    assert failure is not None
    assert failure.exc_type == "ValueError"
    assert "fails_at_two" in failure.traceback
    assert "raise ValueError" in failure.traceback
    assert [traj.runs[i].status for i in range(6)] == ["completed"] * 2 + ["failed"] * 2 + [
        "completed"
    ] * 2
    env.close()
    stored = load(tmp_path / "fail.h5", "study")
    assert stored.runs[3].status == "failed"
    assert stored.runs[3].failure.message == "boom at x=2.0"
    assert sorted(stored.results.z.runs.tolist()) == [0, 1, 4, 5]


def test_on_error_continue_returns_the_completed_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = make_env(tmp_path / "cont.h5", [1.0, 2.0], on_error="continue")
    with caplog.at_level(logging.WARNING, logger="pytraj.run"):
        returned = env.run(fails_at_two)
    assert returned == [(0, 1.0), (1, 1.0)]
    assert "2 of 4 runs of 'study' failed: 2, 3" in caplog.text
    env.close()


@pytest.mark.slow
def test_run_timeout_kills_a_hung_run_and_replaces_its_worker(tmp_path: Path) -> None:
    env = make_env(tmp_path / "hang.h5", [1.0, 2.0, 3.0], ncores=2, run_timeout=1.5)
    start = time.monotonic()
    with pytest.raises(pt.RunsFailedError) as caught:
        env.run(hangs_at_two)
    assert time.monotonic() - start < 60
    assert caught.value.failed == [2, 3]
    traj = env.trajectory
    for idx in (2, 3):
        failure = traj.runs[idx].failure
        assert failure is not None
        assert failure.exc_type == "TimeoutError"
        assert "exceeded run_timeout=1.5 s" in failure.message
    assert [traj.runs[i].status for i in (0, 1, 4, 5)] == ["completed"] * 4
    env.close()


def test_a_run_may_start_processes_of_its_own(tmp_path: Path) -> None:
    env = make_env(tmp_path / "nested.h5", [2.0, 3.0], ncores=2)
    assert [value for _, value in env.run(uses_its_own_pool)] == [4.0, 4.0, 9.0, 9.0]
    env.close()


def test_run_timeout_with_one_core_uses_a_worker_process(tmp_path: Path) -> None:
    env = make_env(tmp_path / "one.h5", [1.0], run_timeout=30)
    returned = env.run(slow_product)
    assert {pid for _, pid in returned} != {os.getpid()}
    env.close()


# -- input freezing ------------------------------------------------------------------------


def test_without_freeze_input_each_run_gets_fresh_arguments(tmp_path: Path) -> None:
    env = make_env(tmp_path / "fresh.h5", [1.0, 2.0, 3.0, 4.0], ncores=2)
    returned = env.run(grows_its_argument, [])
    assert [value for _, value in returned] == [1] * 8
    env.close()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_freeze_input_reuses_the_arguments_in_each_worker(tmp_path: Path, method: str) -> None:
    env = make_env(
        tmp_path / "frozen.h5", [1.0, 2.0, 3.0, 4.0], ncores=2, freeze_input=True, mp_context=method
    )
    returned = env.run(grows_its_argument, [])
    assert list(env.trajectory.results.seen_x) == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]
    values = [value for _, value in returned]
    assert max(values) > 1  # the same list object served several runs of a worker
    assert sum(1 for value in values if value == 1) <= 2  # one first run per worker
    env.close()


def test_freeze_input_under_fork_hands_over_unpicklable_arguments(tmp_path: Path) -> None:
    env = make_env(
        tmp_path / "lambda.h5", [1.0, 2.0], ncores=2, freeze_input=True, mp_context="fork"
    )
    returned = env.run(applies, lambda value: value * 100)
    assert [value for _, value in returned] == [100.0, 100.0, 200.0, 200.0]
    env.close()


def test_unpicklable_arguments_without_freezing_are_refused_before_running(
    tmp_path: Path,
) -> None:
    env = make_env(tmp_path / "refused.h5", [1.0], ncores=2)
    with pytest.raises(RunError, match="cannot be pickled"):
        env.run(applies, lambda value: value)
    assert env.trajectory.run_table.counts()["completed"] == 0
    env.close()


# -- run_map, pipeline ---------------------------------------------------------------------


def test_run_map_gives_each_run_its_elements(tmp_path: Path) -> None:
    env = make_env(tmp_path / "map.h5", [1.0, 2.0], ncores=2)
    labels = [f"l{i}" for i in range(4)]
    returned = env.run_map(mapped, labels, [0.5, 1.0, 1.5, 2.0])
    assert returned == [(0, "l0:0"), (1, "l1:1"), (2, "l2:2"), (3, "l3:3")]
    assert list(env.trajectory.results.weighted) == [0.5, 1.0, 3.0, 4.0]
    with pytest.raises(pt.errors.InvalidValueError, match="has 3 elements but the trajectory"):
        env.run_map(mapped, labels[:3], [1.0] * 3)
    env.close()


def build(traj: pt.Trajectory) -> Any:
    traj.add_parameter("x", 1.0)
    traj.add_parameter("y", 2.0)
    traj.explore({"x": [1.0, 2.0, 3.0]})
    return product, (10.0,), {"offset": 0.5}


def test_pipeline_builds_the_study_and_runs_it(tmp_path: Path) -> None:
    env = Environment("piped", tmp_path / "pipe.h5", progress=False)
    returned = env.pipeline(build)
    assert [value[1] for _, value in returned] == [1.0, 2.0, 3.0]
    assert list(env.trajectory.results.z) == [20.5, 40.5, 60.5]
    env.close()


# -- logs and capture ---------------------------------------------------------------------


def test_worker_logs_reach_the_main_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = make_env(tmp_path / "logs.h5", [1.0, 2.0], ncores=2, mp_context="spawn")
    with caplog.at_level(logging.WARNING):
        returned = env.run(talks)
    worker_pids = {pid for _, pid in returned}
    records = [r for r in caplog.records if r.name == "pytraj.test.worker"]
    assert sorted(r.getMessage() for r in records) == [f"hello from run {i}" for i in range(4)]
    assert {r.process for r in records} == worker_pids
    env.close()


@pytest.mark.parametrize("ncores", [1, 2])
def test_log_stdout_stores_each_runs_log_and_output(tmp_path: Path, ncores: int) -> None:
    env = make_env(tmp_path / "captured.h5", [1.0], ncores=ncores, log_stdout=True)
    env.run(talks)
    env.close()
    traj = load(tmp_path / "captured.h5", "study")
    for idx in (0, 1):
        text = traj.runs[idx].log
        assert f"WARNING pytraj.test.worker: hello from run {idx}" in text
        assert f"printed by run {idx}" in text
        assert f"run {1 - idx}" not in text


# -- executors, caps, niceness -----------------------------------------------------------


def test_a_thread_pool_executor_stores_the_same_values(tmp_path: Path) -> None:
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        env = make_env(tmp_path / "threads.h5", [1.0, 2.0, 3.0], executor=pool)
        env.run(slow_product)
        env.close()
    assert stored_z(tmp_path / "threads.h5") == dict(
        enumerate([10.0, 20.0, 20.0, 40.0, 30.0, 60.0])
    )


@pytest.mark.slow
def test_a_spawning_process_pool_executor_works(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        env = make_env(tmp_path / "procs.h5", [1.0, 2.0], executor=pool)
        returned = env.run(slow_product)
        env.close()
    assert os.getpid() not in {pid for _, pid in returned}
    assert stored_z(tmp_path / "procs.h5") == {0: 10.0, 1: 20.0, 2: 20.0, 3: 40.0}


@pytest.mark.slow
def test_caps_above_the_limit_allow_one_run_then_parallel_again(tmp_path: Path) -> None:
    env = make_env(tmp_path / "caps.h5", [1.0, 2.0, 3.0, 4.0, 5.0], ncores=2, cpu_cap=50.0)
    traj = env.trajectory

    def reading() -> ResourceUsage:
        busy = len(traj.run_table.indices(COMPLETED)) < 4
        return ResourceUsage(cpu=95.0 if busy else 5.0, memory=10.0, swap=0.0)

    env.resource_usage = reading
    env.run(sleeps)
    rows = sorted(traj.run_table.rows.tolist(), key=lambda row: row[4])  # by start
    starts = [row[4] for row in rows]
    finishes = [row[5] for row in rows]
    for k in range(1, 4):  # above the cap: each run starts after the previous one finished
        assert starts[k] >= finishes[k - 1]
    later = list(zip(starts[4:], finishes[4:], strict=True))
    overlapping = any(
        a_start < b_finish and b_start < a_finish
        for i, (a_start, a_finish) in enumerate(later)
        for b_start, b_finish in later[i + 1 :]
    )
    assert overlapping  # below the cap again: runs in parallel
    env.close()


def test_niceness_is_applied_to_workers(tmp_path: Path) -> None:
    current = os.getpriority(os.PRIO_PROCESS, 0)
    env = make_env(tmp_path / "nice.h5", [1.0], ncores=2, niceness=max(current, 7))
    returned = env.run(priority)
    assert {value for _, value in returned} == {max(current, 7)}
    assert os.getpriority(os.PRIO_PROCESS, 0) == current
    env.close()


# -- provenance --------------------------------------------------------------------------


def test_provenance_is_recorded_and_stored(tmp_path: Path) -> None:
    env = make_env(tmp_path / "prov.h5", [1.0])
    before = time.time()
    env.run(product)
    env.close()
    provenance = load(tmp_path / "prov.h5", "study").provenance
    import numpy
    import pandas
    import tables

    assert provenance["numpy"] == numpy.__version__
    assert provenance["pandas"] == pandas.__version__
    assert provenance["tables"] == tables.__version__
    assert provenance["hdf5"] == tables.hdf5_version
    assert provenance["python"] == ".".join(map(str, sys.version_info[:3]))
    assert provenance["pytraj"] == pt.__version__
    assert provenance["platform"]
    assert provenance["user"]
    assert provenance["command_line"]
    assert before <= provenance["start"] <= provenance["finish"] <= time.time()


def test_the_file_is_complete_after_run_without_closing(tmp_path: Path) -> None:
    from pytraj.storage.hdf5.journal_format import journal_path_for

    env = make_env(tmp_path / "open.h5", [1.0, 2.0])
    env.run(product)
    assert not journal_path_for(tmp_path / "open.h5").exists()  # nothing left to repair
    script = "from pytraj.io import load; print(list(load(__import__('sys').argv[1]).results.z))"
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "open.h5")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent)),
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr
    assert done.stdout.strip() == "[10.0, 20.0, 20.0, 40.0]"
    env.trajectory.expand({"x": [3.0], "y": [10.0]})  # the trajectory goes on working
    assert [idx for idx, _ in env.run(product)] == [4]
    assert env.trajectory.results.z[4] == 30.0
