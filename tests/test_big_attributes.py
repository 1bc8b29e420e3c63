"""Comments, annotations and name lists of any size store, and never break the file.

HDF5 keeps attributes in an object header whose messages hold less than 64 KiB; a
bigger attribute made PyTables raise at store time and left a file that never opened
again (issue 9, defect 6). pytraj stores values above ``BIG_ATTR_BYTES`` in a node of
``/_pytraj_attributes`` and reads them back transparently. These tests put big text
everywhere a user string lands, through the Environment, manual runs, a continued
study, and a study killed and rebuilt from its journal.
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

import h5py
import pytest

import pytraj as pt
from pytraj.io import list_trajectories, load
from pytraj.storage.hdf5.codecs import BIG_ATTR_BYTES, BIG_ATTRS_GROUP
from pytraj.storage.valuecodec import dumps

pytestmark = pytest.mark.storage

ROOT = Path(pt.__file__).resolve().parents[1]
LAYOUT1 = Path(__file__).parent / "data" / "layout1"

# Multi-byte UTF-8 (2, 3 and 4 bytes) so that characters and bytes differ.
_UNIT = "aé✓\U0001f600"


def big_text(n_bytes: int, tag: str) -> str:
    """Text of exactly ``n_bytes`` UTF-8 bytes, different per ``tag``."""
    unit = (tag + _UNIT).encode()
    raw = (unit * (n_bytes // len(unit) + 1))[:n_bytes]
    text = raw.decode(errors="ignore")  # a character cut in half at the end goes
    return text + "a" * (n_bytes - len(text.encode()))


def big_nodes(path: Path) -> int:
    """How many big-value nodes the file holds."""
    with h5py.File(path, "r") as h5:
        group = h5.get(BIG_ATTRS_GROUP)
        return 0 if group is None else len(group)


def _simulate(traj: pt.Trajectory, note: str) -> None:
    traj.add_result("z", traj.x * 2, comment=note)


@pytest.mark.parametrize(
    "n_bytes",
    [BIG_ATTR_BYTES - 1, BIG_ATTR_BYTES + 1, 65_535, 65_536, 70_000, 3_000_000],
)
def test_every_user_string_of_any_size_round_trips_through_the_environment(
    tmp_path: Path, n_bytes: int
) -> None:
    path = tmp_path / "study.h5"
    texts = {
        key: big_text(n_bytes, key)
        for key in ("env", "par", "unit", "group", "gnote", "run", "result", "link")
    }
    env = pt.Environment(trajectory="big", filename=path, comment=texts["env"], progress=False)
    traj = env.trajectory
    traj.add_parameter("x", 1, comment=texts["par"])
    traj.node("parameters.x").annotations["unit"] = texts["unit"]
    many = list(range(n_bytes // 8))
    traj.node("parameters.x").annotations["many"] = many
    traj.parameters.add_group("net", comment=texts["group"])
    traj.node("parameters.net").annotations["note"] = texts["gnote"]
    traj.add_parameter("net.size", 5)
    traj.parameters.add_link("alias", traj.node("parameters.x"), comment=texts["link"])
    traj.explore({"x": [1, 2, 3]})
    env.run(_simulate, texts["run"])
    traj.add_result("summary", 6, comment=texts["result"])
    env.close()

    loaded = load(path, "big")
    assert loaded.comment == texts["env"]
    x = loaded.node("parameters.x")
    assert x.comment == texts["par"]
    assert x.annotations["unit"] == texts["unit"]
    assert x.annotations["many"] == many
    net = loaded.node("parameters.net")
    assert net.comment == texts["group"]
    assert dict(net.annotations) == {"note": texts["gnote"]}
    link = loaded.parameters.children["alias"]
    assert link.is_link
    assert link.comment == texts["link"]
    assert loaded.node("results.z").comment == texts["run"]
    assert loaded.node("results.summary").comment == texts["result"]
    assert list(loaded.results.z) == [2, 4, 6]
    assert loaded.results.summary == 6
    # Only big values went to nodes; small ones stay plain attributes.
    expected = (len(texts) if n_bytes > BIG_ATTR_BYTES else 0) + (
        1 if len(dumps(many)) > BIG_ATTR_BYTES else 0
    )
    assert big_nodes(path) == expected
    loaded.close()


def test_big_values_are_replaced_and_removed_without_leaving_nodes(tmp_path: Path) -> None:
    path = tmp_path / "study.h5"
    traj = pt.Trajectory("t", filename=path, comment=big_text(100_000, "one"))
    traj.add_parameter("x", 1.0, comment=big_text(100_000, "two"))
    traj.store()
    assert big_nodes(path) == 2
    traj.comment = "small now"
    traj.node("parameters.x").comment = big_text(200_000, "three")
    traj.store()
    assert big_nodes(path) == 1
    traj.close()
    loaded = load(path)
    assert loaded.comment == "small now"
    assert loaded.node("parameters.x").comment == big_text(200_000, "three")
    loaded.close()
    # Replacing the trajectory drops the nodes of its big values; another trajectory's stay.
    other = pt.Trajectory("other", filename=path, comment=big_text(80_000, "four"))
    other.close()
    again = pt.Trajectory("t", filename=path, overwrite=True)
    again.add_parameter("x", 1.0)
    again.close()
    assert big_nodes(path) == 1
    assert load(path, "other").comment == big_text(80_000, "four")


def test_manual_runs_with_big_comments_and_annotations(tmp_path: Path) -> None:
    path = tmp_path / "manual.h5"
    traj = pt.Trajectory("manual", filename=path)
    traj.add_parameter("x", 0)
    traj.explore({"x": [0, 1]})
    for i in range(2):
        with traj.start_run(i):
            traj.add_result("z", i, comment=big_text(90_000, "run"))
    traj.node("results.z").annotations["source"] = big_text(2_000_000, "src")
    traj.close()
    loaded = load(path)
    node = loaded.node("results.z")
    assert node.comment == big_text(90_000, "run")
    assert node.annotations["source"] == big_text(2_000_000, "src")
    assert [loaded.results.z[i] for i in range(2)] == [0, 1]


def test_long_name_lists_store(tmp_path: Path) -> None:
    """Item lists, explored-column lists and the root's trajectory list beyond 64 KiB."""
    path = tmp_path / "names.h5"
    items = {f"i{k:04d}_" + "m" * 60: k for k in range(1100)}  # 73 KB of item names
    # Names stay within MAX_NAME_LENGTH (255); it is their number that passes 64 KiB.
    explored = {f"p{k:03d}_" + "q" * 240: [1.0, 2.0] for k in range(280)}  # 69 KB of paths
    traj = pt.Trajectory("names", filename=path)
    traj.add_result("many", **items)
    for name in explored:
        traj.add_parameter(name, 0.0)
    traj.explore(explored)
    traj.close()
    loaded = load(path)
    assert loaded.node("results.many").item_names() == list(items)
    assert loaded.results.many[next(iter(items))] == 0
    last = list(explored)[-1]
    values = []
    for i in range(2):
        with loaded.set_run(i):
            values.append(loaded[f"parameters.{last}"])
    assert values == [1.0, 2.0]
    loaded.close()

    many = tmp_path / "many.h5"
    names = [f"t{k:03d}_" + "n" * 240 for k in range(280)]  # 69 KB of trajectory names
    for name in names:
        pt.Trajectory(name, filename=many).close()
    assert list_trajectories(many) == names
    assert load(many).name == names[-1]


NOTE = ("é✓" * 40_000) + "end"

# Manual runs, continued from the file each time the script starts (as a user's
# script does after a crash); it kills itself after ``kill_after`` runs.
MANUAL = textwrap.dedent(
    f"""
    import os, signal, sys
    import pytraj as pt
    from pytraj.io import list_trajectories, load

    path, kill_after = sys.argv[1], int(sys.argv[2])
    note = {NOTE!r}
    if os.path.exists(path) and "s" in list_trajectories(path):
        traj = load(path, "s")
    else:
        traj = pt.Trajectory("s", filename=path, comment=note + "env")
        traj.add_parameter("x", 0, comment=note + "x")
        traj.node("parameters.x").annotations["unit"] = note + "unit"
        traj.explore({{"x": list(range(8))}})
        traj.store()
    done = 0
    for i in range(len(traj)):
        if traj.runs[i].status == "completed":
            continue
        with traj.start_run(i):
            traj.add_result("z", traj.x * 2, comment=note)
        done += 1
        if done == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
    traj.close()
    print("done")
    """
)

# The same study through the Environment: running the script again continues it.
ENVIRONMENT = textwrap.dedent(
    f"""
    import sys
    import pytraj as pt

    path = sys.argv[1]
    note = {NOTE!r}
    ran = []

    def simulate(traj):
        traj.add_result("z", traj.x * 2, comment=note)
        ran.append(traj.idx)

    env = pt.Environment(trajectory="s", filename=path, comment=note + "env", progress=False)
    traj = env.trajectory
    traj.add_parameter("x", 0, comment=note + "x")
    traj.node("parameters.x").annotations["unit"] = note + "unit"
    traj.explore({{"x": list(range(8))}})
    env.run(simulate)
    env.close()
    print(len(ran))
    """
)


def _run_script(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def _check_study(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pt.errors.RecoveryWarning)
        traj = load(path, "s")
    try:
        assert traj.comment == NOTE + "env"
        assert traj.node("parameters.x").comment == NOTE + "x"
        assert traj.node("parameters.x").annotations["unit"] == NOTE + "unit"
        assert traj.node("results.z").comment == NOTE
        assert [traj.results.z[i] for i in range(8)] == [2 * i for i in range(8)]
    finally:
        traj.close()


@pytest.mark.parametrize("damage", ["replay", "rebuild"])
def test_a_killed_study_with_big_comments_is_replayed_or_rebuilt_and_continues(
    tmp_path: Path, damage: str
) -> None:
    script = tmp_path / "study.py"
    script.write_text(MANUAL)
    path = tmp_path / "study.h5"
    killed = _run_script(script, str(path), "5")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert path.with_name("study.h5.journal").exists()
    if damage == "rebuild":
        # Cut the file inside its metadata: the journal, which holds the definition
        # with its big comments, must rebuild it.
        with path.open("r+b") as handle:
            handle.truncate(min(path.stat().st_size, 3000))
    finished = _run_script(script, str(path), "0")
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "done"
    _check_study(path)


def test_running_an_environment_script_with_big_comments_again_continues(
    tmp_path: Path,
) -> None:
    script = tmp_path / "study.py"
    script.write_text(ENVIRONMENT)
    path = tmp_path / "study.h5"
    # A 100 KB argument: the provenance's command line is bigger than an attribute can be.
    argument = "é" * 50_000
    first = _run_script(script, str(path), argument)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "8"
    again = _run_script(script, str(path), argument)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "0"  # the stored study was recognised: nothing reran
    _check_study(path)
    traj = load(path, "s")
    assert argument in traj.provenance["command_line"]


def test_layout1_files_without_big_values_still_read(tmp_path: Path) -> None:
    copy = tmp_path / "finished.h5"
    shutil.copy(LAYOUT1 / "finished.h5", copy)
    names = list_trajectories(copy)
    assert names
    traj = load(copy, names[-1])
    assert isinstance(traj.comment, str)
    assert len(traj) >= 1
    traj.close()
