"""Write marks: who is changing a Craton region, and how to undo what they changed so far.

Craton has no lock and no compare-and-swap, so every write announces itself
in a region variable of its own, ``osa-inventory:writer:<token>`` (a *mark*),
before it changes anything, then reads the region variables back and goes on
only if no other live mark is there (announce, then look: of two writers that
start together, at least one sees the other). A mark carries:

* who wrote it (host, boot id, process id and start time, so a run on the
  same machine can tell a dead writer from a live one) and until when a
  writer on another machine counts as alive (``expires``);
* the committed revision it started from (``base``): a mark whose base is
  not the committed revision is over (its write was committed or superseded);
* an undo record, written before any change: for every host the write will
  touch, the variables it had (or that it did not exist), and the old value
  of every region variable it deletes before the commit. With it, the last
  committed inventory can be rebuilt from what Craton holds at any point of
  an unfinished write, on any machine, with or without a local cache;
* the hosts whose labels it changes and the labels it uses, so whoever takes
  the write over knows which labels to read back.

Who wrote a mark and whether that writer may still be running is
:mod:`..marked_writes`, shared with the NetBox backend. Everything here is pure.
"""

from __future__ import annotations

from typing import Any, Iterable

from .mapping import PREFIX

MARK_PREFIX = PREFIX + "writer:"


def is_mark_key(key: str) -> bool:
    return key.startswith(MARK_PREFIX)


# -- undo records ---------------------------------------------------------------
#
# hosts: name -> {"created": [labels]}             the host was not in the committed inventory
#               {"old": {k: v}, "new": [k]}        restore these keys, remove the new ones
#               {"old": {k: v}, "whole": true}     the host's whole variables (it was deleted)
# region: key -> old value                         region variables deleted before the commit

def empty_undo() -> dict:
    return {"hosts": {}, "region": {}}


def capture(plan: Any, current: dict, old_entries: dict) -> dict:
    """The undo record of ``plan`` (a :class:`mapping.Plan`) against ``current`` (name -> CurrentHost)."""
    hosts: dict = {}
    for spec in plan.creates:
        hosts[spec.name] = {"created": sorted(spec.labels)}
    for name, changed in plan.var_puts:
        have = current[name].variables
        entry = hosts.setdefault(name, {"old": {}, "new": []})
        for key in changed:
            if key in have:
                entry["old"][key] = have[key]
            else:
                entry["new"].append(key)
    for name, keys in plan.var_deletes:
        have = current[name].variables
        entry = hosts.setdefault(name, {"old": {}, "new": []})
        entry["old"].update({key: have[key] for key in keys})
    for name in plan.deletes:
        hosts[name] = {"old": dict(current[name].variables), "whole": True}
    return {"hosts": hosts, "region": {key: old_entries[key] for key in plan.region_delete}}


def restore(entry: dict, variables: dict | None) -> dict | None:
    """A host's committed variables from its current ones (None: absent now); None when it was not there."""
    if "created" in entry:
        return None
    if entry.get("whole"):
        return dict(entry["old"])
    out = dict(variables or {})
    for key in entry.get("new") or []:
        out.pop(key, None)
    out.update(entry.get("old") or {})
    return out


def _merge_host(earlier: dict, later: dict) -> dict:
    """One entry undoing ``later``'s changes and then ``earlier``'s (``later`` was captured after)."""
    if "created" in earlier:
        # Still not in the committed inventory; its labels are those of its latest creation.
        return {"created": later["created"]} if "created" in later else earlier
    if earlier.get("whole"):
        return earlier
    if "created" in later:
        return earlier
    if later.get("whole"):
        return {"old": restore(earlier, later["old"]), "whole": True}
    old, new = dict(earlier["old"]), list(earlier["new"])
    for key, value in later["old"].items():
        if key not in old and key not in new:
            old[key] = value
    for key in later["new"]:
        if key not in old and key not in new:
            new.append(key)
    return {"old": old, "new": new}


def merge(earlier: dict, later: dict) -> dict:
    """The undo record of two successive partial writes (``earlier`` happened first)."""
    hosts = dict(earlier["hosts"])
    for name, entry in later["hosts"].items():
        hosts[name] = _merge_host(hosts[name], entry) if name in hosts else entry
    region = dict(later["region"])
    region.update(earlier["region"])
    return {"hosts": hosts, "region": region}


def merged(marks: Iterable[dict]) -> dict:
    """The undo record of several unfinished writes, oldest first."""
    total = empty_undo()
    for mark in sorted(marks, key=lambda m: str(m.get("started") or "")):
        undo = mark.get("undo")
        if isinstance(undo, dict) and isinstance(undo.get("hosts"), dict) and isinstance(undo.get("region"), dict):
            total = merge(total, undo)
    return total


def committed_hosts(listed: Iterable[tuple[str, dict]], undo: dict) -> list[tuple[str, dict]]:
    """``(name, variables)`` of the committed inventory, from the hosts Craton lists now and ``undo``."""
    hosts = undo["hosts"]
    out: list = []
    seen: set = set()
    for name, variables in listed:
        seen.add(name)
        if name not in hosts:
            out.append((name, variables))
            continue
        restored = restore(hosts[name], variables)
        if restored is not None:
            out.append((name, restored))
    for name, entry in hosts.items():
        if name not in seen:
            restored = restore(entry, None)
            if restored is not None:
                out.append((name, restored))
    return out
