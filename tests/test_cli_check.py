"""``pytraj check FILE``: a probe in a child process, a report, exit 0 clean / 1 damaged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import corruption
import pytest

import pytraj as pt
from pytraj.cli import SUBCOMMANDS, main
from pytraj.cli.check import check_file

pytestmark = pytest.mark.storage

ROOT = Path(pt.__file__).resolve().parents[1]


def pytraj_command(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the ``pytraj`` command as a user does (a new process)."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", "import sys; from pytraj.cli import main; sys.exit(main())", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("check") / "study.h5"
    corruption.make_study(path, fletcher32=True)
    return path


def test_check_is_a_subcommand() -> None:
    assert "check" in SUBCOMMANDS


def test_a_clean_file_reports_its_runs_and_exits_0(study: Path) -> None:
    done = pytraj_command("check", str(study))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == str(study)
    # 40 runs: run 7 failed, the others completed. Nodes: 4 parameters, 9 result items
    # (stats has two), the failures and the logs.
    assert "  trajectory 'study': 40 runs (39 completed, 1 failed), 15 nodes read" in lines, (
        done.stdout
    )
    assert lines[-1] == "clean: every node was read"
    assert "journal" not in done.stdout


def test_a_flipped_chunk_is_reported_with_its_node_and_exits_1(study: Path, tmp_path: Path) -> None:
    region = next(
        r
        for r in corruption.regions(study)
        if r.kind == "chunk" and r.node == "study/results/ragged/ragged/values"
    )
    damaged = tmp_path / "damaged.h5"
    corruption.flip(study, damaged, region.offset + region.size // 2)
    before = damaged.read_bytes()
    done = pytraj_command("check", str(damaged))
    assert done.returncode == 1, done.stdout + done.stderr
    problems = [line for line in done.stdout.splitlines() if "problem at" in line]
    assert len(problems) == 1, done.stdout
    assert problems[0].startswith("  problem at /study/results/ragged/ragged: DamagedFileError")
    verdict = done.stdout.splitlines()[-1]
    assert verdict.startswith("DAMAGED: 1 problem(s), first at /study/results/ragged/ragged;")
    assert "restore it from a backup" in verdict
    # The other nodes were still read, and the file was not touched.
    assert "40 runs (39 completed, 1 failed), 14 nodes read" in done.stdout
    assert damaged.read_bytes() == before


def test_a_pending_journal_is_replayed_in_a_copy_and_the_file_is_unchanged(tmp_path: Path) -> None:
    script = tmp_path / "killed.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, signal, sys
            import pytraj as pt

            traj = pt.Trajectory("s", filename=sys.argv[1])
            traj.add_parameter("x", 0)
            traj.explore({"x": list(range(6))})
            traj.store()
            for i in range(6):
                with traj.start_run(i):
                    traj.add_result("z", i * 10)
                if i == 3:
                    os.kill(os.getpid(), signal.SIGKILL)
            """
        )
    )
    path = tmp_path / "killed.h5"
    killed = subprocess.run(
        [sys.executable, str(script), str(path)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    journal = path.with_name("killed.h5.journal")
    before = (path.read_bytes(), journal.read_bytes())
    listing = sorted(p.name for p in tmp_path.iterdir())  # the killed writer's lock file too
    done = pytraj_command("check", str(path), "--name", "s")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "journal pending" in done.stdout
    assert "trajectory 's': 6 runs (4 completed, 2 pending)" in done.stdout
    assert done.stdout.splitlines()[-1] == (
        "clean: every node was read (after replaying the journal in a copy)"
    )
    assert (path.read_bytes(), journal.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing


def test_a_crash_of_the_reading_process_is_reported_not_fatal(study: Path, tmp_path: Path) -> None:
    """The probe dies of SIGSEGV (as HDF5 did on one damaged file): check reports it."""
    hook = tmp_path / "hook"
    hook.mkdir()
    # Python imports sitecustomize at start-up: this one makes the probe's process die
    # of a real SIGSEGV when it opens the file, as a crash inside HDF5 would.
    (hook / "sitecustomize.py").write_text(
        textwrap.dedent(
            """
            import os, signal, sys
            if "--probe" in sys.argv:
                import tables
                def crash(*args, **kwargs):
                    os.kill(os.getpid(), signal.SIGSEGV)
                tables.open_file = crash
            """
        )
    )
    done = pytraj_command("check", str(study), env={"PYTHONPATH": f"{ROOT}{os.pathsep}{hook}"})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "  the reading process crashed (SIGSEGV while reading / (file))" in done.stdout
    assert done.stdout.splitlines()[-1].startswith("DAMAGED: 1 problem(s), first at the file;")


def test_a_foreign_file_and_a_missing_trajectory(study: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5 at all")
    done = pytraj_command("check", str(text))
    assert done.returncode == 1
    assert "problem at /: FileFormatError:" in done.stdout
    assert "is not an HDF5 file" in done.stdout

    report = check_file(study, "nope")
    assert report.damaged
    assert report.problems == [("nope", "no trajectory 'nope'; it holds study")]


def test_a_missing_file_is_one_line_and_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(tmp_path / "absent.h5")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pytraj check: error: no file ")
    assert err.count("\n") == 1
