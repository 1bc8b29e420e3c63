"""Trajectory-level values and metadata <-> HDF5 nodes and attributes, exactly.

Values with a natural HDF5 form are stored in it, so that h5py, ``ptdump`` or HDFView show
them as they are: Python and numpy numbers and bools, text and bytes without NULs, and
numpy arrays of numeric, bool and fixed-width bytes dtypes (native byte order). The
``pytraj_type`` attribute of the node records the exact type to give back (``float``,
``int``, ``numpy`` ...); datetime64/timedelta64 values are stored as int64 with their
dtype in ``pytraj_dtype``, Fortran-ordered arrays in C order with ``pytraj_order = "F"``.
Every other value is stored as :mod:`~pytraj.storage.valuecodec` bytes (``uint8``) and
only Pickle leaves store pickles.

Attributes (comments, annotations, provenance) follow the same idea: Python ``str``,
``bool``, ``int``, ``float`` and ``complex`` are stored as plain HDF5 attributes and come
back as those types; anything else is stored as valuecodec bytes in a ``uint8`` attribute.
"""

from __future__ import annotations

import hashlib
import pickle
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pytraj.errors import FileFormatError, PickleNotAllowedError, ValueDecodeError
from pytraj.storage.hdf5.damage import read_guard
from pytraj.storage.hdf5.layout import is_plain_name
from pytraj.storage.hdf5.sizes import read_leaf
from pytraj.storage.records import LazyValue
from pytraj.storage.valuecodec import dumps, loads

__all__ = [
    "BIG_ATTRS_GROUP",
    "BIG_ATTR_BYTES",
    "BIG_SUFFIX",
    "DTYPE_ATTR",
    "ORDER_ATTR",
    "TYPE_ATTR",
    "CachedLoader",
    "Pickled",
    "PickleLoader",
    "RawPickle",
    "clear_mapping",
    "decode_text",
    "drop_big_attr",
    "encode_text",
    "get_attr",
    "get_mapping",
    "has_attr",
    "lazy_value",
    "natural_dtype",
    "read_value",
    "remove_attrs",
    "remove_big_attrs_below",
    "resolve",
    "same_value",
    "scalar_tag",
    "set_attr",
    "set_mapping",
    "storage_dtype",
    "write_value",
]

TYPE_ATTR = "pytraj_type"
#: Attribute values bigger than this (in bytes) are stored in a node: HDF5 cannot hold an
#: attribute of 64 KiB in an object header, and many big ones would crowd it.
BIG_ATTR_BYTES = 16 * 1024
#: Root group of the nodes holding big attribute values (a name no trajectory can take).
BIG_ATTRS_GROUP = "_pytraj_attributes"
#: ``<name>@node`` holds the name of the node in :data:`BIG_ATTRS_GROUP` with ``<name>``.
BIG_SUFFIX = "@node"
_BIG_TEXT = "text"
_BIG_ENCODED = "valuecodec"
_BIG_OWNER = "owner"
_BIG_NAME = "attribute"
DTYPE_ATTR = "pytraj_dtype"
ORDER_ATTR = "pytraj_order"

_MISSING: Any = object()
# Sizes PyTables has atoms for, per dtype kind.
_ITEMSIZES = {"b": (1,), "i": (1, 2, 4, 8), "u": (1, 2, 4, 8), "f": (2, 4, 8), "c": (8, 16)}
_PYTHON_SCALARS = {bool: "bool", int: "int", float: "float", complex: "complex"}
_SCALAR_DTYPES = {
    "bool": np.dtype(np.bool_),
    "int": np.dtype(np.int64),
    "float": np.dtype(np.float64),
    "complex": np.dtype(np.complex128),
}
_FROM_SCALAR: dict[str, Callable[[Any], Any]] = {
    "bool": bool,
    "int": int,
    "float": float,
    "complex": complex,
}


# -- text -------------------------------------------------------------------------------------


def encode_text(text: str) -> bytes:
    """UTF-8, keeping lone surrogates (names from ``os.fsdecode`` may hold them)."""
    return text.encode("utf-8", "surrogatepass")


def decode_text(raw: bytes | np.bytes_) -> str:
    """Inverse of :func:`encode_text`."""
    return bytes(raw).decode("utf-8", "surrogatepass")


# -- dtypes -----------------------------------------------------------------------------------


def natural_dtype(dtype: np.dtype[Any], *, allow_bytes: bool = False) -> bool:
    """Whether arrays of ``dtype`` have a natural HDF5 form (PyTables has an atom)."""
    if dtype.names is not None or dtype.subdtype is not None or not dtype.isnative:
        return False
    if dtype.kind in "Mm":
        return True
    if allow_bytes and dtype.kind == "S":
        return dtype.itemsize > 0
    return dtype.itemsize in _ITEMSIZES.get(dtype.kind, ())


def storage_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype written to the file: int64 for datetime64/timedelta64, else ``dtype``."""
    return np.dtype(np.int64) if dtype.kind in "Mm" else dtype


def scalar_tag(value: Any) -> tuple[str, np.dtype[Any]] | None:
    """``(tag, dtype)`` of a scalar a table column can hold exactly, else None.

    Tags: ``bool``/``int``/``float``/``complex`` for the Python types (stored as bool,
    int64, float64, complex128), ``numpy`` for numpy numbers, bools and datetimes.
    """
    kind_type = type(value)
    tag = _PYTHON_SCALARS.get(kind_type)
    if tag is not None:
        if tag == "int" and not -(2**63) <= value < 2**63:
            return None
        return tag, _SCALAR_DTYPES[tag]
    if isinstance(value, np.generic) and not isinstance(value, np.flexible):
        dtype = value.dtype
        # Aliases such as np.longlong share a dtype with np.int64 but not a type.
        if kind_type is dtype.type and natural_dtype(dtype):
            return "numpy", dtype
    return None


# -- attributes -------------------------------------------------------------------------------


def set_attr(attrs: Any, name: str, value: Any) -> None:
    """Store ``value`` as attribute ``name``: natural when exact, else valuecodec bytes.

    A value of more than :data:`BIG_ATTR_BYTES` goes to a node of
    ``/_pytraj_attributes`` instead (HDF5 cannot store an attribute of 64 KiB in an
    object header, and a failed attempt leaves the file unreadable), and the attribute
    ``<name>@node`` names that node; :func:`get_attr` reads it back transparently.
    """
    drop_big_attr(attrs, name)
    kind_type = type(value)
    natural: Any
    if kind_type is str and "\x00" not in value:
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError:
            natural = None
        else:
            if len(raw) > BIG_ATTR_BYTES:
                _store_big(attrs, name, raw, _BIG_TEXT)
                return
            attrs[name] = value
            return
    elif kind_type in _PYTHON_SCALARS and not (kind_type is int and not -(2**63) <= value < 2**63):
        attrs[name] = _SCALAR_DTYPES[_PYTHON_SCALARS[kind_type]].type(value)
        return
    natural = dumps(value)
    if len(natural) > BIG_ATTR_BYTES:
        _store_big(attrs, name, natural, _BIG_ENCODED)
        return
    attrs[name] = np.frombuffer(natural, dtype=np.uint8)


def get_attr(attrs: Any, name: str, default: Any = _MISSING) -> Any:
    """Read an attribute written by :func:`set_attr`, with its exact type."""
    if name in attrs:
        return attr_value(attrs[name], name)
    if name + BIG_SUFFIX in attrs:
        return _load_big(attrs, name)
    if default is _MISSING:
        raise KeyError(name)
    return default


def has_attr(attrs: Any, name: str) -> bool:
    """Whether :func:`set_attr` stored ``name`` (as an attribute or in a node)."""
    return name in attrs or name + BIG_SUFFIX in attrs


def drop_big_attr(attrs: Any, name: str) -> None:
    """Remove attribute ``name`` in both forms, and the node holding a big value."""
    marker = name + BIG_SUFFIX
    if marker in attrs:
        key = str(attrs[marker])
        del attrs[marker]
        h5 = attrs._v_node._v_file
        big = f"/{BIG_ATTRS_GROUP}/{key}"
        if big in h5:
            h5.remove_node(big)
    if name in attrs:
        del attrs[name]


def remove_attrs(attrs: Any) -> None:
    """Remove every user attribute of a node, with the nodes of its big values."""
    for attr in list(attrs._v_attrnamesuser):
        if attr.endswith(BIG_SUFFIX):
            drop_big_attr(attrs, attr[: -len(BIG_SUFFIX)])
        elif attr in attrs:
            del attrs[attr]


def remove_big_attrs_below(h5: Any, path: str) -> None:
    """Remove the big-value nodes of every node at or below ``path`` (a removed group)."""
    if f"/{BIG_ATTRS_GROUP}" not in h5:
        return
    prefix = path.rstrip("/") + "/"
    for node in list(h5.get_node(f"/{BIG_ATTRS_GROUP}")._f_iter_nodes()):
        owner = str(node._v_attrs[_BIG_OWNER]) if _BIG_OWNER in node._v_attrs else ""
        if owner == path or owner.startswith(prefix):
            node._f_remove()


def _big_key(node_path: str, name: str) -> str:
    # One node per (node, attribute): rewriting the attribute replaces it.
    digest = hashlib.blake2b(encode_text(f"{node_path}\x00{name}"), digest_size=16)
    return "a" + digest.hexdigest()


def _store_big(attrs: Any, name: str, raw: bytes, kind: str) -> None:
    import tables  # keeps import pytraj fast: PyTables loads on first use

    node = attrs._v_node
    h5 = node._v_file
    key = _big_key(node._v_pathname, name)
    with warnings.catch_warnings():
        # The group's name starts with "_" so that no trajectory can take it.
        warnings.simplefilter("ignore", tables.NaturalNameWarning)
        if f"/{BIG_ATTRS_GROUP}" not in h5:
            h5.create_group("/", BIG_ATTRS_GROUP)
        if f"/{BIG_ATTRS_GROUP}/{key}" in h5:
            h5.remove_node(f"/{BIG_ATTRS_GROUP}/{key}")
        array = h5.create_array(f"/{BIG_ATTRS_GROUP}", key, obj=np.frombuffer(raw, dtype=np.uint8))
    array._v_attrs[TYPE_ATTR] = kind
    array._v_attrs[_BIG_OWNER] = node._v_pathname
    array._v_attrs[_BIG_NAME] = name
    attrs[name + BIG_SUFFIX] = key


def _load_big(attrs: Any, name: str) -> Any:
    node = attrs._v_node
    key = str(attrs[name + BIG_SUFFIX])
    where = f"/{BIG_ATTRS_GROUP}/{key}"
    h5 = node._v_file
    # Damaged bytes of the node name it, not the node whose attribute it holds.
    with read_guard(Path(h5.filename), where, h5):
        try:
            array = h5.get_node(where)
        except LookupError:
            raise FileFormatError(
                f"the attribute {name!r} of {node._v_pathname} is stored in {where}, which the "
                "file lacks; the file is damaged (restore it from a backup, or run pytraj check)"
            ) from None
        kind = str(array._v_attrs[TYPE_ATTR])
        raw = read_leaf(array).tobytes()
    if kind == _BIG_TEXT:
        return decode_text(raw)
    if kind == _BIG_ENCODED:
        return loads(raw)
    raise FileFormatError(
        f"{where} (attribute {name!r} of {node._v_pathname}) holds values of kind {kind!r}, "
        "which this pytraj does not know; it was written by a newer pytraj"
    )


def attr_value(raw: Any, name: str) -> Any:
    """Turn a raw attribute value as PyTables returns it into the stored value."""
    if isinstance(raw, str):  # np.str_ too
        return str(raw)
    if isinstance(raw, bool | np.bool_):
        return bool(raw)
    if isinstance(raw, int | np.int64):
        return int(raw)
    if isinstance(raw, float | np.float64):
        return float(raw)
    if isinstance(raw, complex | np.complex128):
        return complex(raw)
    if isinstance(raw, np.ndarray) and raw.dtype == np.uint8:
        return loads(raw.tobytes())
    if isinstance(raw, bytes | np.bytes_):
        return decode_text(raw)
    raise FileFormatError(
        f"the attribute {name!r} holds {type(raw).__name__}, which pytraj did not write; "
        "was the file changed by another program?"
    )


def set_mapping(attrs: Any, name: str, mapping: Mapping[str, Any]) -> None:
    """Store a str-keyed mapping as attributes ``<name>.<key>`` plus their order.

    Keys that cannot be part of an attribute name send the whole mapping to one
    valuecodec attribute ``<name>`` instead. Big values go to nodes (:func:`set_attr`).
    """
    clear_mapping(attrs, name)
    if not mapping:
        return
    keys = list(mapping)
    if all(type(key) is str and is_plain_name(key) for key in keys):
        for key, value in mapping.items():
            set_attr(attrs, f"{name}.{key}", value)
        set_attr(attrs, f"{name}_order", ",".join(keys))
    else:
        set_attr(attrs, name, dict(mapping))


def clear_mapping(attrs: Any, name: str) -> None:
    """Remove what :func:`set_mapping` wrote under ``name``."""
    prefix = f"{name}."
    for attr in list(attrs._v_attrnamesuser):
        base = attr[: -len(BIG_SUFFIX)] if attr.endswith(BIG_SUFFIX) else attr
        if base.startswith(prefix) or base in (name, f"{name}_order"):
            drop_big_attr(attrs, base)


def get_mapping(attrs: Any, name: str) -> dict[str, Any]:
    """Read a mapping written by :func:`set_mapping` ({} when none)."""
    if has_attr(attrs, name):
        value = get_attr(attrs, name)
        if type(value) is not dict:
            raise FileFormatError(f"the attribute {name!r} does not hold a mapping")
        return value
    order = f"{name}_order"
    if not has_attr(attrs, order):
        return {}
    keys = str(get_attr(attrs, order)).split(",")
    return {key: get_attr(attrs, f"{name}.{key}") for key in keys}


# -- values as nodes --------------------------------------------------------------------------


class Pickled:
    """Pickle bytes read from a file, not yet unpickled."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        self.raw = raw


def _natural_form(value: Any) -> tuple[str, np.ndarray[Any, Any], dict[str, str]] | None:
    """``(pytraj_type, array to write, extra attributes)`` or None when none exists."""
    kind_type = type(value)
    scalar = scalar_tag(value)
    if scalar is not None:
        tag, dtype = scalar
        array = np.asarray(value, dtype=dtype)
        if dtype.kind in "Mm":
            return tag, array.view(np.int64), {DTYPE_ATTR: dtype.str}
        return tag, array, {}
    if kind_type is str or kind_type is bytes:
        if kind_type is str:
            try:
                raw = value.encode("utf-8")
            except UnicodeEncodeError:
                return None
        else:
            raw = value
        if not raw or b"\x00" in raw:
            return None  # fixed-width HDF5 strings cannot keep NULs
        return kind_type.__name__, np.array(raw, dtype=f"S{len(raw)}"), {}
    if kind_type is np.ndarray and natural_dtype(value.dtype, allow_bytes=True):
        extra: dict[str, str] = {}
        flags = value.flags
        if value.ndim >= 2 and flags.f_contiguous and not flags.c_contiguous:
            extra[ORDER_ATTR] = "F"
        # Not np.ascontiguousarray: it turns 0-d arrays into 1-d ones.
        array = value if flags.c_contiguous else value.copy(order="C")
        if value.dtype.kind in "Mm":
            extra[DTYPE_ATTR] = value.dtype.str
            array = array.view(np.int64)
        return "ndarray", array, extra
    return None


def write_value(h5: Any, parent: Any, name: str, value: Any, *, pickled: bool) -> None:
    """Write ``value`` as node ``name`` of ``parent`` (replacing one that exists)."""
    value = resolve(value)
    extra: dict[str, str]
    if name in parent._v_children:
        h5.remove_node(parent, name, recursive=True)
    if pickled:
        raw = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        tag, array, extra = "pickle", np.frombuffer(raw, dtype=np.uint8), {}
    else:
        natural = _natural_form(value)
        if natural is None:
            tag, array, extra = "valuecodec", np.frombuffer(dumps(value), dtype=np.uint8), {}
        else:
            tag, array, extra = natural
    node = h5.create_array(parent, name, obj=array)
    node._v_attrs[TYPE_ATTR] = tag
    for attr, text in extra.items():
        node._v_attrs[attr] = text


def read_value(node: Any) -> Any:
    """Read a node written by :func:`write_value`; Pickle values come as :class:`Pickled`."""
    attrs = node._v_attrs
    tag = str(attrs[TYPE_ATTR]) if TYPE_ATTR in attrs else ""
    data = read_leaf(node)
    if tag == "valuecodec":
        return loads(np.asarray(data).tobytes())
    if tag == "pickle":
        return Pickled(np.asarray(data).tobytes())
    array = np.asarray(data)
    if DTYPE_ATTR in attrs:
        array = array.view(np.dtype(str(attrs[DTYPE_ATTR])))
    convert = _FROM_SCALAR.get(tag)
    if convert is not None:
        return convert(array[()])
    if tag == "numpy":
        return array[()]
    if tag == "str":
        return bytes(array[()]).decode("utf-8")
    if tag == "bytes":
        return bytes(array[()])
    if tag == "ndarray":
        if ORDER_ATTR in attrs and str(attrs[ORDER_ATTR]) == "F":
            return np.asfortranarray(array)
        return array
    raise FileFormatError(
        f"the node {node._v_pathname} has no known {TYPE_ATTR} ({tag!r}); it was not "
        "written by this version of pytraj"
    )


def node_nbytes(node: Any) -> int:
    """Bytes the value of a node occupies once read."""
    return int(node.nrows * node.rowsize) if node.shape else int(node.atom.size)


# -- laziness ---------------------------------------------------------------------------------


class CachedLoader:
    """Loads a value once and keeps it (``cached``), so that identity survives access."""

    __slots__ = ("_load", "cached")

    def __init__(self, load: Callable[[], Any]) -> None:
        self._load = load
        self.cached: Any = _MISSING

    def __call__(self) -> Any:
        if self.cached is _MISSING:
            self.cached = self._load()
        return self.cached

    @property
    def loaded(self) -> bool:
        """Whether the value was loaded already."""
        return self.cached is not _MISSING


class PickleLoader(CachedLoader):
    """Unpickles stored bytes on access, or refuses under ``allow_pickle=False``."""

    __slots__ = ("allowed", "raw", "where")

    def __init__(self, raw: bytes, allowed: bool, where: str) -> None:
        super().__init__(self._unpickle)
        self.raw = raw
        self.allowed = allowed
        self.where = where

    def _unpickle(self) -> Any:
        if not self.allowed:
            raise PickleNotAllowedError(
                f"{self.where} is pickled and the file was loaded with allow_pickle=False; "
                "load it with allow_pickle=True to unpickle it (only for files you trust)"
            )
        try:
            return pickle.loads(self.raw)  # a Pickle leaf, and the caller allows it
        except (pickle.UnpicklingError, EOFError, ValueError, IndexError, OverflowError) as exc:
            # Damaged bytes; a class that cannot be imported raises ImportError and
            # AttributeError as they are, which name the missing module or class.
            raise ValueDecodeError(
                f"{self.where}: the stored pickle cannot be read ({type(exc).__name__}: "
                f"{exc}); the file is damaged there (run `pytraj check FILE`)"
            ) from exc


def lazy_value(load: Callable[[], Any], description: str) -> LazyValue:
    """A :class:`LazyValue` that loads once and remembers the value."""
    return LazyValue(CachedLoader(load), description)


def pickled_lazy(raw: bytes, allowed: bool, where: str) -> LazyValue:
    """A :class:`LazyValue` over pickle bytes (refused on access when not allowed)."""
    return LazyValue(PickleLoader(raw, allowed, where), f"pickled {where}")


def loader_of(value: Any) -> CachedLoader | None:
    """The :class:`CachedLoader` behind a LazyValue this module made, else None."""
    if type(value) is LazyValue:
        load = value.loader
        if isinstance(load, CachedLoader):
            return load
    return None


class RawPickle:
    """Pickle bytes from a file, written on as they are (never unpickled on the way)."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        # Unpickling a pickle of this object yields the original object again.
        return pickle.loads, (self.raw,)


def resolve(value: Any) -> Any:
    """A value ready to be written elsewhere: lazies loaded, file pickles kept as bytes."""
    if type(value) is not LazyValue:
        return value
    loader = loader_of(value)
    if isinstance(loader, PickleLoader) and not loader.loaded:
        return RawPickle(loader.raw)
    return value.load()


def same_value(old: Any, new: Any, pickled: bool) -> bool:
    """Whether ``new`` is what ``old`` (as read or written before) already holds.

    Identity first (a loaded trajectory hands back the objects it was given), then the
    value a lazy ``old`` loaded, then equal encodings. A value that cannot be compared
    without unpickling counts as changed.
    """
    if old is new:
        return True
    loader = loader_of(old)
    if loader is not None:
        if loader.loaded:
            if loader.cached is new:
                return True
            old = loader.cached
        elif isinstance(loader, PickleLoader):
            return False
        else:
            old = loader()
    if type(new) is LazyValue or type(old) is LazyValue:
        return False
    if type(old) is not type(new):
        return False
    try:
        if pickled:
            return pickle.dumps(old, protocol=pickle.HIGHEST_PROTOCOL) == pickle.dumps(
                new, protocol=pickle.HIGHEST_PROTOCOL
            )
        return dumps(old) == dumps(new)
    except Exception:  # anything unencodable simply counts as changed
        return False
