"""Merging trajectories: the same study (shards) and different studies, on both backends."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pytraj as pt
from pytraj.errors import MergeConflictError, OptionError, RunValueMissingError
from pytraj.storage.records import RunRecord
from pytraj.trajectory import mergecopy, merging

POINTS = pt.cartesian_product({"x": [0.0, 1.0, 2.0, 3.0, 4.0], "n": [1, 2]})
Factory = Callable[[str], pt.Trajectory]


@pytest.fixture(params=["memory", "hdf5"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    """Makes a new trajectory on the backend under test."""
    counter = itertools.count()
    made: list[pt.Trajectory] = []

    def make(name: str) -> pt.Trajectory:
        if request.param == "memory":
            traj = pt.Trajectory(name)
        else:
            traj = pt.Trajectory(name, filename=tmp_path / f"{name}-{next(counter)}.h5")
        made.append(traj)
        return traj

    yield make
    for traj in made:
        traj.close()


def _study(make: Factory, name: str = "study", points: Any = POINTS) -> pt.Trajectory:
    traj = make(name)
    traj.add_parameter("x", 1.0)
    traj.add_parameter("n", 1)
    traj.add_parameter("fixed", "a")
    traj.explore(points)
    return traj


def _run(
    traj: pt.Trajectory,
    indices: Any,
    *,
    fail: Callable[[float], bool] = lambda x: False,
    offset: float = 0.0,
) -> None:
    for idx in indices:
        try:
            with traj.start_run(int(idx)):
                if fail(traj.x):
                    raise ValueError(f"x={traj.x} fails")
                traj.add_result("z", traj.x * traj.n + offset)
                traj.add_result("k", traj.n)
                traj.add_result("arr", np.arange(3, dtype=np.float32) * traj.x)
        except ValueError:
            pass


def _comparable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, tuple(value.tolist()))
    return (type(value).__name__, value)


def _by_point(traj: pt.Trajectory) -> dict[str, tuple[str, dict[str, Any]]]:
    """Point id -> (status, result values with their types) of every run."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for idx in range(len(traj)):
        run = traj.runs[idx]
        values = {
            name: _comparable(traj.results[name].get(idx, None))
            for name in ("z", "k", "arr")
            if name in traj.results
        }
        found[run.point_id] = (run.status, values)
    return found


def _assert_same_runs(actual: pt.Trajectory, expected: pt.Trajectory) -> None:
    assert _by_point(actual) == _by_point(expected)
    assert len(actual) == len(expected)


def _shard_of(traj: pt.Trajectory, idx: int, n: int) -> int:
    return int.from_bytes(bytes.fromhex(traj.runs[idx].point_id), "big") % n


# -- the same study ----------------------------------------------------------------------------
def test_four_shards_merged_equal_one_unsharded_run(backend: Factory) -> None:
    whole = _study(backend, "whole")
    _run(whole, range(len(whole)))
    shards = []
    for k in range(4):
        shard = _study(backend, f"shard{k}")
        _run(shard, [i for i in range(len(shard)) if _shard_of(shard, i, 4) == k])
        shards.append(shard)
    merged = shards[0]
    reports = [merged.merge(shard) for shard in shards[1:]]
    assert [r.kind for r in reports] == [merging.SAME_STUDY] * 3
    assert len(merged) == len(whole) == 10
    assert merged.run_table.counts()["completed"] == 10
    _assert_same_runs(merged, whole)
    assert [r["runs_after"] for r in merged.merges] == [10, 10, 10]
    assert sum(r.updated for r in reports) == 10 - len(
        [i for i in range(10) if _shard_of(whole, i, 4) == 0]
    )


def test_incremental_merge_equals_one_shot_and_repeating_changes_nothing(backend: Factory) -> None:
    shards = []
    for k in range(3):
        shard = _study(backend, f"s{k}")
        _run(shard, [i for i in range(len(shard)) if i % 3 == k])
        shards.append(shard)
    one_shot = _study(backend, "one")
    for shard in shards:
        one_shot.merge(shard)
    incremental = _study(backend, "inc")
    incremental.merge(shards[0])
    incremental.merge(shards[1])
    before = _by_point(incremental)
    incremental.merge(shards[2])
    assert before != _by_point(incremental)
    _assert_same_runs(incremental, one_shot)
    again = incremental.merge(shards[2])
    assert (again.updated, again.appended, again.completed_in_both) == (0, 0, 3)
    assert again.differing == []
    _assert_same_runs(incremental, one_shot)


def test_runs_completed_in_both_with_different_values_keep_ours_or_refuse_when_strict(
    backend: Factory,
) -> None:
    a, b = _study(backend, "a"), _study(backend, "b")
    _run(a, [0, 1])
    _run(b, [1], offset=100.0)
    _run(b, [2])
    with pytest.raises(MergeConflictError, match=r"run 1: results.z\['z'\]") as caught:
        a.merge(b, strict=True)
    assert isinstance(caught.value, ValueError)
    assert a.run_table.counts()["completed"] == 2  # nothing written
    assert a.merges == []
    report = a.merge(b)
    assert report.differing == ["run 1: results.z['z']"]
    assert a.results.z[1] == 0.0  # ours kept (x=0, n=2), not 100
    assert a.results.z[2] == 1.0  # x=1, n=1: completed only there


# -- different studies -------------------------------------------------------------------------
def test_different_studies_are_appended_and_renumbered(backend: Factory) -> None:
    a = _study(backend, "a", {"x": [1.0, 2.0], "n": [1, 1]})
    b = _study(backend, "b", {"x": [3.0, 2.0, 5.0], "n": [1, 1, 2]})
    _run(a, range(2))
    _run(b, range(3))
    report = a.merge(b)
    assert report.kind == merging.DIFFERENT_STUDIES
    assert (report.runs_before, report.runs_after, report.appended) == (2, 5, 3)
    assert list(a.node("parameters.x").range) == [1.0, 2.0, 3.0, 2.0, 5.0]
    assert a.results.z.to_series().to_dict() == {0: 1.0, 1: 2.0, 2: 3.0, 3: 2.0, 4: 10.0}
    assert type(a.results.k[4]) is int
    assert a.runs[4].point_id == b.runs[2].point_id
    # The renumbered run keeps the other run's record: attempt, times, host.
    assert (a.runs[2].host, a.runs[2].start) == (b.runs[0].host, b.runs[0].start)


class CountingKey:
    """A dict key that counts how often it is compared."""

    comparisons = 0

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def __eq__(self, other: object) -> bool:
        CountingKey.comparisons += 1
        return isinstance(other, CountingKey) and self.raw == other.raw


def test_remove_duplicates_is_a_hash_lookup_not_a_pairwise_comparison(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    n = 2_000
    a = pt.Trajectory("a")
    b = pt.Trajectory("b")
    for traj, start in ((a, 0), (b, n // 2)):
        traj.add_parameter("x", 0)
        traj.explore({"x": list(range(start, start + n))})
    monkeypatch.setattr(merging, "point_key", CountingKey)
    CountingKey.comparisons = 0
    report = a.merge(b, remove_duplicates=True)
    assert report.duplicates_removed == n // 2
    assert report.appended == n // 2
    assert len(a) == n + n // 2
    # One comparison per hit (plus rare hash collisions); pairwise would be n * n = 4e6.
    assert CountingKey.comparisons <= 2 * n
    assert list(a.node("parameters.x").range) == list(range(n + n // 2))


def test_merging_the_same_input_twice_with_remove_duplicates_changes_nothing(
    backend: Factory,
) -> None:
    a = _study(backend, "a", {"x": [1.0, 2.0], "n": [1, 1]})
    b = _study(backend, "b", {"x": [3.0, 2.0], "n": [1, 1]})
    _run(a, range(2))
    _run(b, range(2))
    first = a.merge(b, remove_duplicates=True)
    assert (first.appended, first.duplicates_removed) == (1, 1)
    state = _by_point(a), len(a)
    second = a.merge(b, remove_duplicates=True)
    assert (second.appended, second.duplicates_removed) == (0, 2)
    assert (_by_point(a), len(a)) == state


def test_trial_parameter_renumbers_trials_and_recomputes_point_ids(backend: Factory) -> None:
    def trials(name: str) -> pt.Trajectory:
        traj = backend(name)
        traj.add_parameter("x", 1.0)
        traj.add_parameter("trial", 0)
        traj.explore(pt.cartesian_product({"x": [1.0, 2.0], "trial": [0, 1]}))
        for idx in range(len(traj)):
            with traj.start_run(idx):
                traj.add_result("z", traj.x + 10 * traj.trial)
        return traj

    a, b = trials("a"), trials("b")
    report = a.merge(b, trial_parameter="trial", remove_duplicates=True)
    assert (report.appended, report.duplicates_removed) == (4, 0)
    assert list(a.node("parameters.trial").range) == [0, 1, 0, 1, 2, 3, 2, 3]
    ids = [a.runs[i].point_id for i in range(8)]
    assert len(set(ids)) == 8
    expected = pt.Trajectory("expected")
    expected.add_parameter("x", 1.0)
    expected.add_parameter("trial", 0)
    expected.explore({"x": [1.0, 1.0, 2.0, 2.0], "trial": [2, 3, 2, 3]})
    expected.store_definition()
    assert ids[4:] == [expected.runs[i].point_id for i in range(4)]
    # The values stay those the trials computed (renumbering does not rerun them).
    assert a.results.z.to_series().tolist() == [1.0, 11.0, 2.0, 12.0] * 2
    with pytest.raises(OptionError, match="trial_parameter 'x' must be an explored int"):
        a.merge(b, trial_parameter="x")


# -- conflicts ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: t.add_parameter("extra", 3), r"parameters.extra: only in 'b' \(default 3\)"),
        (
            lambda t: setattr(t.node("parameters.fixed"), "value", "b"),
            "parameters.fixed: default 'a' in 'a', 'b' in 'b'",
        ),
    ],
)
def test_conflicting_parameters_raise_naming_both_values(
    backend: Factory, change: Callable[[pt.Trajectory], Any], expected: str
) -> None:
    a, b = _study(backend, "a"), _study(backend, "b")
    _run(a, [0])
    change(b)
    with pytest.raises(MergeConflictError, match=expected) as caught:
        a.merge(b)
    assert len(caught.value.conflicts) == 1
    assert len(a) == 10
    assert a.merges == []


def test_conflicting_types_and_explored_sets_are_each_named() -> None:
    a = pt.Trajectory("a")
    a.add_parameter("x", 1.0)
    a.add_parameter("y", 1)
    a.add_parameter("w", 0)
    a.explore({"x": [1.0, 2.0]})
    b = pt.Trajectory("b")
    b.add_parameter("x", 1)  # int here, float there
    b.add_parameter("y", 1)
    b.add_parameter("w", 0)
    b.explore({"y": [1, 2]})
    with pytest.raises(MergeConflictError) as caught:
        a.merge(b)
    assert caught.value.conflicts == [
        "parameters.x: type float (1.0) in 'a', type int (1) in 'b'",
        "parameters.y: explored in 'b' but not in 'a' (default 1 here, 1 there)",
    ]


# -- data on one side, trajectory-level data, statuses --------------------------------------
def test_results_present_on_one_side_only(backend: Factory) -> None:
    a = _study(backend, "a", {"x": [1.0, 2.0], "n": [1, 1]})
    b = _study(backend, "b", {"x": [3.0], "n": [1]})
    _run(a, range(2))
    with b.start_run(0):
        b.add_result("only_b", "here")
    a.merge(b)
    assert a.results.only_b[2] == "here"
    with pytest.raises(RunValueMissingError, match=r"run 0 has no value for results.only_b"):
        a.results.only_b[0]
    with pytest.raises(RunValueMissingError, match=r"run 2 has no value for results.z"):
        a.results.z[2]
    assert a.results.z.to_series().to_dict() == {0: 1.0, 1: 2.0}


def test_trajectory_level_data_merge_rules(backend: Factory) -> None:
    a = _study(backend, "a", {"x": [1.0], "n": [1]})
    b = _study(backend, "b", {"x": [2.0], "n": [1]})
    a.add_result("same", 1, comment="equal on both sides")
    b.add_result("same", 1)
    a.add_result("stats", mean=1.0, std=0.5)
    b.add_result("stats", mean=2.0, std=0.5)
    b.add_config("only_b", "cfg")
    b.add_derived_parameter("scale", np.arange(3))
    b.add_result("skipped", 7)
    report = a.merge(b, ignore_data=["results.skipped"])
    assert a.results.same == 1
    assert a.results.stats.mean == 1.0
    assert a["results.b.stats"].mean == 2.0
    assert a.config.only_b == "cfg"
    np.testing.assert_array_equal(a.derived_parameters.scale, np.arange(3))
    assert "skipped" not in a.results
    assert report.renamed == ["results.stats -> results.b.stats"]
    assert sorted(report.added) == ["config.only_b", "derived_parameters.scale"]
    again = a.merge(b, ignore_data=["results.skipped"])
    assert again.renamed == []
    assert again.added == []


def test_failed_and_pending_runs_keep_status_and_history(backend: Factory) -> None:
    a, b = _study(backend, "a"), _study(backend, "b")
    _run(b, [0, 1, 2], fail=lambda x: x == 1.0)  # runs 2 (x=1, n=1) fails
    _run(b, [2], fail=lambda x: x == 1.0)  # a second failed attempt
    _run(a, [0])
    report = a.merge(b)
    assert report.updated == 2  # run 1 completed there, run 2 failed there
    assert a.runs[2].status == "failed"
    assert a.runs[2].attempt == 2
    history = a.run_table.failures_of(2)
    assert [(f.attempt, f.message) for f in history] == [(1, "x=1.0 fails"), (2, "x=1.0 fails")]
    assert a.runs[5].status == "pending"
    assert a.run_table.counts() == {"pending": 7, "running": 0, "completed": 2, "failed": 1}
    # A run failed here and completed there becomes completed; its failure stays recorded.
    c = _study(backend, "c")
    _run(c, [2])
    a.merge(c)
    assert a.runs[2].status == "completed"
    assert len(a.run_table.failures_of(2)) == 2


@pytest.mark.parametrize("disposable", [False, True])
def test_a_merge_in_batches_of_two_runs_equals_one_in_one_batch(
    backend: Factory, monkeypatch: pytest.MonkeyPatch, disposable: bool
) -> None:
    def merged() -> pt.Trajectory:
        a, b = _study(backend, "a"), _study(backend, "b")
        _run(b, range(8), fail=lambda x: x == 1.0)  # runs 2 and 3 fail
        _run(b, [2], fail=lambda x: x == 1.0)  # and run 2 once more
        _run(a, [0, 9], offset=0.5)
        if disposable:  # as merge_files' temporary output: columns past the journal
            a.storage.disposable = True
        a.merge(b)
        return a

    whole = merged()
    monkeypatch.setattr(mergecopy, "BULK_RUNS", 2)
    monkeypatch.setattr(mergecopy, "BATCH_RUNS", 2)
    batched = merged()
    _assert_same_runs(batched, whole)
    assert batched.results.z.to_series().to_dict() == {
        0: 0.5,
        1: 0.0,
        4: 2.0,
        5: 4.0,
        6: 3.0,
        7: 6.0,
        9: 8.5,
    }
    assert [(f.idx, f.attempt) for f in batched.run_table.failures] == [(2, 1), (2, 2), (3, 1)]
    assert [(f.idx, f.attempt) for f in whole.run_table.failures] == [(2, 1), (2, 2), (3, 1)]
    assert batched.runs[2].attempt == 2
    assert [batched.runs[i].provenance is None for i in range(10)] == [
        whole.runs[i].provenance is None for i in range(10)
    ]


def test_per_run_host_survives_a_merge(backend: Factory) -> None:
    a, b = _study(backend, "a"), _study(backend, "b")
    for traj, host, idx in ((a, "node-a", 0), (b, "node-b", 1)):
        with traj.start_run(idx):
            traj.add_result("z", 1.0)
        record = traj.runs[idx]
        # Rewrite the record as if another machine had run it.
        traj.lifecycle.commit(
            [
                RunRecord(
                    idx=idx,
                    point_id=bytes.fromhex(record.point_id),
                    host=host,
                    pid=100 + idx,
                    start=1.0,
                    finish=2.0,
                    values={("results.z", "z"): 1.0},
                )
            ]
        )
    a.merge(b)
    assert (a.runs[0].host, a.runs[0].pid) == ("node-a", 100)
    assert (a.runs[1].host, a.runs[1].pid) == ("node-b", 101)


def test_dry_run_writes_nothing(backend: Factory) -> None:
    a, b = _study(backend, "a"), _study(backend, "b")
    _run(b, [3])
    report = a.merge(b, dry_run=True)
    assert report.dry_run
    assert report.updated == 1
    assert a.run_table.counts()["completed"] == 0
    assert a.merges == []


def test_merge_record_is_stored_with_the_file(tmp_path: Path) -> None:
    a = _study(lambda name: pt.Trajectory(name, filename=tmp_path / "a.h5"), "a")
    b = _study(lambda name: pt.Trajectory(name, filename=tmp_path / "b.h5"), "b")
    _run(b, [0, 1])
    b.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a.merge(pt.load(tmp_path / "b.h5"))
    a.close()
    (record,) = pt.load(tmp_path / "a.h5").merges
    assert record["source"] == f"{tmp_path / 'b.h5'}:b"
    assert (record["kind"], record["other_runs"], record["updated"]) == ("same study", 10, 2)
    assert (record["runs_before"], record["runs_after"]) == (10, 10)


# -- files -------------------------------------------------------------------------------------
def _file_study(path: Path, indices: Any, *, points: Any = POINTS, fixed: str = "a") -> Path:
    traj = pt.Trajectory("study", filename=path)
    traj.add_parameter("x", 1.0)
    traj.add_parameter("n", 1)
    traj.add_parameter("fixed", fixed)
    traj.explore(points)
    _run(traj, indices)
    traj.close()
    return path


def test_merge_files_into_a_new_file(tmp_path: Path) -> None:
    a = _file_study(tmp_path / "a.h5", [0, 1, 2])
    b = _file_study(tmp_path / "b.h5", [2, 3, 9])
    before = a.read_bytes(), b.read_bytes()
    reports = pt.merge_files([a, b], tmp_path / "all.h5")
    assert [(r.kind, r.appended, r.updated) for r in reports] == [
        ("copy", 10, 0),
        ("same study", 0, 2),
    ]
    assert (a.read_bytes(), b.read_bytes()) == before  # inputs untouched
    merged = pt.load(tmp_path / "all.h5")
    assert merged.results.z.to_series().to_dict() == {0: 0.0, 1: 0.0, 2: 1.0, 3: 2.0, 9: 8.0}
    assert [m["source"] for m in merged.merges] == [f"{b}:study"]
    merged.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "all.h5", "b.h5"]


def test_merge_files_into_an_existing_file_with_backup_and_delete_other(tmp_path: Path) -> None:
    out = _file_study(tmp_path / "out.h5", [0])
    old = out.read_bytes()
    b = _file_study(tmp_path / "b.h5", [1])
    reports = pt.merge_files([b], out, backup=True, delete_other=True)
    assert reports[0].updated == 1
    assert not b.exists()
    (backup,) = tmp_path.glob("out.backup-*.h5")
    assert backup.read_bytes() == old
    merged = pt.load(out)
    assert merged.run_table.counts()["completed"] == 2
    merged.close()


def test_merge_files_conflict_leaves_every_file_byte_identical(tmp_path: Path) -> None:
    a = _file_study(tmp_path / "a.h5", [0])
    b = _file_study(tmp_path / "b.h5", [1], fixed="other")
    out = _file_study(tmp_path / "out.h5", [2])
    before = {p: p.read_bytes() for p in (a, b, out)}
    expected = (
        r"parameters.fixed: default 'a' in 'study' \(merged into\), 'other' in '.*b.h5:study'"
    )
    with pytest.raises(MergeConflictError, match=expected):
        pt.merge_files([a, b], out)
    with pytest.raises(MergeConflictError, match="parameters.fixed"):
        pt.merge_files([a, b], tmp_path / "new.h5")
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "b.h5", "out.h5"]


def _definition_study(path: Path, x_default: Any, explored: str, fixed: str) -> Path:
    traj = pt.Trajectory("study", filename=path)
    traj.add_parameter("x", x_default)
    traj.add_parameter("n", 1)
    traj.add_parameter("fixed", fixed)
    traj.explore({explored: [x_default, x_default * 2] if explored == "x" else [1, 2]})
    _run(traj, [0])
    traj.close()
    return path


@pytest.mark.parametrize(
    ("b_definition", "expected"),
    [
        (
            (1.0, "n", "a"),
            [
                "parameters.n: explored in '{b}:study' but not in 'study' (merged into) "
                "(default 1 here, 1 there)",
                "parameters.x: explored in 'study' (merged into) but not in '{b}:study' "
                "(default 1.0 here, 1.0 there)",
            ],
        ),
        (
            (1.0, "x", "other"),
            ["parameters.fixed: default 'a' in 'study' (merged into), 'other' in '{b}:study'"],
        ),
        (
            (1, "x", "a"),
            [
                "parameters.x: type float (1.0) in 'study' (merged into), "
                "type int (1) in '{b}:study'"
            ],
        ),
    ],
    ids=["space", "default", "type"],
)
@pytest.mark.parametrize("into", ["new", "existing"])
def test_conflicting_files_raise_naming_the_parameter_and_stay_byte_identical(
    tmp_path: Path, b_definition: tuple[Any, str, str], expected: list[str], into: str
) -> None:
    a = _definition_study(tmp_path / "a.h5", 1.0, "x", "a")
    b = _definition_study(tmp_path / "b.h5", *b_definition)
    expected = [text.format(b=b) for text in expected]
    before = {p: p.read_bytes() for p in (a, b)}
    # A new output starts as a copy of a; an existing one (a itself) takes b in place.
    inputs, out = ([a, b], tmp_path / "all.h5") if into == "new" else ([b], a)
    with pytest.raises(MergeConflictError, match="nothing was written") as caught:
        pt.merge_files(inputs, out)
    assert caught.value.conflicts == expected
    assert isinstance(caught.value, ValueError)
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "b.h5"]
    # The same refusal between loaded trajectories writes nothing to either file.
    ours, theirs = pt.load(a), pt.load(b)
    with pytest.raises(MergeConflictError) as caught:
        ours.merge(theirs)
    assert caught.value.conflicts == expected
    ours.close()
    theirs.close()
    assert {p: p.read_bytes() for p in before} == before


def test_merge_files_dry_run_and_merge_folder(tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    shards.mkdir()
    for k in range(3):
        _file_study(shards / f"s{k}.h5", [k, k + 3])
    reports = pt.merge_files(sorted(shards.glob("*.h5")), tmp_path / "all.h5", dry_run=True)
    assert [r.updated for r in reports] == [2, 2]
    assert all(r.dry_run for r in reports)
    assert not (tmp_path / "all.h5").exists()
    pt.merge_folder(shards, tmp_path / "all.h5")
    merged = pt.load(tmp_path / "all.h5")
    assert sorted(merged.results.z.to_series().index) == [0, 1, 2, 3, 4, 5]
    merged.close()
    with pytest.raises(OptionError, match=r"no file in .* matches '\*.hdf'"):
        pt.merge_folder(shards, tmp_path / "x.h5", pattern="*.hdf")
    with pytest.raises(OptionError, match="is also an input"):
        pt.merge_files([shards / "s0.h5"], shards / "s0.h5")


def test_merge_across_backends(tmp_path: Path) -> None:
    in_memory = _study(pt.Trajectory, "mem")
    in_file = _study(lambda name: pt.Trajectory(name, filename=tmp_path / "f.h5"), "file")
    _run(in_memory, [0, 1])
    _run(in_file, [1, 2])
    in_file.merge(in_memory)
    in_memory.merge(in_file)
    for traj in (in_file, in_memory):
        assert traj.results.z.to_series().to_dict() == {0: 0.0, 1: 0.0, 2: 1.0}
        assert traj.results.arr[2].dtype == np.float32
    in_file.close()
    reloaded = pt.load(tmp_path / "f.h5")
    _assert_same_runs(reloaded, in_memory)
    reloaded.close()
