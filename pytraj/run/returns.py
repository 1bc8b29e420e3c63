"""The return values of one ``env.run``, held compactly until the list is built.

``env.run`` returns ``[(idx, return value), ...]`` sorted by run index, a plain
``list`` of tuples as pypet returns it (users index, iterate, sort, compare, pickle and
``json.dump`` it, and check ``isinstance(results, list)``). Holding that list while the
runs execute costs about 100 bytes a run (a tuple, an ``int`` and two list slots, the
second one in the sorted copy), on top of the trajectory's own per-run state, during
the whole run and while the final commit and the definition's last write take their
own memory. :class:`ReturnValues` holds the run indices in one ``array('q')`` (8 bytes a
run) and the values only once a run returned something other than ``None`` (a list
slot each, the objects being the user's), and builds the tuples once, in index order,
when they are iterated at the end: the list ``env.run`` returns is built after the
session has committed and stored everything, and ``sorted`` finds it already sorted.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["ReturnValues"]

#: Runs whose tuples are built at a time while iterating (bounds the temporary lists).
_BLOCK = 65536


class ReturnValues:
    """``(idx, return value)`` of the completed runs of one session.

    Iterating gives the pairs as tuples sorted by run index (runs completed in any
    order, e.g. by a process pool); ``list(values)`` is what ``env.run`` returns.

    Examples
    --------
    >>> values = ReturnValues()
    >>> values.add(2, "b")
    >>> values.add(0, None)
    >>> list(values)
    [(0, None), (2, 'b')]
    """

    __slots__ = ("_indices", "_values")

    def __init__(self) -> None:
        self._indices = array("q")
        #: The values in arrival order; None while every run returned None.
        self._values: list[Any] | None = None

    def add(self, idx: int, value: Any) -> None:
        """Keep run ``idx``'s return value."""
        self._indices.append(idx)
        values = self._values
        if values is not None:
            values.append(value)
        elif value is not None:
            values = self._values = [None] * (len(self._indices) - 1)
            values.append(value)

    def __len__(self) -> int:
        return len(self._indices)

    def __bool__(self) -> bool:
        return bool(self._indices)

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        if not self._indices:
            return
        # A copy: more runs may be added later (post-processing iterates mid-session),
        # and an array cannot grow while a view of its buffer exists.
        indices = np.frombuffer(self._indices, dtype=np.int64).copy()
        order: np.ndarray | None = None
        if len(indices) > 1 and bool(np.any(indices[1:] < indices[:-1])):
            order = np.argsort(indices, kind="stable")
            indices = indices[order]
        values = self._values
        for start in range(0, len(indices), _BLOCK):
            block = indices[start : start + _BLOCK].tolist()
            if values is None:
                yield from zip(block, [None] * len(block), strict=True)
            elif order is None:
                yield from zip(block, values[start : start + _BLOCK], strict=True)
            else:
                positions = order[start : start + _BLOCK].tolist()
                yield from zip(block, [values[p] for p in positions], strict=True)

    def __repr__(self) -> str:
        return f"<ReturnValues of {len(self)} runs>"
