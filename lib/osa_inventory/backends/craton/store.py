"""The Craton backend's engine: the full load and the write protocol over one region.

Reading: an unchanged revision comes from the local cache (one request);
otherwise every host is listed and the marks re-read after, so a write that
starts meanwhile cannot give a mixed view, and unfinished writes are undone
in what is returned (their undo records). A load that finds only dead
writers' marks rolls their writes back by storing the committed inventory
again.

Writing: announce (a mark with its undo record), look (re-read the marks),
change the hosts phase by phase, then commit the state record and the change
record in one request; ``docs/craton.md`` describes the protocol and what an
interruption leaves.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import socket
import time
import uuid
from typing import Any

from ...accounting import ChangeRecord
from ...errors import StorageError
from ...storage import read_only, watchdog
from .. import change_records as records
from .. import marked_writes
from . import mapping, writers
from .cache import Cache
from .client import CratonClient, CratonError
from .options import Options
from .region import STATE_FORMAT, Region, View, view_of

LOG = logging.getLogger("osa_inventory.craton")

DEFAULT_LEASE = 600.0       # seconds a mark from another machine counts as alive, without a run deadline
FULL_LOAD_ATTEMPTS = 3
_UNSET = object()


class WriteConflict(StorageError):
    """Another writer got in the way; nothing of this write was committed."""


class CratonStore:
    """The inventory kept in the region of ``opts``, through ``client``, with the local ``cache``."""

    def __init__(self, opts: Options, client: CratonClient, cache: Cache):
        self.opts = opts
        self._client = client
        self._cache = cache
        self.region = Region(opts, client)
        self._base: Any = _UNSET                   # the committed revision this instance last saw
        self._loaded_hosts: set | None = None      # the hosts of that revision

    def describe(self) -> str:
        return self.opts.where

    def load(self) -> dict | None:
        """The committed inventory, or None when none is stored; rolls back dead writers' unfinished writes."""
        cached = self._cache.read()
        ids, region_vars = self.region.find(False, cached)
        if ids is None:
            self._remember(None, set())
            return None
        view = self._view(region_vars)
        if view.state is None:  # nothing committed yet (perhaps an interrupted first write)
            self._remember(None, set())
            return None
        if not view.marks and self._cache_fits(cached, ids, view.revision):
            inventory = cached["inventory"]
        else:
            inventory = self._full_load(ids, region_vars, view)
        self._remember(view.revision, _host_names(inventory))
        if view.marks and not any(marked_writes.alive(m) for m in view.marks.values()) and not read_only.active():
            self._roll_back(inventory, list(view.marks.values()))
        return inventory

    def store(self, inventory: dict, record: ChangeRecord) -> None:
        """Store ``inventory`` with its change ``record``: refused, writing nothing, over a newer or busy revision."""
        desired = mapping.host_specs(inventory)
        new_entries = mapping.region_entries(inventory)
        shape = mapping.shape_of(inventory)
        cached = self._cache.read()
        ids, region_vars = self.region.find(self.opts.create, cached)
        if ids is None:
            raise StorageError(self._missing_message())
        view = self._view(region_vars)
        if self._base is not _UNSET and view.revision != self._base:
            raise WriteConflict(self._newer_message(view))
        live = [m for m in view.marks.values() if marked_writes.alive(m)]
        if live:
            raise WriteConflict(self._busy_message(live[0]))
        unfinished = writers.merged(view.marks.values())
        old_entries = mapping.our_entries(region_vars)
        if view.state is None and not view.marks:
            self._refuse_foreign_hosts(ids)
            current, from_cache = {}, False
        else:
            current, from_cache = self._current_hosts(ids, view, old_entries, desired, cached, unfinished)
        plan = mapping.plan(current, desired, old_entries, new_entries)
        self._guard_deletes(plan, unfinished)
        clean = view.state is not None and not view.marks and mapping.same(view.state.get("shape"), shape)
        if plan.empty and clean:
            if not from_cache:
                self._save_cache(ids, view.revision, current, inventory)
            self._remember(view.revision, set(desired))
            return
        revision = self._apply(ids, view, plan, current, desired, shape, inventory, unfinished, old_entries,
                               record)
        self._remember(revision, set(desired))

    def history(self) -> list[dict]:
        """The change records kept in the region, oldest first (Craton keeps no earlier inventories).

        ``version`` is the commit's sequence number; see :func:`records.history`.
        """
        ids, region_vars = self.region.find(False, self._cache.read())
        if ids is None:
            return []
        view = self._view(region_vars)
        return records.history(view.records, view.state, self.opts.change_records)

    def _view(self, region_vars: dict) -> View:
        """What ``region_vars`` say about writes (see :func:`.region.view_of`)."""
        return view_of(region_vars, self.describe())

    # -- reading ------------------------------------------------------------

    def _remember(self, revision: Any, hosts: set) -> None:
        self._base, self._loaded_hosts = revision, hosts

    def _cache_fits(self, cached: dict | None, ids: tuple, revision: Any) -> bool:
        return bool(cached) and revision is not None and cached.get("revision") == revision \
            and cached.get("region_id") == ids[1] and cached.get("cloud_id") == ids[0]

    def _list_hosts(self, region_id: Any) -> list[dict]:
        hosts = list(self._client.list_all(
            "/hosts", "hosts", {"region_id": region_id, "details": "true", "resolved-values": "false"}))
        for host in hosts:
            if not isinstance(host.get("variables"), dict) or not isinstance(host.get("name"), str):
                raise StorageError(f"GET {self.opts.url}/v1/hosts?details=true returned a host without name "
                                   "or variables; check that url points at the Craton API")
        return hosts

    def _full_load(self, ids: tuple, region_vars: dict, view: View) -> dict:
        """Read every host; re-read the marks after, so a write that starts meanwhile cannot give a mixed view.

        While writes are unfinished, their undo records turn what Craton holds
        back into the last committed inventory.
        """
        for _ in range(FULL_LOAD_ATTEMPTS):
            hosts = self._list_hosts(ids[1])
            again_vars = self.region.variables(ids[1])
            again = self._view(again_vars)
            if again.same_as(view):
                undo = writers.merged(view.marks.values())
                listed = ((h["name"], h["variables"]) for h in hosts)
                entries = {**region_vars, **undo["region"]}
                inventory = mapping.assemble(entries, view.state.get("shape") or {},
                                             writers.committed_hosts(listed, undo))
                # With writes unfinished, the listing is not the committed hosts: keep no mirror of them.
                current = {} if view.marks else self._from_listing(hosts)
                self._save_cache(ids, view.revision, current, inventory)
                return inventory
            region_vars, view = again_vars, again
            if view.state is None:
                raise StorageError(f"{self.describe()}: the inventory vanished while it was read; run again")
        raise StorageError(f"{self.describe()}: the inventory kept changing while it was read "
                           f"({FULL_LOAD_ATTEMPTS} attempts); another run is writing it; try again")

    def _from_listing(self, hosts: list[dict]) -> dict:
        by_id = {h["id"]: h["name"] for h in hosts}
        current = {}
        for h in hosts:
            parent_id = h.get("parent_id")
            parent = None if parent_id is None else by_id.get(parent_id, f"#{parent_id}")
            current[h["name"]] = mapping.CurrentHost(id=h["id"], variables=h["variables"],
                                                     device_type=h.get("device_type") or "",
                                                     parent=parent, ip_address=h.get("ip_address") or "")
        return current

    def _current_hosts(self, ids: tuple, view: View, old_entries: dict, desired: dict,
                       cached: dict | None, unfinished: dict) -> tuple[dict, bool]:
        """What Craton holds now: from the cache when its revision matches, else from a full listing."""
        top, _ = mapping.split_entries(old_entries)
        if not view.marks and self._cache_fits(cached, ids, view.revision):
            hostvars = (cached["inventory"].get("_meta") or {}).get("hostvars") or {}
            mirror = cached["hosts"]
            if mirror and set(mirror) == set(hostvars):
                recorded = mapping.memberships(top, mirror)
                return {name: mapping.CurrentHost(id=m[0], parent=m[1], device_type=m[2], ip_address=m[3],
                                                  variables=mapping.encode_hostvars(hostvars[name]),
                                                  labels=recorded[name])
                        for name, m in mirror.items()}, True
        current = self._from_listing(self._list_hosts(ids[1]))
        recorded = mapping.memberships(top, current)
        for name, host in current.items():
            entry = unfinished["hosts"].get(name) or {}
            # A host an unfinished write created got its labels in the same request.
            host.labels = set(entry["created"]) if "created" in entry else recorded[name]
        if view.marks:
            # Labels of these hosts may be anywhere between the old and the interrupted new state.
            label_hosts = {n for m in view.marks.values() for n in m.get("label_hosts") or []}
            candidates = mapping.label_names(top) | {label for spec in desired.values() for label in spec.labels} \
                | {label for m in view.marks.values() for label in m.get("labels") or []}
            self._read_labels(ids[1], label_hosts & set(current), candidates, current)
        return current, False

    def _read_labels(self, region_id: Any, uncertain: set, candidates: set, current: dict) -> None:
        """Actual labels (limited to ones we manage) of ``uncertain`` hosts, by the cheaper way."""
        if not uncertain:
            return
        for name in uncertain:
            current[name].labels = set()
        if len(uncertain) <= len(candidates):
            for name in sorted(uncertain):
                data = self._client.get(f"/hosts/{current[name].id}/labels")
                current[name].labels = set(data.get("labels") or []) & candidates
            return
        for label in sorted(candidates):
            for host in self._client.list_all("/hosts", "hosts", {"region_id": region_id, "label": label}):
                if host.get("name") in uncertain:
                    current[host["name"]].labels.add(label)

    def _refuse_foreign_hosts(self, ids: tuple) -> None:
        data = self._client.get("/hosts", {"region_id": ids[1], "limit": 10})
        names = [h.get("name") for h in (data or {}).get("hosts") or []]
        if names:
            raise StorageError(
                f"region {self.opts.region} of cloud {self.opts.cloud} at {self.opts.url} already holds hosts "
                f"({', '.join(map(str, names[:3]))}...) but no inventory written by this plugin; refusing to take "
                "it over: set [craton] region to a region of its own, or delete those hosts")

    def _guard_deletes(self, plan: mapping.Plan, unfinished: dict) -> None:
        """Never delete a host the loaded inventory did not hold, unless an unfinished write created it."""
        if self._loaded_hosts is None:
            return
        for name in plan.deletes:
            entry = unfinished["hosts"].get(name) or {}
            if name not in self._loaded_hosts and "created" not in entry:
                raise WriteConflict(
                    f"{self.describe()}: host {name} appeared in Craton after this run read the inventory (added "
                    "by hand or by another writer) and this write would delete it; nothing was written; run "
                    "again so it is part of what the run reads")

    def _roll_back(self, inventory: dict, marks: list[dict]) -> None:
        """Finish abandoned writes by storing the committed inventory again (the previous version).

        The roll-back is a commit of its own, recorded as such and naming the writes it undid.
        """
        try:
            self.store(inventory, records.roll_back_record(marks))
        except WriteConflict as exc:  # another run is finishing them now; the inventory read is right
            LOG.info("%s: not rolling back an unfinished write: %s", self.describe(), exc)
            return
        LOG.warning("%s: rolled back a write that was interrupted; the stored inventory is the last committed "
                    "version", self.describe())

    # -- writing ------------------------------------------------------------

    def _apply(self, ids: tuple, view: View, plan: mapping.Plan, current: dict, desired: dict,
               shape: dict, inventory: dict, unfinished: dict, old_entries: dict, record: ChangeRecord) -> str:
        """Announce (mark with undo record), look, change hosts phase by phase, commit, tidy up.

        The change record goes in the commit's own request, so it lands exactly when the write does.
        """
        region_id = ids[1]
        token = uuid.uuid4().hex
        key = writers.MARK_PREFIX + token
        undo = writers.merge(unfinished, writers.capture(plan, current, old_entries))
        mark = {
            "token": token, "writer": marked_writes.identity(), "started": _now(), "base": view.revision,
            "expires": time.time() + (watchdog.remaining() or DEFAULT_LEASE) + self.opts.timeout,
            "undo": undo,
            "label_hosts": sorted({n for n, _ in plan.label_adds} | {n for n, _ in plan.label_removes}
                                  | {n for m in view.marks.values() for n in m.get("label_hosts") or []}),
            "labels": sorted({label for spec in desired.values() for label in spec.labels}
                             | {label for m in view.marks.values() for label in m.get("labels") or []}),
            "record": record.to_dict(),  # who to name if this write is interrupted and rolled back
        }
        known = set(view.marks)
        marked_writes.ACTIVE.add(token)
        changed = False
        try:
            self._client.put(f"/regions/{region_id}/variables", {key: mark})
            try:
                self._check_mark(region_id, view, key, known)  # the look: another writer announced too?
                ids_by_name = {name: host.id for name, host in current.items()}
                for phase in self._phases(plan, ids, ids_by_name, desired):
                    if changed:
                        self._check_mark(region_id, view, key, known)
                    phase()
                    changed = True
                if changed:  # re-read before the commit (without host changes, the look just did)
                    self._check_mark(region_id, view, key, known)
            except WriteConflict:
                if not changed:  # nothing to undo: take the mark away so it blocks nobody
                    with contextlib.suppress(CratonError):
                        self._client.delete(f"/regions/{region_id}/variables", [key])
                raise
            revision = uuid.uuid4().hex
            sequence = records.next_sequence(view.records, view.state)
            committed = {"format": STATE_FORMAT, "cloud": self.opts.cloud, "region": self.opts.region,
                         "revision": revision, "shape": shape, "written": _now(),
                         "writer": socket.gethostname(), "pending": None, "sequence": sequence}
            self._client.put(f"/regions/{region_id}/variables",
                             {**plan.region_put, mapping.STATE_KEY: committed,
                              records.key_of(sequence): records.entry(record, revision)})
        finally:
            marked_writes.ACTIVE.discard(token)
        try:  # the commit ended every mark on the old revision: tidying up is only housekeeping
            self._client.delete(f"/regions/{region_id}/variables",
                                sorted({key, *known, *view.over,
                                        *records.expired(view.records, sequence, self.opts.change_records)}))
        except CratonError as exc:
            LOG.info("%s: write marks left behind (removed by the next write): %s", self.describe(), exc)
        final = {name: mapping.CurrentHost(id=ids_by_name[name], variables=spec.variables,
                                           device_type=spec.device_type, parent=spec.parent,
                                           ip_address=spec.ip_address)
                 for name, spec in desired.items()}
        self._save_cache(ids, revision, final, inventory)
        return revision

    def _check_mark(self, region_id: Any, view: View, key: str, known: set) -> None:
        """Re-read the marks: go on only if ours is there, no other writer started and nobody committed."""
        now = self._view(self.region.variables(region_id))
        if now.revision != view.revision:
            raise WriteConflict(self._newer_message(now, during=True))
        others = [m for k, m in now.marks.items() if k != key and k not in known]
        if others:
            raise WriteConflict(
                f"{self.describe()}: another run ({marked_writes.describe_writer(others[0])}) started writing this "
                "inventory at the same time; this run stopped before committing; run again")
        if key not in now.marks:
            raise WriteConflict(
                f"{self.describe()}: this run's write mark was removed (another run took the write over as "
                "abandoned); this run stopped before committing; run again")

    def _phases(self, plan: mapping.Plan, ids: tuple, ids_by_name: dict, desired: dict) -> list:
        """The host requests of ``plan`` as steps (one per kind of request), in a safe order."""
        client = self._client
        cloud_id, region_id = ids
        steps = [
            (plan.creates, lambda: [self._create(spec, cloud_id, region_id, ids_by_name, desired)
                                    for spec in plan.creates]),
            (plan.body_updates, lambda: self._update_hosts(plan, ids_by_name, bodies=True)),
            (plan.var_puts or plan.var_deletes, lambda: self._update_hosts(plan, ids_by_name, variables=True)),
            (plan.label_adds or plan.label_removes, lambda: self._update_hosts(plan, ids_by_name, labels=True)),
            (plan.deletes, lambda: [client.delete(f"/hosts/{ids_by_name[name]}") for name in plan.deletes]),
            # (a repeated DELETE of a host is 204 on Craton: retries are safe)
            (plan.region_delete, lambda: client.delete(f"/regions/{region_id}/variables", plan.region_delete)),
        ]
        return [step for items, step in steps if items]

    def _update_hosts(self, plan: mapping.Plan, ids_by_name: dict, bodies: bool = False, variables: bool = False,
                      labels: bool = False) -> None:
        client = self._client
        if bodies:
            for name, body in plan.body_updates:  # parents first, so a move never makes a cycle
                if "parent_id" in body:
                    body = dict(body, parent_id=None if body["parent_id"] is None
                                else ids_by_name[body["parent_id"]])
                client.put(f"/hosts/{ids_by_name[name]}", body)
        if variables:
            for name, values in plan.var_puts:
                client.put(f"/hosts/{ids_by_name[name]}/variables", values)
            for name, keys in plan.var_deletes:
                client.delete(f"/hosts/{ids_by_name[name]}/variables", keys)
        if labels:
            for name, names in plan.label_adds:
                client.put(f"/hosts/{ids_by_name[name]}/labels", {"labels": names})
            for name, names in plan.label_removes:
                client.delete(f"/hosts/{ids_by_name[name]}/labels", {"labels": names})

    def _create(self, spec: mapping.HostSpec, cloud_id: Any, region_id: Any, ids_by_name: dict,
                desired: dict) -> None:
        body: dict = {"name": spec.name, "cloud_id": cloud_id, "region_id": region_id,
                      "ip_address": spec.ip_address, "device_type": spec.device_type, "variables": spec.variables}
        if spec.parent is not None:
            body["parent_id"] = ids_by_name[spec.parent]
        if spec.labels:
            body["labels"] = sorted(spec.labels)
        try:
            ids_by_name[spec.name] = self._client.post("/hosts", body)["id"]
            return
        except CratonError as exc:
            if exc.status != 409:
                raise
        # It exists after all (a retried POST that had worked, or another writer): adopt and align it.
        data = self._client.get("/hosts", {"region_id": region_id, "name": spec.name, "details": "true",
                                           "resolved-values": "false"})
        found = [h for h in (data or {}).get("hosts") or [] if h.get("name") == spec.name]
        if not found:
            raise StorageError(f"Craton at {self.opts.url} refused to create host {spec.name} (409: name taken) "
                               f"but region {self.opts.region} has no host of that name; check the region")
        host = found[0]
        ids_by_name[spec.name] = host["id"]
        labels = set((self._client.get(f"/hosts/{host['id']}/labels") or {}).get("labels") or [])
        managed = {label for s in desired.values() for label in s.labels}
        parent_id = host.get("parent_id")
        parent = None if parent_id is None else next(
            (n for n, i in ids_by_name.items() if i == parent_id), f"#{parent_id}")
        have = mapping.CurrentHost(id=host["id"], variables=host.get("variables") or {},
                                   device_type=host.get("device_type") or "", parent=parent,
                                   ip_address=host.get("ip_address") or "", labels=labels & managed)
        self._update_hosts(mapping.plan({spec.name: have}, {spec.name: spec}, {}, {}), ids_by_name,
                           bodies=True, variables=True, labels=True)

    def _save_cache(self, ids: tuple, revision: str, hosts: dict, inventory: dict) -> None:
        if read_only.active():  # a read that must write nothing (--plan): the next load saves it
            return
        mirror = {name: [h.id, h.parent, h.device_type, h.ip_address] for name, h in hosts.items()}
        self._cache.save(cloud_id=ids[0], region_id=ids[1], revision=revision, hosts=mirror, inventory=inventory)

    # -- messages -------------------------------------------------------------

    def _missing_message(self) -> str:
        o = self.opts
        return (f"cloud {o.cloud} / region {o.region} does not exist in Craton at {o.url} and option create is "
                "false; create them in Craton or set create = true")

    def _newer_message(self, view: View, during: bool = False) -> str:
        state = view.state or {}
        when = "while this run was writing; it stopped before committing" if during \
            else "since this run read it; nothing was written"
        return (f"{self.describe()}: another run (host {state.get('writer') or '?'}, at "
                f"{state.get('written') or '?'}) stored a newer inventory {when}; run again to build on it")

    def _busy_message(self, mark: dict) -> str:
        expires = mark.get("expires")
        until = _dt.datetime.fromtimestamp(expires, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") \
            if isinstance(expires, (int, float)) else "?"
        return (f"{self.describe()}: another run is writing this inventory ({marked_writes.describe_writer(mark)}); "
                f"nothing was written; run again when it has finished (if it was interrupted, the next run on "
                f"its host, or any run after {until}, rolls its write back)")


def _host_names(inventory: dict) -> set:
    hostvars = (inventory.get("_meta") or {}).get("hostvars") if isinstance(inventory.get("_meta"), dict) else None
    return set(hostvars) if isinstance(hostvars, dict) else set()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
