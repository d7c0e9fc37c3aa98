"""Writing a deployment's inventory to etcd: the commit protocol of the etcd backend.

A write puts only the parts whose content changed, under a fresh tag that no
reader follows yet, then switches the manifest in one transaction that
compares the manifest's revision (and that our lock is still ours): readers
see the old version or the new one, never a mix, and a writer that lost the
race writes nothing visible. Parts that no manifest references any more are
deleted afterwards (or by the next write of any kind, changing or not, if the
writer died first). Small writes go in that one transaction; bigger ones
stage their parts first, each batch guarded by the lock, under tag records
that let the next write remove what a dead one left.

Every transaction compares the create revision of the lock key
(:class:`~.lock.EtcdLock`), so a run that lost its lock changes nothing.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Iterator

from ...accounting import ChangeRecord
from ...errors import AccessDenied, StorageError
from .access import read_only_message
from .client import EtcdClient, EtcdError, cmp_create, cmp_mod, op_delete, op_put, op_range
from .identity import check_nesting, deployments_around, marker_value
from .layout import STAGING, STORED, Keys, marker_of
from .lock import EtcdLock
from .parts import FORMAT, Part, chunked, digest, dumps, loads_or_none, split_inventory, utc_now, writer
from .reader import Reader, Snapshot

BATCH_BYTES = 1024 * 1024         # keys + values per transaction, below that limit


class Writer:
    """Stores versions of the deployment ``reader`` reads, under ``lock``.

    ``max_txn_ops``: operations per transaction (etcd's ``--max-txn-ops``)."""

    def __init__(self, client: EtcdClient, keys: Keys, reader: Reader, lock: EtcdLock, max_txn_ops: int = 128):
        self.client = client
        self.keys = keys
        self.prefix = keys.prefix
        self.reader = reader
        self.lock = lock
        self.max_txn_ops = max_txn_ops

    @property
    def where(self) -> str:
        return self.client.endpoints_text

    def write(self, base: Snapshot | None, inventory: dict, record: ChangeRecord | None = None) -> Snapshot:
        """Store ``inventory`` over ``base`` (None: the version stored now), with the lock held; the new snapshot.

        ``record`` (None: none) is kept in the new version's manifest.

        Refuses, writing nothing, with read-only credentials, when the lock was
        lost, when another run stored a version since ``base`` was read, and when
        the prefix holds or nests in another deployment."""
        self.check_writable()
        self._check_lock()
        if base is None:
            _, base = self.reader.read(0, tolerant=True)
        check_nesting(self.prefix, self.where, base.nested, deployments_around(self.client, self.prefix),
                      self.client.etcdctl())
        return self._commit(base, inventory, record)

    def adopt(self) -> tuple[str, bool]:
        """Label the deployment stored at the prefix with the reader's ``deployment`` name, with the lock held.

        Returns what was done and whether the marker changed."""
        deployment = self.reader.deployment
        scan = self.reader.scan(0)
        old = marker_of(scan.marker["value"]) if scan.marker is not None else None
        if scan.marker is not None and old is None:
            raise StorageError(f"{self.keys.marker.decode()} on {self.where} is not a deployment marker of "
                               "this program; choose another prefix")
        if scan.manifest is None and old is None and not scan.leftovers():
            return f"nothing is stored at {self.prefix} yet; the first write labels it", False
        before = old["deployment"] if old is not None else ""
        if old is not None and before == deployment:
            return f"{self.prefix} already holds deployment '{before}'; nothing to do", False
        self.check_writable()
        value = marker_value(deployment, self.prefix, writer(), utc_now(), old or {})
        answer = self.client.txn(
            [cmp_mod(self.keys.marker, scan.marker["mod_revision"] if scan.marker else 0),
             cmp_create(self.keys.lock, self.lock.revision)],
            [op_put(self.keys.marker, value)])
        if not answer["succeeded"]:
            raise StorageError(f"the marker of {self.prefix} on {self.where} changed meanwhile; nothing "
                               "was changed; run again")
        shown = f"'{before}'" if before else "(unnamed)"
        return f"{self.prefix} held deployment {shown}; it is now deployment '{deployment}'", True

    def check_writable(self) -> None:
        """Refuse (access denied) when the lock found the credentials read-only."""
        if not self.lock.read_only:
            return
        # Not even allowed to read (a writer of another prefix, say): etcd's refusal of a read
        # names that, and its advice (check the prefix option) is the right one, not "read-only".
        self.client.range(self.keys.manifest, keys_only=True)
        raise AccessDenied(read_only_message(self.client.username, self.prefix, self.where))

    def _commit(self, base: Snapshot, inventory: dict, record: ChangeRecord | None) -> Snapshot:
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
                    "writer": writer(),
                    "index": [index_part.tag, index_part.digest, index_part.chunks],
                    "hosts": hosts, "groups": len(parts) - hosts - (("meta", "_meta") in parts),
                    "bytes": sum(len(p) for _, _, p in pieces) + len(index_payload)}
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
            answer = self.client.txn(guard, success, [op_range(self.keys.manifest), op_range(self.keys.lock),
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
        return [cmp_mod(self.keys.manifest, base.manifest_rev), cmp_create(self.keys.lock, self.lock.revision),
                cmp_mod(self.keys.marker, base.marker_rev)]

    def _marker_puts(self, base: Snapshot, new: Snapshot) -> list[tuple[bytes, bytes]]:
        """The marker to write with this version: only when none is stored yet."""
        if base.marker is not None:
            return []
        value = marker_value(self.reader.deployment, self.prefix, writer(), utc_now())
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
            answer = self.client.txn(self._guard(base), [op_put(k, v) for k, v in marker] +
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
        guard = [cmp_create(self.keys.lock, self.lock.revision)]
        for batch in _batches(records + puts, self.max_txn_ops, BATCH_BYTES):
            self._check_lock(staged)
            try:
                answer = self.client.txn(guard, [op_put(k, v) for k, v in batch], [op_range(self.keys.lock)])
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
            current = self.client.range(self.keys.manifest)
        except EtcdError:
            # Unknown either way: keep the staged parts (a later write removes them if unused).
            raise StorageError(
                f"etcd at {self.where} did not confirm the switch of the inventory at {self.prefix}; "
                "it may or may not have been stored; check with --history once etcd answers") from None
        kvs = current["kvs"]
        if kvs and _manifest_tag(kvs[0]) == tag:
            return {"succeeded": True, "revision": kvs[0]["mod_revision"]}
        # The staged parts stay: etcd may still apply a request it did not answer, and then
        # they are needed. If it does not, a later write removes them.
        raise StorageError(f"etcd at {self.where} did not answer the switch of the inventory at "
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
                f"the inventory at {self.prefix} on {self.where} was changed{writer} (revision "
                f"{current_rev}) after this run read it (revision {base.manifest_rev}); nothing was "
                "written; run again (runs that take the lock never collide)")
        if not lock_kvs or lock_kvs[0]["create_revision"] != self.lock.revision:
            raise StorageError(self._lock_lost_message("was lost before the new version was switched in"))
        marker_kvs = answer["responses"][2]["kvs"] if len(answer["responses"]) > 2 else []
        if (marker_kvs[0]["mod_revision"] if marker_kvs else 0) != base.marker_rev:
            raise StorageError(
                f"the deployment marker {self.keys.marker.decode()} on {self.where} was changed after this run "
                "read it (by --adopt, or by another deployment's first write); nothing was written; run again")
        raise StorageError(f"etcd at {self.where} refused to switch the inventory at {self.prefix} "
                           "for no reason it gave; nothing was written; run again")

    def _discard(self, keys: list[bytes]) -> None:
        """Best-effort removal of staged keys nobody references; the next write mops up the rest."""
        with contextlib.suppress(EtcdError):
            self._delete(keys)

    def _delete(self, keys: list[bytes]) -> None:
        for batch in _batches([(k, b"") for k in keys], self.max_txn_ops, BATCH_BYTES):
            with contextlib.suppress(EtcdError):
                self.client.txn([], [op_delete(k) for k, _ in batch])

    def _check_lock(self, staged: list[bytes] | None = None) -> None:
        if self.lock.lost:
            if staged:
                self._discard(staged)
            raise StorageError(self._lock_lost_message(f"{self.lock.lost}"))

    def _lock_lost_message(self, what: str) -> str:
        return (f"the inventory lock {self.keys.lock.decode()} on {self.where} {what}; nothing was "
                "written; run again (raise lock_ttl if runs are slow)")


def _record(state: str) -> bytes:
    """The value of a tag record."""
    return dumps({"state": state, "time": utc_now(), "writer": writer()})


def _manifest_tag(kv: dict) -> str | None:
    manifest = loads_or_none(kv["value"])
    return manifest.get("tag") if isinstance(manifest, dict) else None


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

