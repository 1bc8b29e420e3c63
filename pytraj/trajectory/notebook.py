"""Jupyter views (``_repr_html_``) of a trajectory, its runs, one run and a per-run view.

Self-contained HTML: no script, no stylesheet or font from anywhere, only inline
styles. Text inherits the notebook's colour and secondary text is dimmed by opacity,
so the views read in light and dark themes; the run bar uses mid-tone colours that
stand out on both. Long lists are cut (the first and last rows are shown).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from pytraj.leaves.parameter import Parameter
from pytraj.leaves.values import short_repr
from pytraj.storage.records import STATUS_NAMES
from pytraj.tree.render import render_html

if TYPE_CHECKING:
    from pytraj.trajectory.trajectory import Trajectory
    from pytraj.trajectory.views import PerRunView, RunView

__all__ = [
    "STATUS_COLOURS",
    "per_run_html",
    "run_bar_html",
    "run_html",
    "runs_html",
    "trajectory_html",
]

#: Readable on white and on near-black backgrounds alike.
STATUS_COLOURS = {
    "completed": "#3a9a5b",
    "failed": "#d9534f",
    "running": "#3b82c4",
    "pending": "#9a9a9a",
}
#: Rows of a run list shown in full; longer lists show the first and last half of it.
MAX_ROWS = 20
_TABLE = "border-collapse:collapse;font-size:0.9em"
_CELL = "padding:1px 8px;text-align:right;border-bottom:1px solid rgba(128,128,128,0.3)"
_DIM = "opacity:0.7"


def _e(value: Any) -> str:
    return html.escape(str(value))


def run_bar_html(counts: dict[str, int], total: int) -> str:
    """A small stacked bar of run counts by status, with the counts as text."""
    parts = []
    legend = []
    for status, colour in STATUS_COLOURS.items():
        count = counts.get(status, 0)
        if not count:
            continue
        width = 100.0 * count / max(total, 1)
        parts.append(
            f"<span title='{count} {status}' style='display:inline-block;height:100%;"
            f"width:{width:.3f}%;background:{colour}'></span>"
        )
        legend.append(
            f"<span style='color:{colour};font-weight:bold'>&#9632;</span> {count:,} {status}"
        )
    bar = (
        "<div class='pytraj-run-bar' style='display:flex;width:16em;height:0.7em;"
        "border:1px solid rgba(128,128,128,0.5);border-radius:2px;overflow:hidden;"
        f"margin:2px 0'>{''.join(parts)}</div>"
    )
    return f"<div>{bar}<span style='font-size:0.9em'>{' &middot; '.join(legend)}</span></div>"


def trajectory_html(traj: Trajectory) -> str:
    """The tree (collapsible) under a header with the run summary bar."""
    counts = traj.run_table.counts()
    header = (
        f"<div style='margin-bottom:4px'><b>{_e(traj.name)}</b> &mdash; {len(traj):,} runs"
        + (f" <span style='{_DIM}'>{_e(traj.comment)}</span>" if traj.comment else "")
        + run_bar_html(counts, len(traj))
        + "</div>"
    )
    return header + render_html(traj)


def _shown(n: int) -> list[int | None]:
    """Row positions to show for ``n`` rows: all, or first and last halves with a gap."""
    if n <= MAX_ROWS:
        return list(range(n))
    half = MAX_ROWS // 2
    return [*range(half), None, *range(n - half, n)]


def _table(header: list[str], rows: list[list[str] | None], skipped: int) -> str:
    head = "".join(f"<th style='{_CELL}'>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        if row is None:
            body.append(
                f"<tr><td colspan='{len(header)}' style='{_CELL};text-align:center;{_DIM}'>"
                f"&hellip; {skipped:,} more &hellip;</td></tr>"
            )
        else:
            body.append("<tr>" + "".join(f"<td style='{_CELL}'>{c}</td>" for c in row) + "</tr>")
    return f"<table style='{_TABLE}'><tr>{head}</tr>{''.join(body)}</table>"


def _status_cell(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "inherit")
    return f"<span style='color:{colour}'>&#9632;</span> {_e(status)}"


def runs_html(traj: Trajectory) -> str:
    """The runs as a table of index, status and explored parameters (cut when long)."""
    n = len(traj)
    explored = [p for p in traj.par.iter_leaves() if isinstance(p, Parameter) and p.is_explored]
    names = [p.name for p in explored]
    rows: list[list[str] | None] = []
    statuses = traj.run_table.rows["status"]
    for position in _shown(n):
        if position is None:
            rows.append(None)
            continue
        status = STATUS_NAMES[int(statuses[position])]
        cells = [str(position), _status_cell(status)]
        cells += [_e(short_repr(p.value_at(position), width=20)) for p in explored]
        rows.append(cells)
    header = f"<div><b>runs of {_e(traj.name)}</b>" + run_bar_html(traj.run_table.counts(), n)
    return header + _table(["idx", "status", *names], rows, n - MAX_ROWS) + "</div>"


def run_html(run: RunView) -> str:
    """One run: status, parameters and its scalar results."""
    lines = [
        f"<div><b>run {run.idx}</b> {_status_cell(run.status)} "
        f"<span style='{_DIM}'>point {run.point_id[:12]}&hellip;</span>"
    ]
    values = run.parameters_dict()
    rows: list[list[str] | None] = [[_e(k), _e(short_repr(v, width=40))] for k, v in values.items()]
    failure = run.failure
    if failure is not None:
        rows.append(["failure", _e(f"{failure.exc_type}: {failure.message}")])
    lines.append(_table(["name", "value"], rows, 0))
    return "".join(lines) + "</div>"


def per_run_html(view: PerRunView) -> str:
    """How many runs have a value, and the first values."""
    runs = view.runs
    rows: list[list[str] | None] = []
    for position in _shown(len(runs)):
        if position is None:
            rows.append(None)
            continue
        idx = int(runs[position])
        rows.append([str(idx), _e(short_repr(view[idx], width=60))])
    head = (
        f"<div><b>{_e(view.name)}</b> <span style='{_DIM}'>per run: {len(runs):,} runs "
        "have a value</span>"
    )
    return head + _table(["idx", "value"], rows, len(runs) - MAX_ROWS) + "</div>"
