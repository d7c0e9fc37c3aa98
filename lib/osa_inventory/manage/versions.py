"""Versions of backends that keep history: list them, compare two, restore one.

Comparisons work on the inventory's meaning, not its text: hosts added or
removed, addresses changed, other variables changed, group membership and
``all.vars`` changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator

from ..accounting import ChangeRecord
from ..errors import InventoryError
from ..inventory.changes import addresses_of, compare
from ..inventory.document import ALL, groups_of, hostvars_of
from ..storage.backend import Backend
from .inventory_file import check_inventory
from ..storage.change import Account

def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b.c": leaf}`` for nested dicts; lists and empty dicts are leaves."""
    if isinstance(value, dict) and (value or not prefix):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _var_lines(old: dict, new: dict, indent: str) -> Iterator[str]:
    a, b = _flatten(old), _flatten(new)
    # An empty mapping that gains keys (or loses its last) reads better as just those keys.
    for one, other in ((a, b), (b, a)):
        for key in [k for k, v in one.items() if v == {} and k not in other]:
            if any(k.startswith(key + ".") for k in other):
                del one[key]
    for key in sorted(set(a) | set(b)):
        if key not in a:
            yield f"{indent}+ {key}: {_show(b[key])}"
        elif key not in b:
            yield f"{indent}- {key}: {_show(a[key])}"
        elif a[key] != b[key]:
            yield f"{indent}~ {key}: {_show(a[key])} -> {_show(b[key])}"


def _member_lines(old: dict, new: dict, indent: str) -> Iterator[str]:
    for key in ("hosts", "children"):
        a, b = list(old.get(key) or ()), list(new.get(key) or ())
        # Sets for the look-ups (groups of thousands of hosts), the lists for the order shown.
        in_a, in_b = set(map(_show, a)), set(map(_show, b))
        for item in b:
            if _show(item) not in in_a:
                yield f"{indent}+ {key[:-1] if key == 'hosts' else 'child'} {item}"
        for item in a:
            if _show(item) not in in_b:
                yield f"{indent}- {key[:-1] if key == 'hosts' else 'child'} {item}"
    if set(old) - {"hosts", "children"} or set(new) - {"hosts", "children"}:
        yield from _var_lines({k: v for k, v in old.items() if k not in ("hosts", "children")},
                              {k: v for k, v in new.items() if k not in ("hosts", "children")}, indent)


def diff_lines(old: dict, new: dict) -> list[str]:
    """A readable description of every difference, one fact per line."""
    ch = compare(old, new)
    old_hv, new_hv = hostvars_of(old), hostvars_of(new)
    old_groups, new_groups = groups_of(old), groups_of(new)
    lines = []
    for host in ch.hosts_added:
        # A new entry's addresses are what operators must check before it is stored (--plan).
        hv = new_hv[host] if isinstance(new_hv[host], dict) else {}
        parent = hv.get("physical_host")
        lines.append(f"+ host {host}" + (f" (on {parent})" if parent and parent != host else ""))
        lines.extend(f"    + {where}: {_show(value)}" for where, value in sorted(addresses_of(hv).items()))
    for host in ch.hosts_removed:
        lines.append(f"- host {host}")
    for host in ch.readdressed + ch.addressed + ch.vars_changed:
        lines.append(f"~ host {host}")
        lines.extend(_var_lines(old_hv[host], new_hv[host], "    "))
    for group in ch.groups_added:
        lines.append(f"+ group {group}: {', '.join(new_groups[group].get('hosts') or ()) or '(no hosts)'}")
    for group in ch.groups_removed:
        lines.append(f"- group {group}")
    for group in ch.groups_changed:
        lines.append(f"~ group {group}")
        lines.extend(_member_lines(old_groups[group], new_groups[group], "    "))
    if ch.all_vars_changed:
        lines.append("~ all")
        lines.extend(_var_lines(old.get(ALL) or {}, new.get(ALL) or {}, "    "))
    return lines


@dataclass
class Version:
    """One entry of a backend's history, with what changed since the one before.

    ``version`` is the backend's own id of that inventory and ``time`` when it
    was written (UTC), on every backend; ``user``, ``host``, ``command`` and
    ``reason`` come from the change record stored with it (empty when the
    version has none, e.g. written before records were kept). ``summary`` is
    the recorded one when there is a record, else computed against the
    version before. ``current`` marks the version that is the stored
    inventory now. ``note`` is the backend's one line about the version's
    record (why it cannot be shown), if any.
    """

    version: str
    time: str
    summary: str
    current: bool = False
    user: str = ""
    host: str = ""
    command: str = ""
    reason: str = ""
    note: str = ""


def _record_of(entry: dict, version: str) -> ChangeRecord | None:
    if not any(entry.get(key) for key in ("user", "host", "command", "reason", "summary")):
        return None
    return ChangeRecord.from_dict(entry, where=f"the change record of version {version}")


def _version(entry: dict, version: str, computed: str) -> Version:
    row = _recorded_version(entry, version, computed)
    row.note = " ".join(str(entry.get("note") or "").split())
    return row


def _recorded_version(entry: dict, version: str, computed: str) -> Version:
    time = str(entry.get("time") or "")
    try:
        record = _record_of(entry, version)
    except InventoryError as exc:  # shown in its row: one bad record must not hide the others
        return Version(version, time, "; ".join(filter(None, (computed, str(exc)))))
    if record is None:
        return Version(version, time, computed)
    return Version(version, record.time or time, record.summary or computed, user=record.user,
                   host=record.host, command=record.command, reason=record.reason)


def read_checked(backend: Backend, version: str, advice: str = "") -> dict:
    """Version ``version`` of ``backend``, refused in one line (naming it) unless it has an inventory's shape.

    Versions are read back as they were stored, without the load path's check: one of the wrong
    shape (damaged, or written by hand) must be a line, not a traceback of ``--diff`` or ``--history``.
    ``advice`` ends the line when given.
    """
    data = backend.read_version(version)
    try:
        check_inventory(data, f"version {version} of {backend.describe()}")
    except InventoryError as exc:
        if not advice:
            raise
        raise InventoryError(f"{exc}; {advice}") from None
    return data


def history(backend: Backend) -> list[Version]:
    """The backend's versions, oldest first, each with its record or summarised against the previous one.

    A backend that keeps records but not inventories (``read_version``) lists its records as they are.
    """
    if not backend.has_versions:
        rows = []
        for entry in backend.history():
            row = _version(entry, str(entry.get("version")), "")
            row.current = entry.get("current") is True  # the plugin knows which record made what is stored
            rows.append(row)
        return rows
    out = []
    previous: dict | None = None
    newest: dict | None = None
    for entry in backend.history():
        version = str(entry.get("version"))
        try:
            data = read_checked(backend, version)
        except InventoryError as exc:
            unreadable = _version(entry, version, "")
            unreadable.summary = f"cannot be read: {exc}"
            out.append(unreadable)
            newest = None
            continue
        summary = "oldest version kept" if previous is None else compare(previous, data).summary()
        out.append(_version(entry, version, summary))
        previous = newest = data
    if out and newest is not None:
        # Marked by content, not by position: the newest kept version is the current inventory only
        # if the store still holds it (not after the current one was damaged or replaced by hand).
        try:
            out[-1].current = backend.load() == newest
        except InventoryError:
            pass
    return out


def pick_pair(backend: Backend, versions: list[str]) -> tuple[str, str] | str:
    """``--diff`` arguments: none = previous vs current, A = A vs current, A B = those two.

    With nothing to compare (no version, or one), the explanation to print instead.
    """
    if len(versions) > 2:
        raise InventoryError("--diff takes at most two versions: --diff [A [B]]")
    backend.require_versions()  # a backend keeping change records only says so, whatever it lists
    if len(versions) == 2:
        return versions[0], versions[1]
    listed = [str(e.get("version")) for e in backend.history()]
    if not listed:
        return (f"{backend.describe()} holds no inventory yet, so there is nothing to compare; "
                "the first inventory run stores one")
    if versions:
        return versions[0], listed[-1]
    if len(listed) < 2:
        return (f"{backend.describe()} holds one version so far ({listed[0]}, the current inventory), so there "
                "is nothing to compare yet; each run or edit that changes the inventory adds a version, and "
                "--diff then shows what changed")
    return listed[-2], listed[-1]


def restore(backend: Backend, version: str, account: Account | None = None) -> tuple[bool, str]:
    """Store ``version`` as the current inventory, under the lock, with ``account``'s record.

    The current inventory may be unreadable (that is often why one restores);
    the backend's write deals with it (the filesystem plugin moves a corrupt
    file aside). Returns whether anything was written and a note.
    """
    backend.require_versions()
    data = read_checked(backend, version, "restore another version (--history lists them)")
    with backend.lock():
        note = ""
        try:
            current = backend.load()
        except InventoryError as exc:
            current = None
            note = f"the current inventory could not be read ({exc}) and was replaced"
        if current == data:
            return False, "that version is the current inventory already"
        # Backend.write hands the plugin its own copy.
        backend.write(data, record=account.record(current, data) if account else None)
    back = backend.load()
    if back != data:
        raise InventoryError(f"{backend.describe()} did not give back the restored version; check the backend")
    return True, note
