"""What to run, and what worker processes receive: jobs, study inputs, tasks.

A :class:`RunJob` names the runs to execute, the function and its arguments; a
:class:`Runner` executes it (:mod:`pytraj.run.executors`, :mod:`pytraj.run.pool`).
:func:`study_input` builds what every worker receives once, :func:`make_task` what
each run receives, and :func:`check_transferable` refuses, before anything starts, a
function that worker processes could not import.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import sys
import types
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pytraj.errors import RunError
from pytraj.run.logs import logger_levels
from pytraj.run.worker import StudyInput, Task
from pytraj.storage.records import NOT_LOADED, LazyValue
from pytraj.trajectory.definition import to_definition
from pytraj.trajectory.trajectory import Trajectory

if TYPE_CHECKING:
    from pytraj.run.caps import CapGate
    from pytraj.run.session import InterruptControl, RunSession

__all__ = ["RunJob", "Runner", "check_transferable", "make_task", "study_input"]


@dataclass(slots=True)
class RunJob:
    """What to run: the trajectory, which runs, the function and its arguments.

    ``extra`` holds per-run positional arguments by run index (``run_map``).
    """

    traj: Trajectory
    indices: Sequence[int]
    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    extra: Sequence[tuple[Any, ...]] | None = None
    log_stdout: bool = False


class Runner(ABC):
    """Executes the runs of a :class:`RunJob`, handing each to the session."""

    def preflight(self, job: RunJob) -> None:  # noqa: B027  # optional check
        """Raise before anything starts if the job cannot run this way."""

    @abstractmethod
    def execute(
        self, job: RunJob, session: RunSession, control: InterruptControl, gate: CapGate
    ) -> None:
        """Run the job's runs until done, stopped (Ctrl-C) or aborted."""


def study_input(
    job: RunJob,
    *,
    freeze_input: bool,
    points_in_tasks: bool,
    start_method: str,
    niceness: int | None,
    pickle_arguments: bool = True,
) -> StudyInput:
    """Build what each worker receives once.

    Lazily loaded values are loaded here, so workers never need the file. With
    ``points_in_tasks`` the explored values stay out of the skeleton (each task
    carries its point); with ``freeze_input`` the arguments are unpickled only once
    per worker (and, with ``pickle_arguments=False``, inherited without pickling).
    """
    traj = job.traj
    skeleton = to_definition(traj)
    leaves = []
    explored: list[str] = []
    for leaf in skeleton.leaves:
        default = _loaded(leaf.default)
        items = leaf.items
        if any(value is NOT_LOADED or type(value) is LazyValue for value in items.values()):
            node = traj.node(leaf.path)
            items = {name: _loaded(value) for name, value in node.items.items()}  # type: ignore[attr-defined]  # a Result
        values = leaf.explored
        if values is not None and leaf.path.startswith("parameters."):
            explored.append(leaf.path)
            values = None if points_in_tasks else [_loaded(value) for value in values]
        leaves.append(replace(leaf, default=default, items=items, explored=values))
    skeleton = replace(
        skeleton,
        leaves=leaves,
        provenance={},
        point_ids=[] if points_in_tasks else skeleton.point_ids,
    )
    if freeze_input and not pickle_arguments:
        arguments: Any = (job.args, job.kwargs)  # inherited by forked workers as they are
    else:
        try:
            arguments = pickle.dumps((job.args, job.kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise RunError(
                f"the arguments of {_name(job.func)} cannot be pickled for worker processes "
                f"({type(exc).__name__}: {exc}); pass picklable arguments, or use "
                "freeze_input=True with mp_context='fork' to hand them over without pickling"
            ) from exc
    return StudyInput(
        token=uuid.uuid4().hex,
        skeleton=skeleton,
        explored=tuple(explored),
        n_runs=len(traj),
        study_dir=str(traj.study_dir),
        func=job.func,
        arguments=arguments,
        points_in_tasks=points_in_tasks,
        freeze_input=freeze_input,
        log_levels=logger_levels(),
        log_stdout=job.log_stdout,
        niceness=niceness,
        start_method=start_method,
    )


def _loaded(value: Any) -> Any:
    return value.load() if type(value) is LazyValue else value


def _name(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or repr(func)


def make_task(job: RunJob, idx: int, frozen: bool, explored: Sequence[Any]) -> Task:
    """The task of run ``idx`` (``explored``: the explored Parameter leaves, in order)."""
    table = job.traj.run_table
    values = None if frozen else tuple(parameter.value_at(idx) for parameter in explored)
    extra = job.extra[idx] if job.extra is not None else ()
    return Task(idx, table.next_attempt(idx), table.point_id(idx), values, tuple(extra))


# -- can workers receive this function? -----------------------------------------------------
def _main_importable() -> bool:
    """Whether spawned children can import this process's ``__main__``."""
    main = sys.modules.get("__main__")
    if main is None:
        return False
    spec = getattr(main, "__spec__", None)
    if spec is not None and getattr(spec, "name", None):
        return True  # python -m module
    path = getattr(main, "__file__", None)
    return path is not None and os.path.isfile(path)


class _MainReferences(pickle.Pickler):
    """Pickles into nowhere and notes every function or class defined in ``__main__``."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), protocol=pickle.HIGHEST_PROTOCOL)
        self.found: list[str] = []

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, type | types.FunctionType) and obj.__module__ == "__main__":
            self.found.append(obj.__qualname__)
        elif getattr(type(obj), "__module__", None) == "__main__":
            self.found.append(type(obj).__qualname__)
        return NotImplemented


def check_transferable(func: Callable[..., Any], args: Any, start_method: str) -> None:
    """Refuse, before anything starts, a run function that workers cannot receive.

    Under ``spawn`` and ``forkserver`` workers import the function by module and name.
    A function (or argument class) defined in an interactive ``__main__`` (a REPL, a
    notebook, ``python -c``) cannot be imported there, and the function must pickle.
    """
    if start_method == "fork":
        return
    if not _main_importable():
        finder = _MainReferences()
        with contextlib.suppress(Exception):  # unpicklable objects are reported below
            finder.dump((func, args))
        if finder.found:
            names = ", ".join(sorted(set(finder.found)))
            raise RunError(
                f"cannot run {_name(func)} in worker processes started with {start_method!r}: "
                f"{names} is defined in the __main__ of an interactive session (or python -c), "
                "which such workers cannot import. Move the function into a module (a .py file) "
                "and import it from there, run the study from a script file, or use "
                "mp_context='fork'"
            )
    try:
        pickle.dumps(func, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise RunError(
            f"cannot send {_name(func)} to worker processes started with {start_method!r}: "
            f"it cannot be pickled ({type(exc).__name__}: {exc}). Use a function defined at "
            "the top level of a module (not a lambda or a nested function), or "
            "mp_context='fork'"
        ) from exc
