"""Progress of a study: a tqdm bar on a terminal, a periodic log line elsewhere."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

__all__ = ["LOG_INTERVAL", "Progress", "resolve_mode"]

log = logging.getLogger("pytraj.run")

#: Seconds between two progress log lines when stderr is not a terminal.
LOG_INTERVAL = 10.0


def resolve_mode(mode: str) -> str:
    """``"auto"`` becomes ``"bar"`` when stderr is a terminal, else ``"log"``."""
    if mode != "auto":
        return mode
    isatty = getattr(sys.stderr, "isatty", None)
    return "bar" if isatty is not None and isatty() else "log"


def _format_eta(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class Progress:
    """Show how many runs are done and failed, the rate and the time left.

    Parameters
    ----------
    mode
        ``"bar"``, ``"log"``, ``"off"`` or ``"auto"`` (see :func:`resolve_mode`).
    total
        Runs to do.
    name
        The trajectory's name, shown as the label.
    """

    def __init__(self, mode: str, total: int, name: str) -> None:
        self.mode = resolve_mode(mode)
        self.total = total
        self.name = name
        self.done = 0
        self.failed = 0
        self._start = time.monotonic()
        self._last_log = self._start
        self._bar: Any = None
        if self.mode == "bar":
            self._bar = _make_bar(total, name)

    def add_total(self, more: int) -> None:
        """More runs joined (a post-processing round expanded the study)."""
        self.total += more
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.refresh()

    def update(self, done: int, failed: int) -> None:
        """Count ``done`` more finished runs, of which ``failed`` failed."""
        if not done:
            return
        self.done += done
        self.failed += failed
        if self._bar is not None:
            if failed:
                self._bar.set_postfix_str(f"failed={self.failed}", refresh=False)
            self._bar.update(done)
        elif self.mode == "log":
            now = time.monotonic()
            if now - self._last_log >= LOG_INTERVAL:
                self._last_log = now
                log.info("%s", self.line())

    def line(self) -> str:
        """One line of text: ``mult: 120/400 runs (2 failed), 35.1 runs/s, ETA 8s``."""
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = self.done / elapsed
        text = f"{self.name}: {self.done}/{self.total} runs"
        if self.failed:
            text += f" ({self.failed} failed)"
        text += f", {rate:.1f} runs/s"
        left = self.total - self.done
        if left > 0 and rate > 0:
            text += f", ETA {_format_eta(left / rate)}"
        return text

    def close(self) -> None:
        """Finish the display (a last log line in log mode)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.mode == "log" and self.done:
            log.info("%s", self.line())


def _make_bar(total: int, name: str) -> Any:
    from tqdm import tqdm

    class _Bar(tqdm):
        # No monitor thread: worker processes are forked while the bar is shown, and
        # forking a process that runs threads risks deadlocks in the child.
        monitor_interval = 0

    return _Bar(total=total, desc=name, unit="run", file=sys.stderr, dynamic_ncols=True)
