"""The pool's dispatch and pacing: several runs per message, the last ones shared out."""

from __future__ import annotations

import multiprocessing
from collections import deque
from typing import Any

import pytest

import pytraj as pt
from pytraj.run.caps import CapGate, ResourceCaps, ResourceUsage
from pytraj.run.jobs import RunJob, study_input
from pytraj.run.pool import (
    MAX_PACE_SECONDS,
    PACE_SECONDS,
    PoolLoop,
    PoolRunner,
    PoolWorker,
    WorkerPool,
    pace_seconds,
)
from pytraj.run.progress import Progress
from pytraj.run.session import InterruptControl, RunSession


class _Process:
    pid = 1
    sentinel = -1

    def is_alive(self) -> bool:
        return True


class _Recorder(WorkerPool):
    """A pool of stand-in workers that records what would be sent."""

    def __init__(self, size: int) -> None:
        self.workers = [PoolWorker.__new__(PoolWorker) for _ in range(size)]
        for worker in self.workers:
            worker.queue = deque()
            worker.ready = True
            worker.head_started = 0.0
        self.sent: list[tuple[int, list[int]]] = []

    def send_tasks(self, worker: PoolWorker, tasks: list[Any]) -> None:
        worker.queue.extend(tasks)
        self.sent.append((self.workers.index(worker), [task.idx for task in tasks]))


def _loop(n_runs: int, caps: ResourceCaps, mean_run: float) -> tuple[Any, _Recorder]:
    traj = pt.Trajectory("t")
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [float(i) for i in range(n_runs)]})
    job = RunJob(traj, list(range(n_runs)), _nothing, (), {})
    study = study_input(
        job, freeze_input=False, points_in_tasks=True, start_method="fork", niceness=None
    )
    session = RunSession(traj, Progress("off", n_runs, "t"), keep_values=False)
    # Ten runs of ``mean_run`` seconds seen so far (the loop sizes its messages by them).
    session.run_seconds, session.failed = 10 * mean_run, list(range(10))
    pool = _Recorder(2)
    runner = PoolRunner(multiprocessing.get_context("fork"), 2, caps=caps)
    gate = CapGate(caps, lambda: ResourceUsage(cpu=0.0, memory=0.0, swap=0.0))
    loop = PoolLoop(
        runner, job, study=study, pool=pool, session=session, control=InterruptControl(), gate=gate
    )
    return loop, pool


def _nothing(traj: pt.Trajectory) -> None:
    return None


def test_long_runs_go_several_to_a_message() -> None:
    loop, pool = _loop(100, ResourceCaps(), mean_run=0.005)
    loop.dispatch()
    # 0.1 s of queued work per worker at 5 ms a run: 20 runs each, one message each.
    assert pool.sent == [(0, list(range(20))), (1, list(range(20, 40)))]


def test_the_last_runs_are_shared_out_evenly() -> None:
    loop, pool = _loop(7, ResourceCaps(), mean_run=0.005)
    loop.dispatch()
    assert pool.sent == [(0, [0, 1, 2, 3]), (1, [4, 5, 6])]


def test_with_caps_every_run_is_its_own_message() -> None:
    loop, pool = _loop(5, ResourceCaps(cpu=50.0), mean_run=0.005)
    loop.dispatch()
    assert [len(indices) for _, indices in pool.sent] == [1, 1, 1, 1, 1]
    assert sorted(i for _, indices in pool.sent for i in indices) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("mean_run", "behind", "expected"),
    [
        (0.0, 5, PACE_SECONDS),  # run time not known yet
        (0.0001, 100, PACE_SECONDS),  # short runs: at least the base pace
        (0.005, 9, 0.0225),  # 5 ms runs, 9 queued: half of their 45 ms
        (0.005, 39, MAX_PACE_SECONDS),
        (1.0, 1, MAX_PACE_SECONDS),
    ],
)
def test_pace_is_half_the_queued_work_within_bounds(
    mean_run: float, behind: int, expected: float
) -> None:
    assert pace_seconds(mean_run, behind) == pytest.approx(expected)
