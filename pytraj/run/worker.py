"""What runs inside a worker: the study input, one run, the worker loop.

A worker gets the :class:`StudyInput` once (the study skeleton, the run function and
its arguments) and rebuilds a private trajectory from it on in-memory storage. Each
run then arrives as a small :class:`Task` (index, attempt, point id and the values of
the explored parameters); the worker sets its trajectory to that point, calls the
function and sends back the :class:`~pytraj.storage.records.RunRecord` and the return
value. Workers never touch the study's file: the main process is the only writer.

Two entry points: :func:`worker_main` for pytraj's own pool (a loop over a pipe) and
:func:`run_chunk` for any :class:`concurrent.futures.Executor` (a top-level function,
so that only picklable top-level callables cross to the executor).
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import signal
import threading
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple

from pytraj.leaves.parameter import Parameter
from pytraj.run.caps import apply_niceness
from pytraj.run.logs import ForwardingHandler, RunCapture, install_forwarding
from pytraj.run.parentwatch import exit_with_parent
from pytraj.storage.memory import MemoryStorage
from pytraj.storage.records import FAILED, RunRecord, StudyDefinition
from pytraj.trajectory.running import failure_record
from pytraj.trajectory.trajectory import Trajectory
from pytraj.tree.node import quiet_shadowing

__all__ = [
    "ChunkResult",
    "StudyInput",
    "Task",
    "WorkerSession",
    "call_run",
    "current_start_method",
    "run_chunk",
    "worker_main",
]

log = logging.getLogger("pytraj.run")

Outcome = tuple[RunRecord, Any]


class Task(NamedTuple):
    """One run as a worker receives it.

    ``values`` are the explored parameters' values of the point, in the order of
    :attr:`StudyInput.explored` (None when the worker holds all explored values, with
    ``freeze_input``); ``extra`` are per-run positional arguments (``run_map``).
    """

    idx: int
    attempt: int
    point_id: bytes
    values: tuple[Any, ...] | None
    extra: tuple[Any, ...] = ()


@dataclass(slots=True)
class StudyInput:
    """Everything a worker needs once: the skeleton, the function, its arguments.

    Attributes
    ----------
    token
        Identifies one ``env.run`` call; workers of an executor cache their session by it.
    skeleton
        The study definition; explored values are left out unless ``freeze_input``.
    explored
        Full names of the explored parameters, in the order of :attr:`Task.values`.
    arguments
        ``pickle.dumps((args, kwargs))`` of the run function's extra arguments, or the
        ``(args, kwargs)`` tuple itself when it is inherited by forked workers.
    points_in_tasks
        Whether each task carries its point's explored values (else the skeleton
        holds every explored value).
    freeze_input
        Unpickle the arguments once and reuse them for every run of the worker
        (else each run gets a fresh copy).
    """

    token: str
    skeleton: StudyDefinition
    explored: tuple[str, ...]
    n_runs: int
    study_dir: str
    func: Callable[..., Any]
    arguments: bytes | tuple[tuple[Any, ...], dict[str, Any]]
    points_in_tasks: bool = True
    freeze_input: bool = False
    log_levels: dict[str, int] | None = None
    log_stdout: bool = False
    niceness: int | None = None
    start_method: str = ""
    main_pid: int = field(default_factory=os.getpid)


def call_run(
    traj: Trajectory,
    idx: int,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    capture: bool = False,
) -> Outcome:
    """Run ``func(traj, *args, **kwargs)`` as run ``idx`` of ``traj`` and close the run.

    An exception (or ``sys.exit``) in ``func`` gives a failed record with the
    traceback; an interrupt (KeyboardInterrupt) leaves the run pending and propagates.
    """
    lifecycle = traj.lifecycle
    state = lifecycle.begin(idx)
    try:
        if capture:
            captured = RunCapture()
            try:
                with captured:
                    value = func(traj, *args, **kwargs)
            finally:
                state.log = captured.text  # complete once the capture has ended
        else:
            value = func(traj, *args, **kwargs)
    except (Exception, SystemExit) as exc:
        return lifecycle.finish(state, exc), None
    except BaseException:
        lifecycle.abandon()
        raise
    return lifecycle.finish(state), value


class _PointValue:
    """Stands in for an explored parameter's range in a worker: the current point only.

    The parameter reads ``range[idx]`` for the run it is set to; the worker holds just
    that run's value, so a run costs O(1) to ship however many points the study has.
    """

    __slots__ = ("n", "value")

    def __init__(self, n: int) -> None:
        self.n = n
        self.value: Any = None

    def __getitem__(self, index: int) -> Any:
        return self.value

    def __setitem__(self, index: int, value: Any) -> None:
        self.value = value

    def __len__(self) -> int:
        return self.n


class WorkerSession:
    """A worker's private trajectory for one study, and how it runs a task."""

    def __init__(self, study: StudyInput) -> None:
        self.study = study
        traj = from_skeleton(study.skeleton)
        traj.study_dir = Path(study.study_dir)
        traj.exploration.set_ids_valid()  # ids come from the main process with each task
        self.traj = traj
        self.points: list[_PointValue] = []
        if study.points_in_tasks:
            for path in study.explored:
                parameter = traj.node(path)
                assert isinstance(parameter, Parameter)  # the skeleton has it by construction
                holder = _PointValue(study.n_runs)
                parameter.bind_range(holder)
                self.points.append(holder)
        self.frozen: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        if isinstance(study.arguments, tuple):
            self.frozen = study.arguments
        elif study.freeze_input:
            self.frozen = pickle.loads(study.arguments)
        # The worker's run table only carries ids and attempts; nothing is committed here.
        self._rows = traj.run_table.rows

    def run(self, task: Task) -> Outcome:
        """Run one task and return its record and the function's return value."""
        rows = self._rows
        rows["point_id"][task.idx] = task.point_id
        rows["attempt"][task.idx] = task.attempt - 1  # next_attempt() then gives task.attempt
        if task.values is not None:
            for holder, value in zip(self.points, task.values, strict=True):
                holder.value = value
        if self.frozen is not None:
            args, kwargs = self.frozen
        else:
            # A fresh copy per run: a run that changes its arguments cannot affect the next.
            args, kwargs = pickle.loads(self.study.arguments)  # type: ignore[arg-type]  # bytes here
        if task.extra:
            args = (*task.extra, *args)
        # A name that shadows warns once, in the main process, when its records arrive.
        with quiet_shadowing():
            return call_run(
                self.traj, task.idx, self.study.func, args, kwargs, capture=self.study.log_stdout
            )


def from_skeleton(skeleton: StudyDefinition) -> Trajectory:
    """Rebuild a trajectory from a study skeleton, on private in-memory storage."""

    return Trajectory.from_definition(skeleton, MemoryStorage(skeleton.name))


# -- pytraj's pool: the worker loop -------------------------------------------------------
_START_METHOD = ""
_drain_requested = False


def current_start_method() -> str:
    """The start method this worker process was started with ("" outside pytraj workers)."""
    return _START_METHOD


def _note_interrupt(signum: int, frame: Any) -> None:
    # Ctrl-C reaches the whole process group. A run is never interrupted: the worker
    # only stops starting the runs it has queued and hands them back.
    global _drain_requested  # noqa: PLW0603  # set from a signal handler
    _drain_requested = True


def worker_main(conn: Connection, study: StudyInput, death_signal: bool = False) -> None:
    """The loop of a pool worker: receive tasks, run them, send records back.

    The worker ends when the main process dies (``death_signal``: also by the Linux
    parent-death signal; see :mod:`pytraj.run.parentwatch`).

    Messages in: ``("tasks", [Task, ...])``, ``("drain",)`` (hand back queued tasks),
    ``("stop",)``. Messages out: ``("ready", pid, start method, logs)``, ``("done",
    record, value, logs)``, ``("skipped", [idx, ...], logs)``, ``("error", text)``.
    """
    global _START_METHOD, _drain_requested  # noqa: PLW0603  # per-process worker state
    signal.signal(signal.SIGINT, _note_interrupt)
    _START_METHOD = study.start_method
    exit_with_parent(study.main_pid, study.start_method, death_signal=death_signal)
    forwarder = install_forwarding(study.log_levels)
    try:
        apply_niceness(study.niceness)
        session = WorkerSession(study)
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ready", os.getpid(), study.start_method, forwarder.take()))
    queue: deque[Task] = deque()
    waiting = _message_check(conn)
    while True:
        while not queue or waiting():
            try:
                message = conn.recv()
            except EOFError:  # the main process went away
                return
            if message[0] == "tasks":
                queue.extend(message[1])
            elif message[0] == "drain":
                _drain_requested = True
            else:
                return
        if _drain_requested:
            _drain_requested = False
            conn.send(("skipped", [task.idx for task in queue], forwarder.take()))
            queue.clear()
            continue
        task = queue.popleft()
        record, value = session.run(task)
        try:
            _send_outcome(conn, record, value, forwarder)
        except OSError:  # the main process went away while the run was running
            return


def _message_check(conn: Connection) -> Callable[[], bool]:
    """A check whether a message waits in ``conn``: one ``poll`` system call on POSIX
    (``conn.poll()`` builds a selector for every call, once per run here)."""
    if os.name != "posix" or not hasattr(select, "poll"):
        return conn.poll
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)

    def waiting() -> bool:
        return bool(poller.poll(0))

    return waiting


def _send_outcome(
    conn: Connection, record: RunRecord, value: Any, forwarder: ForwardingHandler
) -> None:
    logs = forwarder.take()
    try:
        conn.send(("done", record, value, logs))
    except Exception as exc:  # the return value (or a log record) cannot be pickled
        _fail_unsendable(record, exc)
        conn.send(("done", record, None, []))


def _fail_unsendable(record: RunRecord, exc: BaseException) -> None:
    """Turn a record whose return value cannot travel into a failed one."""
    try:
        raise TypeError(
            f"run {record.idx} returned a value that cannot be sent to the main process "
            f"({type(exc).__name__}: {exc}); return picklable values, or store the value "
            "as a result with traj.add_result"
        ) from exc
    except TypeError as wrapped:
        record.failure = failure_record(record.idx, record.attempt, wrapped, record.log)
    record.status = FAILED
    record.values = {}


# -- any concurrent.futures executor --------------------------------------------------------
class ChunkResult(NamedTuple):
    """What :func:`run_chunk` returns: outcomes, forwarded log records, worker pid."""

    outcomes: list[Outcome]
    logs: list[logging.LogRecord]
    pid: int


_SESSIONS: dict[tuple[str, int], WorkerSession] = {}
_SESSIONS_LOCK = threading.Lock()


def _session_for(study: StudyInput) -> WorkerSession:
    # Executors reuse processes and threads across chunks: keep one session per study
    # and thread (a thread pool shares the process, and a trajectory runs one run at a
    # time), and drop sessions of earlier studies.
    key = (study.token, threading.get_ident())
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            for old in [k for k in _SESSIONS if k[0] != study.token]:
                del _SESSIONS[old]
    if session is None:
        session = WorkerSession(study)
        with _SESSIONS_LOCK:
            _SESSIONS[key] = session
    return session


def run_chunk(study: StudyInput, tasks: list[Task]) -> ChunkResult:
    """Run a chunk of tasks in an executor's worker (thread or process).

    Log records are forwarded only from a process that has no logging of its own
    (a spawned worker); a forked or cluster worker logs through its own handlers.
    """
    if threading.current_thread() is threading.main_thread() and os.getpid() != study.main_pid:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a run is never interrupted
    forwarder: ForwardingHandler | None = None
    root = logging.getLogger()
    if os.getpid() != study.main_pid and not root.handlers:
        forwarder = ForwardingHandler()
        root.addHandler(forwarder)
        for name, level in (study.log_levels or {}).items():
            logging.getLogger(name or None).setLevel(level)
    try:
        session = _session_for(study)
        outcomes = [session.run(task) for task in tasks]
    finally:
        if forwarder is not None:
            root.removeHandler(forwarder)
    if os.getpid() == study.main_pid:  # a thread pool: nothing is pickled
        return ChunkResult(outcomes, [], os.getpid())
    for position, (record, value) in enumerate(outcomes):
        try:
            pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            _fail_unsendable(record, exc)
            outcomes[position] = (record, None)
    return ChunkResult(outcomes, forwarder.take() if forwarder else [], os.getpid())
