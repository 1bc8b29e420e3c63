"""``pytraj resume FILE``: continue a study from the shell (issue 9, defect 10).

Every test runs real scripts and ``python -m pytraj resume`` as subprocesses on real files.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

import pytraj as pt
from pytraj.errors import RecoveryWarning

STUDY = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    import pytraj as pt

    def simulate(traj):
        if traj.idx == int(os.environ.get("KILL_AT", "-1")):
            os.kill(os.getpid(), signal.SIGKILL)  # killed mid-study, as by the OOM killer
        if traj.x == int(os.environ.get("FAIL_X", "-1")):
            raise ValueError("refused on purpose")
        time.sleep(0.005)
        traj.add_result("z", traj.x * 3)
        traj.add_result("seed", traj.seed)
        return traj.x

    def main():
        env = pt.Environment(trajectory="cli", filename=sys.argv[1], progress=False,
                             on_error="continue")
        traj = env.trajectory
        traj.add_parameter("x", 0)
        traj.explore({"x": list(range(60))})
        env.run(simulate)
        env.close()

    if __name__ == "__main__":
        with open(Path(sys.argv[1]).with_suffix(".main"), "a") as marker:
            marker.write("main block ran\\n")  # pytraj resume must not run this block
        main()
    """
)


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )


def load(path: Path) -> pt.Trajectory:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecoveryWarning)
        return pt.load(path)


def by_point(path: Path) -> dict[str, tuple[str, Any, Any]]:
    traj = load(path)
    return {
        traj.runs[i].point_id: (
            traj.runs[i].status,
            traj.results.z.get(i, None),
            traj.results.seed.get(i, None),
        )
        for i in range(len(traj))
    }


def started(path: Path) -> dict[int, float]:
    rows = load(path).run_table.rows
    return {int(row["idx"]): float(row["start"]) for row in rows if int(row["status"]) != 0}


def killed_study(folder: Path, name: str = "study.py", **env: str) -> tuple[Path, Path]:
    folder.mkdir(exist_ok=True)
    script = folder / name
    script.write_text(STUDY)
    data = folder / "study.h5"
    done = run([str(script), str(data)], cwd=folder, KILL_AT="40", **env)
    assert done.returncode == -signal.SIGKILL, done.stderr
    data.with_suffix(".main").unlink()
    return script, data


@pytest.mark.parametrize("ncores", [1, 2])
def test_pytraj_resume_completes_a_killed_study(tmp_path: Path, ncores: int) -> None:
    script, data = killed_study(tmp_path / "work")
    before = started(data)
    assert 0 < len(before) < 60
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run(["-m", "pytraj", "resume", str(data), "--ncores", str(ncores)], cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"resumed 'cli' in {data}: {60 - len(before)} runs completed now, 0 failed, 0 left "
        "(60 of 60 runs completed)"
    )
    assert not data.with_suffix(".main").exists()  # the script's main block did not run
    after = started(data)
    assert {idx: after[idx] for idx in before} == before  # nothing completed ran again
    reference = tmp_path / "reference"
    reference.mkdir()
    shutil.copy(script, reference / "study.py")
    ref = run([str(reference / "study.py"), str(reference / "study.h5")], cwd=reference)
    assert ref.returncode == 0, ref.stderr
    assert by_point(data) == by_point(reference / "study.h5")
    again = run(["-m", "pytraj", "resume", str(data)], cwd=elsewhere)
    assert again.stdout.strip().startswith(f"resumed 'cli' in {data}: 0 runs completed now")


def test_pytraj_resume_retries_failed_runs_on_request(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    script = folder / "study.py"
    script.write_text(STUDY)
    data = folder / "study.h5"
    assert run([str(script), str(data)], cwd=folder, FAIL_X="7").returncode == 0
    plain = run(["-m", "pytraj", "resume", str(data)], cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "0 runs completed now, 0 failed, 1 left (59 of 60" in plain.stdout
    retried = run(["-m", "pytraj", "resume", str(data), "--retry-failed"], cwd=tmp_path)
    assert retried.returncode == 0, retried.stderr
    assert "1 runs completed now, 0 failed, 0 left (60 of 60" in retried.stdout
    traj = load(data)
    assert traj.results.z[7] == 21
    assert traj.run_table.rows["attempt"][7] == 2
    nothing_left = run(["-m", "pytraj", "resume", str(data), "--retry-failed"], cwd=tmp_path)
    assert nothing_left.returncode == 0, nothing_left.stderr
    assert "0 runs completed now, 0 failed, 0 left (60 of 60" in nothing_left.stdout


def assert_one_line_error(done: subprocess.CompletedProcess[str], *parts: str) -> None:
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("pytraj resume: error: ")
    for part in parts:
        assert part in lines[0], (part, lines[0])


def test_a_deleted_script_gives_a_clear_error(tmp_path: Path) -> None:
    script, data = killed_study(tmp_path / "work")
    before = by_point(data)
    script.unlink()
    done = run(["-m", "pytraj", "resume", str(data)], cwd=tmp_path)
    assert_one_line_error(
        done, str(script), "no longer exists", "pt.Environment(trajectory='cli'", ".resume("
    )
    assert by_point(data) == before  # nothing written


def test_a_module_function_is_imported_and_its_loss_reported(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "mysim.py").write_text(STUDY.split("def main():")[0])
    script = folder / "study.py"
    script.write_text(
        STUDY.replace("def simulate(traj):", "def unused(traj):").replace(
            "import pytraj as pt", "import pytraj as pt\nfrom mysim import simulate"
        )
    )
    data = folder / "study.h5"
    done = run([str(script), str(data)], cwd=folder, KILL_AT="40")
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert load(data).provenance["run_module"] == "mysim"
    assert load(data).provenance["run_script"] == str(folder / "mysim.py")
    moved = tmp_path / "moved.h5"
    shutil.copy(data, moved)
    shutil.copy(data.with_name("study.h5.journal"), tmp_path / "moved.h5.journal")
    resumed = run(["-m", "pytraj", "resume", str(data)], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert load(data).run_table.counts()["completed"] == 60
    (folder / "mysim.py").unlink()
    shutil.rmtree(folder / "__pycache__", ignore_errors=True)
    gone = run(["-m", "pytraj", "resume", str(moved)], cwd=tmp_path)
    assert_one_line_error(gone, "'mysim'", "cannot be imported", "no longer exists")


def test_nothing_recorded_gives_a_clear_error(tmp_path: Path) -> None:
    fixture = Path(__file__).parent / "data" / "layout1" / "finished.h5"
    data = tmp_path / "finished.h5"
    shutil.copy(fixture, data)
    done = run(["-m", "pytraj", "resume", str(data)], cwd=tmp_path)
    assert_one_line_error(done, "'layout1'", "no run function recorded", ".resume(")


def test_a_nested_run_function_is_refused_clearly(tmp_path: Path) -> None:
    script = tmp_path / "nested.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import pytraj as pt

            def main():
                def simulate(traj):
                    traj.add_result("z", traj.x)

                env = pt.Environment(trajectory="n", filename=sys.argv[1], progress=False)
                env.trajectory.add_parameter("x", 0)
                env.trajectory.explore({"x": [1, 2]})
                env.run(simulate)
                env.close()

            if __name__ == "__main__":
                main()
            """
        )
    )
    data = tmp_path / "nested.h5"
    assert run([str(script), str(data)], cwd=tmp_path).returncode == 0
    done = run(["-m", "pytraj", "resume", str(data)], cwd=tmp_path)
    assert_one_line_error(done, "main.<locals>.simulate", "not importable")


def test_run_arguments_are_not_guessed(tmp_path: Path) -> None:
    script = tmp_path / "args.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import pytraj as pt

            def simulate(traj, factor):
                traj.add_result("z", traj.x * factor)

            if __name__ == "__main__":
                env = pt.Environment(trajectory="a", filename=sys.argv[1], progress=False)
                env.trajectory.add_parameter("x", 0)
                env.trajectory.explore({"x": [1, 2]})
                env.run(simulate, 10)
                env.close()
            """
        )
    )
    data = tmp_path / "args.h5"
    assert run([str(script), str(data)], cwd=tmp_path).returncode == 0
    done = run(["-m", "pytraj", "resume", str(data)], cwd=tmp_path)
    assert_one_line_error(done, "__main__.simulate", "extra arguments")


def test_runs_failing_during_resume_give_exit_status_1(tmp_path: Path) -> None:
    _script, data = killed_study(tmp_path / "work")
    left = 60 - len(started(data))
    done = run(["-m", "pytraj", "resume", str(data)], cwd=tmp_path, FAIL_X="55")
    assert done.returncode == 1, done.stderr
    assert done.stdout.strip() == (
        f"resumed 'cli' in {data}: {left - 1} runs completed now, 1 failed, 0 left "
        "(59 of 60 runs completed)"
    )
    assert load(data).runs[55].status == "failed"


def _simulate(traj: pt.Trajectory, *extra: Any, **named: Any) -> None:
    traj.add_result("z", traj.x)


def test_run_run_map_and_pipeline_record_their_function(tmp_path: Path) -> None:
    here = str(Path(__file__).resolve())
    expected = {
        "run_module": __name__,
        "run_function": "_simulate",
        "run_script": here,
        "run_arguments": 0,
        "run_mapped": False,
    }

    def recorded(name: str) -> dict[str, Any]:
        provenance = pt.load(tmp_path / "p.h5", name).provenance
        return {key: provenance[key] for key in expected}

    def study(name: str) -> pt.Environment:
        env = pt.Environment(trajectory=name, filename=tmp_path / "p.h5", progress=False)
        env.trajectory.add_parameter("x", 0)
        env.trajectory.explore({"x": [1, 2]})
        return env

    with study("plain") as env:
        env.run(_simulate)
    assert recorded("plain") == expected
    with study("args") as env:
        env.run(_simulate, 1, extra=2)
    assert recorded("args") == {**expected, "run_arguments": 2}
    with study("mapped") as env:
        env.run_map(_simulate, [10, 20])
    assert recorded("mapped") == {**expected, "run_mapped": True}
    with pt.Environment(trajectory="piped", filename=tmp_path / "p.h5", progress=False) as env:

        def build(traj: pt.Trajectory) -> Any:
            traj.add_parameter("x", 0)
            traj.explore({"x": [1, 2]})
            return _simulate

        env.pipeline(build)
    assert recorded("piped") == expected
    refused = run(["-m", "pytraj", "resume", str(tmp_path / "p.h5"), "--name", "mapped"], tmp_path)
    assert_one_line_error(refused, "extra arguments")
