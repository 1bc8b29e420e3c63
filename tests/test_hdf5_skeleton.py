"""The skeleton record: a load reads the trajectory group, not one node per group and leaf;
a record that is missing or stale is never used."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tables

import pytraj as pt
from pytraj.errors import PickleNotAllowedError
from pytraj.storage.hdf5 import open_trajectory
from pytraj.storage.hdf5.codecs import get_attr, set_attr
from pytraj.storage.hdf5.definitions import COLUMN_PATHS
from pytraj.storage.hdf5.layout import EXPLORED_COLUMN_PATHS, SKELETON, SKELETON_GENERATION
from pytraj.storage.records import LazyValue
from pytraj.testing.conformance import assert_definition_equal, loaded

pytestmark = pytest.mark.storage


def _rich_study(path: Path) -> None:
    traj = pt.Trajectory("rich", filename=path, comment="a study of everything")
    traj.add_parameter("x", 1.5, comment="explored, in the table")
    traj.add_parameter("n", 3)
    traj.add_parameter("flag", True)
    traj.add_parameter("label", "a label")
    traj.add_parameter("raw", b"\x00bytes\x00")
    traj.add_parameter("f32", np.float32(2.5))
    traj.add_parameter("nothing", None)
    traj.add_parameter("pair", (1, "two"))
    traj.add_parameter("vec", np.arange(3.0))
    traj.add_parameter("big", np.arange(20_000.0))  # 160 KB: read on access
    traj.add_parameter("medium", np.arange(1_000.0))  # 8 KB: read with the skeleton
    traj.add_parameter("wordy", 0, comment="w" * 5_000)  # read from the leaf's attributes
    traj.node("parameters.wordy").annotations["long"] = list(range(500))
    traj.parameters.add_group("deep", comment="d" * 3_000)
    traj.add_parameter("net.size", 7, comment="nested")
    traj.add_parameter("obj", frozenset({1, 2}), leaf_class=pt.PickleParameter)
    traj.node("parameters.net").annotations["unit"] = "cells"
    traj.node("parameters.x").annotations["unit"] = "mV"
    traj.add_result("summary", mean=1.0, label="s", comment="trajectory-level")
    traj.explore({"x": [1.5, 2.5, 3.5], "vec": [np.arange(3.0), np.ones(3), np.zeros(3)]})
    for i in range(3):
        with traj.start_run(i):
            traj.add_result("z", traj.x * 2)
    traj.add_link("shortcut", traj.node("parameters.net"))
    traj.parameters.add_link("alias", traj.node("parameters.x"), comment="a" * 2_000)
    traj.close()


@pytest.fixture
def rich(tmp_path: Path) -> Path:
    path = tmp_path / "rich.h5"
    _rich_study(path)
    return path


@pytest.fixture
def opened_nodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The HDF5 paths of the nodes PyTables opens from now on."""
    seen: list[str] = []
    real = tables.node.Node.__init__

    def recording(self: Any, parentnode: Any, name: str, *args: Any, **kwargs: Any) -> None:
        seen.append(re.sub("/+", "/", f"{parentnode._v_pathname}/{name}"))
        real(self, parentnode, name, *args, **kwargs)

    monkeypatch.setattr(tables.node.Node, "__init__", recording)
    return seen


def _drop_record(path: Path, name: str) -> None:
    with tables.open_file(str(path), "a") as h5:
        attrs = h5.get_node(f"/{name}")._v_attrs
        for attr in list(attrs._v_attrnamesuser):
            if attr.startswith(SKELETON):
                del attrs[attr]


def test_the_layout_names_the_explored_columns_as_the_writer_does() -> None:
    assert EXPLORED_COLUMN_PATHS == COLUMN_PATHS


def test_the_record_gives_the_definition_the_nodes_give(rich: Path, tmp_path: Path) -> None:
    from_record = open_trajectory(rich)
    with_record = from_record.read_definition()
    plain = tmp_path / "plain.h5"
    plain.write_bytes(rich.read_bytes())
    _drop_record(plain, "rich")
    from_nodes = open_trajectory(plain)
    expected = from_nodes.read_definition()
    for leaf in expected.leaves:  # the reference holds values, not lazy ones
        if not leaf.per_run and leaf.items:
            leaf.items = from_nodes.read_items(leaf.path)
        leaf.default = loaded(leaf.default)
        if leaf.explored is not None:
            leaf.explored = [loaded(value) for value in leaf.explored]
    assert_definition_equal(with_record, expected, from_record)
    defaults = {leaf.path: leaf.default for leaf in with_record.leaves}
    assert type(defaults["parameters.big"]) is LazyValue  # big values stay in the file
    assert type(defaults["parameters.medium"]) is np.ndarray  # as a load from the nodes
    assert type(defaults["parameters.obj"]) is LazyValue  # and so do pickles
    for path, value in [
        ("parameters.n", 3),
        ("parameters.flag", True),
        ("parameters.label", "a label"),
        ("parameters.raw", b"\x00bytes\x00"),
        ("parameters.f32", np.float32(2.5)),
        ("parameters.nothing", None),
        ("parameters.net.size", 7),
    ]:
        assert type(defaults[path]) is type(value), path
        assert defaults[path] == value, path


def test_a_load_with_a_record_opens_no_leaf_value_and_no_explored_table(
    rich: Path, opened_nodes: list[str]
) -> None:
    traj = pt.load(rich)
    assert "/rich/runs/explored" not in opened_nodes
    # Only the default bigger than a record holds, and smaller than a lazy value, is read.
    defaults = [node for node in opened_nodes if node.endswith("/default")]
    assert defaults == ["/rich/parameters/medium/default"]
    assert "/rich/parameters/x" not in opened_nodes
    # The values are all there, read when asked for.
    assert traj.parameters.n == 3
    assert traj.node("parameters.x").range == (1.5, 2.5, 3.5)
    assert traj.node("parameters.x").annotations["unit"] == "mV"
    assert traj.node("parameters.net").annotations["unit"] == "cells"
    np.testing.assert_array_equal(traj.parameters.big, np.arange(20_000.0))
    np.testing.assert_array_equal(traj.node("parameters.vec").range[1], np.ones(3))
    assert traj.results.summary.label == "s"
    assert traj.results.z.to_numpy().tolist() == [3.0, 5.0, 7.0]
    assert traj.shortcut.size == 7
    np.testing.assert_array_equal(traj.parameters.medium, np.arange(1_000.0))
    assert traj.node("parameters.wordy").comment == "w" * 5_000
    assert traj.node("parameters.wordy").annotations["long"] == list(range(500))
    assert traj.node("parameters.deep").comment == "d" * 3_000
    assert traj.parameters.children["alias"].comment == "a" * 2_000


def test_a_file_without_a_record_loads_from_its_nodes(rich: Path, opened_nodes: list[str]) -> None:
    _drop_record(rich, "rich")
    traj = pt.load(rich)
    assert "/rich/catalog" in opened_nodes
    assert "/rich/parameters/x" in opened_nodes
    assert traj.parameters.label == "a label"
    assert traj.node("parameters.x").comment == "explored, in the table"


def _change_behind_the_record(
    path: Path, *, generation: bool = False, n_runs: bool = False
) -> None:
    """What a writer that does not know the record might leave: a leaf's comment changed
    in its node, and perhaps the group's generation or n_runs."""
    with tables.open_file(str(path), "a") as h5:
        h5.get_node("/rich/parameters/label")._v_attrs["comment"] = "changed"
        attrs = h5.get_node("/rich")._v_attrs
        if generation:
            attrs[SKELETON_GENERATION] = np.int64(int(attrs[SKELETON_GENERATION]) + 1)
        if n_runs:
            attrs["n_runs"] = np.int64(int(attrs["n_runs"]))  # rewritten, as every writer does
            attrs["comment"] = "rewritten by another writer"


def test_a_record_of_another_generation_is_not_used(rich: Path) -> None:
    _change_behind_the_record(rich, generation=True)
    assert pt.load(rich).node("parameters.label").comment == "changed"


def test_a_record_whose_group_attributes_changed_is_not_used(rich: Path) -> None:
    _change_behind_the_record(rich, n_runs=True)
    traj = pt.load(rich)
    assert traj.comment == "rewritten by another writer"
    assert traj.node("parameters.label").comment == "changed"


def test_a_record_naming_a_leaf_the_file_lacks_is_not_used(rich: Path) -> None:
    with tables.open_file(str(rich), "a") as h5:
        h5.remove_node("/rich/parameters/net", recursive=True)
    with pytest.raises(pt.errors.FileFormatError, match="parameters.net"):
        pt.load(rich)


def test_an_unreadable_record_is_not_used(rich: Path) -> None:
    with tables.open_file(str(rich), "a") as h5:
        attrs = h5.get_node("/rich")._v_attrs
        attrs[SKELETON] = np.frombuffer(b"\x01d\xff\xff\xff\xff", dtype=np.uint8)
    assert pt.load(rich).parameters.label == "a label"


def test_a_record_of_another_shape_is_not_used(rich: Path) -> None:
    """A record of the right format and generation whose entries have another shape (a
    foreign writer, or a bug) is not used: the load reads the nodes."""
    with tables.open_file(str(rich), "a") as h5:
        attrs = h5.get_node("/rich")._v_attrs
        record = get_attr(attrs, SKELETON)
        record["groups"] = [[*entry, "extra"] for entry in record["groups"]]
        set_attr(attrs, SKELETON, record)
    traj = pt.load(rich)
    assert traj.parameters.label == "a label"
    assert traj.node("parameters.deep").comment == "d" * 3_000


def test_each_definition_write_makes_a_current_record(rich: Path) -> None:
    with tables.open_file(str(rich)) as h5:
        before = int(h5.get_node("/rich")._v_attrs[SKELETON_GENERATION])
    traj = pt.load(rich)
    traj.node("parameters.label").comment = "new comment"
    traj.expand({"x": [4.5], "vec": [np.full(3, 4.0)]})
    traj.close()
    with tables.open_file(str(rich)) as h5:
        after = int(h5.get_node("/rich")._v_attrs[SKELETON_GENERATION])
    assert after > before
    loaded = pt.load(rich)
    assert loaded.node("parameters.label").comment == "new comment"
    assert loaded.node("parameters.x").range == (1.5, 2.5, 3.5, 4.5)
    assert len(loaded) == 4


def test_pickles_stay_refused_and_lazy_false_reads_everything(rich: Path) -> None:
    refused = pt.load(rich, allow_pickle=False)
    assert refused.parameters.label == "a label"
    with pytest.raises(PickleNotAllowedError):
        refused.parameters.obj  # reading is the point
    everything = pt.load(rich, lazy=False)
    rich.unlink()  # lazy=False read it all: the file may go away
    assert everything.parameters.obj == frozenset({1, 2})
    np.testing.assert_array_equal(everything.parameters.big, np.arange(20_000.0))
    assert everything.results.z.to_numpy().tolist() == [3.0, 5.0, 7.0]
