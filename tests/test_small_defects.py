"""Regression tests for the smaller defects of issue 9 (defect 8) and what the fuzz found.

Each test failed before its fix; the docstrings name the old behaviour.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tables

import pytraj as pt
from pytraj.errors import (
    FileFormatError,
    NodeExistsError,
    OptionError,
    PathTypeError,
    PytrajError,
    PytrajWarning,
    ShadowingWarning,
    UnknownOptionError,
)
from pytraj.leaves.result import Result
from pytraj.run import Environment
from pytraj.run.options import MAX_NCORES
from pytraj.tree.names import MAX_NAME_LENGTH

# Every keyword of add_result / Result(...), and names of Result's own attributes.
KEYWORD_NAMES = ["comment", "name", "leaf_class", "per_run", "value", "items"]


# -- add_result with item names that are keywords ----------------------------------------
@pytest.mark.parametrize("item", KEYWORD_NAMES)
def test_a_single_value_may_take_any_keyword_name(item: str) -> None:
    """``add_result("comment", 1)`` raised ``TypeError: got multiple values``."""
    traj = pt.Trajectory("study")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShadowingWarning)  # "comment", "name" shadow Group's
        leaf = traj.add_result(item, 1)
    assert leaf.item_names() == [item]
    assert traj.results[item] == 1
    assert leaf.comment == ""


def test_keyword_items_named_like_result_options_are_items() -> None:
    """``add_result("p", name="a")`` collided with the leaf's ``name``; ``per_run=2``
    silently turned the result into a per-run one."""
    traj = pt.Trajectory("study")
    leaf = traj.add_result("point", name="a", per_run=2, value=3.5)
    assert leaf.items == {"name": "a", "per_run": 2, "value": 3.5}
    assert leaf.per_run is False
    assert leaf.name == "point"
    assert Result("point", name="b").items == {"name": "b"}


def test_a_value_given_twice_is_refused() -> None:
    traj = pt.Trajectory("study")
    with pytest.raises(NodeExistsError, match="'z' of result 'z' is given twice"):
        traj.add_result("z", 1, z=2)
    assert "results.z" not in traj


def test_keyword_item_names_round_trip_per_run_and_through_a_file(tmp_path: Path) -> None:
    def simulate(traj: Any) -> None:
        traj.add_result("comment", traj.x * 2)
        traj.add_result("point", name=f"p{traj.x}", per_run=traj.x)
        traj.add_derived_parameter("name", traj.x + 0.5)

    path = tmp_path / "study.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShadowingWarning)
        env = Environment(trajectory="study", filename=path, progress=False)
        traj = env.trajectory
        traj.add_parameter("x", 1)
        traj.explore({"x": [1, 2, 3]})
        traj.add_result("leaf_class", "trajectory-level")
        env.run(simulate)
        env.close()
        loaded = pt.load(path)
    assert loaded.results["comment"].to_series().tolist() == [2, 4, 6]
    assert loaded.results["point"]["name"].to_series().tolist() == ["p1", "p2", "p3"]
    assert loaded.results["point"]["per_run"].to_series().tolist() == [1, 2, 3]
    assert loaded.derived_parameters["name"].to_series().tolist() == [1.5, 2.5, 3.5]
    assert loaded.results["leaf_class"] == "trajectory-level"


# -- non-string keys ----------------------------------------------------------------------
def test_an_integer_key_on_the_trajectory_points_to_runs() -> None:
    """``traj[0]`` raised ``TypeError: argument of type 'int' is not iterable``."""
    traj = pt.Trajectory("study")
    traj.add_parameter("x", 1)
    with pytest.raises(PathTypeError, match=r"got int 0; runs are traj\.runs\[0\]") as caught:
        traj[0]
    assert isinstance(caught.value, TypeError)
    with pytest.raises(PathTypeError, match=r"runs are traj\.runs\[1:3\]"):
        traj[1:3]
    with pytest.raises(PathTypeError, match=r"'results' is indexed by paths .* traj\.runs\[2\]"):
        traj.results[np.int64(2)]
    with pytest.raises(PathTypeError, match="got NoneType None"):
        traj.parameters[None]  # type: ignore[index]  # the wrong type is the point
    assert 0 not in traj


def test_a_non_string_key_on_a_detached_group_has_no_run_hint() -> None:
    group = pt.Trajectory("study").results
    group.add_group("stats")
    detached = pt.Group("alone")
    with pytest.raises(PathTypeError) as caught:
        detached[0]
    assert "runs" not in str(caught.value)
    assert isinstance(caught.value, TypeError)


# -- per-run view get -----------------------------------------------------------------------
@pytest.fixture
def ran() -> pt.Trajectory:
    traj = pt.Trajectory("study")
    traj.add_parameter("x", 1.0)
    traj.explore({"x": [1.0, 2.0, 3.0]})
    with traj.start_run(0):
        traj.add_result("z", 10.0)

    def failing_run() -> None:
        with traj.start_run(1):
            traj.add_result("z", 20.0)
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        failing_run()
    return traj


def test_view_get_returns_the_default_for_any_missing_run(ran: pt.Trajectory) -> None:
    """``traj.results.z.get(999, default)`` raised ``RunError``."""
    view = ran.results.z
    assert view.get(0, -1.0) == 10.0
    assert view.get(-3, -1.0) == 10.0
    assert view.get(1, -1.0) == -1.0  # failed
    assert view.get(2, -1.0) == -1.0  # pending
    assert view.get(999, -1.0) == -1.0
    assert view.get(-4, -1.0) == -1.0
    assert view.get(999) is None
    with pytest.raises(PathTypeError, match=r"get\(\) takes a run index"):
        view.get("0")  # type: ignore[arg-type]  # the wrong type is the point


# -- Environment options ----------------------------------------------------------------------
def test_a_log_config_that_logging_refuses_is_an_option_error(tmp_path: Path) -> None:
    """``log_config={"version": "x"}`` raised a plain ``ValueError``."""
    with pytest.raises(OptionError, match=r"log_config=\{'version': 'x'\} is invalid"):
        Environment(filename=tmp_path / "a.h5", log_config={"version": "x"})
    bad_handler = {"version": 1, "handlers": {"h": {"class": "no.such.Handler"}}}
    with pytest.raises(OptionError, match="log_config=.*Unable to configure handler 'h'"):
        Environment(filename=tmp_path / "a.h5", log_config=bad_handler)
    broken_ini = tmp_path / "log.ini"
    broken_ini.write_text("[loggers]\nkeys=root\n")
    with pytest.raises(OptionError, match="log_config=.*KeyError: .formatters."):
        Environment(filename=tmp_path / "a.h5", log_config=broken_ini)
    broken_json = tmp_path / "log.json"
    broken_json.write_text("{not json")
    with pytest.raises(OptionError, match="log_config=.*JSONDecodeError"):
        Environment(filename=tmp_path / "a.h5", log_config=broken_json)
    not_a_dict = tmp_path / "list.json"
    not_a_dict.write_text(json.dumps([1, 2]))
    with pytest.raises(OptionError, match="log_config="):
        Environment(filename=tmp_path / "a.h5", log_config=not_a_dict)
    assert not (tmp_path / "a.h5").exists()


def test_too_many_cores_are_refused_and_more_than_the_machine_warns(tmp_path: Path) -> None:
    """``ncores=10**6`` was accepted silently."""
    for ncores in (10**6, MAX_NCORES + 1):
        with pytest.raises(OptionError, match=f"ncores={ncores} is invalid: at most 1024"):
            Environment(filename=tmp_path / "a.h5", ncores=ncores)
    cores = os.cpu_count() or 1
    with pytest.warns(PytrajWarning, match=f"ncores={cores + 1} is more than the {cores} cores"):
        env = Environment(filename=tmp_path / "a.h5", ncores=cores + 1)
    assert env.parallel.ncores == cores + 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Environment(filename=tmp_path / "b.h5", ncores=cores).parallel.ncores == cores
        assert Environment(filename=tmp_path / "c.h5", ncores=0).parallel.ncores == cores


def test_a_misspelt_option_suggests_the_right_one(tmp_path: Path) -> None:
    """``Environment(ncore=2)`` said only ``unexpected keyword argument 'ncore'``."""
    kwargs: dict[str, Any] = {"filename": tmp_path / "a.h5", "ncore": 2}
    with pytest.raises(UnknownOptionError, match=r"no option 'ncore'; did you mean ncores=\?"):
        Environment(**kwargs)
    with pytest.raises(TypeError, match=r"no option 'progres'; did you mean progress=\?"):
        Environment(filename=tmp_path / "a.h5", progres=False)  # type: ignore[call-arg]
    with pytest.raises(OptionError, match=r"no option 'zzz' \(its options: trajectory, "):
        Environment(zzz=1)  # type: ignore[call-arg]
    assert not (tmp_path / "a.h5").exists()


# -- shadowing names ----------------------------------------------------------------------
_SHADOW_SCRIPT = """
import sys
import pytraj as pt

def simulate(traj):
    traj.add_result("root", traj.x)

if __name__ == "__main__":
    env = pt.Environment(trajectory="t", filename=sys.argv[1], ncores=int(sys.argv[2]),
                         progress=False)
    traj = env.trajectory
    traj.add_parameter("x", 1)
    traj.explore({"x": [1, 2, 3, 4, 5, 6]})
    env.run(simulate)
    env.close()
    assert traj.results.root is traj  # the property wins, as for every node
    assert traj.results["root"].to_series().tolist() == [1, 2, 3, 4, 5, 6]
    loaded = pt.load(sys.argv[1])
    assert loaded.results["root"].to_series().tolist() == [1, 2, 3, 4, 5, 6]
    print("ok")
"""


@pytest.mark.parametrize("ncores", [1, 2])
def test_a_shadowing_result_warns_once_per_study(tmp_path: Path, ncores: int) -> None:
    """A result named ``root`` warned once per process and run (8 times in one study)."""
    script = tmp_path / "study.py"
    script.write_text(textwrap.dedent(_SHADOW_SCRIPT))
    done = subprocess.run(
        [sys.executable, "-W", "always", str(script), str(tmp_path / "s.h5"), str(ncores)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    lines = [line for line in done.stderr.splitlines() if "ShadowingWarning" in line]
    assert len(lines) == 1, done.stderr
    assert "'results.root' has the name of the attribute 'root' of Group" in lines[0]
    # It points at the user's script (the add_result line serially, env.run with a pool).
    assert lines[0].startswith(str(script)), lines[0]
    assert "reach it with ['root']" in lines[0]


def test_a_leaf_hidden_by_a_trajectory_attribute_warns() -> None:
    """``traj.seed`` is the run's seed: a parameter ``seed`` was hidden without a word."""
    traj = pt.Trajectory("study")
    with pytest.warns(ShadowingWarning, match=r"'parameters\.seed' .* reach it with ") as caught:
        traj.add_parameter("seed", 7)
    assert caught[0].filename == __file__
    assert traj["parameters.seed"] == 7
    assert traj.parameters.seed == 7  # no shadowing at the group level
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        traj.add_parameter("x", 1)
        traj.add_group("results.seeds")


# -- foreign files ---------------------------------------------------------------------------
def test_a_foreign_hdf5_file_error_says_what_exists(tmp_path: Path) -> None:
    """The message pointed to ``pytraj.compat.pypet``, which does not exist."""
    path = tmp_path / "foreign.h5"
    with tables.open_file(str(path), "w") as h5:
        h5.create_array("/", "data", np.arange(3))
    with pytest.raises(FileFormatError) as caught:
        pt.load(path)
    message = str(caught.value)
    assert "pytraj.compat" not in message
    assert "no pypet reader yet" in message
    assert "h5py, PyTables or ptdump" in message
    assert isinstance(caught.value, PytrajError)


# -- defects found by the fuzz test (tests/test_fuzz_api.py) ------------------------------
def test_a_folder_under_a_regular_file_is_a_storage_error(tmp_path: Path) -> None:
    """``Environment(filename="plain/study.h5")`` with ``plain`` a file raised a bare
    ``FileExistsError`` from the Environment's own ``mkdir``."""
    (tmp_path / "plain").write_text("x")
    with pytest.raises(pt.errors.StorageError, match="cannot create the folder .*plain"):
        Environment(filename=tmp_path / "plain" / "study.h5", progress=False)
    assert (tmp_path / "plain").read_text() == "x"


def test_an_array_as_on_error_is_an_option_error(tmp_path: Path) -> None:
    """``on_error=np.array([1, 2])`` raised numpy's ``ValueError: truth value ...``."""
    with pytest.raises(OptionError, match=r"on_error=array\(\[1, 2\]\) is invalid"):
        Environment(filename=tmp_path / "a.h5", on_error=np.array([1, 2]))  # type: ignore[arg-type]


def test_a_refused_per_run_value_leaves_no_empty_result() -> None:
    """An unsupported first value of a per-run result left an empty node ``results.r``."""
    traj = pt.Trajectory("study")
    traj.add_parameter("x", 1)
    traj.explore({"x": [1, 2]})

    def bad_run() -> None:
        with traj.start_run(0):
            traj.add_result("r", object())

    with pytest.raises(pt.errors.UnsupportedValueError, match=r"results\.r\['r'\]"):
        bad_run()
    assert traj.results.keys() == []
    assert traj.runs[0].status == "failed"
    with traj.start_run(1):
        traj.add_result("r", 2)
    assert traj.results.r.to_series().tolist() == [2]


def test_a_comment_that_is_not_text_is_a_pytraj_error() -> None:
    """A non-str comment raised a bare ``TypeError``."""
    traj = pt.Trajectory("study")
    with pytest.raises(pt.errors.UnsupportedValueError, match="comment of 'x' must be a str"):
        traj.add_parameter("x", 1, comment=5)  # type: ignore[arg-type]
    assert "parameters.x" not in traj


def test_a_name_too_long_for_the_file_is_refused_when_added(tmp_path: Path) -> None:
    """A result named with 70,000 characters raised ``HDF5ExtError`` at store time and left
    a file that no longer loaded ("the catalog lists 'results.z', which the file lacks")."""
    path = tmp_path / "study.h5"
    env = Environment(trajectory="study", filename=path, progress=False)
    traj = env.trajectory
    traj.add_parameter("x", 1)
    huge = "x" * 70_000
    with pytest.raises(pt.errors.InvalidNameError, match="70,000 characters, more than the 255"):
        traj.add_result(huge, "r")
    with pytest.raises(pt.errors.InvalidNameError, match="more than the 255"):
        traj.add_result("stats", **{"y" * 256: 1})
    with pytest.raises(pt.errors.InvalidNameError, match="more than the 255"):
        traj.add_group("config." + "g" * 256)
    longest = "n" * MAX_NAME_LENGTH
    traj.add_result(longest, "r")
    env.close()
    loaded = pt.load(path)
    assert loaded["results." + longest] == "r"
    assert sorted(loaded.keys()) == ["config", "derived_parameters", "parameters", "results"]
    assert loaded.config.keys() == []


def test_a_file_holding_a_longer_name_still_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "older.h5"
    name = "o" * 300
    with monkeypatch.context() as patch:  # as a pytraj without the limit wrote it
        patch.setattr("pytraj.tree.names.MAX_NAME_LENGTH", 10_000)
        with Environment(trajectory="study", filename=path, progress=False) as env:
            env.trajectory.add_parameter(name, 1)
    loaded = pt.load(path)
    assert loaded["parameters." + name] == 1
    assert loaded.parameters.keys() == [name]
