"""Resource caps: no new run starts while the machine is busier than the caps allow.

The caps are percentages of CPU, memory and swap in use on the whole machine, read
with psutil. While one of them is above its cap, pytraj starts no new run, except that
one run always proceeds (a study never stalls because something else uses the
machine). The reading is a plain function (:func:`read_usage`), replaceable on the
Environment (``env.resource_usage = my_reading``), which is how the tests force
"above the cap" without loading the machine.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from pytraj.run.options import invalid

__all__ = ["CapGate", "ResourceCaps", "ResourceUsage", "apply_niceness", "read_usage"]

log = logging.getLogger("pytraj.run")

#: How long one reading is trusted (seconds): psutil calls cost tens of microseconds,
#: and usage does not change meaningfully faster than this.
READING_TTL = 0.1


class ResourceUsage(NamedTuple):
    """Machine-wide usage in percent (0-100)."""

    cpu: float
    memory: float
    swap: float


def read_usage() -> ResourceUsage:
    """Read CPU, memory and swap usage of the machine with psutil.

    CPU usage is measured since the previous call (the first call of a process
    returns 0.0, which never holds a run back).
    """
    import psutil

    swap = psutil.swap_memory()
    return ResourceUsage(
        cpu=float(psutil.cpu_percent(interval=None)),
        memory=float(psutil.virtual_memory().percent),
        swap=float(swap.percent) if swap.total else 0.0,
    )


@dataclass(frozen=True, slots=True)
class ResourceCaps:
    """Caps on machine usage (percent) and the niceness of worker processes.

    Attributes
    ----------
    cpu, memory, swap
        No new run starts while usage is above the cap (100 disables a cap).
    niceness
        Scheduling priority of worker processes (``os.setpriority``; -20 highest,
        19 lowest; None leaves it unchanged). Serial runs keep the caller's priority.
    """

    cpu: float = 100.0
    memory: float = 100.0
    swap: float = 100.0
    niceness: int | None = None

    @property
    def active(self) -> bool:
        """Whether any cap can hold a run back."""
        return min(self.cpu, self.memory, self.swap) < 100.0

    def exceeded(self, usage: ResourceUsage) -> list[str]:
        """Names of the caps that ``usage`` is above, with the numbers."""
        over = []
        for name in ("cpu", "memory", "swap"):
            cap = getattr(self, name)
            value = getattr(usage, name)
            if value > cap:
                over.append(f"{name} {value:.0f}% > {cap:.0f}%")
        return over

    @classmethod
    def from_options(cls, cpu: Any, memory: Any, swap: Any, niceness: Any) -> ResourceCaps:
        """Validate the cap options of an Environment."""
        caps = []
        for name, value in (("cpu_cap", cpu), ("memory_cap", memory), ("swap_cap", swap)):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0.0 < value <= 100.0
            ):
                raise invalid(name, value, "expected a percentage in (0, 100]; 100 disables it")
            caps.append(float(value))
        if niceness is not None:
            if isinstance(niceness, bool) or not isinstance(niceness, int):
                raise invalid("niceness", niceness, "expected an integer from -20 to 19, or None")
            if not -20 <= niceness <= 19:
                raise invalid("niceness", niceness, "expected an integer from -20 to 19, or None")
            if sys.platform == "win32":  # pragma: no cover - POSIX is what CI runs
                raise invalid("niceness", niceness, "not supported on Windows; use None")
        return cls(caps[0], caps[1], caps[2], niceness)


class CapGate:
    """Decides whether a new run may start now.

    Parameters
    ----------
    caps
        The caps.
    reading
        Returns the current :class:`ResourceUsage` (``read_usage`` by default).
    """

    def __init__(self, caps: ResourceCaps, reading: Callable[[], ResourceUsage]) -> None:
        self.caps = caps
        self._reading = reading
        self._last: tuple[float, list[str]] | None = None
        self._holding = False
        if caps.active:
            reading()  # prime psutil's CPU counter: its first answer means nothing

    def allows(self, in_flight: int) -> bool:
        """Whether a run may start while ``in_flight`` runs are dispatched."""
        if in_flight == 0 or not self.caps.active:
            return True  # at least one run always proceeds
        now = time.monotonic()
        if self._last is None or now - self._last[0] >= READING_TTL:
            self._last = (now, self.caps.exceeded(self._reading()))
        over = self._last[1]
        if over and not self._holding:
            log.info("resource caps reached (%s): no new run starts", ", ".join(over))
        elif not over and self._holding:
            log.info("usage is below the caps again: runs start in parallel")
        self._holding = bool(over)
        return not over


def apply_niceness(niceness: int | None) -> None:
    """Set this process's scheduling priority (``None``: leave it)."""
    if niceness is None:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    except PermissionError:
        # Raising priority needs privileges; keep running at the current one.
        log.warning(
            "cannot set niceness %d for worker %d (needs privileges); keeping %d",
            niceness,
            os.getpid(),
            os.getpriority(os.PRIO_PROCESS, 0),
        )
