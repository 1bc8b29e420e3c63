"""Shards: disjoint slices of one study, run on several machines and merged afterwards.

Every shard holds the full study definition in its own file; it runs only the points
that belong to it, and the runs of other shards stay pending there. A point belongs to
shard ``int.from_bytes(point_id, "big") % n``: the point id is itself a hash of the
point's parameters, so the assignment depends on the point alone. Shards therefore stay
disjoint and covering when the study is expanded or extended by post-processing, and
merging the n shard files (:func:`pytraj.merge_files`) gives the unsharded study.

>>> from pytraj.run.options import Shard
>>> shard_path(Path("out/study.h5"), Shard(2, 4)).name
'study.shard-2-of-4.h5'
>>> shard_path(Path("out/study-{shard}.h5"), Shard(2, 4)).name
'study-2-of-4.h5'
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from pytraj.run.options import Shard
from pytraj.storage.records import FAILED, PENDING
from pytraj.trajectory.runtable import RunTable

__all__ = ["PLACEHOLDER", "runs_to_do", "shard_of", "shard_path", "shard_runs"]

log = logging.getLogger("pytraj.run")

#: In a filename, replaced by ``<i>-of-<n>`` (otherwise ``.shard-<i>-of-<n>`` is added
#: before the suffix).
PLACEHOLDER = "{shard}"


def shard_of(point_id: bytes, count: int) -> int:
    """The shard (of ``count``) that the point with this 16-byte id belongs to."""
    return int.from_bytes(point_id, "big") % count


def shard_path(path: Path, shard: Shard) -> Path:
    """The file of ``shard`` for the study file ``path`` (``path`` itself when whole)."""
    if shard.is_whole:
        return Path(str(path).replace(PLACEHOLDER, "all"))
    label = f"{shard.index}-of-{shard.count}"
    if PLACEHOLDER in str(path):
        return Path(str(path).replace(PLACEHOLDER, label))
    return path.with_name(f"{path.stem}.shard-{label}{path.suffix}")


def shard_runs(indices: Sequence[int], point_ids: Sequence[bytes], shard: Shard) -> list[int]:
    """The run indices among ``indices`` whose points belong to ``shard``."""
    if shard.is_whole:
        return list(indices)
    return [i for i in indices if shard_of(point_ids[i], shard.count) == shard.index]


def runs_to_do(table: RunTable, shard: Shard, *, retry_failed: bool, name: str) -> Sequence[int]:
    """The runs an ``env.run`` of trajectory ``name`` executes, in order: the pending ones
    of ``shard``, and its failed ones with ``retry_failed``. Consecutive runs (a fresh
    study) come as a ``range``, which holds a million runs in a few bytes."""
    indices = table.indices(PENDING)
    if not shard.is_whole:
        ids = table.point_ids()
        pending = shard_runs(indices.tolist(), ids, shard)
        if retry_failed:
            return sorted({*pending, *shard_runs(table.indices(FAILED).tolist(), ids, shard)})
        return pending
    if retry_failed:
        return sorted({*indices.tolist(), *table.indices(FAILED).tolist()})
    failed = len(table.indices(FAILED))
    if failed:
        log.info(
            "%d runs of %r failed earlier and are not run again; "
            "env.resume(retry_failed=True) retries them",
            failed,
            name,
        )
    if len(indices) and int(indices[-1]) - int(indices[0]) + 1 == len(indices):
        return range(int(indices[0]), int(indices[-1]) + 1)  # sorted and unique: all of them
    return indices.tolist()
