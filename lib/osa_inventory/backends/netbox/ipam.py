"""NetBox as the IPAM of record: the addresses it holds inside the deployment's pools that are not
this deployment's own, so the generator never hands one of them to a container.

Held means: an IP address object (another device's, a VIP someone registered, anything with or
without an assignment) in the deployment's VRF, or an IP range (a reserved range, a DHCP pool). The
deployment's own addresses carry its tag and are left out: the inventory knows them already.
"""

from __future__ import annotations

import ipaddress

from .client import NetBoxClient


def _holder(ip: dict) -> str:
    assigned = ip.get("assigned_object") if isinstance(ip.get("assigned_object"), dict) else None
    what = f"ip-address {ip.get('address')} (#{ip.get('id')}"
    if assigned:
        owner = assigned.get("device") or assigned.get("virtual_machine") or {}
        kind = "device" if assigned.get("device") else "virtual machine"
        what += f", on {kind} {owner.get('name') or '?'} interface {assigned.get('name') or '?'}"
    elif ip.get("role") and isinstance(ip["role"], dict):
        what += f", {ip['role'].get('value')}"
    if ip.get("description"):
        what += f", {str(ip['description'])[:60]}"
    return what + ")"


def _inside(first: str, last: str, nets: list) -> bool:
    """Whether the range first..last overlaps one of ``nets``."""
    try:
        lo, hi = ipaddress.ip_address(first), ipaddress.ip_address(last)
    except ValueError:
        return False
    return any(lo.version == n.version and lo <= n.broadcast_address and hi >= n.network_address for n in nets)


def held(client: NetBoxClient, networks: list[str], tag: str, vrf: int | None) -> list[dict]:
    """``{"address": "a.b.c.d" or "first,last", "held_by": "..."}`` for what NetBox holds in ``networks``."""
    out: list[dict] = []
    scope = {"vrf_id": vrf if vrf is not None else "null"}
    parents = []
    for network in networks:
        try:
            parents.append(str(ipaddress.ip_network(network, strict=False)))
        except ValueError:
            continue  # the config check names a bad network; nothing is held in it
    if not parents:
        return out
    nets = [ipaddress.ip_network(p) for p in parents]
    # One request each for addresses and ranges: parent takes many values.
    for ip in client.list_all("ipam/ip-addresses/", {"parent": parents, **scope}):
        if any(isinstance(t, dict) and t.get("slug") == tag for t in ip.get("tags") or []):
            continue
        address = str(ip.get("address") or "").split("/")[0]
        if _inside(address, address, nets):  # unknown filters are ignored by NetBox: check here too
            out.append({"address": address, "held_by": _holder(ip)})
    for rng in client.list_all("ipam/ip-ranges/", {"parent": parents, **scope}):
        first = str(rng.get("start_address") or "").split("/")[0]
        last = str(rng.get("end_address") or "").split("/")[0]
        if first and last and _inside(first, last, nets):
            note = f", {str(rng['description'])[:60]}" if rng.get("description") else ""
            out.append({"address": f"{first},{last}", "held_by": f"ip-range {first}-{last} (#{rng.get('id')}{note})"})
    return out


def conflict(client: NetBoxClient, cidr: str, vrf: int | None) -> str:
    """What holds ``cidr``'s address in NetBox (for a refused create), or '' when nothing is found."""
    address = cidr.split("/")[0]
    data = client.get("ipam/ip-addresses/", {"address": address, "vrf_id": vrf if vrf is not None else "null",
                                             "limit": 5})
    for ip in (data or {}).get("results") or []:
        if str(ip.get("address") or "").split("/")[0] == address:
            return _holder(ip)
    return ""

