"""Shards of one study: options, file names, disjoint and covering slices, merge, resume."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pytraj as pt
from pytraj.errors import OptionError
from pytraj.run.options import Shard
from pytraj.run.shards import shard_of, shard_path

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    import pytraj as pt
    import pytraj.trajectory.running

    if os.environ.get("FAKE_HOST"):  # this process plays another machine
        pytraj.trajectory.running._HOST = os.environ["FAKE_HOST"]

    DONE = []

    def simulate(traj, kill_after):
        if kill_after is not None and len(DONE) >= kill_after:
            os.kill(os.getpid(), 9)  # the machine of this shard dies mid-study
        if kill_after is not None and len(DONE) == kill_after - 1:
            time.sleep(1.2)  # past the flush budget: the runs before are journaled
        DONE.append(traj.idx)
        traj.add_result("z", traj.x * traj.n)
        traj.add_result("arr", np.full(2, traj.n, dtype=np.int16))

    def main(filename, shard=None, kill_after=None):
        env = pt.Environment(trajectory="study", filename=filename, progress=False, shard=shard)
        traj = env.trajectory
        traj.add_parameter("x", 0.0)
        traj.add_parameter("n", 1)
        traj.explore(pt.cartesian_product({"x": [0.5 * i for i in range(8)], "n": [1, 2, 3]}))
        env.run(simulate, kill_after)
        env.close()

    if __name__ == "__main__":
        shard = None if sys.argv[2] == "-" else (int(sys.argv[2]), 4)
        kill = None if len(sys.argv) < 4 else int(sys.argv[3])
        main(sys.argv[1], shard, kill)
    """
)


def _script(tmp_path: Path) -> Path:
    path = tmp_path / "study_script.py"
    path.write_text(SCRIPT)
    return path


def _run_script(script: Path, *args: Any, env: dict[str, str] | None = None) -> int:
    environ = {k: v for k, v in os.environ.items() if k != "PYTRAJ_SHARD"}
    environ.update(env or {})
    done = subprocess.run(
        [sys.executable, str(script), *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        env=environ,
        timeout=300,
    )
    return done.returncode


def _by_point(traj: pt.Trajectory) -> dict[str, Any]:
    found = {}
    for idx in range(len(traj)):
        run = traj.runs[idx]
        z = traj.results.z.get(idx, None)
        arr = traj.results.arr.get(idx, None)
        found[run.point_id] = (
            run.status,
            (type(z).__name__, z),
            None if arr is None else (arr.dtype.str, arr.tolist()),
        )
    return found


# -- options -----------------------------------------------------------------------------------
def test_shard_option_and_variable_parsing_and_precedence() -> None:
    assert Shard.from_options((2, 4), {}) == Shard(2, 4)
    assert Shard.from_options(None, {"PYTRAJ_SHARD": "1/3"}) == Shard(1, 3)
    assert Shard.from_options(None, {"PYTRAJ_SHARD": " 0/2 "}) == Shard(0, 2)
    assert Shard.from_options((3, 4), {"PYTRAJ_SHARD": "1/3"}) == Shard(3, 4)  # argument wins
    assert Shard.from_options(None, {}).is_whole
    for text in ("1", "a/4", "1/b", "1/2/3", "1-4"):
        with pytest.raises(OptionError, match=r"PYTRAJ_SHARD=.* is invalid: expected 'i/n'"):
            Shard.from_options(None, {"PYTRAJ_SHARD": text})
    for text in ("4/4", "-1/4", "0/0"):
        with pytest.raises(OptionError, match="out of range"):
            Shard.from_options(None, {"PYTRAJ_SHARD": text})
    for bad in ((4, 4), (0, 0), (1,), "1/4", (1.0, 4), (True, 4)):
        with pytest.raises(OptionError, match="shard"):
            Shard.from_options(bad, {})


def test_environment_reads_pytraj_shard_and_names_the_shard_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTRAJ_SHARD", "2/4")
    env = pt.Environment(trajectory="t", filename=tmp_path / "study.h5", progress=False)
    assert env.shard == Shard(2, 4)
    assert env.filename == tmp_path / "study.shard-2-of-4.h5"
    env.close()
    env = pt.Environment(
        trajectory="t", filename=tmp_path / "s-{shard}.h5", progress=False, shard=(1, 2)
    )
    assert env.filename == tmp_path / "s-1-of-2.h5"
    env.close()
    monkeypatch.setenv("PYTRAJ_SHARD", "x")
    with pytest.raises(OptionError, match="PYTRAJ_SHARD='x' is invalid"):
        pt.Environment(trajectory="t", filename=tmp_path / "study.h5")
    assert shard_path(tmp_path / "a.h5", Shard(0, 1)) == tmp_path / "a.h5"


def test_shards_stay_disjoint_and_covering_after_expand() -> None:
    traj = pt.Trajectory("t")
    traj.add_parameter("x", 0)
    traj.explore({"x": list(range(50))})
    traj.store_definition()
    owners_before = [shard_of(bytes.fromhex(traj.runs[i].point_id), 4) for i in range(50)]
    traj.expand({"x": list(range(50, 120))})
    traj.store_definition()
    owners = [shard_of(bytes.fromhex(traj.runs[i].point_id), 4) for i in range(120)]
    assert owners[:50] == owners_before  # a point keeps its shard when the study grows
    slices = [{i for i, owner in enumerate(owners) if owner == k} for k in range(4)]
    assert set().union(*slices) == set(range(120))
    assert sum(len(s) for s in slices) == 120
    assert all(len(s) > 10 for s in slices)  # every shard gets a share


# -- whole studies ---------------------------------------------------------------------------
def test_four_shards_merged_equal_the_unsharded_study(tmp_path: Path) -> None:
    script = _script(tmp_path)
    assert _run_script(script, tmp_path / "whole.h5", "-") == 0
    for k in range(4):
        assert _run_script(script, tmp_path / "study.h5", k) == 0
    shards = sorted(tmp_path.glob("study.shard-*-of-4.h5"))
    assert len(shards) == 4
    counts = []
    for path in shards:
        traj = pt.load(path)
        counts.append(traj.run_table.counts()["completed"])
        assert len(traj) == 24  # the full definition, other shards' runs pending
        traj.close()
    assert sum(counts) == 24
    pt.merge_files(shards, tmp_path / "merged.h5")
    merged, whole = pt.load(tmp_path / "merged.h5"), pt.load(tmp_path / "whole.h5")
    assert _by_point(merged) == _by_point(whole)
    assert merged.run_table.counts()["completed"] == 24
    merged.close()
    whole.close()


def _simulate(traj: pt.Trajectory) -> None:
    """The run function of SCRIPT, for resuming in this process."""
    traj.add_result("z", traj.x * traj.n)
    traj.add_result("arr", np.full(2, traj.n, dtype=np.int16))


@pytest.mark.parametrize("finish", ["rerun-script", "env-resume"])
def test_a_killed_shard_merged_then_resumed_equals_the_unsharded_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, finish: str
) -> None:
    script = _script(tmp_path)
    assert _run_script(script, tmp_path / "whole.h5", "-") == 0
    for k in range(4):
        extra = [2] if k == 1 else []
        code = _run_script(script, tmp_path / "study.h5", k, *extra)
        assert code == (-9 if k == 1 else 0)
    pt.merge_files(sorted(tmp_path.glob("study.shard-*-of-4.h5")), tmp_path / "merged.h5")
    merged = pt.load(tmp_path / "merged.h5")
    pending = {i for i in range(24) if merged.runs[i].status == "pending"}
    finished_before = {i: merged.runs[i].finish for i in range(24) if i not in pending}
    merged.close()
    killed = {i for i in range(24) if shard_of(bytes.fromhex(_point_id(tmp_path, i)), 4) == 1}
    assert pending  # the killed shard's missing points
    assert pending < killed  # only those: the runs it stored before the kill survived
    if finish == "rerun-script":
        # Running the unchanged script against the merged file runs only the missing points.
        assert _run_script(script, tmp_path / "merged.h5", "-") == 0
    else:
        # The study defined as in the script, then env.resume() on the merged file. (An
        # Environment defining no parameters adopts the stored study instead; that path
        # rewrites point ids today, a defect of issue 9 fixed separately.)
        monkeypatch.delenv("PYTRAJ_SHARD", raising=False)
        env = pt.Environment(trajectory="study", filename=tmp_path / "merged.h5", progress=False)
        env.trajectory.add_parameter("x", 0.0)
        env.trajectory.add_parameter("n", 1)
        env.trajectory.explore(
            pt.cartesian_product({"x": [0.5 * i for i in range(8)], "n": [1, 2, 3]})
        )
        results = env.resume(_simulate)
        env.close()
        assert sorted(idx for idx, _ in results) == sorted(pending)
    merged, whole = pt.load(tmp_path / "merged.h5"), pt.load(tmp_path / "whole.h5")
    assert _by_point(merged) == _by_point(whole)
    # The runs the shards completed were not run again.
    assert {i: merged.runs[i].finish for i in finished_before} == finished_before
    assert all(merged.runs[i].finish > 0 for i in range(24))
    merged.close()
    whole.close()


def _point_id(tmp_path: Path, idx: int) -> str:
    whole = pt.load(tmp_path / "whole.h5")
    try:
        return whole.runs[idx].point_id
    finally:
        whole.close()


def test_per_run_provenance_survives_merging_shards_from_different_hosts(tmp_path: Path) -> None:
    script = _script(tmp_path)
    for k in range(4):
        assert _run_script(script, tmp_path / "study.h5", k, env={"FAKE_HOST": f"node-{k}"}) == 0
    shards = sorted(tmp_path.glob("study.shard-*-of-4.h5"))
    pt.merge_files(shards, tmp_path / "merged.h5")
    merged = pt.load(tmp_path / "merged.h5")
    assert merged.run_table.counts()["completed"] == 24
    for idx in range(24):
        shard = shard_of(bytes.fromhex(merged.runs[idx].point_id), 4)
        provenance = merged.runs[idx].provenance
        assert provenance is not None
        assert provenance["host"] == f"node-{shard}"
        assert merged.runs[idx].host == f"node-{shard}"
        assert Path(provenance["file"]).name == f"study.shard-{shard}-of-4.h5"
        assert provenance["trajectory"] == "study"
        assert provenance["executor"] == "serial"
        assert provenance["pytraj"] == pt.__version__
    assert len(merged.provenance["writers"]) == 4  # one writer session per shard
    merged.close()
    # Merging a shard again adds no writer session and changes no run's provenance.
    pt.merge_files([shards[0]], tmp_path / "merged.h5")
    again = pt.load(tmp_path / "merged.h5")
    assert len(again.provenance["writers"]) == 4
    again.close()
