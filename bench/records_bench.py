#!/usr/bin/env python3
"""What change records cost the filesystem backend: a write with and without one, and ``--history``.

Builds an inventory of N hosts (the legacy fixture's hosts copied), fills a
store's archive (``backups`` versions), then times, in process:

* write: storing a changed inventory with no record (as before records existed);
* write+record: the same with a record (sidecar read, pruned and written first);
* history: the plugin's history() (every version's digest joined to its record).

Usage: bench/records_bench.py [--hosts 200,2000] [--backups 15] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "lib"))

from osa_inventory.storage.change import Account  # noqa: E402
from osa_inventory.storage.loader import open_backend  # noqa: E402
from osa_inventory.storage.settings import Settings  # noqa: E402

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "manage", "legacy", "openstack_inventory.json")


def inventory(hosts: int, generation: int) -> dict:
    with open(FIXTURE) as fh:
        base = json.load(fh)
    hostvars = base["_meta"]["hostvars"]
    template = dict(next(iter(hostvars.values())))
    for i in range(hosts):
        hostvars[f"bench{i}"] = dict(template, ansible_host=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    base["all"]["vars"]["generation"] = generation
    return base


def timed(step, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def measure(hosts: int, backups: int, repeat: int) -> tuple[int, float, float, float]:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(path=None, backend="filesystem",
                            sections={"filesystem": {"path": folder, "backups": str(backups)}}, environ={})
        backend = open_backend(settings, folder)
        generation = [0]
        inventories = {}

        def write(with_record: bool) -> None:
            generation[0] += 1
            new = inventories.setdefault(generation[0] % 2, inventory(hosts, generation[0] % 2))
            record = Account("bench", "measuring").record(None, new) if with_record else None
            backend.write(new, record=record)

        for _ in range(backups + 1):  # a full archive, and records for every kept version
            write(True)
        size = os.path.getsize(os.path.join(folder, "openstack_inventory.json"))
        plain = timed(lambda: write(False), repeat)
        recorded = timed(lambda: write(True), repeat)
        history = timed(backend.history, repeat)
        return size, plain, recorded, history


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="200,2000")
    parser.add_argument("--backups", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'hosts':>6} {'file MB':>8} {'write s':>8} {'write+record s':>15} {'history s':>10}")
    for hosts in (int(h) for h in args.hosts.split(",")):
        size, plain, recorded, history = measure(hosts, args.backups, args.repeat)
        print(f"{hosts:>6} {size / 1e6:>8.2f} {plain:>8.3f} {recorded:>15.3f} {history:>10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
