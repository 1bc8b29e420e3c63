"""Named moments where the crash tests kill pytraj (test-only; no cost when unused).

Random delays rarely land inside a moment that lasts a millisecond, such as the
definition being written or a flush with the HDF5 file open. The crash tests name the
moment instead, in the environment variable ``PYTRAJ_CRASH_AT`` of the process to kill::

    PYTRAJ_CRASH_AT=<point>[@<n>][:group]

The process SIGKILLs itself the ``n``-th time (default 1) it reaches ``<point>``; with
``:group`` it kills its whole process group (its pool workers too). The variable is read
once, at import; when it is unset :func:`crash_point` returns at once.

Points (see :data:`POINTS`): ``run.start`` (``env.run`` entered, nothing stored yet),
``definition`` (a definition half written into HDF5), ``flush`` (HDF5 written and not
yet closed), ``column`` (one per-run column written, the others not yet), ``close``
(HDF5 fsynced, journal not yet removed), ``replay`` (one trajectory replayed from the
journal on open; or, when the journal holds nothing the file lacks, the file open for
that replay), ``rebuild`` (the damaged file moved aside and a new one created).

This module imports nothing from pytraj, so every layer may call it.
"""

from __future__ import annotations

import os
import signal

__all__ = ["ENV_VAR", "POINTS", "crash_point"]

ENV_VAR = "PYTRAJ_CRASH_AT"
POINTS = frozenset(["run.start", "definition", "flush", "column", "close", "replay", "rebuild"])


def _parse(text: str | None) -> tuple[str, int, bool] | None:
    if not text:
        return None
    target, _, scope = text.partition(":")
    point, _, count = target.partition("@")
    if point not in POINTS or scope not in ("", "group"):
        raise ValueError(
            f"{ENV_VAR}={text!r}: expected <point>[@<n>][:group] with a point among "
            f"{', '.join(sorted(POINTS))}"
        )
    return point, int(count or 1), scope == "group"


_PLAN = _parse(os.environ.get(ENV_VAR))
_seen = 0


def crash_point(name: str) -> None:
    """Die here if ``PYTRAJ_CRASH_AT`` names this point (and this is its n-th visit)."""
    global _seen  # noqa: PLW0603  # one counter per process, by design
    plan = _PLAN
    if plan is None or plan[0] != name:
        return
    _seen += 1
    if _seen != plan[1]:
        return
    if plan[2]:
        os.killpg(os.getpgid(0), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
