"""Shared test configuration."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

# CI machines are shared and slow: no deadline, a moderate number of examples. In CI
# the examples are derandomized, so a run's outcome depends on the code alone; local
# runs keep exploring new examples. The explain phase is left out: it makes reporting a
# failure take minutes, and the shrunk example is what we need.
settings.register_profile(
    "pytraj",
    deadline=None,
    max_examples=int(os.environ.get("PYTRAJ_HYPOTHESIS_EXAMPLES", "60")),
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=bool(os.environ.get("CI")),
    print_blob=True,
    phases=[phase for phase in Phase if phase is not Phase.explain],
)
settings.load_profile("pytraj")
