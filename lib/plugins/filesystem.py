"""Filesystem storage: the ``openstack_inventory.json`` file OSA's tools read, kept safely.

Options (osa.ini section ``[filesystem]`` or ``OSA_INVENTORY_FILESYSTEM_<OPTION>``):

``path``
    Folder holding the inventory (default: the ``--config`` folder; a
    relative path is relative to it).
``backups``
    How many earlier versions ``backup_openstack_inventory.tar`` keeps (default 15).
``lock_timeout``
    Seconds to wait for another run's lock before giving up (default 300).

What it does that OSA's generator does not: every replacement goes through a
temporary file in the same folder, fsync and an atomic rename (then an fsync
of the folder), so a crash leaves either the old or the new file; an
exclusive ``flock`` on the inventory's folder is held across
load-generate-write, so concurrent runs serialise instead of losing updates;
the backup archive is rewritten atomically with exactly the newest N
versions; and a corrupt inventory is reported, never overwritten.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import os
import tarfile
import time
from typing import ContextManager

from osa_inventory.errors import StorageError as StorageFailure
from osa_inventory.storage.options import number_option
from osa_inventory.storage.safe_files import TEMP_SUFFIX, Reentrant, atomic_write, flock_wait

INVENTORY_NAME = "openstack_inventory.json"
BACKUP_NAME = "backup_openstack_inventory.tar"
MEMBER_PREFIX = INVENTORY_NAME + "-"
CURRENT = "current"


def dumps(inventory: dict) -> str:
    """The exact text OSA writes: sorted keys, four-space indent."""
    return json.dumps(inventory, indent=4, sort_keys=True)


class Storage:
    """The default backend; see the module docstring."""

    def __init__(self) -> None:
        self.folder = ""
        self.keep = 15
        self.lock_timeout = 300.0
        self._lock = Reentrant(lambda: flock_wait(
            self.folder, self.lock_timeout, "wait for it to finish or raise [filesystem] lock_timeout"))

    # -- contract ---------------------------------------------------------

    def register(self, args: dict) -> None:
        path = (args.get("path") or "").strip()
        config_dir = args.get("config_dir") or ""
        if not path and not config_dir:
            raise StorageFailure("option 'path' is not set and no config folder was given")
        # A relative path is relative to the config folder, never to wherever Ansible was started.
        self.folder = os.path.abspath(os.path.join(config_dir, os.path.expanduser(path)))
        self.keep = int(number_option(args, "backups", 15, minimum=0, whole=True))
        self.lock_timeout = number_option(args, "lock_timeout", 300.0, minimum=0)
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
            old = self._read_current()
            if old == text:
                return
            if old is not None:
                try:
                    json.loads(old)
                except ValueError:
                    # Only an explicit restore/import gets here; keep the damaged file for forensics.
                    os.replace(self.inventory_path, f"{self.inventory_path}.corrupt-{_stamp()}")
                    old = None
            if old is not None and self.keep > 0:
                self._add_backup(old)
            mode = _mode_of(self.inventory_path, 0o644)
            atomic_write(self.inventory_path, text.encode("utf-8"), mode)

    # -- optional extras --------------------------------------------------

    def describe(self) -> str:
        return f"filesystem {self.inventory_path}"

    def lock(self) -> ContextManager[None]:
        """Exclusive across processes (``flock``), re-entrant within this object.

        The lock is on the folder itself: no lock file is left behind, and the
        folder outlives every atomic rename of the files in it.
        """
        return self._lock()

    def history(self) -> list[dict]:
        """Earlier versions, oldest first, then the current file (version ``current``)."""
        versions = []
        for member in self._members():
            versions.append({"version": member.name[len(MEMBER_PREFIX):-len(".json")]
                             if member.name.startswith(MEMBER_PREFIX) else member.name,
                             "time": _iso(member.mtime), "member": member.name})
        if os.path.exists(self.inventory_path):
            versions.append({"version": CURRENT, "time": _iso(os.stat(self.inventory_path).st_mtime)})
        return versions

    def read_version(self, version: str) -> dict:
        if version == CURRENT:
            data = self.load()
            if data is None:
                raise StorageFailure(f"{self.inventory_path} does not exist")
            return data
        with self._open_archive() as tar:
            for member in tar.getmembers():
                if version in (member.name, member.name[len(MEMBER_PREFIX):-len(".json")]):
                    return json.loads(tar.extractfile(member).read().decode("utf-8"))
        raise StorageFailure(f"no version {version!r} in {self.backup_path}; list them with --history")

    # -- internals --------------------------------------------------------

    @property
    def inventory_path(self) -> str:
        return os.path.join(self.folder, INVENTORY_NAME)

    @property
    def backup_path(self) -> str:
        return os.path.join(self.folder, BACKUP_NAME)

    def _remove_stale_temp_files(self) -> None:
        """Delete temp files of runs killed mid-write (only the lock holder writes them)."""
        for name in os.listdir(self.folder):
            if name.endswith(TEMP_SUFFIX) and name.startswith(("." + INVENTORY_NAME + ".", "." + BACKUP_NAME + ".")):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.folder, name))

    def _read_current(self) -> str | None:
        try:
            with open(self.inventory_path, encoding="utf-8") as fh:
                return fh.read()
        except FileNotFoundError:
            return None
        except UnicodeDecodeError:
            raise StorageFailure(self._corrupt_message("is not UTF-8 text")) from None

    def _open_archive(self):
        if not os.path.exists(self.backup_path):
            return tarfile.open(fileobj=io.BytesIO(_empty_tar()), mode="r")
        return tarfile.open(self.backup_path, mode="r")

    def _members(self) -> list[tarfile.TarInfo]:
        try:
            with self._open_archive() as tar:
                return [m for m in tar.getmembers() if m.isfile()]
        except tarfile.TarError:
            return []

    def _corrupt_message(self, what: str) -> str:
        newest = None
        try:
            with self._open_archive() as tar:
                for member in reversed([m for m in tar.getmembers() if m.isfile()]):
                    try:
                        json.loads(tar.extractfile(member).read().decode("utf-8"))
                    except ValueError:
                        continue
                    newest = member.name
                    break
        except (tarfile.TarError, OSError):
            pass
        if newest:
            hint = (f"the newest good backup is {newest} in {self.backup_path}; restore it with "
                    f"'scripts/inventory-manage.py --restore {newest[len(MEMBER_PREFIX):-len('.json')]}' "
                    f"or 'tar -xOf {self.backup_path} {newest} > {self.inventory_path}'")
        else:
            hint = "no good backup exists; repair the file by hand or import a saved copy"
        return f"{self.inventory_path} {what}; it was left untouched; {hint}"

    def _add_backup(self, old_text: str) -> None:
        """Rewrite the archive atomically with the newest ``keep`` versions, old_text last."""
        members: list[tuple[tarfile.TarInfo, bytes]] = []
        if os.path.exists(self.backup_path):
            try:
                with tarfile.open(self.backup_path, mode="r") as tar:
                    for m in tar.getmembers():
                        if m.isfile():
                            members.append((m, tar.extractfile(m).read()))
            except tarfile.TarError:
                os.replace(self.backup_path, f"{self.backup_path}.corrupt-{_stamp()}")
                members = []
        name = _backup_name({m.name for m, _ in members})
        info = tarfile.TarInfo(name)
        data = old_text.encode("utf-8")
        info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
        members.append((info, data))
        members = members[-self.keep:]
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for m, payload in members:
                tar.addfile(m, io.BytesIO(payload))
        atomic_write(self.backup_path, buf.getvalue(), _mode_of(self.backup_path, 0o644))


def _backup_name(kept: set[str]) -> str:
    """A new member name, unique among ``kept``, sorting after every kept name of the same second.

    A second version within one second gets ``_02``, ``_03``...; counting on
    from the highest kept suffix (not the lowest free one) keeps name order
    equal to archive order even after pruning dropped the earlier ones.
    """
    base = f"{MEMBER_PREFIX}{_stamp()}"
    highest = 0
    for name in kept:
        if name == base + ".json":
            highest = max(highest, 1)
        elif name.startswith(base + "_") and name.endswith(".json") and name[len(base) + 1:-5].isdigit():
            highest = max(highest, int(name[len(base) + 1:-5]))
    return f"{base}.json" if highest == 0 else f"{base}_{highest + 1:02d}.json"


def _stamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d_%H%M%S")


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _empty_tar() -> bytes:
    buf = io.BytesIO()
    tarfile.open(fileobj=buf, mode="w").close()
    return buf.getvalue()


def _mode_of(path: str, default: int) -> int:
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return default


