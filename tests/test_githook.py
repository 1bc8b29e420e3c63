"""The git hook, on real temporary repositories driven by the git program."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pytraj as pt
from pytraj.errors import GitError, OptionError

IDENTITY = ["-c", "user.name=Tester", "-c", "user.email=tester@example.org"]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *IDENTITY, *args], cwd=repo, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    top = tmp_path / "code"
    top.mkdir()
    git(top, "init", "-q", "-b", "main")
    (top / "model.py").write_text("A = 1\n")
    (top / "notes.txt").write_text("first\n")
    git(top, "add", ".")
    git(top, "commit", "-q", "-m", "start")
    git(top, "remote", "add", "origin", "https://example.org/lab/model.git")
    return top


def simulate(traj: pt.Trajectory) -> None:
    traj.add_result("z", traj.x * 2)


def run_study(filename: Path, repo: Path, **options: Any) -> pt.Trajectory:
    env = pt.Environment("study", filename, git_repository=repo, progress=False, **options)
    env.trajectory.add_parameter("x", 0)
    env.trajectory.explore({"x": [0, 1, 2, 3]})
    env.run(simulate)
    env.close()
    return pt.load(env.filename, "study")


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD")


def assert_recorded(traj: pt.Trajectory, repo: Path, *, committed: bool, dirty: bool) -> None:
    record = traj.provenance["git"]
    assert record["commit"] == head(repo)
    assert record["branch"] == "main"
    assert record["remote"] == "https://example.org/lab/model.git"
    assert record["committed"] is committed
    assert record["dirty"] is dirty
    assert record["repository"] == str(repo.resolve())
    completed = [i for i in range(len(traj)) if traj.runs[i].status == "completed"]
    assert completed
    for i in completed:
        run = traj.runs[i].provenance
        assert run is not None
        assert run["git_commit"] == head(repo)
        assert run["git_dirty"] is dirty


def test_unstaged_changes_are_committed_with_a_message_naming_the_study(
    repo: Path, tmp_path: Path
) -> None:
    before = head(repo)
    (repo / "model.py").write_text("A = 2\n")
    traj = run_study(tmp_path / "s.h5", repo, git_message="try A = 2")
    assert head(repo) != before
    assert git(repo, "rev-parse", "HEAD~1") == before
    message = git(repo, "log", "-1", "--format=%B")
    assert "study 'study'" in message
    assert "s.h5" in message
    assert "try A = 2" in message
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "show", "HEAD:model.py") == "A = 2"
    assert_recorded(traj, repo, committed=True, dirty=False)


def test_staged_only_changes_are_committed(repo: Path, tmp_path: Path) -> None:
    (repo / "new.py").write_text("B = 1\n")
    git(repo, "add", "new.py")
    before = head(repo)
    traj = run_study(tmp_path / "s.h5", repo)
    assert head(repo) != before
    assert git(repo, "show", "HEAD:new.py") == "B = 1"
    assert_recorded(traj, repo, committed=True, dirty=False)


def test_untracked_files_are_left_alone_unless_asked(repo: Path, tmp_path: Path) -> None:
    (repo / "extra.py").write_text("C = 1\n")
    before = head(repo)
    traj = run_study(tmp_path / "s.h5", repo)
    assert head(repo) == before  # nothing tracked changed: no commit
    assert git(repo, "status", "--porcelain") == "?? extra.py"
    assert_recorded(traj, repo, committed=False, dirty=False)


def test_untracked_files_are_committed_with_git_add_untracked_but_not_the_study(
    repo: Path,
) -> None:
    (repo / "extra.py").write_text("C = 1\n")
    before = head(repo)
    # The study's file and folder inside the repository are never committed.
    traj = run_study(repo / "out" / "s.h5", repo, git_add_untracked=True)
    assert head(repo) != before
    committed = git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert committed == ["extra.py"]
    assert git(repo, "status", "--porcelain") == "?? out/"
    assert_recorded(traj, repo, committed=True, dirty=False)


def test_git_fail_refuses_a_dirty_tree_listing_the_files(repo: Path, tmp_path: Path) -> None:
    (repo / "model.py").write_text("A = 3\n")
    (repo / "staged.py").write_text("D = 1\n")
    git(repo, "add", "staged.py")
    before = head(repo)
    env = pt.Environment("study", tmp_path / "s.h5", git_repository=repo, git_fail=True)
    env.trajectory.add_parameter("x", 0)
    env.trajectory.explore({"x": [0, 1]})
    with pytest.raises(GitError, match=r"model\.py, staged\.py") as caught:
        env.run(simulate)
    assert "git_fail=True" in str(caught.value)
    assert head(repo) == before
    env.close()
    stored = pt.load(tmp_path / "s.h5", "study")
    assert [stored.runs[i].status for i in range(2)] == ["pending", "pending"]


def test_a_clean_tree_gets_no_commit_and_head_is_recorded(repo: Path, tmp_path: Path) -> None:
    before = head(repo)
    traj = run_study(tmp_path / "s.h5", repo, git_fail=True)
    assert head(repo) == before
    assert git(repo, "rev-list", "--count", "HEAD") == "1"
    assert_recorded(traj, repo, committed=False, dirty=False)


def test_shards_record_head_and_the_dirty_state_without_committing(
    repo: Path, tmp_path: Path
) -> None:
    (repo / "model.py").write_text("A = 4\n")
    before = head(repo)
    traj = run_study(tmp_path / "s.h5", repo, shard=(0, 2))
    shard_file = tmp_path / "s.shard-0-of-2.h5"
    assert shard_file.exists()
    assert head(repo) == before
    assert git(repo, "status", "--porcelain") == "M model.py"
    assert_recorded(traj, repo, committed=False, dirty=True)
    with pytest.raises(GitError, match="model.py"):
        run_study(tmp_path / "t.h5", repo, shard=(1, 2), git_fail=True)


def test_the_commit_of_each_run_survives_a_merge_of_files_from_two_commits(
    repo: Path, tmp_path: Path
) -> None:
    first = run_study(tmp_path / "s.h5", repo, shard=(0, 2))
    commit_one = head(repo)
    (repo / "model.py").write_text("A = 5\n")
    git(repo, "commit", "-q", "-am", "A = 5")
    commit_two = head(repo)
    second = run_study(tmp_path / "s.h5", repo, shard=(1, 2))
    ran_first = {i for i in range(4) if first.runs[i].status == "completed"}
    ran_second = {i for i in range(4) if second.runs[i].status == "completed"}
    assert ran_first | ran_second == {0, 1, 2, 3}
    assert ran_first  # both shards ran something
    assert ran_second

    pt.merge_files(
        [tmp_path / "s.shard-0-of-2.h5", tmp_path / "s.shard-1-of-2.h5"], tmp_path / "all.h5"
    )
    merged = pt.load(tmp_path / "all.h5", "study")
    for i in range(4):
        expected = commit_one if i in ran_first else commit_two
        assert merged.runs[i].provenance["git_commit"] == expected
        assert merged.results.z[i] == 2 * i


def test_a_detached_head_commits_and_records_no_branch(repo: Path, tmp_path: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    before = head(repo)
    (repo / "model.py").write_text("A = 6\n")
    traj = run_study(tmp_path / "s.h5", repo)
    assert head(repo) != before
    assert git(repo, "rev-parse", "HEAD~1") == before
    record = traj.provenance["git"]
    assert record["commit"] == head(repo)
    assert record["branch"] == ""
    assert record["detached"] is True


def test_a_folder_that_is_not_a_repository_is_refused_at_once(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(OptionError, match="git_repository=.*not the top folder of a git"):
        pt.Environment("study", tmp_path / "s.h5", git_repository=plain)
    with pytest.raises(OptionError, match="git_repository"):
        pt.Environment("study", tmp_path / "s.h5", git_repository=tmp_path / "missing")


def test_without_the_git_program_the_error_says_to_install_it(repo: Path, tmp_path: Path) -> None:
    code = (
        "import sys, pytraj as pt\n"
        "from pytraj.errors import GitError\n"
        "try:\n"
        "    pt.Environment('study', sys.argv[1], git_repository=sys.argv[2])\n"
        "except GitError as exc:\n"
        "    print('GitError:', exc)\n"
    )
    environ = {**os.environ, "PATH": str(tmp_path / "no-bin")}
    environ.pop("GIT_PYTHON_GIT_EXECUTABLE", None)
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "s.h5"), str(repo)],
        capture_output=True,
        text=True,
        env=environ,
        check=True,
    )
    assert "GitError: Environment(git_repository=...) needs the git program" in done.stdout
    assert "install git" in done.stdout


def test_bad_git_options_are_refused(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="git_fail"):
        pt.Environment("study", tmp_path / "s.h5", git_repository=repo, git_fail="yes")
    with pytest.raises(OptionError, match="git_message"):
        pt.Environment("study", tmp_path / "s.h5", git_repository=repo, git_message=3)
