"""``python -m benchmarks.compare``: floor, pytraj, pypet 0.6.1 and psweep in one run.

pypet 0.6.1 needs numpy < 2, so pypet and psweep run from ``.venv-compare`` (created
here on first use with :data:`COMPARE_PINS`; psweep falls back to a venv of its own,
``.venv-compare-psweep``, if the two ever stop installing together). The floor and
pytraj run from the interpreter that runs this module.

pypet's cost grows with N (about N^1.9 in total), so it runs at 1,000 runs with
repetitions and at 10,000 once; a cell predicted or measured beyond the per-cell
budget is cut and the table says so. By default this runs N = 1,000 and 10,000
(``make bench`` covers 100,000 for the floor and pytraj); ``--sizes`` changes it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.__main__ import build_parser, plan_from, run_plan
from benchmarks.harness import REPO_ROOT

__all__ = ["COMPARE_PINS", "PSWEEP_PINS", "PYPET_PINS", "ensure_venv", "main"]

PYPET_PINS = ("pypet==0.6.1", "numpy<2", "pandas<2.3", "tables<3.10")
PSWEEP_PINS = ("psweep==0.16.*",)
COMPARE_PINS = PYPET_PINS + PSWEEP_PINS
VENV = REPO_ROOT / ".venv-compare"
PSWEEP_VENV = REPO_ROOT / ".venv-compare-psweep"
#: pypet runs each cell once from this N on (a 10,000-run pypet study takes minutes).
PYPET_SINGLE_REP_FROM = 10_000


def ensure_venv(folder: Path, pins: Sequence[str], imports: Sequence[str]) -> Path | None:
    """Create ``folder`` as a venv holding ``pins`` (once) and return its python.

    The pins are recorded in ``folder/.installed``; a venv with other pins is
    reinstalled. Returns None when installing or importing fails (the output is
    printed).
    """
    python = folder / "bin" / "python"
    marker = folder / ".installed"
    wanted = "\n".join(pins)
    if marker.exists() and marker.read_text() == wanted and python.exists():
        return python
    if not python.exists():
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(folder)], check=True)
    steps = [
        [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        [str(python), "-m", "pip", "install", "--quiet", *pins],
        [str(python), "-c", "; ".join(f"import {name}" for name in imports)],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{' '.join(step[:4])} ... failed:\n{done.stdout}{done.stderr}", file=sys.stderr)
            return None
    marker.write_text(wanted)
    return python


def _interpreters() -> dict[str, str]:
    """System -> interpreter for pypet and psweep (missing when they cannot install)."""
    together = ensure_venv(VENV, COMPARE_PINS, ("pypet", "psweep", "tables"))
    if together is not None:
        return {"pypet": str(together), "psweep": str(together)}
    found: dict[str, str] = {}
    alone = ensure_venv(VENV, PYPET_PINS, ("pypet", "tables"))
    if alone is not None:
        found["pypet"] = str(alone)
    psweep = ensure_venv(PSWEEP_VENV, (*PSWEEP_PINS, "tables"), ("psweep", "tables"))
    if psweep is not None:
        found["psweep"] = str(psweep)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Set up the comparison venv(s), run every system side by side, save the tables."""
    parser = build_parser("python -m benchmarks.compare")
    parser.set_defaults(sizes=[1_000, 10_000])
    args = parser.parse_args(argv)
    pythons = _interpreters()
    wanted = args.systems or ["floor", "pytraj", "pypet", "psweep"]
    systems = [s for s in wanted if s in {"floor", "pytraj"} or s in pythons]
    missing = {"pypet", "psweep"} & set(wanted) - set(pythons)
    if missing:
        print(f"not compared (could not install): {', '.join(sorted(missing))}", file=sys.stderr)
    plan = plan_from(args, systems)
    plan.pythons.update(pythons)
    plan.single_rep_from["pypet"] = PYPET_SINGLE_REP_FROM
    plan.growth_prior["pypet"] = 1.5
    folder = None if args.smoke or args.no_save else args.results
    results = run_plan(plan, folder, tag=args.tag or "compare")
    return 1 if any(r.status == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
