"""Errors and warnings raised by pytraj.

Every error is a :class:`PytrajError` and also the builtin exception a caller would
naturally catch, so ``except KeyError`` or ``hasattr`` keep working::

    PytrajError
    ├── InvalidNameError            (ValueError)    a node name breaks the naming rules
    │   └── PathTypeError           (TypeError)     a path or key that is not a string
    ├── NodeNotFoundError           (KeyError)      no node at that path (item access)
    │   └── NodeAttributeError      (AttributeError) the same, through attribute access
    ├── AmbiguousNameError          (LookupError)   a short name matches several leaves
    ├── NodeExistsError             (ValueError)    ``add_*`` of a name that is taken
    ├── NodeTypeError               (TypeError)     a node is not of the kind asked for
    ├── UnsupportedValueError       (TypeError)     a value pytraj cannot store
    ├── InvalidValueError           (ValueError)    a value that does not fit its parameter
    ├── ValueDecodeError            (ValueError)    stored bytes that are not a valid value
    ├── ParameterLockedError        (RuntimeError)  changing a parameter while a run holds it
    ├── ExplorationError            (ValueError)    ranges of unequal length, unknown names ...
    ├── RunError                    (RuntimeError)  misuse of runs (nested runs, bad index)
    │   └── RunValueMissingError    (KeyError)      a run has no value for a per-run result
    ├── RunsFailedError             (RuntimeError)  some runs of a study raised
    ├── RunFunctionNotFoundError    (ImportError)   ``pytraj resume`` cannot import the run function
    ├── OptionError                 (ValueError)    an invalid option of an Environment or loader
    │   └── UnknownOptionError      (TypeError)     an option name that does not exist
    ├── QuerySyntaxError            (ValueError)    a query string that does not parse
    ├── StudyMismatchError          (ValueError)    a re-run script differs from the stored study
    ├── MergeConflictError          (ValueError)    two trajectories cannot be merged as they are
    ├── PickleNotAllowedError       (PermissionError) a pickled leaf under ``allow_pickle=False``
    ├── MissingDependencyError      (ImportError)   an optional extra is not installed
    ├── GitError                    (RuntimeError)  the git hook cannot record or commit
    └── StorageError                (OSError)       anything about files
        ├── FileFormatError                         not a pytraj file, newer layout, corrupted
        │   └── DamagedFileError                    bytes of the file are damaged or cut off
        ├── FileLockedError                         another process writes the file
        ├── FileWriteError                          a write failed (full disk, size limit, I/O)
        └── TrajectoryNotFoundError (KeyError)      no trajectory of that name or index

Warnings::

    PytrajWarning (UserWarning)
    ├── ShadowingWarning        a child name hides a method or attribute of its group
    ├── DuplicatePointWarning   the same parameter point is explored twice
    └── RecoveryWarning         a file was repaired from its journal on open
    PytrajDeprecationWarning (DeprecationWarning)
"""

from __future__ import annotations

__all__ = [
    "AmbiguousNameError",
    "DamagedFileError",
    "DuplicatePointWarning",
    "ExplorationError",
    "FileFormatError",
    "FileLockedError",
    "FileWriteError",
    "GitError",
    "InvalidNameError",
    "InvalidValueError",
    "MergeConflictError",
    "MissingDependencyError",
    "NodeAttributeError",
    "NodeExistsError",
    "NodeNotFoundError",
    "NodeTypeError",
    "OptionError",
    "QuerySyntaxError",
    "ParameterLockedError",
    "PathTypeError",
    "PickleNotAllowedError",
    "PytrajDeprecationWarning",
    "PytrajError",
    "PytrajWarning",
    "RecoveryWarning",
    "RunError",
    "RunFunctionNotFoundError",
    "RunValueMissingError",
    "RunsFailedError",
    "ShadowingWarning",
    "StorageError",
    "StudyMismatchError",
    "TrajectoryNotFoundError",
    "UnknownOptionError",
    "UnsupportedValueError",
    "ValueDecodeError",
]


class PytrajError(Exception):
    """Base class of every error pytraj raises on purpose."""

    def __str__(self) -> str:
        # KeyError quotes its message; every pytraj error reads as plain text instead.
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class InvalidNameError(PytrajError, ValueError):
    """A node name breaks the naming rules (``[A-Za-z0-9_-]+``, no leading underscore)."""


class PathTypeError(InvalidNameError, TypeError):
    """A path or key that is not a string (``traj[0]``: runs are ``traj.runs[0]``)."""


class NodeNotFoundError(PytrajError, KeyError):
    """No node exists at the requested path."""


class NodeAttributeError(NodeNotFoundError, AttributeError):
    """No child of that name, raised through attribute access so ``hasattr`` works."""


class AmbiguousNameError(PytrajError, LookupError):
    """A short name matches several leaves at the same level of preference."""


class NodeExistsError(PytrajError, ValueError):
    """``add_*`` was asked for a name that already exists."""


class NodeTypeError(PytrajError, TypeError):
    """A node exists but is not of the kind the operation needs."""


class UnsupportedValueError(PytrajError, TypeError):
    """A value of a type that pytraj cannot store in this kind of leaf."""


class InvalidValueError(PytrajError, ValueError):
    """A value of a supported type that does not fit where it is put."""


class ValueDecodeError(PytrajError, ValueError):
    """Bytes that are not a valid encoding of a value (truncated, damaged or foreign)."""


class ParameterLockedError(PytrajError, RuntimeError):
    """A locked parameter (one that a run uses) was changed."""


class ExplorationError(PytrajError, ValueError):
    """Exploration input that cannot become a list of parameter points."""


class RunError(PytrajError, RuntimeError):
    """A run was used in a way that cannot work (nested runs, unknown index ...)."""


class RunValueMissingError(PytrajError, KeyError):
    """A run has no value for a per-run result (failed, pending or not produced)."""


class RunsFailedError(PytrajError, RuntimeError):
    """Some runs of a study raised; the others completed and are stored.

    Attributes
    ----------
    failed : list of int
        Indices of the runs that failed.
    """

    def __init__(self, message: str, failed: list[int] | None = None) -> None:
        super().__init__(message)
        self.failed: list[int] = list(failed or [])


class RunFunctionNotFoundError(PytrajError, ImportError):
    """The run function recorded with a study cannot be imported to continue it.

    Nothing was recorded (a study that never ran, or written by an older pytraj), its
    module or script is gone, or it is not importable (a lambda, a nested function).
    """


class OptionError(PytrajError, ValueError):
    """An option of an Environment, loader or command has an invalid value."""


class UnknownOptionError(OptionError, TypeError):
    """A keyword that names no option (``Environment(ncore=2)``); the message suggests one."""


class QuerySyntaxError(PytrajError, ValueError):
    """A query string (``traj.runs.where``, ``pytraj runs --where``) that does not parse."""


class StudyMismatchError(PytrajError, ValueError):
    """A re-run study definition differs from the one stored in the file.

    Attributes
    ----------
    differences : list
        One entry per difference (what differs, the stored and the script's value).
    """

    def __init__(self, message: str, differences: list[object] | None = None) -> None:
        super().__init__(message)
        self.differences: list[object] = list(differences or [])


class MergeConflictError(PytrajError, ValueError):
    """Two trajectories disagree in a way a merge cannot resolve; nothing was written.

    Attributes
    ----------
    conflicts : list of str
        One entry per difference, naming the node and both values.
    """

    def __init__(self, message: str, conflicts: list[str] | None = None) -> None:
        super().__init__(message)
        self.conflicts: list[str] = list(conflicts or [])


class PickleNotAllowedError(PytrajError, PermissionError):
    """A pickled leaf was accessed while loading with ``allow_pickle=False``."""


class MissingDependencyError(PytrajError, ImportError):
    """An optional dependency is missing; the message names the extra that installs it."""


class GitError(PytrajError, RuntimeError):
    """The git hook cannot record or commit the repository (dirty tree with
    ``git_fail=True``, no ``git`` program, a failed commit)."""


class StorageError(PytrajError, OSError):
    """A file could not be read or written as asked."""


class FileFormatError(StorageError):
    """A file is not a pytraj file, has a newer layout, or is damaged."""


class DamagedFileError(FileFormatError):
    """A pytraj file whose bytes are damaged or cut off: HDF5 cannot open or read it.

    The message names the file and the node, and the way out: a file with its journal
    (``<file>.journal``) beside it is rebuilt on open; otherwise restore it from a backup,
    and ``pytraj check FILE`` reports what is still readable.

    Attributes
    ----------
    reason
        What HDF5 said, in one line.
    node
        The HDF5 path of the node that could not be read ("" when the file did not open).
    """

    def __init__(self, message: str, reason: str = "", node: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message
        self.node = node


class FileLockedError(StorageError):
    """Another process holds a file open for writing."""


class FileWriteError(StorageError):
    """Writing a file failed: a full disk, a file size limit or an I/O error.

    What was stored stays in the file's journal, and the next open (after space is
    freed) replays it; :attr:`path` is the file.
    """

    def __init__(self, message: str, path: object = None) -> None:
        super().__init__(message)
        self.path = path


class TrajectoryNotFoundError(StorageError, KeyError):
    """A file holds no trajectory of the requested name or index."""


class PytrajWarning(UserWarning):
    """Base class of pytraj's warnings."""


class ShadowingWarning(PytrajWarning):
    """A child name hides a method or attribute; reach it with ``group["name"]``."""


class DuplicatePointWarning(PytrajWarning):
    """The same parameter point was explored more than once; every copy runs."""


class RecoveryWarning(PytrajWarning):
    """A file that was not closed cleanly was repaired from its journal."""


class PytrajDeprecationWarning(DeprecationWarning):
    """A pytraj feature that will go away; the message names the replacement."""
