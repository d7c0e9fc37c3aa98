"""JSON values stored in NetBox exactly, although NetBox keeps them in PostgreSQL jsonb.

jsonb keeps strings, integers of any size, ``true``/``false``/``null`` and
floats written with a decimal point as they were, but it turns a float in
exponent form with a positive exponent (``1e+20``, ``1.5e300``) into an
integer, ``-0.0`` into ``0.0``, refuses ``\\u0000`` in any string or key (a 500)
and NaN or infinities. So a value goes in as it is (``{"value": ...}``, readable
and searchable in NetBox's UI) when none of those can touch it, and otherwise
as its JSON text (``{"json": "..."}``, ASCII only, so surrogates and NULs are
escapes, never raw). Key order is not kept by jsonb and not part of a JSON
value. Everything here is pure.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ...bounded import parse_json
from ...errors import StorageError


def jsonb_safe(value: Any) -> bool:
    """Whether jsonb gives ``value`` back exactly (same types and values)."""
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, str) or not _safe_text(key):
                    return False
                todo.append(sub)
        elif isinstance(item, list):
            todo.extend(item)
        elif isinstance(item, float):
            if not math.isfinite(item) or (item == 0.0 and math.copysign(1.0, item) < 0):
                return False
            if "e+" in repr(item):  # written without a decimal point: jsonb gives an integer back
                return False
        elif isinstance(item, str):
            if not _safe_text(item):
                return False
        elif item is not None and not isinstance(item, (bool, int)):
            return False
    return True


def _safe_text(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: not text PostgreSQL can store
        return False
    return True


def encode(value: Any, what: str) -> dict:
    """``value`` as stored: ``{"value": value}`` when jsonb keeps it, else ``{"json": its JSON text}``."""
    if jsonb_safe(value):
        return {"value": value}
    try:
        return {"json": json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))}
    except (TypeError, ValueError) as exc:
        raise StorageError(f"{what} is not a JSON value NetBox can store ({exc}); fix it in the inventory") from None


def decode(stored: Any, what: str) -> Any:
    """The value :func:`encode` stored; a malformed one is refused in one line naming ``what``."""
    if isinstance(stored, dict) and len(stored) == 1:
        if "value" in stored:
            return stored["value"]
        if "json" in stored and isinstance(stored["json"], str):
            return parse_json(stored["json"], shown=what, error=StorageError)
    raise StorageError(f"{what}: is not a value this plugin stored (expected {{\"value\": ...}} or "
                       "{\"json\": \"...\"}); someone edited it in NetBox: restore it from NetBox's changelog, "
                       "or write the inventory again")
