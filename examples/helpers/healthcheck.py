#!/usr/bin/env python3
"""The inventory queries of the openstack.osa healthcheck playbooks, as JSON.

For each group named, its members (its children's included, as Ansible
resolves them) with what the checks look at: whether the member runs on metal,
its container technology and its physical host::

    $ healthcheck.py galera_all utility_all
    {"galera_all": {"infra1-galera-container-4edfb01b": {"is_metal": false, "container_tech": "lxc",
     "physical_host": "infra1"}}, "utility_all": {...}}
"""

from __future__ import annotations

import json

from helper_cli import parser, run, where

from osa_inventory import api


def members(inv: api.Inventory, group: str) -> dict[str, dict]:
    """Each member of ``group`` with ``is_metal``, ``container_tech`` and ``physical_host``."""
    found = {}
    for name in inv.hosts(group):
        hostvars = inv.hostvars(name)
        found[name] = {"is_metal": inv.is_metal(name), "container_tech": hostvars.get("container_tech"),
                       "physical_host": hostvars.get("physical_host")}
    return found


def main() -> int:
    p = parser("Print the members of each GROUP with is_metal, container_tech and physical_host, as JSON.")
    p.add_argument("groups", nargs="+", metavar="GROUP")
    args = p.parse_args()
    with api.open_inventory(**where(args)) as inv:
        print(json.dumps({group: members(inv, group) for group in args.groups}))
    return 0


if __name__ == "__main__":
    run(main)
