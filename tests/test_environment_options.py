"""Every Environment option is validated when the Environment is built."""

from __future__ import annotations

import concurrent.futures
import logging
from pathlib import Path
from typing import Any

import pytest

import pytraj as pt
from pytraj.errors import OptionError
from pytraj.run import Environment
from pytraj.run.caps import CapGate, ResourceCaps, ResourceUsage
from pytraj.run.options import DEFAULT_FOLDER


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("trajectory", 3, "expected a trajectory name"),
        ("trajectory", "bad name", "invalid node name"),
        ("filename", 3.5, "expected a path"),
        ("filename", "", "expected a non-empty text path"),
        ("comment", 1, "expected a string"),
        ("ncores", -1, "expected an integer >= 0"),
        ("ncores", 2.0, "expected an integer >= 0"),
        ("ncores", True, "expected an integer >= 0"),
        ("executor", "threads", "expected a concurrent.futures.Executor"),
        ("mp_context", "threads", "expected None, a multiprocessing context or one of"),
        ("cpu_cap", 0, "expected a percentage in (0, 100]"),
        ("memory_cap", 101, "expected a percentage in (0, 100]"),
        ("swap_cap", "50", "expected a percentage in (0, 100]"),
        ("niceness", 20, "expected an integer from -20 to 19"),
        ("niceness", 1.5, "expected an integer from -20 to 19"),
        ("freeze_input", 1, "expected True or False"),
        ("run_timeout", 0, "expected a number of seconds > 0"),
        ("run_timeout", "10", "expected a number"),
        ("run_timeout", float("inf"), "expected a finite number"),
        ("on_error", "ignore", "expected 'raise'"),
        ("progress", "fancy", "expected None (auto"),
        ("log_config", 42, "expected None, a logging.config.dictConfig dict"),
        ("log_config", "logging.yaml", "expected a file ending in"),
        ("log_config", "missing.ini", "no such file"),
        ("log_stdout", "yes", "expected True or False"),
        ("overwrite", None, "expected True or False"),
        ("complib", 5, "expected a compression library name"),
        ("complevel", 10, "expected an integer from 0 to 9"),
    ],
)
def test_every_option_is_validated(tmp_path: Path, option: str, value: Any, allowed: str) -> None:
    kwargs: dict[str, Any] = {"trajectory": "study", "filename": tmp_path / "study.h5"}
    kwargs[option] = value
    with pytest.raises(OptionError) as caught:
        Environment(**kwargs)
    message = str(caught.value)
    assert f"Environment option {option}=" in message
    assert repr(value)[:30] in message
    assert allowed in message
    assert not (tmp_path / "study.h5").exists()  # nothing happens before validation passes


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"executor": "pool", "ncores": 2}, "ncores"),
        ({"executor": "pool", "mp_context": "spawn"}, "mp_context"),
        ({"executor": "pool", "run_timeout": 5}, "run_timeout"),
        ({"executor": "pool", "niceness": 5}, "niceness"),
    ],
)
def test_options_that_need_pytraj_pool_are_refused_with_an_executor(
    tmp_path: Path, kwargs: dict[str, Any], option: str
) -> None:
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        given = {**kwargs, "executor": pool}
        with pytest.raises(OptionError, match=f"Environment option {option}="):
            Environment("study", tmp_path / "study.h5", **given)


def test_an_unknown_compression_library_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="complib"):
        Environment("study", tmp_path / "study.h5", complib="lzo-not-here")


def test_option_objects_hold_the_resolved_values(tmp_path: Path) -> None:
    env = Environment(
        "study",
        tmp_path / "study.h5",
        ncores=0,
        mp_context="spawn",
        cpu_cap=80,
        memory_cap=70.5,
        swap_cap=60,
        niceness=5,
        freeze_input=True,
        run_timeout=30,
        on_error="continue",
        progress=False,
        log_stdout=True,
        complevel=3,
    )
    assert env.parallel.ncores >= 1
    assert env.parallel.start_method == "spawn"
    assert env.parallel.freeze_input is True
    assert env.parallel.run_timeout == 30.0
    assert env.caps == ResourceCaps(cpu=80.0, memory=70.5, swap=60.0, niceness=5)
    assert env.output.progress == "off"
    assert env.output.log_stdout is True
    assert env.on_error == "continue"
    assert env.file_settings.complevel == 3
    assert env.filename == (tmp_path / "study.h5").resolve()
    assert env.trajectory.name == "study"
    assert env.trajectory.study_dir == (tmp_path / "study_study").resolve()
    env.close()


def test_default_file_is_hdf5_folder_named_after_the_trajectory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = Environment("mult")
    assert env.filename == (tmp_path / DEFAULT_FOLDER / "mult.h5").resolve()
    assert env.filename.exists()
    env.close()


def test_a_folder_gets_the_trajectory_file_inside(tmp_path: Path) -> None:
    env = Environment("mult", str(tmp_path) + "/")
    assert env.filename == (tmp_path / "mult.h5").resolve()
    env.close()


def test_a_ready_trajectory_can_be_given(tmp_path: Path) -> None:
    traj = pt.Trajectory("given")
    env = Environment(traj, tmp_path / "given.h5", comment="about it")
    assert env.trajectory is traj
    assert traj.comment == "about it"
    env.close()


def test_log_config_dict_is_applied(tmp_path: Path) -> None:
    config = {
        "version": 1,
        "incremental": True,  # leave the handlers pytest installed alone
        "loggers": {"pytraj-test-config": {"level": "DEBUG"}},
    }
    env = Environment("logged", tmp_path / "logged.h5", log_config=config)
    assert logging.getLogger("pytraj-test-config").level == logging.DEBUG
    env.close()


def test_caps_gate_holds_runs_above_the_cap_but_never_the_first() -> None:
    # The gate reads once when it is built (psutil's first CPU reading is meaningless).
    readings = iter([ResourceUsage(0, 0, 0), ResourceUsage(95, 10, 0), ResourceUsage(10, 10, 0)])
    gate = CapGate(ResourceCaps(cpu=50.0), lambda: next(readings, ResourceUsage(0, 0, 0)))
    assert gate.allows(0) is True  # one run always proceeds
    assert gate.allows(1) is False  # 95 % > 50 %
    gate._last = None  # the next reading is due
    assert gate.allows(1) is True
    assert ResourceCaps().active is False
    assert ResourceCaps(swap=20).exceeded(ResourceUsage(1, 2, 30)) == ["swap 30% > 20%"]


# -- keep_return_values -------------------------------------------------------------------
def _square(traj: Any) -> float:
    traj.add_result("z", traj.x**2)
    return float(traj.x) * 10


@pytest.mark.parametrize("ncores", [1, 2])
def test_dropped_return_values_leave_the_runs_stored(tmp_path: Path, ncores: int) -> None:
    env = Environment("t", tmp_path / "s.h5", keep_return_values=False, ncores=ncores)
    env.trajectory.add_parameter("x", 0.0)
    env.trajectory.explore({"x": [1.0, 2.0, 3.0, 4.0]})
    assert env.run(_square) == []
    env.close()
    stored = pt.load(tmp_path / "s.h5")
    assert stored.results.z.to_numpy().tolist() == [1.0, 4.0, 9.0, 16.0]
    assert stored.run_table.counts()["completed"] == 4

    kept = Environment("k", tmp_path / "k.h5")
    kept.trajectory.add_parameter("x", 0.0)
    kept.trajectory.explore({"x": [1.0, 2.0]})
    assert kept.run(_square) == [(0, 10.0), (1, 20.0)]
    kept.close()


def test_dropped_return_values_are_checked_and_refuse_post_processing(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="keep_return_values"):
        Environment("t", tmp_path / "s.h5", keep_return_values="no")  # type: ignore[arg-type]
    env = Environment("t", tmp_path / "s.h5", keep_return_values=False)
    with pytest.raises(OptionError, match=r"post-processing .*keep_return_values=True"):
        env.add_postprocessing(lambda traj, results: None)
    env.close()
