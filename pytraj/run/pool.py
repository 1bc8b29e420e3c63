"""pytraj's process pool: N worker processes, one pipe each, multiplexed by the main process.

Why not :class:`concurrent.futures.ProcessPoolExecutor`: it cannot kill the worker
of one hung run and carry on, it shares one queue (so Ctrl-C cannot stop queued runs
from starting), and it knows nothing of caps. Here every worker has its own duplex
:class:`~multiprocessing.connection.Connection`; the main process keeps a few tasks
queued in each worker (so a worker never waits for the main process between runs),
waits on all pipes and process sentinels at once (a selector kept for the job on POSIX,
:func:`multiprocessing.connection.wait` elsewhere), and knows at any time which worker
runs what.

:class:`WorkerPool` manages the processes; :class:`PoolRunner` drives them for a job.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import select
import selectors
import threading
import time
from collections import deque
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from pytraj.errors import RunError
from pytraj.run.caps import CapGate, ResourceCaps
from pytraj.run.jobs import RunJob, Runner, check_transferable, make_task, study_input
from pytraj.run.logs import emit_forwarded
from pytraj.run.session import InterruptControl, RunSession
from pytraj.run.worker import StudyInput, Task, worker_main
from pytraj.storage.records import FAILED, FailureRecord, RunRecord
from pytraj.trajectory.running import this_host

__all__ = ["PoolLoop", "PoolRunner", "PoolWorker", "WorkerPool", "pace_seconds"]

log = logging.getLogger("pytraj.run")

#: Seconds a worker gets to exit after being asked to stop, before it is killed.
STOP_GRACE = 5.0
#: A message to a worker carries about this much work (seconds), so that very short
#: runs do not pay one pipe round trip each.
CHUNK_SECONDS = 0.002
MAX_CHUNK = 64
#: Each worker holds about this much work (seconds) queued, so that it keeps running
#: while the main process waits for a CPU on a busy machine or commits a batch.
QUEUE_SECONDS = 0.1
MAX_QUEUE = 256
#: While every worker holds a next task, the main process wakes at most this often:
#: results gather in the pipes meanwhile, and each wake-up it saves is a core handed
#: back to a worker (on 2 cores, ~400 wake-ups a second cost 5 ms runs ~5 %).
PACE_SECONDS = 0.01
#: ... and, when runs are long enough that every worker holds more queued work, up to
#: half of that work's time, at most this long (5 ms runs on 2 workers: about 45
#: wake-ups a second instead of 100, each handling a few results).
MAX_PACE_SECONDS = 0.05


#: Watch the pipes with a selector kept for the whole job (POSIX); elsewhere
#: :func:`multiprocessing.connection.wait` builds one per call.
_SELECTOR = os.name == "posix" and hasattr(select, "poll")


def pace_seconds(mean_run: float, behind: int) -> float:
    """How long the main process may sleep between wake-ups while every worker holds
    ``behind`` runs queued behind its running one, runs taking ``mean_run`` seconds
    (0: not known yet): half the time those runs take, within :data:`PACE_SECONDS` and
    :data:`MAX_PACE_SECONDS`, so that no worker runs dry meanwhile."""
    return min(max(PACE_SECONDS, behind * mean_run / 2), MAX_PACE_SECONDS)


class PoolWorker:
    """One worker process, its pipe and the tasks it holds (the first one runs)."""

    __slots__ = ("conn", "head_started", "pid", "poller", "process", "queue", "ready", "started")

    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.pid: int = process.pid or 0
        #: Polls this worker's pipe alone (POSIX): one system call per check, where
        #: ``conn.poll()`` builds a selector each time.
        self.poller: Any = None
        if _SELECTOR:
            self.poller = select.poll()
            self.poller.register(conn.fileno(), select.POLLIN)
        self.queue: deque[Task] = deque()
        #: When the task at the head of the queue started (monotonic clock); the worker
        #: starts the next task the moment it sent the previous result.
        self.head_started = 0.0
        self.started = time.monotonic()
        self.ready = False

    def __repr__(self) -> str:
        return f"<PoolWorker pid={self.pid} queued={len(self.queue)}>"


class WorkerPool:
    """Start, feed, watch and stop the worker processes of one ``env.run``.

    Parameters
    ----------
    context
        The multiprocessing context (decides the start method).
    study
        The study input every worker gets once, when it starts.
    size
        Number of worker processes.
    """

    def __init__(self, context: BaseContext, study: StudyInput, size: int) -> None:
        self.context = context
        self.study = study
        self.size = size
        self.workers: list[PoolWorker] = []
        self.started_count = 0
        #: Every worker's pipe and process sentinel, registered once per worker.
        self._selector: selectors.BaseSelector | None = (
            selectors.DefaultSelector() if _SELECTOR else None
        )

    # -- processes -------------------------------------------------------------------
    def start(self) -> None:
        """Start all workers (they initialise concurrently)."""
        for _ in range(self.size):
            self.workers.append(self._spawn())

    def _spawn(self) -> PoolWorker:
        parent, child = self.context.Pipe(duplex=True)
        # Under fork the study input is inherited, not pickled: large skeletons and
        # functions that cannot be pickled (closures) cost nothing to hand over.
        process = self.context.Process(  # type: ignore[attr-defined]  # contexts have Process
            target=worker_main,
            # The parent-death signal follows the thread that starts the worker: ask
            # for it only from the main thread, which lives as long as the process.
            args=(child, self.study, threading.current_thread() is threading.main_thread()),
            name=f"pytraj-worker-{self.started_count}",
            # Not daemonic, so that a simulation may start processes of its own; a
            # worker exits by itself when its pipe to the main process closes.
            daemon=False,
        )
        process.start()
        child.close()
        self.started_count += 1
        worker = PoolWorker(process, parent)
        if self._selector is not None:
            self._selector.register(parent, selectors.EVENT_READ, worker)
            self._selector.register(process.sentinel, selectors.EVENT_READ, worker)
        return worker

    def _unwatch(self, worker: PoolWorker) -> None:
        if self._selector is None:
            return
        for handle in (worker.conn, worker.process.sentinel):
            with contextlib.suppress(KeyError, ValueError, OSError):  # not (or no longer) open
                self._selector.unregister(handle)

    def replace(self, worker: PoolWorker) -> PoolWorker:
        """Remove a dead or killed worker and start a new one in its place."""
        self._discard(worker)
        fresh = self._spawn()
        self.workers.append(fresh)
        log.info("started worker %d to replace worker %d", fresh.pid, worker.pid)
        return fresh

    def remove(self, worker: PoolWorker) -> None:
        """Remove a dead worker without replacing it."""
        self._discard(worker)

    def _discard(self, worker: PoolWorker) -> None:
        self._unwatch(worker)
        if worker in self.workers:
            self.workers.remove(worker)
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=STOP_GRACE)
        worker.conn.close()

    def kill(self, worker: PoolWorker) -> None:
        """Kill a worker at once (its current run is lost)."""
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=STOP_GRACE)

    # -- messages --------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Tasks sent to workers and not yet answered."""
        return sum(len(worker.queue) for worker in self.workers)

    def send_tasks(self, worker: PoolWorker, tasks: list[Task]) -> None:
        """Queue tasks in a worker."""
        if not worker.queue:
            worker.head_started = time.monotonic()
        worker.queue.extend(tasks)
        worker.conn.send(("tasks", tasks))

    def broadcast(self, message: tuple[Any, ...]) -> None:
        """Send a control message to every live worker."""
        for worker in self.workers:
            with contextlib.suppress(OSError):  # a dying worker: its sentinel reports it
                worker.conn.send(message)

    def receive(self, timeout: float) -> Iterator[tuple[PoolWorker, tuple[Any, ...] | None]]:
        """Wait up to ``timeout`` seconds; yield ``(worker, message)`` for every message
        waiting, and ``(worker, None)`` for a worker whose process ended."""
        ready: list[PoolWorker] = []
        if self._selector is not None:
            if not self.workers:  # nothing to watch: wait as a selector would
                time.sleep(max(timeout, 0.0))
                return
            for key, _events in self._selector.select(timeout):
                if key.data not in ready:
                    ready.append(key.data)
        else:
            by_handle: dict[Any, PoolWorker] = {}
            for worker in self.workers:
                by_handle[worker.conn] = worker
                by_handle[worker.process.sentinel] = worker
            for handle in wait(list(by_handle), timeout=timeout):
                if by_handle[handle] not in ready:
                    ready.append(by_handle[handle])
        for worker in ready:
            if worker in self.workers:  # not replaced by an earlier message's handling
                yield from self._drain(worker)

    def _drain(self, worker: PoolWorker) -> Iterator[tuple[PoolWorker, tuple[Any, ...] | None]]:
        poll = worker.conn.poll if worker.poller is None else worker.poller.poll
        while True:
            try:
                if not poll(0):
                    break
                message = worker.conn.recv()
            except (EOFError, OSError):
                yield worker, None
                return
            yield worker, message
        if not worker.process.is_alive():
            yield worker, None

    # -- shutdown --------------------------------------------------------------------
    def close(self, *, kill: bool = False) -> None:
        """Stop every worker: ask them to exit (or kill them at once with ``kill``)."""
        if not kill:
            self.broadcast(("stop",))
        deadline = time.monotonic() + (0.0 if kill else STOP_GRACE)
        for worker in self.workers:
            if not kill:
                worker.process.join(timeout=max(deadline - time.monotonic(), 0.0))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=STOP_GRACE)
            self._unwatch(worker)
            worker.conn.close()
        self.workers.clear()
        if self._selector is not None:
            self._selector.close()


class PoolRunner(Runner):
    """Run on pytraj's own worker processes.

    Parameters
    ----------
    context
        The multiprocessing context.
    size
        Number of workers.
    freeze_input, run_timeout, caps
        See :class:`~pytraj.run.options.ParallelOptions` and
        :class:`~pytraj.run.caps.ResourceCaps`.
    """

    def __init__(
        self,
        context: Any,
        size: int,
        *,
        freeze_input: bool = False,
        run_timeout: float | None = None,
        caps: ResourceCaps | None = None,
    ) -> None:
        self.context = context
        self.size = size
        self.freeze_input = freeze_input
        self.run_timeout = run_timeout
        self.caps = caps or ResourceCaps()
        self.start_method = str(context.get_start_method())

    def preflight(self, job: RunJob) -> None:
        check_transferable(job.func, (job.args, job.kwargs), self.start_method)

    def execute(
        self, job: RunJob, session: RunSession, control: InterruptControl, gate: CapGate
    ) -> None:
        size = min(self.size, len(job.indices))
        if size == 0:
            return
        study = study_input(
            job,
            freeze_input=self.freeze_input,
            points_in_tasks=not self.freeze_input,
            start_method=self.start_method,
            niceness=self.caps.niceness,
            pickle_arguments=self.start_method != "fork",
        )
        pool = WorkerPool(self.context, study, size)
        loop = PoolLoop(
            self, job, study=study, pool=pool, session=session, control=control, gate=gate
        )
        try:
            pool.start()
            loop.run()
        finally:
            pool.close(kill=control.aborted or loop.failed_to_start)


class PoolLoop:
    """The main process's side of the pool for one job."""

    def __init__(
        self,
        runner: PoolRunner,
        job: RunJob,
        *,
        study: StudyInput,
        pool: WorkerPool,
        session: RunSession,
        control: InterruptControl,
        gate: CapGate,
    ) -> None:
        self.runner = runner
        self.job = job
        self.pool = pool
        self.session = session
        self.control = control
        self.gate = gate
        self.frozen = not study.points_in_tasks
        self.explored = [job.traj.node(path) for path in study.explored]
        self.pending: deque[int] = deque(job.indices)
        self.held = False
        self.drained = False
        self.failed_to_start = False
        self.woke = time.monotonic()

    # -- dispatch --------------------------------------------------------------------
    def _sizes(self) -> tuple[int, int]:
        """Tasks per message, and tasks queued per worker (one running, others ready)."""
        if not self.session.count:
            return 1, 2
        mean = max(self.session.run_seconds / self.session.count, 1e-9)
        chunk = 1 if self.gate.caps.active else max(1, min(MAX_CHUNK, int(CHUNK_SECONDS / mean)))
        queued = max(2, 2 * chunk, min(MAX_QUEUE, math.ceil(QUEUE_SECONDS / mean)))
        return chunk, queued

    def dispatch(self) -> None:
        chunk, limit = self._sizes()
        self.held = False
        while self.pending and self.pool.workers:
            worker = min(self.pool.workers, key=lambda w: len(w.queue))
            room = limit - len(worker.queue)
            if room <= 0:
                return
            if not self.gate.allows(self.pool.in_flight):
                self.held = True
                return
            count = min(chunk, room, len(self.pending))
            if not self.gate.caps.active:
                # One message tops the worker's queue up (one pipe write and one unpickling
                # for several runs, not one each); the last runs are shared out evenly.
                level = math.ceil(
                    (self.pool.in_flight + len(self.pending)) / len(self.pool.workers)
                )
                count = min(room, len(self.pending), max(count, level - len(worker.queue)))
            tasks = [
                make_task(self.job, self.pending.popleft(), self.frozen, self.explored)
                for _ in range(count)
            ]
            self.pool.send_tasks(worker, tasks)

    # -- the loop --------------------------------------------------------------------
    def run(self) -> None:
        while True:
            if self.control.aborted:
                return
            if self.control.stopping and not self.drained:
                self.drained = True
                self.pool.broadcast(("drain",))
            if not self.control.stopping:
                self.dispatch()
            if self.pool.in_flight == 0 and (self.control.stopping or not self.pending):
                return
            self._pace()
            for worker, message in self.pool.receive(self._timeout()):
                if message is None:
                    self._worker_died(worker)
                else:
                    self._handle(worker, message)
            self.woke = time.monotonic()
            self._check_timeouts()
            self.session.maybe_commit()

    def _pace(self) -> None:
        """Sleep out the rest of the pace (:data:`PACE_SECONDS`, longer for long runs)
        since the last wake-up, if every worker has a task queued behind the running one
        (none can run dry meanwhile)."""
        workers = self.pool.workers
        if self.control.stopping or not all(
            len(worker.queue) >= 2 and worker.ready for worker in workers
        ):
            return
        count = self.session.count
        mean = self.session.run_seconds / count if count else 0.0
        pace = pace_seconds(mean, min(len(worker.queue) for worker in workers) - 1)
        rest = min(pace - (time.monotonic() - self.woke), self._timeout())
        if rest > 0:
            time.sleep(rest)

    def _timeout(self) -> float:
        timeout = 0.05 if self.held else 0.2
        limit = self.runner.run_timeout
        if limit is not None:
            now = time.monotonic()
            for worker in self.pool.workers:
                if worker.queue and worker.ready:
                    timeout = min(timeout, max(worker.head_started + limit - now, 0.0) + 0.01)
        return timeout

    def _handle(self, worker: PoolWorker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "done":
            _, record, value, logs = message
            emit_forwarded(logs)
            worker.queue.popleft()
            worker.head_started = time.monotonic()
            self.session.add(record, value)
        elif kind == "ready":
            worker.ready = True
            worker.head_started = time.monotonic()
            emit_forwarded(message[3])
        elif kind == "skipped":
            skipped = set(message[1])
            emit_forwarded(message[2])
            kept = [task for task in worker.queue if task.idx not in skipped]
            returned = [task.idx for task in worker.queue if task.idx in skipped]
            worker.queue = deque(kept)
            self.pending.extendleft(reversed(returned))
        elif kind == "error":
            self.failed_to_start = True
            raise RunError(f"worker process {worker.pid} could not set up the study:\n{message[1]}")

    def _worker_died(self, worker: PoolWorker) -> None:
        worker.process.join(timeout=1.0)
        code = worker.process.exitcode
        if not worker.ready:
            self.failed_to_start = True
            raise RunError(
                f"worker process {worker.pid} ended (exit code {code}) before it was ready; "
                "the study input could not be set up in a new process (see the messages "
                "above). Check that the run function's module can be imported on its own"
            )
        self._lose_worker(
            worker, f"lost its worker process {worker.pid}, which died (exit code {code})"
        )

    def _check_timeouts(self) -> None:
        limit = self.runner.run_timeout
        if limit is None:
            return
        now = time.monotonic()
        for worker in list(self.pool.workers):
            if worker.queue and worker.ready and now - worker.head_started > limit:
                self.pool.kill(worker)
                self._lose_worker(
                    worker,
                    f"exceeded run_timeout={limit:g} s (its worker process {worker.pid} "
                    "was killed)",
                    timed_out=True,
                )

    def _lose_worker(self, worker: PoolWorker, reason: str, *, timed_out: bool = False) -> None:
        """Record the worker's current run as failed, requeue the rest, replace it."""
        if worker.queue:
            task = worker.queue.popleft()
            elapsed = time.monotonic() - worker.head_started
            self.session.add(_lost_run(task, worker.pid, elapsed, reason, timed_out), None)
            self.pending.extendleft(reversed([queued.idx for queued in worker.queue]))
            worker.queue.clear()
        if self.control.stopping:
            self.pool.remove(worker)
        else:
            self.pool.replace(worker)


def _lost_run(task: Task, pid: int, elapsed: float, reason: str, timed_out: bool) -> RunRecord:
    """The record of a run whose worker was killed or died."""
    finish = time.time()
    exc_type = "TimeoutError" if timed_out else "pytraj.errors.RunError"
    message = f"run {task.idx} {reason}"
    return RunRecord(
        idx=task.idx,
        point_id=task.point_id,
        status=FAILED,
        attempt=task.attempt,
        start=finish - elapsed,
        finish=finish,
        host=this_host(),
        pid=pid,
        failure=FailureRecord(task.idx, task.attempt, exc_type, message, message + "\n"),
    )
