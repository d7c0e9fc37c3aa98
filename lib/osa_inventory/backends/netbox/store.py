"""The NetBox store: the state document, reading the committed inventory, and the write protocol.

The state document is an inactive config context named ``osa-inventory <tag>``
(inactive: NetBox merges it into no object's context). Its data says which
inventory is committed: its ``revision``, the skeleton (groups, ``all``'s vars,
everything but the hosts' variables), every host with the revision of the
write that stored its variables, the change records, and the marks of writes
under way. NetBox has no transaction across requests, but it has
compare-and-swap on one object (``If-Match`` on its ETag), and the document is
one object:

1. announce: the write adds its mark to the document with ``If-Match`` of the
   version it read; a second writer's ``If-Match`` fails (412) and it is
   refused, as is a writer that finds a live mark;
2. change the objects: a host whose variables change gets this write's
   revision and keeps the committed variables beside them (``before``);
3. commit: the new state replaces the document, ``If-Match`` of the announced
   version; a writer whose mark was taken over stops here;
4. clean up: objects no host of the committed inventory uses are removed.

A reader takes each host's variables for the revision the document names,
so it never sees half a write; an interrupted write is rolled back by the
next run that loads (it stores the committed inventory again, recorded as a
roll-back), or simply overwritten by the next write. docs/netbox.md has the
details and the costs.
"""

from __future__ import annotations

import copy
import datetime as _dt
import logging
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

from ...accounting import ChangeRecord
from ...errors import StorageError
from ...storage import read_only, watchdog
from .. import change_records as records
from .. import marked_writes as writers
from ..service_cache import ServiceCache
from . import codec, ipam, mapping, scaffold, world
from .client import NetBoxAccessDenied, NetBoxClient, NetBoxError
from .sync import Sync, canonical

LOG = logging.getLogger(__name__)

FORMAT = 1
DOC_PREFIX = "osa-inventory "
DEFAULT_LEASE = 600.0         # seconds a mark from another machine counts as alive, without a run deadline
LOAD_ATTEMPTS = 3
MESSAGE_LIMIT = 200           # NetBox's changelog_message limit (longer: a 500 and nothing changed)


class WriteConflict(StorageError):
    """Another writer got in the way; nothing of this write was committed."""


@dataclass
class Doc:
    """The state document as read: its id, ETag and decoded state (None: nothing committed yet)."""

    id: int | None
    etag: str | None
    state: dict

    @property
    def revision(self) -> str | None:
        return self.state.get("revision")

    @property
    def marks(self) -> dict:
        return self.state.get("marks") or {}

    @property
    def hosts(self) -> list[tuple[str, str]]:
        return [(h[0], h[1]) for h in self.state.get("hosts") or []]


class NetBoxCache(ServiceCache):
    """The NetBox cache file: the inventory, the revision it was read at and the state document's id."""

    def __init__(self, folder: str, key: tuple[str, ...], enabled: bool = True):
        super().__init__("NetBox", folder, key, enabled)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def changelog_message(record: ChangeRecord, sequence: int) -> str:
    """What NetBox's changelog shows for every object a write changes (at most 200 characters)."""
    text = f"osa-inventory #{sequence}: {record.command or '?'} by {record.user or '?'} on {record.host or '?'}"
    if record.reason:
        text += f": {record.reason}"
    text = "".join(c if c.isprintable() else " " for c in text)
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT - 3] + "..."


class Store:
    """One deployment's inventory in one NetBox (see the module docstring)."""

    def __init__(self, opts: Any, client: NetBoxClient, cache: ServiceCache):
        self.opts = opts
        self.client = client
        self.cache = cache
        self.doc_name = DOC_PREFIX + opts.tag
        self.base: Any = None       # the revision this instance last read or wrote (None: none yet)
        self.based = False

    def describe(self) -> str:
        return f"netbox {self.opts.url} site {self.opts.site} tag {self.opts.tag}"

    # -- the state document ----------------------------------------------------------

    def read_doc(self, etag: bool = True) -> Doc | None:
        """The state document; with ``etag``, read by id too (lists carry no ETag), for a write's If-Match."""
        data = self.client.get("extras/config-contexts/", {"name": self.doc_name, "limit": 2})
        found = [d for d in (data or {}).get("results") or [] if d.get("name") == self.doc_name]
        if not found:
            return None
        if not etag:
            return Doc(found[0]["id"], None, self._state(found[0]))
        answer = self.client.request("GET", f"extras/config-contexts/{found[0]['id']}/")
        return Doc(found[0]["id"], answer.etag, self._state(answer.data))

    def _state(self, data: Any) -> dict:
        where = f"config context {self.doc_name!r} in NetBox at {self.opts.url}"
        body = data.get("data") if isinstance(data, dict) else None
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            found = body.get("format") if isinstance(body, dict) else type(body).__name__
            raise StorageError(f"{where} has format {found!r}, not {FORMAT}: it was written by another version of "
                               "this plugin (upgrade it) or by hand (restore it from NetBox's changelog)")
        state = codec.decode({k: body[k] for k in ("value", "json") if k in body}, where)
        if not isinstance(state, dict):
            raise StorageError(f"{where}: holds no state object; restore it from NetBox's changelog")
        return state

    def _put_doc(self, doc: Doc, state: dict, etag: str | None) -> str | None:
        """Replace the document's state if nobody changed it since ``etag``; the new ETag."""
        data = {"format": FORMAT, **codec.encode(state, f"the state of {self.doc_name}")}
        try:
            answer = self.client.request("PATCH", f"extras/config-contexts/{doc.id}/",
                                         body={"data": data}, headers={"If-Match": etag or "*"})
        except NetBoxError as exc:
            if exc.status == 412:
                raise WriteConflict(f"{self.describe()}: another run changed the inventory's state document "
                                    "while this run was writing; this run stopped before committing; run "
                                    "again") from None
            raise
        return answer.etag

    def _create_doc(self) -> Doc:
        state: dict = {"revision": None, "hosts": [], "marks": {}, "records": {}, "sequence": 0}
        body = {"name": self.doc_name, "is_active": False, "weight": 0, "tags": [self.opts.tag],
                "description": "osa-inventory state: do not edit (docs/netbox.md)",
                "data": {"format": FORMAT, **codec.encode(state, "a new state")}}
        refused = None
        try:
            self.client.request("POST", "extras/config-contexts/", body=body, expect=(201,))
        except NetBoxError as exc:
            if exc.status != 400:
                raise
            refused = exc
        doc = self.read_doc()  # by name, so a document another run made meanwhile is the one used
        if doc is None:
            raise StorageError(f"NetBox at {self.opts.url} refused to create config context {self.doc_name!r}: "
                               f"{refused}")
        return doc

    # -- reading ----------------------------------------------------------------------

    def load(self, roll_back: Any) -> dict | None:
        """The committed inventory (None before the first write); ``roll_back(inventory, marks)`` is
        called when an abandoned write's mark is found and writing is allowed."""
        for _attempt in range(LOAD_ATTEMPTS):
            doc = self.read_doc(etag=False)
            if doc is None or doc.revision is None:
                self._remember(doc.revision if doc else None)
                return None
            cached = self.cache.read()
            if cached and cached.get("revision") == doc.revision:
                inventory = cached["inventory"]
            else:
                inventory = self._full_load(doc)
                if inventory is None:
                    continue  # a write committed while this run read: read again
                if not read_only.active():
                    self.cache.save(revision=doc.revision, document_id=doc.id,
                                    inventory=inventory)
            self._remember(doc.revision)
            dead = [m for m in doc.marks.values() if not writers.alive(m)]
            if dead and not read_only.active():
                roll_back(copy.deepcopy(inventory), dead)
            return copy.deepcopy(inventory)
        raise StorageError(f"{self.describe()}: the inventory changed {LOAD_ATTEMPTS} times while this run read it; "
                           "run again")

    def _full_load(self, doc: Doc) -> dict | None:
        found = world.read(self.client, self.opts.tag, hosts_only=True)
        hosts, missing = world.committed(found.hosts, doc.hosts)
        if missing:
            again = self.read_doc(etag=False)
            if again is not None and again.revision != doc.revision:
                return None
            raise StorageError(f"{self.describe()}: host {missing[0]!r} of the committed inventory has no object "
                               f"in NetBox ({len(missing)} missing): deleted or edited by hand? Restore it from "
                               "NetBox's changelog, or write the inventory again with inventory-manage")
        skeleton = codec.decode(doc.state.get("skeleton"), f"the skeleton in {self.doc_name}")
        return mapping.join(skeleton, hosts)

    def _remember(self, revision: Any) -> None:
        self.base, self.based = revision, True

    # -- writing ----------------------------------------------------------------------

    def write(self, inventory: dict, record: ChangeRecord) -> None:
        try:
            self._write(inventory, record)
        except NetBoxAccessDenied as exc:
            raise NetBoxAccessDenied(self._denied_message(exc), exc.status) from None

    def _denied_message(self, exc: NetBoxAccessDenied) -> str:
        """A refused write, naming the NetBox user whose token it is (when the token may look that up)."""
        key = self.opts.token.split(".")[0][len("nbt_"):]
        user = "?"
        try:
            data = self.client.get("users/tokens/", {"key": key, "limit": 2})
            for token in (data or {}).get("results") or []:
                if token.get("key") == key and isinstance(token.get("user"), dict):
                    user = str(token["user"].get("username") or "?")
        except NetBoxError:
            pass  # a token that may not list tokens: named by its key alone
        return (f"{self.describe()}: NetBox refused a write with the token of user {user} (key {key}): it is "
                "read-only or lacks permission; nothing was written; this run changes the inventory, so run it "
                "with a token that may write (docs/netbox.md, Set-up)")

    def _write(self, inventory: dict, record: ChangeRecord) -> None:
        inventory = copy.deepcopy(inventory)
        skeleton, hosts = mapping.split(inventory)
        want = mapping.specs(hosts)
        skeleton_stored = codec.encode(skeleton, "the inventory outside _meta.hostvars")
        doc = self.read_doc()
        ids = None
        if doc is None:
            if self.based and self.base is not None:
                raise WriteConflict(f"{self.describe()}: the inventory's state document vanished since this run "
                                    "read it; nothing was written")
            ids = scaffold.ids(self.client, self.opts)  # the tag first: the document carries it
            doc = self._create_doc()
        if self.based and doc.revision != self.base:
            raise WriteConflict(self._newer_message(doc))
        live = [m for m in doc.marks.values() if writers.alive(m)]
        if live:
            raise WriteConflict(self._busy_message(live[0]))
        cached = self.cache.read()
        if not doc.marks and doc.revision is not None and cached and cached.get("revision") == doc.revision \
                and canonical(cached.get("inventory")) == canonical(inventory):
            self._remember(doc.revision)
            return
        ids = ids or scaffold.ids(self.client, self.opts)
        found = world.read(self.client, self.opts.tag)
        committed = dict(doc.hosts)
        sequence = records.next_sequence(doc.state.get("records") or {}, doc.state)
        sync = Sync(self.client, ids, self.opts.tag, changelog_message(record, sequence), found)
        revision = uuid.uuid4().hex
        plan = sync.plan(want, committed, revision)
        new_hosts = [[name, plan.revisions[name]] for name, _ in hosts]
        objects_change = bool(plan.records or plan.clusters or plan.garbage or any(plan.creates.values())
                              or any(plan.patches.values()) or sync.projection_needed(want, plan))
        if not objects_change and not doc.marks and doc.revision is not None \
                and canonical(doc.state.get("skeleton")) == canonical(skeleton_stored) \
                and new_hosts == [list(h) for h in doc.hosts]:
            self._settled(doc, inventory)
            return
        etag = doc.etag
        token = uuid.uuid4().hex
        writers.ACTIVE.add(token)
        try:
            if objects_change:
                mark = {"token": token, "writer": writers.identity(), "started": _now(), "base": doc.revision,
                        "expires": time.time() + (watchdog.remaining() or DEFAULT_LEASE) + self.opts.timeout,
                        "record": record.to_dict()}
                etag = self._put_doc(doc, {**doc.state, "marks": {token: mark}}, etag)
                sync.apply(want, plan)
            kept = doc.state.get("records") or {}
            state = {"revision": revision, "hosts": new_hosts, "skeleton": skeleton_stored, "marks": {},
                     "sequence": sequence, "written": _now(), "writer": socket.gethostname(),
                     "records": {**{k: v for k, v in kept.items()
                                    if k not in records.expired(kept, sequence, self.opts.change_records)},
                                 records.key_of(sequence): records.entry(record, revision)}}
            self._put_doc(doc, state, etag)
        finally:
            writers.ACTIVE.discard(token)
        self._remember(revision)
        if not read_only.active():
            self.cache.save(revision=revision, document_id=doc.id, inventory=inventory)
        try:
            sync.clean_up(plan, want)
        except StorageError as exc:  # committed: what is left is removed by the next write
            LOG.info("%s: objects left after the commit (the next write removes them): %s", self.describe(), exc)

    def _settled(self, doc: Doc, inventory: dict) -> None:
        self._remember(doc.revision)
        if not read_only.active():
            self.cache.save(revision=doc.revision, document_id=doc.id, inventory=inventory)

    def reserved(self, networks: list[str]) -> list[dict]:
        """What NetBox holds inside ``networks`` that is not this deployment's (ipam.py)."""
        vrf = None
        if self.opts.vrf:
            found = scaffold.find(self.client, "ipam/vrfs/", {"name": self.opts.vrf})
            if found is None:
                return []  # no VRF yet: nothing is held in it
            vrf = found
        return ipam.held(self.client, networks, self.opts.tag, vrf)

    def history(self) -> list[dict]:
        doc = self.read_doc(etag=False)
        if doc is None:
            return []
        state = doc.state if doc.revision is not None else None
        return records.history(doc.state.get("records") or {}, state, self.opts.change_records,
                               holder="state record key")

    # -- messages ---------------------------------------------------------------------

    def _newer_message(self, doc: Doc) -> str:
        state = doc.state
        return (f"{self.describe()}: another run (host {state.get('writer') or '?'}, at {state.get('written') or '?'}) "
                "stored a newer inventory since this run read it; nothing was written; run again to build on it")

    def _busy_message(self, mark: dict) -> str:
        expires = mark.get("expires")
        until = _dt.datetime.fromtimestamp(expires, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") \
            if isinstance(expires, (int, float)) else "?"
        return (f"{self.describe()}: another run is writing this inventory ({writers.describe_writer(mark)}); "
                f"nothing was written; run again when it has finished (if it was interrupted, the next run on "
                f"its host, or any run after {until}, rolls its write back)")
