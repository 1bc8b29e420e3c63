"""One ``env.run`` call in the main process: committing, counting and Ctrl-C.

:class:`RunSession` receives every finished run from whichever executor ran it,
commits the records to the trajectory in batches (the main process is the only
writer), updates the progress display and keeps the return values and failures.
:class:`InterruptControl` turns Ctrl-C into flags the executors watch: the first one
lets running runs finish and starts no new ones; the second stops at once.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from types import FrameType, TracebackType
from typing import Any

from pytraj.run.progress import Progress
from pytraj.run.returns import ReturnValues
from pytraj.storage.records import COMPLETED, WRITER_KEY, RunRecord
from pytraj.storage.runbatch import LaneRun, RecordBatch, RunLane, RunStarts
from pytraj.trajectory.running import this_host, this_pid
from pytraj.trajectory.trajectory import Trajectory

__all__ = ["COMMIT_EVERY", "COMMIT_INTERVAL", "InterruptControl", "RunSession"]

log = logging.getLogger("pytraj.run")

#: A batch of finished runs is committed once it holds this many runs (every commit
#: builds its arrays and journal frame anew, a cost that fast runs share 1,024 ways) ...
COMMIT_EVERY = 1024
#: ... or once this many seconds passed since the previous commit.
COMMIT_INTERVAL = 0.2


class InterruptControl:
    """Flags set by Ctrl-C (SIGINT) while runs are executing.

    Used as a context manager around the runs; it installs its SIGINT handler only in
    the main thread (elsewhere signals cannot be handled, and the flags stay unset).
    """

    __slots__ = ("_previous", "aborted", "in_user_code", "stopping")

    def __init__(self) -> None:
        #: First Ctrl-C: finish running runs, start no new ones.
        self.stopping = False
        #: Second Ctrl-C: stop at once.
        self.aborted = False
        #: Serial runs set this while the run function executes, so that a second
        #: Ctrl-C can interrupt it right there (and only there).
        self.in_user_code = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            self.stopping = True
            log.warning(
                "interrupted: the runs in progress finish and are stored, no new run starts; "
                "press Ctrl-C again to stop at once"
            )
            return
        self.aborted = True
        if self.in_user_code:
            raise KeyboardInterrupt

    def __enter__(self) -> InterruptControl:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    @property
    def interrupted(self) -> bool:
        """Whether Ctrl-C was pressed at least once."""
        return self.stopping or self.aborted


class RunSession:
    """Collects finished runs, commits them in batches, counts and reports.

    Parameters
    ----------
    traj
        The main trajectory (the single writer).
    progress
        The progress display.
    writer
        Position of this writer session in ``provenance["writers"]`` (-1: none).
    keep_values
        Keep ``(idx, return value)`` of every completed run in :attr:`results`.
    """

    def __init__(
        self, traj: Trajectory, progress: Progress, writer: int = -1, *, keep_values: bool = True
    ) -> None:
        self.traj = traj
        self.progress = progress
        #: Position of this writer session in ``provenance["writers"]`` (-1: none).
        self.writer = writer
        #: ``(idx, return value)`` of the completed runs (empty unless ``keep_values``).
        self.results = ReturnValues()
        self._keep_values = keep_values
        self._completed = 0
        self.failed: list[int] = []
        self._batch = RecordBatch()
        self._batch_failed = 0
        #: Completed runs of the serial runner's lane, as columns (see :meth:`add_plain`).
        self._lane: RunLane | None = None
        self._last_commit = time.monotonic()
        self._due = time.time() + COMMIT_INTERVAL  # the same, as a time.time() for the lane
        #: Seconds of run time reported by records (worker side), for efficiency figures.
        self.run_seconds = 0.0

    def add(self, record: RunRecord, value: Any) -> bool:
        """Take one finished run (completed or failed); True when the batch is due for a
        commit (:meth:`maybe_commit` would commit it now: the caller calls :meth:`commit`)."""
        batch = self._batch
        if self.writer >= 0:
            record.values[WRITER_KEY] = self.writer
        batch.append(record)
        if record.status == COMPLETED:
            self._completed += 1
            if self._keep_values:
                self.results.add(record.idx, value)
        else:
            self.failed.append(record.idx)
            self._batch_failed += 1
        self.run_seconds += record.finish - record.start
        waiting = len(batch) + (len(self._lane) if self._lane is not None else 0)
        return waiting >= COMMIT_EVERY or time.monotonic() - self._last_commit >= COMMIT_INTERVAL

    def open_lane(self, starts: RunStarts) -> None:
        """Take the plain runs of a job through :meth:`add_plain` (runs gathered for an
        earlier job are committed first)."""
        if self._lane is not None and len(self._lane):
            self.commit()
        self._lane = RunLane(starts, this_host(), this_pid())

    def add_plain(self, run: LaneRun, idx: int, value: Any) -> bool:
        """Take one completed run of the lane (:meth:`open_lane`) that declared no leaf
        and captured no log: ``run`` is its position in the job, start and finish times
        (``time.time()``) and values, ``idx`` its index, ``value`` what the function
        returned. True when the batch is due for a commit, as :meth:`add` says."""
        lane = self._lane
        if lane is None:
            raise RuntimeError("RunSession.add_plain needs open_lane() first")
        runs = lane.runs
        runs.append(run)
        if self._keep_values:
            self.results.add(idx, value)
        return len(runs) + len(self._batch) >= COMMIT_EVERY or run[2] >= self._due

    def maybe_commit(self) -> None:
        """Commit the batch when it is big or old enough."""
        waiting = len(self._batch) + (len(self._lane) if self._lane is not None else 0)
        if waiting and (
            waiting >= COMMIT_EVERY or time.monotonic() - self._last_commit >= COMMIT_INTERVAL
        ):
            self.commit()

    def commit(self) -> None:
        """Commit the runs collected so far (they count as done once committed)."""
        self._last_commit = time.monotonic()
        self._due = time.time() + COMMIT_INTERVAL
        # One commit per batch (the storage flushes on its budget once per commit). The
        # lane's runs join the records as records when there are any: a batch with a
        # failure or a new leaf goes run by run, as it always did.
        lane = self._lane
        runs: Sequence[RunRecord] = self._batch
        failed = self._batch_failed
        if lane is not None and len(lane):
            self._completed += len(lane)
            self.run_seconds += lane.seconds()
            columns = lane.take({WRITER_KEY: self.writer} if self.writer >= 0 else {})
            if self._batch:
                self._batch.extend(columns)
            else:
                runs = columns
        if not runs:
            return
        self._batch, self._batch_failed = RecordBatch(), 0
        self.traj.lifecycle.commit(runs)
        self.progress.update(len(runs), failed)

    def failure_message(self) -> str | None:
        """What to tell about the runs that failed in this session (None: none failed)."""
        if not self.failed:
            return None
        traj = self.traj
        failed = sorted(self.failed)
        first = traj.run_table.failure(failed[0])
        shown = ", ".join(map(str, failed[:20])) + (" ..." if len(failed) > 20 else "")
        cause = f" (run {failed[0]}: {first.exc_type}: {first.message})" if first else ""
        return (
            f"{len(failed)} of {self.count} runs of {traj.name!r} failed: {shown}{cause}. "
            "The other runs are stored; traj.runs[i].failure holds each traceback, and "
            "env.resume(retry_failed=True) runs the failed ones again"
        )

    @property
    def count(self) -> int:
        """Runs finished so far (committed or not)."""
        lane = len(self._lane) if self._lane is not None else 0
        return self._completed + lane + len(self.failed)
