"""Hypothesis fuzz of the public API: only PytrajErrors come out, accepted input round-trips.

Four promises are checked over generated input (node names, values, explore dicts,
Environment options and file paths of every kind):

- whatever is refused is refused with a :class:`~pytraj.errors.PytrajError` (also the
  builtin a caller catches), never a bare ``TypeError``/``ValueError``/``KeyError`` or a
  PyTables ``HDF5ExtError``;
- what is accepted round-trips exactly through a file (store, close, load, compare with
  types);
- a refused input never damages an existing file: its bytes, or its loaded content when
  pytraj had the file open for writing, are unchanged.

Examples are derandomized in CI (``tests/conftest.py``); ``PYTRAJ_HYPOTHESIS_EXAMPLES``
scales every test here.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import fractions
import hashlib
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tables
from hypothesis import event, given, settings
from hypothesis import strategies as st

import pytraj as pt
from pytraj.errors import PytrajError, PytrajWarning
from pytraj.leaves.parameter import Parameter
from pytraj.leaves.result import Result
from pytraj.testing.compare import assert_same_value
from pytraj.testing.strategies import names, storable_values
from pytraj.testing.trajectories import assert_trajectory_equal

# Fuzzed names shadow attributes and fuzzed points repeat: those warnings are expected.
pytestmark = pytest.mark.filterwarnings("ignore::pytraj.errors.PytrajWarning")

#: Each test's share of the module's ~60 s: a file round trip costs ~0.1 s on CI.
FILE_EXAMPLES = settings(max_examples=max(settings().max_examples // 2, 10))

_SPECIAL_NAMES = [
    "",
    ".",
    "..",
    "a.b",
    "a/b",
    "/a",
    "a/",
    "a..b",
    "_x",
    "__dict__",
    "__class__",
    "parameters",
    "results",
    "config",
    "derived_parameters",
    "parameters.x",
    "results.z",
    "root",
    "name",
    "comment",
    "keys",
    "get",
    "node",
    "seed",
    "idx",
    "runs",
    "explore",
    "items",
    "value",
    "per_run",
    "leaf_class",
    "run_00000001",
    "crun",
    "None",
    "True",
    "class",
    "-",
    "0",
    "1e5",
    "x" * 300,
    "y" * 255,
    "y" * 256,
    "z" * 70_000,
    "é",
    "名前",
    "a b",
    "a\x00b",
    "a\nb",
    "\U0001f600",
]

#: Any text, the names above, and valid names.
any_names = st.one_of(st.sampled_from(_SPECIAL_NAMES), st.text(max_size=30), names(40))
#: Keys that are not text at all.
non_text_names = st.one_of(
    st.integers(), st.none(), st.binary(max_size=4), st.floats(), st.just(("a",))
)


class _Opaque:
    """An object of a class pytraj knows nothing about."""


def _generator() -> Iterator[int]:
    yield 1


# Values no plain leaf can store (they need a Pickle leaf, or cannot be stored at all).
_UNSUPPORTED: list[Callable[[], Any]] = [
    object,
    _Opaque,
    lambda: lambda: 1,
    lambda: {1, 2},
    lambda: frozenset({1}),
    _generator,
    lambda: 2**63,
    lambda: -(2**63) - 1,
    lambda: 10**100,
    lambda: {1: "non-str key"},
    lambda: {("a",): 1},
    lambda: {"a": object()},
    lambda: [1, object()],
    lambda: decimal.Decimal("1.5"),
    lambda: fractions.Fraction(1, 3),
    lambda: datetime.datetime(2020, 1, 1),
    lambda: datetime.date(2020, 1, 1),
    lambda: range(3),
    lambda: bytearray(b"ab"),
    lambda: memoryview(b"ab"),
    lambda: Ellipsis,
    lambda: NotImplemented,
    lambda: np.array([object(), 1], dtype=object),
    lambda: np.zeros(2, dtype=[("a", "i4"), ("b", "f8")]),
    lambda: np.ma.masked_array([1, 2], mask=[0, 1]),
    lambda: np.void(b"ab"),
    lambda: type,
    lambda: ValueError("x"),
    lambda: Path("a"),
    lambda: iter([1]),
]
unsupported_values = st.sampled_from(_UNSUPPORTED).map(lambda make: make())
any_values = st.one_of(storable_values(), unsupported_values)


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    # Hypothesis runs many examples per test function: a fresh folder per example
    # (function-scoped fixtures like tmp_path are shared between examples).
    with tempfile.TemporaryDirectory(prefix="pytraj-fuzz-") as folder:
        yield Path(folder)


def attempt(call: Callable[[], Any]) -> tuple[bool, Any]:
    """Run ``call``: (True, result) or (False, the PytrajError); anything else fails."""
    try:
        return True, call()
    except PytrajError as exc:
        return False, exc


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- names ---------------------------------------------------------------------------------
@given(name=st.one_of(any_names, non_text_names))
def test_names_are_accepted_or_refused_with_a_pytraj_error(name: Any) -> None:
    traj = pt.Trajectory("study")
    adders: dict[str, Callable[[], Any]] = {
        "parameter": lambda: traj.add_parameter(name, 1),
        "config": lambda: traj.add_config(name, "c"),
        "derived": lambda: traj.add_derived_parameter(name, 1.5),
        "result": lambda: traj.add_result(name, 2),
        "group": lambda: traj.add_group(name),
        "results group": lambda: traj.results.add_group(name),
        "link": lambda: traj.add_link(name, "config"),
    }
    for adder in adders.values():
        ok, leaf = attempt(adder)
        if ok and isinstance(leaf, Parameter | Result):
            assert traj.node(leaf.full_name) is leaf
            assert_same_value(traj[leaf.full_name], leaf.natural_value())
    for lookup in (
        lambda: traj[name],
        lambda: traj.node(name),
        lambda: traj.get(name),
        lambda: traj.results.get(name),
        lambda: traj.parameters[name],
        lambda: traj.remove(name),
    ):
        attempt(lookup)
    assert isinstance(name in traj, bool)
    if isinstance(name, str) and name.isidentifier() and not name.startswith("_"):
        try:
            getattr(traj, name)
        except AttributeError:
            pass  # the documented signal for "no such child" (hasattr works)
        except PytrajError:
            pass


@given(name=st.one_of(any_names, non_text_names))
@FILE_EXAMPLES
def test_accepted_names_round_trip_through_a_file(name: Any) -> None:
    with _scratch() as folder:
        path = folder / "names.h5"
        env = pt.Environment(trajectory="study", filename=path, progress=False)
        traj = env.trajectory
        added = []
        for adder in (
            lambda: traj.add_parameter(name, 1),
            lambda: traj.add_result(name, "r"),
            lambda: traj.add_group(f"config.{name}" if isinstance(name, str) else name),
        ):
            ok, node = attempt(adder)
            if ok:
                added.append(node.full_name)
        event(f"{len(added)} of 3 names accepted")
        env.close()
        loaded = pt.load(path)
        for full_name in added:
            assert loaded.node(full_name).full_name == full_name
        assert_trajectory_equal(loaded, traj)


# -- values --------------------------------------------------------------------------------
@given(value=any_values)
@FILE_EXAMPLES
def test_accepted_values_round_trip_exactly_and_refused_ones_leave_no_trace(value: Any) -> None:
    with _scratch() as folder:
        path = folder / "values.h5"
        env = pt.Environment(trajectory="study", filename=path, progress=False)
        traj = env.trajectory
        traj.add_parameter("x", 1)
        traj.explore({"x": [1, 2]})
        accepted: dict[str, bool] = {}
        accepted["parameter"], _ = attempt(lambda: traj.add_parameter("p", value))
        accepted["config"], _ = attempt(lambda: traj.add_config("c", value))
        accepted["result"], _ = attempt(lambda: traj.add_result("r", value))
        accepted["items"], _ = attempt(lambda: traj.add_result("two", a=value, b=1))

        def run(idx: int) -> None:
            with traj.start_run(idx):
                traj.add_result("per_run", value)

        accepted["per_run"], _ = attempt(lambda: run(0))
        assert len(set(accepted.values())) == 1, f"leaves disagree on {value!r}: {accepted}"
        event("value accepted" if accepted["parameter"] else "value refused")
        env.close()
        loaded = pt.load(path)
        if accepted["parameter"]:
            assert_same_value(loaded.node("parameters.p").default, value)
            assert_same_value(loaded["config.c"], value)
            assert_same_value(loaded["results.r"], value)
            assert_same_value(loaded["results.two"]["a"], value)
            assert_same_value(loaded.results["per_run"][0], value)
            assert loaded.runs[0].status == "completed"
        else:
            # A refused value leaves nothing behind: not a node, not a run.
            assert sorted(loaded.parameters.keys()) == ["x"]
            assert loaded.results.keys() == []
            assert loaded.config.keys() == []
            assert [loaded.runs[i].status for i in range(2)] == ["failed", "pending"]
        assert_trajectory_equal(loaded, traj)


# -- explore dicts ---------------------------------------------------------------------------
_PARAMETER_NAMES = ["x", "y", "s", "parameters.x", "nope", "results.z", "", "x.y", "_x"]
explore_values = st.one_of(
    st.lists(st.one_of(st.integers(-5, 5), st.floats(allow_nan=False), st.text(max_size=3))),
    st.lists(st.integers(-(2**70), 2**70), max_size=3),
    st.lists(unsupported_values, max_size=2),
    st.lists(st.none(), max_size=2),
    st.lists(storable_values(2), max_size=3),
    st.builds(np.arange, st.integers(0, 4)).map(lambda a: a.astype(float)),
    st.builds(np.arange, st.integers(0, 4)),
    st.integers(),
    st.text(max_size=4),
    st.none(),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    unsupported_values,
)
_TYPED_VALUES = {
    "x": st.one_of(st.integers(-(2**63), 2**63 - 1), st.builds(np.int64, st.integers(-9, 9))),
    "y": st.one_of(st.floats(), st.integers(-(2**53), 2**53), st.builds(np.float64, st.floats())),
    "s": st.text(max_size=6),
}


@st.composite
def fitting_spaces(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly valid spaces (right names and types, equal lengths), sometimes made ragged."""
    keys = draw(st.lists(st.sampled_from(sorted(_TYPED_VALUES)), min_size=1, unique=True))
    n = draw(st.integers(0, 4))
    space: dict[str, Any] = {
        key: draw(st.lists(_TYPED_VALUES[key], min_size=n, max_size=n)) for key in keys
    }
    if draw(st.integers(0, 4)) == 0:  # ragged: one range one value short
        key = draw(st.sampled_from(keys))
        space[key] = space[key][:-1]
    if draw(st.booleans()):
        space = {f"parameters.{key}" if draw(st.booleans()) else key: v for key, v in space.items()}
    return space


explore_dicts = st.one_of(
    fitting_spaces(),
    fitting_spaces(),
    st.dictionaries(st.sampled_from(_PARAMETER_NAMES), explore_values, max_size=3),
    st.dictionaries(st.one_of(any_names, non_text_names), explore_values, max_size=2),
    st.lists(explore_values, max_size=2),
    st.none(),
    st.integers(),
)


def _same_scalar(stored: Any, given_value: Any) -> bool:
    """Equal after coercion (an int explored into a float parameter), nan equal to nan."""
    if stored == given_value:
        return True
    numbers = isinstance(stored, float | np.floating) and isinstance(
        given_value, float | np.floating
    )
    return numbers and math.isnan(stored) and math.isnan(given_value)


def _study(path: Path) -> tuple[pt.Environment, pt.Trajectory]:
    env = pt.Environment(trajectory="study", filename=path, progress=False)
    traj = env.trajectory
    traj.add_parameter("x", 1)
    traj.add_parameter("y", 0.5)
    traj.add_parameter("s", "a")
    return env, traj


@given(space=explore_dicts)
@FILE_EXAMPLES
def test_explore_accepts_or_refuses_and_the_stored_points_are_the_explored_ones(
    space: Any,
) -> None:
    with _scratch() as folder:
        path = folder / "explore.h5"
        env, traj = _study(path)
        ok, _ = attempt(lambda: traj.explore(space))
        event("explore accepted" if ok else "explore refused")
        if ok:
            lengths = {len(values) for values in space.values()}
            assert lengths == {len(traj)}
            for key, values in space.items():
                node = traj.node(key if "." in key else f"parameters.{key}")
                assert len(node.range) == len(traj)
                for stored, given_value in zip(node.range, values, strict=True):
                    assert _same_scalar(stored, given_value), (key, stored, given_value)
        else:
            assert len(traj) == 1
            assert not any(leaf.is_explored for leaf in traj.parameters.iter_leaves())
        env.close()
        loaded = pt.load(path)
        assert_trajectory_equal(loaded, traj)


# -- Environment options ---------------------------------------------------------------------
_OPTIONS = [
    "trajectory",
    "filename",
    "comment",
    "ncores",
    "executor",
    "mp_context",
    "cpu_cap",
    "memory_cap",
    "swap_cap",
    "niceness",
    "freeze_input",
    "run_timeout",
    "on_error",
    "progress",
    "log_config",
    "log_stdout",
    "overwrite",
    "complib",
    "complevel",
]
option_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-30, 2000),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(
        ["fork", "spawn", "auto", "bar", "off", "raise", "continue", "zlib", "blosc2", "x.ini"]
    ),
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.builds(np.int64, st.integers(-5, 5)),
    st.builds(np.float64, st.floats()),
    st.just(np.array([1, 2])),
    unsupported_values,
)


@given(option=st.sampled_from(_OPTIONS), value=option_values)
def test_environment_options_are_accepted_or_refused_with_an_option_error(
    option: str, value: Any
) -> None:
    # In the scratch folder: a fuzzed relative filename or log_config lands there.
    with _scratch() as folder, contextlib.chdir(folder):
        kwargs: dict[str, Any] = {"trajectory": "study", "filename": folder / "o.h5"}
        kwargs[option] = value
        ok, env = attempt(lambda: pt.Environment(**kwargs))
        event("option accepted" if ok else "option refused")
        if ok:
            env.close()
        else:
            assert isinstance(env, pt.errors.OptionError), repr(env)
            assert f"{option}=" in str(env)


@given(option=st.sampled_from(_OPTIONS), value=option_values)
@FILE_EXAMPLES
def test_a_refused_option_leaves_an_existing_file_untouched(
    study_file: Path, option: str, value: Any
) -> None:
    with _scratch() as folder, contextlib.chdir(folder):
        path = folder / "study.h5"
        shutil.copyfile(study_file, path)
        before = _digest(path)
        kwargs: dict[str, Any] = {"trajectory": "study", "filename": path, option: value}
        ok, env = attempt(lambda: pt.Environment(**kwargs))
        if ok:
            env.close()
        else:
            assert _digest(path) == before
        assert pt.load(path, "study").results["z"].to_series().tolist() == [1, 2]


# -- file paths ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def study_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-run study (``x`` in [1, 2], ``z = x``) to copy per example."""
    path = tmp_path_factory.mktemp("fuzz") / "study.h5"
    with pt.Environment(trajectory="study", filename=path, progress=False) as env:
        env.trajectory.add_parameter("x", 1)
        env.trajectory.explore({"x": [1, 2]})
        env.run(_store_x)
    return path


def _store_x(traj: Any) -> None:
    traj.add_result("z", traj.x)


def _make_path(kind: str, folder: Path, study_file: Path) -> Path:
    """A path of the given kind inside ``folder`` (files are created as the kind says)."""
    if kind == "folder":
        return folder
    if kind == "missing folder":
        return folder / "missing" / "deeper" / "study.h5"
    if kind == "new file":
        return folder / "new.h5"
    if kind == "spaces and unicode":
        return folder / "a folder é 名前" / "my study ✓.h5"
    if kind == "empty file":
        (folder / "empty.h5").write_bytes(b"")
        return folder / "empty.h5"
    if kind == "text file":
        (folder / "notes.txt").write_text("not a study\n")
        return folder / "notes.txt"
    if kind == "random bytes":
        (folder / "noise.h5").write_bytes(bytes(range(256)) * 40)
        return folder / "noise.h5"
    if kind == "under a file":
        (folder / "plain").write_text("x")
        return folder / "plain" / "study.h5"
    if kind == "foreign hdf5":
        with tables.open_file(str(folder / "foreign.h5"), "w") as h5:
            h5.create_array("/", "data", np.arange(5))
            h5.root._v_attrs.creator = "not pytraj"
        return folder / "foreign.h5"
    if kind == "dangling symlink":
        os.symlink(folder / "nowhere.h5", folder / "link.h5")
        return folder / "link.h5"
    if kind == "pytraj file":
        shutil.copyfile(study_file, folder / "study.h5")
        return folder / "study.h5"
    raise AssertionError(kind)


_PATH_KINDS = [
    "folder",
    "missing folder",
    "new file",
    "spaces and unicode",
    "empty file",
    "text file",
    "random bytes",
    "under a file",
    "foreign hdf5",
    "dangling symlink",
    "pytraj file",
]


def _run_study(path: Path, name: str, differ: bool) -> Any:
    with pt.Environment(trajectory=name, filename=path, progress=False) as env:
        env.trajectory.add_parameter("x", 5 if differ else 1)
        env.trajectory.explore({"x": [1, 2]})
        return env.run(_store_x)


@given(
    kind=st.sampled_from(_PATH_KINDS),
    operation=st.sampled_from(["load", "list", "load by index", "study", "other study"]),
    as_text=st.booleans(),
    differ=st.booleans(),
)
@FILE_EXAMPLES
def test_file_paths_of_every_kind(
    study_file: Path, kind: str, operation: str, as_text: bool, differ: bool
) -> None:
    with _scratch() as folder:
        path = _make_path(kind, folder, study_file)
        target: Any = str(path) if as_text else path
        existing = path.is_file()
        before = _digest(path) if existing else ""
        calls: dict[str, Callable[[], Any]] = {
            "load": lambda: pt.load(target),
            "list": lambda: pt.list_trajectories(target),
            "load by index": lambda: pt.load(target, 3),
            "study": lambda: _run_study(target, "study", differ),
            "other study": lambda: _run_study(target, "other", differ),
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PytrajWarning)
            ok, outcome = attempt(calls[operation])
        event(f"path {'accepted' if ok else 'refused'}")
        if not ok:
            assert isinstance(outcome, OSError | KeyError | ValueError), repr(outcome)
            if existing:
                assert _digest(path) == before, f"{kind}: a refused {operation} changed the file"
        if kind == "pytraj file":
            # Whatever happened, the stored study is intact.
            stored = pt.load(path, "study")
            assert stored.results["z"].to_series().tolist() == [1, 2]
            expected = pt.load(study_file, "study")
            assert_trajectory_equal(stored, expected, run_table=operation != "study")
        if ok and operation in ("study", "other study"):
            # A new study ran both points; a continued one had nothing left to run.
            assert outcome in ([(0, None), (1, None)], [])
            name = "other" if operation == "other study" else "study"
            file = path / f"{name}.h5" if kind == "folder" else path
            loaded = pt.load(file, name)
            assert loaded.results["z"].to_series().tolist() == [1, 2]
