"""The inventory cut into parts, and put back together: the pure half of the etcd layout.

Each host's hostvars, each other top-level entry and the rest of ``_meta`` become one
part, stored as compact JSON that keeps key order (so a load gives back the very same
dict) under a content digest; a part too big for one etcd value is cut into chunks.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import socket
from dataclasses import dataclass
from typing import Any

from ...bounded import parse_json
from ...errors import InventoryError, StorageError

FORMAT = 1
CHUNK_BYTES = 512 * 1024          # etcd refuses requests over 1.5 MiB by default
DIGEST_CHARS = 32


def dumps(value) -> bytes:
    """Compact JSON that keeps key order, so a load gives back the very same dict."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def loads(value: bytes, shown: str, error: type[InventoryError] = StorageError) -> Any:
    """A stored value read back as JSON through the bounded reader: too deep or not JSON is ``error``,
    one line naming ``shown``."""
    return parse_json(value, shown=shown, error=error)


def loads_or_none(value: bytes) -> Any:
    """A stored value as JSON, or None when it is not JSON this program could have written."""
    try:
        return loads(value, "an etcd value")
    except StorageError:
        return None


def digest(payload: bytes) -> str:
    """The content digest kept in the index for each part."""
    return hashlib.sha256(payload).hexdigest()[:DIGEST_CHARS]


def utc_now() -> str:
    """Now as YYYY-mm-ddTHH:MM:SSZ."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def writer() -> str:
    """This run as what it stores names it (the lock's holder, a manifest's writer): host and process."""
    return f"{socket.gethostname()} pid {os.getpid()}"


@dataclass(frozen=True)
class Part:
    """One stored piece of the inventory and where its chunks live."""

    kind: str
    name: str
    tag: str
    digest: str
    chunks: int

    def keys(self, data_prefix: bytes) -> list[bytes]:
        """The etcd key of each chunk, chunk 0 first."""
        base = data_prefix + self.tag.encode() + b"/"
        name = self.name.encode("utf-8")
        return [base + (self.kind if i == 0 else f"{self.kind}.{i}").encode() + b"/" + name
                for i in range(self.chunks)]

    def to_json(self) -> list:
        """The part as an index row."""
        return [self.kind, self.name, self.tag, self.digest, self.chunks]

    @classmethod
    def from_row(cls, row: Any, kind: str | None = None, name: str | None = None) -> Part:
        """The part an index row (or, with ``kind`` and ``name``, a manifest's index field) names.

        Raises ValueError for anything this program could not have written."""
        fields = ([kind, name] if kind is not None else []) + (list(row) if isinstance(row, list) else [])
        if len(fields) != 5 or not all(isinstance(f, str) for f in fields[:4]) \
                or not isinstance(fields[4], int) or isinstance(fields[4], bool) or fields[4] < 1:
            raise ValueError(f"not a part reference: {str(row)[:80]}")
        return cls(*fields)


def index_parts(index: Any) -> list[Part]:
    """The parts a decoded index lists, checked (ValueError for an index this program could not have written)."""
    if not isinstance(index, dict) or not isinstance(index.get("parts"), list) \
            or not isinstance(index.get("top"), list):
        raise ValueError("not an index of parts")
    return [Part.from_row(row) for row in index["parts"]]


def chunked(payload: bytes) -> list[bytes]:
    """``payload`` cut into values etcd accepts (an empty payload is one empty chunk)."""
    return [payload[i:i + CHUNK_BYTES] for i in range(0, len(payload), CHUNK_BYTES)] or [b""]


def split_inventory(inventory: dict) -> tuple[dict, list[tuple[str, str, bytes]]]:
    """The index skeleton (order of keys) and the (kind, name, payload) of every part."""
    pieces: list[tuple[str, str, bytes]] = []
    meta_order = None
    for key, value in inventory.items():
        if not isinstance(key, str):
            raise StorageError(f"inventory key {key!r} is not a string; it cannot be stored as JSON")
        meta = value if key == "_meta" and isinstance(value, dict) else None
        if meta is not None and isinstance(meta.get("hostvars"), dict):
            meta_order = list(meta)
            for host, hostvars in meta["hostvars"].items():
                pieces.append(("host", str(host), dumps(hostvars)))
            rest = {k: v for k, v in meta.items() if k != "hostvars"}
            if rest:
                pieces.append(("meta", "_meta", dumps(rest)))
        else:
            pieces.append(("group", key, dumps(value)))
    return {"format": FORMAT, "top": list(inventory), "meta_order": meta_order}, pieces


def join_inventory(index: dict, values: dict[tuple[str, str], object]) -> dict:
    """The inventory rebuilt from the index and each part's decoded value."""
    inventory: dict = {}
    meta_order = index.get("meta_order")
    for key in index["top"]:
        if key == "_meta" and meta_order is not None:
            rest = values.get(("meta", "_meta"), {})
            meta: dict = {}
            for mkey in meta_order:
                if mkey == "hostvars":
                    meta["hostvars"] = {name: value for (kind, name), value in values.items() if kind == "host"}
                else:
                    meta[mkey] = rest[mkey]
            inventory[key] = meta
        else:
            inventory[key] = values[("group", key)]
    return inventory
