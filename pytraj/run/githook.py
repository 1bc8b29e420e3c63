"""The git hook: commit the code a study runs with, and record which commit it was.

``Environment(git_repository=path)`` runs :func:`apply_git_hook` once, before the
first run of the Environment starts:

- the repository's changes are committed: modified and deleted tracked files, staged
  or not, and untracked files only with ``git_add_untracked=True``; the message names
  the trajectory and its file, followed by ``git_message``. A clean tree gets no new
  commit: HEAD is recorded.
- ``git_fail=True`` refuses to start on a dirty tree instead, listing the dirty files.
- shards (``shard=(i, n)``) never commit: several array tasks committing to one
  repository race for its lock. They record HEAD and whether the tree was dirty;
  commit before submitting the array job.
- the study's own file (with its journal and lock file) and its study folder are never
  committed, and do not make the tree dirty (they change while the study runs).

What is recorded (:class:`GitRecord` as a dict): ``repository``, ``commit`` (the
sha, equal to ``git rev-parse HEAD`` after the hook), ``branch`` (``""`` on a
detached HEAD, with ``detached=True``), ``remote`` (the URL of ``origin``, else of the
first remote, else ``""``), ``dirty`` (tracked files differ from ``commit``: only
possible when nothing was committed), ``committed`` (whether the hook made that
commit). It goes into ``traj.provenance["git"]`` and into the writer session of every
run (``traj.runs[i].provenance["git_commit"]`` ...), so it survives merges.

GitPython (and with it the ``git`` program) is imported only when a repository is
given: ``import git`` starts a git process and fails when git is not installed.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pytraj.errors import GitError, OptionError
from pytraj.run.options import check_bool, invalid

__all__ = ["GitOptions", "GitRecord", "apply_git_hook", "writer_fields"]


@dataclass(frozen=True, slots=True)
class GitOptions:
    """The git hook's options (``repository=None``: no hook)."""

    repository: Path | None = None
    message: str = ""
    fail: bool = False
    add_untracked: bool = False

    @classmethod
    def from_options(
        cls, repository: Any, message: Any, fail: Any, add_untracked: Any
    ) -> GitOptions:
        """Validate the git options of an Environment; the repository must exist."""
        if not isinstance(message, str):
            raise invalid("git_message", message, "expected a string")
        check_bool("git_fail", fail)
        check_bool("git_add_untracked", add_untracked)
        if repository is None:
            return cls(None, message, fail, add_untracked)
        if not isinstance(repository, str | os.PathLike) or not os.fspath(repository):
            raise invalid("git_repository", repository, "expected the path of a git repository")
        path = Path(os.fspath(repository)).expanduser().resolve()
        _open(path)  # refuse a path that is not a repository now, not at the first run
        return cls(path, message, fail, add_untracked)


@dataclass(frozen=True, slots=True)
class GitRecord:
    """What the hook records about the repository (see the module docstring)."""

    repository: str
    commit: str
    branch: str
    detached: bool
    remote: str
    dirty: bool
    committed: bool


def _git() -> Any:
    try:
        import git  # lazy: starts a git process, and needs the git program
    except ImportError as exc:
        raise GitError(
            f"Environment(git_repository=...) needs the git program, which GitPython cannot "
            f"run ({exc}); install git (e.g. apt-get install git) or leave git_repository=None"
        ) from exc
    return git


def _open(path: Path) -> Any:
    git = _git()
    try:
        return git.Repo(path)
    except (git.NoSuchPathError, git.InvalidGitRepositoryError):
        raise OptionError(
            f"Environment option git_repository={str(path)!r} is invalid: it is not the top "
            "folder of a git repository (run `git init` there, or give the repository's "
            "top folder, or leave git_repository=None)"
        ) from None


def _inside(paths: list[Path], top: Path) -> list[str]:
    """The given paths relative to ``top`` (as git pathspecs), for those inside it."""
    inside = []
    for path in paths:
        try:
            inside.append(path.resolve().relative_to(top).as_posix())
        except ValueError:
            continue
    return inside


def _dirty_files(repo: Any, ignored: list[str], *, untracked: bool) -> list[str]:
    """Files that differ from HEAD (staged or not), and untracked ones when asked."""

    def kept(name: str) -> bool:
        # A study path, what lies below it, and its siblings such as s.h5.journal.
        return not any(
            name == path or name.startswith((path + "/", path + ".")) for path in ignored
        )

    names: set[str] = set()
    if repo.head.is_valid():
        names.update(d.a_path or d.b_path for d in repo.index.diff("HEAD"))
    else:  # no commit yet: everything staged is new
        names.update(str(entry[0]) for entry in repo.index.entries)
    names.update(d.a_path or d.b_path for d in repo.index.diff(None))
    if untracked:
        names.update(repo.untracked_files)
    return sorted(name for name in names if kept(name))


def _remote(repo: Any) -> str:
    remotes = list(repo.remotes)
    chosen = next((r for r in remotes if r.name == "origin"), remotes[0] if remotes else None)
    if chosen is None:
        return ""
    urls = list(chosen.urls)
    return str(urls[0]) if urls else ""


def apply_git_hook(
    options: GitOptions,
    *,
    trajectory: str,
    study_paths: list[Path],
    commit: bool,
) -> GitRecord | None:
    """Commit (or, with ``commit=False``, only inspect) the repository and describe it.

    Parameters
    ----------
    options
        The hook's options; None is returned when they name no repository.
    trajectory
        The trajectory's name, for the commit message.
    study_paths
        The study's file and folder: never committed, never "dirty", and neither are
        the files beside it named after it (``s.h5.journal``, ``s.h5.lock``).
    commit
        False for shards: record HEAD and the dirty state, never commit.

    Raises
    ------
    GitError
        With ``git_fail=True`` on a dirty tree (listing the dirty files); when the
        repository has no commit and nothing to commit; when the commit fails.
    """
    if options.repository is None:
        return None
    repo = _open(options.repository)
    top = Path(repo.working_tree_dir).resolve()
    ignored = _inside(study_paths, top)
    dirty = _dirty_files(repo, ignored, untracked=options.add_untracked)
    if dirty and options.fail:
        shown = ", ".join(dirty[:20]) + (f" and {len(dirty) - 20} more" if len(dirty) > 20 else "")
        raise GitError(
            f"the git repository {top} has uncommitted changes and git_fail=True: {shown}. "
            "Commit them (or drop git_fail=True to let pytraj commit them) and start again"
        )
    committed = False
    if dirty and commit:
        excludes = [f":(exclude){spec}" for path in ignored for spec in (path, path + ".*")]
        flag = "--all" if options.add_untracked else "--update"
        try:
            repo.git.add(flag, "--", ".", *excludes)
            text = f"pytraj: study {trajectory!r}"
            if study_paths:
                text += f" ({study_paths[0].name})"
            if options.message:
                text += f"\n\n{options.message}"
            repo.index.commit(text)
        except Exception as exc:
            raise GitError(
                f"could not commit the changes of {top} before the study "
                f"({type(exc).__name__}: {exc}); commit them yourself and start again"
            ) from exc
        committed = True
    if not repo.head.is_valid():
        raise GitError(
            f"the git repository {top} has no commit yet and nothing to commit; "
            "commit the study's code first"
        )
    detached = bool(repo.head.is_detached)
    still_dirty = bool(_dirty_files(repo, ignored, untracked=False))
    return GitRecord(
        repository=str(top),
        commit=str(repo.head.commit.hexsha),
        branch="" if detached else str(repo.active_branch.name),
        detached=detached,
        remote=_remote(repo),
        dirty=still_dirty,
        committed=committed,
    )


def writer_fields(record: GitRecord | None) -> dict[str, Any]:
    """The fields a writer session (one per ``env.run``) records about the code."""
    if record is None:
        return {}
    data = asdict(record)
    return {f"git_{key}": data[key] for key in ("commit", "branch", "remote", "dirty")}
