"""A continued journal learns its trajectories' Pickle leaves from their newest definition."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pytraj.errors import UnsupportedValueError
from pytraj.storage.hdf5.journal import Journal, journal_path_for, read_journal
from pytraj.storage.records import LeafRecord, RunRecord, StudyDefinition

pytestmark = pytest.mark.storage

VALUES = {("results.obj", "o"): {1, 2}}  # a set: stored only by a Pickle leaf


def definition(pickled: bool) -> StudyDefinition:
    leaf_class = "PickleResult" if pickled else "Result"
    return StudyDefinition(
        name="mult",
        leaves=[
            LeafRecord("parameters.x", "Parameter", default=1.0, explored=[1.0, 2.0]),
            LeafRecord("results.obj", leaf_class, per_run=True, pickled=pickled, items={"o": None}),
        ],
        n_runs=2,
        point_ids=[b"\x01" * 16, b"\x02" * 16],
    )


def run(idx: int) -> RunRecord:
    return RunRecord(idx=idx, point_id=bytes(16), values=VALUES)


def test_the_newest_definition_before_reopening_decides(tmp_path: Path) -> None:
    data = tmp_path / "study.h5"
    path = journal_path_for(data)
    with Journal.create(path, data) as journal:
        journal.append_definition("mult", definition(pickled=False))
        journal.append_definition("mult", definition(pickled=True))
    with Journal.open(path) as journal:
        journal.append_runs("mult", [run(0)])
    assert [r.values for r in read_journal(path).runs["mult"]] == [VALUES]


def test_a_definition_appended_after_reopening_replaces_the_journaled_one(tmp_path: Path) -> None:
    data = tmp_path / "study.h5"
    path = journal_path_for(data)
    with Journal.create(path, data) as journal:
        journal.append_definition("mult", definition(pickled=True))
    with Journal.open(path) as journal:
        journal.append_definition("mult", replace(definition(pickled=False), comment="re-run"))
        with pytest.raises(UnsupportedValueError, match=r"results\.obj\.o"):
            journal.append_runs("mult", [run(0)])
    entries = read_journal(path)
    assert entries.runs.get("mult", []) == []
    assert entries.definitions["mult"].comment == "re-run"
