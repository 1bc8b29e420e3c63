"""The binary format of the plain storage records (for the write-ahead journal).

:mod:`pytraj.storage.recordcodec` encodes records in it and
:mod:`pytraj.storage.recorddecode` decodes them; both take the fixed-size parts from here.

Format (version 1)
------------------
Integers are little-endian; ``q`` is int64, ``d`` float64, ``I`` u32; a *str* is
``I`` byte length + UTF-8 (lone surrogates kept). Each top-level encoding starts with one
version byte. A *value slot* is one tag and its payload::

    N                     None
    n                     NOT_LOADED (an item whose value stayed in the file)
    v  I length + bytes   a value encoded by :func:`pytraj.storage.valuecodec.dumps`
    p  I length + bytes   a pickled value (Pickle leaves only)

(encoded by :mod:`pytraj.storage.recordslots`, decoded by :mod:`pytraj.storage.recorddecode`).

A *map* is ``I`` count + count x (str key, value slot). The records::

    run         q idx, q status, q attempt, d start, d finish, q pid,
                I len(point_id), I len(host), I len(log), B has_failure,
                I number of leaves, I number of values;
                point_id, host, log bytes; [failure]; leaves; values as
                count x (str leaf path, str item, value slot)
    failure     q idx, q attempt; str exc_type, message, traceback, log
    leaf        B flags (1 per_run, 2 pickled, 4 has explored); str path, leaf_class,
                comment; annotations map; default slot; [I count + explored slots];
                items map
    definition  str name, comment; d created; q n_runs; provenance map;
                I count + groups (str path, comment; annotations map);
                I count + leaves; I count + links (str path, target, comment);
                I count, I width (0xFFFFFFFF: each id is I length + bytes) + point ids
    runs        I count + count x run
"""

from __future__ import annotations

import struct

__all__ = [
    "DEFINITION_HEAD",
    "EMPTY_MAP",
    "EXPLORED",
    "FAILURE_HEAD",
    "PER_RUN",
    "PICKLED",
    "RECORD_FORMAT_VERSION",
    "RUN_HEAD",
    "TWO_U32",
    "U32",
    "VARIABLE_WIDTH",
    "VERSION_BYTE",
]

#: Version byte that starts every encoding; decoding refuses versions it does not know.
RECORD_FORMAT_VERSION = 1
VERSION_BYTE = bytes([RECORD_FORMAT_VERSION])

#: The fixed-size parts of the format (see the module docstring).
U32 = struct.Struct("<I")
RUN_HEAD = struct.Struct("<qqqddqIIIBII")
FAILURE_HEAD = struct.Struct("<qq")
DEFINITION_HEAD = struct.Struct("<dq")
TWO_U32 = struct.Struct("<II")
VARIABLE_WIDTH = 0xFFFFFFFF
#: Flags of a leaf record.
PER_RUN, PICKLED, EXPLORED = 1, 2, 4
EMPTY_MAP = U32.pack(0)
