"""What lies under a deployment's etcd prefix, read once and sorted by what a write may do with it.

Under the prefix ``P`` this program keeps ``P/manifest``, ``P/deployment`` (the marker
naming the deployment), ``P/lock``, ``P/tags/<tag>`` (one record per write tag that
has parts stored) and the parts ``P/data/<tag>/...``. A write deletes only keys it
can prove are its own: parts the current index references, and parts under a tag
that has a record. Anything else under the prefix (an operator's key, another
deployment wrongly nested inside) is never deleted; another deployment found
inside is reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

MARKER_KIND = "osa-inventory-deployment"
STAGING, STORED = "staging", "stored"


@dataclass(frozen=True)
class Keys:
    """The keys of the deployment at ``prefix`` (no trailing slash)."""

    prefix: str

    def _key(self, name: str) -> bytes:
        return f"{self.prefix}/{name}".encode()

    @property
    def root(self) -> bytes:
        return self._key("")

    @property
    def manifest(self) -> bytes:
        return self._key("manifest")

    @property
    def marker(self) -> bytes:
        return self._key("deployment")

    @property
    def lock(self) -> bytes:
        return self._key("lock")

    @property
    def data(self) -> bytes:
        return self._key("data/")

    @property
    def tags(self) -> bytes:
        return self._key("tags/")

    def tag_record(self, tag: str) -> bytes:
        return self.tags + tag.encode()

    def tag_of(self, key: bytes) -> str | None:
        """The write tag of a data key (``P/data/<tag>/...``), or None for any other key."""
        if not key.startswith(self.data):
            return None
        tag, slash, _ = key[len(self.data):].partition(b"/")
        return tag.decode("utf-8", "replace") if slash else None


def ancestors(prefix: str) -> list[str]:
    """Every prefix that would contain ``prefix``: ``/a/b/c`` -> ``/a/b``, ``/a``, ``""``."""
    out = []
    head = prefix
    while "/" in head:
        head = head.rsplit("/", 1)[0]
        out.append(head)
    return out


def _json(value: bytes):
    try:
        return json.loads(value)
    except ValueError:
        return None


def marker_of(value: bytes) -> dict | None:
    """The marker ``value`` holds, or None if it is not one of this program's markers."""
    data = _json(value)
    if isinstance(data, dict) and data.get("kind") == MARKER_KIND and isinstance(data.get("deployment"), str):
        return data
    return None


def looks_like_manifest(value: bytes) -> bool:
    """Whether ``value`` is an inventory manifest of this program (any format)."""
    data = _json(value)
    return isinstance(data, dict) and "format" in data and "index" in data and "generation" in data


def other_deployment_at(key: bytes, value: bytes) -> str | None:
    """The prefix of another deployment whose manifest or marker ``key`` is, else None."""
    text = key.decode("utf-8", "replace")
    if text.endswith("/deployment") and marker_of(value) is not None:
        return text[:-len("/deployment")]
    if text.endswith("/manifest") and looks_like_manifest(value):
        return text[:-len("/manifest")]
    return None


@dataclass
class PrefixScan:
    """One consistent read of everything under a prefix, sorted."""

    keys: Keys
    revision: int
    manifest: dict | None = None            # the kv of P/manifest
    marker: dict | None = None              # the kv of P/deployment
    tags: dict[str, str] = field(default_factory=dict)      # recorded tag -> state
    tag_revisions: dict[str, int] = field(default_factory=dict)  # recorded tag -> its record's revision
    data: dict[bytes, dict] = field(default_factory=dict)   # data key -> kv
    nested: list[str] = field(default_factory=list)         # prefixes of other deployments inside

    def recorded_keys(self) -> set[bytes]:
        """Data keys under a tag that has a record: keys this program wrote."""
        return {key for key in self.data if self.keys.tag_of(key) in self.tags}

    def leftovers(self) -> list[bytes]:
        """Data keys that belong to a stored version (not to a write that never switched)."""
        return sorted(key for key in self.data if self.tags.get(self.keys.tag_of(key) or "") != STAGING)


def classify(keys: Keys, kvs: list[dict], revision: int) -> PrefixScan:
    """Sort the kvs of one range read over ``keys.root``."""
    scan = PrefixScan(keys, revision)
    for kv in kvs:
        key = kv["key"]
        if key == keys.manifest:
            scan.manifest = kv
        elif key == keys.marker:
            scan.marker = kv
        elif key == keys.lock:
            continue
        elif key.startswith(keys.tags) and b"/" not in key[len(keys.tags):]:
            record = _json(kv["value"])
            state = record.get("state") if isinstance(record, dict) else None
            tag = key[len(keys.tags):].decode("utf-8", "replace")
            scan.tags[tag] = state if state == STORED else STAGING
            scan.tag_revisions[tag] = kv["mod_revision"]
        else:
            other = other_deployment_at(key, kv["value"])
            if other is not None and other != keys.prefix:
                scan.nested.append(other)
            elif key.startswith(keys.data):
                scan.data[key] = kv
    # Keys of a deployment nested inside are its own, never ours.
    for other in scan.nested:
        inside = (other + "/").encode()
        scan.data = {k: v for k, v in scan.data.items() if not k.startswith(inside)}
    scan.nested = sorted(set(scan.nested))
    return scan
