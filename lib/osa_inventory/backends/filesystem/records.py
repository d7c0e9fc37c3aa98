"""Change records of a file-based inventory, kept in a sidecar file beside it.

OSA's tools read ``openstack_inventory.json`` and the backup archive, so
neither may change shape; who wrote each version, and why, lives in
``openstack_inventory.changes.json`` instead (``<name>.changes.json`` for
an inventory file of another name), in the folder of the inventory file
itself (a symbolic link's target)::

    {"format": "osa-inventory change records", "records": [
        {"sha256": "<hex digest of the version's exact text>", "written": <its mtime, whole seconds>,
         "record": {"time": ..., "user": ..., "host": ..., "command": ..., "reason": ..., "summary": ...}},
        ...]}

A version is joined to its record by the digest of its exact text and the
second it was written (the file's mtime, which the writer sets, and which
the archive keeps for each member): a version written by another tool, or
before records were kept, matches nothing and shows no record, and the same
text written again (a restore) is another version with its own record. The
sidecar is written before the inventory is replaced, so a crash in between
leaves an orphan record that no version claims, never a version claiming
the wrong record; each write drops the records of versions no longer kept.

The sidecar is a store file like the inventory
(:mod:`osa_inventory.storage.store_files`): a symbolic link, not a regular
file, another owner than root or the current user, write permission for
group or others, a second hard link, a size beyond any honest file, invalid
or too deeply nested JSON or a wrong shape are each one line saying why its
records are not shown; the inventory still loads and stores, and the next
write moves the file aside (``.corrupt-<UTC time>`` or
``.untrusted-<UTC time>``; a link is moved, never followed) and starts anew.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from ...accounting import FIELDS, MAX_FIELD, ChangeRecord
from ...bounded import parse_json
from ...errors import InventoryError
from ...storage.store_files import DamagedFile, Folder, UntrustedFile

SUFFIX = ".changes.json"
FORMAT = "osa-inventory change records"
#: Bytes one stored record may take: every field at MAX_FIELD characters, each escaped to six bytes.
ENTRY_BYTES = (len(FIELDS) * MAX_FIELD + 64) * 6 + 256
#: Records kept at most (beyond the kept versions, a few orphans of interrupted writes).
SPARE = 3
#: The size limit never falls below this many records, so that lowering ``backups`` is no false alarm.
MIN_ENTRIES = 100
_DIGEST = re.compile(r"[0-9a-f]{64}")
LOG = logging.getLogger(__name__)

Key = tuple[str, int]  # (SHA-256 hex digest of the exact text, whole seconds of the write time)


def sidecar_of(inventory_name: str) -> str:
    """The name of the records file of the inventory file ``inventory_name``, in the same folder."""
    stem = inventory_name[:-len(".json")] if inventory_name.endswith(".json") else inventory_name
    return stem + SUFFIX


def key_of(data: bytes, written: float) -> Key:
    """The key joining a version's exact text, written at ``written``, to its record."""
    return hashlib.sha256(data).hexdigest(), int(written)


def size_limit(kept: int) -> int:
    """The largest sidecar read for a store keeping ``kept`` earlier versions."""
    return (max(kept, MIN_ENTRIES) + 1 + SPARE) * ENTRY_BYTES


@dataclass
class Sidecar:
    """The records read from a sidecar, or why they cannot be used (``problem``, then no records)."""

    path: str
    entries: list[dict] = field(default_factory=list)
    problem: str = ""
    label: str = ""

    def note(self) -> str:
        """One line for ``--history`` when the records are not shown."""
        if not self.problem:
            return ""
        return (f"change records not shown: {self.path} {self.problem}; the next change moves it aside as "
                f"{os.path.basename(self.path)}.{self.label}-<UTC time> and starts a new one")


def _checked(data: object) -> list[dict]:
    """The entries of a parsed sidecar; a wrong shape is an InventoryError saying where."""
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("records"), list):
        raise InventoryError(f"is not a change record file (a JSON object with format {FORMAT!r} and a "
                             "list of records)")
    entries = []
    for n, item in enumerate(data["records"]):
        where = f"records[{n}]"
        if not isinstance(item, dict):
            raise InventoryError(f"has a {type(item).__name__} as {where}, not an object")
        digest, written = item.get("sha256"), item.get("written")
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise InventoryError(f"has no SHA-256 hex digest as {where}.sha256")
        if not isinstance(written, int) or isinstance(written, bool) or written < 0:
            raise InventoryError(f"has no whole number of seconds as {where}.written")
        record = ChangeRecord.from_dict(item.get("record"), f"{where}.record")
        entries.append({"sha256": digest, "written": written, "record": record})
    return entries


def read(folder: Folder, name: str, limit: int) -> Sidecar:
    """The records in ``folder``'s file ``name``, checked like every store file; never raises."""
    path = folder.join(name)
    try:
        found = folder.read(name, limit)
        if found is None:
            return Sidecar(path)
        entries = _checked(parse_json(found[0], shown=path, error=DamagedFile))
    except UntrustedFile as exc:
        what = exc.problem.what if exc.problem else _after_path(str(exc), path)
        return Sidecar(path, problem=what, label="untrusted")
    except InventoryError as exc:  # damaged, unreadable, or the wrong shape (_checked's lines start with "is"/"has")
        return Sidecar(path, problem=_after_path(str(exc), path), label="corrupt")
    return Sidecar(path, entries)


def _after_path(message: str, path: str) -> str:
    """``message`` without the leading path (and colon) that the note puts before it anyway."""
    for lead in (path + ": ", path + " "):
        if message.startswith(lead):
            return message[len(lead):]
    return message


def attach(versions: Sequence[tuple[dict, Key]], sidecar: Sidecar) -> None:
    """Add to each history entry the record fields of its record, if it has one.

    Versions sharing a key (the same text written twice within one second)
    take that key's records from the newest back, so the newest write's
    record is never given to an older version. With an unusable sidecar each
    entry gets its ``note`` instead.
    """
    if sidecar.problem:
        for entry, _ in versions:
            entry["note"] = sidecar.note()
        return
    by_key: dict[Key, list[ChangeRecord]] = {}
    for item in sidecar.entries:
        by_key.setdefault((item["sha256"], item["written"]), []).append(item["record"])
    for entry, key in reversed(versions):
        records = by_key.get(key)
        if records:
            record = records.pop().to_dict()
            entry.update({k: v for k, v in record.items() if k != "time"})


def store(folder: Folder, name: str, record: ChangeRecord, key: Key, kept: Iterable[int] | None,
          keep: int, mode: int, owner: tuple[int, int] | None,
          on_corrupt_aside: Callable[[str], None] | None = None) -> str:
    """Add ``record`` for the version about to be written (``key``), before the inventory is replaced.

    Keeps the records whose write time is that of a version still kept
    (``kept``: whole seconds of the archive members after this write; None
    when unknown, then only the newest are kept), at most ``keep`` + a few.
    The file gets ``mode`` and ``owner``, the inventory's. Returns the
    problem of an unusable sidecar that was moved aside, else ``""``;
    ``on_corrupt_aside`` is called with the new name of a damaged sidecar of
    ours moved aside (not of an untrusted one: that is left as it was found).
    """
    sidecar = read(folder, name, size_limit(keep))
    entries = sidecar.entries
    moved = ""
    if sidecar.problem:
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d_%H%M%S")
        aside = folder.set_aside(name, sidecar.label, stamp)  # the entry moves; a link is never followed
        if on_corrupt_aside is not None and sidecar.label == "corrupt":
            on_corrupt_aside(aside)
        moved = f"{sidecar.path} {sidecar.problem}; moved aside as {aside}"
        LOG.warning("%s", moved)  # the inventory script's log; inventory-manage shows it on stderr
    if kept is not None:
        seconds = set(kept)
        entries = [e for e in entries if e["written"] in seconds]
    entries = entries[-(keep + SPARE):]
    entries.append({"sha256": key[0], "written": key[1], "record": record})
    document = {"format": FORMAT, "records": [
        {"sha256": e["sha256"], "written": e["written"], "record": e["record"].to_dict()} for e in entries]}
    folder.replace(name, json.dumps(document, indent=1, ensure_ascii=False).encode("utf-8"), mode, owner)
    return moved
