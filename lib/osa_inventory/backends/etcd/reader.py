"""Reading a deployment's inventory from etcd: the read protocol of the etcd backend.

Everything under the prefix is read at one revision (:meth:`Reader.scan`), so a
version is always whole, and then decoded: the manifest, its index and every
part it lists, each checked against its digest. What is read is kept as a
:class:`Snapshot`, which a write (:mod:`.writer`) compares against and builds
on. A damaged version (a part changed or deleted outside this program, an
index that does not list parts) is :class:`Damage`, one line naming what and
how to restore; a manifest deleted while its parts remain is found again in
etcd's history. ``history()`` lists the manifest's revisions, and
``read_version()`` reads the inventory at any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...accounting import ChangeRecord
from ...errors import InventoryError, StorageError, one_line
from ...resources import manage_command
from .client import EtcdClient, EtcdCompacted, EtcdFutureRevision, prefix_end
from .identity import check_identity
from .layout import STORED, Keys, PrefixScan, classify, looks_like_manifest, marker_of
from .parts import FORMAT, Part, digest, index_parts, join_inventory, loads, loads_or_none

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


class Reader:
    """Reads the deployment at ``keys.prefix`` (named ``deployment``) through ``client``.

    ``config_dir`` is the one the run was given: the inventory-manage
    commands of the advice name it, so they reach this store as printed.
    """

    def __init__(self, client: EtcdClient, keys: Keys, deployment: str, config_dir: str | None = None):
        self.client = client
        self.keys = keys
        self.prefix = keys.prefix
        self.deployment = deployment
        self.config_dir = config_dir

    @property
    def where(self) -> str:
        return self.client.endpoints_text

    def history(self) -> list[dict]:
        """Stored versions, oldest first, as far back as etcd still keeps them.

        When the manifest was deleted, the history ends at its last version."""
        found: list[dict] = []
        answer = self.client.range(self.keys.manifest)
        read_at = answer["revision"]
        kv = answer["kvs"][0] if answer["kvs"] else self.last_manifest(self.scan(0))
        while kv is not None:
            entry = self._history_entry(kv)
            found.append(entry)
            if kv["mod_revision"] <= 1:
                break
            try:
                older = self.client.range(self.keys.manifest, revision=kv["mod_revision"] - 1)
            except EtcdCompacted:
                # This version may predate the compaction yet still be readable at the
                # revision we saw it at; label it with one that can be read back.
                try:
                    self.client.range(self.keys.manifest, revision=kv["mod_revision"])
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
            inventory, _ = self.read(int(text))
        except EtcdCompacted:
            raise StorageError(
                f"version {text} of {self.prefix} on {self.where}: etcd has compacted that revision "
                "away; pick a newer version from --history") from None
        except EtcdFutureRevision:
            raise StorageError(f"version {text} of {self.prefix} on {self.where} does not exist yet; "
                               "list the versions with --history") from None
        if inventory is None:
            raise StorageError(f"no inventory was stored at {self.prefix} on {self.where} "
                               f"at revision {text}; list the versions with --history")
        return inventory

    def read(self, revision: int, tolerant: bool = False) -> tuple[dict | None, Snapshot]:
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

    def scan(self, revision: int) -> PrefixScan:
        """Everything under the prefix, read at one revision (``revision``, or now)."""
        root = self.keys.root
        client = self.client
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
        scan = self.scan(revision)
        if not revision:
            check_identity(scan, self.deployment, self.where, f"{self.manage} --adopt")
        snapshot = Snapshot(tags=dict(scan.tags), nested=scan.nested, owned=scan.recorded_keys())
        if scan.marker is not None:
            snapshot.marker_rev, snapshot.marker = scan.marker["mod_revision"], marker_of(scan.marker["value"])
        snapshot.generation = max((_generation(tag) for tag in scan.tags), default=0)
        kv = scan.manifest
        if kv is None:
            leftovers = scan.leftovers()
            if not leftovers:
                return None, snapshot
            last = self.last_manifest(scan)
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
            return loads(self._payload(part, values, revision), f"the inventory at {self.prefix} on {self.where} "
                         f"(revision {revision}): {part.kind} {part.name!r}")
        except Damage:
            raise
        except StorageError as exc:
            raise Damage(f"{one_line(exc)}; {self.repair}") from None

    def _index_parts(self, index: object, revision: int) -> list[Part]:
        try:
            return index_parts(index)
        except ValueError:
            raise Damage(self._index_damage(revision)) from None

    def _index_damage(self, revision: int) -> str:
        return (f"the inventory at {self.prefix} on {self.where} (revision {revision}): its index does not list "
                f"parts as this program writes them; it was changed outside this program; {self.repair}")

    def _parse_manifest(self, kv: dict, scan: PrefixScan) -> dict:
        shown = f"{self.keys.manifest.decode()} on {self.where} (revision {kv['mod_revision']})"
        try:
            manifest = loads(kv["value"], shown)
            fmt = manifest["format"]
            Part.from_row(manifest["index"], "index", "parts")
        except (StorageError, KeyError, TypeError, ValueError) as exc:
            if scan.marker is None:
                raise StorageError(
                    f"{self.keys.manifest.decode()} on {self.where} is not an inventory manifest; "
                    "it was changed by hand or belongs to another program; choose another prefix") from None
            # Not JSON, or nested past the bounded reader's limit: its line says which.
            damage = one_line(exc) if isinstance(exc, StorageError) else f"{shown} is damaged"
            raise Damage(f"{damage}; it was changed outside this program; {self.repair}") from None
        if fmt != FORMAT:
            raise StorageError(
                f"{self.keys.manifest.decode()} on {self.where} has format {fmt}, this program "
                f"reads format {FORMAT}; upgrade it")
        return manifest

    def _payload(self, part: Part, values: dict[bytes, bytes], revision: int) -> bytes:
        chunks = []
        for key in part.keys(self.keys.data):
            value = values.get(key)
            if value is None:
                raise Damage(
                    f"the inventory at {self.prefix} on {self.where} (revision {revision}) lacks "
                    f"key {key.decode('utf-8', 'replace')}; it was deleted outside this program; {self.repair}")
            chunks.append(value)
        payload = b"".join(chunks)
        if digest(payload) != part.digest:
            raise Damage(
                f"the inventory at {self.prefix} on {self.where} (revision {revision}): "
                f"{part.kind} {part.name!r} does not match its digest; it was changed outside this "
                f"program; {self.repair}")
        return payload

    def last_manifest(self, scan: PrefixScan) -> dict | None:
        """The manifest as it was just before it was deleted, or None if etcd no longer has it.

        Every stored write left a revision at which the manifest existed (its tag
        record's, or its newest part's); from there a binary search over the
        revisions finds the last one at which it still existed."""
        low = max([rev for tag, rev in scan.tag_revisions.items() if scan.tags[tag] == STORED] +
                  [scan.data[key]["mod_revision"] for key in scan.leftovers()], default=0)
        if not low:
            return None
        client = self.client

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
    def manage(self) -> str:
        """inventory-manage as the operator runs it, for this store."""
        return manage_command(self.config_dir)

    @property
    def repair(self) -> str:
        return (f"restore an earlier version with '{self.manage} --restore VERSION' (versions: --history), "
                f"or replace it with '{self.manage} --import FILE --force'")

    def _manifest_gone_message(self, leftovers: int, last: dict | None) -> str:
        head = (f"the inventory at {self.prefix} on {self.where} has no manifest ({self.keys.manifest.decode()} "
                f"was deleted outside this program) but {leftovers} of its stored keys remain; nothing was read")
        replace = f"'{self.manage} --import FILE --force'"
        if last is None:
            return f"{head}; etcd no longer has its versions; replace it with {replace}"
        if not looks_like_manifest(last["value"]):
            return (f"{head}; put a version back with '{self.manage} --restore VERSION' "
                    f"(versions: --history; the last one, {last['mod_revision']}, is damaged), or replace it "
                    f"with {replace}")
        return (f"{head}; put its last version back with '{self.manage} --restore "
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

