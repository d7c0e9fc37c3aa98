"""The inventory as the script prints it: compact JSON with sorted keys, or one line saying what cannot be.

YAML builds values JSON has no form for (sets, binary data, dates) and mappings whose keys do not sort
together (1 beside "b"). OSA accepts such a config as long as they stay where the inventory never
shows them, so they are refused here, when the inventory would print them, naming where they sit.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ConfigError

#: What JSON holds as a value (a key may also be any of them but a container; numbers and text sort apart).
_SCALARS = (str, int, float, bool, type(None))
_KINDS = {"set": "a set", "bytes": "binary data", "date": "a date", "datetime": "a timestamp"}


def printed_text(inventory: dict) -> str:
    """``json.dumps(inventory, sort_keys=True)``, or ConfigError naming the first part JSON cannot print."""
    try:
        return json.dumps(inventory, sort_keys=True)
    except TypeError:  # what JSON has no form for, or keys that do not sort (a loop, ValueError, cannot be parsed)
        problem = unprintable(inventory)
        if problem is None:
            raise
        raise ConfigError(f"the inventory cannot be printed as JSON: {problem}; it comes from the config or "
                          "env.d: quote it there to keep it as text") from None


def _kind(value: Any) -> str:
    return _KINDS.get(type(value).__name__, f"a {type(value).__name__}")


def unprintable(data: Any, where: str = "") -> str | None:
    """Where ``data`` holds what JSON with sorted keys cannot print, and what it is; None if nothing."""
    if isinstance(data, dict):
        for key in data:
            if not isinstance(key, _SCALARS):
                return f"{where or 'the top level'} has a key that is {_kind(key)} ({key})"
        try:
            sorted(data)
        except TypeError:
            shown = ", ".join(repr(key) for key in list(data)[:4])
            return f"{where or 'the top level'} mixes keys that do not sort together ({shown})"
        items = ((str(key), value) for key, value in data.items())
    elif isinstance(data, (list, tuple)):
        items = ((str(index), value) for index, value in enumerate(data))
    elif isinstance(data, _SCALARS):
        return None
    else:
        return f"{where} is {_kind(data)} ({str(data)[:60]})"
    for key, value in items:
        found = unprintable(value, f"{where}.{key}" if where else key)
        if found:
            return found
    return None
