"""The store of ``inventory-manage -f FILE`` for a FILE not named ``openstack_inventory.json``.

Built from the filesystem engine (:mod:`.store`) and keeping the storage
plugin contract (the contract suite runs on it), so the rest of the tool
treats it like any backend: ``load``/``write``, a re-entrant ``flock`` lock on
the file's folder, and the backups as history. A save replaces the file
atomically (temp file in the same folder, fsync, rename, fsync of the
folder) after copying the previous content to ``FILE.YYYYmmdd_HHMMSS.bak``, named
and dated by when that content was written (a copy an interrupted save
already made is not made twice); the newest ``KEEP`` backups are kept. Change
records are kept as the filesystem backend keeps them, in ``FILE``'s sidecar
(``inv.json`` -> ``inv.changes.json``; see :mod:`.records`).

Every file is handled as the filesystem backend handles its own
(:mod:`osa_inventory.storage.store_files`): named relative to the open
folder, never reached through a symbolic link (``FILE`` itself may not be
one: name the file), used only when root or the current user owns it and
nobody else may write it, and read bounded.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import stat
from typing import ContextManager, Iterator

from ...accounting import ChangeRecord
from ...bounded import MAX_INVENTORY_BYTES, describe_kind, parse_json
from ...errors import StorageError
from ...storage.safe_files import Reentrant
from ...storage.store_files import Folder, Place
from . import records
from .archive import stamp_of
from .store import CURRENT, Current, dumps, inventory_of, iso, read_current, record_change, stamp

KEEP = 15
LOCK_TIMEOUT = 300.0
LOCK_HINT = "wait for it to finish"


class Storage:
    """One inventory file at an arbitrary path; see the module doc."""

    def __init__(self) -> None:
        self.path = ""
        self.dir = ""
        self.name = ""
        self._lock = Reentrant(self._locked)
        self._held: Place | None = None

    def register(self, args: dict) -> None:
        """``args["file"]``: the inventory file, which need not exist yet; its folder must."""
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
        """``file <path>``."""
        return f"file {self.path}"

    def lock(self) -> ContextManager[None]:
        """Exclusive across processes (``flock`` on the file's folder), re-entrant within this object."""
        return self._lock()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with Folder.open(self.dir) as folder, folder.locked(LOCK_TIMEOUT, LOCK_HINT):
            self._held = Place(folder, self.name)
            try:
                yield
            finally:
                self._held = None

    @contextlib.contextmanager
    def _opened(self) -> Iterator[Place]:
        """The file in its folder: the one locked while the lock is held."""
        if self._held is not None:
            yield self._held
            return
        with Folder.open(self.dir) as folder:
            yield Place(folder, self.name)

    def _hint(self, folder: Folder) -> str:
        backups = self._backups(folder)
        if backups:
            return f"restore a backup with --restore {backups[-1][0]} (see --history) or import a saved copy"
        # --force: a plain --import refuses to replace an inventory it cannot read.
        return "repair it by hand or import a saved copy with --import FILE --force"

    def load(self) -> dict | None:
        """The inventory, or None when the file does not exist yet."""
        with self._opened() as place:
            return inventory_of(read_current(place), place, lambda: self._hint(place.folder))

    def write(self, inventory: dict, record: ChangeRecord | None = None) -> None:
        """Copy the file to a backup, keep the change ``record``, then replace the file atomically."""
        data = dumps(inventory).encode("utf-8")
        with self.lock():
            place = self._held
            assert place is not None
            folder = place.folder
            folder.remove_temp_files(self.name)
            current = read_current(place, parse=False)
            if current.refused:
                raise StorageError(current.refused)
            if current.damage:
                # Too large to copy: kept whole under another name, for whoever repairs it.
                folder.set_aside(self.name, "corrupt", stamp())
                current = Current()
            if current.st is not None:
                if current.data == data:
                    return
                self._add_backup(folder, current)  # even an unreadable file: it may be all there is
            mode = stat.S_IMODE(current.st.st_mode) if current.st is not None else 0o644
            kept = [int(folder.lstat(name).st_mtime) for _, name in self._backups(folder)]
            written = record_change(place, data, record, kept, KEEP, mode, None)
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
                when, _, n = version.partition("-")
                found.append(((when, int(n or 1)), version, name))
        found.sort()
        return [(version, name) for _, version, name in found]

    def _backup_version(self, folder: Folder, written: float) -> str:
        """The name a backup of a version written at ``written`` gets: its time, ``-2``... if taken."""
        existing = {v for v, _ in self._backups(folder)}
        version = stamp_of(written)
        n = 1
        while version in existing:
            n += 1
            version = f"{stamp_of(written)}-{n}"
        return version

    def _newest_backup(self, folder: Folder) -> tuple[str, Current] | None:
        """The newest backup's version and content, when it can be read."""
        backups = self._backups(folder)
        if not backups:
            return None
        version, name = backups[-1]
        found = read_current(Place(folder, name), parse=False)
        return (version, found) if _readable(found) else None

    def _duplicate(self, folder: Folder, current: Current) -> str | None:
        """The version of the newest backup when it holds the file's own version (an interrupted save made it)."""
        assert current.st is not None
        newest = self._newest_backup(folder)
        if newest is not None:
            version, backup = newest
            assert backup.st is not None
            if backup.data == current.data and int(backup.st.st_mtime) == int(current.st.st_mtime):
                return version
        return None

    def _add_backup(self, folder: Folder, current: Current) -> None:
        # Named and dated by when the file was written, so a version keeps its name and time
        # in --history whether it is the file itself or a backup.
        assert current.st is not None
        if self._duplicate(folder, current) is None:
            backup = f"{self.name}.{self._backup_version(folder, current.st.st_mtime)}.bak"
            folder.replace(backup, current.data, stat.S_IMODE(current.st.st_mode), mtime=current.st.st_mtime)
        for _, old in self._backups(folder)[:-KEEP]:
            folder.remove(old)

    def _version_of_file(self, folder: Folder, current: Current) -> str:
        assert current.st is not None
        return self._duplicate(folder, current) or self._backup_version(folder, current.st.st_mtime)

    def history(self) -> list[dict]:
        """The backups, then the file itself; each named by when it was written, as its backup will be."""
        with self._opened() as place:
            folder = place.folder
            versions = []
            for v, name in self._backups(folder):
                # Listed even when it cannot be read: reading the version says why.
                found = read_current(Place(folder, name), parse=False)
                st = found.st if _readable(found) else folder.lstat(name)
                if st is not None:
                    versions.append(({"version": v, "time": iso(st.st_mtime)},
                                     records.key_of(found.data, st.st_mtime) if _readable(found) else ("", -1)))
            current = read_current(place, parse=False)
            if _readable(current):
                assert current.st is not None
                version = self._version_of_file(folder, current)
                if versions and versions[-1][0]["version"] == version:
                    versions.pop()
                versions.append(({"version": version, "time": iso(current.st.st_mtime)},
                                 records.key_of(current.data, current.st.st_mtime)))
            records.attach(versions, records.read(folder, records.sidecar_of(self.name), records.size_limit(KEEP)))
        return [entry for entry, _ in versions]

    def read_version(self, version: str) -> dict:
        """The inventory of ``version`` (a backup's, or the file's own, as listed), or ``current``."""
        with self._opened() as place:
            folder = place.folder
            if version != CURRENT:
                current = read_current(place, parse=False)
                if _readable(current) and version == self._version_of_file(folder, current):
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


def _readable(found: Current) -> bool:
    """Whether the file read unparsed exists and could be read (its bytes are all there)."""
    return found.st is not None and not found.damage and not found.refused
