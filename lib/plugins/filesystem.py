"""Filesystem storage: the ``openstack_inventory.json`` file OSA's tools read, kept safely.

Options (osa.ini section ``[filesystem]`` or ``OSA_INVENTORY_FILESYSTEM_<OPTION>``):

``path``
    Folder holding the inventory (default: the ``--config`` folder; a
    relative path is relative to it).
``backups``
    How many earlier versions ``backup_openstack_inventory.tar`` keeps (default 15).
``lock_timeout``
    Seconds to wait for another run's lock before giving up (default 300).
``group``
    Group given to the inventory, the backup archive and files set aside
    (default: unset, the inventory keeps the group it has).
``mode``
    Permission bits of those files, octal (e.g. ``0640``; default: unset,
    the inventory keeps its mode and the archive is never looser).

What it does that OSA's generator does not: every replacement goes through a
temporary file in the same folder, fsync and an atomic rename (then an fsync
of the folder), so a crash leaves either the old or the new file; an
exclusive ``flock`` on the inventory's folder is held across
load-generate-write, so concurrent runs serialise instead of losing updates;
the backup archive is rewritten atomically with exactly the newest N
versions, never with looser permissions than the inventory (or with the
configured ``group`` and ``mode``, which every file written gets); a corrupt
inventory is reported, never overwritten; a damaged archive still gives
every version it holds intact; and a symbolic link in place of either file
stays a link: its target is replaced, atomically, in the target's own folder.
Who wrote each version and why is kept in ``openstack_inventory.changes.json``
beside it (see :mod:`osa_inventory.backends.filesystem_records`), so the two
files OSA's tools read keep their exact format.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import os
import stat
import tarfile
import time
from typing import ContextManager, Iterator

from osa_inventory.accounting import pending_change
from osa_inventory.backends import filesystem_records as records
from osa_inventory.errors import StorageError as StorageFailure
from osa_inventory.resources import manage_command
from osa_inventory.storage.file_access import FileAccess
from osa_inventory.storage.options import Option, declare, read_options
from osa_inventory.storage.safe_files import (TEMP_SUFFIX, Reentrant, atomic_write, flock_wait, owner_of,
                                              set_aside)

INVENTORY_NAME = "openstack_inventory.json"
BACKUP_NAME = "backup_openstack_inventory.tar"
MEMBER_PREFIX = INVENTORY_NAME + "-"
CURRENT = "current"
LOCK_HINT = "wait for it to finish or raise [filesystem] lock_timeout"

OPTIONS = declare(
    Option("path", "path", default="", help="folder holding openstack_inventory.json"),
    Option("backups", "whole", default=15, minimum=0, help="earlier versions the backup archive keeps"),
    Option("lock_timeout", "number", default=300.0, minimum=0, help="seconds to wait for another run's lock"),
    Option("group", "text", default="", help="group of the inventory, its backups and files set aside"),
    Option("mode", "text", default="", help="octal mode of those files, e.g. 0640 (no execute, not world-writable)"),
)


def dumps(inventory: dict) -> str:
    """The exact text OSA writes: sorted keys, four-space indent."""
    return json.dumps(inventory, indent=4, sort_keys=True)


class Archive:
    """The members of the backup archive that can be read, and what stopped the reading."""

    def __init__(self, members: list[tuple[tarfile.TarInfo, bytes]], damage: str | None):
        self.members = members
        self.damage = damage


def read_archive(path: str) -> Archive:
    """Every complete member of the tar file ``path``, in order, up to the first damage.

    The archive is read as a stream, so a truncated or partly overwritten file
    still gives back each member before the damage.
    """
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return Archive([], None)
    members: list[tuple[tarfile.TarInfo, bytes]] = []
    with fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return Archive([], "it is empty")
        try:
            with tarfile.open(fileobj=fh, mode="r|") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    data = tar.extractfile(member).read()
                    if len(data) != member.size:
                        raise tarfile.ReadError("unexpected end of data")
                    members.append((member, data))
        except (tarfile.TarError, OSError, EOFError) as exc:
            return Archive(members, f"{exc or type(exc).__name__} after {len(members)} readable version(s)")
    return Archive(members, None)


def version_of(member_name: str) -> str:
    """The version name ``--history`` shows for an archive member."""
    if member_name.startswith(MEMBER_PREFIX) and member_name.endswith(".json"):
        return member_name[len(MEMBER_PREFIX):-len(".json")]
    return member_name


class Storage:
    """The default backend; see the module docstring."""

    def __init__(self) -> None:
        self.folder = ""
        self.config_dir = ""  # for advice: inventory-manage --config names the same store
        self.keep = 15
        self.lock_timeout = 300.0
        self.access = FileAccess()
        self._lock = Reentrant(self._lock_folders)

    # -- contract ---------------------------------------------------------

    def register(self, args: dict) -> None:
        values = read_options(OPTIONS, args)
        path = values["path"]
        config_dir = self.config_dir = args.get("config_dir") or ""
        if not path and not config_dir:
            raise StorageFailure("option 'path' is not set and no config folder was given")
        # A relative path is relative to the config folder, never to wherever Ansible was started.
        self.folder = os.path.abspath(os.path.join(config_dir, os.path.expanduser(path)))
        self.keep, self.lock_timeout = values["backups"], values["lock_timeout"]
        self.access = FileAccess.from_options(values["group"], values["mode"])
        if not os.path.isdir(self.folder):
            raise StorageFailure(f"folder {self.folder} does not exist; create it or set [filesystem] path")

    def load(self) -> dict | None:
        text = self._read_current()
        if text is None:
            return None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise StorageFailure(self._corrupt_message(f"is not valid JSON ({exc})")) from None
        if not isinstance(data, dict):
            raise StorageFailure(self._corrupt_message("does not hold a JSON object"))
        return data

    def write(self, inventory: dict) -> None:
        text = dumps(inventory)
        with self.lock():
            self._remove_stale_temp_files()
            target = self._file(self.inventory_path)
            old = self._read_current()
            if old == text:
                return
            self.access.check_can_give_group()
            # Taken before a damaged file is moved aside: its replacement keeps them (unless configured).
            mode = self.access.mode_for(_mode_of(target, 0o644))
            owner = self.access.owner_for(owner_of(target))
            if old is not None:
                try:
                    json.loads(old)
                except ValueError:
                    # Only an explicit restore/import gets here; keep the damaged file for forensics.
                    self.access.apply(set_aside(target, "corrupt", _stamp()))
                    old = None
            kept = None
            if old is not None and self.keep > 0:
                kept = self._add_backup(old, target)
            data = text.encode("utf-8")
            written = self._record_change(target, data, kept, mode, owner)
            atomic_write(target, data, mode, owner, mtime=written)

    # -- optional extras --------------------------------------------------

    def describe(self) -> str:
        return f"filesystem {self.inventory_path}"

    def lock(self) -> ContextManager[None]:
        """Exclusive across processes (``flock``), re-entrant within this object.

        The lock is on the folder itself: no lock file is left behind, and the
        folder outlives every atomic rename of the files in it. When a file is
        a symbolic link, the folder of its target is locked as well, so that
        every configuration linking to one inventory takes the same lock.
        """
        return self._lock()

    def history(self) -> list[dict]:
        """Earlier versions, oldest first, then the current file.

        Each version is named and dated by when it was written
        (``YYYYmmdd_HHMMSS``, ``_02``... within one second), the current file
        too, under the name it keeps once a later write archives it. Lists
        every version a damaged archive still holds intact. Each version
        carries its change record when the sidecar has one for it."""
        archive = read_archive(self._file(self.backup_path))
        versions = [({"version": version_of(m.name), "time": _iso(m.mtime), "member": m.name},
                     records.key_of(data, m.mtime)) for m, data in archive.members]
        with contextlib.suppress(FileNotFoundError):
            written, key = records.file_key(self.inventory_path)
            versions.append(({"version": self._current_version(archive), "time": _iso(written)}, key))
        target = self.inventory_path
        with contextlib.suppress(StorageFailure):  # a dangling link: the versions are listed all the same
            target = self._file(target)
        records.attach(versions, records.read(records.sidecar_of(target), target, records.size_limit(self.keep)))
        return [entry for entry, _ in versions]

    def _current_version(self, archive: Archive) -> str:
        """The current file's version name: the archive name its write time will get.

        Behind a damaged archive that name cannot be known (it may be one of
        the members lost), so the current file is then called ``current``.
        """
        try:
            written = os.stat(self.inventory_path).st_mtime
        except OSError:
            return CURRENT
        if archive.damage:
            return CURRENT
        return version_of(_backup_name({m.name for m, _ in archive.members}, written))

    def read_version(self, version: str) -> dict:
        archive = read_archive(self._file(self.backup_path))
        if version in (CURRENT, self._current_version(archive)):
            data = self.load()
            if data is None:
                raise StorageFailure(f"{self.inventory_path} does not exist")
            return data
        for member, data in archive.members:
            if version in (member.name, version_of(member.name)):
                try:
                    return json.loads(data.decode("utf-8"))
                except ValueError:
                    raise StorageFailure(f"version {version} in {self.backup_path} is not valid JSON; "
                                         "choose another one from --history") from None
        damaged = f" (the archive is damaged: {archive.damage})" if archive.damage else ""
        raise StorageFailure(f"no version {version!r} in {self.backup_path}{damaged}; list them with --history")

    # -- internals --------------------------------------------------------

    @property
    def inventory_path(self) -> str:
        return os.path.join(self.folder, INVENTORY_NAME)

    @property
    def backup_path(self) -> str:
        return os.path.join(self.folder, BACKUP_NAME)

    def _file(self, path: str) -> str:
        """The file that holds ``path``'s content: ``path``, or the target of its symbolic link.

        A link whose target is missing or not a regular file is refused, never
        read as "no inventory" nor replaced by a regular file."""
        if not os.path.islink(path):
            return path
        try:
            target = os.path.realpath(path, strict=True)
        except OSError as exc:
            raise StorageFailure(
                f"{path} is a symbolic link to {os.readlink(path)}, which cannot be followed "
                f"({exc.strerror}); restore that file, or remove the link to start anew") from None
        if not stat.S_ISREG(os.stat(target).st_mode):
            raise StorageFailure(f"{path} is a symbolic link to {target}, which is not a regular file; "
                                 "point the link at a file, or remove it")
        return target

    def _folders(self) -> list[str]:
        """The folders a writer locks: the store's own, then those of any link targets."""
        folders = [self.folder]
        for path in (self.inventory_path, self.backup_path):
            if os.path.islink(path):
                folder = os.path.dirname(os.path.realpath(path))
                if os.path.isdir(folder) and folder not in folders:
                    folders.append(folder)
        return folders

    @contextlib.contextmanager
    def _lock_folders(self) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for folder in self._folders():
                stack.enter_context(flock_wait(folder, self.lock_timeout, LOCK_HINT))
            yield

    def _remove_stale_temp_files(self) -> None:
        """Delete temp files of runs killed mid-write (only the lock holder writes them)."""
        resolved = []
        for path in (self.inventory_path, self.backup_path):
            with contextlib.suppress(StorageFailure):
                path = self._file(path)
            resolved.append(path)
        for path in resolved + [records.sidecar_of(resolved[0])]:
            folder, name = os.path.split(path)
            for entry in os.listdir(folder):
                if entry.startswith("." + name + ".") and entry.endswith(TEMP_SUFFIX):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(folder, entry))

    def _read_current(self) -> str | None:
        try:
            with open(self._file(self.inventory_path), encoding="utf-8") as fh:
                return fh.read()
        except FileNotFoundError:
            return None
        except UnicodeDecodeError:
            raise StorageFailure(self._corrupt_message("is not UTF-8 text")) from None

    def _record_change(self, target: str, data: bytes, kept: list[tarfile.TarInfo] | None, mode: int,
                       owner: tuple[int, int] | None) -> float:
        """Keep the pending change's record for ``data`` (see :mod:`osa_inventory.backends.filesystem_records`).

        Returns the write time the new file must get: the record is keyed by it.
        """
        written = time.time()
        record = pending_change()
        if record is not None:
            records.store(records.sidecar_of(target), target, record, records.key_of(data, written),
                          None if kept is None else [int(m.mtime) for m in kept], self.keep, mode, owner,
                          on_corrupt_aside=self.access.apply)
        return written

    def _corrupt_message(self, what: str) -> str:
        newest = None
        archive = Archive([], None)
        with contextlib.suppress(StorageFailure):
            archive = read_archive(self._file(self.backup_path))
        for member, data in reversed(archive.members):
            try:
                json.loads(data.decode("utf-8"))
            except ValueError:
                continue
            newest = member.name
            break
        if newest:
            hint = (f"the newest good backup is {newest} in {self.backup_path}; restore it with "
                    f"'{manage_command(self.config_dir or None)} --restore {version_of(newest)}'")
            # tar stops with an error at the damage (after extracting): offer it only for a sound archive.
            if not archive.damage:
                hint += f" or 'tar -xOf {self.backup_path} {newest} > {self.inventory_path}'"
        else:
            hint = "no good backup exists; repair the file by hand or import a saved copy"
        return f"{self.inventory_path} {what}; it was left untouched; {hint}"

    def _add_backup(self, old_text: str, inventory_file: str) -> list[tarfile.TarInfo]:
        """Rewrite the archive atomically with the newest ``keep`` versions, old_text last.

        A damaged archive is set aside whole (what cannot be read may still be
        recovered by hand) and its readable versions carry over. The archive
        is never readable by anyone the inventory is not readable by. The
        member is named and dated by when ``old_text`` was written (the
        inventory file's mtime), so a version keeps its --history name
        whether it is current or archived. Returns the members kept.
        """
        written = os.stat(inventory_file).st_mtime
        path = self._file(self.backup_path)
        archive = read_archive(path)
        archive_mode = _mode_of(path, None)
        inventory_mode = _mode_of(inventory_file, 0o644)
        if archive.damage:
            aside = set_aside(path, "corrupt", _stamp())
            os.chmod(aside, (archive_mode or 0) & inventory_mode)
            self.access.apply(aside)
        members = archive.members
        name = _backup_name({m.name for m, _ in members}, written)
        info = tarfile.TarInfo(name)
        data = old_text.encode("utf-8")
        info.size, info.mtime, info.mode = len(data), int(written), self.access.mode_for(inventory_mode)
        members = (members + [(info, data)])[-self.keep:]
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for m, payload in members:
                tar.addfile(m, io.BytesIO(payload))
        mode = inventory_mode if archive_mode is None else archive_mode & inventory_mode
        atomic_write(path, buf.getvalue(), self.access.mode_for(mode), self.access.owner_for(owner_of(inventory_file)))
        return [m for m, _ in members]


def _backup_name(kept: set[str], written: float) -> str:
    """The member name of a version written at ``written``, unique among ``kept``.

    A second version within one second gets ``_02``, ``_03``...; counting on
    from the highest kept suffix (not the lowest free one) keeps name order
    equal to archive order even after pruning dropped the earlier ones.
    """
    base = f"{MEMBER_PREFIX}{_stamp_of(written)}"
    highest = 0
    for name in kept:
        if name == base + ".json":
            highest = max(highest, 1)
        elif name.startswith(base + "_") and name.endswith(".json") and name[len(base) + 1:-5].isdigit():
            highest = max(highest, int(name[len(base) + 1:-5]))
    return f"{base}.json" if highest == 0 else f"{base}_{highest + 1:02d}.json"


def _stamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d_%H%M%S")


def _stamp_of(written: float) -> str:
    """``YYYYmmdd_HHMMSS`` (UTC) of a file's write time."""
    return _dt.datetime.fromtimestamp(written, _dt.timezone.utc).strftime("%Y%m%d_%H%M%S")


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mode_of(path: str, default: int | None) -> int | None:
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return default
