#!/usr/bin/env python3
"""How long one run of the inventory script holds the filesystem backend's lock.

Runs the real ``dynamic_inventory.py --debug`` on copies of
``tests/fixtures/small_config`` (optionally grown by N compute hosts) and reads
the "lock held" figure the script logs to ``inventory.log``:

* first: nothing stored yet (generate, write the file);
* changed: a config change with a full backup archive (generate, rewrite the
  archive with the replaced file, write the file);
* unchanged: same config again (generate, compare, nothing written).

Usage: bench/fs_lock_hold.py [--hosts 0,1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "playbooks", "inventory", "dynamic_inventory.py")
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "small_config")
HELD = re.compile(r"(\d+) hosts, (stored|unchanged); lock held ([0-9.]+) s, run ([0-9.]+) s")


def make_config(folder: str, extra_hosts: int) -> None:
    shutil.copytree(FIXTURE, folder)
    path = os.path.join(folder, "openstack_user_config.yml")
    with open(path) as fh:
        config = yaml.safe_load(fh)
    config["cidr_networks"]["management"] = "10.20.0.0/16"
    for i in range(extra_hosts):
        config["compute_hosts"][f"extra{i}"] = {"ip": f"10.20.{4 + i // 250}.{i % 250 + 1}"}
    with open(path, "w") as fh:
        yaml.safe_dump(config, fh)


def bump(folder: str, value: int) -> None:
    path = os.path.join(folder, "openstack_user_config.yml")
    with open(path) as fh:
        config = yaml.safe_load(fh)
    config["global_overrides"]["bench_marker"] = value
    with open(path, "w") as fh:
        yaml.safe_dump(config, fh)


def run(folder: str, env: dict) -> tuple[int, str, float, float]:
    """One script run; (hosts, stored|unchanged, lock held s, run s) from its log line."""
    log = os.path.join(folder, "inventory.log")
    if os.path.exists(log):
        os.unlink(log)
    subprocess.run([sys.executable, SCRIPT, "--config", folder, "--list", "--debug"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    with open(log) as fh:
        hosts, what, held, total = HELD.search(fh.read()).groups()
    return int(hosts), what, float(held), float(total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="0,1000", help="extra compute hosts per config, comma separated")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ini = os.path.join(tmp, "osa.ini")
        with open(ini, "w") as fh:
            fh.write("[inventory]\nbackend = filesystem\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OSA_")}
        env["OSA_INI"] = ini
        print(f"{'hosts':>6} {'case':>10} {'lock held median':>17} {'max':>8} {'run median':>11} {'file':>9}")
        for extra in (int(h) for h in args.hosts.split(",")):
            figures: dict[str, list[tuple[float, float]]] = {"first": [], "changed": [], "unchanged": []}
            hosts = 0
            for r in range(args.repeat):
                folder = os.path.join(tmp, f"c{extra}_{r}")
                make_config(folder, extra)
                hosts, _, held, total = run(folder, env)
                figures["first"].append((held, total))
                for i in range(16):  # fill the archive to its 15 versions, as in steady use
                    bump(folder, i)
                    run(folder, env)
                bump(folder, 99)
                figures["changed"].append(run(folder, env)[2:])
                figures["unchanged"].append(run(folder, env)[2:])
            size = os.path.getsize(os.path.join(folder, "openstack_inventory.json"))
            for case, values in figures.items():
                held = [h for h, _ in values]
                print(f"{hosts:>6} {case:>10} {statistics.median(held) * 1000:>14.1f} ms "
                      f"{max(held) * 1000:>5.1f} ms {statistics.median(t for _, t in values) * 1000:>8.1f} ms "
                      f"{size / 1e6:>6.2f} MB")


if __name__ == "__main__":
    main()
