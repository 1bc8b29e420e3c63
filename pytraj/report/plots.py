"""The report's plots, drawn with matplotlib (optional extra ``report``) as inline SVG.

Every plot is aggregated so that its size does not grow with the number of runs: line
plots show one point per distinct parameter value (the mean, with the min-max range
as a band when several runs share it), grids become images (a heatmap is one embedded
raster, not a path per cell), scattered explorations become binned means.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["MAX_LINES", "MAX_PANELS", "result_plot", "runtime_histogram", "svg_of"]

#: Up to this many values of the second parameter, a 2-D grid is a line per value.
MAX_LINES = 6
#: Small multiples show at most this many panels (values of the third parameter).
MAX_PANELS = 12
#: Beyond this many distinct values a 1-D plot bins its x axis.
MAX_POINTS = 400


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    return Figure(figsize=(width, height), layout="constrained")


def svg_of(figure: Any) -> str:
    """The figure as an ``<svg>`` element to inline (no XML prolog, no metadata)."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "pytraj"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = re.sub(r"<\?xml[^>]*\?>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.DOTALL)
    return text.strip()


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and each value's position among them."""
    distinct, codes = np.unique(values, return_inverse=True)
    return distinct, codes.reshape(-1)


def _ticks(axis: Any, distinct: np.ndarray, which: str) -> None:
    """Label an index axis with (at most ~8) parameter values."""
    step = max(1, len(distinct) // 8)
    positions = np.arange(0, len(distinct), step)
    labels = [f"{v:.4g}" if isinstance(v, float | np.floating) else str(v) for v in distinct]
    setter = axis.set_xticks if which == "x" else axis.set_yticks
    setter(positions, [labels[p] for p in positions])


def _mean_grid(
    a: np.ndarray, b: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of ``values`` per (a, b) cell: distinct a, distinct b, grid[b, a] (NaN: none)."""
    da, ca = _codes(a)
    db, cb = _codes(b)
    sums = np.zeros((len(db), len(da)))
    counts = np.zeros((len(db), len(da)))
    finite = np.isfinite(values)
    np.add.at(sums, (cb[finite], ca[finite]), values[finite])
    np.add.at(counts, (cb[finite], ca[finite]), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return da, db, sums / counts


def _line(axis: Any, x: np.ndarray, y: np.ndarray, label: str | None = None) -> None:
    finite = np.isfinite(y)
    x, y = x[finite], y[finite]
    if not len(x):
        return
    if x.dtype.kind in "iuf" and len(np.unique(x)) > MAX_POINTS:
        edges = np.linspace(x.min(), x.max(), 101)
        which = np.clip(np.digitize(x, edges) - 1, 0, 99)
        counts = np.bincount(which, minlength=100)
        means = np.bincount(which, weights=y, minlength=100) / np.maximum(counts, 1)
        centres = (edges[:-1] + edges[1:]) / 2
        keep = counts > 0
        axis.plot(centres[keep], means[keep], marker=".", label=label)
        return
    distinct, codes = _codes(x)
    counts = np.bincount(codes, minlength=len(distinct))
    means = np.bincount(codes, weights=y, minlength=len(distinct)) / counts
    positions: Any = distinct if distinct.dtype.kind in "iuf" else np.arange(len(distinct))
    axis.plot(positions, means, marker="o", markersize=3, label=label)
    if counts.max() > 1:
        low = np.full(len(distinct), np.inf)
        high = np.full(len(distinct), -np.inf)
        np.minimum.at(low, codes, y)
        np.maximum.at(high, codes, y)
        axis.fill_between(positions, low, high, alpha=0.2)
    if distinct.dtype.kind not in "iuf":
        _ticks(axis, distinct, "x")


def _heatmap(axis: Any, a: np.ndarray, b: np.ndarray, values: np.ndarray, **scale: Any) -> Any:
    da, db, grid = _mean_grid(a, b, values)
    image = axis.imshow(grid, origin="lower", aspect="auto", interpolation="nearest", **scale)
    _ticks(axis, da, "x")
    _ticks(axis, db, "y")
    return image


def _is_grid(columns: Sequence[np.ndarray]) -> bool:
    sizes = [len(np.unique(c)) for c in columns]
    return int(np.prod(sizes)) <= 4 * len(columns[0]) and max(sizes) <= 2000


def result_plot(
    name: str, parameters: dict[str, np.ndarray], values: np.ndarray
) -> tuple[str, str] | None:
    """The plot of one scalar result against the explored parameters.

    Returns ``(kind, svg)`` (kind: "line", "lines", "heatmap", "small multiples",
    "binned"), or None when there is nothing to plot.
    """
    values = np.asarray(values, dtype=float)
    if not np.isfinite(values).any() or not parameters:
        return None
    names = list(parameters)
    columns = [parameters[p] for p in names]
    if len(names) == 1:
        figure = _figure(5.5, 3.2)
        axis = figure.add_subplot()
        _line(axis, columns[0], values)
        axis.set_xlabel(names[0])
        axis.set_ylabel(name)
        axis.set_title(f"{name} against {names[0]}")
        return "line", svg_of(figure)
    if not _is_grid(columns[:2]):
        figure = _figure(5.5, 4.0)
        axis = figure.add_subplot()
        numeric = all(c.dtype.kind in "iuf" for c in columns[:2])
        x, y = (
            (columns[0], columns[1]) if numeric else (_codes(columns[0])[1], _codes(columns[1])[1])
        )
        finite = np.isfinite(values)
        cells = axis.hexbin(
            x[finite], y[finite], C=values[finite], gridsize=30, reduce_C_function=np.mean
        )
        figure.colorbar(cells, ax=axis, label=f"mean {name}")
        axis.set_xlabel(names[0])
        axis.set_ylabel(names[1])
        axis.set_title(f"{name}: binned means")
        return "binned", svg_of(figure)
    few = [len(np.unique(c)) <= MAX_LINES for c in columns]
    if len(names) == 2 and any(few):
        # A line per value of the parameter with few values (the second when both have
        # few), against the other one: resonance curves, dose responses ...
        along, per = (1, 0) if few[0] and not few[1] else (0, 1)
        figure = _figure(5.5, 3.2)
        axis = figure.add_subplot()
        for value in np.unique(columns[per]):
            chosen = columns[per] == value
            _line(axis, columns[along][chosen], values[chosen], label=f"{names[per]}={value}")
        axis.legend(fontsize="small")
        axis.set_xlabel(names[along])
        axis.set_ylabel(name)
        axis.set_title(f"{name} against {names[along]}, a line per {names[per]}")
        return "lines", svg_of(figure)
    if len(names) == 2:
        figure = _figure(5.5, 4.0)
        axis = figure.add_subplot()
        image = _heatmap(axis, columns[0], columns[1], values)
        figure.colorbar(image, ax=axis, label=name)
        axis.set_xlabel(names[0])
        axis.set_ylabel(names[1])
        axis.set_title(f"{name} over {names[0]} and {names[1]}")
        return "heatmap", svg_of(figure)
    # Higher: small multiples, one heatmap over the first two parameters per value of
    # the third (the others averaged), on one colour scale.
    third = np.unique(columns[2])
    if len(third) > MAX_PANELS:
        third = third[np.linspace(0, len(third) - 1, MAX_PANELS).round().astype(int)]
    cols = min(4, len(third))
    rows = -(-len(third) // cols)
    figure = _figure(2.6 * cols + 1, 2.2 * rows + 0.6)
    finite = values[np.isfinite(values)]
    scale = {"vmin": float(finite.min()), "vmax": float(finite.max())}
    image = None
    for position, value in enumerate(third):
        axis = figure.add_subplot(rows, cols, position + 1)
        chosen = columns[2] == value
        image = _heatmap(axis, columns[0][chosen], columns[1][chosen], values[chosen], **scale)
        axis.set_title(f"{names[2]}={value}", fontsize="small")
        axis.set_xlabel(names[0], fontsize="small")
        axis.set_ylabel(names[1], fontsize="small")
    figure.colorbar(image, ax=figure.axes, label=name)
    figure.suptitle(f"{name} over {names[0]} and {names[1]}, per {names[2]}")
    return "small multiples", svg_of(figure)


def runtime_histogram(runtimes: np.ndarray) -> str | None:
    """A histogram of the runtimes of the runs that ran (seconds)."""
    runtimes = runtimes[np.isfinite(runtimes)]
    if not len(runtimes):
        return None
    figure = _figure(5.5, 2.8)
    axis = figure.add_subplot()
    axis.hist(runtimes, bins=50)
    axis.set_xlabel("runtime (s)")
    axis.set_ylabel("runs")
    axis.set_title(f"runtime of {len(runtimes):,} runs")
    return svg_of(figure)
