"""pypet's ways to call a simulation beyond ``env.run``: run_map, pipeline, post-processing.

- ``env.run_map(func, *iterables)``: run i calls ``func(traj, a[i], b[i], ...)``;
- ``env.pipeline(func)``: ``func(traj)`` builds the study and returns the run function
  (and optionally a post-processing function), each with its arguments;
- ``env.add_postprocessing(func, *args, **kwargs)``: after the runs,
  ``func(traj, results, *args, **kwargs)`` runs in the main process; new points it
  returns are explored and run, and it is called again (adaptive search).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytraj.errors import ExplorationError, InvalidValueError, RunError
from pytraj.trajectory.exploration import parameters_of, resolve_parameter
from pytraj.trajectory.pointid import point_id
from pytraj.trajectory.spaces import as_columns
from pytraj.trajectory.trajectory import Trajectory

__all__ = ["Call", "map_arguments", "new_points", "parse_pipeline"]


@dataclass(slots=True)
class Call:
    """A function with the extra arguments it is called with."""

    func: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def map_arguments(n_runs: int, iterables: tuple[Iterable[Any], ...]) -> list[tuple[Any, ...]]:
    """Per-run positional arguments of ``run_map``: element i of each iterable for run i."""
    columns = []
    for position, iterable in enumerate(iterables):
        values = list(iterable)
        if len(values) != n_runs:
            raise InvalidValueError(
                f"run_map: iterable {position} has {len(values)} elements but the trajectory "
                f"has {n_runs} runs; give one element per run"
            )
        columns.append(values)
    return list(zip(*columns, strict=True)) if columns else [() for _ in range(n_runs)]


def _as_call(spec: Any, what: str) -> Call:
    if callable(spec):
        return Call(spec)
    if isinstance(spec, tuple) and spec and callable(spec[0]) and len(spec) <= 3:
        args = tuple(spec[1]) if len(spec) > 1 else ()
        kwargs = dict(spec[2]) if len(spec) > 2 else {}
        return Call(spec[0], args, kwargs)
    raise RunError(
        f"the pipeline returned {spec!r} as the {what}; return a function, or a tuple "
        "(function, args, kwargs)"
    )


def _is_call_tuple(spec: Any) -> bool:
    return isinstance(spec, tuple) and bool(spec) and callable(spec[0])


def parse_pipeline(returned: Any) -> tuple[Call, Call | None]:
    """Read what a pipeline function returned.

    Accepted: ``run_func``; ``(run_func, args)``; ``(run_func, args, kwargs)``; or a pair
    ``(run_part, post_part)`` where each part is a function or a tuple
    ``(function, args, kwargs)`` (``post_part`` may be None).
    """
    if callable(returned):
        return Call(returned), None
    if isinstance(returned, tuple) and len(returned) == 2:
        first, second = returned
        if _is_call_tuple(first) or callable(second) or _is_call_tuple(second):
            post = None if second is None else _as_call(second, "post-processing")
            return _as_call(first, "run function"), post
    return _as_call(returned, "run function"), None


def new_points(traj: Trajectory, space: Mapping[str, Any] | Any) -> dict[str, list[Any]]:
    """The points of ``space`` that the trajectory does not hold yet (each once).

    Post-processing may propose points that ran already (refining a grid around the
    best point meets old grid points): those are dropped instead of running twice.
    """
    columns = as_columns(space)
    if not columns:
        return {}
    coerced: dict[str, list[Any]] = {}
    for name, values in columns.items():
        parameter = resolve_parameter(traj, name)
        coerced[parameter.full_name] = parameter.coerce_range(values)
    parameters = parameters_of(traj)
    missing = [p.full_name for p in parameters if p.is_explored and p.full_name not in coerced]
    if missing:
        raise ExplorationError(
            "post-processing must give values for every explored parameter; missing: "
            + ", ".join(missing)
        )
    known = set(traj.run_table.point_ids())  # 16 bytes each, trailing NULs included
    fixed = {p.full_name: p.default for p in parameters if p.full_name not in coerced}
    n = len(next(iter(coerced.values())))
    keep = []
    for position in range(n):
        point = dict(fixed)
        point.update({name: values[position] for name, values in coerced.items()})
        pid = point_id(point)
        if pid not in known:
            known.add(pid)
            keep.append(position)
    return {name: [values[i] for i in keep] for name, values in coerced.items()} if keep else {}
