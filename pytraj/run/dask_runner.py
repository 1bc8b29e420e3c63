"""Dask as an executor: runs go to a ``distributed.Client``'s workers in batches.

``Environment(executor=client)`` with a :class:`distributed.Client` (a
``LocalCluster``, dask-jobqueue's ``SLURMCluster`` ...) runs the study here. The main
process stays the only writer: each batch of runs comes back as one future, and its
records are handed to the :class:`~pytraj.run.session.RunSession` as soon as the
future completes (:class:`distributed.as_completed`), never after the last one.

- **Sent once**: the study input (skeleton, run function, arguments) is pickled with
  cloudpickle once and installed on every worker, present and future (a replacement
  for a lost worker too), by a worker plugin; a task carries only its batch of points.
- **Batches** hold about :data:`BATCH_SECONDS` of work (measured from the runs that
  came back), so Dask's cost per task (about a millisecond) stays small beside short
  runs; each worker thread holds about two batches.
- **Failures** come back as failed runs with a traceback: a run that raises (as
  everywhere); a run function the worker cannot import (the whole batch fails with
  the ImportError). Dask reschedules the tasks of a lost worker itself; a batch whose
  workers died more often than ``distributed.scheduler.allowed-failures`` allows
  (KilledWorker) has its runs sent again one at a time, alone on the cluster, so
  only a run that kills its worker by itself ends failed, and a run that merely
  shared a worker with it completes. Every batch is stored exactly once, whole.
- **run_timeout**: runs go one per task, one task per worker thread; a watchdog on
  the worker reports a run over the limit, the main process cancels its task and
  records it failed, and the worker process exits (its nanny starts a new one).
- **Ctrl-C** cancels every outstanding future; batches that completed before the
  cancellation are stored whole, the others stay pending for the next run.

This module imports :mod:`distributed` at the top: it is imported only when a Client
is given (:func:`pytraj.run.executors.make_runner`), as ``distributed`` is an optional
extra (``pip install "pytraj-explore[dask]"``) that costs half a second to import.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
import traceback
import uuid
from collections import deque
from pathlib import Path
from typing import Any, NamedTuple

from pytraj.errors import MissingDependencyError, OptionError, RunError
from pytraj.run.caps import CapGate
from pytraj.run.jobs import RunJob, Runner, make_task, study_input
from pytraj.run.logs import emit_forwarded
from pytraj.run.session import InterruptControl, RunSession
from pytraj.run.worker import ChunkResult, StudyInput, Task, run_chunk
from pytraj.storage.records import FAILED, FailureRecord, RunRecord
from pytraj.trajectory.running import this_host

DASK_EXTRA = 'pip install "pytraj-explore[dask]"'

try:
    import cloudpickle
    import distributed
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError as _missing:  # pragma: no cover - the test extra installs it
    raise MissingDependencyError(
        f"running on Dask needs the optional extra 'dask' ({_missing}); install it with "
        f"{DASK_EXTRA} (it brings dask[distributed] and dask-jobqueue)"
    ) from _missing

__all__ = ["BATCH_SECONDS", "DASK_EXTRA", "DaskRunner", "StudyPlugin", "run_batch"]

log = logging.getLogger("pytraj.run")

#: A batch holds about this much work (seconds): Dask's ~1 ms per task is then ~1 %.
BATCH_SECONDS = 0.1
#: At most this many runs per batch (runs of microseconds would otherwise make
#: batches so long that Ctrl-C and a lost worker cost much work).
MAX_BATCH = 1024
#: Batches submitted per worker thread: one running, one ready behind it.
BATCHES_PER_THREAD = 2


# -- the worker side --------------------------------------------------------------------------
_BLOBS: dict[str, bytes] = {}
_STUDIES: dict[str, StudyInput] = {}
_LOCK = threading.Lock()


class StudyPlugin(WorkerPlugin):
    """Installs one study's pickled input on every worker (and every later one).

    Only the bytes are kept at setup: unpickling needs the run function's module,
    and a worker that cannot import it must fail its runs, not refuse the plugin.
    """

    def __init__(self, token: str, blob: bytes) -> None:
        self.token = token
        self.blob = blob
        self.name = f"pytraj-study-{token}"

    def setup(self, worker: Any) -> None:
        with _LOCK:
            _BLOBS[self.token] = self.blob

    def teardown(self, worker: Any) -> None:
        with _LOCK:
            _BLOBS.pop(self.token, None)
            _STUDIES.pop(self.token, None)


def _study(token: str) -> StudyInput:
    with _LOCK:
        study = _STUDIES.get(token)
        blob = _BLOBS.get(token)
    if study is not None:
        return study
    if blob is None:
        raise RunError(
            f"this Dask worker (pid {os.getpid()}) has no input for study {token}: "
            "its plugin was not installed (was the worker started after the study ended?)"
        )
    study = cloudpickle.loads(blob)
    with _LOCK:
        _STUDIES[token] = study
    return study


def run_batch(token: str, tasks: list[Task], run_timeout: float | None = None) -> ChunkResult:
    """Run a batch of tasks on a Dask worker (a top-level function: Dask imports it).

    A study input that cannot be unpickled here (the run function's module is not
    importable on the worker) makes every run of the batch a failed run carrying
    that traceback. With ``run_timeout`` (batches of one run), a watchdog restarts
    the worker when the run exceeds it (:func:`_expire`).
    """
    try:
        study = _study(token)
    except Exception as exc:
        text = "".join(traceback.format_exception(exc))
        why = (
            f"the Dask worker {this_host()} (pid {os.getpid()}) could not load the run "
            f"function ({type(exc).__name__}: {exc}); make its module importable on the "
            "workers: install it there, or client.upload_file('module.py')"
        )
        name = f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins.")
        records = [_failed(task, name, why, text, pid=os.getpid()) for task in tasks]
        return ChunkResult([(record, None) for record in records], [], os.getpid())
    if run_timeout is None:
        return run_chunk(study, tasks)
    worker = distributed.get_worker()
    watchdog = threading.Timer(
        run_timeout, _expire, (worker, worker.get_current_task(), token, tasks[0].idx)
    )
    watchdog.daemon = True
    watchdog.start()
    try:
        return run_chunk(study, tasks)
    finally:
        watchdog.cancel()


#: Seconds a timed-out run's worker waits for the main process to cancel the task
#: before it exits (so that Dask does not start the run again elsewhere).
CANCEL_WAIT = 10.0


def _expire(worker: Any, key: str, token: str, idx: int) -> None:
    """A run exceeded ``run_timeout``: tell the main process, then end this worker
    process (the only way to stop a running Python function); its nanny starts a new one.
    """
    worker.log_event(
        _timeout_topic(token), {"key": key, "idx": idx, "pid": os.getpid(), "host": this_host()}
    )
    deadline = time.monotonic() + CANCEL_WAIT
    while time.monotonic() < deadline:
        state = getattr(getattr(worker, "state", None), "tasks", {}).get(key)
        if state is None or state.state in ("cancelled", "released", "forgotten"):
            break
        time.sleep(0.02)
    os._exit(70)  # EX_SOFTWARE; the nanny restarts the worker


def _timeout_topic(token: str) -> str:
    return f"pytraj-timeout-{token}"


def _failed(task: Task, exc_type: str, message: str, text: str, *, pid: int) -> RunRecord:
    when = time.time()
    return RunRecord(
        idx=task.idx,
        point_id=task.point_id,
        status=FAILED,
        attempt=task.attempt,
        start=when,
        finish=when,
        host=this_host(),
        pid=pid,
        failure=FailureRecord(task.idx, task.attempt, exc_type, message, text),
    )


# -- the main process ---------------------------------------------------------------------------
class _Batch(NamedTuple):
    tasks: list[Task]
    #: A single run sent alone after its batch's workers died: a further death fails it.
    isolated: bool


class DaskRunner(Runner):
    """Run on the workers of a :class:`distributed.Client`.

    Parameters
    ----------
    client
        The Client; its cluster may grow and shrink while the study runs.
    freeze_input
        Unpickle the run function's arguments once per worker (see
        :class:`~pytraj.run.options.ParallelOptions`).
    run_timeout
        Seconds after which a run's worker is restarted and the run recorded failed;
        runs are then sent one per task, one task per worker thread.
    """

    def __init__(
        self, client: Any, *, freeze_input: bool = False, run_timeout: float | None = None
    ) -> None:
        self.client = client
        self.freeze_input = freeze_input
        self.run_timeout = run_timeout

    def threads(self) -> int:
        """Worker threads the cluster has now (at least 1: jobs may still be queued)."""
        return max(1, sum(self.client.nthreads().values()))

    def preflight(self, job: RunJob) -> None:
        try:
            cloudpickle.dumps((job.func, job.args, job.kwargs))
        except Exception as exc:
            raise RunError(
                f"cannot send {getattr(job.func, '__qualname__', job.func)!r} and its "
                f"arguments to Dask workers: they cannot be pickled ({type(exc).__name__}: "
                f"{exc})"
            ) from exc
        check_shared_folder(self.client, job.traj.study_dir)

    def execute(
        self, job: RunJob, session: RunSession, control: InterruptControl, gate: CapGate
    ) -> None:
        if not job.indices:
            return
        study = study_input(
            job,
            freeze_input=self.freeze_input,
            points_in_tasks=True,
            start_method="dask",
            niceness=None,
        )
        plugin = StudyPlugin(study.token, cloudpickle.dumps(study))
        self.client.register_plugin(plugin, name=plugin.name)
        loop = _DaskLoop(self, job, study, session, control)
        if self.run_timeout is not None:
            self.client.subscribe_topic(_timeout_topic(study.token), loop.note_timeout)
        try:
            loop.run()
        finally:
            with contextlib.suppress(Exception):  # a cluster shutting down forgets it anyway
                self.client.unregister_worker_plugin(plugin.name)
                if self.run_timeout is not None:
                    self.client.unsubscribe_topic(_timeout_topic(study.token))


class _DaskLoop:
    """Submit batches, store them as they complete, stop on Ctrl-C."""

    def __init__(
        self,
        runner: DaskRunner,
        job: RunJob,
        study: StudyInput,
        session: RunSession,
        control: InterruptControl,
    ) -> None:
        self.runner = runner
        self.client = runner.client
        self.job = job
        self.token = study.token
        self.session = session
        self.control = control
        self.explored = [job.traj.node(path) for path in study.explored]
        self.pending: deque[int] = deque(job.indices)
        self.isolated: deque[int] = deque()  # runs of a batch whose workers died
        self.running: dict[Any, _Batch] = {}
        self.settled: set[int] = set()  # runs handed to the session
        self.done = distributed.as_completed()
        self.submitted = 0
        self.thread_count = 1
        self.asked = -math.inf  # when the thread count was last asked (monotonic clock)
        #: Keys of tasks whose run exceeded run_timeout, reported by worker watchdogs
        #: (appended from the client's event thread, taken by this loop).
        self.timed_out: deque[dict[str, Any]] = deque()
        self.per_thread = BATCHES_PER_THREAD if runner.run_timeout is None else 1

    def note_timeout(self, event: Any) -> None:
        """Called by Dask (the client's thread) for each timeout a watchdog logs."""
        _, message = event
        self.timed_out.append(message)

    def _threads(self) -> int:
        """The cluster's worker threads, asked of the scheduler at most once a second (a
        round trip each time; clusters grow and shrink in seconds, not milliseconds)."""
        now = time.monotonic()
        if now - self.asked >= 1.0:
            self.asked = now
            self.thread_count = self.runner.threads()
        return self.thread_count

    def _batch_size(self) -> int:
        threads = self._threads()
        if not self.session.count:
            return 1  # nothing measured yet: learn the run time from single runs
        mean = max(self.session.run_seconds / self.session.count, 1e-6)
        size = int(BATCH_SECONDS / mean)
        # Near the end, smaller batches keep every thread busy until the last run.
        tail = -(-len(self.pending) // (threads * BATCHES_PER_THREAD))
        if self.runner.run_timeout is not None:
            return 1  # a timeout restarts the worker: it must take only its own run along
        return max(1, min(size, MAX_BATCH, tail))

    def _submit(self) -> None:
        limit = self._threads() * self.per_thread
        if self.isolated:
            # One at a time with nothing else in flight: a run that kills its worker
            # can then take no other run down with it.
            if not self.running:
                self._send(_Batch([self._task(self.isolated.popleft())], isolated=True))
            return
        while self.pending and len(self.running) < limit:
            size = min(self._batch_size(), len(self.pending))
            self._send(_Batch([self._task(self.pending.popleft()) for _ in range(size)], False))

    def _send(self, batch: _Batch) -> None:
        self.submitted += 1
        future = self.client.submit(
            run_batch,
            self.token,
            batch.tasks,
            self.runner.run_timeout,
            key=f"pytraj-{self.token[:8]}-{self.submitted}-{uuid.uuid4().hex[:6]}",
            pure=False,
        )
        self.running[future] = batch
        self.done.add(future)

    def _task(self, idx: int) -> Task:
        return make_task(self.job, idx, False, self.explored)

    def run(self) -> None:
        try:
            while True:
                if self.control.aborted:
                    return
                if self.control.stopping:
                    self._stop()
                    return
                self._submit()
                if not self.running and not self.isolated and not self._requeue_unsettled():
                    return
                self._wait(0.2)
                self._expire_timed_out()
                for future in self.done.next_batch(block=False):
                    self._collect(future)
                self.session.maybe_commit()
        finally:
            if self.running:
                self.client.cancel(list(self.running))

    def _add(self, record: RunRecord, value: Any) -> None:
        self.settled.add(record.idx)
        self.session.add(record, value)

    def _requeue_unsettled(self) -> bool:
        """A last guard: runs sent but neither stored nor failed are sent again (Dask
        promises each future an outcome; this makes a silently missing run impossible)."""
        missing = sorted(set(self.job.indices) - self.settled)
        if not missing:
            return False
        log.warning("%d runs got no outcome from Dask; sending them again", len(missing))
        self.pending.extend(missing)
        return True

    def _wait(self, timeout: float) -> None:
        condition = self.done.thread_condition
        with condition:
            if not self.done.has_ready():
                condition.wait(timeout=timeout)

    def _expire_timed_out(self) -> None:
        """Cancel the tasks whose runs timed out (before Dask starts them again
        elsewhere) and record those runs failed."""
        while self.timed_out:
            message = self.timed_out.popleft()
            future = next((f for f in self.running if f.key == message["key"]), None)
            if future is None or future.status == "finished":
                continue  # done meanwhile, or its result arrived first: keep that
            batch = self.running.pop(future)
            self.client.cancel([future])
            limit = self.runner.run_timeout
            for task in batch.tasks:
                why = (
                    f"run {task.idx} exceeded run_timeout={limit:g} s (its Dask worker "
                    f"process {message['pid']} on {message['host']} was restarted)"
                )
                record = _failed(task, "TimeoutError", why, why + "\n", pid=message["pid"])
                record.host = str(message["host"])
                self._add(record, None)

    def _stop(self) -> None:
        """Ctrl-C: cancel what is outstanding, store the batches that completed whole."""
        outstanding = [f for f in self.running if f.status not in ("finished", "error")]
        if outstanding:
            self.client.cancel(outstanding)
        for future in list(self.running):
            if future.status in ("finished", "error"):
                self._collect(future)
        log.warning(
            "interrupted: %d batches of runs cancelled on the Dask cluster; their runs stay "
            "pending",
            len(outstanding),
        )
        self.running.clear()

    def _collect(self, future: Any) -> None:
        batch = self.running.get(future)
        if batch is None:  # cancelled by us, and settled already
            return
        status = future.status
        if status in ("pending", "lost"):
            # It finished, but the worker holding its result died before we fetched
            # it: Dask computes it again. Wait for that; its runs are not lost.
            self.done.add(future)
            return
        del self.running[future]
        if status == "cancelled":  # by someone else (a client restart): send it again
            self.pending.extendleft(reversed([task.idx for task in batch.tasks]))
            return
        if status == "finished":
            result: ChunkResult = future.result()
            emit_forwarded(result.logs)
            for record, value in result.outcomes:
                self._add(record, value)
            return
        exc = future.exception()
        if isinstance(exc, distributed.KilledWorker) and not batch.isolated:
            # One run may kill its worker each time, and the others in its batch (or
            # beside it on the worker) died with it: run each alone, once more.
            log.warning(
                "a batch of %d runs lost its Dask workers repeatedly; running them one at a time",
                len(batch.tasks),
            )
            self.isolated.extend(task.idx for task in batch.tasks)
            return
        text = "".join(traceback.format_exception(type(exc), exc, future.traceback()))
        name = f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins.")
        if isinstance(exc, distributed.KilledWorker):
            message = (
                "its Dask worker died each time it ran this run (KilledWorker: the worker "
                "process was killed or crashed, e.g. out of memory)"
            )
        else:
            message = f"the Dask task running it failed ({type(exc).__name__}: {exc})"
        for task in batch.tasks:
            self._add(_failed(task, name, f"run {task.idx}: {message}", text, pid=0), None)


def check_shared_folder(client: Any, folder: Path) -> None:
    """Refuse to start when the workers cannot see ``folder`` (``traj.run_dir`` lives there).

    Writes a marker file into the folder (created if needed, removed again if it was
    created here) and asks every worker whether it reads the marker.
    """
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OptionError(
            f"cannot create the study folder {folder} ({exc}); give a writable folder that "
            "the Dask workers share with Environment(study_dir=...)"
        ) from exc
    token = uuid.uuid4().hex
    marker = folder / f".pytraj-dask-check-{token}"
    try:
        marker.write_text(token)
        seen = client.run(_reads_marker, str(marker), token)
    finally:
        marker.unlink(missing_ok=True)
        if created:
            with contextlib.suppress(OSError):  # not empty: something else uses it now
                folder.rmdir()
    blind = sorted(address for address, ok in seen.items() if not ok)
    if blind:
        raise OptionError(
            f"the Dask workers {', '.join(blind)} cannot see the study folder {folder}, where "
            "traj.run_dir places each run's working directory; give a folder on a filesystem "
            "shared by this machine and the workers with Environment(study_dir=...)"
        )


def _reads_marker(path: str, token: str) -> bool:
    try:
        return Path(path).read_text() == token
    except OSError:
        return False
