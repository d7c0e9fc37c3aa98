"""etcd storage: the inventory kept in an etcd v3 cluster shared by several deploy hosts.

Options (osa.ini section ``[etcd]`` or ``OSA_INVENTORY_ETCD_<OPTION>``): ``endpoints``,
``prefix``, ``deployment``, ``username``, ``password``, ``ca_cert``, ``cert``, ``key``,
``timeout``, ``lock_ttl``, ``lock_timeout``, ``max_txn_ops``; see docs/etcd.md.

Layout under the prefix ``P`` (all values JSON, UTF-8):

``P/manifest``
    The pointer to the current version: format, generation, write time, writer, the
    location and digest of the index, and the write's change record (who, from where,
    with what command and why; never read by load or write). Its revisions are the
    inventory's history.
``P/data/<tag>/<kind>[.<chunk>]/<name>``
    Immutable parts: one per host's hostvars (``host``), per other top-level entry
    such as a group or ``all`` (``group``), the rest of ``_meta`` (``meta``) and the
    index (``index``) listing every part in order with its tag and digest. ``tag`` is
    unique per write (``<generation>-<random>``); a part bigger than a chunk is split.
``P/deployment``
    The marker naming the deployment (``[etcd] deployment``); a run of another
    deployment is refused.
``P/tags/<tag>``
    One record per write tag with parts stored: ``staging`` until its manifest is
    switched in, then ``stored``. Together with the index it proves which data keys
    this program wrote; no other key is ever deleted.
``P/lock``
    Held by the run that is generating, attached to a lease that dies with it. A user
    that may read but not write the prefix cannot take it: its runs read without the
    lock and refuse to write (backends/etcd/access.py).

A write puts only the parts whose content changed, under a fresh tag that no reader
follows yet, then switches the manifest in one transaction that compares the
manifest's revision (and that our lock is still ours): readers see the old version or
the new one, never a mix, and a writer that lost the race writes nothing visible.
Parts that no manifest references any more are deleted afterwards (or by the next
write of any kind, changing or not, if the writer died first).
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import ContextManager, Iterator

from osa_inventory.accounting import ChangeRecord, pending_change
from osa_inventory.errors import AccessDenied, InventoryError, StorageError, one_line
from osa_inventory.resources import manage_command
from osa_inventory.storage.options import Option, declare, read_options
from osa_inventory.storage.safe_files import Reentrant
from osa_inventory.backends.etcd.client import (EtcdClient, EtcdCompacted, EtcdError, EtcdFutureRevision,
                                                check_endpoint, cmp_create, cmp_mod, op_delete, op_put, op_range,
                                                prefix_end)
from osa_inventory.backends.etcd.access import read_only_message, write_denied
from osa_inventory.backends.etcd.identity import (check_identity, check_name, check_nesting, deployments_around,
                                                  marker_value)
from osa_inventory.backends.etcd.lease import LeaseKeeper
from osa_inventory.backends.etcd.parts import (FORMAT, Part, chunked, digest, dumps, index_parts, join_inventory,
                                               loads, loads_or_none, split_inventory, utc_now)
from osa_inventory.backends.etcd.layout import (STAGING, STORED, Keys, PrefixScan, classify, looks_like_manifest,
                                                marker_of)

DEFAULT_ENDPOINTS = "http://127.0.0.1:2379"
DEFAULT_PREFIX = "/openstack-ansible/inventory/default"

OPTIONS = declare(
    Option("endpoints", default=DEFAULT_ENDPOINTS, help="client URLs of the members, comma separated"),
    Option("prefix", default=DEFAULT_PREFIX, help="key prefix of this deployment"),
    Option("deployment", default="", help="name of this deployment, stored at the prefix"),
    Option("username", default="", help="etcd user"),
    Option("password", default="", secret=True, help="etcd password"),
    Option("ca_cert", "path", default="", help="CA bundle of the members' certificates"),
    Option("cert", "path", default="", help="client certificate"),
    Option("key", "path", default="", help="client certificate's key"),
    Option("timeout", "number", default=10.0, minimum=0.1, help="seconds per request"),
    Option("lock_ttl", "whole", default=60, minimum=2, help="seconds the lock outlives a dead run"),
    Option("lock_timeout", "number", default=300.0, minimum=0, help="seconds to wait for another run's lock"),
    Option("max_txn_ops", "whole", default=128, minimum=8, help="operations per transaction"),
)
BATCH_BYTES = 1024 * 1024         # keys + values per transaction, below that limit
PAGE_KEYS = 2000                  # keys per range read when loading


class Damage(StorageError):
    """The stored version is damaged: a restore or a forced import may write over it."""


@dataclass
class Snapshot:
    """What a write needs to know about the version it replaces.

    ``parts`` and ``index_part`` hold only what is intact (and so may be kept);
    ``owned`` is every data key this program provably wrote (referenced by the
    index, or under a recorded tag), the only keys a write may delete."""

    manifest_rev: int = 0
    manifest: dict | None = None
    parts: dict[tuple[str, str], Part] = field(default_factory=dict)
    index_part: Part | None = None
    owned: set[bytes] = field(default_factory=set)
    tags: dict[str, str] = field(default_factory=dict)
    marker_rev: int = 0
    marker: dict | None = None
    nested: list[str] = field(default_factory=list)
    generation: int = 0

    def all_keys(self, data_prefix: bytes) -> set[bytes]:
        """Every data key this version references."""
        keys: set[bytes] = set()
        for part in self.parts.values():
            keys.update(part.keys(data_prefix))
        if self.index_part:
            keys.update(self.index_part.keys(data_prefix))
        return keys


class Storage:
    """The etcd backend; see the module docstring."""

    def __init__(self) -> None:
        self.endpoints: list[str] = []
        self.prefix = DEFAULT_PREFIX
        self.keys = Keys(DEFAULT_PREFIX)
        self.deployment = ""
        self.timeout = 10.0
        self.lock_ttl = 60
        self.lock_timeout = 300.0
        self.max_txn_ops = 128
        self.client: EtcdClient | None = None
        self._snapshot: Snapshot | None = None
        self._lock = Reentrant(self._hold_lock)
        self._lock_rev = 0
        self._config_dir: str | None = None  # named in advice, so the printed command reaches this store
        self._lease = 0
        self._keeper: LeaseKeeper | None = None
        self._read_only = False  # etcd refused our lock key: we may read, never write

    # -- contract ---------------------------------------------------------

    def register(self, args: dict) -> None:
        """Check the options (see docs/etcd.md); nothing is sent to etcd yet."""
        values = read_options(OPTIONS, args)
        raw = values["endpoints"]
        endpoints = []
        for item in raw.replace("\n", ",").split(","):
            if item.strip():
                try:
                    endpoints.append(check_endpoint(item))
                except ValueError as exc:
                    raise StorageError(f"option endpoints: {exc}") from None
        if not endpoints:
            raise StorageError("option endpoints is empty; give the client URLs of the etcd members")
        prefix = values["prefix"].rstrip("/")
        if not prefix:
            raise StorageError("option prefix is empty; give a key prefix such as "
                               f"{DEFAULT_PREFIX}")
        username, password = values["username"] or None, values["password"]
        if username and not password:
            raise StorageError("option username is set but password is not; set password "
                               "(or OSA_INVENTORY_ETCD_PASSWORD)")
        if password and not username:
            raise StorageError("option password is set but username is not")
        self._config_dir = args.get("config_dir") or None
        config_dir = self._config_dir or os.getcwd()
        ca_cert, cert, key = (_file_option(args, name, config_dir) for name in ("ca_cert", "cert", "key"))
        if key and not cert:
            raise StorageError("option key is set but cert is not; set both for TLS client authentication")
        self.deployment = check_name(values["deployment"])
        self.timeout, self.lock_ttl = values["timeout"], values["lock_ttl"]
        self.lock_timeout, self.max_txn_ops = values["lock_timeout"], values["max_txn_ops"]
        self.endpoints, self.prefix, self.keys = endpoints, prefix, Keys(prefix)
        self.client = EtcdClient(endpoints, self.timeout, username=username, password=password,
                                 ca_cert=ca_cert, cert=cert, key=key, scope=prefix + "/")

    def load(self) -> dict | None:
        """The current inventory, read at one revision, or None when none is stored.

        Refuses a prefix that holds another deployment, a damaged version and a
        manifest deleted while its parts remain."""
        self._snapshot = None
        inventory, snapshot = self._read(0)
        self._snapshot = snapshot
        return inventory

    def write(self, inventory: dict) -> None:
        """Store ``inventory`` over the version last loaded (or the current one) under the lock.

        Refuses, writing nothing, when another run stored a version since that load,
        when our lock was lost, and when the prefix holds or nests in another
        deployment. Writes over a damaged current version (what a restore or a
        forced import asks for); the damaged version stays in the history."""
        if not isinstance(inventory, dict):
            raise StorageError(f"cannot store a {type(inventory).__name__}; the inventory must be a dict")
        with self.lock():
            self._check_writable()
            self._check_lock()
            base = self._snapshot
            if base is None:
                _, base = self._read(0, tolerant=True)
            check_nesting(self.prefix, self._where, base.nested, deployments_around(self._client(), self.prefix),
                          self._client().etcdctl())
            self._snapshot = self._commit(base, inventory)

    # -- optional extras --------------------------------------------------

    def describe(self) -> str:
        """Where the inventory lives, for messages; once a version was read or stored, which one."""
        version = self._snapshot.manifest_rev if self._snapshot is not None else 0
        return f"etcd {','.join(self.endpoints)} prefix {self.prefix}" + (f" version {version}" if version else "")

    def lock(self) -> ContextManager[None]:
        """Exclusive across hosts via a lease-bound key; re-entrant within this object.

        With read-only credentials (etcd refuses the lock key) the block runs without
        the lock: reads are whole without it, and every write in it is refused."""
        return self._lock()

    @contextlib.contextmanager
    def _hold_lock(self) -> Iterator[None]:
        self._acquire()
        try:
            yield
        finally:
            self._release()

    def adopt(self) -> str:
        """Label the deployment stored at the prefix with this run's ``deployment`` name.

        The operator's override for a name mismatch (``inventory-manage.py --adopt``);
        returns what was done."""
        with self.lock():
            scan = self._scan(0)
            old = marker_of(scan.marker["value"]) if scan.marker is not None else None
            if scan.marker is not None and old is None:
                raise StorageError(f"{self.keys.marker.decode()} on {self._where} is not a deployment marker of "
                                   "this program; choose another prefix")
            if scan.manifest is None and old is None and not scan.leftovers():
                return f"nothing is stored at {self.prefix} yet; the first write labels it"
            before = old["deployment"] if old is not None else ""
            if old is not None and before == self.deployment:
                return f"{self.prefix} already holds deployment '{before}'; nothing to do"
            self._check_writable()
            value = marker_value(self.deployment, self.prefix, _writer(), utc_now(), old or {})
            answer = self._client().txn(
                [cmp_mod(self.keys.marker, scan.marker["mod_revision"] if scan.marker else 0),
                 cmp_create(self.keys.lock, self._lock_rev)],
                [op_put(self.keys.marker, value)])
            if not answer["succeeded"]:
                raise StorageError(f"the marker of {self.prefix} on {self._where} changed meanwhile; nothing "
                                   "was changed; run again")
            self._snapshot = None
            shown = f"'{before}'" if before else "(unnamed)"
            return f"{self.prefix} held deployment {shown}; it is now deployment '{self.deployment}'"

    def history(self) -> list[dict]:
        """Stored versions, oldest first, as far back as etcd still keeps them.

        When the manifest was deleted, the history ends at its last version."""
        found: list[dict] = []
        answer = self._client().range(self.keys.manifest)
        read_at = answer["revision"]
        kv = answer["kvs"][0] if answer["kvs"] else self._last_manifest(self._scan(0))
        while kv is not None:
            entry = self._history_entry(kv)
            found.append(entry)
            if kv["mod_revision"] <= 1:
                break
            try:
                older = self._client().range(self.keys.manifest, revision=kv["mod_revision"] - 1)
            except EtcdCompacted:
                # This version may predate the compaction yet still be readable at the
                # revision we saw it at; label it with one that can be read back.
                try:
                    self._client().range(self.keys.manifest, revision=kv["mod_revision"])
                except EtcdCompacted:
                    entry["version"] = str(read_at)
                break
            read_at = kv["mod_revision"] - 1
            kv = older["kvs"][0] if older["kvs"] else None
        found.reverse()
        return found

    def read_version(self, version: str) -> dict:
        """The inventory as it was at etcd revision ``version`` (as listed by history())."""
        text = str(version).strip()
        if not text.isdigit() or int(text) < 1:
            raise StorageError(f"version {version!r} is not an etcd revision (a whole number); "
                               "list them with --history")
        try:
            inventory, _ = self._read(int(text))
        except EtcdCompacted:
            raise StorageError(
                f"version {text} of {self.prefix} on {self._where}: etcd has compacted that revision "
                "away; pick a newer version from --history") from None
        except EtcdFutureRevision:
            raise StorageError(f"version {text} of {self.prefix} on {self._where} does not exist yet; "
                               "list the versions with --history") from None
        if inventory is None:
            raise StorageError(f"no inventory was stored at {self.prefix} on {self._where} "
                               f"at revision {text}; list the versions with --history")
        return inventory

    def close(self) -> None:
        """Release a lock still held and close connections."""
        if self._lock.depth:
            self._lock.depth = 0
            self._release()
        if self.client is not None:
            self.client.close()

    # -- keys -------------------------------------------------------------

    @property
    def _where(self) -> str:
        return ",".join(self.endpoints)

    def _client(self) -> EtcdClient:
        if self.client is None:
            raise StorageError("the etcd backend was used before register()")
        return self.client

    # -- reading ----------------------------------------------------------

    def _read(self, revision: int, tolerant: bool = False) -> tuple[dict | None, Snapshot]:
        """The inventory and its snapshot at ``revision`` (0: now), from one consistent revision.

        ``tolerant``: a damaged or deleted current version gives a snapshot to write
        over (and no inventory) instead of an error."""
        for attempt in range(3):
            try:
                return self._read_once(revision, tolerant)
            except EtcdCompacted:
                # Only a "now" read can race a compaction; an explicit revision cannot be retried.
                if revision or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _scan(self, revision: int) -> PrefixScan:
        """Everything under the prefix, read at one revision (``revision``, or now)."""
        root = self.keys.root
        client = self._client()
        first = client.range(root, prefix_end(root), revision=revision, limit=PAGE_KEYS)
        at = revision or first["revision"]
        kvs = first["kvs"]
        if first["more"] and kvs:
            kvs = kvs + client.range_all(kvs[-1]["key"] + b"\0", prefix_end(root), revision=at, page=PAGE_KEYS)
        return classify(self.keys, kvs, at)

    def _read_once(self, revision: int, tolerant: bool) -> tuple[dict | None, Snapshot]:
        # One scan gives everything; the version is then decoded from it. In tolerant
        # mode each kind of damage ends the decoding early, with what is known so far
        # (the keys provably ours, the intact parts) kept in the snapshot.
        scan = self._scan(revision)
        if not revision:
            check_identity(scan, self.deployment, self._where, f"{self._manage} --adopt")
        snapshot = Snapshot(tags=dict(scan.tags), nested=scan.nested, owned=scan.recorded_keys())
        if scan.marker is not None:
            snapshot.marker_rev, snapshot.marker = scan.marker["mod_revision"], marker_of(scan.marker["value"])
        snapshot.generation = max((_generation(tag) for tag in scan.tags), default=0)
        kv = scan.manifest
        if kv is None:
            leftovers = scan.leftovers()
            if not leftovers:
                return None, snapshot
            last = self._last_manifest(scan)
            if not tolerant:
                raise StorageError(self._manifest_gone_message(len(leftovers), last))
            if last is None:
                return None, snapshot
            kv = last  # read what the deleted manifest pointed to, to know (and keep) its parts
        try:
            manifest = self._parse_manifest(kv, scan)
        except Damage:
            if not tolerant:
                raise
            snapshot.manifest_rev = scan.manifest["mod_revision"] if scan.manifest else 0
            return None, snapshot
        snapshot.generation = max(snapshot.generation, _whole(manifest.get("generation")))
        if kv is scan.manifest:
            snapshot.manifest_rev, snapshot.manifest = kv["mod_revision"], manifest
        values = {key: item["value"] for key, item in scan.data.items()}
        index_part = Part.from_row(manifest["index"], "index", "parts")
        snapshot.owned.update(index_part.keys(self.keys.data))
        try:
            index = self._decode(index_part, values, scan.revision)
            rows = self._index_parts(index, scan.revision)
        except Damage:
            if not tolerant:
                raise
            return None, snapshot
        decoded: dict[tuple[str, str], object] = {}
        damaged = False
        for part in rows:
            snapshot.owned.update(part.keys(self.keys.data))
            try:
                decoded[(part.kind, part.name)] = self._decode(part, values, scan.revision)
            except Damage:
                if not tolerant:
                    raise
                damaged = True
                continue
            snapshot.parts[(part.kind, part.name)] = part
        snapshot.owned &= set(scan.data)
        if damaged or kv is not scan.manifest:
            return None, snapshot
        snapshot.index_part = index_part
        try:
            return join_inventory(index, decoded), snapshot
        except (KeyError, TypeError):
            if not tolerant:
                raise Damage(self._index_damage(scan.revision)) from None
            snapshot.index_part = None  # its parts do not make an inventory: never "unchanged"
            return None, snapshot

    def _decode(self, part: Part, values: dict[bytes, bytes], revision: int) -> object:
        """A part's JSON, through the bounded reader: a part too deep to read is damage, like a changed one."""
        try:
            return loads(self._payload(part, values, revision), f"the inventory at {self.prefix} on {self._where} "
                         f"(revision {revision}): {part.kind} {part.name!r}")
        except Damage:
            raise
        except StorageError as exc:
            raise Damage(f"{one_line(exc)}; {self._repair}") from None

    def _index_parts(self, index: object, revision: int) -> list[Part]:
        try:
            return index_parts(index)
        except ValueError:
            raise Damage(self._index_damage(revision)) from None

    def _index_damage(self, revision: int) -> str:
        return (f"the inventory at {self.prefix} on {self._where} (revision {revision}): its index does not list "
                f"parts as this program writes them; it was changed outside this program; {self._repair}")

    def _parse_manifest(self, kv: dict, scan: PrefixScan) -> dict:
        shown = f"{self.keys.manifest.decode()} on {self._where} (revision {kv['mod_revision']})"
        try:
            manifest = loads(kv["value"], shown)
            fmt = manifest["format"]
            Part.from_row(manifest["index"], "index", "parts")
        except (StorageError, KeyError, TypeError, ValueError) as exc:
            if scan.marker is None:
                raise StorageError(
                    f"{self.keys.manifest.decode()} on {self._where} is not an inventory manifest; "
                    "it was changed by hand or belongs to another program; choose another prefix") from None
            # Not JSON, or nested past the bounded reader's limit: its line says which.
            damage = one_line(exc) if isinstance(exc, StorageError) else f"{shown} is damaged"
            raise Damage(f"{damage}; it was changed outside this program; {self._repair}") from None
        if fmt != FORMAT:
            raise StorageError(
                f"{self.keys.manifest.decode()} on {self._where} has format {fmt}, this program "
                f"reads format {FORMAT}; upgrade it")
        return manifest

    def _payload(self, part: Part, values: dict[bytes, bytes], revision: int) -> bytes:
        chunks = []
        for key in part.keys(self.keys.data):
            value = values.get(key)
            if value is None:
                raise Damage(
                    f"the inventory at {self.prefix} on {self._where} (revision {revision}) lacks "
                    f"key {key.decode('utf-8', 'replace')}; it was deleted outside this program; {self._repair}")
            chunks.append(value)
        payload = b"".join(chunks)
        if digest(payload) != part.digest:
            raise Damage(
                f"the inventory at {self.prefix} on {self._where} (revision {revision}): "
                f"{part.kind} {part.name!r} does not match its digest; it was changed outside this "
                f"program; {self._repair}")
        return payload

    def _last_manifest(self, scan: PrefixScan) -> dict | None:
        """The manifest as it was just before it was deleted, or None if etcd no longer has it.

        Every stored write left a revision at which the manifest existed (its tag
        record's, or its newest part's); from there a binary search over the
        revisions finds the last one at which it still existed."""
        low = max([rev for tag, rev in scan.tag_revisions.items() if scan.tags[tag] == STORED] +
                  [scan.data[key]["mod_revision"] for key in scan.leftovers()], default=0)
        if not low:
            return None
        client = self._client()

        def at(revision: int) -> dict | None:
            try:
                kvs = client.range(self.keys.manifest, revision=revision)["kvs"]
            except EtcdCompacted:
                return None
            return kvs[0] if kvs else None

        found = at(low)
        if found is None:
            return None
        high = scan.revision  # absent here
        while high - low > 1:
            middle = (low + high) // 2
            kv = at(middle)
            if kv is not None:
                low, found = middle, kv
            else:
                high = middle
        return found

    @property
    def _manage(self) -> str:
        """inventory-manage as the operator runs it, for this store."""
        return manage_command(self._config_dir)

    @property
    def _repair(self) -> str:
        return (f"restore an earlier version with '{self._manage} --restore VERSION' (versions: --history), "
                f"or replace it with '{self._manage} --import FILE --force'")

    def _manifest_gone_message(self, leftovers: int, last: dict | None) -> str:
        head = (f"the inventory at {self.prefix} on {self._where} has no manifest ({self.keys.manifest.decode()} "
                f"was deleted outside this program) but {leftovers} of its stored keys remain; nothing was read")
        replace = f"'{self._manage} --import FILE --force'"
        if last is None:
            return f"{head}; etcd no longer has its versions; replace it with {replace}"
        if not looks_like_manifest(last["value"]):
            return (f"{head}; put a version back with '{self._manage} --restore VERSION' "
                    f"(versions: --history; the last one, {last['mod_revision']}, is damaged), or replace it "
                    f"with {replace}")
        return (f"{head}; put its last version back with '{self._manage} --restore "
                f"{last['mod_revision']}', or replace it with {replace}")

    def _history_entry(self, kv: dict) -> dict:
        entry = {"version": str(kv["mod_revision"]), "time": "", "generation": None}
        manifest = loads_or_none(kv["value"])  # unreadable: listed, and read_version says why
        if isinstance(manifest, dict):
            entry.update({"time": manifest.get("time", ""), "generation": manifest.get("generation"),
                          "writer": manifest.get("writer", ""), "hosts": manifest.get("hosts"),
                          "groups": manifest.get("groups")})
            if "record" in manifest:
                entry.update(_record_fields(manifest["record"], f"the change record in {self.keys.manifest.decode()} "
                                                                f"at revision {kv['mod_revision']}"))
        return entry

    # -- writing ----------------------------------------------------------

    def _commit(self, base: Snapshot, inventory: dict) -> Snapshot:
        """Store ``inventory`` over ``base`` (see the module doc); the new snapshot."""
        skeleton, pieces = split_inventory(inventory)
        generation = base.generation + 1
        tag = f"{generation}-{secrets.token_hex(4)}"
        puts: list[tuple[bytes, bytes]] = []
        parts: dict[tuple[str, str], Part] = {}
        rows = []
        for kind, name, payload in pieces:
            part = self._place(base.parts.get((kind, name)), kind, name, tag, payload, puts)
            parts[(kind, name)] = part
            rows.append(part.to_json())
        index_payload = dumps(dict(skeleton, parts=rows))
        if base.index_part is not None and digest(index_payload) == base.index_part.digest:
            return self._tidy(base)  # nothing changed: write nothing but the leftovers' removal
        index_part = self._place(None, "index", "parts", tag, index_payload, puts)
        new = Snapshot(0, None, parts, index_part, generation=generation, marker=base.marker)
        new_keys = new.all_keys(self.keys.data)
        new.owned = set(new_keys)
        stale = sorted(base.owned - new_keys)
        records = {t: s for t, s in base.tags.items() if t != tag}
        used_tags = {self.keys.tag_of(k) for k in new_keys}
        new.tags = {t: STORED for t in records if t in used_tags}
        new.tags[tag] = STORED
        hosts = sum(1 for kind, _ in parts if kind == "host")
        manifest = {"format": FORMAT, "generation": generation, "tag": tag, "time": utc_now(),
                    "writer": _writer(),
                    "index": [index_part.tag, index_part.digest, index_part.chunks],
                    "hosts": hosts, "groups": len(parts) - hosts - (("meta", "_meta") in parts),
                    "bytes": sum(len(p) for _, _, p in pieces) + len(index_payload)}
        record = pending_change()
        if record is not None:
            # Who, from where, with what and why, kept with the version. Checked and clipped again:
            # a caller may build a record by hand, and a manifest must stay small.
            manifest["record"] = ChangeRecord.from_dict(record.to_dict(), "the change record of this write").to_dict()
        switch = [(self.keys.manifest, dumps(manifest)), (self.keys.tag_record(tag), _record(STORED))]
        switch += self._marker_puts(base, new)
        guard = self._guard(base)
        room = self.max_txn_ops - len(switch)
        if len(puts) + len(stale) + len(records) <= room and _size(puts + switch) <= BATCH_BYTES:
            # One transaction: nothing is left behind even if this run dies right after.
            staged = []
            commit_puts = puts + switch
            now_deleted = stale + [self.keys.tag_record(t) for t in records if t not in used_tags]
            later_deleted: list[bytes] = []
        else:
            # Tags whose keys are deleted after the switch get a record first (if they had
            # none: stored by an earlier release), so a run dying midway leaves only keys
            # the next write knows to remove.
            unrecorded = sorted({self.keys.tag_of(k) for k in stale} - set(records) - {None})
            staged = self._stage(puts, [(self.keys.tag_record(tag), _record(STAGING))] +
                                 [(self.keys.tag_record(t), _record(STORED)) for t in unrecorded])
            new.tags.update({t: STORED for t in unrecorded if t in used_tags})
            commit_puts = switch
            done = [self.keys.tag_record(t) for t in sorted(set(records) | set(unrecorded)) if t not in used_tags]
            now_deleted, later_deleted = [], stale + done
        success = [op_put(k, v) for k, v in commit_puts] + [op_delete(k) for k in now_deleted]
        try:
            answer = self._client().txn(guard, success, [op_range(self.keys.manifest), op_range(self.keys.lock),
                                                         op_range(self.keys.marker)])
        except EtcdError:
            answer = self._commit_outcome(tag)
        if answer["succeeded"]:
            new.manifest_rev = answer["revision"]
        else:
            new.manifest_rev = self._explain_failed_commit(answer, base, tag, staged)
        new.manifest = manifest
        new.marker_rev = answer["revision"] if new.marker is not base.marker else base.marker_rev
        self._delete(later_deleted)
        return new

    def _guard(self, base: Snapshot) -> list[dict]:
        """What a transaction over ``base`` compares: the manifest, the marker and our lock."""
        return [cmp_mod(self.keys.manifest, base.manifest_rev), cmp_create(self.keys.lock, self._lock_rev),
                cmp_mod(self.keys.marker, base.marker_rev)]

    def _marker_puts(self, base: Snapshot, new: Snapshot) -> list[tuple[bytes, bytes]]:
        """The marker to write with this version: only when none is stored yet."""
        if base.marker is not None:
            return []
        value = marker_value(self.deployment, self.prefix, _writer(), utc_now())
        new.marker = marker_of(value)
        return [(self.keys.marker, value)]

    def _tidy(self, base: Snapshot) -> Snapshot:
        """An unchanged write: remove what an interrupted write left, label an unlabelled store."""
        referenced = base.all_keys(self.keys.data)
        stale = sorted(base.owned - referenced)
        used_tags = {self.keys.tag_of(k) for k in referenced}
        done = [self.keys.tag_record(t) for t in sorted(base.tags) if t not in used_tags]
        new = Snapshot(base.manifest_rev, base.manifest, base.parts, base.index_part, owned=set(referenced),
                       tags={t: s for t, s in base.tags.items() if t in used_tags}, marker=base.marker,
                       marker_rev=base.marker_rev, nested=base.nested, generation=base.generation)
        marker = self._marker_puts(base, new)
        if not (stale or done or marker):
            return base
        deletes = stale + done
        first = deletes[:max(0, self.max_txn_ops - len(marker))]
        try:
            answer = self._client().txn(self._guard(base), [op_put(k, v) for k, v in marker] +
                                        [op_delete(k) for k in first])
        except EtcdError:
            return base  # the next write tries again
        if not answer["succeeded"]:
            return base  # another run wrote meanwhile; it or the next write cleans up
        if marker:
            new.marker_rev = answer["revision"]
        self._delete(deletes[len(first):])
        return new

    def _place(self, old: Part | None, kind: str, name: str, tag: str, payload: bytes,
               puts: list[tuple[bytes, bytes]]) -> Part:
        """The part for ``payload``: the stored one if unchanged, else a new one queued in ``puts``."""
        sha = digest(payload)
        if old is not None and old.digest == sha:
            return old
        pieces = chunked(payload)
        part = Part(kind, name, tag, sha, len(pieces))
        puts.extend(zip(part.keys(self.keys.data), pieces))
        return part

    def _stage(self, puts: list[tuple[bytes, bytes]], records: list[tuple[bytes, bytes]]) -> list[bytes]:
        """Put the new parts ahead of the switch, in as many transactions as it takes.

        The tag records go first (the new tag's as staging), so that if this run dies
        the next write knows these keys are its to remove."""
        staged: list[bytes] = []
        guard = [cmp_create(self.keys.lock, self._lock_rev)]
        for batch in _batches(records + puts, self.max_txn_ops, BATCH_BYTES):
            self._check_lock(staged)
            try:
                answer = self._client().txn(guard, [op_put(k, v) for k, v in batch], [op_range(self.keys.lock)])
            except EtcdError:
                self._discard(staged + [k for k, _ in batch])
                raise
            staged.extend(k for k, _ in batch)
            if not answer["succeeded"]:
                self._discard(staged)
                raise StorageError(self._lock_lost_message("was taken over while the new version was being stored"))
        return staged

    def _commit_outcome(self, tag: str) -> dict:
        """After the switch went unanswered: whether it landed (etcd may have applied it)."""
        try:
            current = self._client().range(self.keys.manifest)
        except EtcdError:
            # Unknown either way: keep the staged parts (a later write removes them if unused).
            raise StorageError(
                f"etcd at {self._where} did not confirm the switch of the inventory at {self.prefix}; "
                "it may or may not have been stored; check with --history once etcd answers") from None
        kvs = current["kvs"]
        if kvs and _manifest_tag(kvs[0]) == tag:
            return {"succeeded": True, "revision": kvs[0]["mod_revision"]}
        # The staged parts stay: etcd may still apply a request it did not answer, and then
        # they are needed. If it does not, a later write removes them.
        raise StorageError(f"etcd at {self._where} did not answer the switch of the inventory at "
                           f"{self.prefix}; the stored inventory is unchanged so far; run again")

    def _explain_failed_commit(self, answer: dict, base: Snapshot, tag: str, staged: list[bytes]) -> int:
        """The manifest revision if our switch did land after all; else clean up and raise."""
        manifest_kvs = answer["responses"][0]["kvs"] if answer["responses"] else []
        lock_kvs = answer["responses"][1]["kvs"] if len(answer["responses"]) > 1 else []
        current = manifest_kvs[0] if manifest_kvs else None
        if current is not None and _manifest_tag(current) == tag:
            return current["mod_revision"]  # a retried request had already switched it
        self._discard(staged)
        current_rev = current["mod_revision"] if current else 0
        if current_rev != base.manifest_rev:
            writer = ""
            info = loads_or_none(current["value"]) if current is not None else None
            if isinstance(info, dict):
                writer = f" by {info.get('writer', 'another run')} at {info.get('time', '?')}"
            raise StorageError(
                f"the inventory at {self.prefix} on {self._where} was changed{writer} (revision "
                f"{current_rev}) after this run read it (revision {base.manifest_rev}); nothing was "
                "written; run again (runs that take the lock never collide)")
        if not lock_kvs or lock_kvs[0]["create_revision"] != self._lock_rev:
            raise StorageError(self._lock_lost_message("was lost before the new version was switched in"))
        marker_kvs = answer["responses"][2]["kvs"] if len(answer["responses"]) > 2 else []
        if (marker_kvs[0]["mod_revision"] if marker_kvs else 0) != base.marker_rev:
            raise StorageError(
                f"the deployment marker {self.keys.marker.decode()} on {self._where} was changed after this run "
                "read it (by --adopt, or by another deployment's first write); nothing was written; run again")
        raise StorageError(f"etcd at {self._where} refused to switch the inventory at {self.prefix} "
                           "for no reason it gave; nothing was written; run again")

    def _discard(self, keys: list[bytes]) -> None:
        """Best-effort removal of staged keys nobody references; the next write mops up the rest."""
        with contextlib.suppress(EtcdError):
            self._delete(keys)

    def _delete(self, keys: list[bytes]) -> None:
        for batch in _batches([(k, b"") for k in keys], self.max_txn_ops, BATCH_BYTES):
            with contextlib.suppress(EtcdError):
                self._client().txn([], [op_delete(k) for k, _ in batch])

    # -- lock ---------------------------------------------------------------

    def _acquire(self) -> None:
        client = self._client()
        try:
            lease, ttl = client.lease_grant(self.lock_ttl)  # any user may in etcd 3.4; kept general
        except EtcdError as exc:
            if not write_denied(exc):
                raise
            self._read_only = True
            return
        keeper = LeaseKeeper(client.clone(), lease, ttl or self.lock_ttl)
        keeper.start()
        try:
            self._lock_rev = self._take_lock(client, lease, keeper)
        except BaseException as exc:
            keeper.stop()
            with contextlib.suppress(EtcdError):
                client.lease_revoke(lease, timeout=min(2.0, self.timeout))
            if write_denied(exc):
                self._read_only = True  # go on reading; _check_writable refuses any write
                return
            raise
        self._lease, self._keeper = lease, keeper

    def _take_lock(self, client: EtcdClient, lease: int, keeper: LeaseKeeper) -> int:
        """Put the lock key bound to ``lease`` once it is free; the key's create revision."""
        value = dumps({"holder": _writer(), "since": utc_now(), "lease": f"{lease:x}"})
        started = time.monotonic()
        while True:
            answer = client.txn([cmp_create(self.keys.lock, 0)], [op_put(self.keys.lock, value, lease)],
                                [op_range(self.keys.lock)])
            if answer["succeeded"]:
                return answer["revision"]
            kvs = answer["responses"][0]["kvs"] if answer["responses"] else []
            if kvs and kvs[0]["lease"] == lease:
                return kvs[0]["create_revision"]  # a retried request had taken it
            if keeper.lost:
                raise StorageError(f"the lease for the inventory lock {self.keys.lock.decode()} on "
                                   f"{self._where} {keeper.lost} while waiting; run again")
            waited = time.monotonic() - started
            if waited >= self.lock_timeout:
                raise StorageError(
                    f"the inventory lock {self.keys.lock.decode()} on {self._where} is held by "
                    f"{_holder(kvs)}; gave up after {waited:.0f} s (lock_timeout); wait for that run "
                    f"to finish (a dead run's lock expires within {self.lock_ttl} s)")
            # Jitter keeps waiting runs from polling in lockstep.
            time.sleep(min(random.uniform(0.02, 0.1), max(0.0, self.lock_timeout - waited)))

    def _release(self) -> None:
        keeper, lease = self._keeper, self._lease
        self._keeper, self._lease, self._lock_rev, self._read_only = None, 0, 0, False
        if keeper is not None:
            keeper.stop()
            keeper.client.close()
        if lease:
            # If this fails the lease simply expires after lock_ttl.
            with contextlib.suppress(EtcdError):
                self._client().lease_revoke(lease, timeout=min(2.0, self.timeout))

    def _check_writable(self) -> None:
        if not self._read_only:
            return
        # Not even allowed to read (a writer of another prefix, say): etcd's refusal of a read
        # names that, and its advice (check the prefix option) is the right one, not "read-only".
        self._client().range(self.keys.manifest, keys_only=True)
        raise AccessDenied(read_only_message(self._client().username, self.prefix, self._where))

    def _check_lock(self, staged: list[bytes] | None = None) -> None:
        if self._keeper is not None and self._keeper.lost:
            if staged:
                self._discard(staged)
            raise StorageError(self._lock_lost_message(f"{self._keeper.lost}"))

    def _lock_lost_message(self, what: str) -> str:
        return (f"the inventory lock {self.keys.lock.decode()} on {self._where} {what}; nothing was "
                "written; run again (raise lock_ttl if runs are slow)")




def _writer() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


def _record(state: str) -> bytes:
    """The value of a tag record."""
    return dumps({"state": state, "time": utc_now(), "writer": _writer()})


def _record_fields(raw, where: str) -> dict:
    """The history fields of a manifest's change record, checked and clipped as any record read back.

    A record that is not one (changed by hand) is named in its version's summary; it never
    stops the history, a load or a write, which do not use it."""
    try:
        record = ChangeRecord.from_dict(raw, where)
    except InventoryError as exc:
        return {"summary": f"unreadable: {exc}"}
    fields = record.to_dict()
    del fields["time"]  # the version's time is the manifest's, when the switch was made
    return fields


def _whole(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _generation(tag: str) -> int:
    """The generation a write tag (``<generation>-<random>``) was made for."""
    head = tag.split("-", 1)[0]
    return int(head) if head.isdigit() else 0


def _manifest_tag(kv: dict) -> str | None:
    manifest = loads_or_none(kv["value"])
    return manifest.get("tag") if isinstance(manifest, dict) else None


def _holder(kvs: list[dict]) -> str:
    if not kvs:
        return "another run"
    info = loads_or_none(kvs[0]["value"])
    try:
        return f"{info['holder']} since {info['since']}"
    except (KeyError, TypeError):
        return "another program"


def _size(items: list[tuple[bytes, bytes]]) -> int:
    return sum(len(k) + len(v) for k, v in items)


def _batches(items: list[tuple[bytes, bytes]], max_ops: int, max_bytes: int) -> Iterator[list[tuple[bytes, bytes]]]:
    batch: list[tuple[bytes, bytes]] = []
    size = 0
    for key, value in items:
        item_size = len(key) + len(value)
        if batch and (len(batch) >= max_ops or size + item_size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append((key, value))
        size += item_size
    if batch:
        yield batch


def _file_option(args: dict, name: str, config_dir: str) -> str | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    path = os.path.join(config_dir, os.path.expanduser(raw))
    if not os.path.isfile(path):
        raise StorageError(f"option {name}: file {path} does not exist")
    if not os.access(path, os.R_OK):
        raise StorageError(f"option {name}: file {path} is not readable by this user")
    return path
