"""The HTML report of a study: ``pytraj report FILE -o report.html`` or :func:`write_report`.

One self-contained file: the study summary (parameters and explored ranges, run
counts, runtime, provenance), a plot of each scalar result against the explored
parameters, a histogram of runtimes, a sortable and filterable run table and the
failed runs with their tracebacks. Plots need matplotlib (``pip install
'pytraj-explore[report]'``). Its size is bounded: at most ``max_rows`` runs go into
the table and every plot is aggregated, so 100,000 runs give a few hundred KB.

>>> import pytraj as pt
>>> from pytraj.report import report_html
>>> traj = pt.Trajectory("demo")
>>> _ = traj.add_parameter("x", 1.0)
>>> traj.explore({"x": [1.0, 2.0]})
>>> for i in range(2):
...     with traj.start_run(i):
...         _ = traj.add_result("z", traj.x * 10)
>>> "z against x" in report_html(traj)
True
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pytraj.errors import OptionError
from pytraj.leaves import Parameter, PickleParameter
from pytraj.leaves.values import describe, short_repr
from pytraj.report.page import page, run_table, table
from pytraj.trajectory.notebook import run_bar_html

if TYPE_CHECKING:
    import pandas as pd

    from pytraj.trajectory.trajectory import Trajectory

__all__ = ["MAX_FAILURES", "MAX_ROWS", "report_html", "write_report"]

#: Runs embedded in the run table (the rest are counted, and the CLI gives them).
MAX_ROWS = 2000
#: Failed runs shown with their traceback.
MAX_FAILURES = 50
#: Results plotted (in tree order).
MAX_PLOTS = 24
_FIELDS = ("status", "runtime")


def _matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401  # only checks that the extra is installed
    except ImportError:
        raise OptionError(
            "the report draws its plots with matplotlib, which is not installed; install "
            "it with pip install 'pytraj-explore[report]'"
        ) from None


def _when(seconds: float) -> str:
    if not seconds:
        return "-"
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _seconds(value: float) -> str:
    if not np.isfinite(value):
        return "-"
    if value >= 3600:
        return f"{value / 3600:.2f} h"
    if value >= 60:
        return f"{value / 60:.2f} min"
    return f"{value:.3g} s"


def _parameters(traj: Trajectory) -> str:
    rows = []
    for leaf in traj.par.iter_leaves():
        if not isinstance(leaf, Parameter):
            continue
        if isinstance(leaf, PickleParameter):
            rows.append([leaf.full_name, "pickled (not read)", "", "", leaf.comment])
            continue
        explored = ""
        if leaf.is_explored:
            values = leaf.range
            try:
                distinct = list(dict.fromkeys(values))
            except TypeError:
                distinct = []
            if distinct and len(distinct) <= 10:
                explored = ", ".join(short_repr(v, width=16) for v in distinct)
            elif distinct:
                explored = f"{len(distinct):,} values"
                numbers = [v for v in distinct if isinstance(v, int | float | np.number)]
                if len(numbers) == len(distinct):
                    explored += f" in {short_repr(min(numbers))} .. {short_repr(max(numbers))}"
            else:
                explored = f"{len(values):,} values"
        rows.append(
            [
                leaf.full_name,
                describe(leaf.default),
                short_repr(leaf.default),
                explored,
                leaf.comment,
            ]
        )
    return table(["parameter", "type", "default", "explored", "comment"], rows, text_columns=5)


def _summary(traj: Trajectory, frame: pd.DataFrame, source: str) -> str:
    counts = traj.run_table.counts()
    runtime = frame["runtime"].to_numpy(dtype=float)
    ran = runtime[np.isfinite(runtime)]
    facts = [
        ["runs", f"{len(traj):,}"],
        *[[status, f"{counts[status]:,}"] for status in ("completed", "failed", "pending")],
        ["runtime, all runs", _seconds(float(ran.sum())) if len(ran) else "-"],
        ["runtime per run: mean", _seconds(float(ran.mean())) if len(ran) else "-"],
        ["runtime per run: median", _seconds(float(np.median(ran))) if len(ran) else "-"],
        ["runtime per run: max", _seconds(float(ran.max())) if len(ran) else "-"],
        ["created", _when(traj.created)],
    ]
    provenance = [
        [key, _when(value) if key in ("start", "finish") else short_repr(value, width=80)]
        for key, value in traj.provenance.items()
        if key != "previous_sessions"
    ]
    git = [row for row in provenance if "git" in row[0] or "commit" in row[0]]
    parts = [
        f"<h1>Study {_text(traj.name)}</h1>",
        f"<p class='dim'>{_text(source)}</p>" if source else "",
        f"<p>{_text(traj.comment)}</p>" if traj.comment else "",
        f"<div id='run-bar'>{run_bar_html(counts, len(traj))}</div>",
        "<h2>Summary</h2>",
        table(["", ""], facts),
        "<h2>Parameters</h2>",
        _parameters(traj),
    ]
    if git:
        parts += ["<h2>Code version</h2>", table(["", ""], git, text_columns=2)]
    if provenance:
        parts += ["<h2>Provenance</h2>", table(["", ""], provenance, text_columns=2)]
    return "".join(parts)


def _text(value: Any) -> str:
    import html

    return html.escape(str(value))


def _plots(frame: pd.DataFrame, explored: list[str], results: list[str]) -> str:
    from pytraj.report.plots import result_plot, runtime_histogram

    figures = []
    parameters = {name: frame[name].to_numpy() for name in explored}
    for name in results[:MAX_PLOTS]:
        column = frame[name]
        if column.dtype.kind not in "biuf" and str(column.dtype) not in ("Int64", "boolean"):
            continue
        values = column.to_numpy(dtype=float, na_value=np.nan)
        try:
            drawn = result_plot(name, parameters, values)
        except TypeError:  # parameter values that do not sort (mixed types): no axis
            drawn = None
        if drawn is not None:
            kind, svg = drawn
            figures.append(
                f"<div class='plot' data-result='{_text(name)}' data-kind='{kind}'>{svg}</div>"
            )
    histogram = runtime_histogram(frame["runtime"].to_numpy(dtype=float))
    parts = []
    if figures:
        parts += ["<h2>Results</h2>", f"<div class='plots'>{''.join(figures)}</div>"]
    elif results:
        parts.append("<h2>Results</h2><p class='dim'>No scalar result to plot.</p>")
    if histogram is not None:
        parts += [
            "<h2>Runtime</h2>",
            f"<div class='plots'><div class='plot' data-kind='runtime'>{histogram}</div></div>",
        ]
    return "".join(parts)


def _rows(frame: pd.DataFrame, limit: int) -> list[list[Any]]:
    import pandas as pd

    head = frame.iloc[:limit]
    columns: list[list[Any]] = [head.index.to_list()]
    for name in head.columns:
        column = head[name]
        if column.dtype.kind == "f":
            values = column.to_numpy()
            columns.append([float(f"{v:.6g}") if np.isfinite(v) else None for v in values.tolist()])
        else:
            columns.append([None if pd.isna(v) else _plain(v) for v in column.to_list()])
    return [list(row) for row in zip(*columns, strict=True)]


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return float(f"{value:.6g}") if np.isfinite(value) else None
    return str(value)


def _failures(traj: Trajectory) -> str:
    failed = traj.find(status="failed")
    if not failed:
        return ""
    parts = [f"<h2>Failed runs ({len(failed):,})</h2>"]
    for idx in failed[:MAX_FAILURES]:
        failure = traj.runs[idx].failure
        if failure is None:
            continue
        message = failure.message.splitlines()[0] if failure.message.strip() else ""
        if len(message) > 120:
            message = message[:117] + "..."
        parts.append(
            f"<details><summary>run {idx}: {_text(failure.exc_type)}: "
            f"{_text(message)}</summary>"
            f"<pre>{_text(failure.traceback)}</pre></details>"
        )
    if len(failed) > MAX_FAILURES:
        parts.append(
            f"<p class='dim'>{len(failed) - MAX_FAILURES:,} more failed runs: "
            "<code>pytraj runs FILE --status failed</code></p>"
        )
    return "".join(parts)


def report_html(traj: Trajectory, *, source: str = "", max_rows: int = MAX_ROWS) -> str:
    """The report of ``traj`` as one HTML document (see the module docstring)."""
    _matplotlib()
    frame = traj.to_dataframe(include=_FIELDS)
    # to_dataframe puts the explored parameters first.
    explored = list(frame.columns[: sum(1 for p in traj.par.iter_leaves() if _explored(p))])
    results = [c for c in frame.columns if c not in explored and c not in _FIELDS]
    now = datetime.datetime.now(datetime.UTC).timestamp()
    sections = [
        _summary(traj, frame, source),
        _plots(frame, explored, results),
        "<h2>Runs</h2>",
        run_table(["idx", *map(str, frame.columns)], _rows(frame, max_rows), len(frame)),
        _failures(traj),
        f"<p class='dim'>Written by pytraj on {_when(now)}.</p>",
    ]
    return page(f"pytraj report: {traj.name}", sections)


def _explored(leaf: Any) -> bool:
    return isinstance(leaf, Parameter) and leaf.is_explored


def write_report(
    traj: Trajectory,
    path: str | os.PathLike[str],
    *,
    source: str = "",
    max_rows: int = MAX_ROWS,
) -> Path:
    """Write the report of ``traj`` to ``path`` (written beside it, then renamed into
    place, so a half-written report never replaces a good one); return the path."""
    target = Path(path)
    text = report_html(traj, source=source, max_rows=max_rows)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, target)
    return target
