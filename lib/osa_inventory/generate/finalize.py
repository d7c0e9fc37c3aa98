"""Last touches every run: ``all.vars``, required hostvars, ``lxc_hosts``."""

from __future__ import annotations

import copy

from .model import Inventory
from .validate import container_cidr

REQUIRED_HOSTVARS = (
    "properties", "ansible_host", "physical_host_group", "management_address",
    "container_name", "container_networks", "physical_host", "physical_host_addr", "component",
)
DEFAULT_CONTAINER_TECH = "lxc"


def set_all_vars(inv: Inventory, config: dict) -> None:
    """``all.vars`` is ``global_overrides`` plus ``container_cidr``, rebuilt every run."""
    new = {"container_cidr": container_cidr(config)}
    new.update(copy.deepcopy(config.get("global_overrides") or {}))
    inv.all_vars = new


def complete_hostvars(inv: Inventory) -> None:
    """Every entry has the keys playbooks read; containers track their host's address."""
    hostvars = inv.hostvars
    for name, hv in hostvars.items():
        if not hv.get("container_name"):
            hv["container_name"] = name
        for key in REQUIRED_HOSTVARS:
            if key not in hv:
                hv[key] = {} if key in ("container_networks", "properties") else None
        if hv.get("container_tech") is None:
            hv["container_tech"] = DEFAULT_CONTAINER_TECH
        parent = hv.get("physical_host")
        if parent in hostvars:  # a physical host is its own parent; None names no entry
            hv["physical_host_addr"] = hostvars[parent].get("ansible_host")


def rebuild_lxc_hosts(inv: Inventory) -> None:
    """``lxc_hosts``: the physical hosts of every LXC container, recomputed each run.

    Runs after :func:`complete_hostvars`, which gives every entry its ``container_tech``.
    """
    hosts = dict.fromkeys(hv.get("physical_host") for name, hv in inv.hostvars.items()
                          if (hv.get("physical_host") or name) != name and hv.get("container_tech") == "lxc")
    group = inv.hosts_group("lxc_hosts")
    # Keep the stored order of hosts that stay, so an unchanged run stores nothing.
    group.hosts = dict.fromkeys([h for h in group.hosts if h in hosts] + list(hosts))
