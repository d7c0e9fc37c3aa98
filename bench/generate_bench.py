#!/usr/bin/env python3
"""Benchmark the inventory script on large synthetic deployments, in CPU time.

Builds configs of N compute hosts (plus three infra hosts, storage hosts and a
load balancer, pools of /14 or larger, an IPv6 storage network) and runs the
real ``dynamic_inventory.py`` as a subprocess on the filesystem backend:

* fresh: no stored inventory (generate + write);
* unchanged: the same config again (generate, compare, no write; it leaves the reuse record);
* reused: the same config a third time (the reuse record matches: no YAML, no generation);
* floor: the same Python reading the stored JSON and printing it, what no run can beat.

What is measured is the CPU time of each child (user + system, from ``os.wait4``),
not wall time: the machine may be shared, and load from others stretches wall time
far more than CPU time. The four runs are interleaved (fresh, unchanged, reused,
floor, fresh, ...) so a drift in load hits each alike, and each figure
is the median of ``--repeat`` rounds.

With ``--osa-tree DIR``, OpenStack-Ansible's own generator runs on the same
config too, interleaved with ours (fresh runs, median of ``--osa-repeat``). Get
its tree (never copied into this project) and a Python with its two requirements:

    mkdir /tmp/osa && git --git-dir=/work/.mirror/openstack+openstack-ansible/repo \\
        archive HEAD osa_toolkit inventory | tar -x -C /tmp/osa
    python3 -m venv /tmp/osa-venv && /tmp/osa-venv/bin/pip install netaddr PyYAML

(or any checkout of openstack-ansible), then ``--osa-tree /tmp/osa --osa-python
/tmp/osa-venv/bin/python``. OSA lists every address of every pool up front and
cannot list an IPv6 /64, so that comparison uses pools OSA can run (a /20
management network and /22 tunnel and storage networks: the usual OSA sizes, and
the same cost for ours) and OSA's own env.d for both generators.

Usage: bench/generate_bench.py [--hosts 1000,2000,3000] [--repeat 9]
           [--osa-tree DIR --osa-python PYTHON [--osa-hosts 1000] [--osa-repeat 5]]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "playbooks", "inventory", "dynamic_inventory.py")
INVENTORY = "openstack_inventory.json"
#: Pools OSA's generator can list (see the module doc).
OSA_POOLS = {"management": "10.16.0.0/20", "tunnel": "10.64.0.0/22", "storage": "10.80.0.0/22"}

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


def write_config(folder: str, n_compute: int, pools: dict | None = None) -> str:
    """``folder`` (created) holding the config of :func:`make_config`, ``pools`` as its cidr_networks."""
    config = make_config(n_compute)
    if pools:
        config["cidr_networks"] = dict(pools)
    os.makedirs(folder)
    with open(os.path.join(folder, "openstack_user_config.yml"), "w") as fh:
        yaml.safe_dump(config, fh)
    return folder


def write_ini(work: str) -> str:
    """An osa.ini in ``work`` choosing the filesystem backend."""
    ini = os.path.join(work, "osa.ini")
    with open(ini, "w") as fh:
        fh.write("[inventory]\nbackend = filesystem\n")
    os.chmod(ini, 0o600)
    return ini


def child_cpu(cmd: list[str], env: dict, cwd: str | None = None) -> float:
    """CPU seconds (user + system) of one run of ``cmd``, which must succeed."""
    return child_usage(cmd, env, cwd)[0]


def child_usage(cmd: list[str], env: dict, cwd: str | None = None) -> tuple[float, int]:
    """CPU seconds and peak RSS (KiB) of one run of ``cmd``; its stdout is discarded."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode or err:
        sys.exit(f"{' '.join(cmd[:3])} failed ({proc.returncode}): {err.decode()[-500:]}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def floor_command(config_dir: str) -> list[str]:
    """Interpreter start + reading the stored JSON + printing it."""
    code = ("import json,sys;d=json.load(open(sys.argv[1]));"
            "sys.stdout.write(json.dumps(d,sort_keys=True))")
    return [sys.executable, "-c", code, os.path.join(config_dir, INVENTORY)]


def bench_args(doc: str, hosts: str = "100,1000,3000", repeat: int = 3,
               extra=None) -> argparse.Namespace:
    """``--hosts`` (compute host counts) and ``--repeat``, after printing the machine measured on."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", default=hosts)
    parser.add_argument("--repeat", type=int, default=repeat)
    if extra:
        extra(parser)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load {load:.1f}")
    return args


def bench_env(ini: str) -> dict:
    """The environment of measured runs: ``ini`` as osa.ini, no other OSA_* variable, bytecode as installed.

    An installed package has its bytecode compiled (pip does it), and so has the
    checkout once any run wrote it; compiling ``lib/`` here, and letting the
    runs use it, keeps ``PYTHONDONTWRITEBYTECODE`` (set by some CI images) from
    making every run compile every module from source.
    """
    compileall.compile_dir(os.path.join(ROOT, "lib"), quiet=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSA_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["OSA_INI"] = ini
    env["XDG_CACHE_HOME"] = os.path.join(os.path.dirname(ini), "cache")  # the reuse records, removed with it
    return env


def _osa_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--osa-tree", metavar="DIR",
                        help="OpenStack-Ansible's tree (inventory/ and osa_toolkit/): compare with its generator")
    parser.add_argument("--osa-python", default=sys.executable, metavar="PYTHON",
                        help="a Python with netaddr and PyYAML for OSA's generator (default: this one)")
    parser.add_argument("--osa-hosts", default="1000", help="compute host counts for the comparison")
    parser.add_argument("--osa-repeat", type=int, default=5)


def ours(work: str, n: int, env: dict, repeat: int) -> dict[str, float]:
    """Median CPU of our fresh, unchanged, reused and floor runs at ``n`` computes, interleaved."""
    samples: dict[str, list[float]] = {"fresh": [], "unchanged": [], "reused": [], "floor": []}
    peak = 0
    for r in range(repeat):
        cfg = write_config(os.path.join(work, f"c{n}-{r}"), n)
        script = [sys.executable, SCRIPT, "--config", cfg, "--list"]
        cpu, rss = child_usage(script, env)
        samples["fresh"].append(cpu)
        stored = os.stat(os.path.join(cfg, INVENTORY)).st_mtime_ns
        cpu, rss2 = child_usage(script, env)
        samples["unchanged"].append(cpu)
        samples["reused"].append(child_cpu(script, env))
        if os.stat(os.path.join(cfg, INVENTORY)).st_mtime_ns != stored:
            sys.exit("an unchanged run rewrote the inventory")
        samples["floor"].append(child_cpu(floor_command(cfg), env))
        peak = max(peak, rss, rss2)
        if r < repeat - 1:
            shutil.rmtree(cfg)
    with open(os.path.join(cfg, INVENTORY)) as fh:
        hosts = len(json.load(fh)["_meta"]["hostvars"])
    size = os.path.getsize(os.path.join(cfg, INVENTORY))
    shutil.rmtree(cfg)
    result = {k: statistics.median(v) for k, v in samples.items()}
    result.update(hosts=hosts, peak=peak / 1024, size=size / 2**20)
    return result


def against_osa(work: str, n: int, env: dict, args: argparse.Namespace) -> tuple[float, float, int]:
    """Median CPU of OSA's fresh run and ours on the same config and env.d, interleaved; the host count."""
    tree = os.path.abspath(args.osa_tree)
    osa_script = os.path.join(tree, "inventory", "dynamic_inventory.py")
    osa_env = {k: v for k, v in env.items() if k != "OSA_CONFIG_DIR"}
    theirs, mine, hosts = [], [], 0
    for r in range(args.osa_repeat):
        for who in ("osa", "ours"):
            cfg = write_config(os.path.join(work, f"{who}{n}-{r}"), n, OSA_POOLS)
            if who == "osa":
                theirs.append(child_cpu([args.osa_python, osa_script, "--config", cfg, "--list"], osa_env))
            else:
                mine.append(child_cpu([sys.executable, SCRIPT, "--config", cfg, "--list",
                                       "--environment", os.path.join(tree, "inventory")], env))
            with open(os.path.join(cfg, INVENTORY)) as fh:
                count = len(json.load(fh)["_meta"]["hostvars"])
            if hosts and count != hosts:
                sys.exit(f"OSA's inventory and ours differ in size ({hosts} and {count} hosts)")
            hosts = count
            shutil.rmtree(cfg)
    return statistics.median(theirs), statistics.median(mine), hosts


def main() -> int:
    args = bench_args(__doc__, hosts="1000,2000,3000", repeat=9, extra=_osa_options)
    if args.osa_tree and os.path.exists(os.path.join("/etc/openstack_deploy", INVENTORY)):
        # OSA falls back to that folder's inventory when the config folder has none: no fresh run.
        sys.exit(f"/etc/openstack_deploy/{INVENTORY} exists, and OSA's generator would load it")
    work = tempfile.mkdtemp(prefix="osa-bench-")
    env = bench_env(write_ini(work))
    try:
        print(f"CPU seconds, median of {args.repeat} interleaved rounds; filesystem backend")
        print(f"{'computes':>8} {'hosts':>6} {'fresh':>7} {'unchanged':>9} {'reused':>7} {'floor':>7} "
              f"{'reused/floor':>12} "
              f"{'fresh ms/100 hosts':>18} {'peak MiB':>9} {'JSON MiB':>9}")
        for n in [int(x) for x in args.hosts.split(",")]:
            m = ours(work, n, env, args.repeat)
            print(f"{n:>8} {m['hosts']:>6} {m['fresh']:>7.3f} {m['unchanged']:>9.3f} {m['reused']:>7.3f} "
                  f"{m['floor']:>7.3f} {m['reused'] / m['floor']:>12.2f} {m['fresh'] / m['hosts'] * 1e5:>18.2f} "
                  f"{m['peak']:>9.1f} {m['size']:>9.2f}")
        if args.osa_tree:
            print(f"\nfresh runs against OpenStack-Ansible's generator ({args.osa_tree}), same config "
                  f"(pools {', '.join(OSA_POOLS.values())}) and OSA's env.d; CPU seconds, median of "
                  f"{args.osa_repeat} interleaved rounds")
            print(f"{'computes':>8} {'hosts':>6} {'OSA':>8} {'ours':>7} {'OSA/ours':>9}")
            for n in [int(x) for x in args.osa_hosts.split(",")]:
                theirs, mine, hosts = against_osa(work, n, env, args)
                print(f"{n:>8} {hosts:>6} {theirs:>8.3f} {mine:>7.3f} {theirs / mine:>9.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
