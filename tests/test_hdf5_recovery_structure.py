"""A file whose root records the journal as flushed but which lost or tore a node inside a
trajectory is damaged: opening it (a reader, or the study's script run again) rebuilds it
from the journal, with exactly the journal's runs.

The studies are real: an Environment script killed by ``PYTRAJ_CRASH_AT=close`` after
its file was flushed and fsynced and before its journal was removed (so the root records
the whole journal as flushed), then one node removed or its end torn, as a kill while
HDF5 rewrote its metadata can leave it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import tables

import pytraj as pt
from pytraj.errors import RecoveryWarning
from pytraj.io import load
from pytraj.storage.hdf5 import journal_path_for
from pytraj.storage.hdf5.groups import damaged_structure
from pytraj.storage.hdf5.journal import read_journal
from pytraj.storage.records import COMPLETED, FAILED, STATUS_NAMES, RunRecord

pytestmark = pytest.mark.storage

ROOT = Path(pt.__file__).resolve().parents[1]
N_POINTS = 30
#: Points that fail (n % 7 == 3): the file holds the failure table and its texts.
FAILING = [n for n in range(N_POINTS) if n % 7 == 3]

SCRIPT = textwrap.dedent(
    f"""
    import sys
    import numpy as np
    import pytraj as pt

    def simulate(traj):
        if traj.n % 7 == 3:
            raise ValueError(f"point {{traj.n}} fails")
        traj.add_result("z", traj.x * 2.0)
        traj.add_result("label", f"n={{traj.n}}")
        traj.add_result("vec", np.full(3, traj.x))
        return traj.n

    if __name__ == "__main__":
        env = pt.Environment(
            trajectory="study", filename=sys.argv[1], on_error="continue", progress=False
        )
        traj = env.trajectory
        traj.add_parameter("x", 0.0)
        traj.add_parameter("n", 0)
        traj.add_parameter("weights", np.arange(5000.0))  # a default read from its node
        traj.explore({{"x": [i / 4 for i in range({N_POINTS})], "n": list(range({N_POINTS}))}})
        traj.add_result("setup", note="made before the runs", table=np.arange(4.0))
        env.run(simulate)
        env.close()
    """
)

#: Every node the study's trajectory requires, as the layout names them.
REQUIRED = [
    "catalog",
    "runs",
    "runs/table",
    "runs/explored",
    "runs/hosts",
    "runs/columns",
    "runs/failures",
    "runs/failure_messages",
    "runs/writer",
    "runs/writer/cells",
    "runs/writer/values",
    "parameters",
    "parameters/x",
    "parameters/weights/default",
    "results/z",
    "results/z/z",
    "results/z/z/cells",
    "results/z/z/values",
    "results/label/label/values",
    "results/vec/vec/values",
    "results/setup/note",
    "results/setup/table",
]


def run_study(path: Path, crash_at: str | None = None) -> int:
    script = path.with_name("study.py")
    script.write_text(SCRIPT)
    env = {key: value for key, value in os.environ.items() if key != "PYTRAJ_CRASH_AT"}
    env["PYTHONPATH"] = str(ROOT)
    if crash_at is not None:
        env["PYTRAJ_CRASH_AT"] = crash_at
    done = subprocess.run(
        [sys.executable, str(script), str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if done.returncode not in (0, -9):
        raise AssertionError(done.stderr)
    return done.returncode


@pytest.fixture(scope="module")
def killed_at_close(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished study whose writer was killed after its last flush and fsync, before
    removing its journal: the root records the whole journal as flushed."""
    path = tmp_path_factory.mktemp("killed") / "study.h5"
    assert run_study(path, crash_at="close") == -9
    journal = journal_path_for(path)
    with tables.open_file(str(path)) as h5:
        assert h5.root._v_attrs.pytraj_journal_size == journal.stat().st_size
        assert damaged_structure(h5) is None
    records = read_journal(journal).runs["study"]
    assert sorted(record.idx for record in records) == list(range(N_POINTS))
    return path


def copy_study(source: Path, folder: Path) -> Path:
    folder.mkdir()
    path = folder / source.name
    shutil.copy2(source, path)
    shutil.copy2(journal_path_for(source), journal_path_for(path))
    return path


def check_equals_journal(traj: pt.Trajectory, journal: dict[int, RunRecord]) -> None:
    """The trajectory holds exactly the journal's runs: statuses, values, failures."""
    assert sorted(journal) == list(range(N_POINTS))
    for idx, record in journal.items():
        run = traj.runs[idx]
        assert run.status == STATUS_NAMES[record.status]
        if idx in FAILING:
            assert record.status == FAILED
            assert run.failure is not None
            assert run.failure.message == f"point {idx} fails"
            continue
        assert record.status == COMPLETED
        values = record.values
        assert traj.results.z[idx] == values[("results.z", "z")] == idx / 4 * 2.0
        assert traj.results.label[idx] == values[("results.label", "label")] == f"n={idx}"
        assert np.array_equal(traj.results.vec[idx], values[("results.vec", "vec")])
        assert np.array_equal(traj.results.vec[idx], np.full(3, idx / 4))
    completed = [n for n in range(N_POINTS) if n not in FAILING]
    assert traj.results.z.runs.tolist() == completed
    counts = {"pending": 0, "running": 0, "completed": len(completed), "failed": len(FAILING)}
    assert traj.run_table.counts() == counts
    assert traj.node("parameters.x").range[7] == 7 / 4
    assert np.array_equal(traj.node("parameters.weights").default, np.arange(5000.0))
    assert traj.results.setup.note == "made before the runs"
    assert np.array_equal(traj.results.setup.table, np.arange(4.0))


def journal_runs(path: Path) -> dict[int, RunRecord]:
    return {record.idx: record for record in read_journal(journal_path_for(path)).runs["study"]}


def remove(path: Path, node: str) -> None:
    with tables.open_file(str(path), "a") as h5:
        h5.remove_node(f"/study/{node}", recursive=True)


def tear_end(path: Path, node: str) -> None:
    """Overwrite the last chunk (or the whole data) of ``node`` with garbage bytes."""
    with h5py.File(path, "r") as h5:
        dataset = h5[f"/study/{node}"]
        if dataset.chunks:
            info = dataset.id.get_chunk_info(dataset.id.get_num_chunks() - 1)
            offset, size = info.byte_offset, info.size
        else:
            offset, size = dataset.id.get_offset(), dataset.id.get_storage_size()
    with open(path, "r+b") as stream:
        stream.seek(offset)
        stream.write(b"\xa5" * size)


@pytest.mark.parametrize("reading", ["load", "continue"])
@pytest.mark.parametrize("node", REQUIRED)
def test_a_flushed_file_that_lost_a_required_node_is_rebuilt_from_the_journal(
    killed_at_close: Path, tmp_path: Path, node: str, reading: str
) -> None:
    path = copy_study(killed_at_close, tmp_path / "copy")
    journal = journal_runs(path)
    remove(path, node)
    if reading == "continue":  # the study's script run again recovers it (and closes)
        assert run_study(path) == 0
        assert not journal_path_for(path).exists()
        with warnings.catch_warnings():
            warnings.simplefilter("error", RecoveryWarning)
            traj = load(path, "study")
    else:
        message = r"it could not be read \(trajectory 'study': node /study/.* is missing\)"
        with pytest.warns(RecoveryWarning, match=message) as caught:
            traj = load(path, "study")
        assert f"rebuilt 'study' ({N_POINTS} journaled runs) from the journal" in str(
            caught[0].message
        )
    assert (tmp_path / "copy" / "study.h5.damaged-1").exists()
    check_equals_journal(traj, journal)
    traj.close()


@pytest.mark.parametrize("reading", ["load", "continue"])
@pytest.mark.parametrize(
    ("node", "reason"),
    [
        ("runs/table", r"the last row of /study/runs/table is torn \(run -\d+, status 165"),
        ("runs/writer/cells", r"node /study/runs/writer/cells cannot be read"),
        ("results/z/z/cells", r"node /study/results/z/z/cells cannot be read"),
        ("runs/hosts", r"node /study/runs/hosts cannot be read"),
        ("runs/columns", r"node /study/runs/columns cannot be read"),
        ("catalog", r"node /study/catalog cannot be read"),
    ],
)
def test_a_flushed_file_with_a_torn_node_is_rebuilt_from_the_journal(
    killed_at_close: Path, tmp_path: Path, node: str, reason: str, reading: str
) -> None:
    path = copy_study(killed_at_close, tmp_path / "copy")
    journal = journal_runs(path)
    tear_end(path, node)
    if reading == "continue":
        assert run_study(path) == 0
        traj = load(path, "study")
    else:
        with pytest.warns(RecoveryWarning, match=reason):
            traj = load(path, "study")
    assert (tmp_path / "copy" / "study.h5.damaged-1").exists()
    check_equals_journal(traj, journal)
    traj.close()


def test_a_whole_flushed_file_is_not_rebuilt_and_checked_once(
    killed_at_close: Path, tmp_path: Path
) -> None:
    path = copy_study(killed_at_close, tmp_path / "copy")
    journal = journal_runs(path)
    before = path.stat().st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecoveryWarning)
        check_equals_journal(load(path, "study"), journal)
        check_equals_journal(load(path, "study"), journal)
    assert path.stat().st_mtime_ns == before  # nothing replayed, nothing moved aside
    # The journal stays until a writer closes the study cleanly.
    assert sorted(p.name for p in path.parent.iterdir()) == ["study.h5", "study.h5.journal"]


def test_a_trajectory_created_but_never_defined_is_not_damage(tmp_path: Path) -> None:
    # A writer killed before its definition became durable leaves a group holding only
    # ``runs``: a trajectory started afresh by the next writer, not a damaged file.
    path = tmp_path / "empty.h5"
    traj = pt.Trajectory("fresh", filename=path)
    traj.add_parameter("x", 1.0)
    traj.close()
    with tables.open_file(str(path), "a") as h5:
        for child in list(h5.get_node("/fresh")._v_children):
            if child != "runs":
                h5.remove_node(f"/fresh/{child}", recursive=True)
        del h5.get_node("/fresh")._v_attrs.pytraj_skeleton_generation
        assert damaged_structure(h5) is None
        h5.remove_node("/fresh/runs/hosts")
        assert damaged_structure(h5) == "trajectory 'fresh': node /fresh/runs/hosts is missing"


def test_failure_rows_without_their_failure_table_are_damage(
    killed_at_close: Path, tmp_path: Path
) -> None:
    path = copy_study(killed_at_close, tmp_path / "copy")
    with tables.open_file(str(path), "a") as h5:
        h5.remove_node("/study/runs/failures")
        assert damaged_structure(h5) == "trajectory 'study': node /study/runs/failures is missing"


@pytest.mark.parametrize(
    ("node", "reason"),
    [
        ("results/z/z/values", r"/study/results/z/z/cells is torn \(run 29, row 25 of 25\)"),
        (
            "results/label/label/values_ends",
            r"/study/results/label/label/cells is torn \(run 29, row 25 of 25\)",
        ),
    ],
)
def test_a_flushed_file_whose_column_lost_its_last_row_is_rebuilt(
    killed_at_close: Path, tmp_path: Path, node: str, reason: str
) -> None:
    # The newest cell names a row its values do not hold: the end of a flush was lost.
    path = copy_study(killed_at_close, tmp_path / "copy")
    journal = journal_runs(path)
    with tables.open_file(str(path), "a") as h5:
        values = h5.get_node(f"/study/{node}")
        assert values.nrows == 26  # one row per completed run
        values.truncate(25)
    with pytest.warns(RecoveryWarning, match=reason):
        traj = load(path, "study")
    check_equals_journal(traj, journal)
    traj.close()
