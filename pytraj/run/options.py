"""The Environment's options as small validated value objects.

Every option is checked when the :class:`~pytraj.run.environment.Environment` is built,
long before the first run, and a bad value raises :class:`~pytraj.errors.OptionError`
naming the option, the value and what is allowed. The options travel through the run
machinery grouped by concern instead of as one long keyword list:

- :class:`FileSettings`: where the study is stored and how (file, overwrite, filters);
- :class:`ParallelOptions`: how runs are executed (cores, executor, start method,
  input freezing, time limit);
- :class:`~pytraj.run.caps.ResourceCaps`: when new runs may start (CPU, memory, swap)
  and the workers' niceness;
- :class:`OutputOptions`: progress display, logging configuration, per-run capture;
- :class:`Shard`: which slice of the study's points this process runs;
- ``on_error`` (``"raise"`` or ``"continue"``): what ``env.run`` does about failed runs.
"""

from __future__ import annotations

import difflib
import math
import multiprocessing
import os
import sys
import warnings
from collections.abc import Collection, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any, Literal

from pytraj.errors import OptionError, PytrajWarning, UnknownOptionError
from pytraj.tree.names import validate_name

__all__ = [
    "DEFAULT_FOLDER",
    "MAX_NCORES",
    "ON_ERROR_CHOICES",
    "PROGRESS_CHOICES",
    "FileSettings",
    "OutputOptions",
    "ParallelOptions",
    "SHARD_VARIABLE",
    "Shard",
    "check_bool",
    "check_folder",
    "check_option_names",
    "check_trajectory_name",
    "invalid",
    "is_dask_client",
    "resolve_filename",
    "validate_on_error",
]

#: The most worker processes pytraj's pool starts (``ncores=`` above it is refused).
MAX_NCORES = 1024
#: Folder (relative to the working directory) of a study's file when no filename is given.
DEFAULT_FOLDER = "hdf5"
ON_ERROR_CHOICES = ("raise", "continue")
PROGRESS_CHOICES = ("auto", "bar", "log", "off")
_LOG_CONFIG_SUFFIXES = (".ini", ".cfg", ".conf", ".json")

OnError = Literal["raise", "continue"]


def invalid(option: str, value: Any, allowed: str) -> OptionError:
    """The error for ``option=value``; ``allowed`` says what would be accepted."""
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return OptionError(f"Environment option {option}={shown} is invalid: {allowed}")


def check_option_names(owner: str, given: Iterable[str], known: Collection[str]) -> None:
    """Refuse keywords that name no option, suggesting the closest one.

    Raises
    ------
    UnknownOptionError
        A ``TypeError`` (what Python raises for an unexpected keyword) that is also an
        :class:`~pytraj.errors.OptionError`.
    """
    for name in given:
        if name in known:
            continue
        close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}=?" if close else ""
        raise UnknownOptionError(
            f"{owner} has no option {name!r}{hint} (its options: {', '.join(known)})"
        )


def check_bool(option: str, value: Any) -> bool:
    """Accept only real booleans (``1`` or ``"yes"`` are refused: they hide typos)."""
    if not isinstance(value, bool):
        raise invalid(option, value, "expected True or False")
    return value


def check_folder(option: str, value: Any) -> Path:
    """An absolute folder path given as a str or os.PathLike."""
    if not isinstance(value, str | os.PathLike) or not os.fspath(value):
        raise invalid(option, value, "expected a folder path (str or os.PathLike)")
    return Path(os.fspath(value)).expanduser().resolve()


def _check_number(option: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(option, value, "expected a number")
    if not math.isfinite(value):
        raise invalid(option, value, "expected a finite number")
    return float(value)


def validate_on_error(value: Any) -> OnError:
    """``on_error``: ``"raise"`` (RunsFailedError at the end) or ``"continue"``."""
    # The type first: ``value in (...)`` compares, and an array compares elementwise.
    if not isinstance(value, str) or value not in ON_ERROR_CHOICES:
        raise invalid(
            "on_error",
            value,
            "expected 'raise' (raise RunsFailedError after all runs) or 'continue' "
            "(log the failed runs and return)",
        )
    return "raise" if value == "raise" else "continue"


def resolve_filename(filename: Any, trajectory: str) -> Path:
    """The absolute path of the study's HDF5 file.

    ``None`` gives ``./hdf5/<trajectory>.h5``; a folder (existing, or written with a
    trailing slash) gets ``<trajectory>.h5`` inside it.
    """
    if filename is None:
        return (Path.cwd() / DEFAULT_FOLDER / f"{trajectory}.h5").resolve()
    if not isinstance(filename, str | os.PathLike):
        raise invalid("filename", filename, "expected a path (str or os.PathLike) or None")
    text = os.fspath(filename)
    if isinstance(text, bytes) or not text:
        raise invalid("filename", filename, "expected a non-empty text path")
    path = Path(text).expanduser()
    if text.endswith(("/", os.sep)) or path.is_dir():
        path = path / f"{trajectory}.h5"
    return path.resolve()


#: The environment variable naming this process's shard (``i/n``) when no ``shard=``.
SHARD_VARIABLE = "PYTRAJ_SHARD"


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count``: this process runs the points that belong to it.

    A point belongs to shard ``int.from_bytes(point id, "big") % count``
    (:mod:`pytraj.run.shards`). ``count == 1`` is the whole study.
    """

    index: int = 0
    count: int = 1

    @property
    def is_whole(self) -> bool:
        """Whether this is the whole study (no sharding)."""
        return self.count == 1

    @classmethod
    def from_options(cls, shard: Any, environ: Any = None) -> Shard:
        """``shard=(i, n)``, else ``PYTRAJ_SHARD=i/n`` from ``environ``, else the whole study.

        Raises
        ------
        OptionError
            For a malformed or out-of-range value (``0 <= i < n`` is required).
        """
        if shard is None:
            text = (os.environ if environ is None else environ).get(SHARD_VARIABLE)
            if text is None or not text.strip():
                return cls()
            index, sep, count = text.strip().partition("/")
            try:
                if not sep:
                    raise ValueError(text)
                parsed = (int(index), int(count))
            except ValueError:
                raise OptionError(
                    f"{SHARD_VARIABLE}={text!r} is invalid: expected 'i/n' with integers "
                    "0 <= i < n, e.g. PYTRAJ_SHARD=2/4"
                ) from None
            return cls._checked(parsed, f"{SHARD_VARIABLE}={text!r}")
        if (
            not isinstance(shard, tuple | list)
            or len(shard) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) for v in shard)
        ):
            raise invalid("shard", shard, "expected a pair of integers (i, n) with 0 <= i < n")
        return cls._checked((int(shard[0]), int(shard[1])), f"shard={tuple(shard)!r}")

    @classmethod
    def _checked(cls, pair: tuple[int, int], given: str) -> Shard:
        index, count = pair
        if count < 1 or not 0 <= index < count:
            raise OptionError(
                f"{given} is out of range: the shard index i must satisfy 0 <= i < n (n >= 1); "
                "for a SLURM array use PYTRAJ_SHARD=$((SLURM_ARRAY_TASK_ID - "
                "SLURM_ARRAY_TASK_MIN))/$SLURM_ARRAY_TASK_COUNT"
            )
        return cls(index, count)


@dataclass(frozen=True, slots=True)
class FileSettings:
    """Where and how the study is stored.

    Attributes
    ----------
    path
        Absolute path of the HDF5 file.
    overwrite
        Replace a stored trajectory of the same name (only that one) instead of
        continuing it.
    complib, complevel
        Compression of the file's tables (``None``: the storage defaults).
    """

    path: Path
    overwrite: bool = False
    complib: str | None = None
    complevel: int | None = None

    @classmethod
    def from_options(
        cls, filename: Any, trajectory: str, overwrite: Any, complib: Any, complevel: Any
    ) -> FileSettings:
        """Validate the file options of an Environment."""
        check_bool("overwrite", overwrite)
        if complib is not None and not isinstance(complib, str):
            raise invalid("complib", complib, "expected a compression library name or None")
        if complevel is not None and (
            isinstance(complevel, bool) or not isinstance(complevel, int) or not 0 <= complevel <= 9
        ):
            raise invalid("complevel", complevel, "expected an integer from 0 to 9 or None")
        settings = cls(resolve_filename(filename, trajectory), overwrite, complib, complevel)
        settings.file_options()  # the storage layer knows which libraries exist: ask it now
        return settings

    def file_options(self) -> Any:
        """The storage's ``FileOptions`` for these settings, or None for its defaults."""
        if self.complib is None and self.complevel is None:
            return None
        try:
            # Imported here: ``import pytraj`` stays fast without PyTables.
            from pytraj.storage.hdf5 import FileOptions
        except ImportError:  # pragma: no cover - the HDF5 backend ships with pytraj
            return None
        given: dict[str, Any] = {}
        if self.complib is not None:
            given["complib"] = self.complib
        if self.complevel is not None:
            given["complevel"] = self.complevel
        try:
            return FileOptions(**given)
        except OptionError as exc:
            raise OptionError(f"Environment option: {exc}") from None

    def study_dir(self, trajectory: str) -> Path:
        """The study folder beside the file: ``<file stem>_<trajectory>/``."""
        return self.path.parent / f"{self.path.stem}_{trajectory}"


@dataclass(frozen=True, slots=True)
class ParallelOptions:
    """How the runs are executed.

    Attributes
    ----------
    ncores
        Worker processes of pytraj's pool (1: serial, in the calling process).
    executor
        A :class:`concurrent.futures.Executor` to run on instead (e.g. Dask's
        ``client.get_executor()``).
    context
        The :mod:`multiprocessing` context the pool starts workers with.
    freeze_input
        Ship the whole study input (all explored values, the run function's
        arguments) to each worker once and reuse it for all its runs.
    run_timeout
        Seconds after which a run is killed and recorded as failed (None: never).
    """

    ncores: int = 1
    executor: Executor | None = None
    context: BaseContext | None = None
    freeze_input: bool = False
    run_timeout: float | None = None

    @property
    def start_method(self) -> str:
        """The start method of the pool's workers (``"fork"``, ``"spawn"``, ...)."""
        context = self.context or multiprocessing.get_context()
        return str(context.get_start_method())

    @property
    def executor_kind(self) -> str:
        """What runs the simulations, in words (recorded with every writer session)."""
        if self.uses_dask:
            scheduler = getattr(getattr(self.executor, "scheduler", None), "address", "")
            return f"dask distributed.Client ({scheduler or 'no scheduler address'})"
        if self.executor is not None:
            kind = type(self.executor)
            return f"{kind.__module__}.{kind.__qualname__}"
        if self.uses_pool:
            return f"process pool ({self.workers} workers, {self.start_method})"
        return "serial"

    @property
    def uses_dask(self) -> bool:
        """Whether runs go to a Dask ``distributed.Client`` (pytraj's Dask runner)."""
        return self.executor is not None and is_dask_client(self.executor)

    @property
    def uses_pool(self) -> bool:
        """Whether runs go to pytraj's own worker processes."""
        return self.executor is None and (self.ncores > 1 or self.run_timeout is not None)

    @property
    def workers(self) -> int:
        """How many worker processes the pool starts."""
        return max(self.ncores, 1)

    @classmethod
    def from_options(
        cls,
        *,
        ncores: Any,
        executor: Any,
        mp_context: Any,
        freeze_input: Any,
        run_timeout: Any,
        niceness: Any,
        caps: tuple[Any, Any, Any] = (100.0, 100.0, 100.0),
    ) -> ParallelOptions:
        """Validate the execution options of an Environment.

        ``caps`` are ``(cpu_cap, memory_cap, swap_cap)``, refused with a Dask Client.
        """
        if isinstance(ncores, bool) or not isinstance(ncores, int) or ncores < 0:
            raise invalid("ncores", ncores, "expected an integer >= 0 (0 = all cores)")
        cores = os.cpu_count() or 1
        if ncores > MAX_NCORES:
            # Each worker is a process; beyond this a typo (10**6) would fork until the
            # machine gives out rather than run a study.
            raise invalid(
                "ncores",
                ncores,
                f"at most {MAX_NCORES} worker processes (this machine has {cores} cores; "
                "0 = all of them); for more use executor= with a cluster",
            )
        if ncores > cores:
            warnings.warn(
                f"Environment option ncores={ncores} is more than the {cores} cores of this "
                f"machine: the runs share the cores and go no faster; ncores=0 uses all of them",
                PytrajWarning,
                stacklevel=3,  # the user's Environment(...) line
            )
        if ncores == 0:
            ncores = cores
        if executor is not None and is_dask_client(executor):
            _refuse_local_options(mp_context=mp_context, niceness=niceness, caps=caps)
        if executor is not None:
            if not isinstance(executor, Executor) and not callable(
                getattr(executor, "submit", None)
            ):
                raise invalid(
                    "executor",
                    executor,
                    "expected a concurrent.futures.Executor (an object with submit()) or None",
                )
            if ncores != 1:
                raise invalid(
                    "ncores", ncores, "give either ncores= (pytraj's pool) or executor=, not both"
                )
            if mp_context is not None:
                raise invalid(
                    "mp_context",
                    mp_context,
                    "the executor starts its own workers; leave mp_context=None with executor=",
                )
            if niceness is not None:
                raise invalid(
                    "niceness", niceness, "pytraj cannot renice an executor's workers; use None"
                )
        context = _resolve_context(mp_context)
        check_bool("freeze_input", freeze_input)
        timeout: float | None = None
        if run_timeout is not None:
            timeout = _check_number("run_timeout", run_timeout)
            if timeout <= 0:
                raise invalid(
                    "run_timeout", run_timeout, "expected a number of seconds > 0 or None"
                )
            if executor is not None and not is_dask_client(executor):
                raise invalid(
                    "run_timeout",
                    run_timeout,
                    "a time limit needs pytraj's own pool or a Dask Client (they restart the "
                    "worker of a hung run); leave executor=None",
                )
            if sys.platform == "win32":  # pragma: no cover - POSIX is what CI runs
                raise invalid("run_timeout", run_timeout, "not supported on Windows")
        return cls(ncores, executor, context, freeze_input, timeout)


def is_dask_client(executor: Any) -> bool:
    """Whether ``executor`` is a Dask ``distributed.Client`` (checked by class, so that
    ``distributed`` is never imported just to ask)."""
    return any(
        cls.__name__ == "Client" and cls.__module__.split(".")[0] == "distributed"
        for cls in type(executor).__mro__
    )


def _refuse_local_options(*, mp_context: Any, niceness: Any, caps: tuple[Any, Any, Any]) -> None:
    """Options that only make sense on this machine, refused with what Dask offers instead."""
    for option, value in zip(("cpu_cap", "memory_cap", "swap_cap"), caps, strict=True):
        if value != 100.0:
            raise invalid(
                option,
                value,
                "caps watch this machine, not a Dask cluster's workers; limit what runs at "
                "once with worker resources (dask-worker --resources) or the workers' "
                "memory_limit=, and leave the cap at 100",
            )
    if niceness is not None:
        raise invalid(
            "niceness",
            niceness,
            "pytraj cannot renice Dask workers; start them with a lower priority "
            "(e.g. `nice dask worker ...`, or the job scheduler's priority) and use None",
        )
    if mp_context is not None:
        raise invalid(
            "mp_context",
            mp_context,
            "Dask starts its own worker processes; choose how with the cluster "
            "(LocalCluster(processes=...)) and leave mp_context=None",
        )


def _resolve_context(mp_context: Any) -> BaseContext | None:
    if mp_context is None:
        return None
    if isinstance(mp_context, BaseContext):
        return mp_context
    methods = multiprocessing.get_all_start_methods()
    if not isinstance(mp_context, str) or mp_context not in methods:
        raise invalid(
            "mp_context",
            mp_context,
            f"expected None, a multiprocessing context or one of {', '.join(map(repr, methods))}",
        )
    return multiprocessing.get_context(mp_context)


@dataclass(frozen=True, slots=True)
class OutputOptions:
    """Progress display, logging and per-run capture.

    Attributes
    ----------
    progress
        ``"bar"`` (tqdm on stderr), ``"log"`` (a log line every few seconds), ``"off"``,
        or ``"auto"``: the bar when stderr is a terminal, else the log line.
    log_config
        Applied once with :mod:`logging.config` when the Environment is built: a dict
        for ``dictConfig`` or the path of an ``.ini``/``.cfg``/``.conf`` file for
        ``fileConfig`` or a ``.json`` file holding a ``dictConfig`` dict.
    log_stdout
        Capture each run's log records and standard output and store them with the
        run (``traj.runs[i].log``).
    """

    progress: str = "auto"
    log_config: dict[str, Any] | Path | None = None
    log_stdout: bool = False

    @classmethod
    def from_options(cls, progress: Any, log_config: Any, log_stdout: Any) -> OutputOptions:
        """Validate the output options of an Environment."""
        if progress is None:
            mode = "auto"
        elif progress is True:
            mode = "bar"
        elif progress is False:
            mode = "off"
        elif isinstance(progress, str) and progress in PROGRESS_CHOICES:
            mode = progress
        else:
            raise invalid(
                "progress",
                progress,
                "expected None (auto: a bar on a terminal, else a log line), True/'bar', "
                "'log', or False/'off'",
            )
        config: dict[str, Any] | Path | None = None
        if isinstance(log_config, dict):
            config = log_config
        elif isinstance(log_config, str | os.PathLike):
            path = Path(log_config).expanduser()
            if path.suffix.lower() not in _LOG_CONFIG_SUFFIXES:
                raise invalid(
                    "log_config",
                    log_config,
                    f"expected a file ending in {', '.join(_LOG_CONFIG_SUFFIXES)} or a dict",
                )
            if not path.is_file():
                raise invalid("log_config", log_config, "no such file")
            config = path
        elif log_config is not None:
            raise invalid(
                "log_config",
                log_config,
                "expected None, a logging.config.dictConfig dict or the path of a config file",
            )
        return cls(mode, config, check_bool("log_stdout", log_stdout))


def check_trajectory_name(name: Any) -> str:
    """A trajectory name given as ``trajectory=``."""
    if not isinstance(name, str):
        raise invalid("trajectory", name, "expected a trajectory name (str) or a Trajectory")
    try:
        validate_name(name)
    except ValueError as exc:
        raise invalid("trajectory", name, str(exc)) from None
    return name
