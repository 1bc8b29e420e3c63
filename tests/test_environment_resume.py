"""Continuing a study: re-running a script, expand, plan, resume, adaptive post-processing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import pytraj as pt
from pytraj.errors import StudyMismatchError
from pytraj.io import load
from pytraj.run import Environment

ROOT = Path(__file__).resolve().parent.parent

# A study script as a user writes it. Each call of the run function appends one line
# to calls/<x>.txt before working, so the test counts how often each point ran. With
# STOP_AT set, that run interrupts the study like Ctrl-C (SIGINT to itself).
SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import pytraj as pt
    from pytraj.run import Environment

    CALLS = Path(sys.argv[2])
    STOP_AT = float(os.environ.get("STOP_AT", "-1"))

    def simulate(traj):
        with open(CALLS / f"{traj.x:g}.txt", "a") as calls:
            calls.write(f"{os.getpid()}\\n")
        traj.add_result("z", traj.x * traj.y)
        if traj.x == STOP_AT:
            os.kill(os.getpid(), signal.SIGINT)

    if __name__ == "__main__":
        env = Environment("study", sys.argv[1], ncores=int(os.environ.get("NCORES", "1")),
                          progress=False)
        traj = env.trajectory
        traj.add_parameter("x", 0.0)
        traj.add_parameter("y", float(os.environ.get("Y_DEFAULT", "2.0")))
        n = int(os.environ.get("N_POINTS", "8"))
        traj.explore({"x": [float(i) for i in range(n)]})
        try:
            env.run(simulate)
        except KeyboardInterrupt:
            env.close()
            sys.exit(130)
        except pt.errors.StudyMismatchError as exc:
            print(exc, file=sys.stderr)
            sys.exit(3)
        env.close()
    """
)


def run_script(tmp_path: Path, **env_vars: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "study.py"
    script.write_text(SCRIPT)
    calls = tmp_path / "calls"
    calls.mkdir(exist_ok=True)
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path, **env_vars)
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path / "study.h5"), str(calls)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def call_counts(tmp_path: Path) -> dict[float, int]:
    counts = {}
    for path in (tmp_path / "calls").glob("*.txt"):
        counts[float(path.stem)] = len(path.read_text().splitlines())
    return counts


def test_rerunning_an_interrupted_script_runs_only_the_missing_points(tmp_path: Path) -> None:
    first = run_script(tmp_path, STOP_AT="3")
    assert first.returncode == 130, first.stderr
    stored = load(tmp_path / "study.h5", "study")
    completed = {i for i in range(8) if stored.runs[i].status == "completed"}
    assert completed == {0, 1, 2, 3}  # run 3 finished after the interrupt; none started
    assert call_counts(tmp_path) == {0.0: 1, 1.0: 1, 2.0: 1, 3.0: 1}

    second = run_script(tmp_path)
    assert second.returncode == 0, second.stderr
    assert call_counts(tmp_path) == {float(i): 1 for i in range(8)}
    stored = load(tmp_path / "study.h5", "study")
    assert [stored.results.z[i] for i in range(8)] == [2.0 * i for i in range(8)]

    third = run_script(tmp_path, N_POINTS="10")  # the script grew: only new points run
    assert third.returncode == 0, third.stderr
    assert call_counts(tmp_path) == {float(i): 1 for i in range(10)}


def test_a_changed_script_is_refused_with_the_differences(tmp_path: Path) -> None:
    assert run_script(tmp_path, N_POINTS="4").returncode == 0
    changed = run_script(tmp_path, N_POINTS="4", Y_DEFAULT="5.0")
    assert changed.returncode == 3
    assert "parameters.y (default): stored 2.0, script 5.0" in changed.stderr
    assert "overwrite=True" in changed.stderr
    assert "traj.expand" in changed.stderr
    assert call_counts(tmp_path) == {float(i): 1 for i in range(4)}


# -- in-process continuations (a new Environment on the same file is a re-run) ---------------


def product(traj: pt.Trajectory) -> float:
    traj.add_result("z", traj.x * traj.y)
    return traj.x * traj.y


def fails_once(traj: pt.Trajectory, flags: str) -> float:
    marker = Path(flags) / f"{traj.idx}.failed"
    if traj.x == 2.0 and not marker.exists():
        marker.write_text("once")
        raise RuntimeError("first attempt fails")
    traj.add_result("z", traj.x)
    return traj.x


def build(path: Path, xs: list[float], y: float = 10.0, **options: Any) -> Environment:
    env = Environment("study", path, progress=False, **options)
    env.trajectory.add_parameter("x", 0.0)
    env.trajectory.add_parameter("y", y)
    env.trajectory.explore({"x": xs})
    return env


def test_expand_then_run_runs_only_the_new_points(tmp_path: Path) -> None:
    env = build(tmp_path / "e.h5", [1.0, 2.0])
    assert env.run(product) == [(0, 10.0), (1, 20.0)]
    env.trajectory.expand({"x": [3.0, 4.0]})
    assert env.run(product) == [(2, 30.0), (3, 40.0)]
    assert env.run(product) == []
    env.close()
    assert list(load(tmp_path / "e.h5", "study").results.z) == [10.0, 20.0, 30.0, 40.0]


def test_a_rerun_with_fewer_points_keeps_the_stored_ones_and_recognises_them(
    tmp_path: Path,
) -> None:
    env = build(tmp_path / "grown.h5", [1.0, 2.0])
    env.run(product)
    env.trajectory.expand({"x": [3.0]})
    env.run(product)
    env.close()

    again = build(tmp_path / "grown.h5", [1.0, 2.0])  # the same script from the top
    assert again.run(product) == []
    again.trajectory.expand({"x": [3.0, 5.0]})
    assert again.run(product) == [(3, 50.0)]
    again.close()
    stored = load(tmp_path / "grown.h5", "study")
    assert len(stored) == 4
    assert list(stored.results.z) == [10.0, 20.0, 30.0, 50.0]


def test_different_points_are_refused_with_the_runs_that_differ(tmp_path: Path) -> None:
    first = build(tmp_path / "d.h5", [1.0, 2.0, 3.0])
    first.run(product)
    first.close()
    changed = build(tmp_path / "d.h5", [1.0, 2.5, 3.0])
    with pytest.raises(StudyMismatchError) as caught:
        changed.run(product)
    message = str(caught.value)
    assert "run 1: stored x=2.0, script x=2.5" in message
    assert "run 0" not in message
    assert "run 2" not in message
    assert [str(d) for d in caught.value.differences] == ["run 1: stored x=2.0, script x=2.5"]
    with pytest.raises(StudyMismatchError):
        changed.plan()


def test_overwrite_replaces_the_stored_trajectory(tmp_path: Path) -> None:
    first = build(tmp_path / "o.h5", [1.0, 2.0])
    first.run(product)
    first.close()
    env = build(tmp_path / "o.h5", [7.0], overwrite=True)
    assert env.run(product) == [(0, 70.0)]
    env.close()
    assert list(load(tmp_path / "o.h5", "study").results.z) == [70.0]


def test_plan_lists_what_would_run_without_writing(tmp_path: Path) -> None:
    flags = tmp_path / "flags"
    flags.mkdir()
    env = build(tmp_path / "p.h5", [1.0, 2.0, 3.0], on_error="continue")
    env.run(fails_once, str(flags))
    env.close()
    size = (tmp_path / "p.h5").stat().st_size
    again = build(tmp_path / "p.h5", [1.0, 2.0, 3.0, 4.0])
    plan = again.plan()
    assert (tmp_path / "p.h5").stat().st_size == size
    assert (plan.new, plan.pending, plan.failed, plan.completed) == ([3], [], [1], [0, 2])
    assert plan.to_run == [3]
    assert again.plan(retry_failed=True).to_run == [1, 3]
    frame = plan.to_dataframe()
    assert frame["status"].tolist() == ["failed", "new"]
    assert frame["x"].tolist() == [2.0, 4.0]
    assert "1 runs to run (1 new, 0 pending, 1 failed (not retried)), 2 completed" in repr(plan)


def test_resume_retries_failed_runs_on_request(tmp_path: Path) -> None:
    flags = tmp_path / "flags"
    flags.mkdir()
    env = build(tmp_path / "r.h5", [1.0, 2.0, 3.0])
    with pytest.raises(pt.RunsFailedError) as caught:
        env.run(fails_once, str(flags))
    assert caught.value.failed == [1]
    assert env.resume() == []  # failed runs are not retried unless asked
    assert env.resume(retry_failed=True) == [(1, 2.0)]
    traj = env.trajectory
    assert traj.runs[1].status == "completed"
    assert traj.runs[1].attempt == 2
    assert [f.message for f in traj.run_table.failures_of(1)] == ["first attempt fails"]
    env.close()


def test_resume_in_a_new_process_adopts_the_stored_study(tmp_path: Path) -> None:
    flags = tmp_path / "flags"
    flags.mkdir()
    env = build(tmp_path / "n.h5", [1.0, 2.0, 3.0], on_error="continue")
    env.run(fails_once, str(flags))
    env.close()
    fresh = Environment("study", tmp_path / "n.h5", progress=False)  # defines nothing
    assert fresh.resume(fails_once, str(flags), retry_failed=True) == [(1, 2.0)]
    assert fresh.trajectory.x == 0.0
    assert list(fresh.trajectory.results.z) == [1.0, 2.0, 3.0]
    fresh.close()


# -- adaptive post-processing -------------------------------------------------------------


def counted(traj: pt.Trajectory, calls: str) -> float:
    with open(Path(calls) / f"{traj.x:g}.txt", "a") as file:
        file.write("call\n")
    cost = (traj.x - 3.3) ** 2
    traj.add_result("cost", cost)
    return cost


def refine(traj: pt.Trajectory, results: list[tuple[int, Any]], rounds: list[int]) -> Any:
    if len(rounds) == 3:
        return None
    width = 1.0 / 2 ** len(rounds)
    rounds.append(len(results))
    best = traj.runs[min(results, key=lambda pair: pair[1])[0]].x
    # Overlaps earlier points on purpose: those must not run again.
    return {"x": [best + width * k for k in (-1.0, -0.5, 0.0, 0.5, 1.0)]}


@pytest.mark.parametrize("ncores", [1, 2])
def test_adaptive_postprocessing_runs_each_new_point_exactly_once(
    tmp_path: Path, ncores: int
) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    env = Environment("search", tmp_path / "a.h5", progress=False, ncores=ncores)
    env.trajectory.add_parameter("x", 0.0)
    env.trajectory.explore({"x": [0.0, 2.0, 4.0, 6.0]})
    rounds: list[int] = []
    env.add_postprocessing(refine, rounds)
    returned = env.run(counted, str(calls))
    traj = env.trajectory
    xs = [traj.runs[i].x for i in range(len(traj))]
    assert len(xs) == len(set(xs))
    counts = {float(p.stem): len(p.read_text().splitlines()) for p in calls.glob("*.txt")}
    assert counts == dict.fromkeys(xs, 1)
    assert [idx for idx, _ in returned] == list(range(len(traj)))
    assert rounds == [4, 8, 10]  # results so far, at each call
    assert sorted(xs) == [0, 2, 3, 3.125, 3.25, 3.375, 3.5, 3.75, 4, 4.5, 5, 6]
    env.close()


def test_a_loaded_trajectory_continues_in_its_own_file(tmp_path: Path) -> None:
    first = build(tmp_path / "l.h5", [1.0, 2.0])
    first.run(product)
    first.close()
    loaded = load(tmp_path / "l.h5", "study")
    env = Environment(loaded, progress=False)
    assert env.filename == (tmp_path / "l.h5").resolve()
    loaded.expand({"x": [3.0]})
    assert env.run(product) == [(2, 30.0)]
    env.close()
    with pytest.raises(pt.errors.OptionError, match="stored in .* already"):
        Environment(load(tmp_path / "l.h5", "study"), tmp_path / "other.h5")
