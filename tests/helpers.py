"""Helpers shared by the generator and inventory-script tests."""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import random
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "playbooks", "inventory", "dynamic_inventory.py")
ENVIRONMENT = os.path.join(ROOT, "playbooks", "inventory")
INVENTORY = "openstack_inventory.json"
MANAGE = os.path.join(ROOT, "scripts", "inventory-manage.py")

MGMT_NET = {
    "container_bridge": "br-mgmt", "container_interface": "eth1", "container_type": "veth",
    "ip_from_q": "management", "type": "raw", "is_management_address": True,
    "group_binds": ["all_containers", "hosts"],
}
STORAGE_NET = {
    "container_bridge": "br-storage", "container_interface": "eth2", "container_type": "veth",
    "ip_from_q": "storage", "type": "raw",
    "group_binds": ["glance_api", "cinder_api", "cinder_volume", "nova_compute"],
}
# An env.d in the spelling some env.d files of earlier OSA releases used: physical_skel groups with
# dashes. OSA feeds legacy_container from the config's shared_infra_hosts and lists it in shared_infra_all.
DASHED_ENV_D = {
    "component_skel": {"legacy_api": {"belongs_to": ["legacy_all"]}},
    "container_skel": {"legacy_container": {"belongs_to": ["shared-infra_containers"], "contains": ["legacy_api"]},
                       "legacy_agent_container": {"belongs_to": ["storage-infra_containers"],
                                                  "contains": ["legacy_agent"], "properties": {"is_metal": True}}},
    "physical_skel": {"shared-infra_containers": {"belongs_to": ["all_containers"]},
                      "shared-infra_hosts": {"belongs_to": ["hosts"]},
                      "storage-infra_containers": {"belongs_to": ["all_containers"]}},
}
TUNNEL_NET = {
    "container_bridge": "br-vxlan", "container_interface": "eth10", "container_type": "veth",
    "ip_from_q": "tunnel", "type": "geneve", "range": "1:1000", "net_name": "geneve",
    "group_binds": ["neutron_ovn_controller"],
}


def base_config() -> dict:
    """A small but complete deployment: two infra hosts, a compute and a storage host."""
    infra = {"infra1": {"ip": "172.29.236.11"}, "infra2": {"ip": "172.29.236.12"}}
    return {
        "cidr_networks": {"management": "172.29.236.0/22", "tunnel": "172.29.240.0/22",
                          "storage": "172.29.244.0/22"},
        "used_ips": ["172.29.236.1,172.29.236.50", "172.29.240.1,172.29.240.50",
                     "172.29.244.1,172.29.244.50"],
        "global_overrides": {
            "internal_lb_vip_address": "172.29.236.9", "external_lb_vip_address": "cloud.example.org",
            "management_bridge": "br-mgmt",
            "provider_networks": [{"network": copy.deepcopy(n)} for n in (MGMT_NET, TUNNEL_NET, STORAGE_NET)],
        },
        "shared_infra_hosts": copy.deepcopy(infra),
        "repo_infra_hosts": copy.deepcopy(infra),
        "identity_hosts": copy.deepcopy(infra),
        "image_hosts": copy.deepcopy(infra),
        "storage_infra_hosts": copy.deepcopy(infra),
        "load_balancer_hosts": {"infra1": {"ip": "172.29.236.11"}},
        "compute_hosts": {"compute1": {"ip": "172.29.236.21"}},
        "storage_hosts": {"storage1": {"ip": "172.29.236.31"}},
    }


def write_config(folder: str, config: dict, name: str = "openstack_user_config.yml") -> str:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    with open(path, "w") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)
    return path


def write_ini(folder: str, text: str = "[inventory]\nbackend = filesystem\n") -> str:
    path = os.path.join(folder, "osa.ini")
    with open(path, "w") as fh:
        fh.write(text)
    return path


def run_script(config_dir: str | None, *args: str, ini: str | None = None, env: dict | None = None,
               timeout: float = 120, cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run the real inventory script; ``--list`` unless other mode flags are given."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_"))}
    if ini:
        full_env["OSA_INI"] = ini
    full_env.update(env or {})
    cmd = [sys.executable, SCRIPT]
    if config_dir is not None:
        cmd += ["--config", config_dir]
    cmd += list(args) or ["--list"]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=cwd)


def containers_of(inv: dict, host: str) -> list[str]:
    hv = inv["_meta"]["hostvars"]
    return sorted(n for n, v in hv.items() if v.get("physical_host") == host and n != host)


def load_json(path: str) -> dict:
    with open(path) as fh:
        return json.load(fh)


def last_pass(skel, host_group: str) -> int:
    """Where in the container pass the last entry fed by config group ``host_group`` is handled (-1: none)."""
    feeds = host_group[: -len("_hosts")] + "_containers"
    return max((i for i, key in enumerate(skel.container_order)
                if feeds in (skel.container_skel[key].get("belongs_to") or ())
                and skel.container_skel[key].get("contains")), default=-1)


def run_ok(config_dir, ini):
    """The inventory the real script prints for ``config_dir``; it must succeed with nothing on stderr."""
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return json.loads(result.stdout)


def as_osa_stored(inv, cidrs, seed=9):
    """``inv`` as OSA would have stored it: random name suffixes, container addresses drawn elsewhere.

    OSA picks both at random; we hand them out from the bottom of each pool, so the OSA-style copy
    takes its addresses from the top of each pool instead, and nothing in it matches what a fresh
    run of ours would choose.
    """
    rng = random.Random(seed)
    hostvars = inv["_meta"]["hostvars"]
    renames = {}
    for name, hv in hostvars.items():
        if hv.get("physical_host") not in (None, name):
            renames[name] = f"{name.rsplit('-', 1)[0]}-{rng.getrandbits(32):08x}"
    networks = [ipaddress.ip_network(c) for c in cidrs.values()]
    next_top = {net: int(net.broadcast_address) - 1 for net in networks}
    readdress = {}
    for name in sorted(renames):
        for entry in hostvars[name]["container_networks"].values():
            if "address" not in entry:
                continue
            net = next(n for n in networks if ipaddress.ip_address(entry["address"]) in n)
            readdress[entry["address"]] = str(ipaddress.ip_address(next_top[net]))
            next_top[net] -= 1
    text = json.dumps(inv)
    for old, new in list(renames.items()) + list(readdress.items()):
        text = text.replace(f'"{old}"', f'"{new}"')
    return json.loads(text)


def adopts_unchanged(config_dir, ini, stored):
    """Store ``stored`` as OSA would, run the script: same inventory printed, file not rewritten."""
    path = os.path.join(config_dir, INVENTORY)
    with open(path, "w") as fh:
        json.dump(stored, fh, indent=4, sort_keys=True)
    before = os.stat(path).st_mtime_ns
    assert run_ok(config_dir, ini) == stored
    assert os.stat(path).st_mtime_ns == before
    assert not os.path.exists(os.path.join(config_dir, "backup_openstack_inventory.tar"))


def history(config_dir: str, ini: str) -> list[dict]:
    """The change records of the inventory osa.ini ``ini`` selects, oldest first (``inventory-manage --history``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSA_")}
    env.update(OSA_INI=ini, PYTHONPATH=os.path.join(ROOT, "lib"))
    result = subprocess.run([sys.executable, MANAGE, "--config", config_dir, "--history", "--format", "json"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
