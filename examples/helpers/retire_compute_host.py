#!/usr/bin/env python3
"""Retire a compute host: show what goes, then remove it and its containers with a reason.

OSA's remove_compute_node.yml ends with ``inventory-manage.py -r HOST``; this does
the same through the API, on whichever backend osa.ini selects, after a plan::

    $ retire_compute_host.py compute3                      # the plan: nothing is changed
    $ retire_compute_host.py compute3 --yes --reason "RMA ticket 4711"

The removal is made under the backend's lock and recorded: ``inventory-manage
--history`` shows who removed it, from where, with this script, and why. Take
the host out of openstack_user_config.yml first, or the next inventory run adds
it back.
"""

from __future__ import annotations

from helper_cli import parser, run, where

from osa_inventory import api

COMPUTE_GROUP = "compute_hosts"


def plan(inv: api.Inventory, host: str) -> list[str]:
    """What retiring ``host`` removes: the host, then its containers. Refuses anything but a compute host."""
    if host not in inv.hosts(COMPUTE_GROUP):
        raise api.UnknownHost(f"{host} is not in {COMPUTE_GROUP} of {inv.where}; this retires compute hosts only")
    return [host] + inv.containers_on(host)


def main() -> int:
    p = parser("Retire a compute host: print what would be removed, or remove it with --yes --reason.")
    p.add_argument("host")
    p.add_argument("--yes", action="store_true", help="remove it (without: only print the plan)")
    p.add_argument("--reason", help="why, kept with the change (needed with --yes)")
    args = p.parse_args()
    if args.yes and not (args.reason or "").strip():
        p.error("--yes needs --reason TEXT: the change record keeps why the host went")
    with api.open_inventory(write=args.yes, **where(args)) as inv:
        doomed = plan(inv, args.host)
        if not args.yes:
            print(f"would remove from {inv.where}: {', '.join(doomed)}")
            print("run again with --yes --reason TEXT to remove them")
            return 0
        inv.remove(args.host, reason=args.reason, with_containers=True)
        print(f"removed from {inv.where}: {', '.join(doomed)}")
    return 0


if __name__ == "__main__":
    run(main)
