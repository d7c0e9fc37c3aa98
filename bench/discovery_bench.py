#!/usr/bin/env python3
"""What looking for plugins of installed distributions costs a run.

Each run of the inventory script asks :mod:`osa_inventory.storage.discovery`
once for the entry points of group ``osa_inventory.storage``, which reads the
metadata of every distribution in the Python environment. This measures that
scan in a fresh process (cold, as a run meets it) and warm, next to a whole
unchanged run of the all-in-one example through the real script, and prints
the ratio. The environment is whatever Python runs this (the checkout's
``.venv`` holds the test requirements, ansible-core included).

Usage: bench/discovery_bench.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "playbooks", "inventory", "dynamic_inventory.py")
# The first scan in a new process: what a run pays (the module import itself is not counted).
COLD = ("import sys, time; sys.path.insert(0, {!r}); from osa_inventory.storage import discovery; "
        "t = time.perf_counter(); discovery.installed(); print(time.perf_counter() - t)").format(
            os.path.join(ROOT, "lib"))


def _median_seconds(cmd: list[str], env: dict, repeat: int, own_timer: bool = False) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        times.append(float(done.stdout) if own_timer else time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, os.path.join(ROOT, "lib"))
    from importlib import metadata

    from osa_inventory.storage import discovery
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "config")
        shutil.copytree(os.path.join(ROOT, "etc", "openstack_deploy", "aio"), config)
        ini = os.path.join(tmp, "osa.ini")
        with open(ini, "w") as fh:
            fh.write("[inventory]\nbackend = filesystem\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OSA_")}
        env["OSA_INI"] = ini
        run = [sys.executable, SCRIPT, "--config", config]
        subprocess.run(run, capture_output=True, env=env, check=True)  # the first run stores; later ones do not
        whole = _median_seconds(run, env, args.repeat)
        cold = _median_seconds([sys.executable, "-c", COLD], env, args.repeat, own_timer=True)
    warm = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        discovery.installed()
        warm.append(time.perf_counter() - start)
    count = len(list(metadata.distributions()))
    print(f"{count} distributions installed; median of {args.repeat}")
    print(f"unchanged aio run (whole process): {whole * 1000:.0f} ms")
    print(f"entry-point scan, cold: {cold * 1000:.1f} ms ({cold / whole:.1%} of the run); "
          f"warm: {statistics.median(warm) * 1000:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
