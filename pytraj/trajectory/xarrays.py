"""``traj.to_xarray()``: the study as an ``xarray.Dataset`` (optional extra ``xarray``).

A study explored as a cartesian product becomes a grid: one dimension per explored
parameter (its sorted distinct values as coordinates), so that
``ds.z.sel(x=2.0).plot()`` works; array results keep their own dimensions after them
(``z_dim_0`` ...). Any other exploration gives a ``run`` dimension with the explored
parameters as coordinates along it. Runs without a value hold NaN (ints and bools
then become float, as xarray has no missing integers) or None.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from pytraj.errors import OptionError
from pytraj.leaves.parameter import Parameter
from pytraj.trajectory.frames import wanted_items
from pytraj.trajectory.query import as_array, short_names
from pytraj.trajectory.views import PerRunView

if TYPE_CHECKING:
    import xarray as xr

    from pytraj.trajectory.trajectory import Trajectory

__all__ = ["grid_of", "to_xarray"]


def _import_xarray() -> Any:
    try:
        import xarray
    except ImportError:
        raise OptionError(
            "to_xarray needs xarray, which is not installed; install it with "
            "pip install 'pytraj-explore[xarray]'"
        ) from None
    return xarray


def grid_of(columns: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    """When the explored values form a full cartesian product: the sorted coordinates
    per parameter and each run's flat position in the grid; else None."""
    if not columns:
        return None
    coordinates: dict[str, np.ndarray] = {}
    codes = []
    for name, values in columns.items():
        if values.dtype == object:
            return None  # mixed or container values: not a grid axis
        coordinate, code = np.unique(values, return_inverse=True)
        coordinates[name] = coordinate
        codes.append(code.reshape(-1))
    shape = tuple(len(c) for c in coordinates.values())
    n = len(codes[0])
    if int(np.prod(shape)) != n:
        return None
    flat = np.ravel_multi_index(tuple(codes), shape)
    if len(np.unique(flat)) != n:
        return None
    return coordinates, flat


def _values(view: PerRunView, n: int) -> np.ndarray | None:
    """One entry per run (NaN or None where missing), or None for ragged values."""
    present = len(view.runs)
    if present == 0:
        return None
    probe = view[int(view.runs[0])]
    numeric = isinstance(probe, int | float | bool | np.number | np.bool_) or (
        isinstance(probe, np.ndarray) and probe.dtype.kind in "biufc"
    )
    fill: Any = np.nan if numeric else None
    values = view.to_numpy() if present == n else view.to_numpy(fill=fill)
    if values.dtype == object and values.ndim == 1 and isinstance(probe, np.ndarray):
        return None  # arrays of different shapes: no common dimensions
    if values.dtype == object and values.ndim == 1:
        if all(v is None or isinstance(v, str | np.str_) for v in values):
            return values
        if all(v is None or isinstance(v, int | float | bool | np.number) for v in values):
            return np.array([np.nan if v is None else v for v in values], dtype=float)
        return None
    return values


def to_xarray(traj: Trajectory, results: Iterable[str] | None = None) -> xr.Dataset:
    """The study as an ``xarray.Dataset`` (see :meth:`Trajectory.to_xarray`)."""
    xarray = _import_xarray()
    n = len(traj)
    explored = {
        leaf.full_name: as_array(leaf.range)
        for leaf in traj.par.iter_leaves()
        if isinstance(leaf, Parameter) and leaf.is_explored
    }
    items = wanted_items(traj, results)
    names = short_names([*explored, *(name for name, _, _, _ in items)])
    grid = grid_of(explored)
    data_vars: dict[str, Any] = {}
    for name, leaf, item, named in items:
        values = _values(PerRunView(traj, leaf, item), n)
        if values is None:
            if named:
                raise OptionError(
                    f"{name!r} holds values of different shapes or kinds; an xarray variable "
                    f"needs one shape (read them with traj.get_from_runs({name!r}))"
                )
            continue
        short = names[name]
        extra = [f"{short}_dim_{k}" for k in range(values.ndim - 1)]
        if grid is None:
            data_vars[short] = (["run", *extra], values)
            continue
        coordinates, flat = grid
        shape = tuple(len(c) for c in coordinates.values())
        if values.dtype.kind in "iub" and len(flat) < int(np.prod(shape)):
            values = values.astype(float)  # pragma: no cover - a full grid has every cell
        cube = np.empty((int(np.prod(shape)), *values.shape[1:]), dtype=values.dtype)
        cube[flat] = values
        dims = [names[p] for p in coordinates]
        data_vars[short] = ([*dims, *extra], cube.reshape(*shape, *values.shape[1:]))
    if grid is None:
        coords: dict[str, Any] = {"run": np.arange(n)}
        coords.update({names[p]: ("run", values) for p, values in explored.items()})
    else:
        coords = {names[p]: values for p, values in grid[0].items()}
    dataset = xarray.Dataset(data_vars, coords=coords)
    dataset.attrs["trajectory"] = traj.name
    if traj.comment:
        dataset.attrs["comment"] = traj.comment
    for parameter in traj.par.iter_leaves():
        if parameter.full_name in explored and parameter.comment:
            dataset[names[parameter.full_name]].attrs["comment"] = parameter.comment
    return dataset
