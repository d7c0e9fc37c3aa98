"""Text that meets a terminal: every character that could drive it or hide what it shows, made visible.

Names, reasons, records and messages reach error lines and tables from places
an attacker may write (a stored inventory, an etcd key, a tar member name, a
plugin's exception, osa.ini). Printed raw, ESC, BEL, BS and the C1 controls
can erase rows, retitle the window, set the clipboard or hide history, and
the bidirectional overrides reorder what the operator reads. :func:`escape`
shows each such character as a Python-style escape instead:

* ``\\t``, ``\\n``, ``\\r``, and ``\\xHH`` for the other C0 controls, DEL and
  the C1 controls (U+0080 to U+009F);
* ``\\uHHHH`` for the bidirectional controls (U+202A to U+202E, U+2066 to
  U+2069, the marks U+200E, U+200F and U+061C), the invisible characters
  (U+200B to U+200D, U+2060 to U+2064, U+FEFF), the line and paragraph
  separators (U+2028, U+2029) and lone surrogates (which cannot even be
  encoded for output);
A backslash is left as it is. So the escaping is idempotent (text escaped
twice reads as text escaped once) and messages that already quote a value the
Python way (``repr``: ``host name 'comp\\tute'``) read unchanged. The price:
an escape shown is not proof of a control character, since a name may hold
the four characters ``\\x1b`` itself. Where the exact text matters,
``--format json`` gives it. (Escaping the backslash too would make every such
quoted value show doubled backslashes.)

Escaping happens where the text is printed (error lines, and each line of
inventory-manage's text output); tables escape their cells themselves and are
marked :class:`Shown`, so their alignment counts the escaped width and their
line breaks stay. JSON and YAML output is never escaped: it is exact, and both
formats escape control characters themselves.
"""

from __future__ import annotations

import re
from typing import Iterable

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069"
                     "\ufeff\ud800-\udfff]")
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


class Shown(str):
    """Text already escaped for a terminal (a rendered table): :func:`lines` prints it as it is."""


def _replacement(match: re.Match) -> str:
    char = match.group()
    short = _SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str, keep: str = "") -> str:
    """``text`` with every control, bidirectional or invisible character escaped (idempotent).

    Characters in ``keep`` (``"\\n"`` for text of several lines) pass unchanged.
    """
    if not _UNSAFE.search(text):
        return text  # the common case costs one scan
    if not keep:
        return _UNSAFE.sub(_replacement, text)
    return _UNSAFE.sub(lambda m: m.group() if m.group() in keep else _replacement(m), text)


def lines(parts: Iterable[str]) -> str:
    """Lines for people, joined: each escaped (a line break inside one shows as ``\\n``), :class:`Shown` as is."""
    return "\n".join(part if isinstance(part, Shown) else escape(part) for part in parts)


def error_line(text: str) -> str:
    """One ``ERROR:`` line for stderr, escaped."""
    return f"ERROR: {escape(text)}"
