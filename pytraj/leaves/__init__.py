"""Leaves of the tree: parameters and results, value checks and the leaf registry."""

from pytraj.leaves.base import Leaf, leaf_class, register_leaf_class, registered_leaf_classes
from pytraj.leaves.parameter import Parameter, PickleParameter
from pytraj.leaves.result import PickleResult, Result
from pytraj.leaves.values import check_storable
from pytraj.tree.annotations import set_value_validator


def _check_annotation(value: object, where: str) -> None:
    check_storable(value, where=where)


set_value_validator(_check_annotation)

__all__ = [
    "Leaf",
    "Parameter",
    "PickleParameter",
    "PickleResult",
    "Result",
    "leaf_class",
    "register_leaf_class",
    "registered_leaf_classes",
]
