"""``--history`` as a table or as data: who wrote each version, when, from where, with what and why.

The data (``--format json``/``yaml``) has one object per version with the
keys ``version``, ``time``, ``user``, ``host``, ``command``, ``reason``,
``summary``, then ``current``; a version without a record has ``""`` in
its record fields. The table shows ``-`` there, and cuts long fields short
(saying so below it) so that each version stays one line.
"""

from __future__ import annotations

from typing import Sequence

from ..accounting import FIELDS
from ..terminal import Shown
from .formatting import render_table
from .versions import Version

COLUMNS = ("version", "written (UTC)", "current", "user", "host", "command", "reason",
           "changes since the version before")
#: Widest text a table cell shows per field; JSON and YAML always carry the whole text.
WIDTHS = {"user": 24, "host": 32, "command": 56, "reason": 40, "summary": 60}
MISSING = "-"
CUT = "..."


def as_data(rows: Sequence[Version]) -> list[dict]:
    """One mapping per version, keys in the documented order."""
    return [{"version": v.version, **{key: getattr(v, key) for key in FIELDS}, "current": v.current}
            for v in rows]


def _cell(value: str, width: int) -> tuple[str, bool]:
    """The cell text of one field, and whether it was cut short."""
    if not value:
        return MISSING, False
    if len(value) <= width:
        return value, False
    return value[:width - len(CUT)] + CUT, True


def as_table(rows: Sequence[Version]) -> Shown:
    """The bordered table, one line per version, with a line below it when fields were cut short."""
    if not rows:
        return Shown("no versions stored yet")
    cut_any = False
    table = []
    for v in rows:
        cells = [v.version, v.time or MISSING, "current" if v.current else ""]
        for key in ("user", "host", "command", "reason", "summary"):
            text, cut = _cell(getattr(v, key), WIDTHS[key])
            cut_any = cut_any or cut
            cells.append(text)
        table.append(cells)
    out = render_table(COLUMNS, table)
    if cut_any:
        return Shown(f"{out}\nlong fields end in '{CUT}' here; --format json shows them whole")
    return out


def notes(rows: Sequence[Version]) -> list[str]:
    """The distinct notes the backend gave about records it could not show, in order."""
    seen: list[str] = []
    for v in rows:
        if v.note and v.note not in seen:
            seen.append(v.note)
    return seen
