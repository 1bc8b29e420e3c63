"""The HTML report: contents, self-containment, bounded size, and how it renders in
headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pytraj as pt
from pytraj.report import report_html, write_report
from pytraj.testing.html import external_references, outline

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def study(n_axes: int, filename: Path | None = None) -> pt.Trajectory:
    """A grid over 1 to 3 parameters; the run where every parameter is at its
    second value raises."""
    traj = pt.Trajectory(f"grid{n_axes}", filename=filename, comment="a <grid> study")
    axes = {
        "x": [float(v) for v in range(8)],
        "y": [10, 20, 30, 40, 50, 60, 70, 80],
        "k": ["a", "b"],
    }
    names = list(axes)[:n_axes]
    for name in names:
        traj.add_parameter(name, axes[name][0])
    traj.explore(pt.cartesian_product({name: axes[name] for name in names}))
    for i in range(len(traj)):
        try:
            with traj.start_run(i):
                if all(traj[name] == axes[name][1] for name in names):
                    raise ArithmeticError("diverged <here>")
                traj.add_result("z", traj.x * 2 + (traj.y if n_axes > 1 else 0))
                traj.add_result("stats", mean=float(i), n=i)
        except ArithmeticError:
            pass
    return traj


def test_report_contents_and_self_containment() -> None:
    traj = study(2)
    page = report_html(traj, source="study.h5")
    parsed = outline(page)
    assert external_references(page) == []
    text = " ".join(parsed.text)
    assert "Study grid2" in text
    assert "a <grid> study" in text
    assert "&lt;grid&gt;" in page
    assert "parameters.x" in text
    assert "0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0" in text
    assert "10, 20, 30, 40, 50, 60, 70, 80" in text
    counts = dict(re.findall(r"<tr><td class='text'>(\w+)</td><td>([\d,]+)</td></tr>", page))
    assert counts == {"runs": "64", "completed": "63", "failed": "1", "pending": "0"}
    # One plot per scalar result, a heatmap for an 8 x 8 grid, and the runtime histogram.
    plots = re.findall(r"data-result='([^']+)' data-kind='([^']+)'", page)
    assert plots == [("z", "heatmap"), ("stats.mean", "heatmap"), ("stats.n", "heatmap")]
    assert "data-kind='runtime'" in page
    assert parsed.counts["svg"] == 4
    # The failed run with its traceback (escaped).
    assert "run 9: ArithmeticError: diverged &lt;here&gt;" in page
    assert "Traceback (most recent call last)" in page
    # The run table's rows, as embedded JSON.
    data = json.loads(
        re.search(r"<script id='run-data' type='application/json'>(.*?)</script>", page).group(1)
    )
    assert data["columns"] == ["idx", "x", "y", "z", "stats.mean", "stats.n", "status", "runtime"]
    assert data["rows"][3][:7] == [3, 0.0, 40, 40.0, 3.0, 3, "completed"]
    assert data["rows"][9][3:7] == [None, None, None, "failed"]
    assert len(data["rows"]) == 64


@pytest.mark.parametrize(("axes", "kinds"), [(1, {"line"}), (3, {"small multiples"})])
def test_plot_kinds_follow_the_exploration(axes: int, kinds: set[str]) -> None:
    page = report_html(study(axes))
    found = set(re.findall(r"data-kind='([^']+)'", page)) - {"runtime"}
    assert found == kinds
    outline(page)
    assert external_references(page) == []


def test_a_line_per_value_of_the_axis_with_few_values() -> None:
    traj = pt.Trajectory("lines")
    traj.add_parameter("x", 0.0)
    traj.add_parameter("c", 0)
    traj.explore(pt.cartesian_product({"x": [0.0, 1.0, 2.0], "c": [1, 2, 3]}))
    for i in range(len(traj)):
        with traj.start_run(i):
            traj.add_result("z", traj.x * traj.c)
    page = report_html(traj)
    assert re.findall(r"data-kind='([^']+)'", page) == ["lines", "runtime"]
    assert "c=3" in page  # the legend
    # With few values on the first axis only, the lines follow the other one.
    traj = pt.Trajectory("curves")
    traj.add_parameter("damping", 0.1)
    traj.add_parameter("drive", 0.0)
    drives = [0.1 * i for i in range(20)]
    traj.explore(pt.cartesian_product({"damping": [0.1, 0.5], "drive": drives}))
    for i in range(len(traj)):
        with traj.start_run(i):
            traj.add_result("amplitude", 1 / (abs(1 - traj.drive**2) + 2 * traj.damping))
    page = report_html(traj)
    assert "amplitude against drive, a line per damping" in page
    assert "damping=0.5" in page


def test_the_table_is_bounded_and_says_so() -> None:
    traj = pt.Trajectory("many")
    traj.add_parameter("x", 0.0)
    traj.explore({"x": [float(v) for v in np.linspace(0, 1, 3000)]})
    for i in range(len(traj)):
        with traj.start_run(i):
            traj.add_result("z", np.sin(traj.x * 7))
    page = report_html(traj, max_rows=100)
    data = json.loads(re.search(r"type='application/json'>(.*?)</script>", page).group(1))
    assert len(data["rows"]) == 100
    assert "the first 100 of 3,000 runs" in page
    # 3,000 distinct x values: the line is binned, so the plot does not grow with runs.
    assert len(page) < 200_000


def test_pytraj_report_on_a_file(tmp_path: Path) -> None:
    study(2, tmp_path / "s.h5").close()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytraj",
            "report",
            str(tmp_path / "s.h5"),
            "-o",
            str(tmp_path / "r.html"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "wrote the report of 'grid2' (64 runs)" in done.stdout
    page = (tmp_path / "r.html").read_text()
    outline(page)
    assert external_references(page) == []
    assert not list(tmp_path.glob(".*partial"))


def test_write_report_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    target.write_text("old")
    assert write_report(study(1), target) == target
    assert target.read_text().startswith("<!DOCTYPE html>")


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--window-size=1200,3000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.slow
def test_chromium_draws_the_first_plot(tmp_path: Path) -> None:
    from matplotlib.image import imread

    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (.ci/run installs it)"
    page = report_html(study(2))
    report = tmp_path / "report.html"
    report.write_text(page)
    # The first plot's box, measured by the browser itself in a copy of the page.
    probe = tmp_path / "probe.html"
    measure = (
        "<script>const r = document.querySelector('.plot svg').getBoundingClientRect();"
        "document.body.setAttribute('data-plot-box', "
        "[r.left, r.top, r.width, r.height].map(Math.round).join(','));</script></body>"
    )
    probe.write_text(page.replace("</body>", measure))
    dom = _chromium("--dump-dom", probe.as_uri())
    box = re.search(r'data-plot-box="(\d+),(\d+),(\d+),(\d+)"', dom.stdout)
    assert box is not None, dom.stderr[-2000:]
    left, top, width, height = map(int, box.groups())
    assert width > 200
    assert height > 150
    shot = tmp_path / "shot.png"
    done = _chromium(f"--screenshot={shot}", report.as_uri())
    assert shot.exists(), done.stderr[-2000:]
    pixels = imread(shot)[..., :3]
    assert pixels.shape[0] >= top + height
    assert pixels.shape[1] >= left + width
    inside = pixels[top : top + height, left : left + width]
    assert inside.std() > 0.1  # a heatmap, axes and labels: far from a blank box
    assert len(np.unique(inside.reshape(-1, 3), axis=0)) > 50
    blank = pixels[-50:, -50:]  # the bottom right corner of the page holds nothing
    assert blank.std() < 0.01
