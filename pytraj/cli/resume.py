"""``pytraj resume FILE``: continue a stored study with the run function it recorded.

Every ``env.run`` records its run function with the trajectory (``run_module``,
``run_function`` and ``run_script`` in ``traj.provenance``). This command loads the
study, imports that function and continues the study with an
:class:`~pytraj.Environment` that adopts it: only runs that have not completed run
(failed ones too with ``--retry-failed``). A function defined in the script itself
(``__main__``) is imported from the script's file under the script's name, so its
``if __name__ == "__main__":`` block does not run.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "import_run_function", "resume"]

_FROM_PYTHON = (
    "continue it from Python instead: pt.Environment(trajectory={name!r}, "
    "filename={file!r}).resume(simulate, retry_failed=...) with the run function"
)


def add_parser(subparsers: Any) -> None:
    """Add the ``resume`` subcommand."""
    parser = subparsers.add_parser(
        "resume",
        help="continue a study with the run function it recorded",
        description=(
            "Continue a stored study: import the run function recorded when the study ran "
            "and run every run that has not completed."
        ),
    )
    parser.add_argument("file", help="the study's HDF5 file")
    parser.add_argument("--name", default=None, help="trajectory name (default: the latest)")
    parser.add_argument(
        "--index", type=int, default=-1, help="trajectory index when --name is not given"
    )
    parser.add_argument("--ncores", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--retry-failed", action="store_true", help="also run the runs whose last attempt failed"
    )
    parser.set_defaults(handler=resume)


def _not_found(message: str, name: str, file: Path) -> Exception:
    from pytraj.errors import RunFunctionNotFoundError

    how = _FROM_PYTHON.format(name=name, file=str(file))
    return RunFunctionNotFoundError(f"{message}; {how}")


def _import_script(script: Path, name: str, file: Path) -> Any:
    """Import a script as a module named after it, without running its main block."""
    if not script.is_file():
        raise _not_found(
            f"the run function was defined in the script {script}, which no longer exists",
            name,
            file,
        )
    module_name = script.stem
    if not module_name.isidentifier() or module_name in sys.modules:
        # A name taken already (or no identifier): workers started by fork still see it.
        module_name = "pytraj_resumed_script"
    spec = importlib.util.spec_from_file_location(module_name, script)
    if spec is None or spec.loader is None:
        raise _not_found(f"cannot import the script {script} as a module", name, file)
    module = importlib.util.module_from_spec(spec)
    # Registered, and its folder on sys.path, so that worker processes (spawn) import it too.
    sys.modules[module_name] = module
    folder = str(script.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise _not_found(
            f"importing the script {script} raised {type(exc).__name__}: {exc}", name, file
        ) from exc
    return module


def _import_module(module_name: str, script: Path | None, name: str, file: Path) -> Any:
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        if script is not None and script.is_file():
            return _import_script(script, name, file)
        where = f" (defined in {script}, which no longer exists)" if script else ""
        raise _not_found(
            f"the run function's module {module_name!r} cannot be imported{where}: {exc}",
            name,
            file,
        ) from exc


def import_run_function(provenance: dict[str, Any], name: str, file: Path) -> Any:
    """The run function a study recorded in its provenance.

    Raises
    ------
    RunFunctionNotFoundError
        When nothing usable is recorded, the module or script is gone, or the function
        cannot be found in it.
    """
    module_name = str(provenance.get("run_module", ""))
    qualname = str(provenance.get("run_function", ""))
    recorded = str(provenance.get("run_script", ""))
    if not module_name or not qualname:
        raise _not_found(
            f"trajectory {name!r} in {file} has no run function recorded (it never ran, or "
            "an older pytraj wrote it)",
            name,
            file,
        )
    described = f"{module_name}.{qualname}" + (f" from {recorded}" if recorded else "")
    if int(provenance.get("run_arguments", 0)) or bool(provenance.get("run_mapped", False)):
        raise _not_found(
            f"the run function {described} was given extra arguments, which are not recorded",
            name,
            file,
        )
    if "<locals>" in qualname or "<lambda>" in qualname:
        raise _not_found(
            f"the run function {described} is not importable (a nested function or lambda)",
            name,
            file,
        )
    script = Path(recorded) if recorded else None
    for folder in (str(provenance.get("cwd", "")), str(script.parent) if script else ""):
        if folder and os.path.isdir(folder) and folder not in sys.path:
            sys.path.append(folder)  # where the study ran: its modules import from there
    if module_name == "__main__":
        if script is None:
            raise _not_found(
                f"the run function {qualname} was defined in an interactive session, "
                "not in a script",
                name,
                file,
            )
        module = _import_script(script, name, file)
    else:
        module = _import_module(module_name, script, name, file)
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise _not_found(f"the run function {described} is no longer defined there", name, file)
    if not callable(found):
        raise _not_found(f"{described} is not a function", name, file)
    return found


def resume(args: argparse.Namespace) -> int:
    """Continue the study in ``args.file`` and print what ran.

    Returns
    -------
    int
        0, or 1 when some runs failed now (they are recorded; ``--retry-failed`` runs
        them again). "Left" counts pending runs and failed ones that were not retried.
    """
    import pytraj as pt
    from pytraj.errors import OptionError

    if args.ncores < 1:
        raise OptionError(f"--ncores {args.ncores} is invalid: give 1 or more worker processes")
    file = Path(args.file)
    if not file.exists():
        raise FileNotFoundError(f"{file} does not exist")
    stored = pt.load(file, args.name, args.index, allow_pickle=False)
    name = stored.name
    func = import_run_function(dict(stored.provenance), name, file.resolve())
    env = pt.Environment(
        trajectory=name,
        filename=file,
        ncores=args.ncores,
        on_error="continue",
        progress=False,
    )
    try:
        attempted = len(env.plan(retry_failed=args.retry_failed))
        done = env.resume(func, retry_failed=args.retry_failed)
        counts = env.trajectory.run_table.counts()
    finally:
        env.close()
    failed_now = attempted - len(done)
    left = counts["pending"] + (0 if args.retry_failed else counts["failed"] - failed_now)
    print(
        f"resumed {name!r} in {file}: {len(done)} runs completed now, {failed_now} failed, "
        f"{left} left ({counts['completed']} of {len(env.trajectory)} runs completed)"
    )
    return 1 if failed_now else 0
