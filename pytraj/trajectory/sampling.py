"""Checks and engines shared by the sampling constructors of ParameterSpace."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from pytraj.errors import ExplorationError

__all__ = ["Count", "Seed", "check_sampling_input", "qmc_engine"]

Seed = int | np.integer[Any] | np.random.Generator
Count = int | np.integer[Any]


def check_sampling_input(
    bounds: Mapping[str, tuple[float, float]], n: Count, seed: Seed
) -> tuple[np.random.Generator, dict[str, tuple[float, float]], int]:
    """Validate sampling arguments; return the generator, float bounds and the count."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ExplorationError(f"the number of points n must be a positive int, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer | np.random.Generator):
        raise ExplorationError(
            f"seed must be an int or a numpy.random.Generator, got {seed!r}; a fixed seed makes "
            "the sample, and so the study, reproducible"
        )
    if not isinstance(bounds, Mapping) or not bounds:
        raise ExplorationError("bounds must be a non-empty mapping of name -> (low, high)")
    checked: dict[str, tuple[float, float]] = {}
    for name, pair in bounds.items():
        try:
            low, high = (float(limit) for limit in pair)
        except (TypeError, ValueError):
            raise ExplorationError(
                f"the bounds of {name!r} must be a pair of numbers (low, high), got {pair!r}"
            ) from None
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ExplorationError(f"the bounds of {name!r} must be finite, got {pair!r}")
        if not low < high:
            raise ExplorationError(
                f"the bounds of {name!r} need low < high, got ({low!r}, {high!r})"
            )
        checked[name] = (low, high)
    return np.random.default_rng(seed), checked, int(n)


def qmc_engine(engine: Any, dimensions: int, rng: np.random.Generator) -> Any:
    """A scrambled scipy.stats.qmc engine seeded from ``rng`` (any supported scipy)."""
    try:
        return engine(dimensions, scramble=True, rng=rng)
    except TypeError:  # scipy < 1.15 names the argument `seed`
        return engine(dimensions, scramble=True, seed=rng)
