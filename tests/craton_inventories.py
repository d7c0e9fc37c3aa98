"""Builds OSA-shaped inventories for the Craton tests and benchmark (deterministic, any size).

The shape follows what the generator emits (``_meta.hostvars``, ``all.vars``,
groups as ``{"hosts": [...]}`` or ``{"children": [...], "hosts": [...]}``),
plus the awkward cases a storage backend must carry exactly when ``extras``
is on: unicode, hosts without an address or with a DNS name or IPv6 address,
a container whose physical host is absent, keys Craton cannot hold as-is
(empty, over 255 characters, our reserved prefix), a group name over 255
characters, group vars, empty groups, a group listing a host with no
hostvars, and values whose types ``==`` confuses (1, 1.0, true).
"""

from __future__ import annotations

import copy
import random
from typing import Any

SERVICES = [("galera", "galera"), ("rabbit_mq", "rabbitmq"), ("memcached", "memcached"),
            ("keystone", "keystone"), ("glance", "glance_api"), ("nova_api", "nova_api_os_compute"),
            ("neutron_server", "neutron_server"), ("horizon", "horizon"), ("utility", "utility"),
            ("repo", "repo_server")]
INFRA = ["infra1", "infra2", "infra3"]


def _address(index: int) -> str:
    return f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"


def _networks(address: str | None, container: bool) -> dict:
    nets = {
        "management_address": {"bridge": "br-mgmt", "netmask": "255.255.252.0", "type": "veth"},
        "storage_address": {"bridge": "br-storage", "netmask": "255.255.252.0", "type": "veth"},
        "tunnel_address": {"bridge": "br-vxlan", "netmask": "255.255.252.0", "type": "veth"},
        "eth12_address": {"bridge": "br-vlan", "netmask": None, "type": "veth"},
    }
    if address:
        nets["management_address"]["address"] = address
    if container:
        nets["management_address"]["interface"] = "eth1"
    return nets


def _metal(name: str, address: str | None, group: str) -> dict:
    return {"ansible_host": address, "component": None, "container_name": name,
            "container_networks": _networks(address, False), "container_tech": "lxc",
            "container_types": f"{name}_host_containers", "is_metal": True, "management_address": address,
            "physical_host": name, "physical_host_addr": address, "physical_host_group": group,
            "properties": {"is_metal": True}}


def _container(name: str, host: str, host_addr: str, address: str, component: str) -> dict:
    return {"ansible_host": address, "component": component, "container_name": name,
            "container_networks": _networks(address, True), "container_tech": "lxc",
            "management_address": address, "physical_host": host, "physical_host_addr": host_addr,
            "physical_host_group": "shared-infra_hosts", "properties": {}}


def _group(inv: dict, name: str, hosts: list | None = None, children: list | None = None,
           container_style: bool = False) -> dict:
    group = inv.setdefault(name, {"hosts": []} if container_style else {"children": [], "hosts": []})
    for h in hosts or []:
        if h not in group["hosts"]:
            group["hosts"].append(h)
    for c in children or []:
        if c not in group.setdefault("children", []):
            group["children"].append(c)
    return group


def build_inventory(total_hosts: int = 60, extras: bool = True, seed: int = 7) -> dict:
    """An inventory with exactly ``total_hosts`` hostvars entries (at least 40 with extras, 33 without)."""
    rng = random.Random(seed)
    inv: dict[str, Any] = {"_meta": {"hostvars": {}}}
    hv = inv["_meta"]["hostvars"]
    counter = iter(range(1, 10**7))
    for host in INFRA:
        host_addr = _address(next(counter))
        hv[host] = _metal(host, host_addr, "shared-infra_hosts")
        _group(inv, "shared-infra_hosts", [host])
        _group(inv, "lxc_hosts", [host])
        for skel, component in SERVICES:
            cname = f"{host}-{skel.replace('_', '-')}-container-{rng.getrandbits(32):08x}"
            hv[cname] = _container(cname, host, host_addr, _address(next(counter)), component)
            _group(inv, f"{skel}_container", [cname], container_style=True)
            _group(inv, f"{host}_host_containers", [cname], container_style=True)
            _group(inv, component, [cname])
            _group(inv, f"{skel}_all", children=[component, f"{skel}_container"])
            _group(inv, "all_containers", children=[f"{skel}_container"])
    if extras:
        _add_extras(inv)
    computes = total_hosts - len(hv)
    if computes < 0:
        raise ValueError(f"total_hosts must be at least {len(hv)}")
    for i in range(1, computes + 1):
        name = f"compute{i}"
        hv[name] = _metal(name, _address(next(counter)), "compute_hosts")
        hv[name]["nova_reserved_host_memory_mb"] = 2048 + (i % 7)
        _group(inv, "compute_hosts", [name])
        _group(inv, "nova_compute", [name])
        _group(inv, f"az{i % 3}_hosts", [name])
    _group(inv, "hosts", children=["shared-infra_hosts", "compute_hosts"])
    _group(inv, "nova_compute_all", children=["nova_compute"])
    for empty in ("ceph-mon_all", "trove_all", "zun_all"):
        _group(inv, empty)
    _group(inv, "ceph-mon_container", container_style=True)
    for g in inv.values():  # group host order is data, not to be sorted by storage
        if isinstance(g, dict) and isinstance(g.get("hosts"), list) and len(g["hosts"]) > 2 \
                and g is not inv["_meta"]:
            rng.shuffle(g["hosts"])
    inv["all"] = {"vars": {
        "container_cidr": "10.0.0.0/8", "external_lb_vip_address": "cloud.example.org",
        "internal_lb_vip_address": "10.0.0.9", "management_bridge": "br-mgmt",
        "motd": "Bienvenue à bord ☕ — 日本語", "nested": {"a": [1, 1.0, True, None, {"b": [[]]}], "c": {}},
        "provider_networks": [{"network": {"container_bridge": "br-mgmt", "container_interface": "eth1",
                                           "group_binds": ["all_containers", "hosts"], "ip_from_q": "management",
                                           "is_management_address": True, "type": "raw"}}],
    }}
    return inv


def _add_extras(inv: dict) -> None:
    hv = inv["_meta"]["hostvars"]

    def add(name: str, vars_: dict, groups: list[str]) -> None:
        hv[name] = vars_
        for g in groups:
            _group(inv, g, [name])

    add("noaddr1", {**_metal("noaddr1", None, "storage_hosts"), "note": "no address at all"},
        ["storage_hosts", "cinder_volume"])
    del hv["noaddr1"]["ansible_host"]
    add("lb1", {**_metal("lb1", "lb1.example.org", "haproxy_hosts")}, ["haproxy_hosts", "haproxy"])
    add("v6host", _metal("v6host", "fd00::10", "storage_hosts"), ["storage_hosts", "swift_hosts"])
    add("stockage-é1", {**_metal("stockage-é1", "10.9.0.1", "storage_hosts"), "owner": "Zoë Ørsted",
                        "ключ": "значение"}, ["storage_hosts", "cinder_volume"])
    add("orphan-container-1", _container("orphan-container-1", "gone-host", "10.9.0.99", "10.9.0.2", "swift"),
        ["swift_proxy"])
    add("oddkeys", {**_metal("oddkeys", "10.9.0.3", "storage_hosts"), "": "empty key", "k" * 300: "long key",
                    "osa-inventory:escaped": "looks like ours", "osa-inventory:value": [1, 2],
                    "types": [1, 1.0, True, 0, False, None, 10**20, -0.5, "1"]},
        ["storage_hosts", "g" * 300])
    add("weird-ip", {**_metal("weird-ip", "10.9.0.300", "storage_hosts")}, ["storage_hosts"])
    inv["special_group"] = {"hosts": ["oddkeys", "ghost-host"], "vars": {"x": 1, "y": {"z": [None]}}}
    inv["metal_only"] = {"children": ["storage_hosts"], "hosts": []}


def variant(inventory: dict) -> dict:
    """A deep copy, for tests that change one thing."""
    return copy.deepcopy(inventory)
