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


_RECORDER = """#!/bin/sh
# Stands in for {name}: records its arguments (and PYTRAJ_SHARD), one call per line.
echo "{name} PYTRAJ_SHARD=${{PYTRAJ_SHARD:-}} $*" >> "$CALLS"
echo 4242
"""


@pytest.mark.parametrize("first", [0, 1], ids=["array-0-3", "array-1-4"])
def test_slurm_array_script(tmp_path: Path, first: int) -> None:
    """The sbatch script submits the array and a merge; each task names its shard."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("sbatch", "python", "pytraj"):
        (bin_dir / name).write_text(_RECORDER.format(name=name))
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls"
    base = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CALLS": str(calls), "HOME": str(tmp_path)}
    script = str(EXAMPLES / "slurm_array.sh")
    # On a login node: the array, then the merge (--wrap, so it is no array) after it.
    subprocess.run(["bash", script], cwd=tmp_path, env=base, check=True, capture_output=True)
    submitted = calls.read_text().splitlines()
    assert submitted[0] == f"sbatch PYTRAJ_SHARD= --parsable {script}"
    assert submitted[1].startswith("sbatch PYTRAJ_SHARD= --dependency=afterany:4242 ")
    assert "--wrap pytraj merge out/study.shard-*-of-*.h5 -o out/merged.h5" in submitted[1]
    assert submitted[1].endswith("&& python examples/shards_and_merge.py out/merged.h5")
    assert len(submitted) == 2
    # The second task of the array (--array=0-3 or 1-4) runs shard 1 of 4.
    calls.unlink()
    task = dict(
        base,
        SLURM_ARRAY_TASK_ID=str(first + 1),
        SLURM_ARRAY_TASK_MIN=str(first),
        SLURM_ARRAY_TASK_COUNT="4",
    )
    subprocess.run(["bash", script], cwd=tmp_path, env=task, check=True)
    assert calls.read_text().splitlines() == [
        "python PYTRAJ_SHARD=1/4 examples/shards_and_merge.py out/study.h5"
    ]


def test_oscillator_and_analyse_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traj = example("oscillator").main(
        n_drive=5, dampings=(0.05, 0.5), filename=tmp_path / "osc.h5", ncores=2
    )
    assert len(traj) == 10
    frame = traj.to_dataframe()
    # Physics: the driven amplitude of a lightly damped oscillator peaks near ω0 = 1
    # (at F / (2 ζ ω0²) = 10 exactly at resonance), and at ω → 0 it tends to F / ω0² = 1.
    light = frame[frame["damping"] == 0.05].set_index("drive")["amplitude"]
    assert light.idxmax() == pytest.approx(1.1)
    assert 3.0 < light.max() < 10.5
    assert light.loc[0.2] == pytest.approx(1.04, abs=0.05)
    traj.close()
    before = (tmp_path / "osc.h5").read_bytes()
    numbers = example("analyse_results").main(tmp_path / "osc.h5", tmp_path / "report.html")
    out = capsys.readouterr().out
    assert numbers["runs"] == 10
    assert numbers["resonant"] == frame.index[frame["amplitude"] > 3.0].tolist()
    assert numbers["peak_run"] == int(light.reset_index()["amplitude"].idxmax())
    assert numbers["resonances"][0.05] == pytest.approx(1.1)
    assert "damping 0.05: resonance at drive 1.100" in out
    assert (tmp_path / "report.html").read_text().count("data-kind='lines'") == 3
    assert (tmp_path / "osc.h5").read_bytes() == before  # analysis never writes the study


@pytest.mark.slow
def test_dask_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import cloudpickle  # the test extra installs Dask with it

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
