#!/usr/bin/env python3
"""Time the NetBox storage backend against the test NetBox (scripts/netbox-server.py; OSA_TEST_NETBOX).

For each inventory size (osa_inventory.testing.make_inventory: compute hosts plus three infra
hosts with six containers each): the first write, an unchanged write with the cache, a load with
the cache, a load without it, a one-host change, and the clean-up of the deployment. Prints wall
time and requests per method. Each size runs in a deployment of its own, removed at the end.

    OSA_TEST_NETBOX=$(scripts/netbox-server.py path) .venv/bin/python bench/netbox_plugin_bench.py [--sizes 30,300]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "lib"), os.path.join(ROOT, "tests")]

from netbox_deployments import deployment_options, purge  # noqa: E402
from netbox_server import NetBox, unique_prefix  # noqa: E402
from osa_inventory.storage.loader import load_plugin_module  # noqa: E402
from osa_inventory.storage.settings import Settings  # noqa: E402
from osa_inventory.testing import make_inventory  # noqa: E402

PLUGIN = load_plugin_module("netbox", Settings(path=None))


def timed(label: str, storage, func) -> None:
    started = time.perf_counter()
    func()
    sent = dict(storage._store.client.sent)
    print(f"  {label:<28} {time.perf_counter() - started:8.2f} s  {sum(sent.values()):5d} requests {sent}",
          flush=True)


def bench(netbox: NetBox, compute: int) -> None:
    prefix = unique_prefix("nbb")
    with tempfile.TemporaryDirectory() as folder:
        options = deployment_options(netbox, folder, prefix)

        def make(**extra):
            storage = PLUGIN.Storage()
            storage.register({**options, **extra})
            return storage
        inventory = make_inventory(compute)
        print(f"{len(inventory['_meta']['hostvars'])} hosts:", flush=True)
        try:
            first = make()
            timed("first write", first, lambda: first.write(copy.deepcopy(inventory)))
            again = make()
            timed("unchanged write (cache)", again, lambda: again.write(copy.deepcopy(inventory)))
            cached = make()
            timed("load (cache)", cached, cached.load)
            cold = make(cache="false")
            timed("load (no cache)", cold, cold.load)
            changed = copy.deepcopy(inventory)
            changed["_meta"]["hostvars"]["compute1"]["bench"] = True
            one = make()
            one.load()
            timed("one host changed", one, lambda: one.write(changed))
        finally:
            started = time.perf_counter()
            left = purge(netbox.client(), prefix)
            print(f"  {'clean-up (tests purge)':<28} {time.perf_counter() - started:8.2f} s  {left or ''}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="30,300", help="numbers of compute hosts, comma separated")
    args = parser.parse_args()
    state_file = os.environ.get("OSA_TEST_NETBOX")
    if not state_file:
        parser.error("set OSA_TEST_NETBOX to the state file of a running test NetBox (scripts/netbox-server.py path)")
    with open(state_file) as fh:
        state = json.load(fh)
    netbox = NetBox(url=state["url"], write_token=state["write_token"], read_token=state["read_token"])
    for size in (int(s) for s in args.sizes.split(",")):
        bench(netbox, size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
