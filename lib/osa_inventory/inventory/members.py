"""Which hosts belong to which group, resolved as Ansible resolves an inventory script's groups.

Ansible reads each group's ``hosts`` and ``children``; a group named only as
another's child exists too (empty), and ``all`` holds every host of every
group (hosts that only have ``_meta.hostvars`` are not hosts to Ansible).
A group's hosts are its own and those of its children, their children and
so on. Ansible walks the descendants level by level through a set, so its
order below the first level varies from run to run; here the walk is the
same breadth-first one with each level in the listed order, so the members
are Ansible's and the order is stable: own hosts first, then the children's.
"""

from __future__ import annotations

from .document import ALL, groups_of


def _listed(value: dict, key: str) -> list[str]:
    names = value.get(key)
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def group_names(inventory: dict) -> list[str]:
    """Every group Ansible would know, sorted: the stored ones and those named only as children."""
    groups = groups_of(inventory)
    names = set(groups)
    for value in groups.values():
        names.update(_listed(value, "children"))
    names.discard(ALL)
    return sorted(names)


def all_hosts(inventory: dict) -> list[str]:
    """Every host of every group, each once, in stored group order."""
    return list(dict.fromkeys(h for value in groups_of(inventory).values() for h in _listed(value, "hosts")))


def group_hosts(inventory: dict, group: str) -> list[str] | None:
    """The hosts of ``group`` and of its descendants (see the module doc); None for a group Ansible lacks."""
    if group == ALL:
        return all_hosts(inventory)
    groups = groups_of(inventory)
    if group not in group_names(inventory):
        return None
    hosts: dict[str, None] = {}
    seen = {group}
    level = [group]
    while level:  # a cycle in children (which Ansible refuses) ends here too: each group is walked once
        following = []
        for name in level:
            value = groups.get(name) or {}
            hosts.update(dict.fromkeys(_listed(value, "hosts")))
            for child in _listed(value, "children"):
                if child not in seen:
                    seen.add(child)
                    following.append(child)
        level = following
    return list(hosts)
