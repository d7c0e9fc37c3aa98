"""The local cache of a backend on a remote service: the last inventory loaded or written, with the
revision it was read at and whatever ids the backend needs to find it again.

It is only ever trusted when its revision equals the revision marker stored in
the service, so a stale, foreign or damaged cache costs a full load, never a
wrong answer. One file per key (the service's URL and whatever names the
inventory there), mode 0600, replaced atomically. The Craton and NetBox
backends use it (``craton/cache.py``, ``netbox/store.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from typing import Any

from ..bounded import MAX_INVENTORY_BYTES, parse_json, read_file
from ..errors import InventoryError

LOG = logging.getLogger(__name__)
FORMAT = 1


class ServiceCache:
    """One cache file of ``service`` (e.g. ``Craton``); ``read`` never raises, ``save`` logs and gives up on
    I/O errors. ``fields`` names the record's entries besides the inventory that must be dicts."""

    fields: tuple[str, ...] = ()

    def __init__(self, service: str, folder: str, key: tuple[str, ...], enabled: bool = True):
        self.service = service
        self.folder = folder
        self.key = list(key)
        self.enabled = enabled
        digest = hashlib.sha256("\0".join(key).encode("utf-8")).hexdigest()[:20]
        self.path = os.path.join(folder, f".{service.lower()}-inventory-cache-{digest}.json")

    def read(self) -> dict | None:
        """The cached record, or None when absent, disabled, damaged or for another target."""
        if not self.enabled:
            return None
        try:
            # Through the bounded reader: a FIFO, a link, a huge or deeply nested file planted in the
            # cache's place costs a full load, never a hang or a crash.
            data = parse_json(read_file(self.path, limit=MAX_INVENTORY_BYTES, follow_links=False), shown=self.path)
        except FileNotFoundError:
            return None
        except InventoryError as exc:
            LOG.info("ignoring unreadable %s cache: %s", self.service, exc)
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("key") != self.key:
            return None
        if not all(isinstance(data.get(name), dict) for name in ("inventory", *self.fields)):
            return None
        return data

    def save(self, *, revision: str, inventory: dict, **ids: Any) -> None:
        """Replace the cache (temp file, fsync, rename); a failure only costs a later full load."""
        if not self.enabled:
            return
        record = {"format": FORMAT, "key": self.key, **ids, "revision": revision, "inventory": inventory}
        try:
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.service.lower()}-cache.", suffix=".tmp", dir=self.folder)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    os.fchmod(fh.fileno(), 0o600)
                    json.dump(record, fh, separators=(",", ":"))
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            LOG.warning("cannot write the %s cache %s (%s); the next run will do a full load",
                        self.service, self.path, exc.strerror or exc)

    def drop(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)
