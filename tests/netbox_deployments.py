"""Deployments of the NetBox plugin for tests: options of a deployment of its own, and its removal.

Every deployment a test makes has its own prefix (``unique_prefix``) as site, tag, VRF, cluster
type, roles and device type, so suites of several Python versions share one NetBox without
meeting (addresses live in the deployment's VRF: NetBox refuses a duplicate only inside one VRF).
:func:`purge` deletes all of it, whatever state a test left it in.
"""

from __future__ import annotations

import time
from typing import Any

from netbox_server import NetBox, NetBoxClient, unique_prefix


def deployment_options(netbox: NetBox, config_dir: str, prefix: str | None = None, **extra: str) -> dict:
    """register() arguments of a deployment of its own."""
    prefix = prefix or unique_prefix("nbp")
    return {"url": netbox.url, "token": netbox.write_token, "site": prefix, "tag": prefix, "vrf": prefix,
            "cluster_type": prefix, "device_role": f"{prefix}-h", "vm_role": f"{prefix}-c",
            "device_type": prefix, "config_dir": config_dir, **extra}


def _ids(client: NetBoxClient, path: str, params: dict) -> list[int]:
    out: list[int] = []
    url: Any = path
    query: Any = {**params, "limit": 1000, "brief": 1}
    while url:
        resp = client.get(url, params=query)
        if resp.status_code == 400 and "tag" in params:
            return out  # the tag does not exist (any more): nothing carries it
        assert resp.status_code == 200, f"GET {path}: {resp.status_code} {resp.text[:300]}"
        page = resp.json()
        out.extend(item["id"] for item in page["results"])
        url, query = page.get("next"), None
    return out


def _delete(client: NetBoxClient, path: str, ids: list[int], left: list[str]) -> None:
    for start in range(0, len(ids), 500):
        for attempt in range(5):  # two suites deleting at once can deadlock NetBox's database: try again
            resp = client.delete(path, json=[{"id": i} for i in ids[start:start + 500]], timeout=600)
            if not (resp.status_code == 500 and "deadlock detected" in resp.text):
                break
            time.sleep(0.5 * (attempt + 1))
        if resp.status_code not in (204, 404):
            left.append(f"{path}: {resp.status_code} {resp.text[:200]}")


def purge(client: NetBoxClient, prefix: str) -> list[str]:
    """Delete every object of the deployment ``prefix`` (see :func:`deployment_options`); what could not be."""
    left: list[str] = []
    for path in ("extras/config-contexts/", "virtualization/virtual-machines/", "dcim/devices/",
                 "ipam/ip-addresses/", "virtualization/clusters/", "ipam/vrfs/"):
        _delete(client, path, _ids(client, path, {"tag": prefix}), left)
    for path, slugs in (("dcim/sites/", [prefix]), ("virtualization/cluster-types/", [prefix]),
                        ("dcim/device-roles/", [f"{prefix}-h", f"{prefix}-c"]), ("dcim/device-types/", [prefix]),
                        ("extras/tags/", [prefix])):
        for slug in slugs:
            _delete(client, path, _ids(client, path, {"slug": slug}), left)
    return left
