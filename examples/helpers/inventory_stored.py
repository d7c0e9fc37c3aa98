#!/usr/bin/env python3
"""Is an OpenStack-Ansible inventory stored here? For any backend, not only a file.

Deployment tools asked ``test -f /etc/openstack_deploy/openstack_inventory.json``;
with etcd or Craton as the store there is no such file. This asks the backend
osa.ini selects. Exit status 0: an inventory is stored (the line says where and
how many hosts); 2: none is stored yet; 1: the question could not be answered
(one ``ERROR:`` line: osa.ini, the backend or the stored inventory is at fault)::

    if found=$(inventory_stored.py); then echo "deployed: $found"; fi
"""

from __future__ import annotations

from helper_cli import parser, run, where

from osa_inventory import api

NOT_STORED = 2


def main() -> int:
    args = parser("Exit 0 if an OSA inventory is stored where osa.ini points, 2 if not, 1 on error.").parse_args()
    try:
        with api.open_inventory(**where(args)) as inv:
            print(f"an inventory of {len(inv.hosts('all'))} hosts is stored in {inv.where}")
    except api.NothingStored as exc:
        print(exc)
        return NOT_STORED
    return 0


if __name__ == "__main__":
    run(main)
