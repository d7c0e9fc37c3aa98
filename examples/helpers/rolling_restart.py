#!/usr/bin/env python3
"""The order of a rolling restart: the members of a group, grouped per physical host.

Ported from openstack-ansible-ops' bowling_ball/rolling_restart.py, which read
openstack_inventory.json; this asks the stored inventory through the API, so it
works whichever backend osa.ini selects. One line per physical host, hosts in
name order, each with the group's members on it (containers, or the host itself
when the service runs on metal)::

    $ rolling_restart.py galera_all
    infra1: infra1-galera-container-4edfb01b
    infra2: infra2-galera-container-0b1c9e55

Restart one line at a time, waiting for the service to be healthy in between.
"""

from __future__ import annotations

import json

from helper_cli import parser, run, where

from osa_inventory import api


def restart_order(inv: api.Inventory, group: str) -> list[tuple[str, list[str]]]:
    """``(physical host, members on it)`` for every physical host with members of ``group``, in name order."""
    per_host: dict[str, list[str]] = {}
    for name in inv.hosts(group):
        physical = inv.hostvars(name).get("physical_host") or name
        per_host.setdefault(physical, []).append(name)
    return [(host, sorted(per_host[host])) for host in sorted(per_host)]


def main() -> int:
    p = parser("Print the members of GROUP grouped per physical host, in restart order.")
    p.add_argument("group", help="e.g. galera_all, rabbitmq_all, keystone_all")
    p.add_argument("--json", action="store_true", help='print [{"physical_host": ..., "members": [...]}, ...]')
    args = p.parse_args()
    with api.open_inventory(**where(args)) as inv:
        order = restart_order(inv, args.group)
    if args.json:
        print(json.dumps([{"physical_host": host, "members": members} for host, members in order]))
    else:
        for host, members in order:
            print(f"{host}: {' '.join(members)}")
    return 0


if __name__ == "__main__":
    run(main)
