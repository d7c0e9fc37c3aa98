"""A storage for ``--file`` paths not named ``openstack_inventory.json``.

It follows the storage plugin contract so the rest of the tool treats it like
any backend: ``load``/``write``, a re-entrant ``flock`` lock on
the file's folder, and the backups as history. A save replaces the file
atomically (temp file in the same folder, fsync, rename, fsync of the
folder) after copying the previous content to ``FILE.YYYYmmdd_HHMMSS.bak``, named
and dated by when that content was written;
the newest ``KEEP`` backups are kept. Change records are kept as the
filesystem backend keeps them, in ``FILE``'s sidecar (``inv.json`` ->
``inv.changes.json``; see :mod:`osa_inventory.backends.filesystem_records`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import time
from typing import ContextManager

from ..accounting import pending_change
from ..backends import filesystem_records as records
from ..errors import StorageError
from ..storage.safe_files import Reentrant, atomic_write, flock_wait

KEEP = 15
CURRENT = "current"
LOCK_TIMEOUT = 300.0


def _stamp(when: float) -> str:
    return _dt.datetime.fromtimestamp(when, _dt.timezone.utc).strftime("%Y%m%d_%H%M%S")


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Storage:
    """One inventory file at an arbitrary path; see the module doc."""

    def __init__(self) -> None:
        self.path = ""
        self._lock = Reentrant(lambda: flock_wait(os.path.dirname(self.path), LOCK_TIMEOUT,
                                                  "wait for it to finish"))

    def register(self, args: dict) -> None:
        path = args.get("file")
        if not path:
            raise StorageError("no file given")
        self.path = os.path.abspath(os.path.expanduser(path))
        if not os.path.isdir(os.path.dirname(self.path)):
            raise StorageError(f"folder {os.path.dirname(self.path)} of {self.path} does not exist")

    def describe(self) -> str:
        return f"file {self.path}"

    def _read(self) -> str | None:
        try:
            with open(self.path, encoding="utf-8") as fh:
                return fh.read()
        except FileNotFoundError:
            return None
        except UnicodeDecodeError:
            raise StorageError(f"{self.path} is not UTF-8 text; {self._hint()}") from None
        except OSError as exc:
            raise StorageError(f"{self.path}: cannot be read ({exc.strerror})") from None

    def _hint(self) -> str:
        backups = self._backups()
        if backups:
            return (f"it was left untouched; restore a backup with --restore {backups[-1][0]} "
                    "(see --history) or import a saved copy")
        return "it was left untouched; repair it by hand or import a saved copy with --import"

    def load(self) -> dict | None:
        text = self._read()
        if text is None:
            return None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise StorageError(f"{self.path} is not valid JSON ({exc}); {self._hint()}") from None
        if not isinstance(data, dict):
            raise StorageError(f"{self.path} does not hold a JSON object; {self._hint()}")
        return data

    def write(self, inventory: dict) -> None:
        text = json.dumps(inventory, indent=4, sort_keys=True)
        with self.lock():
            try:
                old = self._read()
            except StorageError:
                old = None
                with open(self.path, "rb") as fh:
                    old_bytes = fh.read()
                self._add_backup(old_bytes)  # keep even an unreadable file; it may be all there is
            else:
                if old == text:
                    return
                if old is not None:
                    self._add_backup(old.encode("utf-8"))
            mode = os.stat(self.path).st_mode & 0o7777 if os.path.exists(self.path) else 0o644
            data, written, record = text.encode("utf-8"), time.time(), pending_change()
            if record is not None:  # before the file is replaced: a crash leaves an orphan record, never a wrong one
                kept = [int(os.stat(p).st_mtime) for _, p in self._backups()]
                records.store(records.sidecar_of(self.path), self.path, record, records.key_of(data, written),
                              kept, KEEP, mode, None)
            atomic_write(self.path, data, mode, mtime=written)

    def lock(self) -> ContextManager[None]:
        """Exclusive across processes (``flock`` on the file's folder), re-entrant within this object."""
        return self._lock()

    # -- history: the backups, then the file itself ---------------------------

    def _backups(self) -> list[tuple[str, str]]:
        """``(version, path)`` of each backup, oldest first."""
        folder, base = os.path.split(self.path)
        pattern = re.compile(re.escape(base) + r"\.(\d{8}_\d{6}(?:-\d+)?)\.bak$")
        try:
            names = os.listdir(folder)
        except OSError:
            return []
        found = []
        for name in names:
            match = pattern.match(name)
            if match:
                version = match.group(1)
                stamp, _, n = version.partition("-")
                found.append(((stamp, int(n or 1)), version, os.path.join(folder, name)))
        found.sort()
        return [(version, path) for _, version, path in found]

    def _backup_version(self, written: float) -> str:
        """The name a backup of a version written at ``written`` gets: its time, ``-2``... if taken."""
        existing = {v for v, _ in self._backups()}
        version = _stamp(written)
        n = 1
        while version in existing:
            n += 1
            version = f"{_stamp(written)}-{n}"
        return version

    def _add_backup(self, data: bytes) -> None:
        # Named and dated by when the file was written, so a version keeps its name and time
        # in --history whether it is the file itself or a backup.
        st = os.stat(self.path)
        backup = f"{self.path}.{self._backup_version(st.st_mtime)}.bak"
        atomic_write(backup, data, st.st_mode & 0o7777)
        os.utime(backup, (st.st_mtime, st.st_mtime))
        for _, old in self._backups()[:-KEEP]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(old)

    def history(self) -> list[dict]:
        """The backups, then the file itself; each named by when it was written, as its backup will be."""
        versions = []
        for v, path in self._backups():
            written, key = records.file_key(path)
            versions.append(({"version": v, "time": _iso(written)}, key))
        if os.path.exists(self.path):
            written, key = records.file_key(self.path)
            versions.append(({"version": self._backup_version(written), "time": _iso(written)}, key))
        records.attach(versions, records.read(records.sidecar_of(self.path), self.path, records.size_limit(KEEP)))
        return [entry for entry, _ in versions]

    def read_version(self, version: str) -> dict:
        if version == CURRENT or (os.path.exists(self.path)
                                  and version == self._backup_version(os.stat(self.path).st_mtime)):
            data = self.load()
            if data is None:
                raise StorageError(f"{self.path} does not exist")
            return data
        for v, path in self._backups():
            if v == version:
                try:
                    with open(path, encoding="utf-8") as fh:
                        return json.loads(fh.read())
                except (ValueError, UnicodeDecodeError):
                    raise StorageError(f"backup {path} is not valid JSON; pick another version") from None
        raise StorageError(f"no version {version!r} of {self.path}; list them with --history")
