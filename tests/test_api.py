"""The public API: explicit __all__, fast import."""

from __future__ import annotations

import subprocess
import sys

import pytraj


def test_all_is_exactly_the_public_names() -> None:
    public = {name for name in vars(pytraj) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(pytraj, name)).__name__ == "module"}
    assert set(pytraj.__all__) == (public - modules) | {"errors", "__version__"}
    for name in pytraj.__all__:
        assert hasattr(pytraj, name), name


def test_import_does_not_load_heavy_dependencies() -> None:
    code = (
        "import sys, pytraj; "
        "print(sorted(m for m in ('pandas', 'tables', 'scipy', 'git', 'tqdm') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
