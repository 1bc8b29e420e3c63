"""Plain records exchanged between the trajectory and storage backends.

Storage never sees a tree: the trajectory describes itself as a
:class:`StudyDefinition` (groups, leaves, links, explored ranges) and each finished run
as a :class:`RunRecord`. Workers build run records too, so the same path serves a
process pool and a cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "COMPLETED",
    "FAILED",
    "NOT_LOADED",
    "PENDING",
    "RUNNING",
    "STATUS_NAMES",
    "FailureRecord",
    "GroupRecord",
    "LazyValue",
    "LeafRecord",
    "LinkRecord",
    "RunRecord",
    "StudyDefinition",
    "WRITER_KEY",
]

#: Run status codes as stored in the run table. "running" exists only in memory:
#: after a crash an unfinished run is pending again.
PENDING, RUNNING, COMPLETED, FAILED = 0, 1, 2, 3
STATUS_NAMES = {PENDING: "pending", RUNNING: "running", COMPLETED: "completed", FAILED: "failed"}


class _NotLoaded:
    """Marks an item whose value stays in the file until it is accessed."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_LOADED"


NOT_LOADED: Any = _NotLoaded()

#: The per-run column (no leaf has the empty path) holding, for each run, the position in
#: ``provenance["writers"]`` of the writer session that stored it: the file and
#: trajectory it was written to, host, pid, pytraj version and executor kind. Runs stored
#: without one (manual runs, files of layout 1) have no value there.
WRITER_KEY: tuple[str, str] = ("", "writer")


class LazyValue:
    """A stored value that is decoded only when accessed (pickled values, big arrays).

    Leaves call :meth:`load` the first time the value is needed; a backend opened with
    ``allow_pickle=False`` gives a loader that raises
    :class:`~pytraj.errors.PickleNotAllowedError` instead.
    """

    __slots__ = ("_load", "description")

    def __init__(self, load: Callable[[], Any], description: str = "") -> None:
        self._load = load
        self.description = description

    def load(self) -> Any:
        """Decode and return the value."""
        return self._load()

    @property
    def loader(self) -> Callable[[], Any]:
        """The callable :meth:`load` calls (the same object, e.g. to share its cache)."""
        return self._load

    def __repr__(self) -> str:
        return f"<not loaded: {self.description}>" if self.description else "<not loaded>"


@dataclass(slots=True)
class GroupRecord:
    """A group of the tree: its full name, comment and annotations."""

    path: str
    comment: str = ""
    annotations: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class LinkRecord:
    """A link at ``path`` pointing to the node at ``target`` (full names)."""

    path: str
    target: str
    comment: str = ""


@dataclass(slots=True)
class LeafRecord:
    """A leaf of the tree.

    Attributes
    ----------
    path
        Full name (``"parameters.x"``).
    leaf_class
        Name of the registered leaf class (``"Parameter"``, ``"Result"`` ...).
    per_run
        Whether the leaf holds one value per run (its values live in run records).
    pickled
        Whether values are stored pickled (Pickle leaves only).
    default
        A parameter's default value.
    explored
        A parameter's explored values, one per run, or None.
    items
        A trajectory-level result's items; for a per-run leaf, its item names mapped
        to None (the values arrive with the runs).
    """

    path: str
    leaf_class: str
    comment: str = ""
    annotations: dict[str, Any] = field(default_factory=dict)
    per_run: bool = False
    pickled: bool = False
    default: Any = None
    explored: list[Any] | None = None
    items: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class StudyDefinition:
    """Everything about a trajectory except its per-run values and run table."""

    name: str
    comment: str = ""
    created: float = 0.0
    provenance: dict[str, Any] = field(default_factory=dict)
    groups: list[GroupRecord] = field(default_factory=list)
    leaves: list[LeafRecord] = field(default_factory=list)
    links: list[LinkRecord] = field(default_factory=list)
    n_runs: int = 1
    point_ids: list[bytes] = field(default_factory=list)


@dataclass(slots=True)
class FailureRecord:
    """Why one attempt of a run failed."""

    idx: int
    attempt: int
    exc_type: str
    message: str
    traceback: str
    log: str = ""


@dataclass(slots=True)
class RunRecord:
    """One finished attempt of one run, as a worker or manual run hands it over.

    Attributes
    ----------
    values
        ``(leaf path, item) -> value`` for every per-run item the run produced.
    leaves
        Definitions of per-run leaves this run used (their ``items`` name the items);
        the writer creates the ones it does not know yet.
    failure
        Set when the run raised; ``status`` is then :data:`FAILED`.
    log
        Captured log records and standard output of the run, when asked for.
    """

    idx: int
    point_id: bytes
    status: int = COMPLETED
    attempt: int = 1
    start: float = 0.0
    finish: float = 0.0
    host: str = ""
    pid: int = 0
    values: dict[tuple[str, str], Any] = field(default_factory=dict)
    leaves: list[LeafRecord] = field(default_factory=list)
    failure: FailureRecord | None = None
    log: str = ""
