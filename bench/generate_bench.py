#!/usr/bin/env python3
"""Benchmark the inventory script on large synthetic deployments.

Builds configs of N compute hosts (plus three infra hosts, storage hosts and a
load balancer, pools of /14 or larger, an IPv6 storage network) and runs the
real ``dynamic_inventory.py`` as a subprocess on the filesystem backend:

* fresh: no stored inventory (generate + write);
* unchanged: the same config again (generate, compare, no write);
* read+print: the cost floor, loading the stored JSON and printing it.

Usage: bench/generate_bench.py [--hosts 100,1000,3000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "playbooks", "inventory", "dynamic_inventory.py")

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("PyYAML is needed: run with the project's venv")


def make_config(n_compute: int) -> dict:
    """A production-shaped config with ``n_compute`` compute hosts."""
    def ip(i: int) -> str:
        return f"10.{16 + i // 65536}.{(i // 256) % 256}.{i % 256}"

    infra = {f"infra{i}": {"ip": ip(10 + i)} for i in range(1, 4)}
    storage = {f"storage{i}": {"ip": ip(20 + i)} for i in range(1, 4)}
    computes = {f"compute{i:05d}": {"ip": ip(1000 + i)} for i in range(n_compute)}
    config = {
        "cidr_networks": {"management": "10.16.0.0/12", "tunnel": "10.64.0.0/14",
                          "storage": "fd00:5::/64"},
        "used_ips": ["10.16.0.1,10.16.0.255"],
        "global_overrides": {
            "internal_lb_vip_address": "10.16.0.9", "external_lb_vip_address": "cloud.example.org",
            "management_bridge": "br-mgmt",
            "provider_networks": [
                {"network": {"container_bridge": "br-mgmt", "container_interface": "eth1",
                             "container_type": "veth", "ip_from_q": "management", "type": "raw",
                             "group_binds": ["all_containers", "hosts"], "is_management_address": True}},
                {"network": {"container_bridge": "br-vxlan", "container_interface": "eth10",
                             "container_type": "veth", "ip_from_q": "tunnel", "type": "vxlan",
                             "range": "1:1000", "net_name": "vxlan",
                             "group_binds": ["neutron_ovn_controller"]}},
                {"network": {"container_bridge": "br-storage", "container_interface": "eth2",
                             "container_type": "veth", "ip_from_q": "storage", "type": "raw",
                             "group_binds": ["glance_api", "cinder_api", "cinder_volume", "nova_compute"]}},
            ],
        },
    }
    for group in ("shared_infra_hosts", "repo_infra_hosts", "coordination_hosts", "os_infra_hosts",
                  "identity_hosts", "network_infra_hosts", "network_northd_hosts", "storage_infra_hosts",
                  "image_hosts", "compute_infra_hosts", "placement_infra_hosts", "dashboard_hosts",
                  "orchestration_hosts", "metering_infra_hosts", "metrics_hosts"):
        config[group] = dict(infra)
    config["load_balancer_hosts"] = {"lb1": {"ip": ip(30)}}
    config["storage_hosts"] = storage
    config["compute_hosts"] = computes
    config["network_gateway_hosts"] = dict(list(computes.items())[:3])
    return config


def run(config_dir: str, ini: str) -> tuple[float, int, int]:
    """Seconds, peak RSS (KiB) and stdout size of one inventory run."""
    env = dict(os.environ, OSA_INI=ini)
    env.pop("OSA_CONFIG_DIR", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, SCRIPT, "--config", config_dir, "--list"],
                          capture_output=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode or proc.stderr:
        sys.exit(f"inventory run failed: {proc.stderr.decode()[-500:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(peak, before), len(proc.stdout)


def floor(config_dir: str) -> float:
    """Interpreter start + reading the stored JSON + printing it: what no run can beat."""
    code = ("import json,sys;d=json.load(open(sys.argv[1]));"
            "sys.stdout.write(json.dumps(d,sort_keys=True))")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, os.path.join(config_dir, "openstack_inventory.json")],
                   capture_output=True, check=True)
    return time.perf_counter() - start


def bench_args(doc: str) -> argparse.Namespace:
    """``--hosts`` (compute host counts) and ``--repeat``, after printing the machine measured on."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", default="100,1000,3000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    return args


def main() -> int:
    args = bench_args(__doc__)
    print(f"{'computes':>8} {'hosts':>6} {'fresh s':>8} {'unchanged s':>11} {'floor s':>8} "
          f"{'unch/floor':>10} {'peak MiB':>9} {'JSON MiB':>9}")
    work = tempfile.mkdtemp(prefix="osa-bench-")
    ini = os.path.join(work, "osa.ini")
    with open(ini, "w") as fh:
        fh.write("[inventory]\nbackend = filesystem\n")
    try:
        for n in [int(x) for x in args.hosts.split(",")]:
            fresh, unchanged, floors, peak, size = [], [], [], 0, 0
            for r in range(args.repeat):
                cfg = os.path.join(work, f"c{n}-{r}")
                os.makedirs(cfg)
                with open(os.path.join(cfg, "openstack_user_config.yml"), "w") as fh:
                    yaml.safe_dump(make_config(n), fh)
                t, p, size = run(cfg, ini)
                fresh.append(t)
                peak = max(peak, p)
                mtime = os.stat(os.path.join(cfg, "openstack_inventory.json")).st_mtime_ns
                t, p, _ = run(cfg, ini)
                unchanged.append(t)
                peak = max(peak, p)
                if os.stat(os.path.join(cfg, "openstack_inventory.json")).st_mtime_ns != mtime:
                    sys.exit("an unchanged run rewrote the inventory")
                floors.append(floor(cfg))
            with open(os.path.join(cfg, "openstack_inventory.json")) as fh:
                hosts = len(json.load(fh)["_meta"]["hostvars"])
            f, u, fl = min(fresh), min(unchanged), min(floors)
            print(f"{n:>8} {hosts:>6} {f:>8.3f} {u:>11.3f} {fl:>8.3f} {u / fl:>10.2f} "
                  f"{peak / 1024:>9.1f} {size / 2**20:>9.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
