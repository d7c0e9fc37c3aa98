#!/usr/bin/env python3
"""Time the Craton storage backend against the Craton look-alike (tests/craton_server.py) on 127.0.0.1.

For each inventory size: the first write into an empty region, an unchanged run
as the inventory script does it (load from the validated cache, nothing to
write), an unchanged write() (idempotent), a one-host change (load + write),
a full uncached load (pages of 100), and an unchanged write() without a cache
(a full listing to compare against), and the run after a first write cut
short five hosts before its end (it must find out what is left to do without
reading every host's labels). Every write carries a change record, as the
scripts' writes do; the last two rows are an unchanged run and ``--history``
once the region holds the default 20 records. Prints wall time, requests per
method and bytes the server sent.

    .venv/bin/python bench/craton_bench.py [--sizes 200,3000]

The look-alike is Python in the same process, so times are upper bounds of the
client's cost plus the server's; request counts are what a real Craton would see.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from typing import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "lib"), os.path.join(ROOT, "tests")]

from craton_inventories import build_inventory  # noqa: E402
from craton_server import CratonServer  # noqa: E402
from osa_inventory.accounting import ChangeRecord  # noqa: E402
from osa_inventory.manage import versions  # noqa: E402
from osa_inventory.storage.loader import Backend, open_backend  # noqa: E402
from osa_inventory.storage.settings import Settings  # noqa: E402

METHODS = ("GET", "POST", "PUT", "DELETE")


def record(summary: str) -> ChangeRecord:
    """A record the size the inventory script writes (a one-line summary, a short reason)."""
    return ChangeRecord.now("dynamic_inventory", summary, reason="bench: planned maintenance window 42")


def open_craton(server: CratonServer, cache_dir: str, **extra: str) -> Backend:
    section = dict(server.options(**extra), cache_dir=cache_dir, timeout="30", retries="3")
    return open_backend(Settings(path=None, backend="craton", sections={"craton": section}), cache_dir)


def measure(server: CratonServer, action: Callable[[], object]) -> dict:
    server.app.reset_log()
    started = time.perf_counter()
    action()
    elapsed = time.perf_counter() - started
    log = list(server.app.log)
    row = {"time": elapsed, "requests": len(log), "bytes": sum(e.size for e in log)}
    row.update({m: sum(1 for e in log if e.method == m) for m in METHODS})
    return row


def bench_size(n: int) -> list[tuple[str, dict]]:
    server = CratonServer().start()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            inventory = build_inventory(n)
            writer = open_craton(server, os.path.join(tmp, "writer"))
            os.makedirs(os.path.join(tmp, "writer"))
            rows.append(("first write", measure(server, lambda: writer.write(
                copy.deepcopy(inventory), record=record(f"{n} host(s) added (infra1, infra2, infra3, ...)")))))

            def unchanged_run() -> None:
                stored = writer.load()
                assert stored == inventory

            rows.append(("unchanged run (cached load)", measure(server, unchanged_run)))
            rows.append(("unchanged write()", measure(server, lambda: writer.write(copy.deepcopy(inventory),
                                                                                   record=record("no change")))))
            changed = copy.deepcopy(inventory)
            # The last host: small sizes (40 entries) hold no compute7.
            host = sorted(changed["_meta"]["hostvars"])[-1]
            changed["_meta"]["hostvars"][host]["nova_reserved_host_memory_mb"] = 1

            one_host = record(f"1 host(s) with other changed variables ({host})")

            def one_host_change() -> None:
                writer.load()
                writer.write(copy.deepcopy(changed), record=one_host)

            rows.append(("one-host change (load+write)", measure(server, one_host_change)))
            reader_dir = os.path.join(tmp, "reader")
            os.makedirs(reader_dir)
            reader = open_craton(server, reader_dir)

            def full_load() -> None:
                assert reader.load() == changed

            rows.append(("full uncached load", measure(server, full_load)))
            nocache = open_craton(server, os.path.join(tmp, "writer"), cache="false")
            rows.append(("unchanged write(), no cache", measure(server, lambda: nocache.write(copy.deepcopy(changed)))))
            rows.append(("re-run, 5 writes left", rerun_after_interruption(server, tmp, inventory)))
            for generation in range(20):  # the region now holds the default bound of records
                changed["all"]["vars"]["bench_generation"] = generation
                writer.load()
                writer.write(copy.deepcopy(changed), record=record("all.vars changed"))
            rows.append(("unchanged run, 20 records", measure(server, unchanged_after(writer, changed))))
            rows.append(("--history, 20 records", measure(server, lambda: versions.history(writer))))
    finally:
        server.stop()
    return rows


def unchanged_after(backend: Backend, expected: dict) -> Callable[[], None]:
    def run() -> None:
        assert backend.load() == expected
    return run


def rerun_after_interruption(server: CratonServer, tmp: str, inventory: dict) -> dict:
    """A first write into a new region cut short 5 host creations before the end, then the next run."""
    folder = os.path.join(tmp, "interrupted")
    os.makedirs(folder)
    first = open_craton(server, folder, region="interrupted", retries="0")
    hosts = len(inventory["_meta"]["hostvars"])
    server.app.die_after(hosts - 5 + 1)  # the write mark, then all but 5 of the hosts
    try:
        first.write(copy.deepcopy(inventory), record=record("interrupted"))
    except Exception:  # noqa: BLE001 - the cut is the point
        pass
    server.app.revive()
    again = open_craton(server, folder, region="interrupted")
    return measure(server, lambda: again.write(copy.deepcopy(inventory), record=record("re-run")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="200,3000", help="comma-separated host counts (default 200,3000)")
    args = parser.parse_args()
    header = f"{'hosts':>6}  {'operation':<30} {'time s':>8} {'reqs':>6} " + \
        " ".join(f"{m:>6}" for m in METHODS) + f" {'KiB sent':>9}"
    print(header)
    print("-" * len(header))
    for n in (int(x) for x in args.sizes.split(",")):
        for name, row in bench_size(n):
            print(f"{n:>6}  {name:<30} {row['time']:>8.3f} {row['requests']:>6} "
                  + " ".join(f"{row[m]:>6}" for m in METHODS) + f" {row['bytes'] / 1024:>9.1f}")


if __name__ == "__main__":
    main()
