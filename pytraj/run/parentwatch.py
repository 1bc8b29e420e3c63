"""Pool workers end when the main process dies, however it dies.

A worker waits on its pipe to the main process, but under fork it also inherits the
main process's ends of the pipes (its own and its siblings'), so a killed main process
closes no pipe and idle workers would wait for ever, parented to init. Two guards:

- on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the worker the
  moment its parent dies. The signal follows the parent *thread* that started the
  worker, so it is only asked for when that thread is the main thread (a pool started
  from another thread would lose its workers when that thread ends);
- elsewhere (or when the signal cannot be asked for), a daemon thread that notices the
  worker was re-parented (its parent pid changed) and ends the process. Under
  forkserver the parent is the fork server, which outlives a killed main process while
  it has children: the thread watches the main process itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from typing import Any, NoReturn

import psutil

__all__ = ["WATCH_INTERVAL", "exit_with_parent", "set_parent_death_signal"]

#: Seconds between two looks at the parent pid (a dead parent is noticed this late).
WATCH_INTERVAL = 0.2
#: From <linux/prctl.h>.
_PR_SET_PDEATHSIG = 1
#: Exit status of a worker that ends because its parent died (as after SIGKILL).
_ORPHAN_STATUS = 128 + signal.SIGKILL


def set_parent_death_signal() -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux only).

    Returns whether the request was accepted.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)) == 0
    except (OSError, AttributeError):  # no libc or no prctl: the watch thread remains
        return False


def _orphaned() -> NoReturn:
    # The main process is gone: nobody can receive a result, and nothing of this
    # process is stored; ending at once (no cleanup) is what its parent's kill meant.
    os._exit(_ORPHAN_STATUS)


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(WATCH_INTERVAL)
        if os.getppid() != parent:
            _orphaned()


def _watch_process(process: psutil.Process) -> None:
    while True:
        time.sleep(WATCH_INTERVAL)
        try:
            # is_running() also compares the start time: a reused pid is not the process.
            gone = not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
        except psutil.Error:
            gone = True
        if gone:
            _orphaned()


def _start_thread(target: Any, argument: Any) -> None:
    thread = threading.Thread(target=target, args=(argument,), name="pytraj-parent-watch")
    thread.daemon = True
    with contextlib.suppress(RuntimeError):  # interpreter shutting down: nothing to watch
        thread.start()


def exit_with_parent(main_pid: int, start_method: str, *, death_signal: bool) -> None:
    """Make this worker process end when its parent dies.

    Parameters
    ----------
    main_pid
        Pid of the process that started the pool. Under fork and spawn it is the
        parent: if the parent is another process already (the main process died while
        this worker was starting), the worker ends now. Under forkserver the parent is
        the fork server, which outlives the main process: the main process is watched.
    start_method
        How the worker was started (``"fork"``, ``"spawn"``, ``"forkserver"``).
    death_signal
        Also ask for the Linux parent-death signal (only when the worker was started
        from the main thread of its parent: the signal follows the starting thread).
    """
    if start_method == "forkserver":
        # The parent is the fork server, which outlives the main process while it has
        # children: watch the main process itself.
        try:
            main = psutil.Process(main_pid)
        except psutil.Error:
            _orphaned()
        _start_thread(_watch_process, main)
        return
    signalled = death_signal and set_parent_death_signal()
    parent = os.getppid()
    if parent != main_pid:
        _orphaned()  # the main process died while this worker was starting
    if not signalled:
        # The kernel's signal covers it otherwise; no thread then, which would make a
        # simulation's own os.fork() warn on Python >= 3.12 (forking with threads).
        _start_thread(_watch_parent, parent)
