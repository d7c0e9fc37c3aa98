#!/usr/bin/env python3
"""Benchmark the Ansible plugin's cache check against the run it saves, in CPU time.

On the synthetic deployments of ``generate_bench.py`` (N compute hosts plus
infrastructure), stored on the filesystem backend, each measured as a child
Python process calling the library as the plugin does:

* run: ``api.refresh()`` on an unchanged config (what a cache miss costs: read and
  check the config, lock, load, generate, compare);
* hit: ``api.inputs_digest()`` plus reading the stored inventory and comparing it with
  the kept text (what a cache hit costs, docs/ansible.md "Caching");
* floor: the same Python reading the stored JSON.

Ansible's own start-up and the adding of hosts to its inventory come on top of
either and are the same for both. Rounds are interleaved; medians of ``--repeat``.

Usage: bench/plugin_cache_bench.py [--hosts 100,1000,3000] [--repeat 5]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile

from generate_bench import ROOT, bench_args, bench_env, child_cpu, floor_command, write_config, write_ini

PRELUDE = ("import json, sys; sys.path.insert(0, {lib!r}); from osa_inventory import api; "
           "where = dict(config_dir={config_dir!r}, environment={environment!r})\n")
RUN = "api.refresh(**where, command='bench')"
HIT = ("api.inputs_digest(**where)\n"
       "with api.open_inventory(config_dir=where['config_dir']) as inv:\n"
       "    json.dumps(inv.to_ansible(), sort_keys=True)")


def main() -> int:
    args = bench_args(__doc__.split("\n\n")[0], hosts="100,1000,3000", repeat=5)
    environment = os.path.join(ROOT, "playbooks", "inventory")
    print("| computes | run | hit | floor | run / hit |")
    print("|---:|---:|---:|---:|---:|")
    for n in (int(x) for x in args.hosts.split(",")):
        with tempfile.TemporaryDirectory(prefix="plugin-cache-bench-") as work:
            config_dir = write_config(os.path.join(work, "deploy"), n)
            env = bench_env(write_ini(work))
            prelude = PRELUDE.format(lib=os.path.join(ROOT, "lib"), config_dir=config_dir, environment=environment)
            subprocess.run([sys.executable, "-c", prelude + RUN], env=env, check=True)  # stores it
            times: dict[str, list[float]] = {"run": [], "hit": [], "floor": []}
            for _ in range(args.repeat):
                times["run"].append(child_cpu([sys.executable, "-c", prelude + RUN], env))
                times["hit"].append(child_cpu([sys.executable, "-c", prelude + HIT], env))
                times["floor"].append(child_cpu(floor_command(config_dir), env))
            run, hit, floor = (statistics.median(times[k]) for k in ("run", "hit", "floor"))
            print(f"| {n} | {run:.3f} s | {hit:.3f} s | {floor:.3f} s | {run / hit:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
