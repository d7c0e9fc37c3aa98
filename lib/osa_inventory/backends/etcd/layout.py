"""What lies under a deployment's etcd prefix, read once and sorted by what a write may do with it.

Under the prefix ``P`` (all values JSON, UTF-8):

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
    this program wrote.
``P/lock``
    Held by the run that is generating, attached to a lease that dies with it
    (:mod:`.lock`).

A write deletes only keys it can prove are its own: parts the current index
references, and parts under a tag that has a record. Anything else under the
prefix (an operator's key, another deployment wrongly nested inside) is never
deleted; another deployment found inside is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .parts import loads_or_none

MARKER_KIND = "osa-inventory-deployment"
STAGING, STORED = "staging", "stored"


class Keys:
    """The keys of the deployment at ``prefix`` (no trailing slash), computed once."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        base = f"{prefix}/".encode()
        self.root = base
        self.manifest = base + b"manifest"
        self.marker = base + b"deployment"
        self.lock = base + b"lock"
        self.data = base + b"data/"
        self.tags = base + b"tags/"
        self._data_len = len(self.data)

    def tag_record(self, tag: str) -> bytes:
        return self.tags + tag.encode()

    def tag_of(self, key: bytes) -> str | None:
        """The write tag of a data key (``P/data/<tag>/...``), or None for any other key."""
        if not key.startswith(self.data):
            return None
        end = key.find(b"/", self._data_len)
        return key[self._data_len:end].decode("utf-8", "replace") if end > 0 else None


def ancestors(prefix: str) -> list[str]:
    """Every prefix that would contain ``prefix``: ``/a/b/c`` -> ``/a/b``, ``/a``, ``""``."""
    out = []
    head = prefix
    while "/" in head:
        head = head.rsplit("/", 1)[0]
        out.append(head)
    return out


def marker_of(value: bytes) -> dict | None:
    """The marker ``value`` holds, or None if it is not one of this program's markers."""
    data = loads_or_none(value)
    if isinstance(data, dict) and data.get("kind") == MARKER_KIND and isinstance(data.get("deployment"), str):
        return data
    return None


def looks_like_manifest(value: bytes) -> bool:
    """Whether ``value`` is an inventory manifest of this program (any format)."""
    data = loads_or_none(value)
    return isinstance(data, dict) and "format" in data and "index" in data and "generation" in data


def other_deployment_at(key: bytes, value: bytes) -> str | None:
    """The prefix of another deployment whose manifest or marker ``key`` is, else None."""
    if key.endswith(b"/deployment") and marker_of(value) is not None:
        return key[:-len(b"/deployment")].decode("utf-8", "replace")
    if key.endswith(b"/manifest") and looks_like_manifest(value):
        return key[:-len(b"/manifest")].decode("utf-8", "replace")
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
    data_tags: dict[bytes, str | None] = field(default_factory=dict)  # data key -> its write tag
    nested: list[str] = field(default_factory=list)         # prefixes of other deployments inside

    def recorded_keys(self) -> set[bytes]:
        """Data keys under a tag that has a record: keys this program wrote."""
        return {key for key, tag in self.data_tags.items() if tag in self.tags}

    def leftovers(self) -> list[bytes]:
        """Data keys that belong to a stored version (not to a write that never switched)."""
        return sorted(key for key, tag in self.data_tags.items() if self.tags.get(tag or "") != STAGING)


def classify(keys: Keys, kvs: list[dict], revision: int) -> PrefixScan:
    """Sort the kvs of one range read over ``keys.root``."""
    scan = PrefixScan(keys, revision)
    data, data_tags, cut = scan.data, scan.data_tags, len(keys.data)
    suspects = (b"/deployment", b"/manifest")
    for kv in kvs:
        key = kv["key"]
        if key.startswith(keys.data) and not key.endswith(suspects):
            # The bulk of the keys, the parts: kept fast (thousands per load).
            data[key] = kv
            end = key.find(b"/", cut)
            data_tags[key] = key[cut:end].decode("utf-8", "replace") if end > 0 else None
        elif key == keys.manifest:
            scan.manifest = kv
        elif key == keys.marker:
            scan.marker = kv
        elif key == keys.lock:
            continue
        elif key.startswith(keys.tags) and b"/" not in key[len(keys.tags):]:
            record = loads_or_none(kv["value"])
            state = record.get("state") if isinstance(record, dict) else None
            tag = key[len(keys.tags):].decode("utf-8", "replace")
            scan.tags[tag] = state if state == STORED else STAGING
            scan.tag_revisions[tag] = kv["mod_revision"]
        else:
            other = other_deployment_at(key, kv["value"])
            if other is not None and other != keys.prefix:
                scan.nested.append(other)
            elif key.startswith(keys.data):
                data[key] = kv
                data_tags[key] = keys.tag_of(key)
    # Keys of a deployment nested inside are its own, never ours.
    for other in scan.nested:
        inside = (other + "/").encode()
        scan.data = {k: v for k, v in scan.data.items() if not k.startswith(inside)}
        scan.data_tags = {k: v for k, v in scan.data_tags.items() if k in scan.data}
    scan.nested = sorted(set(scan.nested))
    return scan
