"""Provenance frames: a change of provenance alone is journaled without the whole study."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import warnings
import zlib
from pathlib import Path

import pytest

import pytraj as pt
from pytraj.errors import RecoveryWarning, StorageError
from pytraj.storage.hdf5.journal import (
    CHECKPOINT,
    DEFINITION,
    PROVENANCE,
    RUNS,
    Journal,
    iter_journal,
    journal_path_for,
    read_journal,
)
from pytraj.storage.records import LeafRecord, RunRecord, StudyDefinition

pytestmark = pytest.mark.storage

ROOT = Path(pt.__file__).resolve().parents[1]


def definition(provenance: dict[str, object]) -> StudyDefinition:
    return StudyDefinition(
        name="mult",
        comment="a study",
        provenance=provenance,
        leaves=[LeafRecord("parameters.x", "Parameter", default=1.0, explored=[1.0, 2.0])],
        n_runs=2,
        point_ids=[b"\x01" * 16, b"\x02" * 16],
    )


def test_a_provenance_frame_amends_the_journaled_definition(tmp_path: Path) -> None:
    data = tmp_path / "study.h5"
    path = journal_path_for(data)
    with Journal.create(path, data) as journal:
        journal.append_definition("mult", definition({"session": 1}))
        offset = journal.size
        journal.append_runs("mult", [RunRecord(idx=0, point_id=b"\x01" * 16)])
        journal.append_provenance("mult", {"session": 2, "writers": [{"pid": 7}]})
    kinds = [entry.kind for entry in iter_journal(path)]
    assert kinds == [DEFINITION, RUNS, PROVENANCE]
    contents = read_journal(path)
    amended = contents.definitions["mult"]
    assert amended.provenance == {"session": 2, "writers": [{"pid": 7}]}
    assert amended.comment == "a study"
    assert amended.point_ids == [b"\x01" * 16, b"\x02" * 16]
    assert amended.leaves[0].explored == [1.0, 2.0]
    assert contents.trajectories["mult"].provenance is None
    # Read from past the definition, the new provenance is reported on its own.
    tail = read_journal(path, start=offset)
    assert tail.trajectories["mult"].definition is None
    assert tail.trajectories["mult"].provenance == {"session": 2, "writers": [{"pid": 7}]}
    # A definition after it replaces both.
    with Journal.open(path) as journal:
        journal.append_definition("mult", definition({"session": 3}))
    assert read_journal(path).definitions["mult"].provenance == {"session": 3}


def test_a_provenance_frame_needs_a_journaled_definition(tmp_path: Path) -> None:
    data = tmp_path / "study.h5"
    path = journal_path_for(data)
    with Journal.create(path, data) as journal:
        assert not journal.takes_provenance("mult")
        with pytest.raises(StorageError, match="no definition of trajectory 'mult'"):
            journal.append_provenance("mult", {"session": 1})
        journal.append_checkpoint()
        journal.append_definition("mult", definition({"session": 1}))
        assert journal.takes_provenance("mult")
        assert not journal.takes_provenance("other")
    with Journal.open(path) as journal:  # learned again from the frames
        assert journal.takes_provenance("mult")
    assert [entry.kind for entry in iter_journal(path)] == [CHECKPOINT, DEFINITION]


def test_a_continued_version_1_journal_takes_no_provenance_frame(tmp_path: Path) -> None:
    data = tmp_path / "study.h5"
    path = journal_path_for(data)
    with Journal.create(path, data) as journal:
        journal.append_definition("mult", definition({"session": 1}))
    raw = bytearray(path.read_bytes())
    struct.pack_into("<H", raw, 8, 1)  # the version field, after the 8-byte magic
    body_size = struct.unpack_from("<I", raw, 12)[0]
    crc_at = 16 + body_size
    struct.pack_into("<I", raw, crc_at, zlib.crc32(bytes(raw[:crc_at])))
    path.write_bytes(bytes(raw))
    with Journal.open(path) as journal:
        assert journal.header.version == 1
        assert not journal.takes_provenance("mult")
        with pytest.raises(StorageError, match=r"format version 1\) holds no definition"):
            journal.append_provenance("mult", {"session": 2})


# A writer killed at run ``kill`` of 6 (os._exit: no cleanup), the file's study continued.
# Its definition is journaled (stored) before the first run, so it survives the kill.
CHILD = """
import os, sys
import pytraj as pt

path, kill = sys.argv[1], int(sys.argv[2])

def simulate(traj):
    if traj.idx == kill:
        os._exit(0)
    traj.add_result("z", traj.x * 2.0)

env = pt.Environment(trajectory="study", filename=path)
traj = env.trajectory
traj.add_parameter("x", 0.0)
traj.explore({"x": [float(i) for i in range(6)]})
env.run(simulate)
env.close()
"""


def _run_child(path: Path, kill: int) -> None:
    script = path.with_name("child.py")
    script.write_text(textwrap.dedent(CHILD))
    done = subprocess.run(
        [sys.executable, str(script), str(path), str(kill)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_a_continued_study_journals_its_new_session_as_a_provenance_frame(
    tmp_path: Path,
) -> None:
    path = tmp_path / "study.h5"
    _run_child(path, kill=2)  # runs 0, 1 journaled, then killed
    _run_child(path, kill=4)  # recovers, continues the journal: runs 2, 3, then killed
    journal = journal_path_for(path)
    entries = list(iter_journal(journal))
    kinds = [entry.kind for entry in entries]
    # One whole definition (the first session's); the second session's start is a
    # provenance frame in the continued journal.
    assert kinds.count(DEFINITION) == 1
    assert kinds.count(PROVENANCE) == 1
    assert kinds.index(DEFINITION) < kinds.index(PROVENANCE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecoveryWarning)
        traj = pt.load(path, "study")
    assert len(traj) == 6
    assert list(traj.parameters.node("x").range) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    first = next(entry.definition for entry in entries if entry.kind == DEFINITION)
    second = next(entry.provenance for entry in entries if entry.kind == PROVENANCE)
    assert first is not None
    assert second is not None
    assert second["start"] > first.provenance["start"]
    # The second session's provenance was recovered onto the stored definition.
    assert traj.provenance["start"] == second["start"]
    assert traj.provenance["writers"][-1]["pid"] == second["writers"][-1]["pid"]
    assert traj.provenance["writers"][-1]["pid"] != first.provenance["writers"][-1]["pid"]


def test_a_provenance_only_change_through_the_storage(tmp_path: Path) -> None:
    path = tmp_path / "study.h5"
    traj = pt.Trajectory("study", filename=path)
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [1.0, 2.0, 3.0]})
    traj.store()
    traj.provenance["note"] = "changed"
    traj.mark_definition_changed()
    traj.store_definition()
    traj.store_definition()  # unchanged: nothing journaled
    kinds = [entry.kind for entry in iter_journal(journal_path_for(path))]
    assert kinds.count(DEFINITION) == 1
    assert kinds[-1] == PROVENANCE
    assert kinds.count(PROVENANCE) == 1
    traj.close()
    loaded = pt.load(path, "study")
    assert loaded.provenance["note"] == "changed"
    assert list(loaded.parameters.node("x").range) == [1.0, 2.0, 3.0]


def test_a_changed_definition_is_journaled_whole(tmp_path: Path) -> None:
    path = tmp_path / "study.h5"
    traj = pt.Trajectory("study", filename=path)
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [1.0, 2.0]})
    traj.store()
    traj.comment = "new comment"
    traj.provenance["note"] = "too"
    traj.store_definition()
    kinds = [entry.kind for entry in iter_journal(journal_path_for(path))]
    assert kinds.count(DEFINITION) == 2
    assert PROVENANCE not in kinds
    contents = read_journal(journal_path_for(path))
    assert contents.definitions["study"].comment == "new comment"
    assert contents.definitions["study"].provenance["note"] == "too"
    traj.close()


# Stored and flushed, then only the provenance changed (a provenance frame after the
# file's last flush), then gone without a clean close.
AMEND_CHILD = """
import os, sys
import pytraj as pt

traj = pt.Trajectory("study", filename=sys.argv[1])
traj.add_parameter("x", 0.0)
traj.explore({"x": [1.0, 2.0, 3.0]})
traj.store()
traj.provenance["note"] = "after the flush"
traj.mark_definition_changed()
traj.store_definition()
os._exit(0)
"""


def test_a_provenance_frame_after_the_last_flush_is_replayed_onto_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "study.h5"
    script = tmp_path / "amend.py"
    script.write_text(textwrap.dedent(AMEND_CHILD))
    done = subprocess.run(
        [sys.executable, str(script), str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    journal = journal_path_for(path)
    assert [entry.kind for entry in iter_journal(journal)][-1] == PROVENANCE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecoveryWarning)  # no runs to replay: none told
        traj = pt.load(path, "study")
    assert traj.provenance["note"] == "after the flush"
    assert list(traj.parameters.node("x").range) == [1.0, 2.0, 3.0]
