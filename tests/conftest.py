"""Shared test configuration."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# CI machines are shared and slow: no deadline, a moderate number of examples.
settings.register_profile(
    "pytraj",
    deadline=None,
    max_examples=int(os.environ.get("PYTRAJ_HYPOTHESIS_EXAMPLES", "60")),
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("pytraj")
