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

from collections.abc import Sequence
from pathlib import Path

from pytraj.run.options import Shard

__all__ = ["PLACEHOLDER", "shard_of", "shard_path", "shard_runs"]

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
