"""Containers (and bare-metal services) that the skeleton places on each physical host.

For every ``container_skel`` entry and every ``<X>_containers`` group it
belongs to, the hosts of the user config's ``<X>_hosts`` group each get
``affinity`` containers of that type (default 1), or, for bare-metal entries
and ``no_containers`` hosts, run its components themselves.

New names are ``<host>-<type>-<8 hex>`` where the hex digits are derived from
host, type and ordinal, so a lost inventory regenerated from the same config
comes out with the same names. Existing containers are found by name prefix
(``_`` and ``-`` alike) and are never renamed or removed.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field

from .config import Skeleton
from ..errors import ConfigError
from .model import Inventory
from .validate import global_no_containers, normalise_group

MAX_NAME_BEFORE_SUFFIX = 52
LIMIT_KEY = "limit_container_types"


def _hosts_of(group: str) -> str | None:
    """``<X>_hosts`` for ``<X>_containers``, as spelt; None for a name of another shape."""
    if group.endswith("_containers"):
        return group[: -len("_containers")] + "_hosts"
    return None


def host_group_for(container_group: str) -> str | None:
    """``<X>_containers`` is fed by the user config group ``<X>_hosts``, dashes read as underscores.

    As in OSA: an env.d of older releases that places containers in
    ``shared-infra_containers`` feeds them from the config's ``shared_infra_hosts``
    (config group names are read that way too, so ``shared-infra_hosts`` there is the same group).
    """
    hosts = _hosts_of(container_group)
    return normalise_group(hosts) if hosts else None


def all_group_for(container_group: str) -> str:
    """``<X>_containers`` has a ``<X>_all`` group of the hosts and containers it places (dashes as underscores)."""
    return normalise_group(container_group[: -len("_containers")]) + "_all"


def _norm(name: str) -> str:
    return name.replace("_", "-")


def container_suffix(host: str, skel_key: str, ordinal: int) -> str:
    """Eight hex digits derived from what the container is, not from chance."""
    digest = hashlib.sha256(f"{host}\0{skel_key}\0{ordinal}".encode()).hexdigest()
    return digest[:8]


@dataclass
class Placement:
    """What the container pass learnt, for the steps that follow it."""

    # host -> the config groups whose container_vars apply to it and its containers, in pass order
    vars_sources: dict[str, list[str]] = field(default_factory=dict)
    # host -> components it runs itself (bare metal), in pass order
    metal_components: dict[str, list[str]] = field(default_factory=dict)
    # host -> (component, physical_host_group) candidates, in pass order
    metal_roles: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


class _ExistingIndex:
    """Containers of one skeleton group, keyed by their suffix-free name."""

    def __init__(self, inv: Inventory, skel_key: str):
        self.by_prefix: dict[str, list[str]] = {}
        for name in inv.groups[skel_key].hosts:  # apply_skeleton made every container_skel group
            prefix = _norm(name).rsplit("-", 1)[0]
            self.by_prefix.setdefault(prefix, []).append(name)

    def find(self, type_and_name: str) -> list[str]:
        return self.by_prefix.get(_norm(type_and_name), [])

    def add(self, type_and_name: str, name: str) -> None:
        self.by_prefix.setdefault(_norm(type_and_name), []).append(name)


@dataclass
class _Type:
    """One container_skel entry, read once."""

    key: str
    belongs_to: list[str]
    contains: list[str]
    properties: dict

    @property
    def name_part(self) -> str:
        return _norm(self.key)


def place_containers(inv: Inventory, skel: Skeleton, config: dict,
                     host_groups: dict[str, dict[str, dict]]) -> Placement:
    """Create or find every container and record bare-metal roles (see module doc)."""
    placement = Placement()
    no_containers = global_no_containers(config)
    for skel_key in skel.container_order:
        entry = skel.container_skel.get(skel_key) or {}
        ctype = _Type(skel_key, [str(g) for g in entry.get("belongs_to") or ()],
                      [str(c) for c in entry.get("contains") or ()], entry.get("properties") or {})
        if not ctype.belongs_to or not ctype.contains:
            continue
        existing = _ExistingIndex(inv, skel_key)
        for container_group in ctype.belongs_to:
            host_group = host_group_for(container_group)
            hosts = host_groups.get(host_group)  # type: ignore[arg-type]  # None: no such group
            if not hosts:
                continue
            all_group = inv.hosts_group(all_group_for(container_group))
            for host, settings in hosts.items():
                placement.vars_sources.setdefault(host, []).append(host_group)
                inv.hostvars[host].update(physical_host=host, container_types=f"{host}_host_containers")
                all_group.add_host(host)
                if ctype.properties.get("is_metal") or no_containers or settings.get("no_containers"):
                    _run_on_metal(inv, placement, ctype, host, host_group)
                else:
                    for name in _containers_for(inv, existing, ctype, host, host_group, settings):
                        all_group.add_host(name)
        if "properties" in entry:
            # Skeleton properties are authoritative for every container of the type, every run.
            for name in inv.groups[skel_key].hosts:
                if name in inv.hostvars:
                    inv.hostvars[name]["properties"] = copy.deepcopy(ctype.properties)
    return placement


def _run_on_metal(inv: Inventory, placement: Placement, ctype: _Type, host: str, host_group: str) -> None:
    """The host runs the type's components itself."""
    for component in ctype.contains:
        inv.group(component).add_host(host)
    placement.metal_components.setdefault(host, []).extend(ctype.contains)
    placement.metal_roles.setdefault(host, []).append((ctype.contains[-1], host_group))


def _containers_for(inv: Inventory, existing: _ExistingIndex, ctype: _Type, host: str, host_group: str,
                    settings: dict) -> list[str]:
    """The host's containers of this type: the stored ones, plus new ones up to its affinity."""
    type_and_name = f"{host}-{ctype.name_part}"
    if len(type_and_name) > MAX_NAME_BEFORE_SUFFIX:
        raise ConfigError(
            f"container name {type_and_name}-XXXXXXXX for host {host} in {host_group} is too long: "
            f"the part before the suffix may be at most {MAX_NAME_BEFORE_SUFFIX} characters; "
            "shorten the host name")
    affinity = (settings.get("affinity") or {}).get(ctype.key, 1)
    try:
        affinity = int(affinity)
    except (TypeError, ValueError):
        raise ConfigError(
            f"host {host} in {host_group}: affinity.{ctype.key} = {affinity!r} is not a number") from None

    hostvars = inv.hostvars
    names = list(existing.find(type_and_name))
    ordinal = len(names)
    while len(names) < affinity:
        name = f"{type_and_name}-{container_suffix(host, ctype.key, ordinal)}"
        ordinal += 1
        if name in hostvars:
            continue
        # Addresses come from the networks step, the rest of the keys from finalize.complete_hostvars.
        hostvars[name] = {
            "physical_host": host,
            "physical_host_group": host_group,
            "component": ctype.contains[0],
            "properties": copy.deepcopy(ctype.properties),
        }
        names.append(name)
        existing.add(type_and_name, name)
    if names:
        type_group = inv.groups[ctype.key]
        host_containers = inv.hosts_group(f"{host}_host_containers")
        for name in names:
            type_group.add_host(name)
            host_containers.add_host(name)
            for component in ctype.contains:
                inv.group(component).add_host(name)
    return names


def metal_roles_of(inv: Inventory) -> dict[str, tuple]:
    """``(component, physical_host_group)`` of every entry, to remember a stored choice."""
    return {name: (hv.get("component"), hv.get("physical_host_group")) for name, hv in inv.hostvars.items()}


def settle_metal_roles(inv: Inventory, placement: Placement, previous: dict[str, tuple]) -> None:
    """Name each bare-metal host's ``component`` and ``physical_host_group``.

    OSA lets the last bare-metal type processed win; a stored choice that is
    still one of the host's roles is kept, so the value never flips between
    runs or machines.
    """
    for host, roles in placement.metal_roles.items():
        hv = inv.hostvars[host]  # every placed host is a config host, already in hostvars
        stored = previous.get(host)
        if stored in roles:
            hv["component"], hv["physical_host_group"] = stored
        else:
            hv["component"], hv["physical_host_group"] = roles[-1]


def apply_container_vars(inv: Inventory, host_groups: dict[str, dict[str, dict]],
                         placement: Placement) -> None:
    """A host's ``container_vars`` apply to it and to each of its containers, every run.

    A dict value holding ``limit_container_types: T`` applies (without that
    key) only where ``T`` is part of the entry's component; for a bare-metal
    host every component it runs counts.
    """
    # Every entry by its physical host: a host (its own physical_host) and its containers.
    entries_of: dict[str, list[str]] = {}
    for name, hv in inv.hostvars.items():
        entries_of.setdefault(hv.get("physical_host"), []).append(name)

    for host, sources in placement.vars_sources.items():
        entries = entries_of[host]
        # Each group once, at its last pass: the last pass sets a variable last.
        for group in list(dict.fromkeys(reversed(sources)))[::-1]:
            container_vars = host_groups[group][host].get("container_vars")
            if not isinstance(container_vars, dict):
                continue
            for name in entries:
                hv = inv.hostvars[name]
                if name == host:
                    components = placement.metal_components.get(host, [])
                else:
                    components = [hv.get("component")]
                for key, value in container_vars.items():
                    if isinstance(value, dict) and LIMIT_KEY in value:
                        limit = str(value[LIMIT_KEY])
                        if not any(limit in str(c) for c in components if c):
                            continue
                        value = {k: v for k, v in value.items() if k != LIMIT_KEY}
                    hv[key] = copy.deepcopy(value)


def nest_host_group(skel_key: str) -> str:
    """The config group whose hosts an ``is_nest`` entry adopts, derived from its key.

    ``az1_containers`` is fed by ``az1_hosts``; a key of another shape by
    ``<first word>_hosts``, as OSA derives it. Unlike :func:`host_group_for`,
    OSA keeps the dashes of the key here, and config groups have none: a
    dashed ``is_nest`` key adopts nothing.
    """
    return _hosts_of(skel_key) or f"{skel_key.split('_')[0]}_hosts"


def apply_nests(inv: Inventory, skel: Skeleton, host_groups: dict[str, dict[str, dict]]) -> None:
    """``is_nest`` entries adopt the ``<host>_host_containers`` groups of the hosts that feed them."""
    for skel_key in skel.container_order:
        entry = skel.container_skel.get(skel_key) or {}
        if not (entry.get("properties") or {}).get("is_nest"):
            continue
        group = inv.groups[skel_key]  # apply_skeleton made every container_skel group
        for host in host_groups.get(nest_host_group(skel_key), {}):
            nested = f"{host}_host_containers"
            if nested in inv.groups:
                group.add_child(nested)
