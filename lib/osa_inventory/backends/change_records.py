"""Change records kept in a service that keeps no earlier inventories: who changed the inventory, when,
from where, with what and why.

The Craton and NetBox backends keep the last ``keep`` change records (their
``change_records`` option) beside their state record: Craton as region variables
``osa-inventory:change:<sequence>``, NetBox as the same keys in its state config
context. Each one is sent in the same request as the commit it describes, so a
record exists exactly when its write landed: an interrupted write leaves none
(its mark carries its record, so whoever rolls it back can name it). The
sequence number counts commits in the state record (``sequence``); records
older than the newest ``keep`` are removed by the request that already follows
or makes every commit (no extra request).

Records are read back from a service others can write to, so nothing here
trusts them: a damaged record becomes a row saying what is wrong with it,
and more records than the bound are cut to the newest ``keep``, saying so.
Everything here is pure (no I/O).
"""

from __future__ import annotations

from typing import Any

from ..accounting import ChangeRecord
from ..errors import InventoryError

#: The key of a record, before its sequence number (Craton's region variables all start "osa-inventory:").
RECORD_PREFIX = "osa-inventory:change:"
DEFAULT_KEEP = 20
#: Every run downloads the records (Craton: with the region variables): 100 of typical size are about 35 KiB.
MAX_KEEP = 100
ROLL_BACK_COMMAND = "roll-back"
UNRECORDED_COMMAND = "write without a change record"
NO_VERSION = "-"
#: Larger numbers are not ours (a hostile key must not push the sequence out of its own range).
MAX_SEQUENCE = 10 ** 15


def key_of(sequence: int) -> str:
    """The key holding the record of commit ``sequence``."""
    return f"{RECORD_PREFIX}{sequence}"


def sequence_of(key: str) -> int | None:
    """The sequence number in a record key (canonical decimal, no sign or leading zero), else None."""
    text = key[len(RECORD_PREFIX):]
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0") or len(text) > 16:
        return None
    number = int(text)
    return number if 0 < number < MAX_SEQUENCE else None


def stored(region_vars: dict) -> dict:
    """The record variables among a region's variables (key -> value)."""
    return {k: v for k, v in region_vars.items() if k.startswith(RECORD_PREFIX)}


def next_sequence(records: dict, state: dict | None) -> int:
    """The sequence number of the next commit: past both the state's counter and every stored record."""
    # Numbers past half the range are someone else's doing: counting on from them would run out.
    counted = (state or {}).get("sequence")
    numbers = [counted] if isinstance(counted, int) and not isinstance(counted, bool) else []
    numbers += [sequence_of(key) for key in records]
    return max([n for n in numbers if n is not None and 0 < n < MAX_SEQUENCE // 2], default=0) + 1


def entry(record: ChangeRecord, revision: str) -> dict:
    """What is stored for one commit: the record, and the revision it made (to match the state record)."""
    return {**record.to_dict(), "revision": revision}


def expired(records: dict, newest: int, keep: int) -> list[str]:
    """Record keys to remove once commit ``newest`` is stored: all but the newest ``keep``, misnamed ones,
    and numbers past ``newest`` (no commit made them)."""
    out = []
    for key in records:
        number = sequence_of(key)
        if number is None or number <= newest - keep or number > newest:
            out.append(key)
    return out


def _clip(text: str, size: int = 80) -> str:
    return text if len(text) <= size else text[:size - 3] + "..."


def _row(number: int, key: str, value: Any, holder: str) -> dict:
    try:
        record = ChangeRecord.from_dict(value, where=f"change record {number} ({holder} {_clip(key)})")
    except InventoryError as exc:  # shown in its row: one bad record must not hide the others
        return {"version": str(number), "time": "", "summary": f"damaged: {exc}"}
    return {"version": str(number), **record.to_dict()}


def history(records: dict, state: dict | None, keep: int, holder: str = "region variable") -> list[dict]:
    """Rows for ``--history``, oldest first: one per stored record, plus notes on what is not a record.

    ``version`` is the commit's sequence number; ``current`` marks the record of
    the commit that stored the inventory held now. A note row (version ``-``)
    says when records are misnamed, beyond the bound, or when the current
    inventory was stored without one (by a version of the plugin before
    records were kept). ``holder`` names what holds a record where the service shows it (Craton: a
    region variable).
    """
    rows: list[dict] = []
    numbered = []
    misnamed = []
    for key, value in records.items():
        number = sequence_of(key)
        if number is None:
            misnamed.append(key)
        else:
            numbered.append((number, key, value))
    if misnamed:  # one note however many: a flood of them must not flood the listing
        rows.append({"version": NO_VERSION, "time": "",
                     "summary": f"{len(misnamed)} {holder}{'s' if len(misnamed) != 1 else ''} named like "
                                f"change records without a sequence number ({_clip(min(misnamed))}...) not shown; "
                                "the next write removes them"})
    numbered.sort(key=lambda item: item[0])
    revision = (state or {}).get("revision")
    claimed = any(isinstance(value, dict) and value.get("revision") == revision for _, _, value in numbered)
    if len(numbered) > keep:
        dropped = len(numbered) - keep
        rows.append({"version": NO_VERSION, "time": "",
                     "summary": f"{dropped} older change record{'s' if dropped != 1 else ''} beyond change_records "
                                f"= {keep} not shown; the next write removes {'them' if dropped != 1 else 'it'}"})
        numbered = numbered[dropped:]
    for number, key, value in numbered:
        row = _row(number, key, value, holder)
        if isinstance(value, dict) and revision is not None and value.get("revision") == revision:
            row["current"] = True  # the record of the commit that stored the inventory held now
        rows.append(row)
    if state is not None and not claimed:
        written, writer = state.get("written"), state.get("writer")
        rows.append({"version": NO_VERSION, "time": _clip(written, 40) if isinstance(written, str) else "",
                     "host": _clip(writer, 255) if isinstance(writer, str) else "",
                     "summary": "the current inventory was stored without a change record (by a version of "
                                "the plugin that kept none)"})
    return rows


def interrupted(marks: list[dict]) -> str:
    """Who the unfinished writes of ``marks`` were, from the records their marks carry (one line)."""
    parts = []
    for mark in sorted(marks, key=lambda m: str(m.get("started") or "")):
        try:
            record = ChangeRecord.from_dict(mark.get("record") or {}, where="the record of an interrupted write")
        except InventoryError:
            record = None
        who = mark.get("writer") if isinstance(mark.get("writer"), dict) else {}
        user = record.user if record and record.user else "?"
        host = record.host if record and record.host else str(who.get("host") or "?")
        command = record.command if record and record.command else "?"
        text = f"{command} by {user} on {host}, started {mark.get('started') or '?'}"
        if record and record.reason:
            text += f", reason: {record.reason}"
        parts.append(_clip(text, 400))
    return "; ".join(parts)


def roll_back_record(marks: list[dict]) -> ChangeRecord:
    """The record of a roll-back: this run stores the last committed inventory again over ``marks``' writes."""
    return ChangeRecord.now(ROLL_BACK_COMMAND, "rolled back: the inventory is again the last committed one",
                            reason=f"interrupted write ({interrupted(marks)})")
