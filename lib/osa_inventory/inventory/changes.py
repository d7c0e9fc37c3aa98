"""What changed between two inventories, in the terms operators think in.

Hosts added or removed, hosts whose addresses moved (the change operators
must notice), hosts that only gained addresses, other variables, groups and
``all``. The inventory script records :meth:`Changes.summary` with every
write; inventory-manage uses the same comparison for ``--history``,
``--diff`` and ``--plan``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .document import ALL, groups_of, hostvars_of

ADDRESS_VARS = ("ansible_host", "management_address", "container_address", "ansible_ssh_host")


def addresses_of(hv: dict) -> dict[str, Any]:
    """The addresses an entry holds, by the variable path holding each (as ``--diff`` names them)."""
    out = {k: hv.get(k) for k in ADDRESS_VARS if hv.get(k) is not None}
    for key, net in (hv.get("container_networks") or {}).items():
        if isinstance(net, dict) and net.get("address") is not None:
            out[f"container_networks.{key}.address"] = net["address"]
    return out


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def assigned_addresses(old: dict, new: dict) -> dict[str, dict[str, Any]]:
    """Addresses ``new`` holds that ``old`` does not hold in the same place: host -> {variable path: address}."""
    old_hv, new_hv = hostvars_of(old), hostvars_of(new)
    out = {}
    for host in sorted(new_hv):
        before = addresses_of(_mapping(old_hv.get(host)))
        fresh = {where: value for where, value in sorted(addresses_of(_mapping(new_hv[host])).items())
                 if before.get(where) != value}
        if fresh:
            out[host] = fresh
    return out


@dataclass
class Changes:
    """How ``new`` differs from ``old``."""

    hosts_added: list[str] = field(default_factory=list)
    hosts_removed: list[str] = field(default_factory=list)
    readdressed: list[str] = field(default_factory=list)
    addressed: list[str] = field(default_factory=list)
    vars_changed: list[str] = field(default_factory=list)
    groups_added: list[str] = field(default_factory=list)
    groups_removed: list[str] = field(default_factory=list)
    groups_changed: list[str] = field(default_factory=list)
    all_vars_changed: bool = False

    def summary(self) -> str:
        parts = []
        for items, word in ((self.hosts_added, "host(s) added"), (self.hosts_removed, "host(s) removed"),
                            (self.readdressed, "host(s) with changed addresses"),
                            (self.addressed, "host(s) with new addresses"),
                            (self.vars_changed, "host(s) with other changed variables"),
                            (self.groups_added, "group(s) added"), (self.groups_removed, "group(s) removed"),
                            (self.groups_changed, "group(s) with changed members")):
            if items:
                shown = ", ".join(items[:3]) + (", ..." if len(items) > 3 else "")
                parts.append(f"{len(items)} {word} ({shown})")
        if self.all_vars_changed:
            parts.append("all.vars changed")
        return "; ".join(parts) or "no change"


def compare(old: dict, new: dict) -> Changes:
    """The :class:`Changes` from ``old`` to ``new``."""
    ch = Changes()
    old_hv, new_hv = hostvars_of(old), hostvars_of(new)
    ch.hosts_added = sorted(set(new_hv) - set(old_hv))
    ch.hosts_removed = sorted(set(old_hv) - set(new_hv))
    for host in sorted(set(old_hv) & set(new_hv)):
        a, b = old_hv[host], new_hv[host]
        if a == b:
            continue
        old_addr, new_addr = addresses_of(a), addresses_of(b)
        if any(new_addr.get(where) != value for where, value in old_addr.items()):
            ch.readdressed.append(host)  # an address moved or was dropped: what operators must notice
        elif old_addr != new_addr:
            ch.addressed.append(host)
        else:
            ch.vars_changed.append(host)
    old_groups, new_groups = groups_of(old), groups_of(new)
    ch.groups_added = sorted(set(new_groups) - set(old_groups))
    ch.groups_removed = sorted(set(old_groups) - set(new_groups))
    ch.groups_changed = sorted(g for g in set(old_groups) & set(new_groups) if old_groups[g] != new_groups[g])
    ch.all_vars_changed = (old.get(ALL) or {}) != (new.get(ALL) or {})
    return ch
