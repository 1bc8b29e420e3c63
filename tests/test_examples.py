"""Every example runs (with small sizes) and produces what it promises."""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # worker processes import run functions by name
    spec.loader.exec_module(module)
    return module


def test_quickstart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    loaded = example("quickstart").main(points_per_axis=4, filename=tmp_path / "q.h5")
    assert len(loaded) == 16
    assert len(loaded.results.z) == 16
    out = capsys.readouterr().out
    assert "16 runs on 2 cores" in out
    assert "best z = " in out
    assert "runs were done by 2 worker processes" in out


@pytest.mark.slow
def test_multiprocessing_caps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traj = example("multiprocessing_caps").main(
        n_runs=6, filename=tmp_path / "caps.h5", run_timeout=2.0
    )
    assert traj.runs[3].status == "failed"
    assert "exceeded run_timeout" in traj.runs[3].failure.message
    assert [traj.runs[i].status for i in (0, 1, 2, 4, 5)] == ["completed"] * 5
    assert "run 0: " in traj.runs[0].log
    assert "run 0 done in process" in traj.runs[0].log
    assert "worker processes used:" in capsys.readouterr().out


def test_adaptive_search(tmp_path: Path) -> None:
    traj = example("adaptive_search").main(rounds=3, filename=tmp_path / "a.h5")
    frame = traj.to_dataframe()
    assert len(frame) == len(frame[["x", "y"]].drop_duplicates())  # no point ran twice
    assert len(frame) > 25  # the first grid plus refinements
    assert traj.config.rounds_done == 3
    best = frame.loc[frame["cost"].idxmin()]
    assert abs(best["x"] - 1.234) < 0.5
    assert abs(best["y"] + 0.567) < 0.5


def test_external_program(tmp_path: Path) -> None:
    traj = example("external_program").main(n_points=2, filename=tmp_path / "ext.h5")
    assert len(traj.results.energy) == 4
    assert traj.results.solver_log[0] == "solved amplitude=1.0 frequency=0.5"
    for idx in range(4):
        with traj.set_run(idx):
            folder = traj.run_dir
        assert (folder / "output.json").exists()
        assert folder.parent.parent == (tmp_path / "ext_solver").resolve()


def test_quickstart_runs_as_a_script(tmp_path: Path) -> None:
    path = os.pathsep.join([str(EXAMPLES.parent), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTRAJ_EXAMPLE_SMALL="1", PYTHONPATH=path)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "16 runs on 2 cores" in done.stdout
    assert (tmp_path / "out" / "quickstart.h5").exists()


def test_shards_and_merge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traj = example("shards_and_merge").main(tmp_path, small=True)
    assert len(traj) == 9
    assert traj.run_table.counts()["completed"] == 9
    assert traj.results.response.to_series().round(6).tolist() == [
        round(1.0 / (1.0 + 0.05 * (k + 1) * (0.5 * (j + 1)) ** 2), 6)
        for k in range(3)
        for j in range(3)
    ]
    out = capsys.readouterr().out
    assert "shard 1: killed" in out
    pending = re.search(r"after the merge: \{'pending': (\d+)", out)
    assert pending is not None
    assert int(pending.group(1)) > 0  # the dead shard's points, run by the resume
    assert "after resuming: {'pending': 0" in out
    traj.close()


@pytest.mark.slow
def test_dask_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cloudpickle = pytest.importorskip("cloudpickle")  # the test extra installs Dask with it
    module = example("dask_cluster")
    # Loaded from a path under a made-up name that Dask workers cannot import: send
    # its functions by value (a script run as __main__ gets that by itself).
    cloudpickle.register_pickle_by_value(module)
    try:
        traj = module.main(n_points=4, filename=tmp_path / "dask.h5")
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    assert len(traj) == 16
    assert traj.results.energy[0] == pytest.approx(0.5 * 0.5**2 * math.exp(-2.0 * 0.02 * 10.0))
    out = capsys.readouterr().out
    assert "16 runs on a Dask LocalCluster with 2 worker processes" in out
    assert re.search(r"runs were done by [12] worker processes", out)
    assert "stored by: dask distributed.Client (tcp://" in out
