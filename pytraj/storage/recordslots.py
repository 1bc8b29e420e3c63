"""Value slots of the record codec: one value's tag and payload, alone or many at once.

A slot is ``N`` (None), ``n`` (NOT_LOADED), or ``v`` / ``p`` + u32 length + the value
encoded by :mod:`pytraj.storage.valuecodec` / pickled (Pickle leaves only); see
:mod:`pytraj.storage.recordcodec` for the records around them. Array data stays a
memoryview of the array (the journal writes it uncopied).
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from pytraj.errors import PytrajError, UnsupportedValueError
from pytraj.storage.explored import ExploredColumn
from pytraj.storage.records import NOT_LOADED, LazyValue
from pytraj.storage.valuecodec import FORMAT_VERSION, dump_parts

__all__ = ["SLOT_HEAD", "Chunks", "number_slots", "put_slot", "slot_bytes", "where_text"]

Chunks = list[Any]  # bytes, and memoryviews of array data

SLOT_HEAD = struct.Struct("<cI")
_NONE_SLOT = b"N"
_NOT_LOADED_SLOT = b"n"
# A float or int slot: slot tag, payload length, then the value codec's version, type tag
# and 8 bytes (valuecodec's top-level encoding of one float or int).
_NUMBER_LENGTH = 10
_SLOT_FIELDS = [("slot", "S1"), ("length", "<u4"), ("version", "u1"), ("tag", "S1")]
_FLOAT_SLOTS = np.dtype([*_SLOT_FIELDS, ("value", "<f8")])
_INT_SLOTS = np.dtype([*_SLOT_FIELDS, ("value", "<i8")])
#: The Python type of the values of an explored column of Python numbers, by its array's
#: dtype (a column of bools, or of another dtype, is encoded value by value).
_ARRAY_KINDS: dict[str, type] = {"<f8": float, "<i8": int}


def where_text(parts: tuple[object, ...]) -> str:
    return "".join(map(str, parts))


def _nbytes(part: bytes | memoryview) -> int:
    return len(part) if type(part) is bytes else memoryview(part).nbytes


def put_slot(out: Chunks, value: Any, pickled: bool, where: tuple[object, ...]) -> None:
    """Append one value slot (tag, length and payload) to ``out``.

    Array data is appended as the array's own ``memoryview`` (see
    :func:`~pytraj.storage.valuecodec.dump_parts`): the journal writes large arrays
    without copying them. ``where`` names the value for error messages, in parts joined
    only on error (this runs for every value of every run).
    """
    if value is None:
        out.append(_NONE_SLOT)
        return
    if value is NOT_LOADED:
        out.append(_NOT_LOADED_SLOT)
        return
    if type(value) is LazyValue:
        # A value still in its file (a backend loads lazily) is journaled in full.
        value = value.load()
        if value is None:
            out.append(_NONE_SLOT)
            return
    try:
        if pickled:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            out.append(SLOT_HEAD.pack(b"p", len(data)) + data)
            return
        parts = dump_parts(value)
    except PytrajError as exc:
        raise type(exc)(f"cannot encode the value of {where_text(where)}: {exc}") from exc
    except Exception as exc:
        # pickle raises whatever the object's __reduce__ raises.
        raise UnsupportedValueError(
            f"cannot pickle the value of {where_text(where)} ({type(exc).__name__}: {exc}); "
            "make it picklable or store it in a supported type"
        ) from exc
    if len(parts) == 1:
        out.append(SLOT_HEAD.pack(b"v", len(parts[0])) + parts[0])
    else:
        out.append(SLOT_HEAD.pack(b"v", sum(map(_nbytes, parts))))
        out.extend(parts)


def slot_bytes(value: Any, pickled: bool, where: tuple[object, ...]) -> bytes:
    """Return one value slot as bytes (see :func:`put_slot`)."""
    out: Chunks = []
    put_slot(out, value, pickled, where)
    return out[0] if len(out) == 1 else b"".join(out)


def number_slots(values: Sequence[Any]) -> memoryview | None:
    """The slots of values that are all floats or all ints, encoded at once, or None.

    Explored ranges are mostly that, and long: a study's definition is journaled when
    its runs start and again when they end, so this runs for every point of the study.
    The bytes are those :func:`slot_bytes` gives value by value, as a memoryview of the
    array that holds them (a chunk: not copied into a bytes object of its own).
    """
    source: Sequence[Any] | np.ndarray = values
    if isinstance(values, ExploredColumn) and values.has_python_values:
        # Held as one array (plain numbers explored): its dtype says what every value
        # is, without turning a million of them into Python objects to find out.
        source = values.to_numpy()
        kinds = {_ARRAY_KINDS.get(source.dtype.str)}
    else:
        kinds = set(map(type, values))
    if kinds == {float}:
        tag, layout = b"f", _FLOAT_SLOTS
    elif kinds == {int}:
        tag, layout = b"i", _INT_SLOTS
    else:
        return None
    slots = np.empty(len(source), layout)
    try:
        slots["value"] = source
    except OverflowError:
        return None  # an int beyond int64: the slot-by-slot path says which one
    slots["slot"] = b"v"
    slots["length"] = _NUMBER_LENGTH
    slots["version"] = FORMAT_VERSION
    slots["tag"] = tag
    return slots.view(np.uint8).data
