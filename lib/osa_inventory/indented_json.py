"""The stored inventory's text, ``json.dumps(value, indent=4, sort_keys=True)`` to the byte, in less time.

OpenStack-Ansible's tools read ``openstack_inventory.json`` as OSA writes it:
sorted keys, four spaces of indent, ASCII only. Given an indent, ``json.dumps``
uses its pure-Python encoder (a generator per container, several checks per
value), which costs a fresh run of 3000 hosts about 75 ms. :func:`dumps` builds
the same text with C-fast pieces (the C string encoder ``json.dumps`` itself
uses, ``str.join``) for the values JSON gives: ``dict`` with ``str`` keys,
``list``, ``str``, ``int``, ``float``, ``bool`` and ``None``, of exactly those
types. Anything else (a tuple, a key that is not a string, a subclass) makes it
hand the whole value to ``json.dumps``, so the output never differs from it;
tests/test_indented_json.py holds that with Hypothesis.
"""

from __future__ import annotations

import json
from json.encoder import c_make_encoder
from json.encoder import encode_basestring_ascii as _string
from typing import Any, Callable

INDENT = "    "
_INFINITY = float("inf")


_STRING = frozenset((str,))
_SCALARS = frozenset((str, int, float, bool, type(None)))
_FLAT: dict[int, Callable] = {}


def _flat_encoder(level: int) -> Callable | None:
    """The C encoder writing a mapping of scalars at ``level``: its items separated by a new line and indent."""
    if c_make_encoder is None:  # pragma: no cover - a Python without the json C accelerator
        return None
    if level not in _FLAT:
        # The arguments of json's own C encoder: markers, default, string encoder, indent, key and item
        # separators, sort_keys, skipkeys, allow_nan; its numbers and strings are written as json.dumps does.
        _FLAT[level] = c_make_encoder(None, None, _string, None, ": ", ",\n" + INDENT * (level + 1),
                                      True, False, True)
    return _FLAT[level]


class _Unusual(Exception):
    """A value this module leaves to ``json.dumps``."""


def _float(value: float) -> str:
    # json.encoder's floatstr with allow_nan: repr, but JavaScript's names for the three non-numbers.
    if value != value:
        return "NaN"
    if value == _INFINITY:
        return "Infinity"
    if value == -_INFINITY:
        return "-Infinity"
    return float.__repr__(value)


def _scalar(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        return _float(value)
    raise _Unusual


def _encode(value: Any, level: int) -> str:
    kind = type(value)
    if kind is str:
        return _string(value)
    if kind is dict:
        if not value:
            return "{}"
        inner = "\n" + INDENT * (level + 1)
        flat = _flat_encoder(level) if _SCALARS.issuperset(map(type, value.values())) else None
        if flat is not None:
            # Only strings, numbers, booleans and nulls: json's C encoder writes the body, sorting and
            # converting the keys as json.dumps does.
            return "{" + inner + "".join(flat(value, 0))[1:-1] + "\n" + INDENT * level + "}"
        keys = sorted(value)  # distinct keys: the same order as sorting the items
        if not _STRING.issuperset(map(type, keys)):
            raise _Unusual
        deeper = level + 1
        return ("{" + inner
                + ("," + inner).join([_string(k) + ": " + (_string(v) if type(v) is str else _encode(v, deeper))
                                      for k, v in zip(keys, map(value.__getitem__, keys))])
                + "\n" + INDENT * level + "}")
    if kind is list:
        if not value:
            return "[]"
        inner = "\n" + INDENT * (level + 1)
        if all(type(v) is str for v in value):  # lists of names: joined by C code
            items = map(_string, value)
        else:
            items = [_encode(v, level + 1) for v in value]
        return "[" + inner + ("," + inner).join(items) + "\n" + INDENT * level + "]"
    return _scalar(value)


def dumps(value: Any) -> str:
    """``json.dumps(value, indent=4, sort_keys=True)``, the same text, faster for JSON's own types."""
    try:
        return _encode(value, 0)
    except (_Unusual, RecursionError, TypeError, ValueError):  # json.dumps: the same text, or its own error
        return json.dumps(value, indent=4, sort_keys=True)
