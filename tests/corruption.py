"""Damaging study files on purpose, and reading them in child processes.

Shared by ``tests/test_corruption.py`` (a few dozen cases in ``make test``, a sweep under
``-m crash``) and the ``pytraj check`` tests. A study with every kind of node is written
once per setting (with and without fletcher32 checksums); each case copies it, flips a
byte inside one node's bytes (located through h5py: chunks, contiguous data, object
headers) or cuts the file at an offset, then a child process opens and reads it all.
Children read many files each; a child that crashes inside HDF5 is restarted after the
file it was reading, which is counted as a crash, not fatal to the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

import pytraj as pt
from pytraj.storage.hdf5 import FileOptions

ROOT = Path(pt.__file__).resolve().parents[1]
N_RUNS = 40

#: Outcomes of reading one damaged file. "correct" and "detected" are clean; "silent"
#: (different values, no error) is possible only where no checksum covers the bytes;
#: "escaped" (an exception that is not a PytrajError) and "hang" are bugs; "crash" is
#: the HDF5 library dying (counted: only ``pytraj check`` can survive it).
OUTCOMES = ("correct", "detected", "silent", "escaped", "crash", "hang")


def make_study(path: Path, *, fletcher32: bool) -> None:
    """A closed study holding every kind of node pytraj writes."""
    options = FileOptions(fletcher32=fletcher32)
    traj = pt.Trajectory("study", filename=path, comment="corruption study", file_options=options)
    traj.add_parameter("x", 0, comment="explored int")
    traj.add_parameter("y", 0.5)
    traj.add_parameter("label", "abc")
    traj.add_parameter("vec", np.zeros(3))
    traj.node("parameters.x").annotations["unit"] = "mV"
    traj.explore(
        {
            "x": list(range(N_RUNS)),
            "vec": [np.full(3, float(i)) for i in range(N_RUNS)],
        }
    )
    traj.add_result("table", np.arange(20_000, dtype=np.float64), comment="a big array")
    traj.add_result("meta", info={"a": [1, 2, 3], "b": "text"})
    for i in range(N_RUNS):
        if i == 7:
            try:
                with traj.start_run(i):
                    raise ValueError("run 7 fails on purpose")
            except ValueError:
                pass
            continue
        with traj.start_run(i):
            traj.add_result("z", i * 3)
            traj.add_result("text", f"run {i} " * (i % 5 + 1))
            traj.add_result("arr", np.linspace(0.0, float(i), 64))
            traj.add_result("ragged", np.arange(i % 9, dtype=np.int32))
            traj.add_result("mixed", i if i % 4 else f"s{i}")  # strings go to the overflow
            traj.add_result("stats", low=i - 1, high=float(i) + 0.5)
    traj.close()


# The child: read each file named on stdin, print one JSON line per file.
READER = textwrap.dedent(
    """
    import hashlib, json, sys, warnings
    import numpy as np
    import pytraj as pt
    from pytraj.errors import PytrajError

    warnings.simplefilter("ignore")

    def fingerprint(path):
        parts = []
        for name in pt.list_trajectories(path):
            traj = pt.load(path, name)
            parts.append((name, traj.comment, len(traj)))
            parts.append([(run.status, run.point_id, run.attempt) for run in traj.runs])
            for run in traj.runs:
                failure = run.failure
                parts.append(None if failure is None else (failure.exc_type, failure.message))
            for leaf in traj.iter_leaves():
                parts.append((leaf.full_name, leaf.comment, sorted(leaf.annotations.items())))
                if isinstance(leaf, pt.Parameter):
                    parts.append(repr(leaf.default))
                    if leaf.is_explored:
                        parts.append(repr(list(leaf.range)))
                    continue
                for item in leaf.item_names():
                    value = leaf[item]
                    if leaf.per_run:
                        series = value.to_series()
                        parts.append((item, list(series.index), repr(list(series))))
                        for i in list(series.index)[:3]:
                            parts.append(repr(value[int(i)]))
                    else:
                        parts.append((item, repr(value)))
        with np.printoptions(threshold=10**9):
            text = repr(parts)
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    for line in sys.stdin:
        path = line.strip()
        print(json.dumps({"start": path}), flush=True)
        try:
            result = {"path": path, "fingerprint": fingerprint(path)}
        except PytrajError as exc:
            result = {"path": path, "error": type(exc).__name__, "message": str(exc)[:300]}
        except BaseException as exc:
            result = {"path": path, "escaped": type(exc).__name__, "message": str(exc)[:300]}
        print(json.dumps(result), flush=True)
    """
)


@dataclass
class Outcome:
    """How reading one damaged file went."""

    path: Path
    kind: str
    detail: str = ""


def read_files(paths: list[Path], pristine: str, *, timeout: float = 120.0) -> list[Outcome]:
    """Read ``paths`` in child processes; classify each against the ``pristine`` fingerprint."""
    outcomes: dict[Path, Outcome] = {}
    todo = list(paths)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    while todo:
        child = subprocess.Popen(
            [sys.executable, "-c", READER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            out, err = child.communicate("\n".join(map(str, todo)) + "\n", timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            out, err = child.communicate()
            hung = True
        else:
            hung = False
        started: Path | None = None
        for line in out.splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # HDF5 printing on stdout
            if "start" in event:
                started = Path(event["start"])
                continue
            path = Path(event["path"])
            started = None
            if "fingerprint" in event:
                same = event["fingerprint"] == pristine
                outcomes[path] = Outcome(path, "correct" if same else "silent")
            elif "error" in event:
                outcomes[path] = Outcome(path, "detected", f"{event['error']}: {event['message']}")
            else:
                outcomes[path] = Outcome(path, "escaped", f"{event['escaped']}: {event['message']}")
        if started is not None:
            kind = "hang" if hung else "crash"
            detail = f"returncode {child.returncode}: {err.strip()[-300:]}"
            outcomes[started] = Outcome(started, kind, detail)
        elif child.returncode != 0 and not hung:
            raise AssertionError(f"reader failed outside any file: {err[-2000:]}")
        todo = [path for path in todo if path not in outcomes]
        if hung and started is None and todo:
            raise AssertionError("reader hung between files")
    return [outcomes[path] for path in paths]


def pristine_fingerprint(path: Path) -> str:
    """The fingerprint of an undamaged file (read in a child like the others)."""
    outcome = read_files([path], pristine="")
    assert outcome[0].kind == "silent", outcome[0]  # "silent": a fingerprint came back
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", READER],
        input=f"{path}\n",
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    event = json.loads(done.stdout.splitlines()[-1])
    return str(event["fingerprint"])


@dataclass(frozen=True)
class Region:
    """Bytes of one node: what kind, which node, where."""

    kind: str
    node: str
    offset: int
    size: int
    #: Whether a checksum covers the bytes: fletcher32, or zlib's adler32 of a compressed chunk.
    checksummed: bool


def regions(path: Path) -> list[Region]:
    """Every chunk, contiguous data block and object header of the file."""
    found: list[Region] = []
    with h5py.File(path, "r") as h5:

        def visit(name: str, obj: object) -> None:
            if not isinstance(obj, h5py.Dataset | h5py.Group):
                return
            header = h5py.h5o.get_info(obj.id).addr
            found.append(Region("header", name, header, 64, False))
            if not isinstance(obj, h5py.Dataset):
                return
            if obj.chunks is not None:
                for k in range(obj.id.get_num_chunks()):
                    info = obj.id.get_chunk_info(k)
                    checked = bool(obj.fletcher32) or obj.compression == "gzip"
                    found.append(Region("chunk", name, info.byte_offset, info.size, checked))
            else:
                offset = obj.id.get_offset()
                size = obj.id.get_storage_size()
                if offset is not None and size:
                    found.append(Region("contiguous", name, offset, size, False))

        visit("/", h5)
        h5.visititems(visit)
    return found


def flip(source: Path, target: Path, offset: int, mask: int = 0xFF) -> None:
    """Copy ``source`` to ``target`` with the byte at ``offset`` inverted (by ``mask``)."""
    data = bytearray(source.read_bytes())
    data[offset] ^= mask
    target.write_bytes(bytes(data))


def truncate(source: Path, target: Path, size: int) -> None:
    """Copy the first ``size`` bytes of ``source`` to ``target``."""
    with source.open("rb") as handle:
        target.write_bytes(handle.read(size))


def forge_rows(source: Path, target: Path, node: str, rows: int) -> None:
    """Copy ``source`` to ``target`` with ``node``'s header claiming ``rows`` rows.

    The dataspace of the node's object header holds its dimensions, little-endian 8-byte
    integers, then their maximum (unlimited for extendable nodes, the same otherwise);
    the first dimension (and its fixed maximum) of the first match is overwritten.
    """
    with h5py.File(source, "r") as h5:
        dataset = h5[node]
        shape = dataset.shape
        header = h5py.h5o.get_info(dataset.id).addr
        extendable = dataset.maxshape[0] is None
    data = bytearray(source.read_bytes())
    dims = b"".join(int(n).to_bytes(8, "little") for n in shape)
    # The maximum follows: unlimited, or (fixed size) the dimensions again.
    pattern = dims + (b"\xff" * 8 if extendable else dims)
    window = bytes(data[header : header + 4096])
    found = window.find(pattern)
    assert found >= 0, (node, shape)  # the first match: later ones belong to other nodes
    claim = int(rows).to_bytes(8, "little")
    for at in [header + found] + ([] if extendable else [header + found + len(dims)]):
        data[at : at + 8] = claim
    target.write_bytes(bytes(data))


def flip_cases(source: Path, folder: Path, per_region: int, seed: int) -> dict[Path, Region]:
    """Damaged copies of ``source``: ``per_region`` flips inside each region."""
    rng = np.random.default_rng(seed)
    cases: dict[Path, Region] = {}
    for k, region in enumerate(regions(source)):
        for j in range(per_region):
            offset = region.offset + int(rng.integers(0, max(region.size, 1)))
            target = folder / f"flip-{k:03d}-{j}.h5"
            flip(source, target, offset)
            cases[target] = region
    return cases


def count(outcomes: list[Outcome]) -> Counter[str]:
    """Outcomes by kind, every kind present (zero when none)."""
    counts = Counter(dict.fromkeys(OUTCOMES, 0))
    counts.update(outcome.kind for outcome in outcomes)
    return counts
