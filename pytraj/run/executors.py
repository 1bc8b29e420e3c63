"""Three ways to execute the runs of a study, behind one small interface (:class:`Runner`).

- :class:`SerialRunner`: in the calling process, on the main trajectory itself;
- :class:`~pytraj.run.pool.PoolRunner`: pytraj's own worker processes, with time
  limits, resource caps and a graceful Ctrl-C;
- :class:`~pytraj.run.dask_runner.DaskRunner`: a Dask ``distributed.Client``, in
  batches, with the study input installed on the workers once;
- :class:`FuturesRunner`: any :class:`concurrent.futures.Executor` (a thread or
  process pool, Dask's ``client.get_executor()``), fed with chunks of runs through the
  top-level :func:`pytraj.run.worker.run_chunk`.

Every runner hands each finished run to a :class:`~pytraj.run.session.RunSession`,
which commits it in the main process. :func:`make_runner` picks one from the options.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures

from pytraj.errors import RunError
from pytraj.run.caps import CapGate, ResourceCaps
from pytraj.run.jobs import RunJob, Runner, check_transferable, make_task, study_input
from pytraj.run.logs import emit_forwarded
from pytraj.run.options import ParallelOptions
from pytraj.run.pool import PoolRunner
from pytraj.run.session import InterruptControl, RunSession
from pytraj.run.worker import ChunkResult, call_run, run_chunk
from pytraj.trajectory.running import start_record

__all__ = ["FuturesRunner", "PoolRunner", "Runner", "SerialRunner", "make_runner"]

log = logging.getLogger("pytraj.run")


def make_runner(parallel: ParallelOptions, caps: ResourceCaps) -> Runner:
    """The runner the options ask for."""
    if parallel.uses_dask:
        # Imported only for a Dask Client: distributed is an optional extra and costs
        # half a second to import.
        from pytraj.run.dask_runner import DaskRunner

        return DaskRunner(
            parallel.executor,
            freeze_input=parallel.freeze_input,
            run_timeout=parallel.run_timeout,
        )
    if parallel.executor is not None:
        return FuturesRunner(parallel.executor, freeze_input=parallel.freeze_input)
    if parallel.uses_pool:
        return PoolRunner(
            parallel.context or multiprocessing.get_context(),
            parallel.workers,
            freeze_input=parallel.freeze_input,
            run_timeout=parallel.run_timeout,
            caps=caps,
        )
    return SerialRunner()


# -- serial -----------------------------------------------------------------------------
class SerialRunner(Runner):
    """Run in the calling process, on the main trajectory (no copies, no pickling)."""

    def execute(
        self, job: RunJob, session: RunSession, control: InterruptControl, gate: CapGate
    ) -> None:
        traj, func, args, kwargs, extra = job.traj, job.func, job.args, job.kwargs, job.extra
        if job.log_stdout or extra is not None:
            self._execute_general(job, session, control)
            return
        lifecycle = traj.lifecycle
        starts = lifecycle.prepare_runs(job.indices)
        if starts is None:
            self._execute_records(job, session, control)
            return
        # The per-run hot path (call_run's steps inline): a run enters with a record
        # whose values the session takes as columns when the run ends plainly (no leaf
        # declared, no failure); any other run leaves through finish() as a record of its
        # own. The record is reused until a run hands it over. A run completed already
        # is refused by begin(), as run by run.
        session.open_lane(starts)
        enter, leave, add_plain, clock = (
            lifecycle.enter,
            lifecycle.leave,
            session.add_plain,
            time.time,
        )
        completed = starts.completed
        bare = not args and not kwargs
        record = start_record(-1, b"", 1)
        try:
            for position, idx in enumerate(starts.indices):
                if control.stopping:
                    break
                if completed and position in completed:
                    lifecycle.begin(idx)  # raises: completed runs are not run again
                record.idx = idx
                record.values = {}
                control.in_user_code = True
                try:
                    enter(record)
                    start = clock()
                    try:
                        value = func(traj) if bare else func(traj, *args, **kwargs)
                    except (Exception, SystemExit) as exc:
                        record.point_id = starts.point_id(position)
                        record.attempt = starts.attempt(position)
                        record.start = start
                        value, failed = None, True
                        lifecycle.finish(record, exc)  # the record turns into a failed one
                    except BaseException:
                        lifecycle.abandon()
                        raise
                    else:
                        finish, failed = clock(), False
                        leave()
                finally:
                    control.in_user_code = False
                if not failed and not record.leaves:
                    due = add_plain((position, start, finish, record.values), idx, value)
                else:  # a failure, or a new leaf or item: the run goes as a record
                    if not failed:
                        record.point_id = starts.point_id(position)
                        record.attempt = starts.attempt(position)
                        record.start, record.finish = start, finish
                    due = session.add(record, value)
                    record = start_record(-1, b"", 1)
                if due:
                    session.commit()
        except KeyboardInterrupt:
            if lifecycle.active is not None:  # interrupted between our own steps
                lifecycle.abandon()
            raise

    @staticmethod
    def _execute_records(job: RunJob, session: RunSession, control: InterruptControl) -> None:
        """:meth:`execute` run by run, each with a record of its own (indices that are not
        distinct plain run indices: :meth:`RunLifecycle.begin` handles or refuses them)."""
        traj, func, args, kwargs = job.traj, job.func, job.args, job.kwargs
        lifecycle = traj.lifecycle
        begin, finish, add = lifecycle.begin, lifecycle.finish, session.add
        try:
            for idx in job.indices:
                if control.stopping:
                    break
                control.in_user_code = True
                try:
                    state = begin(idx)
                    try:
                        value = func(traj, *args, **kwargs)
                    except (Exception, SystemExit) as exc:
                        record, value = finish(state, exc), None
                    except BaseException:
                        lifecycle.abandon()
                        raise
                    else:
                        record = finish(state)
                finally:
                    control.in_user_code = False
                if add(record, value):
                    session.commit()
        except KeyboardInterrupt:
            if lifecycle.active is not None:  # interrupted between our own steps
                lifecycle.abandon()
            raise

    @staticmethod
    def _execute_general(job: RunJob, session: RunSession, control: InterruptControl) -> None:
        """:meth:`execute` with captured output or per-run arguments (``run_map``)."""
        traj, func, args, kwargs, extra = job.traj, job.func, job.args, job.kwargs, job.extra
        capture = job.log_stdout
        try:
            for idx in job.indices:
                if control.stopping:
                    break
                run_args = (*extra[idx], *args) if extra is not None else args
                control.in_user_code = True
                try:
                    record, value = call_run(traj, idx, func, run_args, kwargs, capture=capture)
                finally:
                    control.in_user_code = False
                session.add(record, value)
                session.maybe_commit()
        except KeyboardInterrupt:
            if traj.lifecycle.active is not None:  # interrupted between our own steps
                traj.lifecycle.abandon()
            raise


# -- any concurrent.futures executor -----------------------------------------------------------
class FuturesRunner(Runner):
    """Run on a :class:`concurrent.futures.Executor` in chunks of runs.

    Runs are grouped into chunks (a few per worker) so that the study input, which
    travels with every chunk, costs little per run. Ctrl-C cancels the chunks that
    have not started; started chunks finish.
    """

    def __init__(
        self, executor: Executor, *, freeze_input: bool = False, workers: int | None = None
    ) -> None:
        self.executor = executor
        self.freeze_input = freeze_input
        found = getattr(executor, "_max_workers", None)
        self.workers = workers or (found if isinstance(found, int) else os.cpu_count() or 1)

    def _start_method(self) -> str:
        if isinstance(self.executor, ProcessPoolExecutor):
            context = getattr(self.executor, "_mp_context", None)
            if context is not None:
                return str(context.get_start_method())
        return "fork"  # threads and cluster executors need no import by name here

    def preflight(self, job: RunJob) -> None:
        check_transferable(job.func, (job.args, job.kwargs), self._start_method())

    def execute(
        self, job: RunJob, session: RunSession, control: InterruptControl, gate: CapGate
    ) -> None:
        # The study input travels with every chunk (an executor's workers cannot be
        # addressed one by one), so points always travel with their tasks; freezing
        # only decides whether a worker reuses its unpickled arguments.
        study = study_input(
            job,
            freeze_input=self.freeze_input,
            points_in_tasks=True,
            start_method=self._start_method(),
            niceness=None,
        )
        explored = [job.traj.node(path) for path in study.explored]
        pending = deque(job.indices)
        size = max(1, min(256, -(-len(pending) // (self.workers * 4))))
        running: dict[Future[ChunkResult], list[int]] = {}
        try:
            while pending or running:
                if control.aborted:
                    break
                if control.stopping:
                    for future in running:
                        future.cancel()
                while (
                    pending
                    and not control.stopping
                    and len(running) < 2 * self.workers
                    and gate.allows(sum(len(v) for v in running.values()))
                ):
                    chunk = [pending.popleft() for _ in range(min(size, len(pending)))]
                    tasks = [make_task(job, idx, False, explored) for idx in chunk]
                    running[self.executor.submit(run_chunk, study, tasks)] = chunk
                if not running:
                    break
                done, _ = wait_futures(list(running), timeout=0.2, return_when=FIRST_COMPLETED)
                for future in done:
                    chunk = running.pop(future)
                    if future.cancelled():
                        continue
                    try:
                        result = future.result()
                    except Exception as exc:  # the executor's failure, not a run's
                        raise RunError(
                            f"the executor could not run runs {chunk[0]}-{chunk[-1]} "
                            f"({type(exc).__name__}: {exc}); the runs that finished are stored"
                        ) from exc
                    emit_forwarded(result.logs)
                    for record, value in result.outcomes:
                        session.add(record, value)
                session.maybe_commit()
        finally:
            for future in running:
                future.cancel()
