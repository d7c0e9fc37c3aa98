"""Craton storage: the inventory kept as hosts, labels and region variables of a Craton (API v1) region.

Options (osa.ini section ``[craton]`` or ``OSA_INVENTORY_CRATON_<OPTION>``):

``url``
    API root, e.g. ``https://craton.example.com:7780`` (``/v1`` is added).
``project_id``, ``username``, ``api_key``
    Craton local auth (``X-Auth-Project`` / ``X-Auth-User`` / ``X-Auth-Token``);
    or ``token``: a Keystone token instead (only ``X-Auth-Token`` is sent).
``cloud``, ``region``
    Names of the cloud and region that hold this deployment (created when missing
    unless ``create = false``).
``verify``
    ``true`` (default), ``false`` or the path of a CA bundle.
``timeout`` (seconds, default 30), ``retries`` (default 3), ``backoff`` (seconds, default 0.5)
    Per request; idempotent requests are retried on connection errors, 429 and 5xx.
``cache_dir`` (default: the config folder), ``cache`` (default true)
    Local cache that makes an unchanged run cost one request.

The mapping, the revision marker, the write protocol and what happens when a
write is interrupted are described in ``docs/craton.md``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import re
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from osa_inventory.backends.craton import mapping
from osa_inventory.backends.craton.cache import Cache
from osa_inventory.backends.craton.client import CratonClient, CratonError
from osa_inventory.errors import StorageError
from osa_inventory.storage.options import FALSE_WORDS, TRUE_WORDS, flag_option, number_option

LOG = logging.getLogger(__name__)

STATE_FORMAT = 1
UUID_RE = re.compile(r"^(?:[0-9a-fA-F]{32}"
                     r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")
KNOWN_OPTIONS = {"url", "project_id", "username", "api_key", "token", "cloud", "region", "verify",
                 "timeout", "retries", "backoff", "cache_dir", "cache", "create", "config_dir"}
FULL_LOAD_ATTEMPTS = 3


@dataclass
class Options:
    """Checked plugin options; the secrets are kept out of the repr."""

    url: str
    cloud: str
    region: str
    project_id: str = ""
    username: str = ""
    api_key: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    verify: bool | str = True
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.5
    cache_dir: str = ""
    cache: bool = True
    create: bool = True

    @property
    def who(self) -> str:
        return "the Keystone token" if self.token else f"user {self.username} in project {self.project_id}"

    def headers(self) -> dict[str, str]:
        if self.token:
            return {"X-Auth-Token": self.token}
        return {"X-Auth-Project": self.project_id, "X-Auth-User": self.username, "X-Auth-Token": self.api_key}


def parse_options(args: dict) -> Options:
    """Check ``register()`` arguments; every message names the option and never a secret's value."""
    unknown = sorted(set(args) - KNOWN_OPTIONS)
    if unknown:
        raise StorageError(f"unknown option(s) {', '.join(unknown)}; known: "
                           f"{', '.join(sorted(KNOWN_OPTIONS - {'config_dir'}))}")
    config_dir = str(args.get("config_dir") or "")

    def text(name: str) -> str:
        return str(args.get(name) or "").strip()

    url = _check_url(text("url"))
    cloud, region = text("cloud"), text("region")
    for name, value in (("cloud", cloud), ("region", region)):
        if not value or len(value) > 255:
            raise StorageError(f"option {name} must name the Craton {name} (1 to 255 characters)")
    opts = Options(url=url, cloud=cloud, region=region)
    opts.token, opts.api_key = text("token"), text("api_key")
    opts.project_id, opts.username = text("project_id"), text("username")
    for name in ("token", "api_key"):
        value = getattr(opts, name)
        if value and not all(33 <= ord(c) < 127 for c in value):
            raise StorageError(f"option {name} holds spaces or characters an HTTP header cannot carry; "
                               "check its value")
    if opts.token and opts.api_key:
        raise StorageError("options api_key and token are both set; use api_key (local auth, with "
                           "project_id and username) or token (Keystone), not both")
    if not opts.token:
        if not opts.api_key:
            raise StorageError("no credentials: set api_key (with project_id and username) or token")
        if not opts.username:
            raise StorageError("option username is not set; Craton local auth needs it with api_key")
        if not UUID_RE.match(opts.project_id):
            raise StorageError(f"option project_id = {opts.project_id!r} is not a project UUID "
                               "(32 hex digits, dashes allowed)")
    opts.verify = _verify(text("verify"), config_dir)
    opts.timeout = number_option(args, "timeout", 30.0, minimum=0.001)
    opts.retries = int(number_option(args, "retries", 3, minimum=0, whole=True))
    opts.backoff = number_option(args, "backoff", 0.5, minimum=0.0)
    opts.cache = flag_option(args, "cache", True)
    opts.create = flag_option(args, "create", True)
    cache_dir = text("cache_dir") or config_dir
    if not cache_dir:
        raise StorageError("option cache_dir is not set and no config folder was given")
    opts.cache_dir = os.path.join(config_dir, os.path.expanduser(cache_dir))
    return opts


def _check_url(url: str) -> str:
    if not url:
        raise StorageError("option url is not set; give the Craton API root, e.g. http://craton.example.com:7780")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StorageError(f"option url = {url!r} is not an http:// or https:// URL")
    if parts.username or parts.password:
        raise StorageError("option url must not carry credentials; use api_key or token")
    if parts.query or parts.fragment:
        raise StorageError(f"option url = {parts.scheme}://{parts.netloc}{parts.path} must not have a query "
                           "or fragment")
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[:-3]
    return f"{parts.scheme}://{parts.netloc}{path}"


def _verify(raw: str, config_dir: str) -> bool | str:
    if not raw or raw.lower() in TRUE_WORDS:
        return True
    if raw.lower() in FALSE_WORDS:
        return False
    path = os.path.join(config_dir, os.path.expanduser(raw))
    if not os.path.exists(path):
        raise StorageError(f"option verify = {raw!r}: no CA bundle at {path}; give true, false or an existing path")
    return path


def _uuid_key(value: Any) -> str:
    """A project id in one spelling (no dashes, lower case) for comparisons; '' when absent."""
    return str(value or "").replace("-", "").lower()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Storage:
    """The Craton backend; see the module docstring and docs/craton.md."""

    def __init__(self) -> None:
        self.opts: Options | None = None
        self._client: CratonClient | None = None
        self._cache: Cache | None = None
        self._ids: tuple[Any, Any] | None = None   # (cloud_id, region_id)
        self._ids_checked = False                  # ids found by name in this process

    def __repr__(self) -> str:
        return f"<craton Storage {self.describe()}>" if self.opts else "<craton Storage (unregistered)>"

    # -- contract ---------------------------------------------------------

    def register(self, args: dict) -> None:
        self.opts = parse_options(args)
        o = self.opts
        self._client = CratonClient(o.url, o.headers(), o.who, verify=o.verify, timeout=o.timeout,
                                    retries=o.retries, backoff=o.backoff)
        scope = _uuid_key(o.project_id) or "keystone"
        self._cache = Cache(o.cache_dir, (o.url, scope, o.cloud, o.region), o.cache)

    def load(self) -> dict | None:
        cached = self._cache.read()
        ids, region_vars = self._region(False, cached)
        if ids is None:
            return None
        state = self._state(region_vars)
        if state is None:
            return None
        pending = state.get("pending")
        if pending:
            if state.get("revision") is None:
                return None  # an interrupted first write: nothing whole was ever stored
            if self._cache_fits(cached, ids, state["revision"]):
                LOG.warning("%s: a write is running or was interrupted; using the previous version from the "
                            "local cache (the next write completes the change)", self.describe())
                return cached["inventory"]
            raise StorageError(self._incomplete_message(state))
        if self._cache_fits(cached, ids, state["revision"]):
            return cached["inventory"]
        return self._full_load(ids, region_vars, state)

    def write(self, inventory: dict) -> None:
        desired = mapping.host_specs(inventory)
        new_entries = mapping.region_entries(inventory)
        shape = mapping.shape_of(inventory)
        cached = self._cache.read()
        ids, region_vars = self._region(self.opts.create, cached)
        if ids is None:
            raise StorageError(self._missing_message())
        state = self._state(region_vars)
        old_entries = mapping.our_entries(region_vars)
        if state is None:
            self._refuse_foreign_hosts(ids)
            current, from_cache = {}, False
        else:
            current, from_cache = self._current_hosts(ids, state, old_entries, desired, cached)
        plan = mapping.plan(current, desired, old_entries, new_entries)
        clean = state is not None and not state.get("pending") and mapping.same(state.get("shape"), shape)
        if plan.empty and clean:
            if not from_cache:
                self._save_cache(ids, state["revision"], current, inventory)
            return
        self._apply(ids, state, plan, current, desired, shape, inventory)

    # -- optional extras --------------------------------------------------

    def describe(self) -> str:
        o = self.opts
        return f"craton {o.url} cloud {o.cloud} region {o.region}" if o else "craton (unregistered)"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # -- finding the region -------------------------------------------------

    def _region(self, create: bool, cached: dict | None) -> tuple[tuple[Any, Any] | None, dict]:
        """``((cloud_id, region_id), region variables)``, or ``(None, {})`` when missing and not created."""
        if self._ids is None:
            if cached and cached.get("cloud_id") is not None and cached.get("region_id") is not None:
                self._ids = (cached["cloud_id"], cached["region_id"])
        if self._ids is not None:
            try:
                region_vars = self._region_vars(self._ids[1])
            except CratonError as exc:
                if exc.status != 404:
                    raise
                region_vars = None  # the region was deleted: find (or create) it by name
            if region_vars is not None and (self._ids_checked or self._names_match(region_vars)):
                return self._ids, region_vars
            self._ids, self._ids_checked = None, False
        ids = self._lookup(create)
        if ids is None:
            return None, {}
        self._ids, self._ids_checked = ids, True
        try:
            return ids, self._region_vars(ids[1])
        except CratonError as exc:
            if exc.status == 404:
                raise StorageError(f"region {self.opts.region} (id {ids[1]}) vanished from {self.opts.url} while "
                                   "it was being read; another tool is deleting it; try again") from None
            raise

    def _names_match(self, region_vars: dict) -> bool:
        state = region_vars.get(mapping.STATE_KEY)
        return isinstance(state, dict) and state.get("cloud") == self.opts.cloud \
            and state.get("region") == self.opts.region

    def _region_vars(self, region_id: Any) -> dict:
        data = self._client.get(f"/regions/{region_id}/variables")
        variables = data.get("variables") if isinstance(data, dict) else None
        if not isinstance(variables, dict):
            raise StorageError(f"GET {self.opts.url}/v1/regions/{region_id}/variables answered without a "
                               "variables object; check that url points at the Craton API")
        return variables

    def _lookup(self, create: bool) -> tuple[Any, Any] | None:
        o = self.opts
        cloud_id = self._find_or_create("clouds", {"name": o.cloud}, {}, create, f"cloud {o.cloud}")
        if cloud_id is None:
            return None
        region_id = self._find_or_create("regions", {"name": o.region, "cloud_id": cloud_id},
                                         {"cloud_id": cloud_id}, create, f"region {o.region} of cloud {o.cloud}")
        return None if region_id is None else (cloud_id, region_id)

    def _find_or_create(self, plural: str, fields: dict, query: dict, create: bool, what: str) -> Any:
        found = self._find(plural, fields, query)
        if found is not None or not create:
            return found
        try:
            created = self._client.post(f"/{plural}", fields)
        except CratonError as exc:
            if exc.status != 409:
                raise
            # Another run created it first, or a retried POST already had: use that one.
            found = self._find(plural, fields, query)
            if found is None:
                raise StorageError(f"Craton at {self.opts.url} says {what} already exists (409) but it cannot be "
                                   "found; check its name and the project it belongs to") from None
            return found
        LOG.info("created %s in %s", what, self.opts.url)
        return created["id"]

    def _find(self, plural: str, fields: dict, query: dict) -> Any:
        # Not ?name=: Craton answers it with a project-wide get-by-name (404 when missing, and a
        # region of another cloud with the same name); a listing matched here is unambiguous.
        # Listings of admin users span every project, so the project is matched too when known.
        project = _uuid_key(self.opts.project_id)
        found = [item["id"] for item in self._client.list_all(f"/{plural}", plural, query)
                 if all(item.get(k) == v for k, v in fields.items())
                 and (not project or _uuid_key(item.get("project_id")) in ("", project))]
        if len(found) > 1:
            raise StorageError(f"Craton at {self.opts.url} lists {len(found)} {plural} named "
                               f"{fields['name']} (ids {', '.join(map(str, found[:5]))}), visible across projects "
                               "to an admin user; use the credentials of a user of the deployment's own project")
        return found[0] if found else None

    @staticmethod
    def _state(region_vars: dict) -> dict | None:
        state = region_vars.get(mapping.STATE_KEY)
        if state is None:
            return None
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            found = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise StorageError(f"region variable {mapping.STATE_KEY} has format {found!r}, not {STATE_FORMAT}; "
                               "it was written by another version of this plugin; upgrade it")
        return state

    # -- reading ------------------------------------------------------------

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

    def _full_load(self, ids: tuple, region_vars: dict, state: dict) -> dict:
        """Read every host; re-read the marker after, so a concurrent write cannot give a mixed view."""
        for _ in range(FULL_LOAD_ATTEMPTS):
            hosts = self._list_hosts(ids[1])
            again_vars = self._region_vars(ids[1])
            again = self._state(again_vars)
            if again is not None and mapping.same(again, state):
                current = self._from_listing(hosts)
                inventory = mapping.assemble(region_vars, state.get("shape") or {},
                                             ((h["name"], h["variables"]) for h in hosts))
                self._save_cache(ids, state["revision"], current, inventory)
                return inventory
            if again is None or again.get("pending"):
                raise StorageError(f"{self.describe()}: another run started writing the inventory while it was "
                                   "read; wait for it to finish and run again")
            region_vars, state = again_vars, again
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

    def _current_hosts(self, ids: tuple, state: dict, old_entries: dict, desired: dict,
                       cached: dict | None) -> tuple[dict, bool]:
        """What Craton holds now: from the cache when its revision matches, else from a full listing."""
        top, _ = mapping.split_entries(old_entries)
        pending = state.get("pending") or {}
        if not pending and self._cache_fits(cached, ids, state.get("revision")):
            hostvars = (cached["inventory"].get("_meta") or {}).get("hostvars") or {}
            mirror = cached["hosts"]
            if set(mirror) == set(hostvars):
                recorded = mapping.memberships(top, mirror)
                return {name: mapping.CurrentHost(id=m[0], parent=m[1], device_type=m[2], ip_address=m[3],
                                                  variables=mapping.encode_hostvars(hostvars[name]),
                                                  labels=recorded[name])
                        for name, m in mirror.items()}, True
        current = self._from_listing(self._list_hosts(ids[1]))
        recorded = mapping.memberships(top, current)
        for name, host in current.items():
            host.labels = recorded[name]
        if pending:
            # Labels of these hosts may be anywhere between the old and the interrupted new state.
            uncertain = set(pending.get("label_hosts") or []) & set(current)
            candidates = mapping.label_names(top) | set(pending.get("labels") or []) \
                | {label for spec in desired.values() for label in spec.labels}
            self._read_labels(ids[1], uncertain, candidates, current)
        return current, False

    def _read_labels(self, region_id: Any, uncertain: set, candidates: set, current: dict) -> None:
        """Actual labels (limited to ones we manage) of ``uncertain`` hosts, by the cheaper way."""
        if not uncertain:
            return
        for name in uncertain:
            current[name].labels = set()
        if len(uncertain) <= 2 * len(candidates) + 1:
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

    # -- writing ------------------------------------------------------------

    def _apply(self, ids: tuple, state: dict | None, plan: mapping.Plan, current: dict, desired: dict,
               shape: dict, inventory: dict) -> None:
        """Marker first, then hosts, then region variables with the committed marker last."""
        cloud_id, region_id = ids
        client = self._client
        revision = uuid.uuid4().hex
        writer = socket.gethostname()
        previous = (state or {}).get("pending") or {}
        base = dict(state) if state else {"format": STATE_FORMAT, "cloud": self.opts.cloud,
                                          "region": self.opts.region, "revision": None, "shape": None}
        base["pending"] = {
            "revision": revision, "started": _now(), "writer": writer,
            "label_hosts": sorted(plan.label_hosts() | set(previous.get("label_hosts") or [])),
            "labels": sorted({label for spec in desired.values() for label in spec.labels}
                             | set(previous.get("labels") or [])),
        }
        if plan.host_requests or plan.region_delete:
            # More than one modifying request follows: mark the write in progress first.
            client.put(f"/regions/{region_id}/variables", {mapping.STATE_KEY: base})

        ids_by_name = {name: host.id for name, host in current.items()}
        for spec in plan.creates:
            self._create(spec, cloud_id, region_id, ids_by_name, desired)
        self._update_hosts(plan, ids_by_name)
        for name in plan.deletes:
            try:
                client.delete(f"/hosts/{ids_by_name[name]}")
            except CratonError as exc:
                if exc.status != 404:  # 404: a retried DELETE that had already worked
                    raise
        if plan.region_delete:
            client.delete(f"/regions/{region_id}/variables", plan.region_delete)
        committed = {"format": STATE_FORMAT, "cloud": self.opts.cloud, "region": self.opts.region,
                     "revision": revision, "shape": shape, "written": _now(), "writer": writer, "pending": None}
        client.put(f"/regions/{region_id}/variables", {**plan.region_put, mapping.STATE_KEY: committed})
        final = {name: mapping.CurrentHost(id=ids_by_name[name], variables=spec.variables,
                                           device_type=spec.device_type, parent=spec.parent,
                                           ip_address=spec.ip_address)
                 for name, spec in desired.items()}
        self._save_cache(ids, revision, final, inventory)

    def _update_hosts(self, plan: mapping.Plan, ids_by_name: dict) -> None:
        client = self._client
        for name, body in plan.body_updates:  # parents first, so a move never makes a cycle
            if "parent_id" in body:
                body = dict(body, parent_id=None if body["parent_id"] is None else ids_by_name[body["parent_id"]])
            client.put(f"/hosts/{ids_by_name[name]}", body)
        for name, variables in plan.var_puts:
            client.put(f"/hosts/{ids_by_name[name]}/variables", variables)
        for name, keys in plan.var_deletes:
            client.delete(f"/hosts/{ids_by_name[name]}/variables", keys)
        for name, labels in plan.label_adds:
            client.put(f"/hosts/{ids_by_name[name]}/labels", {"labels": labels})
        for name, labels in plan.label_removes:
            client.delete(f"/hosts/{ids_by_name[name]}/labels", {"labels": labels})

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
        self._update_hosts(mapping.plan({spec.name: have}, {spec.name: spec}, {}, {}), ids_by_name)

    def _save_cache(self, ids: tuple, revision: str, hosts: dict, inventory: dict) -> None:
        mirror = {name: [h.id, h.parent, h.device_type, h.ip_address] for name, h in hosts.items()}
        self._cache.save(cloud_id=ids[0], region_id=ids[1], revision=revision, hosts=mirror, inventory=inventory)

    # -- messages -------------------------------------------------------------

    def _missing_message(self) -> str:
        o = self.opts
        return (f"cloud {o.cloud} / region {o.region} does not exist in Craton at {o.url} and option create is "
                "false; create them in Craton or set create = true")

    def _incomplete_message(self, state: dict) -> str:
        pending = state.get("pending") or {}
        writer = pending.get("writer") or "another host"
        return (f"{self.describe()}: the stored inventory is incomplete: a write started {pending.get('started')} "
                f"on {writer} is still running or was interrupted, and this machine has no cached copy of the "
                f"previous version; wait for it, or re-run the inventory on {writer} (its next write completes "
                "the change), or write a whole saved inventory to repair it")
