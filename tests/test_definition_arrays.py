"""Point ids and explored values held as arrays: encoded, computed and stored exactly as
the lists of Python objects they replace (no object per run on the way)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tables

import pytraj as pt
from pytraj.storage.explored import StoredPointIds
from pytraj.storage.hdf5.journal import Journal, journal_path_for, read_journal
from pytraj.storage.hdf5.journal_format import OUT_OF_LINE_BYTES
from pytraj.storage.recordcodec import decode_definition, definition_chunks, encode_definition
from pytraj.trajectory.definition import to_definition
from pytraj.trajectory.pointbatch import POINT_ID_BATCH
from pytraj.trajectory.pointid import point_id


def _explored(n: int) -> pt.Trajectory:
    traj = pt.Trajectory("t")
    traj.add_parameter("x", 0.0)
    traj.add_parameter("k", 3)
    traj.explore({"x": [i * 0.5 for i in range(n)]})
    return traj


def test_array_point_ids_encode_as_their_bytes_would() -> None:
    definition = to_definition(_explored(5))
    assert isinstance(definition.point_ids, StoredPointIds)
    as_bytes = replace(definition, point_ids=definition.point_ids.tolist())
    assert isinstance(as_bytes.point_ids, list)
    encoded = encode_definition(definition)
    assert encoded == encode_definition(as_bytes)
    decoded = decode_definition(encoded)
    assert list(decoded.point_ids) == definition.point_ids.tolist()
    assert len(decoded.point_ids) == 5


def test_point_ids_across_batches_are_those_of_each_point_alone() -> None:
    n = 2 * POINT_ID_BATCH + 3
    traj = _explored(n)
    for idx in (0, POINT_ID_BATCH - 1, POINT_ID_BATCH, 2 * POINT_ID_BATCH, n - 1):
        expected = point_id({"parameters.x": idx * 0.5, "parameters.k": 3})
        assert traj.run_table.point_id(idx) == expected


def test_point_ids_of_pending_runs_after_some_ran_are_recomputed_for_those_only(
    tmp_path: Path,
) -> None:
    traj = pt.Trajectory("t", filename=tmp_path / "p.h5")
    traj.add_parameter("x", 0.0)
    traj.add_parameter("k", 3)
    traj.explore({"x": [0.0, 1.0, 2.0, 3.0]})
    for idx in (0, 2):  # runs 1 and 3 stay pending: not one block of indices
        with traj.start_run(idx):
            traj.add_result("z", traj.x)
    ran = [traj.run_table.point_id(i) for i in (0, 2)]
    k = traj.node("parameters.k")
    k.unlock()
    k.value = 4
    traj.exploration.ensure_point_ids()
    assert [traj.run_table.point_id(i) for i in (0, 2)] == ran  # ran with k=3
    for idx in (1, 3):
        assert traj.run_table.point_id(idx) == point_id(
            {"parameters.x": float(idx), "parameters.k": 4}
        )
    traj.close()


def test_the_explored_table_holds_the_run_tables_ids(tmp_path: Path) -> None:
    path = tmp_path / "ids.h5"
    traj = _explored(3)
    ids = [traj.run_table.point_id(i) for i in range(3)]
    env = pt.Environment(trajectory="w", filename=path, progress=False)
    env.trajectory.add_parameter("x", 0.0)
    env.trajectory.add_parameter("k", 3)
    env.trajectory.explore({"x": [0.0, 0.5, 1.0]})
    env.run(lambda t: t.add_result("z", t.x))
    env.close()
    with tables.open_file(str(path)) as h5:
        stored = h5.get_node("/w/runs/explored").col("point_id")
    assert [np.asarray(row, dtype=np.uint8).tobytes() for row in stored] == ids


def test_repeated_points_across_batches_are_named_in_the_warning() -> None:
    traj = pt.Trajectory("t")
    traj.add_parameter("x", 0.0)
    n = POINT_ID_BATCH + 10
    xs = [float(i) for i in range(n)]
    xs[-1] = 5.0  # the last run repeats run 5, in another batch
    with pytest.warns(pt.errors.DuplicatePointWarning, match=rf"2 explored runs .*\(5, {n - 1}\)"):
        traj.explore({"x": xs})
    assert traj.run_table.point_id(5) == traj.run_table.point_id(n - 1)
    assert traj.run_table.point_id(4) != traj.run_table.point_id(5)


def test_a_large_definition_goes_to_the_journal_in_chunks_and_reads_back_exactly(
    tmp_path: Path,
) -> None:
    definition = to_definition(_explored(20_000))  # ids and slots above OUT_OF_LINE_BYTES
    chunks = definition_chunks(definition)
    big = [c for c in chunks if isinstance(c, memoryview) and c.nbytes >= OUT_OF_LINE_BYTES]
    assert [c.nbytes for c in big] == [20_000 * 15, 20_000 * 16]  # explored slots, then ids
    assert b"".join(chunks) == encode_definition(definition)
    data = tmp_path / "study.h5"
    with Journal.create(journal_path_for(data), data) as journal:
        journal.append_definition("t", definition)
        journal.sync()
    stored = read_journal(journal_path_for(data)).definitions["t"]
    assert list(stored.point_ids) == definition.point_ids.tolist()
    explored = {leaf.path: leaf.explored for leaf in stored.leaves}
    assert list(explored["parameters.x"]) == [i * 0.5 for i in range(20_000)]
    assert explored["parameters.k"] is None
