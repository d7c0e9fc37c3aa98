"""``--move NAME --to HOST``: re-home a container to another physical host of its group.

The container takes the name OpenStack-Ansible's pattern gives it on the new
host (``<host>-<type>-<suffix>``, the suffix as the generator derives it),
keeps each address that is still valid there (its network binds the new
host and the address is in that network) and gets a new one from the pool
where not. Everything else about the moved entry (network entries,
``container_vars`` of the new host, ``physical_host_addr``, groups) is what
the generator gives it on the new host, so the next inventory run keeps it
and stores nothing; the rest of the inventory is left as stored.
"""

from __future__ import annotations

import ipaddress
import json

from ..deployment_config import DeploymentConfig
from ..generate.addresses import parse_network
from ..generate.containers import MAX_NAME_BEFORE_SUFFIX, container_suffix
from ..generate.networks import network_key
from ..generate.pipeline import generate
from ..generate.validate import provider_networks
from .document import groups_of, hostvars_of, is_metal
from .edits import ADDRESS_KEYS, containers_of
from .entry_edits import EditRefused, UnknownEntry, shown
from ..generate.placement import expected_counts


def _norm(name: str) -> str:
    return name.replace("_", "-")


def _container_type(inventory: dict, name: str, deployment: DeploymentConfig) -> str:
    groups = groups_of(inventory)
    for key in deployment.skeleton.container_order:
        if name in ((groups.get(key) or {}).get("hosts") or ()):
            return key
    raise EditRefused(f"{name} is in no container group of the skeleton, so it has no type to place on "
                      "another host (nothing was changed)")


def _of_type_on(inventory: dict, host: str, key: str) -> list[str]:
    prefix = _norm(f"{host}-{key}") + "-"
    return [c for c in containers_of(inventory, host) if _norm(c).startswith(prefix)]


def _new_name(inventory: dict, host: str, key: str) -> str:
    """The name the generator would give the next ``key`` container of ``host``."""
    type_and_name = f"{host}-{_norm(key)}"
    if len(type_and_name) > MAX_NAME_BEFORE_SUFFIX:
        raise EditRefused(f"a {key} container of {host} would be named {type_and_name}-XXXXXXXX, longer than "
                          "the inventory allows (nothing was changed)")
    ordinal = len(_of_type_on(inventory, host, key))
    while True:
        name = f"{type_and_name}-{container_suffix(host, key, ordinal)}"
        if name not in hostvars_of(inventory):
            return name
        ordinal += 1


def _checks(inventory: dict, name: object, host: object, deployment: DeploymentConfig) -> tuple[str, str, str]:
    """The container's host and type, and its new name; or the refusal."""
    hv = hostvars_of(inventory).get(name) if isinstance(name, str) else None
    if not isinstance(hv, dict):
        raise UnknownEntry(f"no host or container {shown(name)} in the inventory; list them with --list-host "
                           "(nothing was changed)")
    old_host = hv.get("physical_host")
    if is_metal(hv) or not old_host or old_host == name:
        raise EditRefused(f"{name} is not a container; --move re-homes containers (nothing was changed)")
    if not isinstance(host, str) or not host:
        raise EditRefused(f"{shown(host)} is not a host name (nothing was changed)")
    if host == old_host:
        raise EditRefused(f"{name} is already on {host} (nothing was changed)")
    key = _container_type(inventory, name, deployment)
    counts = expected_counts(deployment.config, deployment.skeleton)
    wanted, on_host = counts.get((host, key), (0, True))
    if wanted == 0:
        raise EditRefused(f"the config places no {key} container on {shown(host)} (it is not a host of the "
                          f"groups of {key}, or runs it on the host itself); choose a host of {name}'s group, "
                          "or add the host to that group in the config first (nothing was changed)")
    there = _of_type_on(inventory, host, key)
    if len(there) >= wanted:
        raise EditRefused(f"{host} already has the {wanted} {key} container(s) the config asks for "
                          f"({', '.join(there)}); give one of them {name}'s addresses with --set-address, or "
                          "remove it with -r first (nothing was changed)")
    still = counts.get((old_host, key), (0, True))[0]
    if still > len(_of_type_on(inventory, old_host, key)) - 1:
        raise EditRefused(f"the config still places {still} {key} container(s) on {old_host}, so the next "
                          f"inventory run would add one back there; take {old_host} out of the config (or "
                          "lower its affinity) first, then run this again (nothing was changed)")
    return str(old_host), key, _new_name(inventory, host, key)


def _rename_in_groups(inventory: dict, old: str, new: str, old_host: str, host: str) -> None:
    for group, value in groups_of(inventory).items():
        hosts = value.get("hosts")
        if not isinstance(hosts, list) or old not in hosts:
            continue
        if group in (f"{old_host}_host_containers", f"{old_host}-host_containers"):
            value["hosts"] = [h for h in hosts if h != old]  # the new host's group comes from the generator
        else:
            value["hosts"] = [new if h == old else h for h in hosts]


def _valid_addresses(old_networks: dict, bound: set[str], config: dict) -> dict[str, dict]:
    """The old network entries whose address stays valid: their network binds the new host and holds it."""
    cidrs = config.get("cidr_networks") or {}
    kept = {}
    for net in provider_networks(config):
        key, queue = network_key(net), net.get("ip_from_q")
        entry = old_networks.get(key)
        if key not in bound or queue not in cidrs or not isinstance(entry, dict) or not entry.get("address"):
            continue
        try:
            inside = ipaddress.ip_address(str(entry["address"])) in parse_network(queue, cidrs[queue])
        except ValueError:
            inside = False
        if inside:
            kept[key] = {"address": entry["address"]}
    return kept


def move(inventory: dict, name: str, host: str, deployment: DeploymentConfig) -> list[str]:
    """Re-home container ``name`` to physical host ``host`` (see the module doc)."""
    old_host, _type, new = _checks(inventory, name, host, deployment)
    hostvars = hostvars_of(inventory)
    entry = hostvars[name]
    old_networks = entry.get("container_networks") if isinstance(entry.get("container_networks"), dict) else {}
    moved = {k: v for k, v in entry.items() if k not in ADDRESS_KEYS and k != "container_networks"}
    moved.update(physical_host=host, container_name=new)
    renamed = {new if n == name else n: (moved if n == name else hv) for n, hv in hostvars.items()}
    hostvars.clear()
    hostvars.update(renamed)
    _rename_in_groups(inventory, name, new, old_host, host)

    def generated_entry() -> dict:
        return generate(deployment.config, deployment.skeleton, inventory, deployment.unknown_groups)

    # First without addresses: which networks bind the container on the new host.
    bound = set(hostvars_of(generated_entry())[new].get("container_networks") or {})
    kept = _valid_addresses(old_networks, bound, deployment.config)
    moved["container_networks"] = kept
    result = generated_entry()
    hostvars[new] = result_entry = hostvars_of(result)[new]
    created = []
    for group, value in groups_of(result).items():
        if new not in (value.get("hosts") or ()):
            continue
        if group not in inventory:  # the new host's first container: its <host>_host_containers
            inventory[group] = dict(json.loads(json.dumps(value)), hosts=[new])  # not the host's other new ones
            created.append(group)
        elif isinstance(inventory[group], dict) and new not in (inventory[group].get("hosts") or []):
            inventory[group]["hosts"] = list(inventory[group].get("hosts") or []) + [new]
    for group, value in groups_of(result).items():
        target = inventory.get(group)
        for child in created:
            if child in (value.get("children") or ()) and isinstance(target, dict) \
                    and child not in (target.get("children") or []):
                target["children"] = list(target.get("children") or []) + [child]
    networks = result_entry.get("container_networks") or {}
    same = sorted(k for k in kept)
    new_ones = sorted(k for k in networks if k not in kept and isinstance(networks[k], dict)
                      and networks[k].get("address"))
    notes = [f"moved {name} from {old_host} to {host} as {new}"]
    if same:
        notes.append(f"kept its addresses on {', '.join(same)}")
    if new_ones:
        notes.append("new addresses on the new host's networks: "
                     + ", ".join(f"{k} {networks[k]['address']}" for k in new_ones))
    dropped = sorted(k for k in old_networks if k not in networks)
    if dropped:
        notes.append(f"dropped its entries of networks that do not bind {host}: {', '.join(dropped)}")
    return notes
