"""The filesystem backend's engine: ``openstack_inventory.json`` in one folder, kept safely.

:class:`FolderStore` is what lib/plugins/filesystem.py registers and delegates
to; :func:`read_current`, :func:`parsed` and :func:`dumps` are shared with the
``-f FILE`` store (:mod:`.single_file`).

What it does that OSA's generator does not: every file is opened relative
to the store's folder and never through a link someone planted, and used
only when root or the current user owns it and nobody else may write it
(:mod:`osa_inventory.storage.store_files`); every replacement goes through
a temporary file in the same folder, fsync and an atomic rename (then an
fsync of the folder), so a crash leaves either the old or the new file; an
exclusive ``flock`` on the inventory's folder is held across
load-generate-write, so concurrent runs serialise instead of losing updates;
the backup archive (:mod:`.archive`) is rewritten atomically with exactly
the newest N versions, never one twice, never with looser permissions than
the inventory (or with the configured ``group`` and ``mode``, which every
file written gets); a corrupt inventory is reported, never overwritten; a
damaged archive still gives every version it holds intact; and the
inventory may be a symbolic link (to a shared disk), followed only when the
link, its target and the target's folder pass the same checks: the target
is then replaced, atomically, in its own folder. Who wrote each version and
why is kept in ``openstack_inventory.changes.json`` beside it (see
:mod:`.records`), so the two files OSA's tools read keep their exact format.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import shlex
import stat
import time
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterator

from ... import indented_json
from ...accounting import ChangeRecord
from ...bounded import MAX_INVENTORY_BYTES, parse_json
from ...errors import InventoryError
from ...errors import StorageError as StorageFailure
from ...resources import manage_command
from ...storage.file_access import FileAccess
from ...storage.safe_files import Reentrant
from ...storage.store_files import DamagedFile, Folder, Place, locate
from . import archive as archives
from . import records
from .archive import BACKUP_NAME, Archive, version_of

INVENTORY_NAME = "openstack_inventory.json"
CURRENT = "current"
LOCK_HINT = "wait for it to finish or raise [filesystem] lock_timeout"
LOG = logging.getLogger("osa_inventory.filesystem")  # the script's inventory.log; inventory-manage's stderr


def dumps(inventory: dict) -> str:
    """The exact text OSA writes: sorted keys, four-space indent (``json.dumps``'s text, made faster)."""
    return indented_json.dumps(inventory)


@dataclass
class Current:
    """The inventory file as found: its status and bytes, the inventory, or why it cannot be used."""

    st: os.stat_result | None = None
    data: bytes = b""
    inventory: dict | None = None
    damage: str = ""
    refused: str = ""


def read_current(place: Place, parse: bool = True) -> Current:
    """The inventory file at ``place``; never raises for what is wrong with the file itself.

    ``parse=False`` reads only the bytes (enough to name and key the version).
    """
    try:
        found = place.folder.read(place.name, MAX_INVENTORY_BYTES)
    except DamagedFile as exc:
        return Current(place.folder.lstat(place.name), damage=_without_path(str(exc), place.path))
    except StorageFailure as exc:
        return Current(place.folder.lstat(place.name), refused=str(exc))
    if found is None:
        return Current()
    data, st = found
    return parsed(Current(st, data), place) if parse else Current(st, data)


def parsed(current: Current, place: Place) -> Current:
    """``current`` with its inventory parsed, or with the damage that stops it."""
    if current.st is None or current.damage or current.refused or current.inventory is not None:
        return current
    data, st = current.data, current.st
    try:
        value = parse_json(data, shown=place.path, error=DamagedFile)
    except DamagedFile as exc:
        return Current(st, data, damage=_without_path(str(exc), place.path))
    if not isinstance(value, dict):
        return Current(st, data, damage="does not hold a JSON object")
    return Current(st, data, value)


def inventory_of(current: Current, place: Place, advice: Callable[[], str]) -> dict | None:
    """The inventory ``current`` holds (None: there is no file), or one line saying why it cannot be used.

    The line for a damaged file ends in ``advice()`` (what to restore), asked
    only then: finding a good backup reads the backups.
    """
    if current.refused:
        raise StorageFailure(current.refused)
    if current.damage:
        raise StorageFailure(f"{place.shown()} {current.damage}; it was left untouched; {advice()}")
    return current.inventory


def record_change(place: Place, data: bytes, record: ChangeRecord | None, kept: list[int] | None, keep: int,
                  mode: int, owner: tuple[int, int] | None,
                  on_corrupt_aside: Callable[[str], None] | None = None) -> float:
    """Keep ``record`` (None: no record) for ``data`` in the sidecar beside ``place`` (see :mod:`.records`).

    ``kept``: the write times (whole seconds) of the versions kept after this
    write, None when unknown. Returns the write time the new file must get:
    the record is keyed by it. Called before the file is replaced, so a crash
    leaves an orphan record, never a wrong one.
    """
    written = time.time()
    if record is not None:
        records.store(place.folder, records.sidecar_of(place.name), record, records.key_of(data, written),
                      kept, keep, mode, owner, on_corrupt_aside=on_corrupt_aside)
    return written


def _without_path(message: str, path: str) -> str:
    return message[len(path) + 2:] if message.startswith(path + ": ") else message


class FolderStore:
    """The inventory in ``folder``; see the module docstring.

    ``keep``: earlier versions the backup archive keeps; ``lock_timeout``:
    seconds to wait for another run's lock; ``access``: the group and mode
    files get; ``manage_target``: how inventory-manage is told which store
    this is, in advice (``--config DIR``, or ``-f FILE`` when it opened the file).
    """

    def __init__(self, folder: str, *, keep: int = 15, lock_timeout: float = 300.0,
                 access: FileAccess | None = None, manage_target: str = "") -> None:
        self.folder = folder
        self.keep = keep
        self.lock_timeout = lock_timeout
        self.access = access or FileAccess()
        self.manage_target = manage_target
        self._lock = Reentrant(self._lock_folders)
        self._held: tuple[Folder, Place] | None = None

    def load(self) -> dict | None:
        """The inventory, or None when there is none; a damaged one is one line with the backup to restore."""
        with self._opened() as (store, place):
            return inventory_of(read_current(place), place, lambda: self._restore_advice(store, place))

    def write(self, inventory: dict, record: ChangeRecord | None = None) -> None:
        """Archive the current file, keep the change ``record``, then replace the file atomically."""
        data = dumps(inventory).encode("utf-8")
        with self.lock():
            assert self._held is not None
            store, place = self._held
            sidecar = records.sidecar_of(place.name)
            store.remove_temp_files(BACKUP_NAME)
            place.folder.remove_temp_files(place.name)
            place.folder.remove_temp_files(sidecar)
            current = read_current(place, parse=False)
            if current.refused:
                raise StorageFailure(current.refused)  # someone else's file: never replaced, never moved
            if current.st is not None and current.data == data:
                return
            current = parsed(current, place)  # only to tell a damaged file, which is set aside, not archived
            self.access.check_can_give_group()
            # Taken before a damaged file is moved aside: its replacement keeps them (unless configured).
            found_mode = stat.S_IMODE(current.st.st_mode) if current.st is not None else 0o644
            owner = self.access.owner_for((current.st.st_uid, current.st.st_gid) if current.st is not None else None)
            mode = self.access.mode_for(found_mode)
            kept = None
            if current.damage:
                # Only an explicit restore/import gets here; keep the damaged file for forensics.
                aside = place.folder.set_aside(place.name, "corrupt", stamp())
                place.folder.give(aside, self.access)
            elif current.st is not None and self.keep > 0:
                kept = self._add_backup(store, current, found_mode, owner)
            kept_times = None if kept is None else [int(m.mtime) for m in kept]
            written = record_change(place, data, record, kept_times, self.keep, mode, owner,
                                    on_corrupt_aside=lambda aside: place.folder.give(aside, self.access))
            place.folder.replace(place.name, data, mode, owner, mtime=written)

    def describe(self) -> str:
        return f"filesystem {self.inventory_path}"

    def lock(self) -> ContextManager[None]:
        """Exclusive across processes (``flock``), re-entrant within this object.

        The lock is on the folder itself: no lock file is left behind, and the
        folder outlives every atomic rename of the files in it. When the
        inventory is a symbolic link, the folder of its target is locked as
        well, so that every configuration linking to one inventory takes the
        same lock; the writes under it go to the folders locked, never by path.
        """
        return self._lock()

    def history(self) -> list[dict]:
        """Earlier versions, oldest first, then the current file.

        Each version is named and dated by when it was written
        (``YYYYmmdd_HHMMSS``, ``_02``... within one second), the current file
        too, under the name it keeps once a later write archives it. Lists
        every version a damaged archive still holds intact, and a version an
        interrupted write archived while it is still current only once. Each
        version carries its change record when the sidecar has one for it;
        ``note`` says why an archive or a link is not used."""
        with Folder.open(self.folder) as store:
            archive = archives.read(store, self.keep)
            versions = [({"version": version_of(m.name), "time": iso(m.mtime), "member": m.name},
                         records.key_of(data, m.mtime)) for m, data in archive.members]
            notes = []
            if archive.untrusted:
                notes.append(f"earlier versions not shown: {store.join(BACKUP_NAME)} {archive.untrusted}; the next "
                             f"change moves it aside as {BACKUP_NAME}.untrusted-<UTC time> and starts a new archive")
            try:
                place = locate(store, INVENTORY_NAME)
            except StorageFailure:
                # A dangling or refused link: the archived versions are listed all the same, and the current
                # one as a version that cannot be read (reading it says why).
                place, current = Place(store, INVENTORY_NAME), Current()
                versions.append(({"version": CURRENT, "time": ""}, ("", -1)))
            else:
                current = read_current(place, parse=False)
            with place:
                if current.st is not None:
                    if archives.holds_current(archive, current.data, current.st.st_mtime):
                        versions.pop()
                    key = records.key_of(current.data, current.st.st_mtime) if current.data else ("", -1)
                    versions.append(({"version": self._current_version(archive, current),
                                      "time": iso(current.st.st_mtime)}, key))
                for entry, _ in versions:
                    if notes:
                        entry["note"] = "; ".join(notes)
                sidecar = records.sidecar_of(place.name)
                records.attach(versions, records.read(place.folder, sidecar, records.size_limit(self.keep)))
        return [entry for entry, _ in versions]

    def _current_version(self, archive: Archive, current: Current) -> str:
        """The current file's version name: the archive name its write time will get.

        Behind a damaged archive that name cannot be known (it may be one of
        the members lost), so the current file is then called ``current``.
        """
        if current.st is None or archive.damage:
            return CURRENT
        if archives.holds_current(archive, current.data, current.st.st_mtime):
            return version_of(archive.members[-1][0].name)
        return version_of(archives.member_name({m.name for m, _ in archive.members}, current.st.st_mtime))

    def read_version(self, version: str) -> dict:
        with self._opened() as (store, place):
            archive = archives.read(store, self.keep)
            current = read_current(place, parse=False)
            if version in (CURRENT, self._current_version(archive, current)):
                inventory = inventory_of(parsed(current, place), place, lambda: self._restore_advice(store, place))
                if inventory is None:
                    raise StorageFailure(f"{place.shown()} does not exist")
                return inventory
            backups = store.join(BACKUP_NAME)
            for member, data in archive.members:
                if version in (member.name, version_of(member.name)):
                    try:
                        return parse_json(data, shown=f"version {version} in {backups}", error=StorageFailure)
                    except StorageFailure as exc:
                        raise StorageFailure(f"{exc}; choose another one from --history") from None
            if archive.untrusted:
                raise StorageFailure(f"no version {version!r} can be read: {backups} {archive.untrusted}, so none "
                                     "of its versions is used; the next change moves it aside and starts a new one")
            damaged = f" (the archive is damaged: {archive.damage})" if archive.damage else ""
            raise StorageFailure(f"no version {version!r} in {backups}{damaged}; list them with --history")

    # -- internals --------------------------------------------------------

    @property
    def inventory_path(self) -> str:
        return os.path.join(self.folder, INVENTORY_NAME)

    @property
    def backup_path(self) -> str:
        return os.path.join(self.folder, BACKUP_NAME)

    @contextlib.contextmanager
    def _lock_folders(self) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            store = stack.enter_context(Folder.open(self.folder))
            stack.enter_context(store.locked(self.lock_timeout, LOCK_HINT))
            # The link is resolved under the store's lock, and what it leads to stays open until the lock ends.
            place = stack.enter_context(locate(store, INVENTORY_NAME))
            if place.folder is not store:
                stack.enter_context(place.folder.locked(self.lock_timeout, LOCK_HINT))
            self._held = (store, place)
            try:
                yield
            finally:
                self._held = None

    @contextlib.contextmanager
    def _opened(self) -> Iterator[tuple[Folder, Place]]:
        """The store's folder and the inventory's place: those locked, while the lock is held."""
        if self._held is not None:
            yield self._held
            return
        with Folder.open(self.folder) as store, locate(store, INVENTORY_NAME) as place:
            yield store, place

    def _restore_advice(self, store: Folder, place: Place) -> str:
        """What to do about a damaged inventory: the newest good backup and how to restore it."""
        archive = archives.read(store, self.keep)
        newest = None
        for member, data in reversed(archive.members):
            try:
                parse_json(data, shown=member.name)
            except InventoryError:
                continue
            newest = member.name
            break
        backups = store.join(BACKUP_NAME)
        if newest:
            # manage_target says how inventory-manage finds this store: --config DIR, or -f FILE.
            manage = " ".join(filter(None, (manage_command(), self.manage_target)))
            hint = (f"the newest good backup is {newest} in {backups}; restore it with "
                    f"'{manage} --restore {version_of(newest)}'")
            # tar stops with an error at the damage (after extracting): offer it only for a sound archive.
            if not archive.damage:
                hint += f" or 'tar -xOf {shlex.quote(backups)} {shlex.quote(newest)} > {shlex.quote(place.path)}'"
        else:
            hint = "no good backup exists; repair the file by hand or import a saved copy"
        return hint

    def _add_backup(self, store: Folder, current: Current, inventory_mode: int,
                    owner: tuple[int, int] | None) -> list:
        """Rewrite the archive atomically with the newest ``keep`` versions, the current file's last.

        A damaged archive is set aside whole (what cannot be read may still
        be recovered by hand, so it is cut to the inventory's mode) and its
        readable versions carry over; an untrusted one is set aside as found
        and none of its versions is used. The archive is never readable by
        anyone the inventory is not readable by. The member is named and
        dated by when the current file was written (its mtime), so a version
        keeps its --history name whether it is current or archived, and a
        member an interrupted write already added for it is not added again.
        Returns the members kept.
        """
        assert current.st is not None
        archive = archives.read(store, self.keep)
        archive_mode = archive.mode
        if archive.untrusted:
            aside = store.set_aside(BACKUP_NAME, "untrusted", stamp())  # as found: a link stays a link
            LOG.warning("%s %s; moved aside as %s, and a new archive started", store.join(BACKUP_NAME),
                        archive.untrusted, aside)
            archive_mode = None
        elif archive.damage:
            store.give(store.set_aside(BACKUP_NAME, "corrupt", stamp()), self.access, within=inventory_mode)
        members = archive.members
        if not archives.holds_current(archive, current.data, current.st.st_mtime):
            members = members + [archives.new_member(members, current.data, current.st.st_mtime,
                                                     self.access.mode_for(inventory_mode))]
        members = members[-self.keep:]
        mode = inventory_mode if archive_mode is None else archive_mode & inventory_mode
        store.replace(BACKUP_NAME, archives.pack(members), self.access.mode_for(mode), owner)
        return [m for m, _ in members]


def stamp() -> str:
    """Now, as ``YYYYmmdd_HHMMSS`` (UTC): the time in the name of a file set aside."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d_%H%M%S")


def iso(ts: float) -> str:
    """``ts`` as ``--history`` dates versions (ISO 8601, UTC)."""
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
