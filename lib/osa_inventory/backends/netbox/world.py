"""What NetBox holds for one deployment: the objects carrying its tag, listed and indexed.

A handful of list requests (pages of 1000, only the fields the plugin reads)
give every device, virtual machine, cluster, interface and IP address that
carries the deployment's tag. The host records in the custom field are
decoded here, so the store and the planner work with plain values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...errors import StorageError
from . import codec, mapping
from .client import NetBoxClient

VM_IFACE = "virtualization.vminterface"
DEV_IFACE = "dcim.interface"


def ref(value: Any) -> int | None:
    """The id of a related object, given as an id or as a nested object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class Host:
    """A device or virtual machine of ours, with its decoded host record."""

    kind: str                 # "device" or "vm"
    id: int
    name: str                 # NetBox name
    cluster: int | None
    device: int | None        # a VM's device
    primary: dict             # "4"/"6" -> ip id
    record: dict | None       # the custom field as stored
    host: str | None          # the exact host name the record is for
    tags: list = field(default_factory=list)

    def value_for(self, revision: str) -> dict | None:
        """The encoded ``{"host", "vars"}`` this object holds for ``revision``, else None."""
        return mapping.committed_value(self.record, revision)


@dataclass
class World:
    hosts: list[Host]
    clusters: dict[str, int]                       # name -> id
    interfaces: dict[tuple[str, int], dict]        # (kind, object id) -> {name: interface id}
    ips: dict[tuple[str, int], list[tuple[int, str]]]  # (iface type, iface id) -> [(ip id, address)]


def decode_host(record: Any, where: str) -> str | None:
    """The exact host name a host record is for (None when the field holds no record of ours)."""
    if not isinstance(record, dict):
        return None
    body = {k: record[k] for k in ("value", "json") if k in record}
    value = codec.decode(body, where)
    if not isinstance(value, dict) or not isinstance(value.get("host"), str):
        raise StorageError(f"{where}: holds no host name; someone edited it in NetBox: restore it from "
                           "NetBox's changelog, or write the inventory again")
    return value["host"]


def read(client: NetBoxClient, tag: str, hosts_only: bool = False) -> World:
    """Every object of the deployment tagged ``tag`` (only its devices and VMs with ``hosts_only``)."""
    hosts: list[Host] = []
    common = "id,name,cluster,custom_fields,primary_ip4,primary_ip6,tags"
    for kind, path, fields in (("device", "dcim/devices/", common),
                               ("vm", "virtualization/virtual-machines/", f"{common},device")):
        for obj in client.list_all(path, {"tag": tag, "fields": fields}):
            record = (obj.get("custom_fields") or {}).get(mapping.FIELD)
            where = f"custom field {mapping.FIELD} of {path}{obj.get('id')}/ ({obj.get('name')})"
            hosts.append(Host(kind=kind, id=obj["id"], name=str(obj.get("name") or ""), cluster=ref(obj.get("cluster")),
                              device=ref(obj.get("device")), record=record if isinstance(record, dict) else None,
                              primary={v: ref(obj.get(f"primary_ip{v}")) for v in ("4", "6")},
                              host=decode_host(record, where),
                              tags=[t.get("slug") for t in obj.get("tags") or [] if isinstance(t, dict)]))
    if hosts_only:
        return World(hosts, {}, {}, {})
    clusters = {str(c.get("name")): c["id"] for c in client.list_all("virtualization/clusters/",
                                                                      {"tag": tag, "fields": "id,name"})}
    interfaces: dict[tuple[str, int], dict] = {}
    for kind, path, owner in (("device", "dcim/interfaces/", "device"),
                              ("vm", "virtualization/interfaces/", "virtual_machine")):
        for iface in client.list_all(path, {"tag": tag, "fields": f"id,name,{owner}"}):
            parent = ref(iface.get(owner))
            if parent is not None:
                interfaces.setdefault((kind, parent), {})[str(iface.get("name"))] = iface["id"]
    ips: dict[tuple[str, int], list] = {}
    for ip in client.list_all("ipam/ip-addresses/",
                              {"tag": tag, "fields": "id,address,assigned_object_type,assigned_object_id"}):
        key = (str(ip.get("assigned_object_type")), ref(ip.get("assigned_object_id")))
        ips.setdefault(key, []).append((ip["id"], str(ip.get("address"))))
    return World(hosts, clusters, interfaces, ips)


def committed(world_hosts: list[Host], listed: list[tuple[str, str]]) -> tuple[list[tuple[str, Any]], list[str]]:
    """The committed hosts ``(name, variables)`` in order, from the objects and the state's
    ``[name, revision]`` list; and the names no object holds (a write changed them since)."""
    index: dict[tuple[str, str], dict] = {}
    for host in world_hosts:
        record = host.record or {}
        for revision in (record.get("revision"), (record.get("before") or {}).get("revision")):
            if isinstance(revision, str) and host.host is not None:
                value = host.value_for(revision)
                if value is not None:
                    index[(host.host, revision)] = value
    out, missing = [], []
    for name, revision in listed:
        value = index.get((name, revision))
        if value is None:
            missing.append(name)
            continue
        decoded = codec.decode(value, f"the variables of host {name!r} in NetBox")
        out.append((name, decoded.get("vars") if isinstance(decoded, dict) else None))
    return out, missing
