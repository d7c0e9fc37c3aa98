"""How an OSA inventory is laid out in NetBox, and back (pure functions, no I/O).

* A host whose ``physical_host`` names another host of the inventory (an LXC
  container, or a component on metal) is a virtualization virtual machine in
  the cluster of that physical host; every other host is a dcim device.
* Each host's variables are in the JSON custom field ``osa_inventory`` of its
  object: ``{"host": exact name, "revision": the write that stored them,
  "value" | "json": the variables (codec.py), "before": the committed
  variables while a write is unfinished}``. The exact name is kept because a
  NetBox name is at most 64 characters and unique case-insensitively.
* Addresses (``container_networks`` and ``ansible_host``) are ipam IP addresses
  on interfaces named by the network (``container_address``...), derived from
  the variables, so NetBox's IPAM and ``nb_inventory`` see them;
  ``primary_ip4``/``primary_ip6`` is ``ansible_host``.
* The groups (hosts, children, vars), ``all``'s vars, everything else outside
  ``_meta.hostvars`` and the order of the hosts are the *skeleton*, kept in the
  state document (store.py) with the list of hosts and the revision of each.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from . import codec

FIELD = "osa_inventory"           # the JSON custom field on devices and virtual machines
MAX_NAME = 64                     # NetBox's limit for device, VM and interface names
MANAGEMENT_INTERFACE = "management"  # the interface of an ansible_host no container network holds


@dataclass
class Address:
    """One address a host holds: the interface (named by the network) and ``address/prefix``."""

    interface: str
    cidr: str

    @property
    def ip(self) -> str:
        return self.cidr.split("/")[0]


@dataclass
class HostSpec:
    """One host as NetBox should hold it."""

    name: str
    kind: str                       # "device" or "vm"
    parent: str | None              # the physical host of a VM
    nb_name: str                    # the object's NetBox name
    stored: dict                    # codec.encode of {"host": name, "vars": variables}
    variables: Any
    addresses: list[Address] = field(default_factory=list)
    primary: dict = field(default_factory=dict)   # "4"/"6" -> the primary address's cidr


def split(inventory: dict) -> tuple[dict, list[tuple[str, Any]]]:
    """The skeleton (the inventory without its hosts' variables) and the hosts, in order."""
    meta = inventory.get("_meta")
    if not isinstance(meta, dict) or not isinstance(meta.get("hostvars"), dict):
        return {"inventory": inventory, "hostvars": False}, []
    hosts = list(meta["hostvars"].items())
    rest = {key: value for key, value in inventory.items() if key != "_meta"}
    rest["_meta"] = {key: value for key, value in meta.items() if key != "hostvars"}
    return {"inventory": rest, "hostvars": True}, hosts


def join(skeleton: dict, hosts: list[tuple[str, Any]]) -> dict:
    """The inventory :func:`split` took apart."""
    inventory = skeleton["inventory"]
    if not skeleton.get("hostvars"):
        return inventory
    meta = dict(inventory.get("_meta") or {})
    meta["hostvars"] = dict(hosts)
    return {**{k: v for k, v in inventory.items() if k != "_meta"}, "_meta": meta}


def kinds(hosts: list[tuple[str, Any]]) -> dict[str, str | None]:
    """Host name -> its physical host when it is a VM, None when it is a device."""
    names = {name for name, _ in hosts}

    def physical(name: str, variables: Any) -> str | None:
        parent = variables.get("physical_host") if isinstance(variables, dict) else None
        return parent if isinstance(parent, str) and parent != name and parent in names else None

    parents = {name: physical(name, variables) for name, variables in hosts}
    # A VM's physical host must itself be a device (OSA never nests): otherwise it is a device too.
    return {name: parent if parent is not None and parents.get(parent) is None else None
            for name, parent in parents.items()}


def nb_names(names: list[str]) -> dict[str, str]:
    """NetBox names for ``names`` of one scope: the name itself when NetBox can hold it as it is
    (1 to 64 characters, unique case-insensitively), else a shortened name with a hash of the
    exact one (the exact name stays in the custom field)."""
    folded: dict[str, int] = {}
    for name in names:
        folded[name.casefold()] = folded.get(name.casefold(), 0) + 1
    out = {}
    for name in names:
        if 0 < len(name) <= MAX_NAME and folded[name.casefold()] == 1 and name.isprintable() \
                and name.strip() == name:
            out[name] = name
        else:
            digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
            stem = "".join(c if c.isprintable() else "?" for c in name)[:MAX_NAME - 12].strip() or "host"
            out[name] = f"{stem}~{digest}"
    return out


def addresses(variables: Any) -> tuple[list[Address], dict]:
    """The addresses a host's variables give it, and its primary address per IP version."""
    found: list[Address] = []
    if not isinstance(variables, dict):
        return found, {}
    seen_ifaces: set[str] = set()
    seen_ips: set[str] = set()
    networks = variables.get("container_networks")
    for key, net in (networks.items() if isinstance(networks, dict) else ()):
        if not isinstance(net, dict):
            continue
        cidr = _cidr(net.get("address"), net.get("netmask"))
        iface = str(key)[:MAX_NAME]
        if cidr and iface and iface.casefold() not in seen_ifaces and cidr.split("/")[0] not in seen_ips:
            seen_ifaces.add(iface.casefold())
            seen_ips.add(cidr.split("/")[0])
            found.append(Address(iface, cidr))
    primary: dict = {}
    host = variables.get("ansible_host")
    host_ip = _ip(host)
    if host_ip is not None:
        match = next((a for a in found if a.ip == str(host_ip)), None)
        if match is None and MANAGEMENT_INTERFACE not in seen_ifaces:
            match = Address(MANAGEMENT_INTERFACE, f"{host_ip}/{host_ip.max_prefixlen}")
            found.append(match)
        if match is not None:
            primary[str(host_ip.version)] = match.cidr
    return found, primary


def _ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _cidr(address: Any, netmask: Any) -> str | None:
    ip = _ip(address)
    if ip is None:
        return None
    if isinstance(netmask, str) and netmask:
        try:
            return str(ipaddress.ip_interface(f"{ip}/{netmask}"))
        except ValueError:
            pass
    return f"{ip}/{ip.max_prefixlen}"


def specs(hosts: list[tuple[str, Any]]) -> dict[str, HostSpec]:
    """Every host as NetBox should hold it; an address two hosts share (a component on metal uses its
    host's) belongs to the first, devices before VMs."""
    parents = kinds(hosts)
    devices = [name for name, _ in hosts if parents[name] is None]
    device_names = nb_names(devices)
    by_cluster: dict[str, list[str]] = {}
    for name, _ in hosts:
        if parents[name] is not None:
            by_cluster.setdefault(parents[name], []).append(name)
    vm_names: dict[str, str] = {}
    for members in by_cluster.values():
        vm_names.update(nb_names(members))
    out: dict[str, HostSpec] = {}
    for name, variables in hosts:
        parent = parents[name]
        out[name] = HostSpec(name=name, kind="vm" if parent else "device", parent=parent,
                             nb_name=vm_names[name] if parent else device_names[name],
                             stored=codec.encode({"host": name, "vars": variables},
                                                 f"the variables of host {name!r}"),
                             variables=variables)
    claimed: set[str] = set()
    for spec in sorted(out.values(), key=lambda s: s.kind != "device"):
        found, primary = addresses(spec.variables)
        spec.addresses = [a for a in found if a.ip not in claimed]
        claimed.update(a.ip for a in spec.addresses)
        kept = {a.cidr for a in spec.addresses}
        spec.primary = {version: cidr for version, cidr in primary.items() if cidr in kept}
    return out


def record(spec: HostSpec, revision: str, before: tuple[str, dict] | None = None) -> dict:
    """The custom field value of ``spec`` written by ``revision`` (with the committed value it replaces)."""
    out = {"host": spec.name, "revision": revision, **spec.stored}
    if before is not None:
        out["before"] = {"revision": before[0], **before[1]}
    return out


def committed_value(stored: Any, revision: str) -> dict | None:
    """The encoded variables a custom field holds for ``revision`` (its own or its ``before``), else None."""
    if not isinstance(stored, dict):
        return None
    if stored.get("revision") == revision:
        return {k: stored[k] for k in ("value", "json") if k in stored}
    before = stored.get("before")
    if isinstance(before, dict) and before.get("revision") == revision:
        return {k: before[k] for k in ("value", "json") if k in before}
    return None
