"""Physical hosts from the user config's ``*_hosts`` groups."""

from __future__ import annotations

from .model import Inventory
from .validate import host_group_keys, normalise_group


def config_host_groups(config: dict) -> dict[str, dict[str, dict]]:
    """``{group: {host: settings}}`` with dashed group names read as underscores.

    Two spellings of one group merge; within a group the config's host order is kept.
    A key that holds no mapping (refused by the checks) is an empty group, so the
    checks themselves can read the groups of a config they have not passed yet.
    """
    groups: dict[str, dict[str, dict]] = {}
    for key in host_group_keys(config):
        merged = groups.setdefault(normalise_group(key), {})
        hosts = config[key]
        for host, settings in (hosts.items() if isinstance(hosts, dict) else ()):
            merged[str(host)] = settings or {}
    return groups


def apply_physical_hosts(inv: Inventory, groups: dict[str, dict[str, dict]]) -> None:
    """Hostvars and group membership of every physical host, refreshed from the config."""
    hostvars = inv.hostvars
    for group_name, hosts in groups.items():
        group = inv.hosts_group(group_name)
        for host, settings in hosts.items():
            ip = str(settings["ip"]).strip()
            hv = hostvars.setdefault(host, {})
            properties = hv.get("properties")
            if not isinstance(properties, dict):
                properties = hv["properties"] = {}
            properties["is_metal"] = True
            # physical_host and container_types come with the first container entry that the host
            # feeds (containers.place_containers): a host of user-defined groups only has neither, as in OSA.
            hv.update({
                "ansible_host": ip,
                "management_address": str(settings.get("management_ip") or ip).strip(),
                "container_name": host,
                "is_metal": True,
                "physical_host_group": group_name,
            })
            for key, value in (settings.get("host_vars") or {}).items():
                hv[key] = value
            group.add_host(host)
