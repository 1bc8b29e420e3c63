"""The corruption sweep of ``make test-crash``: several hundred damaged files.

The same cases as ``tests/test_corruption.py``, many more of them: four flips in every
chunk, contiguous block and object header, a single-bit flip in each, and cuts at 64
offsets, on files with and without fletcher32 checksums. Run with ``pytest -m crash -s``
to see the outcome counts.
"""

from __future__ import annotations

from pathlib import Path

import corruption
import numpy as np
import pytest
from test_corruption import _assert_clean, _report, pristine, study

pytestmark = pytest.mark.crash

__all__ = ["pristine", "study"]  # fixtures shared with test_corruption.py


def test_sweep_of_flips_and_truncations(study: Path, pristine: str, tmp_path: Path) -> None:
    """Every region four times, single-bit flips too, and cuts at 64 offsets."""
    cases = corruption.flip_cases(study, tmp_path, 4, seed=2026)
    rng = np.random.default_rng(7)
    for k, region in enumerate(corruption.regions(study)):
        target = tmp_path / f"bit-{k:03d}.h5"
        offset = region.offset + int(rng.integers(0, max(region.size, 1)))
        corruption.flip(study, target, offset, mask=1 << int(rng.integers(0, 8)))
        cases[target] = region
    size = study.stat().st_size
    for offset in np.linspace(0, size - 1, 64).astype(int):
        target = tmp_path / f"cut-{offset}.h5"
        corruption.truncate(study, target, int(offset))
        cases[target] = corruption.Region("truncation", "/", int(offset), 0, False)
    outcomes = corruption.read_files(list(cases), pristine, timeout=600.0)
    _report(f"sweep of {study.parent.name}", outcomes)
    _assert_clean(outcomes, cases)
