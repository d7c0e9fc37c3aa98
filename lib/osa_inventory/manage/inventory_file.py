"""Inventories read from files: parse, recognise the shape, validate, convert an export back.

Accepted: an ``openstack_inventory.json`` as OSA or this project writes it,
and the ``--export`` shape (``{"hosts": {h: {"hostvars", "groups"}}, "all"}``,
with ``"groups"`` when this project wrote it).
Anything else is refused with one line naming the file and what is wrong.
"""

from __future__ import annotations

from typing import Any

from ..bounded import MAX_INVENTORY_BYTES, parse_json, read_file
from ..errors import InventoryError
from ..inventory.shape import NOT_INVENTORY, check_inventory, string_list
from ..inventory.document import ALL, META

__all__ = ["check_inventory", "load_inventory_file", "read_json_file"]


def read_json_file(path: str) -> Any:
    """The parsed JSON of ``path``; unreadable, oversized, non-JSON or too deeply nested files are one clear line.

    Only a regular file is read (a FIFO or ``/dev/zero`` is refused at once), bounded like a stored inventory.
    """
    try:
        raw = read_file(path, limit=MAX_INVENTORY_BYTES)
    except OSError as exc:  # missing: read_file leaves that to the caller
        raise InventoryError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        return parse_json(raw, shown=path)
    except InventoryError as exc:
        raise InventoryError(f"{exc}; {NOT_INVENTORY}") from None


def is_export(data: Any) -> bool:
    """Whether ``data`` has the ``--export`` shape rather than the inventory shape."""
    return (isinstance(data, dict) and META not in data and isinstance(data.get("hosts"), dict)
            and set(data) <= {"hosts", "all", "groups"}
            and all(isinstance(v, dict) and "hostvars" in v for v in data["hosts"].values()))


def _check_export(data: dict, where: str) -> None:
    for host, entry in data["hosts"].items():
        if not isinstance(entry.get("hostvars"), dict):
            raise InventoryError(f"{where}: hosts.{host}.hostvars must be a mapping of variables")
        if "groups" in entry and not string_list(entry["groups"]):
            raise InventoryError(f"{where}: hosts.{host}.groups must be a list of group names")
    if not isinstance(data.get("all", {}), dict):
        raise InventoryError(f"{where}: 'all' of an export must be the mapping of all.vars")
    if not isinstance(data.get("groups", {}), dict):
        raise InventoryError(f"{where}: 'groups' of an export must map each group name to its group")
    if "groups" in data:
        # The per-host lists and the group table say the same thing twice; refuse a file where they
        # disagree rather than guess which one was edited.
        listed = {host: sorted(entry.get("groups") or ()) for host, entry in data["hosts"].items()}
        table: dict[str, list[str]] = {host: [] for host in listed}
        for name, group in data["groups"].items():
            hosts = group.get("hosts") if isinstance(group, dict) else None
            for host in hosts if string_list(hosts) else ():
                if host in table:
                    table[host].append(name)
        for host in sorted(listed):
            if sorted(table[host]) != listed[host]:
                raise InventoryError(
                    f"{where}: hosts.{host}.groups {listed[host]} disagrees with the groups table, which has "
                    f"{host} in {sorted(table[host])}; fix one of them or delete the 'groups' key")


def from_export(data: dict) -> dict:
    """An inventory rebuilt from an ``--export``.

    This project's exports carry every group as stored (``"groups"``), so
    the inventory comes back exactly. OSA's keep hosts, their variables and
    their groups, not how groups nest: groups then come back with
    ``children: []`` except those named ``*container``, which hold hosts only
    (the skeleton's rule), and the next generate run restores the nesting.
    """
    inventory: dict = {META: {"hostvars": {}}, ALL: {"vars": dict(data.get("all") or {})}}
    if "groups" in data:
        inventory[META]["hostvars"] = {host: entry["hostvars"] for host, entry in data["hosts"].items()}
        inventory.update((name, group) for name, group in data["groups"].items() if name not in (META, ALL))
        return inventory
    groups: dict[str, dict] = {}
    for host, entry in data["hosts"].items():
        inventory[META]["hostvars"][host] = entry["hostvars"]
        for group in entry.get("groups") or ():
            if group in (META, ALL):
                continue
            value = groups.setdefault(group, {"hosts": []} if group.endswith("container")
                                      else {"children": [], "hosts": []})
            value["hosts"].append(host)
    for name in sorted(groups):
        inventory[name] = groups[name]
    return inventory


def load_inventory_file(path: str) -> tuple[dict, bool]:
    """The inventory in ``path`` (an export is converted) and whether it lost group nesting on the way.

    That is only so for exports without ``"groups"`` (OSA's); this project's exports come back whole.
    """
    data = read_json_file(path)
    if is_export(data):
        _check_export(data, path)
        return from_export(data), "groups" not in data
    check_inventory(data, path)
    return data, False
