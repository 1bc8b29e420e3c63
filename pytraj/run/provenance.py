"""Provenance of a study: which software ran it, where, by whom, from which script.

Recorded per trajectory in ``traj.provenance`` (stored with the definition): library
versions, Python, platform, user, the script's path and sha256, the command line, and
the git hook's record under ``"git"``; per run, host, pid, start, finish and attempt
are in the run table, and the writer session that stored the run (executor kind, git
commit ...) in ``provenance["writers"]``. When a later
session continues a stored study, the earlier sessions are kept in
``provenance["previous_sessions"]`` (their start, finish, user, host and command line).

Each ``env.run`` (``run_map``, ``pipeline``, ``resume``) also records the run function,
so that ``pytraj resume FILE`` can continue the study without its script being run:
``run_module`` and ``run_function`` (its ``__module__`` and ``__qualname__``),
``run_script`` (the absolute path of the file that defines it, the script itself for
``__main__``), ``run_arguments`` (how many arguments ``env.run`` forwarded) and
``run_mapped`` (whether ``run_map`` gave per-run arguments).
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import os
import platform
import shlex
import sys
import time
from typing import Any

from pytraj.trajectory.running import this_host

__all__ = [
    "add_writer",
    "collect",
    "finish_session",
    "open_writer_session",
    "record_run_function",
    "start_session",
]

_PACKAGES = {
    "pytraj": "pytraj-explore",
    "numpy": "numpy",
    "pandas": "pandas",
    "tables": "tables",
}
_SESSION_KEYS = ("start", "finish", "user", "host", "command_line", "pytraj")


def _version(distribution: str, module: str) -> str:
    loaded = sys.modules.get(module)
    found = getattr(loaded, "__version__", None)
    if isinstance(found, str):
        return found
    from importlib import metadata  # only when asked: it costs milliseconds to import

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return ""


def _hdf5_version() -> str:
    # Only when PyTables is loaded (a study stored in a file loads it): importing it
    # just to ask would cost an in-memory study a third of a second.
    tables = sys.modules.get("tables")
    return str(getattr(tables, "hdf5_version", "")) if tables is not None else ""


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return str(os.getuid()) if hasattr(os, "getuid") else ""


def _script() -> str:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path and os.path.isfile(path):
        return os.path.abspath(path)
    return sys.argv[0] if sys.argv and sys.argv[0] else "<interactive>"


def _sha256(path: str) -> str:
    """The script's sha256 ("" for an interactive session or an unreadable file), so
    that a study names the exact code that ran even outside a git repository."""
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return ""


def collect() -> dict[str, Any]:
    """Versions, platform, user, script and command line of this process."""
    info = dict(_collect_once())
    info["hdf5"] = _hdf5_version()
    return info


@functools.cache
def _collect_once() -> dict[str, Any]:
    # None of this changes while a process lives; looking it up costs milliseconds.
    info: dict[str, Any] = {
        name: _version(distribution, name) for name, distribution in _PACKAGES.items()
    }
    info["python"] = platform.python_version()
    info["platform"] = platform.platform()
    info["host"] = this_host()
    info["user"] = _user()
    info["script"] = _script()
    info["script_sha256"] = _sha256(info["script"])
    info["command_line"] = shlex.join(getattr(sys, "orig_argv", sys.argv))
    info["cwd"] = os.getcwd()
    return info


def start_session(provenance: dict[str, Any], *, first: bool) -> None:
    """Record this session's provenance, keeping stored earlier sessions.

    ``first``: the first ``env.run`` of this Environment (later calls keep its start).
    """
    if not first:
        return
    previous = list(provenance.get("previous_sessions", []))
    # Merge records and writer sessions belong to the trajectory's history.
    merges = provenance.get("merges")
    writers = provenance.get("writers")
    if "start" in provenance:
        previous.append({key: provenance.get(key, "") for key in _SESSION_KEYS})
    provenance.clear()
    provenance.update(collect())
    provenance["start"] = time.time()
    provenance["finish"] = 0.0
    if previous:
        provenance["previous_sessions"] = previous
    if merges:
        provenance["merges"] = merges
    if writers:
        provenance["writers"] = writers


def add_writer(
    provenance: dict[str, Any],
    *,
    file: str,
    trajectory: str,
    executor: str,
    extra: dict[str, Any] | None = None,
) -> int:
    """Record this writer session (one row per session) and return its position.

    ``extra`` adds fields to the row (the git hook's ``git_commit``, ``git_branch``,
    ``git_remote``, ``git_dirty``).

    Each run the session stores refers to it (:data:`~pytraj.storage.records.WRITER_KEY`),
    so ``traj.runs[i].provenance`` tells where run i was computed, also after merges.
    """
    info = collect()
    writers = list(provenance.get("writers", []))
    writers.append(
        {
            "file": file,
            "trajectory": trajectory,
            "host": info["host"],
            "pid": os.getpid(),
            "pytraj": info["pytraj"],
            "executor": executor,
            "start": time.time(),
            **(extra or {}),
        }
    )
    provenance["writers"] = writers
    return len(writers) - 1


def finish_session(provenance: dict[str, Any]) -> None:
    """Note when the latest ``env.run`` of this session finished."""
    provenance["finish"] = time.time()


def _defining_file(module_name: str) -> str:
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    return os.path.abspath(path) if isinstance(path, str) and os.path.isfile(path) else ""


def record_run_function(
    provenance: dict[str, Any], func: Any, *, n_arguments: int, mapped: bool
) -> None:
    """Record which function runs the study, and where it is defined.

    Parameters
    ----------
    provenance
        The trajectory's provenance (updated in place).
    func
        The run function.
    n_arguments
        How many positional and keyword arguments ``env.run`` forwards to it (they are
        not recorded: ``pytraj resume`` refuses to guess them).
    mapped
        Whether ``run_map`` gives it per-run arguments.
    """
    module = getattr(func, "__module__", None)
    module = module if isinstance(module, str) else ""
    qualname = getattr(func, "__qualname__", None)
    provenance["run_module"] = module
    provenance["run_function"] = qualname if isinstance(qualname, str) else ""
    provenance["run_script"] = _defining_file(module) if module else ""
    provenance["run_arguments"] = n_arguments
    provenance["run_mapped"] = mapped


def open_writer_session(
    provenance: dict[str, Any],
    *,
    first: bool,
    call: tuple[Any, int, bool],
    file: str,
    trajectory: str,
    executor: str,
    git: dict[str, Any] | None,
    writer_extra: dict[str, Any],
) -> int:
    """Record the start of one ``env.run``: the session, the run function, the git state
    and this writer; returns the writer's number (each run it stores refers to it).

    Parameters
    ----------
    provenance
        The trajectory's provenance (updated in place).
    first
        The first ``env.run`` of this Environment (see :func:`start_session`).
    call
        ``(run function, number of arguments forwarded to it, whether they are mapped)``.
    file, trajectory, executor
        Where the runs go and what runs them (see :func:`add_writer`).
    git
        The git hook's record, or None without a hook.
    writer_extra
        More fields of the writer's row (the git hook's).
    """
    func, n_arguments, mapped = call
    start_session(provenance, first=first)
    record_run_function(provenance, func, n_arguments=n_arguments, mapped=mapped)
    if git is not None:
        provenance["git"] = git
    return add_writer(
        provenance, file=file, trajectory=trajectory, executor=executor, extra=writer_extra
    )
