"""The value codecs of other libraries (pandas, scipy.sparse): a registry the core asks.

The core codec (:mod:`pytraj.storage.valuecodec`) knows Python and numpy values. A value
of another library is encoded, decoded and checked by a :class:`ValueCodec` that the
library's codec module registers (:func:`register_value_codec`) when it is imported. So
that ``import pytraj`` does not import pandas or scipy, a codec module is imported only
when first needed: :func:`provide_value_codec` names it, for the types it handles and the
tags it decodes, and :func:`value_codec_for_type` / :func:`value_codec_for_tag` import it
then. The core never names those modules.

>>> value_codec_for_type("builtins") is None
True
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytraj.storage.valuecodec_base import Decoder, Encoder

__all__ = [
    "ValueCodec",
    "provide_value_codec",
    "register_value_codec",
    "value_codec_for_tag",
    "value_codec_for_type",
]


@dataclass(frozen=True)
class ValueCodec:
    """How values of one library are encoded, decoded and checked.

    Attributes
    ----------
    library
        What the values are, for messages ("pandas").
    type_module
        Values whose type's module is this one or below it are this codec's
        ("scipy.sparse" takes ``scipy.sparse._csr``).
    tags
        The tag bytes it decodes.
    encode
        Appends a value's tag and payload (an :data:`Encoder`).
    decode
        Decodes the value whose tag is at the position given (a :data:`Decoder`).
    problem
        Why a value cannot be stored, as ``(reason, hint)``, or None when it can.
    depth
        Container levels an encoded value takes inside (pandas nests its parts), so that
        a value may sit at most ``MAX_DEPTH - depth`` levels deep.
    """

    library: str
    type_module: str
    tags: bytes
    encode: Encoder
    decode: Decoder
    problem: Callable[[Any], tuple[str, str] | None]
    depth: int = 0


_BY_MODULE: dict[str, ValueCodec] = {}
_BY_TAG: dict[int, ValueCodec] = {}
# Codecs not imported yet: the module that registers each, by type module and by tag.
_PROVIDERS_BY_MODULE: dict[str, str] = {}
_PROVIDERS_BY_TAG: dict[int, str] = {}


def register_value_codec(codec: ValueCodec) -> None:
    """Make ``codec`` encode, decode and check the values it names."""
    _BY_MODULE[codec.type_module] = codec
    for tag in codec.tags:
        _BY_TAG[tag] = codec


def provide_value_codec(type_module: str, tags: bytes, provider: str) -> None:
    """Name the module (``provider``) that registers the codec of ``type_module``'s values.

    It is imported on the first value of that library, or the first tag of ``tags``.
    """
    _PROVIDERS_BY_MODULE[type_module] = provider
    for tag in tags:
        _PROVIDERS_BY_TAG[tag] = provider


def _top_module(type_module: str, table: dict[str, Any]) -> str | None:
    for name in table:
        if type_module == name or type_module.startswith(name + "."):
            return name
    return None


def value_codec_for_type(type_module: str) -> ValueCodec | None:
    """The codec of values whose type is defined in module ``type_module``, if any."""
    name = _top_module(type_module, _BY_MODULE)
    if name is not None:
        return _BY_MODULE[name]
    name = _top_module(type_module, _PROVIDERS_BY_MODULE)
    if name is None:
        return None
    importlib.import_module(_PROVIDERS_BY_MODULE[name])
    return _BY_MODULE.get(name)


def value_codec_for_tag(tag: int) -> ValueCodec | None:
    """The codec that decodes values tagged ``tag``, if any."""
    codec = _BY_TAG.get(tag)
    if codec is None and tag in _PROVIDERS_BY_TAG:
        importlib.import_module(_PROVIDERS_BY_TAG[tag])
        codec = _BY_TAG.get(tag)
    return codec
