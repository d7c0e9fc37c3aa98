"""Edits of one entry that operators used to make with an editor or sed: its address, its name.

Each function checks everything first and then edits the inventory dict it
is given in place, returning lines saying what it did; a refusal raises
:class:`EditRefused` (one line naming the entry, network or address and what
to do) before anything is changed. The checks use the deployment config as
the generator reads it (pools, ``used_ips``, host groups, the container
naming pattern), so what an edit stores is what the next inventory run keeps:
a container keeps a stored address, and existing containers are found by
their ``<host>-<type>`` name prefix.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Iterable

from ..errors import InventoryError
from ..generate.addresses import address_value, build_pools
from ..generate.containers import MAX_NAME_BEFORE_SUFFIX
from ..generate.hosts import config_host_groups
from ..generate.networks import network_key
from ..generate.validate import is_management, provider_networks
from .document import groups_of, hostvars_of, is_metal
from .edits import ADDRESS_KEYS, containers_of

#: Longest value a refusal quotes in full.
SHOWN = 80
#: Names the inventory stores: LXC and host names (legacy underscores too), at most 63 characters.
VALID_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


class EditRefused(InventoryError):
    """An edit the checks refuse; nothing was changed."""


class UnknownEntry(EditRefused, LookupError):
    """No host or container of that name in the inventory."""


def shown(value: object) -> str:
    """``value`` quoted for a refusal, cut short when huge."""
    text = value if isinstance(value, str) else str(value)
    return repr(text[:SHOWN] + "...") if len(text) > SHOWN else repr(text)


def parse_assignment(text: object) -> tuple[str, str]:
    """``NETWORK=ADDRESS`` as its two parts."""
    if not isinstance(text, str) or text.count("=") != 1 or not all(text.split("=")):
        raise EditRefused(f"{shown(text)} is not NETWORK=ADDRESS; write e.g. management=172.29.236.250 "
                          "(nothing was changed)")
    network, address = text.split("=")
    return network.strip(), address.strip()


def _entry(inventory: dict, name: object) -> dict:
    hv = hostvars_of(inventory).get(name) if isinstance(name, str) else None
    if not isinstance(hv, dict):
        raise UnknownEntry(f"no host or container {shown(name)} in the inventory; list them with --list-host "
                           "(nothing was changed)")
    return hv


def _config_hosts(config: dict) -> dict[str, list[str]]:
    """Each physical host the config names, with the config keys that name it (``shared_infra_hosts.infra1``)."""
    named: dict[str, list[str]] = {}
    for group, hosts in config_host_groups(config).items():
        for host in hosts:
            named.setdefault(host, []).append(f"{group}.{host}")
    return named


def _config_addresses(config: dict) -> dict[tuple[int, int], str]:
    """The ``ip`` and ``management_ip`` of every config host, by parsed value, with the host."""
    held = {}
    for hosts in config_host_groups(config).values():
        for host, settings in hosts.items():
            for key in ("ip", "management_ip"):
                value = address_value(settings.get(key)) if settings.get(key) else None
                if value is not None:
                    held.setdefault(value, host)
    return held


def _addresses_of(hv: dict) -> Iterable[object]:
    for key in ADDRESS_KEYS:
        yield hv.get(key)
    for entry in (hv.get("container_networks") or {}).values():
        if isinstance(entry, dict):
            yield entry.get("address")


def _holder(inventory: dict, config: dict, value: tuple[int, int], name: str) -> str | None:
    """Which other entry (or config host) holds the address ``value``."""
    for other, hv in hostvars_of(inventory).items():
        if other != name and isinstance(hv, dict) and value in map(address_value, _addresses_of(hv)):
            return other
    holder = _config_addresses(config).get(value)
    return holder if holder != name else None


def _network_keys(config: dict, queue: str) -> tuple[list[str], bool]:
    """The ``container_networks`` keys the networks of ``queue`` give, and whether one is the management network."""
    nets = [n for n in provider_networks(config) if n.get("ip_from_q") == queue]
    return list(dict.fromkeys(network_key(n) for n in nets)), any(is_management(n) for n in nets)


def _check_address(inventory: dict, config: dict, queue: str, text: str, name: str) -> str:
    """``text`` as the canonical address, if it is a free address of ``queue``'s pool."""
    cidrs = config.get("cidr_networks") or {}
    used = config.get("used_ips") or []
    pool = build_pools({queue: cidrs[queue]}, [used] if isinstance(used, str) else used)[queue]
    network = pool.network
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise EditRefused(f"{shown(text)} is not an IP address; give {name}'s {queue} address like "
                          f"{network[min(10, network.num_addresses - 1)]} (nothing was changed)") from None
    where = f"cidr_networks.{queue} ({network})"
    if address.version != network.version or address not in network:
        raise EditRefused(f"{address} is outside {where}; choose an address of that network for {name} "
                          "(nothing was changed)")
    value = int(address)
    if network.num_addresses >= 4 and value in (pool.first, pool.last):
        what = "network" if value == pool.first else "broadcast"
        raise EditRefused(f"{address} is the {what} address of {where}; choose a host address of it for {name} "
                          "(nothing was changed)")
    if pool.is_reserved(value):
        raise EditRefused(f"{address} is in used_ips, which the deployment keeps out of {where}; choose an "
                          f"address outside used_ips for {name} (nothing was changed)")
    holder = _holder(inventory, config, (address.version, value), name)
    if holder is not None:
        raise EditRefused(f"{address} is {holder}'s address; choose a free address of {where} for {name} "
                          "(nothing was changed)")
    return str(address)


def set_addresses(inventory: dict, name: str, assignments: Iterable[str], config: dict) -> list[str]:
    """Give ``name`` each ``NETWORK=ADDRESS`` of ``assignments`` (NETWORK: a ``cidr_networks`` queue).

    For the management network ``ansible_host`` and ``management_address``
    follow (and the older ``container_address``/``ansible_ssh_host`` where
    present), and the ``physical_host_addr`` of a physical host's containers.
    """
    hv = _entry(inventory, name)
    pairs = [parse_assignment(a) for a in assignments]
    if not pairs:
        raise EditRefused("--set-address needs NAME and at least one NETWORK=ADDRESS (nothing was changed)")
    queues = [q for q, _ in pairs]
    twice = sorted({q for q in queues if queues.count(q) > 1})
    if twice:
        raise EditRefused(f"network {shown(twice[0])} is given twice for {name}; give each network one address "
                          "(nothing was changed)")
    named = _config_hosts(config)
    if is_metal(hv) and name in named:
        raise EditRefused(f"{name} is a bare-metal host whose addresses come from the config "
                          f"({', '.join(named[name])}); change its ip there and run the inventory "
                          "(nothing was changed)")
    cidrs = config.get("cidr_networks") or {}
    networks = hv.get("container_networks") if isinstance(hv.get("container_networks"), dict) else {}
    planned: list[tuple[str, list[str], bool, str]] = []
    taken: dict[str, str] = {}
    for queue, text in pairs:
        if queue not in cidrs:
            raise EditRefused(f"no network {shown(queue)} in cidr_networks of the config; name one of "
                              f"{', '.join(map(str, cidrs)) or 'none'} (nothing was changed)")
        keys, management = _network_keys(config, queue)
        keys = [k for k in keys if isinstance(networks.get(k), dict)]
        if not keys:
            have = ", ".join(sorted(str(k) for k in networks)) or "none"
            raise EditRefused(f"{name} is not on network {queue} (its container_networks: {have}); "
                              "give a network it has (nothing was changed)")
        address = _check_address(inventory, config, queue, text, name)
        if address in taken:
            raise EditRefused(f"{address} is given for both {taken[address]} and {queue} of {name}; each network "
                              "needs its own address (nothing was changed)")
        taken[address] = queue
        planned.append((queue, keys, management, address))

    notes = []
    for queue, keys, management, address in planned:
        old = [networks[k].get("address") for k in keys]
        for key in keys:
            networks[key]["address"] = address
        if management:
            hv["ansible_host"] = hv["management_address"] = address
            for key in ("container_address", "ansible_ssh_host"):
                if key in hv:
                    hv[key] = address
            for container in containers_of(inventory, name):
                hostvars_of(inventory)[container]["physical_host_addr"] = address
        was = ", ".join(str(a) for a in dict.fromkeys(old) if a) or "none"
        notes.append(f"set {name}'s {queue} address to {address} (was {was})"
                     + ("; ansible_host and management_address follow" if management else ""))
    return notes


def _norm(name: str) -> str:
    # The generator finds a host's containers by their name prefix, reading "_" and "-" alike.
    return name.replace("_", "-")


def _check_new_name(inventory: dict, new: object) -> str:
    if not isinstance(new, str) or not VALID_NAME.fullmatch(new):
        raise EditRefused(f"{shown(new)} is not a valid inventory name: letters, digits, '-', '_' and '.', "
                          "starting with a letter or digit, at most 63 characters (nothing was changed)")
    if new in hostvars_of(inventory) or any(new in (g.get("hosts") or ()) for g in groups_of(inventory).values()):
        raise EditRefused(f"{new} already exists in the inventory; choose another name, or remove that entry "
                          "first with -r (nothing was changed)")
    if new in inventory:
        raise EditRefused(f"{new} is a group of the inventory; choose another name (nothing was changed)")
    return new


def _renames(inventory: dict, old: str, new: str, config: dict) -> dict[str, str]:
    """Every entry the rename of ``old`` renames: ``old`` and, for a physical host, its containers."""
    hv = _entry(inventory, old)
    _check_new_name(inventory, new)
    physical = (hv.get("physical_host") or old) == old
    if not physical:
        host = str(hv.get("physical_host"))
        prefix = _norm(old).rsplit("-", 1)[0]
        if _norm(new).rsplit("-", 1)[0] != prefix or not _norm(new).startswith(prefix + "-"):
            raise EditRefused(f"{new} does not keep the name prefix {prefix}- by which the next inventory run "
                              f"finds {host}'s containers of this type ('_' and '-' alike), so it would add "
                              f"another; rename it to {prefix}-SUFFIX (nothing was changed)")
        return {old: new}
    named = _config_hosts(config)
    if old in named:
        raise EditRefused(f"the config still names {old} ({', '.join(named[old])}), so the next inventory run "
                          f"would add it back; rename it to {new} there first, then run this again "
                          "(nothing was changed)")
    renames = {old: new}
    for container in containers_of(inventory, old):
        if _norm(container).startswith(_norm(old) + "-"):
            renamed = new + container[len(old):]
            if len(renamed.rsplit("-", 1)[0]) > MAX_NAME_BEFORE_SUFFIX:
                raise EditRefused(f"{new} makes its container name {renamed} longer than the inventory "
                                  "allows; choose a shorter name (nothing was changed)")
            renames[container] = _check_new_name(inventory, renamed)
    return renames


def _renamed_keys(mapping: dict, renames: dict[str, str]) -> dict:
    # Rebuilt in stored order, so a renamed entry keeps its place.
    return {renames.get(k, k): v for k, v in mapping.items()}


def _replace_in_place(target: dict, source: dict) -> None:
    target.clear()
    target.update(source)


def rename(inventory: dict, old: str, new: str, config: dict) -> list[str]:
    """Rename host or container ``old`` to ``new`` everywhere, keeping its addresses.

    A physical host's containers named after it (``<old>-<type>-<suffix>``)
    are renamed with it, its ``<old>_host_containers`` group too, and every
    ``physical_host`` that named it follows: otherwise the next inventory run
    would not find them under the new name and would add new containers.
    """
    renames = _renames(inventory, old, new, config)
    groups = {spelling: new + spelling[len(old):] for spelling in (f"{old}_host_containers", f"{old}-host_containers")
              if isinstance(inventory.get(spelling), dict)}
    taken = [n for n in groups.values() if n in inventory]
    if taken:
        raise EditRefused(f"the inventory already has a group {taken[0]}; remove it first with -d "
                          "(nothing was changed)")
    hostvars = hostvars_of(inventory)
    _replace_in_place(hostvars, _renamed_keys(hostvars, renames))
    for hv in hostvars.values():
        if not isinstance(hv, dict):
            continue
        for key in ("container_name", "physical_host"):
            if hv.get(key) in renames:
                hv[key] = renames[hv[key]]
        if hv.get("container_types") in (f"{old}_host_containers", f"{old}-host_containers"):
            hv["container_types"] = f"{new}_host_containers"
    _replace_in_place(inventory, _renamed_keys(inventory, groups))
    member_of = 0
    for value in groups_of(inventory).values():
        for key, names in (("hosts", renames), ("children", groups)):
            listed = value.get(key)
            if isinstance(listed, list) and any(n in names for n in listed if isinstance(n, str)):
                value[key] = [names.get(n, n) if isinstance(n, str) else n for n in listed]
                member_of += key == "hosts" and old in listed
    notes = [f"renamed {old} to {new} in hostvars and {member_of} group(s)"]
    notes += [f"renamed its container {a} to {b}" for a, b in renames.items() if a != old]
    notes += [f"renamed the group {a} to {b}" for a, b in groups.items()]
    return notes
