"""The life of one run: the record it fills while it runs and leaves when it ends."""

from __future__ import annotations

import os
import socket
import time
import traceback

from pytraj.storage.records import COMPLETED, FAILED, FailureRecord, RunRecord

__all__ = ["failure_record", "finish_record", "start_record", "this_host", "this_pid"]

_HOST: str | None = None


_PID = os.getpid()


def _forked() -> None:
    global _PID  # noqa: PLW0603  # cached per process; a forked child has its own
    _PID = os.getpid()


if hasattr(os, "register_at_fork"):  # POSIX; spawned processes import this module afresh
    os.register_at_fork(after_in_child=_forked)


def this_host() -> str:
    """This machine's host name (looked up once per process)."""
    global _HOST  # noqa: PLW0603  # cached per process; the host does not change
    if _HOST is None:
        _HOST = socket.gethostname()
    return _HOST


def this_pid() -> int:
    """This process's id (kept per process, renewed in a forked child)."""
    return _PID


def start_record(idx: int, point_id: bytes, attempt: int) -> RunRecord:
    """The record of run ``idx`` as it starts: the run in progress.

    It is the one object a run makes: the run adds its values (and the per-run leaves it
    declares) to it, and :func:`finish_record` completes it, so a run builds no state
    that is copied into a record at its end.
    """
    return RunRecord(
        idx, point_id, COMPLETED, attempt, time.time(), 0.0, _HOST or this_host(), _PID
    )


def finish_record(record: RunRecord, failure: FailureRecord | None = None) -> RunRecord:
    """Complete the record of a run that ended: completed, or failed with ``failure``.

    A failed attempt keeps no partial results (its values would mix with a retry's), and
    still declares its new leaves: the producing tree will not declare them again.
    """
    record.finish = time.time()
    if failure is not None:
        record.status = FAILED
        record.values = {}
        record.failure = failure
    return record


def failure_record(idx: int, attempt: int, exc: BaseException, log: str = "") -> FailureRecord:
    """Describe an exception raised by run ``idx``."""
    return FailureRecord(
        idx=idx,
        attempt=attempt,
        exc_type=f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins."),
        message=str(exc),
        traceback="".join(traceback.format_exception(exc)),
        log=log,
    )
