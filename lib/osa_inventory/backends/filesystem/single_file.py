"""A storage for ``--file`` paths not named ``openstack_inventory.json``.

It follows the storage plugin contract so the rest of the tool treats it like
any backend: ``load``/``write``, a re-entrant ``flock`` lock on
the file's folder, and the backups as history. A save replaces the file
atomically (temp file in the same folder, fsync, rename, fsync of the
folder) after copying the previous content to ``FILE.YYYYmmdd_HHMMSS.bak``, named
and dated by when that content was written (a copy an interrupted save
already made is not made twice); the newest ``KEEP`` backups are kept. Change
records are kept as the filesystem backend keeps them, in ``FILE``'s sidecar
(``inv.json`` -> ``inv.changes.json``; see
:mod:`.records`).

Every file is handled as the filesystem backend handles its own
(:mod:`osa_inventory.storage.store_files`): named relative to the open
folder, never reached through a symbolic link (``FILE`` itself may not be
one: name the file), used only when root or the current user owns it and
nobody else may write it, and read bounded.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import shlex
import stat
import time
from typing import ContextManager, Iterator

from ...accounting import pending_change
from ...bounded import MAX_INVENTORY_BYTES, describe_kind, parse_json
from ...errors import StorageError
from ...storage.safe_files import Reentrant
from ...storage.store_files import DamagedFile, Folder
from . import records

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
        self.dir = ""
        self.name = ""
        self._lock = Reentrant(self._locked)
        self._folder: Folder | None = None

    def register(self, args: dict) -> None:
        path = args.get("file")
        if not path:
            raise StorageError("no file given")
        self.path = os.path.abspath(os.path.expanduser(path))
        self.dir, self.name = os.path.split(self.path)
        if not os.path.isdir(self.dir):
            raise StorageError(f"folder {self.dir} of {self.path} does not exist")
        # Said in the words of -f here; reading and writing check again, through the file they get.
        with contextlib.suppress(FileNotFoundError):
            st = os.lstat(self.path)
            if stat.S_ISLNK(st.st_mode):
                raise StorageError(f"-f {self.path} is a symbolic link to {os.readlink(self.path)}; -f works on the "
                                   f"file itself: name it (-f {shlex.quote(os.path.realpath(self.path))})")
            if not stat.S_ISREG(st.st_mode):
                raise StorageError(f"-f {self.path} is {describe_kind(st.st_mode)}, not a regular file; name an "
                                   "inventory file")

    def describe(self) -> str:
        return f"file {self.path}"

    def lock(self) -> ContextManager[None]:
        """Exclusive across processes (``flock`` on the file's folder), re-entrant within this object."""
        return self._lock()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with Folder.open(self.dir) as folder, folder.locked(LOCK_TIMEOUT, "wait for it to finish"):
            self._folder = folder
            try:
                yield
            finally:
                self._folder = None

    @contextlib.contextmanager
    def _opened(self) -> Iterator[Folder]:
        """The file's folder: the one locked while the lock is held."""
        if self._folder is not None:
            yield self._folder
            return
        with Folder.open(self.dir) as folder:
            yield folder

    def _hint(self, folder: Folder) -> str:
        backups = self._backups(folder)
        if backups:
            return (f"it was left untouched; restore a backup with --restore {backups[-1][0]} "
                    "(see --history) or import a saved copy")
        return "it was left untouched; repair it by hand or import a saved copy with --import"

    def _parse(self, folder: Folder, data: bytes) -> dict:
        try:
            value = parse_json(data, shown=self.path, error=StorageError)
        except StorageError as exc:
            raise StorageError(f"{exc}; {self._hint(folder)}") from None
        if not isinstance(value, dict):
            raise StorageError(f"{self.path} does not hold a JSON object; {self._hint(folder)}")
        return value

    def load(self) -> dict | None:
        with self._opened() as folder:
            try:
                found = folder.read(self.name, MAX_INVENTORY_BYTES)
            except DamagedFile as exc:
                raise StorageError(f"{exc}; {self._hint(folder)}") from None
            return None if found is None else self._parse(folder, found[0])

    def write(self, inventory: dict) -> None:
        data = json.dumps(inventory, indent=4, sort_keys=True).encode("utf-8")
        with self.lock():
            folder = self._folder
            assert folder is not None
            folder.remove_temp_files(self.name)
            try:
                found = folder.read(self.name, MAX_INVENTORY_BYTES)
            except DamagedFile:
                # Too large to copy: kept whole under another name, for whoever repairs it.
                folder.set_aside(self.name, "corrupt", _stamp(time.time()))
                found = None
            if found is not None:
                old, st = found
                if old == data:
                    return
                self._add_backup(folder, old, st)  # even an unreadable file: it may be all there is
            mode = stat.S_IMODE(st.st_mode) if found is not None else 0o644
            written, record = time.time(), pending_change()
            if record is not None:  # before the file is replaced: a crash leaves an orphan record, never a wrong one
                kept = [int(folder.lstat(name).st_mtime) for _, name in self._backups(folder)]
                records.store(folder, records.sidecar_of(self.name), record, records.key_of(data, written),
                              kept, KEEP, mode, None)
            folder.replace(self.name, data, mode, mtime=written)

    # -- history: the backups, then the file itself ---------------------------

    def _backups(self, folder: Folder) -> list[tuple[str, str]]:
        """``(version, name)`` of each backup, oldest first."""
        pattern = re.compile(re.escape(self.name) + r"\.(\d{8}_\d{6}(?:-\d+)?)\.bak$")
        found = []
        for name in folder.names():
            match = pattern.match(name)
            if match:
                version = match.group(1)
                stamp, _, n = version.partition("-")
                found.append(((stamp, int(n or 1)), version, name))
        found.sort()
        return [(version, name) for _, version, name in found]

    def _backup_version(self, folder: Folder, written: float) -> str:
        """The name a backup of a version written at ``written`` gets: its time, ``-2``... if taken."""
        existing = {v for v, _ in self._backups(folder)}
        version = _stamp(written)
        n = 1
        while version in existing:
            n += 1
            version = f"{_stamp(written)}-{n}"
        return version

    def _newest_backup(self, folder: Folder) -> tuple[str, bytes, os.stat_result] | None:
        """The newest backup's version, bytes and status, when it can be read."""
        backups = self._backups(folder)
        if not backups:
            return None
        version, name = backups[-1]
        try:
            found = folder.read(name, MAX_INVENTORY_BYTES)
        except StorageError:
            return None
        return None if found is None else (version, *found)

    def _duplicate(self, folder: Folder, data: bytes, st: os.stat_result) -> str | None:
        """The version of the newest backup when it holds the file's own version (an interrupted save made it)."""
        newest = self._newest_backup(folder)
        if newest and newest[1] == data and int(newest[2].st_mtime) == int(st.st_mtime):
            return newest[0]
        return None

    def _add_backup(self, folder: Folder, data: bytes, st: os.stat_result) -> None:
        # Named and dated by when the file was written, so a version keeps its name and time
        # in --history whether it is the file itself or a backup.
        if self._duplicate(folder, data, st) is None:
            backup = f"{self.name}.{self._backup_version(folder, st.st_mtime)}.bak"
            folder.replace(backup, data, stat.S_IMODE(st.st_mode), mtime=st.st_mtime)
        for _, old in self._backups(folder)[:-KEEP]:
            folder.remove(old)

    def _version_of_file(self, folder: Folder, data: bytes, st: os.stat_result) -> str:
        return self._duplicate(folder, data, st) or self._backup_version(folder, st.st_mtime)

    def history(self) -> list[dict]:
        """The backups, then the file itself; each named by when it was written, as its backup will be."""
        with self._opened() as folder:
            versions = []
            for v, name in self._backups(folder):
                try:
                    found = folder.read(name, MAX_INVENTORY_BYTES)
                except StorageError:
                    found = None  # listed all the same: reading the version says why it cannot be used
                st = found[1] if found else folder.lstat(name)
                if st is not None:
                    versions.append(({"version": v, "time": _iso(st.st_mtime)},
                                     records.key_of(found[0], st.st_mtime) if found else ("", -1)))
            try:
                current = folder.read(self.name, MAX_INVENTORY_BYTES)
            except StorageError:
                current = None
            if current is not None:
                data, st = current
                version = self._version_of_file(folder, data, st)
                if versions and versions[-1][0]["version"] == version:
                    versions.pop()
                versions.append(({"version": version, "time": _iso(st.st_mtime)}, records.key_of(data, st.st_mtime)))
            records.attach(versions, records.read(folder, records.sidecar_of(self.name), records.size_limit(KEEP)))
        return [entry for entry, _ in versions]

    def read_version(self, version: str) -> dict:
        with self._opened() as folder:
            if version != CURRENT:
                try:
                    current = folder.read(self.name, MAX_INVENTORY_BYTES)
                except StorageError:
                    current = None
                if current is not None and version == self._version_of_file(folder, *current):
                    version = CURRENT
            if version == CURRENT:
                data = self.load()
                if data is None:
                    raise StorageError(f"{self.path} does not exist")
                return data
            for v, name in self._backups(folder):
                if v == version:
                    found = folder.read(name, MAX_INVENTORY_BYTES)
                    if found is None:
                        break
                    try:
                        return parse_json(found[0], shown=f"backup {folder.join(name)}", error=StorageError)
                    except StorageError as exc:
                        raise StorageError(f"{exc}; pick another version") from None
        raise StorageError(f"no version {version!r} of {self.path}; list them with --history")
