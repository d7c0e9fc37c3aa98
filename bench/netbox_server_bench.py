#!/usr/bin/env python3
"""What the test NetBox costs once its cache is built: stop, warm start, and memory.

Stops the server of ``$OSA_NETBOX_HOME`` (scripts/netbox-server.py's default when unset), then starts
it again ``--repeat`` times, each time reading the steps' times the start records in its state file
(database: PostgreSQL up and the template restored; total: until the API answers) and the memory
(PSS) of each server's processes. The cache must be built (one ``start`` before); a cold build is
timed by that start itself (``timings`` and ``migrate_seconds`` in the state file). The server is left
as it was found: running or stopped. Prints the load average too: on a shared machine it explains much.

Usage: bench/netbox_server_bench.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "netbox-server.py")


def script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=3600)


def pss_mib(pid: int) -> float:
    """PSS of ``pid`` and every process below it, in MiB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parent = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            with open(f"/proc/{current}/smaps_rollup") as fh:
                total += int(re.search(r"^Pss:\s+(\d+)", fh.read(), re.M).group(1))
        except (OSError, AttributeError):
            pass
    return total / 1024


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args(argv)
    state_file = script("path").stdout.strip()
    was_running = script("status").returncode == 0
    rows = []
    for _ in range(opts.repeat):
        started = time.monotonic()
        stop = script("stop")
        stopped = time.monotonic() - started
        started = time.monotonic()
        start = script("start")
        if start.returncode != 0:
            print(f"start failed: {start.stderr.strip()}", file=sys.stderr)
            return 1
        wall = time.monotonic() - started
        with open(state_file) as fh:
            state = json.load(fh)
        if state.get("cold"):
            print("the cache was cold: this start built it; run the benchmark again", file=sys.stderr)
            return 1
        memory = {name: pss_mib(rec["pid"]) for name, rec in state["pids"].items()}
        rows.append((stopped, wall, state["timings"]["database"], memory))
        print(f"stop {stopped:.1f} s ({stop.stdout.strip()}); start {wall:.1f} s, of which database "
              f"{state['timings']['database']:.1f} s; PSS "
              + ", ".join(f"{name} {mib:.0f} MiB" for name, mib in memory.items()), flush=True)
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"median: stop {statistics.median(r[0] for r in rows):.1f} s, warm start "
          f"{statistics.median(r[1] for r in rows):.1f} s; load average {load}")
    if not was_running:
        script("stop")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
