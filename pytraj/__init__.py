"""pytraj: explore the parameter space of simulations; keep a whole study in one HDF5 file.

>>> import pytraj as pt
>>> traj = pt.Trajectory("mult")
>>> _ = traj.add_parameter("x", 1.0)
>>> _ = traj.add_parameter("y", 1.0)
>>> traj.explore(pt.cartesian_product({"x": [1.0, 2.0], "y": [6.0, 7.0]}))
>>> len(traj)
4
"""

from pytraj import errors
from pytraj._version import __version__
from pytraj.errors import PytrajError, RunsFailedError
from pytraj.io import list_trajectories, load, merge_files, merge_folder
from pytraj.leaves import (
    Parameter,
    PickleParameter,
    PickleResult,
    Result,
    register_leaf_class,
)
from pytraj.run.environment import Environment
from pytraj.trajectory.spaces import ParameterSpace, cartesian_product
from pytraj.trajectory.trajectory import Trajectory
from pytraj.tree import Group, Link, Node

__all__ = [
    "Environment",
    "Group",
    "Link",
    "Node",
    "Parameter",
    "ParameterSpace",
    "PickleParameter",
    "PickleResult",
    "PytrajError",
    "Result",
    "RunsFailedError",
    "Trajectory",
    "__version__",
    "cartesian_product",
    "errors",
    "list_trajectories",
    "load",
    "merge_files",
    "merge_folder",
    "register_leaf_class",
]
