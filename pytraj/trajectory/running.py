"""The life of one run: what it holds while it runs and the record it leaves."""

from __future__ import annotations

import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from pytraj.storage.records import COMPLETED, FAILED, FailureRecord, LeafRecord, RunRecord

__all__ = ["RunState", "failure_record", "this_host"]

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


@dataclass(slots=True)
class RunState:
    """A run in progress: its identity and the per-run values added so far."""

    idx: int
    point_id: bytes
    attempt: int
    start: float = field(default_factory=time.time)
    values: dict[tuple[str, str], Any] = field(default_factory=dict)
    leaves: dict[str, LeafRecord] = field(default_factory=dict)
    log: str = ""

    def finish(self, failure: FailureRecord | None = None) -> RunRecord:
        """Turn the state into the record of a completed (or failed) attempt."""
        host = _HOST if _HOST is not None else this_host()
        if failure is None:
            # Positional: the per-run hot path (keywords cost twice as much here).
            return RunRecord(
                self.idx,
                self.point_id,
                COMPLETED,
                self.attempt,
                self.start,
                time.time(),
                host,
                _PID,
                self.values,
                list(self.leaves.values()) if self.leaves else [],
                None,
                self.log,
            )
        return RunRecord(
            idx=self.idx,
            point_id=self.point_id,
            status=FAILED,
            attempt=self.attempt,
            start=self.start,
            finish=time.time(),
            host=host,
            pid=_PID,
            # A failed attempt keeps no partial results: its values would mix with a retry's.
            # It still declares new leaves: the producing tree will not declare them again.
            values={},
            leaves=list(self.leaves.values()),
            failure=failure,
            log=self.log,
        )


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
