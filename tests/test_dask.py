"""Dask as an executor, on a real distributed.LocalCluster with 2 worker processes.

One cluster serves the whole module (starting worker processes costs seconds); a
test that kills a worker waits for the nanny to bring the cluster back to 2 workers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The test extra installs Dask: a missing one fails here rather than skipping the tests.
# (`make test-min` leaves this module out: it holds no storage tests.)
import dask
import distributed
import pytest

import pytraj as pt
from pytraj.errors import MissingDependencyError, OptionError, RunsFailedError


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    # A task is given up (KilledWorker) after its worker died twice, not four times:
    # the test of a run that kills its worker then restarts workers 4 times, not 8.
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
    with distributed.Client(cluster) as dask_client:
        yield dask_client
    cluster.close()


def study(path: Path, n: int, **options: Any) -> pt.Environment:
    options.setdefault("progress", False)
    env = pt.Environment("study", path, **options)
    traj = env.trajectory
    traj.add_parameter("x", 0)
    traj.add_parameter("scale", 2.5)
    traj.explore({"x": list(range(n))})
    return env


def product(traj: pt.Trajectory) -> int:
    traj.add_result("z", traj.x * traj.scale)
    traj.add_result("where", f"{os.getpid()}")
    return int(traj.x)


def raises_on_three(traj: pt.Trajectory) -> None:
    if traj.x == 3:
        raise ValueError("x must not be 3 here")
    traj.add_result("z", traj.x * traj.scale)


def by_point_id(traj: pt.Trajectory) -> dict[str, tuple[str, Any]]:
    out: dict[str, tuple[str, Any]] = {}
    for i in range(len(traj)):
        run = traj.runs[i]
        out[run.point_id] = (run.status, traj.results.z.get(i, None))
    return out


# -- results --------------------------------------------------------------------------------------
def test_results_equal_the_local_pool_by_point_id(client: Any, tmp_path: Path) -> None:
    env = study(tmp_path / "dask.h5", 300, executor=client)
    returned = env.run(product)
    env.close()
    pool = study(tmp_path / "pool.h5", 300, ncores=2)
    pool.run(product)
    pool.close()

    on_dask = pt.load(tmp_path / "dask.h5")
    on_pool = pt.load(tmp_path / "pool.h5")
    assert by_point_id(on_dask) == by_point_id(on_pool)
    assert by_point_id(on_dask)[on_dask.runs[7].point_id] == ("completed", 17.5)
    assert returned == [(i, i) for i in range(300)]
    # The runs ran in the worker processes, and say so.
    workers = set(client.run(os.getpid).values())
    assert {int(p) for p in on_dask.results.where.to_numpy()} <= workers
    assert on_dask.runs[0].pid in workers
    provenance = on_dask.runs[0].provenance
    assert provenance is not None
    assert provenance["executor"].startswith("dask distributed.Client (tcp://")
    assert provenance["pid"] == os.getpid()  # the writer: this process


def test_a_run_that_raises_on_a_worker_is_a_failed_run_with_its_traceback(
    client: Any, tmp_path: Path
) -> None:
    env = study(tmp_path / "raises.h5", 8, executor=client)
    with pytest.raises(RunsFailedError, match="x must not be 3 here") as caught:
        env.run(raises_on_three)
    env.close()
    assert caught.value.failed == [3]
    traj = pt.load(tmp_path / "raises.h5")
    assert [traj.runs[i].status for i in range(8)] == ["completed"] * 3 + ["failed"] + [
        "completed"
    ] * 4
    failure = traj.runs[3].failure
    assert failure.exc_type == "ValueError"
    assert "raise ValueError" in failure.traceback
    assert "in raises_on_three" in failure.traceback
    assert traj.results.z[4] == 10.0


def test_a_run_function_the_workers_cannot_import_fails_its_runs(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A module that only this process can import (the workers' sys.path lacks tmp_path).
    module = tmp_path / "only_here_h9.py"
    module.write_text(
        "def simulate(traj):\n    traj.add_result('z', traj.x + 1)\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import only_here_h9  # type: ignore[import-not-found]  # written just above

    env = study(tmp_path / "noimport.h5", 5, executor=client, on_error="continue")
    assert env.run(only_here_h9.simulate) == []
    traj = pt.load(tmp_path / "noimport.h5")
    for i in range(5):
        failure = traj.runs[i].failure
        assert traj.runs[i].status == "failed"
        assert failure.exc_type == "ModuleNotFoundError"
        assert "client.upload_file" in failure.message
        assert "No module named 'only_here_h9'" in failure.traceback
    # The way out the message names: ship the module, then retry the failed runs.
    client.upload_file(str(module))
    done = env.resume(only_here_h9.simulate, retry_failed=True)
    env.close()
    assert [i for i, _ in done] == [0, 1, 2, 3, 4]
    traj = pt.load(tmp_path / "noimport.h5")
    assert traj.results.z.to_numpy().tolist() == [1, 2, 3, 4, 5]
    assert traj.runs[2].attempt == 2


def marks_its_worker(traj: pt.Trajectory, folder: str) -> None:
    time.sleep(0.01)
    Path(folder, f"{traj.idx}-{os.getpid()}").touch()
    traj.add_result("z", traj.x * traj.scale)


@pytest.mark.slow
def test_a_worker_killed_mid_study_leaves_every_run_completed_exactly_once(
    client: Any, tmp_path: Path
) -> None:
    n = 400
    marks = tmp_path / "marks"
    marks.mkdir()
    env = study(tmp_path / "killed.h5", n, executor=client, on_error="continue")
    victim = sorted(client.run(os.getpid).values())[0]
    at_kill: list[int] = []

    def kill_mid_study() -> None:
        deadline = time.monotonic() + 60
        while len(list(marks.glob(f"*-{victim}"))) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        at_kill.append(len(list(marks.iterdir())))
        os.kill(victim, signal.SIGKILL)

    killer = threading.Thread(target=kill_mid_study)
    killer.start()
    returned = env.run(marks_its_worker, str(marks))
    killer.join()
    env.close()
    client.wait_for_workers(2, timeout=60)

    assert 20 <= at_kill[0] < n  # killed while working, mid-study
    traj = pt.load(tmp_path / "killed.h5")
    assert [traj.runs[i].status for i in range(n)] == ["completed"] * n
    assert sorted(i for i, _ in returned) == list(range(n))  # each once
    assert len(traj.results.z) == n
    assert all(traj.runs[i].attempt == 1 for i in range(n))
    assert traj.results.z.to_numpy().tolist() == [2.5 * i for i in range(n)]
    # Each stored run was done by a live worker: the victim's unfinished (or finished
    # but not yet fetched) batches were run again elsewhere.
    stored_by = {traj.runs[i].pid for i in range(n)}
    assert stored_by - {victim} <= {int(p.name.split("-")[1]) for p in marks.iterdir()}


def in_a_dask_worker() -> bool:
    try:
        distributed.get_worker()
    except ValueError:
        return False
    return True


def dies_at_150(traj: pt.Trajectory) -> None:
    if traj.x == 150 and in_a_dask_worker():
        os._exit(3)  # the worker process dies, as on a segfault or the OOM killer
    traj.add_result("z", traj.x * traj.scale)


@pytest.mark.slow
def test_a_run_that_kills_its_worker_fails_alone(client: Any, tmp_path: Path) -> None:
    env = study(tmp_path / "dies.h5", 200, executor=client, on_error="continue")
    returned = env.run(dies_at_150)
    env.close()
    client.wait_for_workers(2, timeout=60)
    traj = pt.load(tmp_path / "dies.h5")
    failed = {i: traj.runs[i].failure for i in range(200) if traj.runs[i].status != "completed"}
    assert list(failed) == [150], failed
    assert traj.runs[150].status == "failed"
    failure = traj.runs[150].failure
    assert failure.exc_type == "distributed.scheduler.KilledWorker"
    assert "its Dask worker died each time it ran this run" in failure.message
    # The runs batched with run 150 were run again one by one and completed once each.
    assert sorted(i for i, _ in returned) == [i for i in range(200) if i != 150]
    assert traj.results.z.to_series().tolist() == [2.5 * i for i in range(200) if i != 150]


def hangs_at_two(traj: pt.Trajectory) -> None:
    if traj.x == 2:
        time.sleep(600)  # a hung simulation
    traj.add_result("z", traj.x * traj.scale)


@pytest.mark.slow
def test_run_timeout_restarts_the_worker_and_fails_only_the_hung_run(
    client: Any, tmp_path: Path
) -> None:
    env = study(tmp_path / "hung.h5", 8, executor=client, run_timeout=2.0, on_error="continue")
    before = set(client.run(os.getpid).values())
    returned = env.run(hangs_at_two)
    env.close()
    client.wait_for_workers(2, timeout=60)
    traj = pt.load(tmp_path / "hung.h5")
    assert [traj.runs[i].status for i in range(8)] == ["completed"] * 2 + ["failed"] + [
        "completed"
    ] * 5
    failure = traj.runs[2].failure
    assert failure.exc_type == "TimeoutError"
    assert "exceeded run_timeout=2 s" in failure.message
    assert traj.runs[2].pid in before  # the hung worker ...
    assert traj.runs[2].pid not in set(client.run(os.getpid).values())  # ... was replaced
    assert sorted(i for i, _ in returned) == [0, 1, 3, 4, 5, 6, 7]
    assert all(traj.runs[i].attempt == 1 for i in range(8))


DRIVER = """
import sys, time
from pathlib import Path
import pytraj as pt
from distributed import Client, LocalCluster

def simulate(traj):
    time.sleep(0.05)
    Path(sys.argv[2], f"{traj.idx}").touch()
    traj.add_result("z", traj.x * 3)

if __name__ == "__main__":
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        env = pt.Environment("study", sys.argv[1], executor=client, progress=False)
        env.trajectory.add_parameter("x", 0)
        env.trajectory.explore({"x": list(range(120))})
        env.run(simulate)
        env.close()
    print("study complete")
"""


@pytest.mark.slow
def test_ctrl_c_keeps_what_was_stored_and_a_second_run_completes(tmp_path: Path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER), encoding="utf-8")
    markers = tmp_path / "markers"
    markers.mkdir()
    path = tmp_path / "interrupted.h5"
    command = [sys.executable, str(script), str(path), str(markers)]
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(markers.iterdir())) < 10:
        assert driver.poll() is None, driver.communicate()
        assert time.monotonic() < deadline, "no run started"
        time.sleep(0.05)
    driver.send_signal(signal.SIGINT)
    out, err = driver.communicate(timeout=120)
    assert driver.returncode != 0
    assert "study complete" not in out
    assert "interrupted" in err

    first = pt.load(path)
    stored = [i for i in range(120) if first.runs[i].status == "completed"]
    assert 0 < len(stored) < 120
    assert all(first.runs[i].status == "pending" for i in range(120) if i not in stored)
    assert [first.results.z[i] for i in stored] == [3 * i for i in stored]

    again = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr
    assert "study complete" in again.stdout
    final = pt.load(path)
    assert [final.runs[i].status for i in range(120)] == ["completed"] * 120
    assert final.results.z.to_numpy().tolist() == [3 * i for i in range(120)]
    # Stored runs were not redone: their first attempt is the one kept.
    assert all(final.runs[i].attempt == 1 for i in range(120))
    assert {final.runs[i].start for i in stored} == {first.runs[i].start for i in stored}


@pytest.mark.slow
def test_dask_jobqueue_local_jobs_run_a_small_study(tmp_path: Path) -> None:
    import cloudpickle
    import dask_jobqueue.local as jobqueue

    # Job workers start as fresh interpreters without the tests folder on their path:
    # ship this module's functions by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        with (
            jobqueue.LocalCluster(
                cores=1,
                processes=1,
                memory="1GB",
                walltime="00:10:00",
                scheduler_options={"dashboard_address": ":0"},
            ) as jobs,
            distributed.Client(jobs) as job_client,
        ):
            assert "distributed.cli.dask_worker" in jobs.job_script()
            jobs.scale(jobs=2)
            job_client.wait_for_workers(1, timeout=120)
            env = study(tmp_path / "jobs.h5", 20, executor=job_client)
            env.run(product)
            env.close()
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    traj = pt.load(tmp_path / "jobs.h5")
    assert traj.results.z.to_numpy().tolist() == [2.5 * i for i in range(20)]
    assert traj.runs[0].provenance["executor"].startswith("dask distributed.Client")


# -- options --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "value", "offered"),
    [
        ("cpu_cap", 80.0, "worker resources"),
        ("memory_cap", 80.0, "memory_limit"),
        ("swap_cap", 50.0, "memory_limit"),
        ("niceness", 5, "nice dask worker"),
        ("mp_context", "spawn", "LocalCluster(processes="),
    ],
)
def test_local_only_options_are_refused_with_what_dask_offers(
    client: Any, tmp_path: Path, option: str, value: Any, offered: str
) -> None:
    with pytest.raises(OptionError, match=option) as caught:
        pt.Environment("study", tmp_path / "o.h5", executor=client, **{option: value})
    assert offered in str(caught.value)
    assert not (tmp_path / "o.h5").exists()


def test_a_study_folder_the_workers_cannot_see_is_refused(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pretend the workers run elsewhere: their check reads another machine's disk.
    monkeypatch.setattr(client, "run", lambda func, *args: {"tcp://elsewhere:1": False})
    env = study(tmp_path / "blind.h5", 3, executor=client, study_dir=tmp_path / "shared")
    with pytest.raises(OptionError, match="cannot see the study folder") as caught:
        env.run(product)
    assert "study_dir=" in str(caught.value)
    assert "tcp://elsewhere:1" in str(caught.value)
    assert not (tmp_path / "shared").exists()  # the check leaves nothing behind


def test_the_study_folder_option_places_run_dirs(client: Any, tmp_path: Path) -> None:
    env = study(tmp_path / "dirs.h5", 2, executor=client, study_dir=tmp_path / "shared")
    env.run(writes_file)
    env.close()
    written = sorted(p.name for p in (tmp_path / "shared" / "runs").iterdir())
    assert len(written) == 2
    assert written[0].startswith("run_00000000_")


def writes_file(traj: pt.Trajectory) -> None:
    (traj.run_dir / "out.txt").write_text(str(traj.x))


def test_without_the_extra_the_error_names_it(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "from pytraj.errors import MissingDependencyError\n"
        "try:\n    import pytraj.run.dask_runner\n"
        "except MissingDependencyError as exc:\n    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert 'pip install "pytraj-explore[dask]"' in out
    assert issubclass(MissingDependencyError, ImportError)
