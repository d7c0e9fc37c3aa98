"""The NetBox objects a deployment's hosts hang on: tag, custom field, site, roles, types.

Each is found by slug (or name) and, with ``create = true``, created when
missing. Two runs creating the same one at once is fine: the loser's 400
("already exists") is answered by finding the winner's.
"""

from __future__ import annotations

from typing import Any

from ...errors import StorageError
from . import mapping
from .client import NetBoxClient, NetBoxError

MANUFACTURER = "osa-inventory"
OBJECT_TYPES = ["dcim.device", "virtualization.virtualmachine"]


def ensure(client: NetBoxClient, path: str, query: dict, body: dict, create: bool, what: str,
           option: str) -> int:
    """The id of the object of ``path`` matching ``query``, created from ``body`` when missing."""
    found = find(client, path, query)
    if found is not None:
        return found
    if not create:
        raise StorageError(f"NetBox at {client.url} has no {what}; create it (docs/netbox.md, Set-up), set "
                           f"{option} to one that exists, or set [netbox] create = true")
    try:
        return client.request("POST", path, body=body, expect=(201,)).data["id"]
    except NetBoxError as exc:
        if exc.status != 400:
            raise
        found = find(client, path, query)  # made by another run meanwhile
        if found is None:
            raise StorageError(f"NetBox at {client.url} refused to create {what}: {exc}") from None
        return found


def find(client: NetBoxClient, path: str, query: dict) -> int | None:
    data = client.get(path, {**query, "brief": 1, "limit": 2})
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise StorageError(f"GET {client.api}/{path}: the answer is not a NetBox list")
    # Unknown filters are ignored by NetBox: check the match here, never trust the filter alone.
    for item in results:
        if all(str(item.get(k)) == str(v) for k, v in query.items()):
            return item["id"]
    return None


def ids(client: NetBoxClient, opts: Any) -> dict[str, int]:
    """The ids of everything a write hangs objects on (created when missing and allowed)."""
    create = opts.create
    out = {
        "tag": ensure(client, "extras/tags/", {"slug": opts.tag},
                      {"name": opts.tag, "slug": opts.tag, "description": "owned by osa-inventory: do not edit"},
                      create, f"tag {opts.tag}", "[netbox] tag"),
        "field": ensure(client, "extras/custom-fields/", {"name": mapping.FIELD},
                        {"name": mapping.FIELD, "type": "json", "object_types": OBJECT_TYPES,
                         "label": "OSA inventory", "ui_editable": "no",
                         "description": "host variables kept by osa-inventory (docs/netbox.md)"},
                        create, f"custom field {mapping.FIELD}", "[netbox] create"),
        "site": ensure(client, "dcim/sites/", {"slug": opts.site}, {"name": opts.site, "slug": opts.site},
                       create, f"site {opts.site}", "[netbox] site"),
        "cluster_type": ensure(client, "virtualization/cluster-types/", {"slug": opts.cluster_type},
                               {"name": opts.cluster_type, "slug": opts.cluster_type}, create,
                               f"cluster type {opts.cluster_type}", "[netbox] cluster_type"),
        "device_role": ensure(client, "dcim/device-roles/", {"slug": opts.device_role},
                              {"name": opts.device_role, "slug": opts.device_role, "vm_role": False}, create,
                              f"device role {opts.device_role}", "[netbox] device_role"),
        "vm_role": ensure(client, "dcim/device-roles/", {"slug": opts.vm_role},
                          {"name": opts.vm_role, "slug": opts.vm_role, "vm_role": True}, create,
                          f"device role {opts.vm_role}", "[netbox] vm_role"),
    }
    if opts.vrf:
        out["vrf"] = ensure(client, "ipam/vrfs/", {"name": opts.vrf},
                            {"name": opts.vrf, "enforce_unique": True, "tags": [{"slug": opts.tag}]}, create,
                            f"VRF {opts.vrf}", "[netbox] vrf")
    maker = ensure(client, "dcim/manufacturers/", {"slug": MANUFACTURER},
                   {"name": MANUFACTURER, "slug": MANUFACTURER}, create, f"manufacturer {MANUFACTURER}",
                   "[netbox] device_type")
    out["device_type"] = ensure(client, "dcim/device-types/", {"slug": opts.device_type},
                                {"manufacturer": maker, "model": opts.device_type, "slug": opts.device_type},
                                create, f"device type {opts.device_type}", "[netbox] device_type")
    return out
