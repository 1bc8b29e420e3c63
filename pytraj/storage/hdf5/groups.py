"""The file's root and its trajectory groups: creating them and reading what they list.

Below the writer role and recovery, which both create files and groups; nothing here
takes a lock or touches the journal.
"""

from __future__ import annotations

from typing import Any

from pytraj._version import __version__
from pytraj.storage.hdf5.codecs import get_attr
from pytraj.storage.hdf5.files import FileState
from pytraj.storage.hdf5.layout import (
    JOURNAL_ID,
    JOURNAL_RUNS,
    SCHEMA,
    SCHEMA_VERSION,
    TRAJECTORIES,
)
from pytraj.storage.hdf5.options import FileOptions
from pytraj.storage.hdf5.runs import create_runs_group

__all__ = [
    "create_file",
    "journal_attrs",
    "listed_but_missing",
    "new_trajectory_group",
    "stored_names",
]


def create_file(state: FileState) -> None:
    """Create an empty pytraj file (the caller holds the lock)."""
    with state.writing(create=True) as h5:
        attrs = h5.root._v_attrs
        attrs[SCHEMA] = SCHEMA_VERSION
        attrs[TRAJECTORIES] = ""
        attrs["pytraj_version"] = __version__


def stored_names(h5: Any) -> list[str]:
    """Trajectory names in creation order (groups the root list misses come last)."""
    text = get_attr(h5.root._v_attrs, TRAJECTORIES, "")
    names = [name for name in text.split(",") if name]
    present = {name for name, group in h5.root._v_groups.items() if SCHEMA in group._v_attrs}
    ordered = [name for name in names if name in present]
    ordered.extend(sorted(present - set(ordered)))
    return ordered


def listed_but_missing(h5: Any) -> list[str]:
    """Trajectories the root lists whose group the file does not hold (a damaged file).

    A trajectory's group is created before the root lists it, and unlisted in the same
    write that removes it (overwrite), so only damage leaves a listed name without a
    group: a kill while HDF5 rewrote the root's metadata.
    """
    text = get_attr(h5.root._v_attrs, TRAJECTORIES, "")
    present = set(stored_names(h5))
    return [name for name in text.split(",") if name and name not in present]


def new_trajectory_group(
    h5: Any, name: str, options: FileOptions, journal_id: str, journal_runs: int
) -> Any:
    """Create the group of a new, empty trajectory (not yet listed on the root)."""
    group = h5.create_group("/", name)
    attrs = group._v_attrs
    attrs[SCHEMA] = SCHEMA_VERSION
    # The root names the newest layout inside, so an older pytraj refuses the file
    # instead of misreading this trajectory (its layout-1 neighbours stay as they are).
    h5.root._v_attrs[SCHEMA] = SCHEMA_VERSION
    attrs["n_runs"] = 1
    attrs[JOURNAL_ID] = journal_id
    attrs[JOURNAL_RUNS] = journal_runs
    create_runs_group(h5, group, options, 1)
    return group


def journal_attrs(h5: Any, name: str) -> tuple[str, int]:
    """The journal id and record count a trajectory group says it holds."""
    attrs = h5.get_node(f"/{name}")._v_attrs
    journal_id = str(attrs[JOURNAL_ID]) if JOURNAL_ID in attrs else ""
    count = int(attrs[JOURNAL_RUNS]) if JOURNAL_RUNS in attrs else 0
    return journal_id, count
