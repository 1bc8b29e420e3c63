"""Adopting the stored study: ``Environment(trajectory=..., filename=...)`` with no parameters.

Issue 9, defect 2: the adopting Environment rewrote every run's point id to run 0's, and a
retried run got run 0's seed. Every step runs in its own process (a user continues a study
from a new session), and the ids and seeds are compared with a fresh study's, run by run,
for parameters of several types, explored and default-only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import pytraj as pt

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import pytraj as pt

    VALUES = {
        "int": (7, [1, 2, 3, 4]),
        "float": (0.25, [0.5, 1.5, 2.5, 3.5]),
        "str": ("z", ["a", "b", "c", "d"]),
        "array": (np.zeros(2), [np.arange(2.0) + k for k in range(4)]),
        "tuple": ((0, "z"), [(1, "a"), (2, "b"), (3, "c"), (4, "d")]),
        "bool": (True, [False, True, False, True]),
    }

    def simulate(traj):
        if traj.k == 1 and os.environ.get("FAIL_RUN_1"):
            raise ValueError("run 1 fails on purpose")
        traj.add_result("seed", traj.seed)
        return traj.seed

    path, kind, mode = sys.argv[1:4]
    default, explored = VALUES[kind]
    out = {}
    if mode in ("create", "reference"):
        env = pt.Environment(trajectory="adopt", filename=path, progress=False,
                             on_error="continue")
        traj = env.trajectory
        traj.add_parameter("k", 0)
        traj.add_parameter("e", default)
        traj.add_parameter("d", default, comment="default only")
        n = 3 if mode == "create" else 4
        traj.explore({"k": list(range(n)), "e": explored[:n]})
        out["ran"] = [idx for idx, _ in env.run(simulate)]
    else:
        env = pt.Environment(trajectory="adopt", filename=path, progress=False,
                             on_error="continue")
        if mode == "resume":
            out["ran"] = [idx for idx, _ in env.resume(simulate, retry_failed=True)]
        elif mode == "plan":
            plan = env.plan(retry_failed=True)
            out["plan"] = [plan.new, plan.pending, plan.failed, plan.completed]
        elif mode == "expand":
            # The adopted tree is there once the Environment continued the study.
            out["resumed"] = [idx for idx, _ in env.resume(simulate)]
            env.trajectory.expand({"k": [3], "e": explored[3:]})
            plan = env.plan()
            out["plan"] = [plan.new, plan.pending, plan.failed, plan.completed]
            out["ran"] = [idx for idx, _ in env.run(simulate)]
    env.close()
    print(json.dumps(out))
    """
)

KINDS = ["int", "float", "str", "array", "tuple", "bool"]


def step(path: Path, kind: str, mode: str, *, fail: bool = False) -> Any:
    env = {"FAIL_RUN_1": "1"} if fail else {}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path), kind, mode],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def ids_and_seeds(path: Path) -> tuple[list[str], list[Any]]:
    traj = pt.load(path)
    ids = [traj.runs[i].point_id for i in range(len(traj))]
    seeds = [traj.results.seed.get(i, None) for i in range(len(traj))]
    return ids, seeds


def test_resume_from_an_adopting_environment_keeps_ids_and_seeds(tmp_path: Path) -> None:
    """The reproduction from the issue: x in [1, 2, 3], run 1 fails, resume in a new process."""
    path = tmp_path / "study.h5"
    assert step(path, "int", "create", fail=True)["ran"] == [0, 2]
    before, _ = ids_and_seeds(path)
    assert len(set(before)) == 3
    assert step(path, "int", "resume") == {"ran": [1]}
    ids, seeds = ids_and_seeds(path)
    assert ids == before
    reference = tmp_path / "reference.h5"
    step(reference, "int", "reference")
    ref_ids, ref_seeds = ids_and_seeds(reference)
    assert ids == ref_ids[:3]
    assert seeds == ref_seeds[:3]
    assert seeds[1] != seeds[0]


@pytest.mark.parametrize("kind", KINDS)
def test_adoption_then_plan_resume_and_expand_match_a_fresh_study(
    tmp_path: Path, kind: str
) -> None:
    reference = tmp_path / "reference.h5"
    assert step(reference, kind, "reference")["ran"] == [0, 1, 2, 3]
    ref_ids, ref_seeds = ids_and_seeds(reference)
    assert len(set(ref_ids)) == 4

    path = tmp_path / "study.h5"
    step(path, kind, "create", fail=True)
    assert step(path, kind, "plan")["plan"] == [[], [], [1], [0, 2]]
    assert step(path, kind, "resume")["ran"] == [1]
    ids, seeds = ids_and_seeds(path)
    assert ids == ref_ids[:3]
    assert seeds == ref_seeds[:3]
    assert step(path, kind, "plan")["plan"] == [[], [], [], [0, 1, 2]]
    assert step(path, kind, "expand") == {
        "resumed": [],
        "plan": [[3], [], [], [0, 1, 2]],
        "ran": [3],
    }
    assert ids_and_seeds(path) == (ref_ids, ref_seeds)
