"""``pytraj check FILE``: probe a study file for damage, in a separate process.

A damaged HDF5 file can make the HDF5 library itself crash (a segmentation fault
while opening one flipped byte was seen), so the reading happens in a child process
(``python -m pytraj.cli.check --probe FILE``) that reports each node before reading
it, one JSON line at a time; the parent counts what the child got through and turns
a crash into a finding that names the node being read. The probe reads the skeleton,
the run table, every parameter, every trajectory-level result item, every per-run
column (values, heaps and overflow, with their checksums where the file has them),
every run's failure record and log; it never unpickles anything.

A file with a journal pending (``<file>.journal``: a study that was not closed
cleanly) is probed through a copy in a temporary folder, so that the replay which
opening it triggers happens there: ``pytraj check`` never changes the file it checks.

Exit status: 0 when everything was read, 1 when something is damaged or unreadable.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CheckReport", "add_parser", "check_file", "handler", "probe"]

_JOURNAL_SUFFIX = ".journal"
#: How long the probe may take before it counts as hung (a loop in a damaged B-tree).
PROBE_TIMEOUT = 3600.0


# -- the child: read everything, report as JSON lines -------------------------------------------


def _emit(**event: Any) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()  # the parent must know the last node started if we crash


def _problem(node: str, exc: BaseException) -> None:
    where = getattr(exc, "node", "") or node
    _emit(event="problem", node=where, error=type(exc).__name__, message=str(exc))


def _read_leaf(leaf: Any, counts: Counter[str]) -> None:
    """Read every stored value of one leaf (raises what reading raises)."""
    from pytraj import Parameter
    from pytraj.errors import PickleNotAllowedError

    full = leaf.full_name
    if isinstance(leaf, Parameter):  # its default and explored values
        _emit(event="node", node=full)
        try:
            _touch(leaf.default)
            if leaf.is_explored:
                _touch(leaf.range)
        except PickleNotAllowedError:
            counts["pickled"] += 1
        counts["nodes"] += 1
        return
    for item in leaf.item_names():
        _emit(event="node", node=f"{full}[{item!r}]")
        try:
            value = leaf[item]
            if leaf.per_run:
                _touch(list(value.to_series()))
            else:
                _touch(value)
        except PickleNotAllowedError:
            counts["pickled"] += 1
        counts["nodes"] += 1


def _touch(value: Any) -> None:
    """Make sure a value is really read (lazy values load on conversion)."""
    if isinstance(value, list | tuple):
        for element in value:
            _touch(element)
    else:
        repr(value)


def _probe_trajectory(path: Path, name: str) -> None:
    import pytraj as pt
    from pytraj.errors import PytrajError

    _emit(event="trajectory", name=name)
    _emit(event="node", node=f"/{name} (skeleton)")
    try:
        traj = pt.load(path, name, allow_pickle=False)
    except PytrajError as exc:
        _problem(f"/{name}", exc)
        return
    counts: Counter[str] = Counter()
    _emit(event="node", node=f"/{name}/runs (run table)")
    try:
        statuses = Counter(run.status for run in traj.runs)
        _emit(event="runs", name=name, counts=dict(statuses))
    except PytrajError as exc:
        _problem(f"/{name}/runs", exc)
        statuses = Counter()
    for leaf in traj.iter_leaves():
        try:
            _read_leaf(leaf, counts)
        except PytrajError as exc:
            _problem(leaf.full_name, exc)
    if statuses:
        _emit(event="node", node=f"/{name}/runs (failures and logs)")
        try:
            for run in traj.runs:
                run.failure  # noqa: B018  # reading is the point
                run.log  # noqa: B018
            counts["nodes"] += 2
        except PytrajError as exc:
            _problem(f"/{name}/runs", exc)
    _emit(event="read", name=name, nodes=counts["nodes"], pickled=counts["pickled"])


def probe(path: Path, name: str | None) -> int:
    """Read everything of ``path`` (in the child), reporting as JSON lines on stdout."""
    import pytraj as pt
    from pytraj.errors import PytrajError

    warnings.simplefilter("ignore")  # a replayed journal warns; the parent reports it
    _emit(event="node", node="/ (file)")
    try:
        names = pt.list_trajectories(path)
    except PytrajError as exc:
        _problem("/", exc)
        _emit(event="done")
        return 0
    _emit(event="trajectories", names=names)
    if name is not None and name not in names:
        present = ", ".join(names) or "none"
        _emit(event="missing", name=name, message=f"no trajectory {name!r}; it holds {present}")
        _emit(event="done")
        return 0
    for traj_name in [name] if name is not None else names:
        _probe_trajectory(path, traj_name)
    _emit(event="done")
    return 0


# -- the parent: run the probe, summarise ----------------------------------------------------


@dataclass
class CheckReport:
    """What a probe of one file found."""

    path: Path
    journal_pending: bool = False
    trajectories: list[str] = field(default_factory=list)
    runs: dict[str, dict[str, int]] = field(default_factory=dict)
    nodes: dict[str, int] = field(default_factory=dict)
    pickled: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)
    crashed: str = ""
    finished: bool = False

    @property
    def damaged(self) -> bool:
        """Whether anything could not be read."""
        return bool(self.problems or self.crashed or not self.finished)

    def lines(self) -> Iterator[str]:
        """The human-readable report, ending with a one-line verdict."""
        yield f"{self.path}"
        if self.journal_pending:
            yield (
                "  journal pending: the study was not closed cleanly; opening it replays "
                "the journal (done here in a temporary copy, the file is unchanged)"
            )
        for name in self.trajectories:
            statuses = self.runs.get(name, {})
            runs = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
            yield (
                f"  trajectory {name!r}: {sum(statuses.values())} runs ({runs or 'none read'}),"
                f" {self.nodes.get(name, 0)} nodes read"
            )
        if self.pickled:
            yield f"  {self.pickled} pickled values not unpickled (check never unpickles)"
        for node, message in self.problems:
            yield f"  problem at {node}: {message}"
        if self.crashed:
            yield f"  the reading process crashed ({self.crashed})"
        yield self.verdict()

    def verdict(self) -> str:
        """One line: clean or damaged, and what to do."""
        if not self.damaged:
            return "clean: every node was read" + (
                " (after replaying the journal in a copy)" if self.journal_pending else ""
            )
        first = self.problems[0][0] if self.problems else "the file"
        journal = (
            "replaying its journal (in a copy) left the damage, so the next open will not "
            "repair it: restore it from a backup (keep the journal for its runs)"
            if self.journal_pending
            else "restore it from a backup (no journal is pending to rebuild it from)"
        )
        count = len(self.problems) + (1 if self.crashed else 0)
        return f"DAMAGED: {count} problem(s), first at {first}; {journal}"


def _apply(report: CheckReport, event: dict[str, Any], current: dict[str, str]) -> None:
    kind = event.get("event")
    if kind == "node":
        current["node"] = str(event["node"])
    elif kind == "trajectories":
        report.trajectories = list(event["names"])
    elif kind == "trajectory":
        current["trajectory"] = str(event["name"])
    elif kind == "runs":
        report.runs[str(event["name"])] = dict(event["counts"])
    elif kind == "read":
        report.nodes[str(event["name"])] = int(event["nodes"])
        report.pickled += int(event["pickled"])
    elif kind == "problem":
        report.problems.append((str(event["node"]), f"{event['error']}: {event['message']}"))
    elif kind == "missing":
        report.problems.append((str(event["name"]), str(event["message"])))
    elif kind == "done":
        report.finished = True


def _run_probe(path: Path, name: str | None, report: CheckReport, timeout: float) -> None:
    command = [sys.executable, "-m", "pytraj.cli.check", "--probe", str(path)]
    if name is not None:
        command += ["--name", name]
    env = dict(os.environ)
    # The child must import this very pytraj, wherever the parent found it.
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    current: dict[str, str] = {"node": "/ (file)"}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        for line in out.splitlines():
            _apply(report, json.loads(line), current)
        report.crashed = f"no answer after {timeout:.0f} s while reading {current['node']}"
        return
    for line in done.stdout.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # output of the HDF5 library, not ours
        _apply(report, event, current)
    if done.returncode < 0:
        try:
            signame = signal.Signals(-done.returncode).name
        except ValueError:
            signame = f"signal {-done.returncode}"
        report.crashed = f"{signame} while reading {current['node']}"
    elif done.returncode != 0 or not report.finished:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        report.crashed = f"exit status {done.returncode} while reading {current['node']}: {last}"


def check_file(
    path: str | os.PathLike[str], name: str | None = None, *, timeout: float = PROBE_TIMEOUT
) -> CheckReport:
    """Probe ``path`` in a child process and report what it found.

    Parameters
    ----------
    path
        The study file.
    name
        Only this trajectory (default: every trajectory in the file).
    timeout
        Seconds the probe may take before it counts as hung.
    """
    from pytraj.errors import StorageError

    file = Path(path)
    if not file.is_file():
        raise StorageError(f"no file {file}; give the path of a pytraj study file")
    journal = file.with_name(file.name + _JOURNAL_SUFFIX)
    report = CheckReport(path=file, journal_pending=journal.exists())
    if not report.journal_pending:
        _run_probe(file, name, report, timeout)
        return report
    with tempfile.TemporaryDirectory(prefix="pytraj-check-") as folder:
        copy = Path(folder) / file.name
        shutil.copy2(file, copy)
        shutil.copy2(journal, copy.with_name(copy.name + _JOURNAL_SUFFIX))
        _run_probe(copy, name, report, timeout)
    return report


def handler(args: argparse.Namespace) -> int:
    """``pytraj check``: print the report; exit 0 when clean, 1 when damaged."""
    report = check_file(args.file, args.name)
    for line in report.lines():
        print(line)
    return 1 if report.damaged else 0


def add_parser(subparsers: Any) -> None:
    """Add ``pytraj check FILE [--name T]``."""
    parser = subparsers.add_parser(
        "check",
        help="probe a study file for damage (in a separate process)",
        description=(
            "Read every node of a study file (skeleton, run table, every value, with "
            "checksums where the file has them) in a separate process, so that a crash "
            "inside HDF5 is reported rather than fatal. Exit status 0 when clean, 1 when "
            "damaged. A pending journal is replayed in a temporary copy: the file is "
            "never changed."
        ),
    )
    parser.add_argument("file", help="the study file (HDF5)")
    parser.add_argument("--name", default=None, help="check only this trajectory")
    parser.set_defaults(handler=handler)


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytraj.cli.check")
    parser.add_argument("--probe", required=True, help="the file to read (the child's side)")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    return probe(Path(args.probe), args.name)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
