"""Changes operators make by hand: remove hosts, remove groups, clear container addresses.

Each function edits the inventory dict it is given in place and returns
lines saying what it did; an unknown name is an error and nothing is
changed, so a typo never half-applies a command.
"""

from __future__ import annotations

from typing import Iterable

from ..errors import InventoryError
from .document import ALL, META, groups_of, hostvars_of, is_metal

ADDRESS_KEYS = ("ansible_host", "management_address", "container_address", "ansible_ssh_host")


def containers_of(inventory: dict, host: str) -> list[str]:
    """Entries whose ``physical_host`` is ``host`` (the host itself excluded)."""
    return [name for name, hv in hostvars_of(inventory).items()
            if name != host and isinstance(hv, dict) and hv.get("physical_host") == host]


def _known_hosts(inventory: dict) -> set[str]:
    known = set(hostvars_of(inventory))
    for value in groups_of(inventory).values():
        known.update(value.get("hosts") or ())
    return known


def remove_hosts(inventory: dict, names: Iterable[str], with_containers: bool = False) -> list[str]:
    """Remove each host from every group and from hostvars (and its containers, if asked)."""
    names = list(dict.fromkeys(names))
    known = _known_hosts(inventory)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InventoryError(
            f"no host {', '.join(unknown)} in the inventory; list the hosts with --list-host "
            "(nothing was changed)")
    doomed: dict[str, str | None] = {}  # name -> the removed physical host it goes with
    for name in names:
        doomed[name] = None
        if with_containers:
            for container in containers_of(inventory, name):
                doomed.setdefault(container, name)

    notes = []
    hostvars = hostvars_of(inventory)
    groups = groups_of(inventory)
    for name, parent in doomed.items():
        member_of = 0
        for value in groups.values():
            hosts = value.get("hosts")
            if hosts and name in hosts:
                value["hosts"] = [h for h in hosts if h != name]
                member_of += 1
        hostvars.pop(name, None)
        how = f" (a container of {parent})" if parent else ""
        notes.append(f"removed host {name}{how} from {member_of} group(s) and hostvars")
    if with_containers:
        for name in names:
            for group in (f"{name}_host_containers", f"{name}-host_containers"):  # new and older naming
                notes.extend(_drop_empty_container_group(inventory, group))
    return notes


def _drop_empty_container_group(inventory: dict, group: str) -> list[str]:
    # <host>_host_containers of a host removed with its containers would stay behind empty.
    value = inventory.get(group)
    if not isinstance(value, dict) or value.get("hosts") or value.get("children"):
        return []
    del inventory[group]
    _unlink_children(inventory, group)
    return [f"removed the empty group {group}"]


def _unlink_children(inventory: dict, group: str) -> int:
    count = 0
    for value in groups_of(inventory).values():
        children = value.get("children")
        if children and group in children:
            value["children"] = [c for c in children if c != group]
            count += 1
    return count


def remove_groups(inventory: dict, names: Iterable[str]) -> list[str]:
    """Remove each group and its mention in other groups' ``children`` (hosts stay)."""
    names = list(dict.fromkeys(names))
    reserved = [n for n in names if n in (META, ALL)]
    if reserved:
        raise InventoryError(f"{reserved[0]} is not a group that can be removed (nothing was changed)")
    groups = groups_of(inventory)
    unknown = [n for n in names if n not in groups]
    if unknown:
        raise InventoryError(
            f"no group {', '.join(unknown)} in the inventory; list the groups with --list-containers "
            "(nothing was changed)")
    notes = []
    for name in names:
        del inventory[name]
        parents = _unlink_children(inventory, name)
        notes.append(f"removed group {name}" + (f" (and its place in {parents} parent group(s))" if parents else ""))
    return notes


def clear_ips(inventory: dict) -> list[str]:
    """Drop the addresses of every non-metal entry so the next generate run assigns new ones.

    Removes ``address`` from each ``container_networks`` entry and the
    address variables (``ansible_host``, ``management_address`` and the
    older ``container_address`` / ``ansible_ssh_host``). Bare-metal hosts
    keep theirs: they come from the config.
    """
    entries = 0
    cleared = 0
    for hv in hostvars_of(inventory).values():
        if not isinstance(hv, dict) or is_metal(hv):
            continue
        touched = False
        for net in (hv.get("container_networks") or {}).values():
            if isinstance(net, dict) and "address" in net:
                del net["address"]
                cleared += 1
                touched = True
        for key in ADDRESS_KEYS:
            if key in hv:
                if hv.pop(key) is not None:
                    touched = True
        entries += touched
    return [f"cleared {cleared} network address(es) of {entries} container(s); "
            "the next inventory run assigns new ones"]
