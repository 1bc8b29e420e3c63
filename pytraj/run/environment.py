"""The Environment: runs a simulation once per parameter point and stores every run.

>>> import pytraj as pt
>>> def simulate(traj):
...     traj.add_result("z", traj.x * traj.y)
>>> env = pt.Environment(trajectory="mult", filename="out/study.h5", ncores=2)  # doctest: +SKIP
>>> traj = env.trajectory                                                   # doctest: +SKIP
>>> traj.add_parameter("x", 1.0); traj.add_parameter("y", 1.0)              # doctest: +SKIP
>>> traj.explore(pt.cartesian_product({"x": [1.0, 2.0], "y": [6.0, 7.0]}))  # doctest: +SKIP
>>> env.run(simulate)                                                       # doctest: +SKIP
[(0, None), (1, None), (2, None), (3, None)]
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, replace
from operator import itemgetter
from pathlib import Path
from types import TracebackType
from typing import Any

from pytraj.crashpoints import crash_point
from pytraj.errors import OptionError, RunError, RunsFailedError
from pytraj.run.binding import StudyBinding
from pytraj.run.caps import CapGate, ResourceCaps, ResourceUsage, read_usage
from pytraj.run.executors import make_runner
from pytraj.run.githook import GitOptions, GitRecord, apply_git_hook, writer_fields
from pytraj.run.jobs import RunJob
from pytraj.run.logs import apply_log_config
from pytraj.run.options import (
    FileSettings,
    OnError,
    OutputOptions,
    ParallelOptions,
    Shard,
    check_folder,
    check_option_names,
    check_trajectory_name,
    invalid,
    resolve_filename,
    validate_on_error,
)
from pytraj.run.postprocessing import Call, map_arguments, new_points, parse_pipeline
from pytraj.run.progress import Progress
from pytraj.run.provenance import collect, finish_session, open_writer_session
from pytraj.run.resume import RunPlan, check_retry
from pytraj.run.session import InterruptControl, RunSession
from pytraj.run.shards import runs_to_do, shard_path
from pytraj.storage.memory import MemoryStorage
from pytraj.trajectory.trajectory import Trajectory

__all__ = ["Environment"]

# The run index of an (idx, return value) pair: env.run's list is sorted by it.
_FIRST = itemgetter(0)

log = logging.getLogger("pytraj.run")

Results = list[tuple[int, Any]]


def _option_names(cls: type) -> tuple[str, ...] | None:
    """The keyword options of ``cls.__init__`` (None: it takes any keyword)."""
    parameters = inspect.signature(cls.__init__).parameters.values()  # type: ignore[misc]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return tuple(
        p.name
        for p in parameters
        if p.name != "self"
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )


class Environment:
    """Run a simulation once per parameter point, in parallel, into one HDF5 file.

    Parameters
    ----------
    trajectory
        Name of the trajectory to create (or continue), or a ready :class:`Trajectory`.
    filename
        The HDF5 file. Default: ``./hdf5/<trajectory>.h5``; a folder (existing or
        ending with ``/``) gets ``<trajectory>.h5`` inside it. Other trajectories in
        the file are kept.
    comment
        What the study is about (the trajectory's comment).
    ncores
        Worker processes (1: serial in this process; 0: one per CPU).
    executor
        Run on this :class:`concurrent.futures.Executor` instead (a thread or process
        pool), or on a Dask ``distributed.Client``'s cluster (see ``docs/clusters.md``).
    mp_context
        Start method of the worker processes: ``"fork"``, ``"spawn"``,
        ``"forkserver"`` or a :mod:`multiprocessing` context (None: the default).
    cpu_cap, memory_cap, swap_cap
        No new run starts while the machine's CPU, memory or swap usage (percent) is
        above the cap; one run always proceeds. 100 disables a cap.
    niceness
        Scheduling priority of worker processes (-20 to 19; None: unchanged).
    freeze_input
        Ship the whole study input to each worker once: all explored values and the
        run function's arguments, unpickled once and reused by every run of that
        worker (faster with large arguments; a run must then not modify its
        arguments). Without it each run receives just its point, and a fresh copy
        of the arguments (held pickled by the worker, never re-sent).
    run_timeout
        Seconds after which a run is killed (its worker process is replaced) and
        recorded as failed. With ``ncores=1`` this runs in one worker process.
    on_error
        ``"raise"``: after all runs, raise :class:`~pytraj.errors.RunsFailedError`
        naming the failed ones; ``"continue"``: log them and return.
    progress
        None: a progress bar when stderr is a terminal, else a log line every 10 s;
        True or ``"bar"``; ``"log"``; False or ``"off"``.
    log_config
        Logging configuration applied once: a ``logging.config.dictConfig`` dict, or
        the path of an ``.ini``/``.cfg``/``.conf`` (fileConfig) or ``.json`` file.
    log_stdout
        Capture each run's log records and printed output and store them with the
        run (``traj.runs[i].log``).
    overwrite
        Replace a stored trajectory of the same name (only that one) instead of
        continuing it.
    complib, complevel
        Compression of the file's tables (see ``pytraj.storage.hdf5.FileOptions``).
    shard
        ``(i, n)``: run only the points of shard i of n, into its own file
        (``study.shard-2-of-4.h5``, or ``{shard}`` in the filename replaced by
        ``2-of-4``); other shards' runs stay pending there. None: the environment
        variable ``PYTRAJ_SHARD=i/n`` when set, else the whole study. See
        :mod:`pytraj.run.shards`; merge the shard files with :func:`pytraj.merge_files`.
    keep_return_values
        Whether ``env.run`` collects the return value of every run it completes and
        returns them. The list grows with the study (about 90 bytes per run when
        ``func`` returns None, 90 MB for a million runs, plus the values); with False,
        ``env.run`` returns an empty list and the main process holds only the runs of
        the current commit batch. Post-processing receives the return values, so it
        needs True.
    study_dir
        Folder of the per-run working directories (``traj.run_dir``); default
        ``<file stem>_<trajectory>/`` beside the file. On a cluster it must be on a
        filesystem the workers share (a Dask study checks that before it starts).
    git_repository, git_message, git_fail, git_add_untracked
        The git hook (:mod:`pytraj.run.githook`): before the first run, commit the
        repository's changes (untracked files too with ``git_add_untracked``) with a
        message naming the trajectory and ``git_message``, or with ``git_fail=True``
        refuse to start on a dirty tree; shards never commit. The commit, branch,
        remote and dirty state go into ``traj.provenance["git"]`` and every run's
        ``provenance``.

    Notes
    -----
    Re-running a script continues its study: when the file holds the trajectory
    already, ``env.run`` compares the script's parameters and points with the stored
    ones and runs only what has not completed (see :meth:`plan`). Per-run working
    directories (``traj.run_dir``) live in ``<file stem>_<trajectory>/`` beside the file.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Environment:
        # Checked here rather than by Python's own TypeError so that a misspelt option
        # (ncore=2) names the option meant; type checkers still see __init__'s signature.
        known = _option_names(cls)
        if known is not None:
            check_option_names(f"{cls.__name__}()", kwargs, known)
        return super().__new__(cls)

    def __init__(
        self,
        trajectory: str | Trajectory = "trajectory",
        filename: str | Path | None = None,
        *,
        comment: str = "",
        ncores: int = 1,
        executor: Any = None,
        mp_context: Any = None,
        cpu_cap: float = 100.0,
        memory_cap: float = 100.0,
        swap_cap: float = 100.0,
        niceness: int | None = None,
        freeze_input: bool = False,
        run_timeout: float | None = None,
        on_error: OnError = "raise",
        progress: bool | str | None = None,
        log_config: dict[str, Any] | str | Path | None = None,
        log_stdout: bool = False,
        overwrite: bool = False,
        complib: str | None = None,
        complevel: int | None = None,
        shard: tuple[int, int] | None = None,
        keep_return_values: bool = True,
        study_dir: str | Path | None = None,
        git_repository: str | Path | None = None,
        git_message: str = "",
        git_fail: bool = False,
        git_add_untracked: bool = False,
    ) -> None:
        if isinstance(trajectory, Trajectory):
            name = trajectory.name
        else:
            name = check_trajectory_name(trajectory)
        if not isinstance(comment, str):
            raise invalid("comment", comment, "expected a string")
        self._shard = Shard.from_options(shard)
        if filename is not None or not self._shard.is_whole:
            filename = shard_path(resolve_filename(filename, name), self._shard)
        bound_path = _stored_path(trajectory)
        if bound_path is not None:
            if filename is not None and resolve_filename(filename, name) != bound_path:
                raise invalid(
                    "filename",
                    filename,
                    f"the trajectory given is stored in {bound_path} already; leave filename=None",
                )
            filename = bound_path
        self._file = FileSettings.from_options(filename, name, overwrite, complib, complevel)
        self._parallel = ParallelOptions.from_options(
            ncores=ncores,
            executor=executor,
            mp_context=mp_context,
            freeze_input=freeze_input,
            run_timeout=run_timeout,
            niceness=niceness,
            caps=(cpu_cap, memory_cap, swap_cap),
        )
        self._caps = ResourceCaps.from_options(cpu_cap, memory_cap, swap_cap, niceness)
        self._output = OutputOptions.from_options(progress, log_config, log_stdout)
        self._on_error: OnError = validate_on_error(on_error)
        if not isinstance(keep_return_values, bool):
            raise invalid("keep_return_values", keep_return_values, "expected True or False")
        self._keep_return_values = keep_return_values
        self._git = GitOptions.from_options(
            git_repository, git_message, git_fail, git_add_untracked
        )
        self._git_record: GitRecord | None = None
        apply_log_config(self._output.log_config)
        collect()  # looks versions up once per process, before any run is timed

        #: Reads machine usage for the caps; replace it to control the caps (tests do).
        self.resource_usage: Callable[[], ResourceUsage] = read_usage
        self._postprocessing: Call | None = None
        self._last: tuple[Call, Sequence[tuple[Any, ...]] | None] | None = None
        self._sessions = 0
        if isinstance(trajectory, Trajectory):
            traj = trajectory
            if comment:
                traj.comment = comment
        else:
            traj = Trajectory(name, comment=comment)
        self._traj = traj
        if study_dir is not None:
            traj.study_dir = check_folder("study_dir", study_dir)
        elif not traj.has_study_dir:
            traj.study_dir = self._file.study_dir(name)
        self._binding = StudyBinding(traj, self._file)

    # -- properties ------------------------------------------------------------------
    @property
    def trajectory(self) -> Trajectory:
        """The study's trajectory: add parameters and explore it before ``run``."""
        return self._traj

    @property
    def filename(self) -> Path:
        """The HDF5 file the study is stored in."""
        return self._file.path

    @property
    def file_settings(self) -> FileSettings:
        """File, overwrite and compression options."""
        return self._file

    @property
    def shard(self) -> Shard:
        """The slice of the study this Environment runs (``Shard(0, 1)``: all of it)."""
        return self._shard

    @property
    def parallel(self) -> ParallelOptions:
        """Execution options (cores, executor, start method, freezing, time limit)."""
        return self._parallel

    @property
    def caps(self) -> ResourceCaps:
        """Resource caps and niceness."""
        return self._caps

    @property
    def output(self) -> OutputOptions:
        """Progress, logging and capture options."""
        return self._output

    @property
    def on_error(self) -> OnError:
        """What ``run`` does about failed runs: ``"raise"`` or ``"continue"``."""
        return self._on_error

    def __repr__(self) -> str:
        how = (
            "executor"
            if self._parallel.executor is not None
            else (
                f"{self._parallel.workers} workers ({self._parallel.start_method})"
                if self._parallel.uses_pool
                else "serial"
            )
        )
        return f"<Environment {self._traj.name!r} -> {self._file.path} ({how})>"

    # -- running ---------------------------------------------------------------------
    def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Results:
        """Call ``func(traj, *args, **kwargs)`` once per run that has not completed.

        Every argument is forwarded to ``func``. Inside, ``traj.x`` is the run's value
        of ``x``, ``traj.idx`` its index, ``traj.seed`` a reproducible seed and
        ``traj.run_dir`` a working directory; results added belong to the run.

        Returns
        -------
        list of (int, object)
            ``(run index, return value)`` of every run completed by this call,
            sorted by index.

        Raises
        ------
        RunsFailedError
            After all runs, if some failed (unless ``on_error="continue"``).
        KeyboardInterrupt
            After Ctrl-C, once everything finished is stored.
        """
        return self._run(Call(func, args, kwargs), None, retry_failed=False)

    def run_map(self, func: Callable[..., Any], *iterables: Iterable[Any]) -> Results:
        """Call ``func(traj, a[i], b[i], ...)`` for run i, with one element per run
        from each iterable (pypet's ``run_map``)."""
        self._check_callable(func)
        self._binding.prepare()
        extra = map_arguments(len(self._traj), iterables)
        return self._run(Call(func), extra, retry_failed=False)

    def pipeline(self, func: Callable[[Trajectory], Any]) -> Results:
        """Let ``func(traj)`` build the study and return what to run.

        ``func`` adds parameters and explores, then returns the run function, or
        ``(run_func, args, kwargs)``, or a pair ``((run_func, args, kwargs),
        (post_func, args, kwargs))`` that also names a post-processing function
        (see :meth:`add_postprocessing`).
        """
        self._check_callable(func)
        run_call, post = parse_pipeline(func(self._traj))
        self._check_callable(run_call.func)
        return self._run(run_call, None, retry_failed=False, post=post or self._postprocessing)

    def add_postprocessing(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Call ``func(traj, results, *args, **kwargs)`` in this process after the runs.

        ``results`` holds ``(idx, return value)`` of every run completed by this
        ``run`` call so far. If ``func`` returns new points (a dict of lists or a
        :class:`~pytraj.ParameterSpace`), they are added with ``traj.expand`` and run,
        and ``func`` is called again, until it returns None: an adaptive search.
        Points that exist already are not run again.
        """
        self._check_callable(func)
        if not self._keep_return_values:
            raise OptionError(
                "post-processing receives every run's return value, which this Environment "
                "drops (keep_return_values=False); create it with keep_return_values=True"
            )
        self._postprocessing = Call(func, args, kwargs)

    def resume(
        self,
        func: Callable[..., Any] | None = None,
        *args: Any,
        retry_failed: bool = False,
        **kwargs: Any,
    ) -> Results:
        """Continue the study: run what has not completed.

        Parameters
        ----------
        func, args, kwargs
            The run function and its arguments; None repeats those of this
            Environment's last ``run`` (in a new process, give the function: the
            stored study is adopted as it is when the script defines no parameters).
        retry_failed
            Also run the runs whose last attempt failed (their failure history is kept).
        """
        retry = check_retry(retry_failed)
        if func is None:
            if self._last is None:
                raise RunError(
                    "env.resume() needs the run function: this Environment has not run one "
                    "yet; call env.resume(simulate)"
                )
            call, extra = self._last
            return self._run(call, extra, retry_failed=retry)
        return self._run(Call(func, args, kwargs), None, retry_failed=retry)

    def plan(self, *, retry_failed: bool = False) -> RunPlan:
        """What ``run`` would do, without running or writing anything.

        Lists the new points (not in the file yet), the pending runs (stored but not
        completed) and the failed ones (run again only with
        ``resume(retry_failed=True)``), each with its parameter values
        (``plan.to_dataframe()``).

        Raises
        ------
        StudyMismatchError
            If the script's study differs from the stored one (as ``run`` would).
        """
        return self._binding.plan(check_retry(retry_failed))

    def _check_callable(self, func: Any) -> None:
        if not callable(func):
            raise TypeError(f"expected a function to run, got {type(func).__name__} {func!r}")

    def _run(
        self,
        call: Call,
        extra: Sequence[tuple[Any, ...]] | None,
        *,
        retry_failed: bool,
        post: Call | None = None,
    ) -> Results:
        self._check_callable(call.func)
        crash_point("run.start")
        self._binding.prepare()
        traj = self._traj
        post = post if post is not None else self._postprocessing
        self._last = (call, extra)
        job = RunJob(
            traj,
            runs_to_do(traj.run_table, self._shard, retry_failed=retry_failed, name=traj.name),
            call.func,
            call.args,
            call.kwargs,
            extra,
            self._output.log_stdout,
        )
        runner = make_runner(self._parallel, self._caps)
        runner.preflight(job)  # refuse what cannot work before anything starts
        if self._git_record is None:  # once per Environment, before its first run
            self._git_record = apply_git_hook(
                self._git,
                trajectory=traj.name,
                study_paths=[self._file.path, traj.study_dir],
                commit=self._shard.is_whole,
            )
        writer = open_writer_session(
            traj.provenance,
            first=self._sessions == 0,
            call=(call.func, len(call.args) + len(call.kwargs), extra is not None),
            file=str(self._file.path),
            trajectory=traj.name,
            executor=self._parallel.executor_kind,
            git=None if self._git_record is None else asdict(self._git_record),
            writer_extra=writer_fields(self._git_record),
        )
        self._sessions += 1
        if traj.storage.writable and not self._binding.stored_longer:
            # The study's definition (with this writer session) is durable, journaled and
            # in the file, before any run is handed out: a kill from here on leaves a
            # study the re-run continues.
            traj.store()
        progress = Progress(self._output.progress, len(job.indices), traj.name)
        session = RunSession(traj, progress, writer, keep_values=self._keep_return_values)
        gate = CapGate(self._caps, self.resource_usage)
        with InterruptControl() as control:
            try:
                runner.execute(job, session, control, gate)
                while post is not None and not control.interrupted:
                    more = self._postprocess(post, session, job)
                    if more is None:
                        break
                    progress.add_total(len(more.indices))
                    runner.execute(more, session, control, gate)
            except BaseException:
                self._finish(session, progress, failing=True)
                raise
            self._finish(session, progress, failing=False)
        if control.interrupted:
            raise KeyboardInterrupt(
                f"interrupted: {session.count} runs of {traj.name!r} finished and are stored; "
                "run the script again (or env.resume()) to continue"
            )
        self._report_failures(session)
        return sorted(session.results, key=_FIRST)

    def _postprocess(self, post: Call, session: RunSession, job: RunJob) -> RunJob | None:
        """One round of post-processing; the job of the new points it proposes, if any."""
        traj = self._traj
        session.commit()  # post-processing reads every finished run from the trajectory
        results = sorted(session.results, key=lambda pair: pair[0])
        proposed = post.func(traj, results, *post.args, **post.kwargs)
        if proposed is None:
            return None
        if job.extra is not None:
            raise RunError(
                "post-processing proposed new points after run_map, whose per-run arguments "
                "cannot cover them; use env.run with post-processing instead"
            )
        fresh = new_points(traj, proposed)
        if not fresh:
            log.info("post-processing proposed only points that ran already; stopping")
            return None
        first = len(traj)
        traj.expand(fresh)
        return replace(job, indices=list(range(first, len(traj))))

    def _finish(self, session: RunSession, progress: Progress, *, failing: bool) -> None:
        """Store everything finished and the provenance, and close the file cleanly."""
        traj = self._traj
        try:
            try:
                session.commit()
                finish_session(traj.provenance)
                if traj.storage.writable and not self._binding.stored_longer:
                    traj.mark_definition_changed()  # the provenance changed
                    traj.store_definition()
            finally:
                # A clean close after every run call: the journal goes, the file is
                # complete and unlocked, so a script that never calls env.close() leaves
                # nothing to repair. After a failed write (a full disk) the close keeps
                # the journal and still unlocks the file. The trajectory stays usable:
                # its next write reopens the file.
                traj.storage.close()
        except Exception:
            if not failing:
                raise
            log.exception("could not store everything after an error")
        finally:
            progress.close()

    def _report_failures(self, session: RunSession) -> None:
        message = session.failure_message()
        if message is None:
            return
        if self._on_error == "raise":
            raise RunsFailedError(message, sorted(session.failed))
        log.warning("%s", message)

    # -- closing ---------------------------------------------------------------------
    def close(self) -> None:
        """Store the trajectory and release the file."""
        self._traj.close()

    def __enter__(self) -> Environment:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _stored_path(trajectory: Any) -> Path | None:
    """The file a ready trajectory is stored in already, if any."""
    if not isinstance(trajectory, Trajectory) or isinstance(trajectory.storage, MemoryStorage):
        return None
    path = getattr(trajectory.storage, "path", None)
    return Path(path).resolve() if path is not None else None
