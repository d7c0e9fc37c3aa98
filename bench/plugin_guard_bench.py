#!/usr/bin/env python3
"""What plugin trust and isolation cost a run.

* import: loading a deployer plugin through the checked loader (folder and
  ancestors checked, source read through its descriptor and compiled, no
  bytecode cache) versus a built-in plugin (ordinary import, bytecode cache);
* call: one plugin call through ``Backend`` (watchdog timer started and
  cancelled, BaseException guard) versus calling the method directly;
* copy: the private copy ``write()`` receives (a JSON parse of the printed
  text) at N hosts, next to the time to serialise the inventory for printing.

Usage: bench/plugin_guard_bench.py [--hosts 100,3000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "lib")]

from osa_inventory.storage import loader  # noqa: E402
from osa_inventory.storage.settings import Settings  # noqa: E402
from osa_inventory.testing import make_inventory  # noqa: E402

SAMPLE = os.path.join(ROOT, "examples", "plugins", "sqlite_store.py")


def best(func, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_import(repeat: int) -> None:
    base = tempfile.mkdtemp(prefix="osa-bench-")
    try:
        folder = os.path.join(base, "plugins")
        os.mkdir(folder, 0o755)
        shutil.copy(SAMPLE, folder)
        counter = iter(range(10 ** 6))

        def fresh(name: str, folders: list[str]):
            # A new (empty, existing: the registry refuses missing folders) search path each time, hence a
            # new plugin source and a real import.
            def load():
                empty = os.path.join(base, f"empty-{next(counter)}")
                os.mkdir(empty, 0o755)
                return loader.load_plugin_module(name, Settings(path=None, plugin_paths=folders + [empty]))
            return load

        checked = best(fresh("sqlite_store", [folder]), repeat)
        builtin = best(fresh("filesystem", []), repeat)
        print(f"import  deployer sqlite_store.py (checked source) {checked * 1000:7.2f} ms   "
              f"built-in filesystem.py (bytecode cache) {builtin * 1000:7.2f} ms   ratio {checked / builtin:.1f}")
    finally:
        shutil.rmtree(base)


class _Plain:
    def load(self):
        return None


def bench_call(repeat: int, calls: int = 2000) -> None:
    backend = loader.Backend("bench", "bench", _Plain())
    raw = best(lambda: [backend.storage.load() for _ in range(calls)], repeat) / calls
    guarded = best(lambda: [backend.load() for _ in range(calls)], repeat) / calls
    print(f"call    direct {raw * 1e6:7.2f} us   through Backend (watchdog + guard) {guarded * 1e6:7.2f} us   "
          f"(a run makes about 8 such calls)")


def bench_copy(hosts: list[int], repeat: int) -> None:
    for n in hosts:
        inventory = make_inventory(n)
        text = json.dumps(inventory, sort_keys=True)
        dump = best(lambda inv=inventory: json.dumps(inv, sort_keys=True), repeat)
        copy = best(lambda txt=text: json.loads(txt), repeat)
        print(f"copy    {n:5d} compute hosts: print text {dump * 1000:7.2f} ms, write() copy {copy * 1000:7.2f} ms "
              f"({len(text) / 1e6:.1f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="100,3000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bench_import(args.repeat)
    bench_call(args.repeat)
    bench_copy([int(h) for h in args.hosts.split(",")], args.repeat)


if __name__ == "__main__":
    main()
