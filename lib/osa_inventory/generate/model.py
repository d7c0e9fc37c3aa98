"""The inventory while it is being built: groups as ordered sets, hostvars as dicts.

Ansible's JSON keeps group members in lists; checking membership in a list
is what made OSA's generator quadratic. Here members live in dicts used as
ordered sets (insertion order kept, so output is stable), and convert back
to lists only at the end.
"""

from __future__ import annotations

import json

from ..inventory.document import ALL, META


class Group:
    """One Ansible group: ``hosts`` and, unless it is hosts-only, ``children``."""

    __slots__ = ("hosts", "children", "extra")

    def __init__(self, with_children: bool):
        self.hosts: dict[str, None] = {}
        self.children: dict[str, None] | None = {} if with_children else None
        self.extra: dict = {}  # keys other than hosts/children (e.g. group vars), kept as stored

    def add_host(self, name: str) -> None:
        self.hosts[name] = None

    def add_child(self, name: str) -> None:
        if self.children is None:
            # A hosts-only group that gains a child takes the children key; OSA does the same.
            self.children = {}
        self.children[name] = None

    def to_json(self) -> dict:
        out = dict(self.extra)
        if self.children is not None:
            out["children"] = list(self.children)
        out["hosts"] = list(self.hosts)
        return out

    @classmethod
    def from_json(cls, data: dict) -> Group:
        group = cls(with_children="children" in data)
        for host in data.get("hosts") or ():
            group.hosts[host] = None
        if group.children is not None:
            for child in data.get("children") or ():
                group.children[child] = None
        # Inventory.from_json hands in its own copy of the stored data: no need to copy again.
        group.extra = {k: v for k, v in data.items() if k not in ("hosts", "children")}
        return group


class Inventory:
    """Groups, hostvars and ``all.vars`` under construction."""

    def __init__(self) -> None:
        self.groups: dict[str, Group] = {}
        self.hostvars: dict[str, dict] = {}
        self.all_vars: dict = {}
        self.all_extra: dict = {}

    # -- groups -------------------------------------------------------------

    def group(self, name: str, with_children: bool = True) -> Group:
        """The group ``name``, created with the given shape if it does not exist yet."""
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = Group(with_children)
        return group

    def hosts_group(self, name: str) -> Group:
        """The group ``name``, created hosts-only (``{"hosts": [...]}``) if it does not exist yet."""
        return self.group(name, with_children=False)

    def members(self, name: str) -> set[str]:
        """Every host in group ``name`` or any descendant (a loop among stored groups is harmless)."""
        seen_groups: set[str] = set()
        hosts: set[str] = set()
        stack = [name]
        while stack:
            current = stack.pop()
            if current in seen_groups:
                continue
            seen_groups.add(current)
            group = self.groups.get(current)
            if group is None:
                continue
            hosts.update(group.hosts)
            if group.children:
                stack.extend(group.children)
        return hosts

    # -- conversion ---------------------------------------------------------

    @classmethod
    def from_json(cls, data: dict | None) -> Inventory:
        inv = cls()
        if not data:
            return inv
        # A JSON round trip copies a JSON document several times faster than deepcopy.
        data = json.loads(json.dumps(data))
        meta = data.get(META) or {}
        inv.hostvars = meta.get("hostvars") or {}
        all_group = data.get(ALL) or {}
        inv.all_vars = all_group.get("vars") or {}
        inv.all_extra = {k: v for k, v in all_group.items() if k != "vars"}
        for name, value in data.items():
            if name in (META, ALL) or not isinstance(value, dict):
                continue
            inv.groups[name] = Group.from_json(value)
        return inv

    def to_json(self) -> dict:
        out: dict = {META: {"hostvars": self.hostvars}}
        all_group = dict(self.all_extra)
        all_group["vars"] = self.all_vars
        out[ALL] = all_group
        for name, group in self.groups.items():
            out[name] = group.to_json()
        return out
