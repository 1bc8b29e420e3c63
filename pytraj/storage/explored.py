"""Explored values and point ids that stay in the file until they are asked for.

Loading a trajectory of a million runs must not turn a million explored values and a
million point ids into Python objects: ``pt.load(path).results.z[i]`` needs none of
them. A stored explored table column comes back as an :class:`ExploredColumn` and the
point ids as a :class:`StoredPointIds`: sequences of known length that read their
column with one read on first use, hold it as a numpy array, and turn into Python
objects only what is asked (one value, a slice, or all of them with :meth:`tolist`).
Values keep their exact type: a column of Python floats gives ``float`` objects, one
of numpy scalars gives numpy scalars, exactly as the list read eagerly would.

Both pickle (and copy) as plain lists, so a worker process never needs the file.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

import numpy as np

from pytraj.errors import FileFormatError

__all__ = [
    "ExploredColumn",
    "StoredPointIds",
    "is_stored_column",
    "same_stored_values",
]


class _StoredColumn(Sequence[Any]):
    """A column of ``length`` values read by ``load`` (one read) on first use."""

    __slots__ = ("__weakref__", "_array", "_length", "_load", "description")

    def __init__(self, length: int, load: Callable[[], np.ndarray], description: str) -> None:
        self._length = int(length)
        self._load: Callable[[], np.ndarray] | None = load
        self._array: np.ndarray | None = None
        self.description = description

    def __len__(self) -> int:
        return self._length

    @property
    def is_loaded(self) -> bool:
        """Whether the column was read from the file."""
        return self._array is not None

    def load(self) -> None:
        """Read the column now (e.g. before the file is rewritten or goes away)."""
        self.to_numpy()

    def to_numpy(self) -> np.ndarray:
        """The stored column as a numpy array (read on the first call, then shared:
        do not change it)."""
        if self._array is None:
            assert self._load is not None  # dropped only once the array is held
            array = self._load()
            if len(array) < self._length:
                raise FileFormatError(
                    f"{self.description} holds {len(array)} values where the trajectory "
                    f"has {self._length} runs: the file changed or is damaged; load it again"
                )
            self._array = array[: self._length]
            self._load = None
        return self._array

    def tolist(self) -> list[Any]:
        """Every value as Python objects (a new list)."""
        return self._objects(self.to_numpy())

    @abstractmethod
    def _objects(self, array: np.ndarray) -> list[Any]:
        """The values of ``array`` (a part of the column) as the objects handed out."""

    def __iter__(self) -> Iterator[Any]:
        return iter(self.tolist())

    @overload
    def __getitem__(self, key: int) -> Any: ...
    @overload
    def __getitem__(self, key: slice) -> list[Any]: ...

    def __getitem__(self, key: int | slice) -> Any:
        array = self._array
        if type(key) is int and array is not None and 0 <= key < self._length:
            # A run reading its own value: once per run and explored parameter.
            return self._object(array, key)
        array = self.to_numpy()
        if isinstance(key, slice):
            return self._objects(array[key])
        position = int(key) + self._length if key < 0 else int(key)
        if not 0 <= position < self._length:
            raise IndexError(f"index {key} is out of range for {self._length} values")
        # One element converted as tolist() converts them all, without a Python object
        # per value of the column (a run reads its own value).
        return self._object(array, position)

    @abstractmethod
    def _object(self, array: np.ndarray, position: int) -> Any:
        """The value at ``position`` of ``array``, the object :meth:`_objects` gives."""

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _StoredColumn):
            return self.tolist() == other.tolist()
        if isinstance(other, list | tuple):
            return len(other) == self._length and self.tolist() == list(other)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]  # a sequence that compares by value

    def __reduce__(self) -> tuple[type[list[Any]], tuple[list[Any]]]:
        return list, (self.tolist(),)

    def __repr__(self) -> str:
        state = "read" if self.is_loaded else "not loaded"
        return f"<{self.description}: {self._length} values, {state}>"


class ExploredColumn(_StoredColumn):
    """One explored parameter's values, one per run, from the file's explored table.

    Parameters
    ----------
    length
        The number of runs (values handed out; the stored column may hold more when it
        grew after loading).
    load
        Reads the stored column as a numpy array (datetimes already viewed as such).
    numpy_scalars
        Whether the values are numpy scalars (a column of ``np.float32`` ...); otherwise
        they are Python ``bool`` / ``int`` / ``float`` / ``complex`` (or ``datetime``).
    description
        Names the column in errors and the repr.
    """

    __slots__ = ("_numpy_scalars",)

    def __init__(
        self,
        length: int,
        load: Callable[[], np.ndarray],
        *,
        numpy_scalars: bool,
        description: str,
    ) -> None:
        super().__init__(length, load, description)
        self._numpy_scalars = numpy_scalars

    @classmethod
    def of_array(
        cls, values: np.ndarray, *, numpy_scalars: bool, description: str
    ) -> ExploredColumn:
        """Values held in memory as one array (a merge's appended points, a range
        extended by them): handed on, compared and stored as an array, without a Python
        object per run until one is asked for."""
        column = cls(
            len(values), lambda: values, numpy_scalars=numpy_scalars, description=description
        )
        column.load()
        return column

    @classmethod
    def of_values(cls, values: Sequence[Any], *, description: str) -> ExploredColumn | None:
        """Explored values of one plain Python type (all ``float``, all ``int`` within
        64 bits, or all ``bool``) as one array: 8 bytes a run instead of a list slot and
        an object; they come back as the same Python objects. None for any other values
        (they stay a list)."""
        kinds = set(map(type, values))
        dtype = _PLAIN_DTYPES.get(kinds.pop()) if len(kinds) == 1 else None
        if dtype is None:
            return None
        try:
            array: np.ndarray = np.array(values, dtype=dtype)
        except OverflowError:  # an int beyond 64 bits: kept exactly, in a list
            return None
        return cls.of_array(array, numpy_scalars=False, description=description)

    @property
    def has_python_values(self) -> bool:
        """Whether values come out as Python objects (not numpy scalars)."""
        return not self._numpy_scalars

    def take(self, positions: slice | np.ndarray) -> ExploredColumn:
        """The values at ``positions`` (a slice or an index array), as a column in memory."""
        return ExploredColumn.of_array(
            self.to_numpy()[positions],
            numpy_scalars=self._numpy_scalars,
            description=self.description,
        )

    def joined(self, other: Sequence[Any]) -> ExploredColumn | None:
        """This column followed by ``other``, as one array in memory, when ``other`` is
        a column of the same values' kind (same dtype, both Python or both numpy
        scalars); None otherwise (then join them as lists)."""
        if not isinstance(other, ExploredColumn) or other._numpy_scalars != self._numpy_scalars:
            return None
        mine, theirs = self.to_numpy(), other.to_numpy()
        if mine.dtype != theirs.dtype:
            return None
        return ExploredColumn.of_array(
            np.concatenate([mine, theirs]),
            numpy_scalars=self._numpy_scalars,
            description=self.description,
        )

    def _objects(self, array: np.ndarray) -> list[Any]:
        # The same conversions as reading the whole column eagerly: tolist() gives
        # Python objects of the exact type, list() numpy scalars.
        return list(array) if self._numpy_scalars else array.tolist()

    def _object(self, array: np.ndarray, position: int) -> Any:
        # item() converts one element as tolist() does; indexing gives a numpy scalar.
        return array[position] if self._numpy_scalars else array.item(position)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        array = self.to_numpy()
        if dtype is not None and np.dtype(dtype) != array.dtype:
            return array.astype(dtype)
        return array.copy() if copy else array


class StoredPointIds(_StoredColumn):
    """The point id (16 raw bytes) of every run, from the file's explored table.

    ``load`` reads the ids as an array of 16-byte ``V16`` values (whatever the file's
    column type); :meth:`tolist` gives them as ``bytes``, trailing NUL bytes included.
    """

    __slots__ = ()

    @classmethod
    def of_array(cls, ids: np.ndarray, description: str = "point ids") -> StoredPointIds:
        """Ids held in memory as an array of ``V16`` (a copy of a run table's column):
        compared with stored ids as arrays, without a ``bytes`` object per run."""
        column = cls(len(ids), lambda: ids, description)
        column.load()
        return column

    def _objects(self, array: np.ndarray) -> list[Any]:
        return array.tolist()  # V16 values become bytes of 16

    def _object(self, array: np.ndarray, position: int) -> Any:
        return array.item(position)

    def same_as(self, other: Sequence[bytes]) -> bool:
        """Whether ``other`` holds the same ids, in order (16 raw bytes each; shorter ones
        count with their trailing NUL bytes restored)."""
        if len(other) != self._length:
            return False
        if isinstance(other, StoredPointIds):
            return bool(np.array_equal(self.to_numpy(), other.to_numpy()))
        if not set(map(type, other)) <= {bytes}:
            other = [bytes(p) for p in other]
        raw = np.array(other, dtype="S")
        if raw.dtype.itemsize > 16:
            return False
        padded = raw.astype("S16").view("V16")  # shorter ids get their NUL bytes back
        return bool(np.array_equal(self.to_numpy(), padded))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StoredPointIds | list | tuple):
            return self.same_as(other)
        return NotImplemented

    __hash__ = None


#: The array type of a column of explored values of one plain Python type.
_PLAIN_DTYPES: dict[type, type] = {float: np.float64, int: np.int64, bool: np.bool_}

#: The Python type of each value of a column of Python scalars, by numpy dtype kind.
_PYTHON_TYPES: dict[str, type] = {"b": bool, "i": int, "f": float, "c": complex}


def same_stored_values(old: Sequence[Any], new: Sequence[Any]) -> bool | None:
    """Whether two explored ranges store the same, compared as arrays when one of them
    is an :class:`ExploredColumn` of Python scalars; None when that cannot decide (then
    compare value by value).

    Equal bits are the same stored values (``-0.0`` is not ``0.0``); a list matches a
    column only when every value has the column's one Python type.
    """
    columns = [v for v in (old, new) if isinstance(v, ExploredColumn) and v.has_python_values]
    if not columns or len(old) != len(new):
        return None if not columns else False
    arrays = []
    for values in (old, new):
        if isinstance(values, ExploredColumn):
            if not values.has_python_values:
                return None
            arrays.append(values.to_numpy())
            continue
        expected = _PYTHON_TYPES.get(columns[0].to_numpy().dtype.kind)
        if expected is None or set(map(type, values)) != {expected}:
            return None
        try:
            arrays.append(np.array(values, dtype=columns[0].to_numpy().dtype))
        except OverflowError:
            return False  # an int the stored column could not hold
    first, second = arrays
    if first.dtype != second.dtype:
        return None
    return bool(np.array_equal(first.view(np.uint8), second.view(np.uint8)))


def is_stored_column(values: object) -> bool:
    """Whether ``values`` is a column still backed by the file (not a list)."""
    return isinstance(values, _StoredColumn)
