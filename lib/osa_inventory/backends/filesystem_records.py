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

The sidecar is trusted like the inventory: a symbolic link, another owner
than the inventory's (or root), write permission the inventory does not
give, a size beyond any honest file, invalid JSON or a wrong shape are each
one line saying why its records are not shown; the inventory still loads
and stores, and the next write moves the file aside
(``.corrupt-<UTC time>`` or ``.untrusted-<UTC time>``) and starts anew.
"""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import json
import logging
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from ..accounting import FIELDS, MAX_FIELD, ChangeRecord
from ..errors import InventoryError, StorageError
from ..storage.safe_files import atomic_write, set_aside

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


def sidecar_of(inventory_file: str) -> str:
    """Where the records of ``inventory_file`` (the real file, not a link to it) are kept."""
    folder, name = os.path.split(inventory_file)
    stem = name[:-len(".json")] if name.endswith(".json") else name
    return os.path.join(folder, stem + SUFFIX)


def key_of(data: bytes, written: float) -> Key:
    """The key joining a version's exact text, written at ``written``, to its record."""
    return hashlib.sha256(data).hexdigest(), int(written)


def file_key(path: str) -> tuple[float, Key]:
    """The write time of the file at ``path`` (links followed) and its key; FileNotFoundError if none."""
    with open(path, "rb") as fh:
        written = os.fstat(fh.fileno()).st_mtime
        return written, key_of(fh.read(), written)


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


def _untrusted(st: os.stat_result, inventory: os.stat_result | None) -> str:
    """Why a sidecar with this status is not to be believed, or ``""``."""
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link; records are kept only in a regular file"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    owner = inventory.st_uid if inventory is not None else os.geteuid()
    if st.st_uid not in (0, owner):
        return f"is owned by uid {st.st_uid}, neither the inventory's owner (uid {owner}) nor root"
    allowed = inventory.st_mode if inventory is not None else 0
    loose = st.st_mode & 0o022 & ~allowed
    if loose:
        return f"may be changed by {'its group' if loose & 0o020 else 'anyone'} (mode {st.st_mode & 0o7777:04o}), " \
               "which the inventory does not allow"
    return ""


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


def read(path: str, inventory_file: str, limit: int) -> Sidecar:
    """The records in ``path``, checked against the inventory file's owner and mode; never raises."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return Sidecar(path)
    except OSError as exc:
        return Sidecar(path, problem=f"cannot be examined ({exc.strerror})", label="untrusted")
    try:
        inventory: os.stat_result | None = os.stat(inventory_file)
    except OSError:
        inventory = None
    why = _untrusted(st, inventory)
    if why:
        return Sidecar(path, problem=why, label="untrusted")
    if st.st_size > limit:
        return Sidecar(path, problem=f"holds {st.st_size} bytes, more than the {limit} its records can take",
                       label="corrupt")
    try:
        # O_NOFOLLOW and O_NONBLOCK: a link or a FIFO swapped in since the lstat never blocks or redirects us.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return Sidecar(path)
    except OSError as exc:
        label = "untrusted" if exc.errno == errno.ELOOP else "corrupt"
        return Sidecar(path, problem=f"cannot be opened ({exc.strerror})", label=label)
    with os.fdopen(fd, "rb") as fh:
        again = os.fstat(fh.fileno())
        why = _untrusted(again, inventory)
        if why:
            return Sidecar(path, problem=why, label="untrusted")
        raw = fh.read(limit + 1)
    if len(raw) > limit:
        return Sidecar(path, problem=f"holds more than the {limit} bytes its records can take", label="corrupt")
    try:
        entries = _checked(json.loads(raw.decode("utf-8")))
    except (UnicodeDecodeError, ValueError) as exc:
        return Sidecar(path, problem=f"is not valid JSON ({exc})", label="corrupt")
    except InventoryError as exc:
        return Sidecar(path, problem=str(exc), label="corrupt")
    return Sidecar(path, entries)


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


def _move_aside(sidecar: Sidecar) -> str:
    """Move an unusable sidecar (or the link or other thing in its place) aside; the new name."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d_%H%M%S")
    if os.path.isfile(sidecar.path) and not os.path.islink(sidecar.path):
        return set_aside(sidecar.path, sidecar.label, stamp)
    base = f"{sidecar.path}.{sidecar.label}-{stamp}"
    for n in range(1, 10_000):  # not a regular file: rename the entry itself, never follow it
        candidate = base if n == 1 else f"{base}-{n}"
        if not os.path.lexists(candidate):
            os.rename(sidecar.path, candidate)
            return candidate
    raise StorageError(f"cannot move {sidecar.path} aside: {base} and 9999 numbered names exist; remove old ones")


def store(path: str, inventory_file: str, record: ChangeRecord, key: Key, kept: Iterable[int] | None,
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
    sidecar = read(path, inventory_file, size_limit(keep))
    entries = sidecar.entries
    moved = ""
    if sidecar.problem:
        aside = _move_aside(sidecar)
        if on_corrupt_aside is not None and sidecar.label == "corrupt" and os.path.isfile(aside) \
                and not os.path.islink(aside):
            on_corrupt_aside(aside)
        moved = f"{sidecar.path} {sidecar.problem}; moved aside as {os.path.basename(aside)}"
        LOG.warning("%s", moved)  # the inventory script's log; inventory-manage shows it on stderr
    if kept is not None:
        seconds = set(kept)
        entries = [e for e in entries if e["written"] in seconds]
    entries = entries[-(keep + SPARE):]
    entries.append({"sha256": key[0], "written": key[1], "record": record})
    document = {"format": FORMAT, "records": [
        {"sha256": e["sha256"], "written": e["written"], "record": e["record"].to_dict()} for e in entries]}
    atomic_write(path, json.dumps(document, indent=1, ensure_ascii=False).encode("utf-8"), mode, owner)
    return moved
