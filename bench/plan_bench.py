#!/usr/bin/env python3
"""Benchmark ``inventory-manage --plan`` against the inventory run it predicts.

On the synthetic deployments of ``generate_bench.py`` (N compute hosts plus
infrastructure), stored on the filesystem backend, times with the real
scripts as subprocesses:

* run: an unchanged ``dynamic_inventory.py --list`` (generate, compare, no write);
* plan: ``inventory-manage --plan`` on the same unchanged config;
* plan +1: ``--plan`` after one compute host is added to the config;
* json +1: the same with ``--format json``.

Usage: bench/plan_bench.py [--hosts 100,1000,3000] [--repeat 3]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

from generate_bench import ROOT, SCRIPT, bench_args, make_config

MANAGE = os.path.join(ROOT, "scripts", "inventory-manage.py")


def timed(cmd: list[str], env: dict, expect: int) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != expect:
        sys.exit(f"{' '.join(cmd[1:3])} exited {proc.returncode}, not {expect}: {proc.stderr.decode()[-500:]}")
    return elapsed


def main() -> int:
    args = bench_args(__doc__)
    print(f"{'computes':>8} {'run s':>7} {'plan s':>7} {'plan +1 s':>9} {'json +1 s':>9}")
    work = tempfile.mkdtemp(prefix="osa-plan-bench-")
    ini = os.path.join(work, "osa.ini")
    with open(ini, "w") as fh:
        fh.write("[inventory]\nbackend = filesystem\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSA_")}
    env["OSA_INI"] = ini
    try:
        for n in [int(x) for x in args.hosts.split(",")]:
            cfg = os.path.join(work, f"c{n}")
            os.makedirs(cfg)
            config = make_config(n)
            path = os.path.join(cfg, "openstack_user_config.yml")
            with open(path, "w") as fh:
                yaml.safe_dump(config, fh)
            script, manage = [sys.executable, SCRIPT, "--config", cfg], [sys.executable, MANAGE, "--config", cfg]
            timed(script, env, 0)  # the stored inventory
            rows: dict[str, list[float]] = {"run": [], "plan": [], "plan1": [], "json1": []}
            for _ in range(args.repeat):
                rows["run"].append(timed(script, env, 0))
                rows["plan"].append(timed(manage + ["--plan"], env, 0))
            config["compute_hosts"]["compute-extra"] = {"ip": "10.31.255.250"}
            with open(path, "w") as fh:
                yaml.safe_dump(config, fh)
            for _ in range(args.repeat):
                rows["plan1"].append(timed(manage + ["--plan"], env, 2))
                rows["json1"].append(timed(manage + ["--plan", "--format", "json"], env, 2))
            best = {k: min(v) for k, v in rows.items()}
            print(f"{n:>8} {best['run']:>7.3f} {best['plan']:>7.3f} {best['plan1']:>9.3f} {best['json1']:>9.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
