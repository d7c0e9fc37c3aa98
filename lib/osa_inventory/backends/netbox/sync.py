"""Bringing NetBox's objects to an inventory: what to change (planned before any write) and the
requests that change it, with NetBox's bulk endpoints (one transaction per request).

Host records follow the store's protocol (store.py): a host whose variables
change gets this write's revision and keeps the committed variables as
``before``, so a reader of the committed state finds them whatever point an
unfinished write reached. Objects no host of the new inventory uses are only
removed after the commit (:meth:`Sync.clean_up`); addresses are a projection of
the variables and are brought in line before it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ...errors import StorageError
from . import ipam, mapping
from .client import NetBoxClient, NetBoxError, server_message
from .world import DEV_IFACE, VM_IFACE, Host, World

PATHS = {"device": "dcim/devices/", "vm": "virtualization/virtual-machines/"}
IFACE_PATHS = {"device": "dcim/interfaces/", "vm": "virtualization/interfaces/"}
IFACE_TYPES = {"device": DEV_IFACE, "vm": VM_IFACE}
ADOPTED = "adopted"   # in a host record: the device existed before this plugin used it


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=True, allow_nan=False)


@dataclass
class Plan:
    """The host-level changes of one write, decided before the first request."""

    clusters: list[str] = field(default_factory=list)          # to create
    creates: dict[str, list] = field(default_factory=lambda: {"device": [], "vm": []})   # specs
    patches: dict[str, list] = field(default_factory=lambda: {"device": [], "vm": []})   # (spec, host, body)
    records: dict[str, dict] = field(default_factory=dict)     # name -> record to write
    revisions: dict[str, str] = field(default_factory=dict)    # name -> revision in the new state
    chosen: dict[str, Host] = field(default_factory=dict)      # name -> the existing object it keeps
    adopt: dict[str, dict] = field(default_factory=dict)       # name -> a device of the site to adopt
    garbage: list[Host] = field(default_factory=list)          # objects of ours no host uses any more


class Sync:
    """One write's object changes; ``message`` goes into NetBox's changelog with every change."""

    def __init__(self, client: NetBoxClient, ids: dict, tag: str, message: str, world: World):
        self.client = client
        self.ids = ids
        self.tag = tag
        self.message = message
        self.world = world

    # -- planning ------------------------------------------------------------------

    def plan(self, want: dict[str, mapping.HostSpec], committed: dict[str, str], revision: str) -> Plan:
        plan = Plan()
        by_host: dict[tuple[str, str], list[Host]] = {}
        for host in self.world.hosts:
            if host.host is not None:
                by_host.setdefault((host.kind, host.host), []).append(host)
        held: dict[tuple[str, str], dict] = {}   # (host, revision) -> the encoded value an object holds
        for host in self.world.hosts:
            record = host.record or {}
            for rev in (record.get("revision"), (record.get("before") or {}).get("revision")):
                value = host.value_for(rev) if isinstance(rev, str) and host.host is not None else None
                if value is not None:
                    held.setdefault((host.host, rev), value)
        used: set[int] = set()
        for name, spec in want.items():
            candidates = by_host.get((spec.kind, name), [])
            rev = committed.get(name)
            keep = next((h for h in candidates if rev and h.value_for(rev) is not None), None) \
                or (candidates[0] if candidates else None)
            old = held.get((name, rev)) if rev is not None else None
            have = (keep.record or {}) if keep is not None else {}
            current = mapping.committed_value(have, have.get("revision"))
            if keep is not None and rev is not None and have.get("revision") == rev \
                    and canonical(current) == canonical(spec.stored):
                record, plan.revisions[name] = None, rev          # unchanged
            elif old is not None and canonical(old) == canonical(spec.stored):
                record, plan.revisions[name] = mapping.record(spec, rev), rev   # an unfinished write undone
            else:
                record = mapping.record(spec, revision, (rev, old) if old is not None else None)
                plan.revisions[name] = revision
            if have.get(ADOPTED) and record is not None:
                record[ADOPTED] = True
            if keep is None:
                plan.records[name] = record
                plan.creates[spec.kind].append(spec)
                continue
            used.add(keep.id if keep.kind == "device" else -keep.id)
            plan.chosen[name] = keep
            body = {"name": spec.nb_name} if keep.name != spec.nb_name else {}
            if record is not None:
                plan.records[name] = record
                body["custom_fields"] = {mapping.FIELD: record}
            if body:
                plan.patches[spec.kind].append((spec, keep, body))
        plan.garbage = [h for h in self.world.hosts if (h.id if h.kind == "device" else -h.id) not in used]
        hosting = {spec.parent for spec in want.values() if spec.parent}
        plan.clusters = sorted({want[p].nb_name for p in hosting} - set(self.world.clusters))
        if plan.creates["device"]:
            self._adoptions(plan)
        return plan

    def _adoptions(self, plan: Plan) -> None:
        """Devices of the site that have a new host's name: used, not duplicated."""
        wanted = {spec.nb_name.casefold(): spec for spec in plan.creates["device"]}
        for device in self.client.list_all("dcim/devices/", {"site_id": self.ids["site"], "fields": "id,name,tags"}):
            spec = wanted.get(str(device.get("name") or "").casefold())
            if spec is not None:
                plan.adopt[spec.name] = device
        if plan.adopt:
            plan.creates["device"] = [s for s in plan.creates["device"] if s.name not in plan.adopt]

    def projection_needed(self, want: dict, plan: Plan) -> bool:
        """Whether interfaces, addresses or primary addresses of existing objects differ from ``want``."""
        ops = self._projection(want, {name: (h.kind, h.id) for name, h in plan.chosen.items()}, plan)
        return any(ops[k] for k in ("ip_delete", "iface_delete", "iface_create", "ip_create", "primary"))

    # -- applying ---------------------------------------------------------------------

    def apply(self, want: dict[str, mapping.HostSpec], plan: Plan) -> None:
        """Every change of ``plan`` and the address projection, in an order NetBox accepts."""
        clusters = dict(self.world.clusters)
        if plan.clusters:
            made = self.client.bulk("POST", "virtualization/clusters/", [
                {"name": name, "type": self.ids["cluster_type"], "scope_type": "dcim.site",
                 "scope_id": self.ids["site"], "tags": [{"slug": self.tag}]} for name in plan.clusters],
                self.message, (201,))
            clusters.update({c["name"]: c["id"] for c in made})
        hosting = {spec.parent for spec in want.values() if spec.parent}
        ids_by_name: dict[str, tuple[str, int]] = {name: (h.kind, h.id) for name, h in plan.chosen.items()}
        device_ids: dict[str, int] = {name: h.id for name, h in plan.chosen.items() if h.kind == "device"}
        tag = [{"slug": self.tag}]

        def cluster_of(spec: mapping.HostSpec) -> int | None:
            owner = spec.name if spec.kind == "device" else spec.parent
            return clusters.get(want[owner].nb_name) if owner in hosting else None

        # Devices: creates, adoptions, then changes (cluster follows whether the host has containers).
        creates = [{"name": s.nb_name, "site": self.ids["site"], "role": self.ids["device_role"],
                    "device_type": self.ids["device_type"], "cluster": cluster_of(s), "tags": tag,
                    "custom_fields": {mapping.FIELD: plan.records[s.name]}} for s in plan.creates["device"]]
        for spec, made in zip(plan.creates["device"], self._create("dcim/devices/", creates)):
            device_ids[spec.name] = made["id"]
            ids_by_name[spec.name] = ("device", made["id"])
        patches: dict[int, dict] = {}   # object id -> the fields to change
        for name, device in plan.adopt.items():
            record = dict(plan.records[name], **{ADOPTED: True})
            tags = [{"slug": t.get("slug")} for t in device.get("tags") or [] if isinstance(t, dict)]
            patches[device["id"]] = {"id": device["id"], "name": want[name].nb_name,
                                     "cluster": cluster_of(want[name]),
                                     "tags": tags + ([] if any(t["slug"] == self.tag for t in tags) else tag),
                                     "custom_fields": {mapping.FIELD: record}}
            device_ids[name] = device["id"]
            ids_by_name[name] = ("device", device["id"])
        patches.update({host.id: {"id": host.id, **body} for _, host, body in plan.patches["device"]})
        ours = set(self.world.clusters.values())
        for name, host in plan.chosen.items():
            spec = want[name]
            if spec.kind == "device" and host.cluster != cluster_of(spec) \
                    and (host.cluster in ours or cluster_of(spec) is not None):
                patches.setdefault(host.id, {"id": host.id})["cluster"] = cluster_of(spec)
        self._patch("dcim/devices/", list(patches.values()))
        # Virtual machines.
        creates = [{"name": s.nb_name, "cluster": cluster_of(s), "device": device_ids.get(s.parent),
                    "role": self.ids["vm_role"], "tags": tag,
                    "custom_fields": {mapping.FIELD: plan.records[s.name]}} for s in plan.creates["vm"]]
        for spec, made in zip(plan.creates["vm"], self._create("virtualization/virtual-machines/", creates)):
            ids_by_name[spec.name] = ("vm", made["id"])
        patches = {host.id: {"id": host.id, **body} for _, host, body in plan.patches["vm"]}
        for name, host in plan.chosen.items():
            spec = want[name]
            if spec.kind == "vm" and (host.cluster != cluster_of(spec) or host.device != device_ids.get(spec.parent)):
                patches.setdefault(host.id, {"id": host.id}).update(
                    {"cluster": cluster_of(spec), "device": device_ids.get(spec.parent)})
        self._patch("virtualization/virtual-machines/", list(patches.values()))
        self._apply_projection(want, ids_by_name, plan)

    def _apply_projection(self, want: dict, ids_by_name: dict, plan: Plan) -> None:
        ops = self._projection(want, ids_by_name, plan)
        if ops["ip_delete"]:
            self.client.bulk("DELETE", "ipam/ip-addresses/", [{"id": i} for i in ops["ip_delete"]], self.message,
                             (204,))
        for kind in ("device", "vm"):
            doomed = [i for k, i in ops["iface_delete"] if k == kind]
            if doomed:
                self.client.bulk("DELETE", IFACE_PATHS[kind], [{"id": i} for i in doomed], self.message, (204,))
        iface_ids: dict[tuple[str, int, str], int] = {}
        for (kind, obj), names in self.world.interfaces.items():
            for name, iface in names.items():
                iface_ids[(kind, obj, name)] = iface
        for kind, owner in (("device", "device"), ("vm", "virtual_machine")):
            todo = [(k, o, n) for k, o, n in ops["iface_create"] if k == kind]
            bodies = [{owner: o, "name": n, "tags": [{"slug": self.tag}], **({"type": "virtual"} if kind == "device"
                                                                             else {})} for _, o, n in todo]
            for key, made in zip(todo, self._create(IFACE_PATHS[kind], bodies)):
                iface_ids[key] = made["id"]
        ip_ids: dict[tuple[str, int, str], int] = dict(ops["ip_kept"])
        todo = ops["ip_create"]
        bodies = [{"address": cidr, "assigned_object_type": IFACE_TYPES[kind],
                   "assigned_object_id": iface_ids[(kind, obj, iface)], "status": "active",
                   "vrf": self.ids.get("vrf"), "description": host[:200], "tags": [{"slug": self.tag}]}
                  for kind, obj, iface, cidr, host in todo]
        for (kind, obj, _, cidr, _), made in zip(todo, self._create("ipam/ip-addresses/", bodies)):
            ip_ids[(kind, obj, cidr)] = made["id"]
        patches: dict[str, list] = {"device": [], "vm": []}
        for (kind, obj), (current, wanted) in ops["primary_all"].items():
            body = {}
            for version in ("4", "6"):
                target = ip_ids.get((kind, obj, wanted[version])) if wanted.get(version) else None
                if current.get(version) != target:
                    body[f"primary_ip{version}"] = target
            if body:
                patches[kind].append({"id": obj, **body})
        for kind in ("device", "vm"):
            self._patch(PATHS[kind], patches[kind])

    def _projection(self, want: dict, ids_by_name: dict, plan: Plan) -> dict:
        """Interface and address changes for the objects in ``ids_by_name`` (name -> (kind, id))."""
        ops: dict[str, Any] = {"ip_delete": [], "iface_delete": [], "iface_create": [], "ip_create": [],
                               "ip_kept": {}, "primary": [], "primary_all": {}}
        current_primary = {(h.kind, h.id): h.primary for h in self.world.hosts}
        claimed: set[tuple[str, int]] = set()
        for name, (kind, obj) in ids_by_name.items():
            spec = want[name]
            claimed.add((kind, obj))
            have = self.world.interfaces.get((kind, obj), {})
            wanted = {a.interface: a.cidr for a in spec.addresses}
            for iface, iface_id in have.items():
                if iface not in wanted:
                    ops["iface_delete"].append((kind, iface_id))
                    ops["ip_delete"].extend(i for i, _ in self.world.ips.get((IFACE_TYPES[kind], iface_id), []))
                    continue
                for ip_id, address in self.world.ips.get((IFACE_TYPES[kind], iface_id), []):
                    if address == wanted[iface] and (kind, obj, address) not in ops["ip_kept"]:
                        ops["ip_kept"][(kind, obj, address)] = ip_id
                    else:
                        ops["ip_delete"].append(ip_id)
            for iface, cidr in wanted.items():
                if iface not in have:
                    ops["iface_create"].append((kind, obj, iface))
                if (kind, obj, cidr) not in ops["ip_kept"]:
                    ops["ip_create"].append((kind, obj, iface, cidr, name))
            primary = current_primary.get((kind, obj), {})
            ops["primary_all"][(kind, obj)] = (primary, spec.primary)
            kept = {version: ops["ip_kept"].get((kind, obj, cidr)) for version, cidr in spec.primary.items()}
            if any(primary.get(v) != kept.get(v) for v in ("4", "6")):
                ops["primary"].append((kind, obj))
        for (_, owner), found in self.world.ips.items():
            if owner is None:  # left unassigned (by hand, or by an interface deleted elsewhere)
                ops["ip_delete"].extend(i for i, _ in found)
        # Addresses of objects that go away are freed now, before any host takes them over.
        for host in plan.garbage:
            for iface_id in self.world.interfaces.get((host.kind, host.id), {}).values():
                ops["ip_delete"].extend(i for i, _ in self.world.ips.get((IFACE_TYPES[host.kind], iface_id), []))
        return ops

    # -- after the commit ----------------------------------------------------------------

    def clean_up(self, plan: Plan, want: dict) -> None:
        """Remove what no host of the committed inventory uses: objects, then clusters."""
        vms = [h for h in plan.garbage if h.kind == "vm"]
        if vms:
            self.client.bulk("DELETE", PATHS["vm"], [{"id": h.id} for h in vms], self.message, (204,))
        devices = [h for h in plan.garbage if h.kind == "device"]
        owned = [h for h in devices if not (h.record or {}).get(ADOPTED)]
        if owned:
            self.client.bulk("DELETE", PATHS["device"], [{"id": h.id} for h in owned], self.message, (204,))
        released = [h for h in devices if (h.record or {}).get(ADOPTED)]
        if released:
            for host in released:
                doomed = list(self.world.interfaces.get(("device", host.id), {}).values())
                if doomed:
                    self.client.bulk("DELETE", IFACE_PATHS["device"], [{"id": i} for i in doomed], self.message,
                                     (204,))
            self._patch(PATHS["device"], [
                {"id": h.id, "cluster": None, "custom_fields": {mapping.FIELD: None},
                 "tags": [{"slug": t} for t in h.tags if t != self.tag]} for h in released])
        hosting = {want[s.parent].nb_name for s in want.values() if s.parent}
        unused = [cid for name, cid in self.world.clusters.items() if name not in hosting]
        if unused:
            self.client.bulk("DELETE", "virtualization/clusters/", [{"id": i} for i in unused], self.message, (204,))

    # -- requests ---------------------------------------------------------------------

    def _create(self, path: str, bodies: list) -> list:
        if not bodies:
            return []
        try:
            made = self.client.bulk("POST", path, bodies, self.message, (201,))
        except NetBoxError as exc:
            raise StorageError(self._refusal("create", path, bodies, exc)) from None
        if len(made) != len(bodies):
            raise StorageError(f"POST {self.client.api}/{path} made {len(made)} of {len(bodies)} objects; "
                               "check NetBox's logs")
        return made

    def _patch(self, path: str, bodies: list) -> None:
        if bodies:
            try:
                self.client.bulk("PATCH", path, bodies, self.message, (200,))
            except NetBoxError as exc:
                raise StorageError(self._refusal("update", path, bodies, exc)) from None

    def _refusal(self, verb: str, path: str, bodies: list, exc: NetBoxError) -> str:
        """One line naming the object NetBox refused, from a bulk error's index."""
        errors = (exc.body or {}).get("errors") if isinstance(exc.body, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            index = errors[0].get("index")
            body = bodies[index] if isinstance(index, int) and 0 <= index < len(bodies) else {}
            what = body.get("name") or body.get("address") or body.get("id") or "?"
            text = server_message(errors[0].get("errors"))
            if body.get("address") and "Duplicate IP address" in text:
                holder = ipam.conflict(self.client, body["address"], self.ids.get("vrf")) or "another object"
                return (f"NetBox at {self.client.url}: address {body['address'].split('/')[0]} of host "
                        f"{body.get('description') or '?'} is already held by {holder}; nothing was committed: "
                        "release it in NetBox, or give the host another address (docs/netbox.md, IPAM)")
            return (f"NetBox at {self.client.url} refused to {verb} {path.rstrip('/')} {what}: "
                    f"{server_message(errors[0].get('errors'))}; nothing was committed")
        return f"{exc}; nothing was committed"
