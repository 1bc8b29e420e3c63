"""Continuing a study whose point ids hold NUL bytes (issue 9, defect 1).

About one id in 256 ends with a 0x00 byte, which an ``S16`` column drops; layout 1 then
compared 15 against 16 bytes and refused to continue (``run 0: stored x=735, script
x=735``). The points here are found by brute force over the DESIGN §2 rule (written out
independently of pytraj) so that every NUL pattern is covered: last byte, last two bytes,
first byte, and a NUL inside. Each step (re-run, ``env.plan()``, ``expand``) runs in a
new process, as a user's continuation does.
"""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import pytraj as pt

    def simulate(traj):
        traj.add_result("z", traj.x * 2)
        return traj.seed

    path, kind, mode, points, extra = sys.argv[1:6]
    points, extra = json.loads(points), json.loads(extra)
    env = pt.Environment(trajectory="ids", filename=path, progress=False)
    traj = env.trajectory
    traj.add_parameter("x", 0 if kind == "int" else 0.0)
    traj.explore({"x": points})
    out = {}
    if mode == "plan":
        plan = env.plan()
        out["plan"] = [plan.new, plan.pending, plan.failed, len(plan.completed)]
    else:
        if mode == "expand":
            traj.expand({"x": extra})
        out["ran"] = [idx for idx, _ in env.run(simulate)]
    out["ids"] = [traj.runs[i].point_id for i in range(len(traj))]
    env.close()
    print(json.dumps(out))
    """
)


def reference_id(name: str, encoded: bytes) -> bytes:
    raw = name.encode("utf-8")
    point = struct.pack("<I", len(raw)) + raw + encoded
    return hashlib.blake2b(point, digest_size=16).digest()


def int_id(value: int) -> bytes:
    return reference_id("parameters.x", b"i" + struct.pack("<q", value))


def float_id(value: float) -> bytes:
    return reference_id("parameters.x", b"f" + struct.pack("<d", value))


PATTERNS: dict[str, Callable[[bytes], bool]] = {
    "last byte": lambda pid: pid[-1] == 0 and pid[-2] != 0,
    "last two bytes": lambda pid: pid[-2:] == b"\x00\x00",
    "first byte": lambda pid: pid[0] == 0 and pid[-1] != 0,
    "inside only": lambda pid: 0 in pid[1:-1] and pid[0] != 0 and pid[-1] != 0,
}
#: How many points of each pattern a study explores.
WANTED = {"last byte": 6, "last two bytes": 1, "first byte": 3, "inside only": 3}


def find_points(candidates: Iterator[Any], encode: Callable[[Any], bytes]) -> list[Any]:
    """Points whose ids show every NUL pattern, by brute force (deterministic)."""
    found: dict[str, list[Any]] = {name: [] for name in PATTERNS}
    for value in candidates:
        pid = encode(value)
        for name, matches in PATTERNS.items():
            if len(found[name]) < WANTED[name] and matches(pid):
                found[name].append(value)
                break
        if all(len(found[name]) == WANTED[name] for name in PATTERNS):
            return [value for name in PATTERNS for value in found[name]]
    raise AssertionError(f"not enough points found: {found}")


def int_candidates() -> Iterator[int]:
    value = 0
    while True:
        yield value
        yield -value - 1
        value += 1


def float_candidates() -> Iterator[float]:
    value = 0
    while True:
        yield value * 0.25 + 0.125
        value += 1


INT_POINTS = find_points(int_candidates(), int_id)
FLOAT_POINTS = find_points(float_candidates(), float_id)


def run_step(path: Path, kind: str, mode: str, points: list[Any], extra: list[Any]) -> Any:
    arguments = [str(path), kind, mode, json.dumps(points), json.dumps(extra)]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *arguments],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_brute_force_points_cover_every_nul_pattern() -> None:
    for points, encode in ((INT_POINTS, int_id), (FLOAT_POINTS, float_id)):
        ids = [encode(value) for value in points]
        for name, matches in PATTERNS.items():
            assert sum(map(matches, ids)) >= WANTED[name], name


def test_735_continues_from_a_new_process(tmp_path: Path) -> None:
    """The shortest reproduction of defect 1: its id ends in 0x00."""
    assert int_id(735)[-1] == 0
    path = tmp_path / "study.h5"
    first = run_step(path, "int", "run", [735], [])
    assert first["ran"] == [0]
    assert first["ids"] == [int_id(735).hex()]
    again = run_step(path, "int", "run", [735], [])
    assert again == {"ran": [], "ids": [int_id(735).hex()]}
    plan = run_step(path, "int", "plan", [735], [])
    assert plan["plan"] == [[], [], [], 1]
    grown = run_step(path, "int", "expand", [735], [736, *INT_POINTS[:2]])
    assert grown["ran"] == [1, 2, 3]
    assert grown["ids"] == [int_id(v).hex() for v in (735, 736, *INT_POINTS[:2])]


@pytest.mark.parametrize(
    ("kind", "points", "encode"),
    [("int", INT_POINTS, int_id), ("float", FLOAT_POINTS, float_id)],
    ids=["int", "float"],
)
def test_ids_with_nul_bytes_survive_rerun_plan_and_expand(
    tmp_path: Path, kind: str, points: list[Any], encode: Callable[[Any], bytes]
) -> None:
    path = tmp_path / "study.h5"
    half = len(points) // 2
    first, later = points[:half], points[half:]
    done = run_step(path, kind, "run", first, [])
    assert done["ran"] == list(range(half))
    assert done["ids"] == [encode(v).hex() for v in first]
    assert run_step(path, kind, "run", first, [])["ran"] == []
    assert run_step(path, kind, "plan", first, [])["plan"] == [[], [], [], half]
    grown = run_step(path, kind, "expand", first, later)
    assert grown["ran"] == list(range(half, len(points)))
    assert grown["ids"] == [encode(v).hex() for v in points]
    # The grown study continues too, defined by the whole list.
    assert run_step(path, kind, "run", points, [])["ran"] == []
    assert run_step(path, kind, "plan", points, [])["plan"] == [[], [], [], len(points)]


def test_post_processing_drops_a_proposed_point_whose_id_ends_in_nul(tmp_path: Path) -> None:
    """An adaptive search must recognise x=735 (id ending in 0x00) as already run."""
    import pytraj as pt

    calls: list[int] = []

    def simulate(traj: pt.Trajectory) -> int:
        calls.append(traj.x)
        return int(traj.x)

    def propose(traj: pt.Trajectory, results: list[tuple[int, Any]]) -> Any:
        return {"x": [735, 736]} if len(traj) == 1 else None

    with pt.Environment(trajectory="ids", filename=tmp_path / "s.h5", progress=False) as env:
        env.trajectory.add_parameter("x", 0)
        env.trajectory.explore({"x": [735]})
        env.add_postprocessing(propose)
        done = env.run(simulate)
    assert calls == [735, 736]
    assert done == [(0, 735), (1, 736)]
