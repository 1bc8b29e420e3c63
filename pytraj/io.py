"""Where trees meet files: load trajectories from pytraj HDF5 files, list and merge them.

>>> import pathlib, tempfile
>>> import pytraj as pt
>>> path = pathlib.Path(tempfile.mkdtemp()) / "study.h5"
>>> traj = pt.Trajectory("demo", filename=path)
>>> _ = traj.add_parameter("x", 1.0)
>>> traj.explore({"x": [1.0, 2.0]})
>>> for i in range(len(traj)):
...     with traj.start_run(i):
...         _ = traj.add_result("z", traj.x * 10)
>>> traj.close()
>>> list_trajectories(path)
['demo']
>>> loaded = load(path)
>>> loaded.results.z[1]
20.0
>>> loaded.close()
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytraj.errors import (
    MergeConflictError,
    OptionError,
    PickleNotAllowedError,
    RecoveryWarning,
    StorageError,
)
from pytraj.leaves.parameter import Parameter
from pytraj.leaves.result import Result
from pytraj.trajectory.definition import to_definition
from pytraj.trajectory.merging import MergeReport
from pytraj.trajectory.trajectory import Trajectory

# pytraj.storage.hdf5 (and so PyTables) is imported inside the functions that open files:
# ``import pytraj`` stays fast without it.
if TYPE_CHECKING:
    from pytraj.storage.hdf5 import JournalStatus

__all__ = ["journal_status", "list_trajectories", "load", "merge_files", "merge_folder"]


def list_trajectories(path: str | os.PathLike[str], *, read_only: bool = False) -> list[str]:
    """Names of the trajectories stored in ``path``, in creation order.

    With ``read_only``, a journal left by a study that is running or crashed is not
    replayed: nothing is written (see :func:`journal_status`).

    Raises
    ------
    StorageError
        When the file is missing; :class:`~pytraj.errors.FileFormatError` when it is not a
        pytraj file, has a newer layout, or is damaged without a journal to repair it.
    """
    from pytraj.storage.hdf5 import list_trajectories_in

    return list_trajectories_in(path, read_only=read_only)


def journal_status(path: str | os.PathLike[str]) -> JournalStatus | None:
    """The journal pending beside ``path``, or None when the file was closed cleanly.

    A pending journal means a study is writing the file now (``status.writer`` names
    the process) or its writer died; ``status.unflushed`` counts, per trajectory, the
    runs it holds beyond the file, and ``status.describe()`` says it in one line.
    Nothing is written and no lock is taken.
    """
    from pytraj.storage.hdf5 import journal_status_of

    return journal_status_of(path)


def load(
    path: str | os.PathLike[str],
    name: str | None = None,
    index: int = -1,
    *,
    allow_pickle: bool = True,
    lazy: bool = True,
    read_only: bool = False,
) -> Trajectory:
    """Load a stored trajectory.

    Only the skeleton is read (names, types, comments, parameters, the run table);
    results are read when accessed. The trajectory can go on running: runs committed
    into it are stored in the same file.

    Parameters
    ----------
    path
        The HDF5 file.
    name
        The trajectory's name; when None, ``index`` picks one in creation order.
    index
        Position in creation order (-1, the default: the newest).
    allow_pickle
        Whether values of ``PickleParameter`` / ``PickleResult`` leaves may be unpickled
        (only on access). With False they raise
        :class:`~pytraj.errors.PickleNotAllowedError`; everything else works.
    lazy
        With False, read every value now (trajectory-level values and all per-run
        columns), e.g. before the file goes away.
    read_only
        Never write to the file, and the trajectory cannot run or change. A journal left
        by a study that is running or crashed is not replayed but laid over the file in
        memory: runs, values, failures (and a definition the file lacks) read as a
        replay would give them, while file, journal and lock stay untouched
        (:func:`journal_status` says how many runs come from the journal).

    Raises
    ------
    TrajectoryNotFoundError
        When the file holds no such trajectory (the message lists those it holds).
    FileFormatError
        When the file is not a pytraj file, has a newer layout, or is damaged without a
        journal to repair it.
    StorageError
        When the file is missing.
    """
    from pytraj.storage.hdf5 import loading_trajectory

    # One open of the file to find the trajectory and read its whole skeleton.
    with (
        loading_trajectory(
            path, name, index, allow_pickle=allow_pickle, read_only=read_only
        ) as storage,
        storage.reading(),
    ):
        defined = storage.has_definition()
        traj = Trajectory.from_definition(storage.read_definition(), storage)
    if not defined:
        warnings.warn(
            RecoveryWarning(
                f"trajectory {traj.name!r} in {storage.path} holds no study yet: it was "
                "created, but its writer stopped (killed?) before the study's parameters "
                "were stored, so it is empty; run the script again to start the study "
                "(nothing of it was stored to lose)"
            ),
            stacklevel=2,
        )
    if not lazy:
        load_everything(traj)
    return traj


def load_everything(traj: Trajectory) -> None:
    """Read every stored value of ``traj`` now (pickles only where allowed)."""

    traj.run_table.rows  # noqa: B018  # reads the run table (otherwise read on first use)
    for leaf in traj.iter_leaves():
        try:
            if isinstance(leaf, Parameter):
                leaf.load_values()
            elif isinstance(leaf, Result):
                if leaf.per_run:
                    for item in leaf.item_names():
                        traj.column_cache.column(leaf.full_name, item)
                else:
                    leaf.items  # noqa: B018  # loads the items
        except PickleNotAllowedError:
            continue  # refused pickles stay in the file, as the caller asked


# -- merging files ---------------------------------------------------------------------------
#: A merge into ``out`` is written to ``.<out name>.merging-<pid>`` beside it first.
MERGING_INFIX = ".merging-"


def merge_files(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    name: str | None = None,
    remove_duplicates: bool = False,
    ignore_data: Iterable[str] = (),
    trial_parameter: str | None = None,
    strict: bool = False,
    dry_run: bool = False,
    backup: bool = False,
    delete_other: bool = False,
) -> list[MergeReport]:
    """Merge the trajectories of several files into one trajectory in ``out``.

    When ``out`` does not exist, the first input's trajectory is copied and the others
    are merged into it; when it exists, every input is merged into its trajectory
    (``name``, or the newest). Either way the result is written to a temporary file
    beside ``out``, fsynced and renamed into place, so a crash at any moment leaves
    ``out`` as it was (absent, or the old state) or complete. Inputs are only read
    (unless ``delete_other``).

    Parameters
    ----------
    paths
        The input files (one or more).
    out
        The merged file.
    name
        The trajectory to take from each input (and to merge into in ``out``); default:
        each file's newest.
    remove_duplicates, ignore_data, trial_parameter, strict
        As in :meth:`pytraj.Trajectory.merge`.
    dry_run
        Write nothing; return what each input would do (each planned against the first
        input, or against ``out`` when it exists). Inputs that cannot be merged are all
        named in one ``MergeConflictError``.
    backup
        Keep a copy of an existing ``out`` as ``<out stem>.backup-<UTC time><suffix>``.
    delete_other
        Delete the input files once the merged file is in place (each must hold only
        the merged trajectory).

    Returns
    -------
    list of MergeReport
        One per input, in order (for a new ``out``, the first is the copy of the first
        input).

    Raises
    ------
    MergeConflictError
        When an input cannot be merged; ``out`` and the inputs are unchanged.
    OptionError
        For no inputs, ``out`` among the inputs, or ``delete_other`` on a file holding
        other trajectories too.
    """
    from pytraj.storage.hdf5.files import WriterLock

    sources = [Path(p) for p in paths]
    target_path = Path(out)
    if isinstance(paths, (str, os.PathLike)) or not sources:
        raise OptionError("merge_files needs a list of input files (at least one)")
    resolved = {p.resolve() for p in sources}
    if target_path.resolve() in resolved:
        raise OptionError(
            f"the output {target_path} is also an input; merge into a new file, or leave it "
            "out of the inputs to merge the others into it"
        )
    if len(resolved) != len(sources):
        raise OptionError("an input file is given twice")
    for source in sources:
        if not source.exists():
            raise StorageError(f"cannot merge {source}: no such file")
    if delete_other:
        for source in sources:
            held = list_trajectories(source)
            if len(held) > 1:
                raise OptionError(
                    f"delete_other would delete {source}, which holds {len(held)} trajectories "
                    f"({', '.join(held)}); merge without delete_other and remove it yourself"
                )
    options: dict[str, Any] = {
        "remove_duplicates": remove_duplicates,
        "ignore_data": tuple(ignore_data),
        "trial_parameter": trial_parameter,
        "strict": strict,
    }
    exists = target_path.exists()
    if dry_run:
        return _dry_run(sources, target_path if exists else None, name, options)
    if exists:
        list_trajectories(target_path)  # a journal left by a killed writer is replayed
    temporary = target_path.with_name(f".{target_path.name}{MERGING_INFIX}{os.getpid()}")
    lock = WriterLock.acquire(target_path) if exists else None
    try:
        # Each file is opened once for the whole merge (the output for writing, each
        # input for reading), from loading it to releasing it, not once per step.
        with contextlib.ExitStack() as output:
            if exists:
                if backup:
                    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
                    kept = target_path.with_stem(f"{target_path.stem}.backup-{stamp}")
                    shutil.copy2(target_path, kept)
                shutil.copyfile(target_path, temporary)
                output.enter_context(_kept_for_writing(temporary))
                target = load(temporary, name)
                reports = []
            else:
                target, first_report = _first_copy(sources[0], name, temporary, output)
                reports = [first_report]
                sources = sources[1:]
            _make_disposable(target)
            try:
                for source in sources:
                    with _kept_for_reading(source):
                        other = load(source, name)
                        try:
                            with _held_open(target, other):
                                reports.append(target.merge(other, **options))
                        finally:
                            _close_input(other)
            finally:
                _close_output(target)
        _fsync(temporary)
        os.replace(temporary, target_path)
        _fsync(target_path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    finally:
        if lock is not None:
            lock.release()
    if delete_other:
        for given in paths:
            Path(given).unlink()
    return reports


def merge_folder(
    folder: str | os.PathLike[str],
    out: str | os.PathLike[str],
    pattern: str = "*.h5",
    **options: Any,
) -> list[MergeReport]:
    """Merge every file of ``folder`` matching ``pattern`` (sorted by name) into ``out``.

    ``out`` itself, backups and temporary merge files are left out. Options are those of
    :func:`merge_files`.

    Raises
    ------
    OptionError
        When no file matches.
    """
    base = Path(folder)
    target = Path(out).resolve()
    paths = [
        Path(p)
        for p in sorted(glob.glob(str(base / pattern)))
        if Path(p).resolve() != target
        and ".backup-" not in Path(p).name
        and MERGING_INFIX not in Path(p).name
        and Path(p).is_file()
    ]
    if not paths:
        raise OptionError(f"no file in {base} matches {pattern!r}; nothing to merge")
    return merge_files(paths, out, **options)


def _first_copy(
    source: Path, name: str | None, path: Path, output: contextlib.ExitStack
) -> tuple[Trajectory, MergeReport]:
    """A copy of ``source``'s trajectory in the new file ``path``, and its report.

    A file holding only that trajectory, closed cleanly, is copied byte for byte (under
    its writer lock, so no writer changes it meanwhile) and kept open for writing in
    ``output``; otherwise the trajectory's definition is copied and its runs merged in.
    """
    from pytraj.storage.hdf5.files import WriterLock
    from pytraj.storage.hdf5.layout import journal_path_for

    held = list_trajectories(source)  # replays a journal a killed writer left
    if len(held) == 1 and name in (None, held[0]):
        lock = WriterLock.acquire(source)
        try:
            if not journal_path_for(source).exists():
                shutil.copyfile(source, path)
                copied = True
            else:
                copied = False
        finally:
            lock.release()
        if copied:
            output.enter_context(_kept_for_writing(path))
            target = load(path, name)
            n = len(target)
            report = MergeReport(
                kind="copy",
                source=f"{source}:{target.name}",
                runs_before=0,
                runs_after=n,
                other_runs=n,
                appended=n,
            )
            return target, report
    first = load(source, name)
    try:
        target = _copy_of(first, path)
        report = target.merge(first)
    finally:
        _close_input(first)
    return target, report


def _copy_of(source: Trajectory, path: Path) -> Trajectory:
    """A new trajectory in ``path`` with ``source``'s definition and no runs yet."""
    from pytraj.storage.hdf5 import open_new_trajectory

    for leaf in source.iter_leaves():
        if isinstance(leaf, Result) and not leaf.per_run:
            leaf.items  # noqa: B018  # reads the items: the copy must hold the values
    definition = to_definition(source)
    # A temporary file: see _make_disposable.
    storage = open_new_trajectory(path, definition.name, disposable=True)
    traj = Trajectory.from_definition(definition, storage)
    traj.store_definition()
    return traj


def _make_disposable(traj: Trajectory) -> None:
    """Let ``traj``'s writes into the temporary merge file skip the journal.

    A crash leaves the temporary file, which is never renamed into place and is
    discarded, so a journal beside it would protect nothing; runs then go into the file
    column by column (:meth:`~pytraj.storage.interface.Storage.append_columns`).
    """
    from pytraj.storage.hdf5 import HDF5Storage

    storage = traj.storage
    if isinstance(storage, HDF5Storage):
        storage.disposable = True


def _close_input(traj: Trajectory) -> None:
    """Release an input's file without storing into it: inputs are only read
    (``Trajectory.close`` would store its definition again, after comparing it)."""
    traj.storage.close()


def _close_output(traj: Trajectory) -> None:
    """Release the merged file. ``Trajectory.merge`` stores the definition when it ends,
    so it is stored here only if something changed since, not described and compared
    once more (100,000 point ids and explored values)."""
    if traj.definition_dirty:
        traj.store_definition()
    traj.storage.close()


def _kept_for_writing(path: Path) -> contextlib.AbstractContextManager[Any]:
    """The merge's temporary output open for writing until the block ends: loading it,
    merging into it and releasing it reuse the one handle."""
    from pytraj.storage.hdf5.files import file_state

    return file_state(path).writing()


def _kept_for_reading(path: Path) -> contextlib.AbstractContextManager[Any]:
    """An input open for reading until the block ends (loading and merging it reuse
    the handle); not when a journal beside it is to be replayed first, which writes."""
    from pytraj.storage.hdf5.files import file_state
    from pytraj.storage.hdf5.layout import journal_path_for

    if journal_path_for(path).exists():
        return contextlib.nullcontext()
    return file_state(path).reading()


@contextlib.contextmanager
def _held_open(target: Trajectory, source: Trajectory) -> Iterator[None]:
    """Keep ``target``'s file open for writing and ``source``'s for reading meanwhile."""
    from pytraj.storage.hdf5 import HDF5Storage

    with contextlib.ExitStack() as stack:
        if isinstance(target.storage, HDF5Storage):
            stack.enter_context(target.storage.kept_open())
        if isinstance(source.storage, HDF5Storage):
            stack.enter_context(source.storage.reading())
        yield


def _dry_run(
    sources: list[Path], existing: Path | None, name: str | None, options: dict[str, Any]
) -> list[MergeReport]:
    target = load(existing if existing is not None else sources[0], name)
    reports = []
    refused: list[MergeConflictError] = []
    try:
        for source in sources if existing is not None else sources[1:]:
            other = load(source, name)
            try:
                reports.append(target.merge(other, dry_run=True, **options))
            except MergeConflictError as error:
                refused.append(error)  # a dry run reports the conflicts of every input
            finally:
                other.close()
    finally:
        target.close()
    if len(refused) == 1:
        raise refused[0]
    if refused:
        raise MergeConflictError(
            f"{len(refused)} of {len(reports) + len(refused)} inputs cannot be merged:\n"
            + "\n".join(str(error) for error in refused),
            [conflict for error in refused for conflict in error.conflicts],
        )
    return reports


def _fsync(path: Path) -> None:
    """Make ``path`` (a file, or a folder's entries) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
