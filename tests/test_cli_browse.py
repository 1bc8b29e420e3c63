"""The looking subcommands of the ``pytraj`` command (info, tree, runs, show, export),
run as real subprocesses on real files: finished, being written, crashed, foreign."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import textwrap
import time
import venv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pytraj as pt
from pytraj.io import journal_status

SCRIPT = Path(sys.executable).with_name("pytraj")  # the installed console script


def pytraj(*args: str | Path, script: bool = False) -> subprocess.CompletedProcess[str]:
    command = [str(SCRIPT)] if script else [sys.executable, "-m", "pytraj"]
    return subprocess.run(
        [*command, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def simulate(traj: pt.Trajectory) -> None:
    if traj.x == 3.0 and traj.y == 7.0:
        raise ValueError("boom at x=3")
    traj.add_result("z", traj.x * traj.y, comment="the product")
    traj.add_result("diag", peak=traj.x - 2.0, steps=int(traj.y))
    traj.add_result("trace", np.arange(4) * traj.x)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "study.h5"
    env = pt.Environment(
        trajectory="mult",
        filename=path,
        comment="first study",
        on_error="continue",
        progress=False,
    )
    traj = env.trajectory
    traj.add_parameter("x", 1.0, comment="first dimension")
    traj.add_parameter("y", 1.0)
    traj.add_parameter("pickled", {1, 2}, leaf_class=pt.PickleParameter)
    traj.explore(pt.cartesian_product({"x": [1.0, 2.0, 3.0, 4.0], "y": [6.0, 7.0, 8.0]}))
    env.run(simulate)
    traj.close()
    return path


def test_info_text(study: Path) -> None:
    done = pytraj("info", study)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "trajectory 'mult': 12 runs (11 completed, 1 failed)" in out
    assert "comment: first study" in out
    assert "    parameters.x        float    default=1.0  explored: [1.0, 2.0, 3.0, 4.0]\n" in out
    assert "    parameters.pickled  pickled (not read) default=None\n" in out
    assert "results.diag.peak  float  (per run)" in out
    assert "results.trace  ndarray[float64, (4,)] shape=(4,)  (per run)" in out
    assert "in progress" not in out
    assert done.stderr == ""


def test_info_json_parses_back(study: Path) -> None:
    done = pytraj("info", study, "--json", script=True)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["size"] == study.stat().st_size
    assert data["journal"] is None
    (summary,) = data["trajectories"]
    assert summary["name"] == "mult"
    counts = {"total": 12, "pending": 0, "running": 0, "completed": 11, "failed": 1}
    assert summary["runs"] == counts
    x = next(p for p in summary["parameters"] if p["name"] == "parameters.x")
    assert x["values"] == [1.0, 2.0, 3.0, 4.0]
    assert (x["n_values"], x["min"], x["max"]) == (12, 1.0, 4.0)
    assert x["comment"] == "first dimension"
    items = {i["name"]: i for r in summary["results"] for i in r["items"]}
    assert items["results.z"]["type"] == "float"
    assert items["results.trace"]["shape"] == [4]
    assert summary["provenance"]["script"]


def test_tree(study: Path) -> None:
    done = pytraj("tree", study)
    assert done.returncode == 0, done.stderr
    assert "│   ├── x  float=1.0 (explored: 12 values)  # first dimension" in done.stdout
    # Per-run results with the type (and shape) of their values, read from one run.
    assert "│   ├── z  per run: z float  # the product\n" in done.stdout
    assert "│   ├── diag  per run: peak float, steps int\n" in done.stdout
    assert "│   └── trace  per run: trace ndarray[float64, (4,)]\n" in done.stdout
    top = pytraj("tree", study, "--depth", "1")
    assert top.stdout.splitlines() == [
        "mult/",
        "├── parameters/",
        "├── derived_parameters/",
        "├── results/",
        "└── config/",
    ]
    only = pytraj("tree", study, "results")
    assert only.stdout.splitlines()[0] == "results/"
    assert "diag  per run: peak float, steps int" in only.stdout
    assert "parameters" not in only.stdout
    leaf = pytraj("tree", study, "results.z")
    assert leaf.returncode == 1
    assert "is a leaf, not a group; show its value with 'pytraj show" in leaf.stderr


def test_runs_where_sort_limit(study: Path) -> None:
    done = pytraj("runs", study, "--where", "x >= 2 and y < 8", "--sort", "z", "--desc")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "x",
        "y",
        "z",
        "diag.peak",
        "diag.steps",
        "status",
        "runtime",
    ]
    indices = [int(line.split()[0]) for line in lines[2:]]
    assert indices == [10, 9, 6, 4, 3, 7]  # z descending, the failed run (no z) last
    limited = pytraj("runs", study, "--status", "failed", "--limit", "1")
    assert limited.stdout.splitlines()[2].split()[:3] == ["7", "3.0", "7.0"]


def test_runs_json_parses_back(study: Path) -> None:
    done = pytraj("runs", study, "--json", "--columns", "x,z,status", "--limit", "3")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["columns"] == ["idx", "x", "z", "status"]
    assert (data["matching"], data["shown"]) == (12, 3)
    assert data["runs"][2] == {"idx": 2, "x": 1.0, "z": 8.0, "status": "completed"}
    failed = json.loads(pytraj("runs", study, "--json", "--where", "status == 'failed'").stdout)
    assert failed["runs"][0]["idx"] == 7
    assert failed["runs"][0]["z"] is None  # NaN is written as null: strict JSON


def test_runs_never_imports_pandas(study: Path) -> None:
    # pandas costs a third of a second at every start; the run table is built with numpy.
    code = (
        "import sys; from pytraj.cli import main; "
        f"rc = main(['runs', {str(study)!r}, '--where', 'x >= 2', '--sort', 'z', '--json']); "
        "print(rc, 'pandas' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.stdout.splitlines()[-1] == "0 False", done.stderr


@pytest.mark.parametrize(
    ("sort", "desc"), [("z", True), ("z", False), ("diag.steps", True), ("status", False)]
)
def test_runs_sorted_as_the_dataframe_is(study: Path, sort: str, desc: bool) -> None:
    args = ["runs", study, "--json", "--limit", "0", "--sort", sort, *(["--desc"] if desc else [])]
    done = pytraj(*args)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)["runs"]
    frame = pt.load(study, read_only=True).to_dataframe(include=("status", "runtime"))
    frame = frame.sort_values(sort, ascending=not desc, na_position="last", kind="stable")
    assert [r["idx"] for r in shown] == frame.index.tolist()
    for row, (idx, expected) in zip(shown, frame.iterrows(), strict=True):
        assert row["idx"] == idx
        for name in ("x", "y", "z", "diag.peak", "diag.steps", "status"):
            value = expected[name]
            assert row[name] == (None if pd.isna(value) else value), (idx, name)


def test_show(study: Path) -> None:
    assert pytraj("show", study, "results.z", "--run", "4").stdout == "14.0\n"
    assert pytraj("show", study, "results.diag.peak", "--run", "9").stdout == "2.0\n"
    trace = pytraj("show", study, "results.trace", "--run", "3").stdout
    assert trace.startswith("array shape=(4,) dtype=float64 min=0.0 max=6.0 mean=3")
    many = pytraj("show", study, "results.diag.steps").stdout
    assert many.splitlines()[0] == "results.diag.steps: per-run values, 11 of 12 runs have one"
    assert "  run 10: 7" in many
    x = pytraj("show", study, "x").stdout
    assert "explored over 12 runs" in x
    assert "[1. 1. 1. 2. 2. 2. 3. 3. 3. 4. 4. 4.]" in x
    several = pytraj("show", study, "results.diag").stdout
    assert "results.diag.peak, results.diag.steps" in several


def test_show_never_unpickles(study: Path) -> None:
    done = pytraj("show", study, "parameters.pickled")
    assert done.returncode == 1
    assert "pytraj show: error:" in done.stderr
    assert "pickle" in done.stderr.lower()
    assert "Traceback" not in done.stderr


def test_export_csv_and_json(study: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs.csv"
    done = pytraj("export", study, "-o", out)
    assert done.returncode == 0, done.stderr
    assert "wrote 12 runs" in done.stdout
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 12
    assert rows[4]["z"] == "14.0"
    assert rows[7]["status"] == "failed"
    assert rows[7]["z"] == ""
    as_json = tmp_path / "runs.json"
    assert pytraj("export", study, "-o", as_json, "--where", "z > 20").returncode == 0
    records = json.loads(as_json.read_text())
    assert [r["idx"] for r in records] == [8, 9, 10, 11]
    assert records[0]["diag.steps"] == 8


def test_export_refuses_unknown_suffix_and_the_study_itself(study: Path, tmp_path: Path) -> None:
    done = pytraj("export", study, "-o", tmp_path / "runs.xlsx")
    assert done.returncode == 1
    assert ".csv, .json, .parquet, .nc" in done.stderr
    itself = pytraj("export", study, "-o", study)
    assert itself.returncode == 1
    assert "is the study file itself" in itself.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("info", "{missing}"), "no file"),
        (("info", "{text}"), "is not an HDF5 file"),
        (("info", "{foreign}"), "not a pytraj file"),
        (("runs", "{study}", "--name", "other"), "holds no trajectory 'other'; it holds 'mult'"),
        (("runs", "{study}", "--index", "3"), "index 3 is out of range"),
        (("runs", "{study}", "--where", "x >="), "expected a value"),
        (("runs", "{study}", "--where", "w > 1"), "no column 'w' to query; columns: x, y"),
        (("runs", "{study}", "--sort", "w"), "--sort: no column 'w'"),
        (("show", "{study}", "results.nothing"), "no child 'nothing'"),
        (("tree", "{study}", "--depth", "0"), "--depth must be 1 or more"),
    ],
)
def test_errors_are_one_line_and_exit_1(
    study: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    import h5py

    text = tmp_path / "notes.txt"
    text.write_text("not a study\n")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as h5:
        h5["data"] = np.arange(3)
    paths = {"missing": tmp_path / "nope.h5", "text": text, "foreign": foreign, "study": study}
    done = pytraj(*(a.format(**paths) for a in args))
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"pytraj {args[0]}: error: ")
    assert message in done.stderr


@pytest.mark.parametrize("command", ["info", "tree", "runs", "show", "export", "report"])
def test_every_subcommand_refuses_foreign_and_text_files(tmp_path: Path, command: str) -> None:
    import h5py

    text = tmp_path / "notes.txt"
    text.write_text("not a study\n")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as h5:
        h5["data"] = np.arange(3)
    extra = {"show": ["x"], "export": ["-o", tmp_path / "out.csv"]}
    extra["report"] = ["-o", tmp_path / "out.html"]
    for path, message in ((text, "is not an HDF5 file"), (foreign, "not a pytraj file")):
        before = _fingerprint(path)
        done = pytraj(command, path, *extra.get(command, []))
        assert done.returncode == 1, (path, done.stdout)
        assert done.stderr.startswith(f"pytraj {command}: error: {path}"), done.stderr
        assert message in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert _fingerprint(path) == before
    assert not (tmp_path / "out.csv").exists()
    assert not (tmp_path / "out.html").exists()


def test_help_everywhere() -> None:
    top = pytraj("--help", script=True)
    assert top.returncode == 0
    for name in ("info", "tree", "runs", "show", "export", "report"):
        assert name in top.stdout
        sub = pytraj(name, "--help")
        assert sub.returncode == 0
        assert "examples:" in sub.stdout


@pytest.mark.slow
def test_the_pip_installed_script_works_in_a_fresh_venv(study: Path, tmp_path: Path) -> None:
    # Installed from a copy of the source as a user does (`pip install .`, not editable), so a
    # subpackage or data file missing from the wheel shows up here and not after a release.
    repo = Path(__file__).resolve().parents[1]
    source = tmp_path / "source"
    shutil.copytree(
        repo / "pytraj", source / "pytraj", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(repo / name, source / name)
    fresh = tmp_path / "venv"
    venv.create(fresh, with_pip=True)
    python = fresh / "bin" / "python"
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", source],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    # The dependencies (numpy, tables ...) come from this environment, after the fresh one's
    # own site-packages; a path in a .pth file does not run that environment's .pth files,
    # so its editable install of pytraj stays out of sight.
    (site,) = (fresh / "lib").glob("python3*/site-packages")
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(map(str, args)),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tmp_path,  # not the checkout: pytraj must come from the installed wheel
        )

    where = run(python, "-c", "import pytraj; print(pytraj.__file__)")
    assert Path(where.stdout.strip()).is_relative_to(site), where
    help_text = run(fresh / "bin" / "pytraj", "--help")
    assert help_text.returncode == 0, help_text.stderr
    assert "report" in help_text.stdout
    info = run(fresh / "bin" / "pytraj", "info", study, "--json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["trajectories"][0]["runs"]["completed"] == 11
    runs = run(python, "-m", "pytraj", "runs", study, "--where", "z > 20", "--json")
    assert [row["idx"] for row in json.loads(runs.stdout)["runs"]] == [8, 9, 10, 11]
    report = run(fresh / "bin" / "pytraj", "report", study, "-o", tmp_path / "r.html")
    assert report.returncode == 0, report.stderr
    assert "Study mult" in (tmp_path / "r.html").read_text()


# -- files that a study writes now, or whose writer was killed --------------------------

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import pytraj as pt
    from pytraj.storage.hdf5 import backend

    marker = Path(sys.argv[2])
    # A flush budget of 3 s: runs 3-4 stay out of the file even when a loaded machine
    # stalls this process for a while after the flush of runs 0-2.
    backend.FLUSH_SECONDS = 3.0

    def simulate(traj):
        if traj.idx == 2:
            time.sleep(3.2)  # past the flush budget: runs 0-2 go into the file
        if traj.idx == 4:
            time.sleep(0.4)  # past the commit interval: runs 3-4 get journaled
        if traj.idx == 5:
            marker.write_text("5 runs done")
            while not Path(sys.argv[3]).exists():
                time.sleep(0.05)
        traj.add_result("z", traj.x * 2)

    env = pt.Environment(trajectory="live", filename=sys.argv[1], progress=False)
    env.trajectory.add_parameter("x", 0)
    env.trajectory.explore({"x": list(range(8))})
    env.run(simulate)
    """
)


def _start_writer(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path, Path]:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    path, marker, release = tmp_path / "live.h5", tmp_path / "marker", tmp_path / "release"
    process = subprocess.Popen([sys.executable, str(script), str(path), str(marker), str(release)])
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, "the writer exited early"
        assert time.monotonic() < deadline, "the writer never reached run 5"
        time.sleep(0.05)
    return process, path, release


def _fingerprint(*paths: Path) -> list[tuple[str, int, int, bytes]]:
    return [
        (p.name, p.stat().st_mtime_ns, p.stat().st_size, p.read_bytes())
        for p in paths
        if p.exists()
    ]


def test_a_running_study_is_read_without_writing(tmp_path: Path) -> None:
    process, path, release = _start_writer(tmp_path)
    try:
        done = pytraj("info", path, "--json")
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        assert data["journal"]["running"] is True
        assert f"process {process.pid} on host" in data["journal"]["writer"]
        (summary,) = data["trajectories"]
        # Runs 0-2 are in the file, 3-4 only in the journal, laid over it in memory.
        assert summary["runs"]["completed"] == 5
        assert data["journal"]["unflushed"] == {"live": 2}
        text = pytraj("info", path).stdout
        assert "in progress: a study is writing this file now" in text
        assert "2 run records come from the journal" in text
        runs = pytraj("runs", path)
        assert runs.returncode == 0
        assert "note: a study is writing this file now" in runs.stderr
        # Every looking subcommand works on it and shows the file and journal's runs.
        shown = pytraj("runs", path, "--json", "--where", "status == 'completed'")
        rows = json.loads(shown.stdout)["runs"]
        assert [(r["idx"], r["z"]) for r in rows] == [(i, 2 * i) for i in range(5)]
        tree = pytraj("tree", path)
        assert "z  per run: z int" in tree.stdout, tree.stderr
        show = pytraj("show", path, "results.z", "--run", "1")
        assert show.stdout == "2\n", show.stderr
        export = pytraj("export", path, "-o", tmp_path / "live.csv")
        assert export.returncode == 0, export.stderr
        assert len(list(csv.DictReader((tmp_path / "live.csv").open()))) == 8
        report = pytraj("report", path, "-o", tmp_path / "live.html")
        assert report.returncode == 0, report.stderr
        assert "Study live" in (tmp_path / "live.html").read_text()
    finally:
        release.write_text("go")
        process.wait(timeout=60)
    assert process.returncode == 0
    done = json.loads(pytraj("info", path, "--json").stdout)
    assert done["journal"] is None
    assert done["trajectories"][0]["runs"]["completed"] == 8


def test_a_crashed_study_is_read_with_its_journal_without_replaying_it(tmp_path: Path) -> None:
    process, path, _ = _start_writer(tmp_path)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    journal = path.with_name(path.name + ".journal")
    assert journal.exists()
    before = _fingerprint(path, journal, path.with_name(path.name + ".lock"))
    info = pytraj("info", path, "--json")
    assert info.returncode == 0, info.stderr
    data = json.loads(info.stdout)
    assert data["journal"]["running"] is False
    assert "not closed cleanly" in data["journal"]["note"]
    assert data["trajectories"][0]["runs"]["completed"] == 5
    unflushed = data["journal"]["unflushed"]["live"]
    assert unflushed == 2  # the writer flushed after run 2; runs 3-4 are in the journal
    runs = json.loads(pytraj("runs", path, "--json", "--where", "z is not null").stdout)
    assert [(r["idx"], r["z"]) for r in runs["runs"]] == [(i, 2 * i) for i in range(5)]
    for args in (
        ("info", path),
        ("tree", path),
        ("runs", path, "--where", "idx >= 0"),
        ("show", path, "results.z"),
        ("export", path, "-o", tmp_path / "out.csv"),
        ("report", path, "-o", tmp_path / "out.html"),
    ):
        done = pytraj(*args)
        assert done.returncode == 0, (args, done.stderr)
    assert _fingerprint(path, journal, path.with_name(path.name + ".lock")) == before
    # The same from Python: a read-only load lays the journal over the file, refuses writes.
    status = journal_status(path)
    assert status is not None
    assert not status.running
    assert status.unflushed.get("live", 0) == unflushed
    seen = pt.load(path, read_only=True)
    assert seen.find(status="completed") == list(range(5))
    seen.add_parameter("extra", 1)
    with pytest.raises(pt.errors.StorageError, match="opened read-only"):
        seen.store()
    seen.close()
    assert _fingerprint(path, journal, path.with_name(path.name + ".lock")) == before
    # A normal load replays the journal: every run the journal held is there.
    with pytest.warns(pt.errors.RecoveryWarning):
        traj = pt.load(path)
    assert traj.find(status="completed") == [0, 1, 2, 3, 4]
    traj.close()


def test_export_parquet_and_netcdf(study: Path, tmp_path: Path) -> None:
    import pandas as pd
    import xarray as xr

    parquet = tmp_path / "runs.parquet"
    assert pytraj("export", study, "-o", parquet).returncode == 0
    frame = pd.read_parquet(parquet)
    assert list(frame.index) == list(range(12))
    assert frame.loc[4, "z"] == 14.0
    assert frame["diag.steps"].dtype == pd.Int64Dtype()  # run 7 failed: nullable ints
    netcdf = tmp_path / "runs.nc"
    done = pytraj("export", study, "-o", netcdf)
    assert done.returncode == 0, done.stderr
    with xr.open_dataset(netcdf) as ds:
        assert ds.attrs["trajectory"] == "mult"
        assert float(ds.z.sel(idx=4)) == 14.0
        assert str(ds.status.sel(idx=7).values) == "failed"


@pytest.mark.parametrize(
    ("suffix", "module", "extra"), [(".parquet", "pyarrow", "parquet"), (".nc", "xarray", "xarray")]
)
def test_export_names_the_missing_extra(
    study: Path, tmp_path: Path, suffix: str, module: str, extra: str
) -> None:
    hide = (
        f"import sys; sys.modules[{module!r}] = None; from pytraj.cli import main; "
        f"sys.exit(main(['export', {str(study)!r}, '-o', {str(tmp_path / ('out' + suffix))!r}]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", hide], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1
    assert f"pip install 'pytraj-explore[{extra}]'" in done.stderr
    assert not (tmp_path / ("out" + suffix)).exists()
