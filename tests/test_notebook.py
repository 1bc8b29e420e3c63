"""Jupyter views: trajectories, groups, leaves, runs, one run, per-run views."""

from __future__ import annotations

import pytest

import pytraj as pt
from pytraj.testing.html import external_references, outline


@pytest.fixture
def traj() -> pt.Trajectory:
    traj = pt.Trajectory("nb", comment="a <notebook> study")
    traj.add_parameter("x", 0.0, comment="the first axis")
    traj.add_parameter("y", 0)
    traj.explore(pt.cartesian_product({"x": [float(i) for i in range(10)], "y": [1, 2, 3]}))
    for i in range(len(traj)):
        if i in (3, 4):
            continue
        with traj.start_run(i):
            traj.add_result("z", traj.x * traj.y)
    return traj


def test_trajectory_view_has_a_tree_and_a_run_bar(traj: pt.Trajectory) -> None:
    page = traj._repr_html_()
    parsed = outline(page)
    assert external_references(page) == []
    assert parsed.counts.get("script", 0) == 0
    assert parsed.counts["details"] >= 2  # collapsible
    text = " ".join(parsed.text)
    assert "30 runs" in text
    assert "28 completed" in text
    assert "2 pending" in text
    assert "a <notebook> study" in text  # escaped in the page, the text reads right
    assert "&lt;notebook&gt;" in page
    assert "pytraj-run-bar" in page
    assert "width:93.333%" in page  # 28 of 30 runs completed
    assert "explored: 30 values" in text


def test_views_read_in_light_and_dark_themes(traj: pt.Trajectory) -> None:
    for page in (traj._repr_html_(), traj.runs._repr_html_(), traj.results.z._repr_html_()):
        # No fixed text colour: text inherits the theme's; secondary text is dimmed
        # by opacity. Colours appear only on status marks and the bar.
        assert "color:#000" not in page.replace(" ", "")
        assert "color:black" not in page
        assert "background:#fff" not in page.replace(" ", "")
        assert "color:#666" not in page


def test_runs_view_is_cut_for_long_lists(traj: pt.Trajectory) -> None:
    page = traj.runs._repr_html_()
    parsed = outline(page)
    assert external_references(page) == []
    assert parsed.counts["tr"] == 1 + 20 + 1  # header, 10 first, gap, 10 last
    text = " ".join(parsed.text)
    assert "10 more" in text
    assert "29 completed" not in text
    assert "28 completed" in text
    assert "pending" in text


def test_one_run_and_a_per_run_view(traj: pt.Trajectory) -> None:
    run = outline(traj.runs[7]._repr_html_())
    text = " ".join(run.text)
    assert "run 7" in text
    assert "completed" in text
    assert "parameters.x" in text
    assert "2.0" in text
    view = outline(traj.results.z._repr_html_())
    text = " ".join(view.text)
    assert "28 runs have a value" in text
    assert "results.z" in text


def test_leaves_and_groups(traj: pt.Trajectory) -> None:
    leaf = traj.node("parameters.x")._repr_html_()
    parsed = outline(leaf)
    assert "parameters.x" in " ".join(parsed.text)
    assert "# the first axis" in " ".join(parsed.text)
    group = traj.parameters._repr_html_()
    assert external_references(group) == []
    assert "<details" in group


def test_big_trees_are_truncated() -> None:
    traj = pt.Trajectory("big")
    for i in range(700):
        traj.add_parameter(f"g{i // 30}.p{i}", i)
    page = traj._repr_html_()
    outline(page)
    assert "more</li>" in page
    assert page.count("<code>") <= 500
