"""Damaged and foreign files: a clean load with correct values, or a PytrajError.

Issue 9, defect 7: a byte flipped in a compressed chunk raised ``HDF5ExtError`` (and
once ``SystemError``), and a foreign file whose ``pytraj_schema`` is a string raised
``ValueError``. Every case here runs its open-and-read in a child process
(``tests/corruption.py``), so that a crash inside HDF5 is counted rather than fatal. The
outcome counts of each sweep are printed (``pytest -s``) for the issue.
"""

from __future__ import annotations

import os
from pathlib import Path

import corruption
import h5py
import numpy as np
import pytest

import pytraj as pt
from pytraj.errors import DamagedFileError, FileFormatError, PytrajError, ValueDecodeError
from pytraj.io import list_trajectories, load

pytestmark = pytest.mark.storage


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "fletcher32"])
def study(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("study")
    path = folder / "study.h5"
    corruption.make_study(path, fletcher32=request.param)
    return path


@pytest.fixture(scope="module")
def pristine(study: Path) -> str:
    return corruption.pristine_fingerprint(study)


def _report(title: str, outcomes: list[corruption.Outcome]) -> None:
    counts = corruption.count(outcomes)
    print(f"\n{title}: {len(outcomes)} files, " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def _assert_clean(
    outcomes: list[corruption.Outcome], regions: dict[Path, corruption.Region]
) -> None:
    """No error escapes, nothing hangs, and checksummed bytes are never silently wrong."""
    bad = [o for o in outcomes if o.kind in ("escaped", "hang")]
    assert not bad, [(o.kind, str(regions.get(o.path)), o.detail) for o in bad[:5]]
    silent = [o for o in outcomes if o.kind == "silent" and regions[o.path].checksummed]
    assert not silent, [str(regions[o.path]) for o in silent[:5]]


def _sample(
    cases: dict[Path, corruption.Region], n: int, seed: int
) -> dict[Path, corruption.Region]:
    """``n`` cases, every chunk among them first (the nodes that hold the data)."""
    rng = np.random.default_rng(seed)
    chunks = [path for path, region in cases.items() if region.kind != "header"]
    headers = [path for path, region in cases.items() if region.kind == "header"]
    rng.shuffle(headers)
    chosen = chunks[: n // 2] + headers[: n - min(len(chunks), n // 2)]
    return {path: cases[path] for path in chosen}


def test_byte_flips_in_every_kind_of_node_are_read_or_detected(
    study: Path, pristine: str, tmp_path: Path
) -> None:
    cases = _sample(corruption.flip_cases(study, tmp_path, 1, seed=9), 24, seed=9)
    kinds = {region.kind for region in cases.values()}
    assert kinds == {"header", "chunk", "contiguous"}
    outcomes = corruption.read_files(list(cases), pristine)
    _report(f"byte flips in {study.parent.name}", outcomes)
    _assert_clean(outcomes, cases)
    # Bytes a checksum covers (zlib's adler32, fletcher32) are read right or refused (a
    # flip in the padding bits of a deflate stream changes nothing); refusals happen.
    checked = [o.kind for o in outcomes if cases[o.path].checksummed]
    assert set(checked) <= {"correct", "detected"}
    assert checked.count("detected") >= len(checked) // 2


def test_truncated_files_are_read_or_detected(study: Path, pristine: str, tmp_path: Path) -> None:
    size = study.stat().st_size
    offsets = [0, 8, 100, 512, 2048, *(size * k // 10 for k in range(1, 10)), size - 1]
    cases: dict[Path, corruption.Region] = {}
    for offset in offsets:
        target = tmp_path / f"cut-{offset}.h5"
        corruption.truncate(study, target, offset)
        cases[target] = corruption.Region("truncation", "/", offset, 0, False)
    outcomes = corruption.read_files(list(cases), pristine)
    _report(f"truncations of {study.parent.name}", outcomes)
    _assert_clean(outcomes, cases)
    # A file cut anywhere has lost data at its end (HDF5 writes metadata last): nothing
    # reads as correct values by accident, and nothing crashes.
    counts = corruption.count(outcomes)
    assert counts["detected"] + counts["crash"] == len(offsets)


def test_a_damaged_chunk_names_the_file_and_the_node(tmp_path: Path) -> None:
    path = tmp_path / "study.h5"
    corruption.make_study(path, fletcher32=True)
    region = next(
        r
        for r in corruption.regions(path)
        if r.kind == "chunk" and r.node.endswith("results/z/z/values")
    )
    damaged = tmp_path / "damaged.h5"
    corruption.flip(path, damaged, region.offset + region.size // 2)
    traj = load(damaged)  # the skeleton is intact
    with pytest.raises(DamagedFileError) as caught:
        traj.results.z.to_series()
    error = caught.value
    assert isinstance(error, FileFormatError)
    assert isinstance(error, OSError)
    assert error.node == "/study/results/z/z"
    assert str(damaged) in str(error)
    assert "/study/results/z/z" in str(error)
    assert "pytraj check" in str(error)
    assert "backup" in str(error)


# -- foreign files ---------------------------------------------------------------------------


def _pytraj_file(path: Path) -> None:
    traj = pt.Trajectory("t", filename=path)
    traj.add_parameter("x", 1)
    traj.explore({"x": [1, 2]})
    for i in range(2):
        with traj.start_run(i):
            traj.add_result("z", i)
    traj.close()


def _every_entry_point_raises(path: Path, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        list_trajectories(path)
    with pytest.raises(error, match=match):
        load(path)
    with pytest.raises(error, match=match):
        pt.Environment(trajectory="t", filename=path, progress=False)


@pytest.mark.parametrize("value", ["1", b"2", 1.5, np.array([1, 2]), True])
def test_a_schema_attribute_of_the_wrong_type_is_a_clear_error(
    tmp_path: Path, value: object
) -> None:
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as h5:
        h5.attrs["pytraj_schema"] = value
        h5.create_group("t").attrs["pytraj_schema"] = 1
    _every_entry_point_raises(path, FileFormatError, "not a pytraj file")


def test_an_hdf5_file_of_another_program_says_what_exists_today(tmp_path: Path) -> None:
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as h5:
        h5["data"] = np.arange(3)
    with pytest.raises(FileFormatError) as caught:
        load(path)
    message = str(caught.value)
    assert "not a pytraj file" in message
    assert "compat.pypet" not in message  # it does not exist yet
    assert "h5py" in message


def test_missing_groups_and_tables_of_the_wrong_dtype_are_file_format_errors(
    tmp_path: Path,
) -> None:
    missing_runs = tmp_path / "missing-runs.h5"
    _pytraj_file(missing_runs)
    with h5py.File(missing_runs, "a") as h5:
        del h5["t/runs"]
    with pytest.raises(FileFormatError, match="/t"):
        load(missing_runs).runs[0].status

    wrong_table = tmp_path / "wrong-table.h5"
    _pytraj_file(wrong_table)
    with h5py.File(wrong_table, "a") as h5:
        attrs = dict(h5["t/runs/table"].attrs)
        del h5["t/runs/table"]
        h5["t/runs/table"] = np.zeros(2, dtype=[("a", "f8")])
        for key, value in attrs.items():
            h5["t/runs/table"].attrs[key] = value
    with pytest.raises(FileFormatError, match="/t/runs"):
        load(wrong_table).runs[0].status

    wrong_column = tmp_path / "wrong-column.h5"
    _pytraj_file(wrong_column)
    with h5py.File(wrong_column, "a") as h5:
        # Without its run -> row index the column is read through its cells.
        del h5["t/results/z/z/run_rows"]
        del h5["t/results/z/z/cells"]
        h5["t/results/z/z/cells"] = np.array(["a", "b"], dtype="S1")
    traj = load(wrong_column)
    with pytest.raises(FileFormatError, match="/t/results/z/z"):
        traj.results.z.to_series()

    no_catalog = tmp_path / "no-catalog-entry.h5"
    _pytraj_file(no_catalog)
    with h5py.File(no_catalog, "a") as h5:
        del h5["t/parameters/x"]
    with pytest.raises(FileFormatError, match="parameters.x"):
        load(no_catalog)


def test_a_file_that_is_not_hdf5_at_all(tmp_path: Path) -> None:
    for name, data in [("empty.h5", b""), ("text.h5", b"hello " * 100)]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(FileFormatError):
            load(path)


def test_damaged_file_error_is_public_and_keeps_its_old_import_path() -> None:
    from pytraj import errors
    from pytraj.storage.hdf5 import files

    assert errors.DamagedFileError is files.DamagedFileError
    assert "DamagedFileError" in errors.__all__
    assert "DamagedFileError" in (errors.__doc__ or "")
    assert issubclass(errors.DamagedFileError, errors.FileFormatError)
    error = errors.DamagedFileError("x.h5: node /t cannot be read", "bad", "/t")
    assert (error.reason, error.node) == ("bad", "/t")


def test_read_errors_of_every_kind_become_damaged_file_errors(tmp_path: Path) -> None:
    """What PyTables raised on damaged rows (SystemError included) is named, not leaked."""
    from pytraj.storage.hdf5.files import read_guard

    for raised in (
        SystemError("Negative size passed to PyBytes_FromStringAndSize"),
        ValueError("buffer is smaller than requested size"),
        OverflowError("cannot fit 'int' into an index-sized integer"),
    ):
        with pytest.raises(DamagedFileError) as caught, read_guard(tmp_path / "f.h5", "/t/x"):
            raise raised
        assert caught.value.node == "/t/x"
        assert caught.value.__cause__ is raised
    # pytraj's own errors and KeyError (the storage's "no value here") pass unchanged.
    with pytest.raises(KeyError), read_guard(tmp_path / "f.h5", "/t/x"):
        raise KeyError("absent")
    marker = PytrajError("mine")
    with pytest.raises(PytrajError) as caught_own, read_guard(tmp_path / "f.h5", "/t/x"):
        raise marker
    assert caught_own.value is marker


def test_a_damaged_file_is_never_changed_by_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "study.h5"
    corruption.make_study(path, fletcher32=False)
    region = next(r for r in corruption.regions(path) if r.node == "study/runs/table")
    damaged = tmp_path / "damaged.h5"
    corruption.flip(path, damaged, region.offset + region.size // 2)
    before = damaged.read_bytes()
    outcome = corruption.read_files([damaged], pristine="")
    assert outcome[0].kind == "detected"
    assert damaged.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["damaged.h5", "study.h5"]


def test_a_damaged_pickle_is_a_value_decode_error_naming_the_value(tmp_path: Path) -> None:
    path = tmp_path / "pickled.h5"
    traj = pt.Trajectory("t", filename=path)
    traj.add_result("thing", frozenset(range(50)), leaf_class=pt.PickleResult)
    traj.close()
    with h5py.File(path, "a") as h5:
        dataset = h5["t/results/thing/thing"]
        raw = bytearray(dataset[()].tobytes())
        raw[len(raw) // 2 :] = bytes(len(raw) - len(raw) // 2)  # its second half zeroed
        dataset[...] = np.frombuffer(bytes(raw), dtype=dataset.dtype).reshape(dataset.shape)
    loaded = load(path)
    with pytest.raises(ValueDecodeError, match=r"results\.thing.*pytraj check"):
        loaded.results.thing  # reading is the point


# -- sizes claimed by a damaged header -------------------------------------------------------

#: Nodes of every kind whose header is forged to claim absurdly many rows.
FORGED_NODES = [
    "study/results/mixed/mixed/run_rows",
    "study/results/mixed/mixed/cells",
    "study/results/mixed/mixed/values",
    "study/results/mixed/mixed/values_ends",
    "study/results/mixed/mixed/overflow",
    "study/results/mixed/mixed/overflow_ends",
    "study/results/z/z/values",
    "study/results/arr/arr/values",
    "study/results/table/table",
    "study/parameters/vec/explored/values",
    "study/runs/table",
    "study/runs/explored",
    "study/runs/failures",
    "study/runs/failure_messages",
    "study/runs/hosts",
    "study/catalog",
]


@pytest.fixture(scope="module")
def plain_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plain") / "study.h5"
    corruption.make_study(path, fletcher32=False)
    return path


@pytest.mark.parametrize("rows", [0xFF000028, 2**40 + 3], ids=["flipped", "forged"])
def test_a_header_claiming_absurd_rows_is_a_damaged_file_error_naming_the_node(
    plain_study: Path, tmp_path: Path, rows: int
) -> None:
    """A flipped byte in run_rows' header claimed 4,278,190,120 rows: a 32 GB MemoryError."""
    cases = {}
    for k, node in enumerate(FORGED_NODES):
        target = tmp_path / f"forged-{k:02d}.h5"
        corruption.forge_rows(plain_study, target, node, rows)
        cases[target] = node
    outcomes = corruption.read_files(list(cases), pristine="")
    for outcome in outcomes:
        node = cases[outcome.path]
        assert outcome.kind == "detected", (node, outcome.kind, outcome.detail)
        assert outcome.detail.startswith("DamagedFileError: "), (node, outcome.detail)
        assert str(outcome.path) in outcome.detail
        assert f"/{node}" in outcome.detail, (node, outcome.detail)


def test_the_column_list_a_writer_reads_is_checked(plain_study: Path, tmp_path: Path) -> None:
    """``runs/columns`` is read when a process becomes the writer (not by ``load``)."""
    import tables

    from pytraj.storage.hdf5.cells import list_columns

    forged = tmp_path / "forged.h5"
    corruption.forge_rows(plain_study, forged, "study/runs/columns", 2**40)
    with tables.open_file(str(forged), "r") as h5, pytest.raises(DamagedFileError) as caught:
        list_columns(h5.get_node("/study/runs"))
    assert caught.value.node == "/study/runs/columns"
    assert str(forged) in str(caught.value)


def test_a_forged_attribute_node_is_a_damaged_file_error(tmp_path: Path) -> None:
    """A comment over 64 KB lives in a node under /_pytraj_attributes: its size is checked."""
    path = tmp_path / "big.h5"
    traj = pt.Trajectory("t", filename=path, comment="c" * 100_000)
    traj.add_parameter("x", 1)
    traj.close()
    with h5py.File(path, "r") as h5:
        nodes = [f"_pytraj_attributes/{name}" for name in h5["_pytraj_attributes"]]
    assert len(nodes) == 1
    forged = tmp_path / "forged.h5"
    corruption.forge_rows(path, forged, nodes[0], 2**40)
    (outcome,) = corruption.read_files([forged], pristine="")
    assert outcome.kind == "detected", outcome
    assert outcome.detail.startswith("DamagedFileError: ")
    assert f"/{nodes[0]}" in outcome.detail


def test_the_size_check_bounds_rows_by_the_storage_of_the_node(plain_study: Path) -> None:
    """Claims within what the chunks can hold pass; beyond it, the node is named."""
    import tables

    from pytraj.storage.hdf5.sizes import MIN_CHUNK_BYTES, check_rows, max_rows

    with tables.open_file(str(plain_study), "r") as h5:
        run_rows = h5.get_node("/study/results/mixed/mixed/run_rows")
        # Compressed chunks of 1,024 rows, each at least MIN_CHUNK_BYTES on disk.
        assert max_rows(run_rows) == (run_rows.size_on_disk // MIN_CHUNK_BYTES + 1) * 1024
        assert check_rows(run_rows) == 40
        table = h5.get_node("/study/results/table/table")  # contiguous, uncompressed
        assert max_rows(table) == plain_study.stat().st_size // 8 + 1
        assert check_rows(table) == 20_000


def test_a_memory_error_is_damage_only_when_the_sizes_say_so(
    plain_study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read guard turns a MemoryError into DamagedFileError by the node's sizes."""
    import tables

    from pytraj.storage.hdf5 import sizes
    from pytraj.storage.hdf5.files import read_guard

    forged = tmp_path / "forged.h5"
    node = "/study/results/mixed/mixed/run_rows"
    corruption.forge_rows(plain_study, forged, node[1:], 0xFF000028)
    with tables.open_file(str(forged), "r") as h5:
        with pytest.raises(DamagedFileError) as caught, read_guard(forged, node, h5):
            raise MemoryError("Unable to allocate 31.9 GiB")
        assert caught.value.node == node
        assert isinstance(caught.value.__cause__, MemoryError)
    big = tmp_path / "big.h5"
    with tables.open_file(str(big), "w") as h5:
        array = h5.create_earray(
            "/", "zeros", atom=tables.Int64Atom(), shape=(0,), filters=tables.Filters(5, "zlib")
        )
        array.append(np.zeros(4_000_000, dtype=np.int64))  # 32 MB in some 100 KB
    with tables.open_file(str(big), "r") as h5:
        # A healthy node of 32 MB (in a file of some 100 KB): damage when this process could
        # allocate more than twice that.
        monkeypatch.setattr(sizes, "_memory_limit", lambda: 70_000_000)
        with pytest.raises(DamagedFileError), read_guard(big, "/zeros", h5):
            raise MemoryError
        # With less memory left, the same MemoryError is a genuine one and stays.
        monkeypatch.setattr(sizes, "_memory_limit", lambda: 50_000_000)
        with pytest.raises(MemoryError) as genuine, read_guard(big, "/zeros", h5):
            raise MemoryError
        assert not isinstance(genuine.value, PytrajError)
        # Without the open file nothing can be decided: kept too.
        with pytest.raises(MemoryError), read_guard(big, "/zeros"):
            raise MemoryError


def test_a_run_index_saying_more_than_the_cells_gives_way_to_the_cells(tmp_path: Path) -> None:
    """``run_rows`` giving every run a value, where run 7 has no cell, is not trusted.

    A flush killed after rewriting some blocks of the index (or damaged bytes) leaves it
    saying more than the cells; the cells, which are authoritative, decide.
    """
    path = tmp_path / "study.h5"
    corruption.make_study(path, fletcher32=False)
    before = load(path).results.z.to_series()
    assert 7 not in before.index
    with h5py.File(path, "a") as h5:
        run_rows = h5["study/results/z/z/run_rows"]
        assert int((run_rows[...] >= 0).sum()) == int(run_rows.attrs["cells"]) == 39
        run_rows[...] = np.zeros(run_rows.shape, dtype=np.int64)  # run 7 -> run 0's value
    after = load(path).results.z.to_series()
    assert after.index.tolist() == before.index.tolist()
    assert after.tolist() == before.tolist()


def test_a_damaged_run_index_never_sizes_the_writers_arrays(tmp_path: Path) -> None:
    """A run index of 2**50 in the run table made the writer allocate a petabyte."""
    path = tmp_path / "study.h5"
    traj = pt.Trajectory("t", filename=path)
    traj.add_parameter("x", 1)
    traj.explore({"x": [1, 2, 3]})
    for i in range(2):
        with traj.start_run(i):
            traj.add_result("z", i)
    traj.close()
    with h5py.File(path, "a") as h5:
        table = h5["t/runs/table"]
        rows = table[...]
        rows["idx"][1] = 2**50
        table[...] = rows
    env = pt.Environment(trajectory="t", filename=path)
    with pytest.raises(DamagedFileError) as caught:
        env.resume(lambda traj: traj.add_result("z", 9))
    assert caught.value.node == "/t/runs/table"
    assert f"run index {2**50 + 1}, more than the 3" in str(caught.value)
