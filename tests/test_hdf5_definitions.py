"""What the HDF5 definition writer counts as unchanged, and the explored table it appends to."""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tables

import pytraj as pt
from pytraj.storage.hdf5.samedefinition import same_list


def _nan_with_payload(payload: int) -> float:
    value: float = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000000 | payload))[0]
    return value


@pytest.mark.parametrize(
    ("old", "new", "same"),
    [
        ([0.0, 1.5], [0.0, 1.5], True),
        ([0.0], [-0.0], False),  # equal numbers, different values stored
        ([float("nan")], [float("nan")], True),  # two NaN objects, the same bits
        ([_nan_with_payload(1)], [_nan_with_payload(2)], False),
        ([1, 2**70], [1, 2**70], True),
        ([1], [True], False),
        ([1], [1.0], False),
        ([True, False], [True, False], True),
        (["a", "b"], ["a", "c"], False),
        ([1.0, np.float64(2.0)], [1.0, np.float64(2.0)], True),  # mixed: one by one
        ([np.float64(2.0)], [2.0], False),
    ],
)
def test_explored_lists_compare_by_stored_value(old: list[Any], new: list[Any], same: bool) -> None:
    # Fresh copies: the comparison must not lean on the objects being the same ones.
    assert same_list([*old], [*new], False) is same


def test_a_merge_appends_to_the_explored_table(tmp_path: Path) -> None:
    paths = []
    for k, values in enumerate(([0.0, -0.0, math.inf], [2.5, float("nan")])):
        traj = pt.Trajectory("t", filename=tmp_path / f"in{k}.h5")
        traj.add_parameter("x", 0.0)
        traj.add_parameter("n", 0)
        traj.explore({"x": values, "n": list(range(len(values)))})
        for i in range(len(values)):
            with traj.start_run(i):
                traj.add_result("z", i + 10 * k)
        traj.close()
        paths.append(tmp_path / f"in{k}.h5")
    pt.merge_files(paths, tmp_path / "out.h5")
    with tables.open_file(tmp_path / "out.h5") as h5:
        table = h5.get_node("/t/runs/explored")
        assert table.nrows == 5
        assert table.col("n").tolist() == [0, 1, 2, 0, 1]
        x = table.col("x")
    assert x[:3].tolist() == [0.0, -0.0, math.inf]
    assert math.copysign(1, x[1]) == -1
    assert x[3] == 2.5
    assert math.isnan(x[4])
    merged = pt.load(tmp_path / "out.h5")
    fresh = pt.Trajectory("fresh")
    fresh.add_parameter("x", 0.0)
    fresh.add_parameter("n", 0)
    fresh.explore({"x": [0.0, -0.0, math.inf, 2.5, float("nan")], "n": [0, 1, 2, 0, 1]})
    assert [merged.point_id(i) for i in range(5)] == [fresh.point_id(i) for i in range(5)]
    assert merged.results.z.to_numpy().tolist() == [0, 1, 2, 10, 11]


@pytest.mark.filterwarnings("ignore::tables.NaturalNameWarning")  # the per-key form's names
def test_provenance_is_one_attribute_and_the_per_key_form_still_reads(tmp_path: Path) -> None:
    """PyTables reads every attribute of a group it opens, and every load opens the
    trajectory's: its provenance is one attribute. Files that hold it as one attribute
    per key (``provenance.<key>``, written before) read the same, and a definition
    written into them leaves the one attribute."""
    from pytraj.storage.hdf5.codecs import clear_mapping, get_attr, set_mapping

    path = tmp_path / "study.h5"
    env = pt.Environment(trajectory="t", filename=path, progress=False)
    env.trajectory.add_parameter("x", 0.0)
    env.trajectory.explore({"x": [1.0, 2.0]})
    env.run(lambda traj: traj.add_result("z", traj.x * 2))
    env.close()
    provenance = pt.load(path).provenance
    assert provenance["run_function"].endswith("<lambda>")
    with tables.open_file(str(path), "a") as h5:
        attrs = h5.get_node("/t")._v_attrs
        assert [name for name in attrs._v_attrnamesuser if "provenance" in name] == ["provenance"]
        assert get_attr(attrs, "provenance") == provenance
        # As a pytraj of the previous release wrote it: one attribute per key.
        clear_mapping(attrs, "provenance")
        set_mapping(attrs, "provenance", provenance)
        per_key = [name for name in attrs._v_attrnamesuser if name.startswith("provenance")]
        assert len(per_key) == len(provenance) + 1  # the keys and their order
    loaded = pt.load(path)
    assert loaded.provenance == provenance
    assert loaded.results.z[1] == 4.0
    loaded.add_result("extra", "added later")  # writes the definition again
    loaded.close()
    with tables.open_file(str(path)) as h5:
        attrs = h5.get_node("/t")._v_attrs
        assert [name for name in attrs._v_attrnamesuser if "provenance" in name] == ["provenance"]
    again = pt.load(path)
    assert again.provenance == provenance
    assert again.results.extra == "added later"
