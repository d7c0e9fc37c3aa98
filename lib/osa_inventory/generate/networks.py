"""``container_networks`` entries and addresses from ``global_overrides.provider_networks``."""

from __future__ import annotations

import copy
from typing import Iterable

from .addresses import AddressPool, address_value, build_pools
from .model import Inventory
from ..errors import ConfigError
from .validate import host_group_keys, is_management, network_label, normalise_group, provider_networks

# provider network key -> container_networks entry key
ENTRY_KEYS = (
    ("container_bridge", "bridge"),
    ("container_bridge_type", "bridge_type"),
    ("container_type", "type"),
    ("container_mtu", "mtu"),
    ("gateway", "gateway"),
    ("static_routes", "static_routes"),
)


def network_key(net: dict) -> str:
    """The ``container_networks`` key of a provider network."""
    base = net.get("address_prefix") or net.get("ip_from_q") or net.get("container_interface")
    return f"{base}_address"


def _is_metal(hv: dict) -> bool:
    return bool((hv.get("properties") or {}).get("is_metal"))


def _stored_addresses(inv: Inventory) -> Iterable[str]:
    for hv in inv.hostvars.values():
        for key in ("ansible_host", "management_address"):
            if hv.get(key):
                yield hv[key]
        for entry in (hv.get("container_networks") or {}).values():
            if isinstance(entry, dict) and entry.get("address"):
                yield entry["address"]


def assign_networks(inv: Inventory, config: dict) -> None:
    """Give every bound host its network entries and every new container entry an address.

    Bare-metal entries are rebuilt from the config each run; container entries
    are refreshed from the config but keep the address they have.
    """
    used = config.get("used_ips") or []
    # One string is one entry (OSA iterates it character by character).
    pools = build_pools(config.get("cidr_networks") or {}, [used] if isinstance(used, str) else used)
    # Every address an entry holds, the config's hosts' ip and management_ip among them
    # (apply_physical_hosts made them their ansible_host and management_address).
    values = {v for v in map(address_value, _stored_addresses(inv)) if v is not None}
    for pool in pools.values():
        pool.reserve_values(values)

    # Decided once per entry: every network below asks it again of each host it binds.
    metal = {name for name, hv in inv.hostvars.items() if _is_metal(hv)}
    for name in metal:
        inv.hostvars[name]["container_networks"] = {}

    gateways: dict[str, str] = {}
    for net in provider_networks(config):
        _bind_network(inv, net, pools, gateways, metal)
    _set_gateways(inv, gateways, _hosts_with_own_gateway(config))


def group_name(inv: Inventory, name: object) -> str:
    """The inventory group a ``group_binds``/``reference_group`` name means.

    OSA reads ``glance-api`` as ``glance_api``, as it reads host group names;
    a group that really is spelt with a dash keeps its name.
    """
    name = str(name)
    return name if name in inv.groups else normalise_group(name)


def _bound_hosts(inv: Inventory, net: dict) -> list[str]:
    """The entries a network binds, in name order (the order addresses are handed out in)."""
    hosts = {host for group in net.get("group_binds") or () for host in inv.members(group_name(inv, group))
             if host in inv.hostvars}
    reference = net.get("reference_group")
    if reference:
        group = group_name(inv, reference)
        if group not in inv.groups:
            # OSA does not check it; binding nobody would silently drop the network.
            raise ConfigError(
                f"global_overrides.provider_networks ({network_label(net)}): reference_group {reference!r} "
                "names no group; name a host group of the config (e.g. pod1_hosts) or of env.d")
        allowed = inv.members(group)
        hosts = {h for h in hosts if (inv.hostvars[h].get("physical_host") or h) in allowed}
    return sorted(hosts)


def _bind_network(inv: Inventory, net: dict, pools: dict[str, AddressPool], gateways: dict[str, str],
                  metal: set[str]) -> None:
    """One provider network's entry on every host it binds; ``gateways`` learns its gateway per host.

    ``metal`` names the entries that run on their host (no address of their own).
    """
    key = network_key(net)
    queue = net.get("ip_from_q")
    pool = pools.get(queue)  # type: ignore[arg-type]  # no queue: no pool
    management = is_management(net)
    template = {out: net[src] for src, out in ENTRY_KEYS if net.get(src) is not None}
    template["netmask"] = pool.netmask if pool else None

    for host in _bound_hosts(inv, net):
        hv = inv.hostvars[host]
        if net.get("gateway"):
            gateways[host] = net["gateway"]
        networks = hv.get("container_networks")
        if not isinstance(networks, dict):
            networks = hv["container_networks"] = {}
        entry = dict(template)
        if "static_routes" in entry:
            entry["static_routes"] = copy.deepcopy(entry["static_routes"])
        if host in metal:
            if management:
                entry["address"] = hv.get("management_address") or hv.get("ansible_host")
        else:
            if net.get("container_interface"):
                entry["interface"] = net["container_interface"]
            old = networks.get(key)
            address = old.get("address") if isinstance(old, dict) else None
            if address is None and pool is not None:
                address = pool.allocate()
            if address is not None:
                entry["address"] = address
            if management and address is not None:
                hv["ansible_host"] = address
                hv["management_address"] = address
        networks[key] = entry


def _hosts_with_own_gateway(config: dict) -> set[str]:
    """Physical hosts whose ``host_vars`` or ``container_vars`` set ``gateway`` themselves."""
    hosts = set()
    for key in host_group_keys(config):
        for host, settings in config[key].items():  # validated: a mapping of mappings
            if any("gateway" in (settings.get(opt) or {}) for opt in ("host_vars", "container_vars")):
                hosts.add(str(host))
    return hosts


def _set_gateways(inv: Inventory, gateways: dict[str, str], own_gateway: set[str]) -> None:
    """The top-level ``gateway`` of every host bound to a network with ``gateway:``, as OSA sets it.

    The last such network bound wins, as in OSA. OSA never takes the variable
    away again; here a host no such network binds any more loses it (it would
    be a default route nobody configured), unless the deployer sets
    ``gateway`` in that host's ``host_vars``/``container_vars``.
    """
    for name, hv in inv.hostvars.items():
        if name in gateways:
            hv["gateway"] = gateways[name]
        elif "gateway" in hv and (hv.get("physical_host") or name) not in own_gateway:
            del hv["gateway"]
