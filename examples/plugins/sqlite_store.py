"""Sample deployer plugin: the inventory and its history in one SQLite file.

Copy this file into a folder listed in ``[inventory] plugin_paths`` of
osa.ini and select it::

    [inventory]
    backend = sqlite_store
    plugin_paths = /etc/openstack_deploy/inventory_plugins

    [sqlite_store]
    database = /var/lib/osa-inventory/inventory.sqlite3

Options (all optional; ``OSA_INVENTORY_SQLITE_STORE_<OPTION>`` overrides):

``database``
    The SQLite file; a relative path is relative to osa.ini's folder when
    written there, else to the config folder. Default: ``openstack_inventory.sqlite3`` in the config folder. Its folder
    must exist; the file is created on the first write.
``keep``
    How many versions to keep, the current one included; 0 keeps all (default 0).
``lock_timeout``
    Seconds to wait for another run's lock (default 300).

The options are declared in ``OPTIONS``, so the loader refuses unknown
ones and malformed values with one line before ``register`` runs.

Every changed inventory is a new row of table ``versions``, with its change
record (who, from where, with what and why: ``--history`` shows it); the
newest row is the current inventory. An identical write adds nothing. The lock is an
``flock`` on ``<database>.lock`` held across load-generate-write; each
write is its own transaction, so it is durable as soon as it returns.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import os
import sqlite3
import time
from typing import Iterator

from osa_inventory.accounting import ChangeRecord
from osa_inventory.errors import StorageError
from osa_inventory.storage.options import Option, declare, read_options

OPTIONS = declare(
    Option("database", "path", default="openstack_inventory.sqlite3", help="the SQLite file"),
    Option("keep", "whole", default=0, minimum=0, help="versions to keep; 0 keeps all"),
    Option("lock_timeout", "number", default=300.0, minimum=0, help="seconds to wait for another run's lock"),
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    body    TEXT NOT NULL,
    record  TEXT
)
"""


class Storage:
    """Inventory versions as rows of an SQLite table."""

    def __init__(self) -> None:
        self.database = ""
        self.keep = 0
        self.lock_timeout = 300.0
        self._lock_depth = 0

    # -- contract -------------------------------------------------------------

    def register(self, args: dict) -> None:
        """Check the options; nothing is created until the first write."""
        values = read_options(OPTIONS, args)
        config_dir = args.get("config_dir") or os.getcwd()
        self.database = os.path.join(config_dir, os.path.expanduser(values["database"]))
        self.keep, self.lock_timeout = values["keep"], values["lock_timeout"]
        folder = os.path.dirname(self.database)
        if not os.path.isdir(folder):
            raise StorageError(f"folder {folder} of [sqlite_store] database does not exist; create it")

    def load(self) -> dict | None:
        """The newest version, or None when the database holds none."""
        if not os.path.exists(self.database):
            return None
        with self._connect() as db:
            row = db.execute("SELECT body FROM versions ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else json.loads(row[0])

    def write(self, inventory: dict, record: ChangeRecord | None = None) -> None:
        """Add a version, with its change ``record`` (None: none given), unless the newest one is identical."""
        body = json.dumps(inventory, sort_keys=True)
        with self.lock(), self._connect() as db:
            with db:  # one transaction: committed on success, rolled back on error
                row = db.execute("SELECT body FROM versions ORDER BY id DESC LIMIT 1").fetchone()
                if row is not None and row[0] == body:
                    return
                db.execute("INSERT INTO versions (created, body, record) VALUES (?, ?, ?)",
                           (_now(), body, None if record is None else json.dumps(record.to_dict())))
                if self.keep:
                    db.execute("DELETE FROM versions WHERE id NOT IN "
                               "(SELECT id FROM versions ORDER BY id DESC LIMIT ?)", (self.keep,))

    # -- optional extras --------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive across processes and instances; re-entrant within this instance."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        path = self.database + ".lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            _flock(fd, path, self.lock_timeout)
            self._lock_depth = 1
            try:
                yield
            finally:
                self._lock_depth = 0
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def history(self) -> list[dict]:
        """Every kept version, oldest first, with its change record; the last one is the current inventory."""
        if not os.path.exists(self.database):
            return []
        with self._connect() as db:
            rows = db.execute("SELECT id, created, length(body), record FROM versions ORDER BY id").fetchall()
        # The record's fields beside the version's own id and time (inventory-manage checks them).
        return [{**_record_fields(record), "version": str(i), "time": created, "bytes": size}
                for i, created, size, record in rows]

    def read_version(self, version: str) -> dict:
        """The inventory as it was at ``version`` (a number from history())."""
        row = None
        if version.isdigit() and os.path.exists(self.database):
            with self._connect() as db:
                row = db.execute("SELECT body FROM versions WHERE id = ?", (int(version),)).fetchone()
        if row is None:
            raise StorageError(f"{self.database} holds no version {version!r}; list them with history()")
        return json.loads(row[0])

    def describe(self) -> str:
        return f"sqlite {self.database}"

    # -- internals --------------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # A connection per operation: instances may be used from several threads.
        try:
            db = sqlite3.connect(self.database, timeout=self.lock_timeout)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open {self.database}: {exc}; check the path and its permissions") from None
        try:
            db.execute(SCHEMA)
            if "record" not in [column[1] for column in db.execute("PRAGMA table_info(versions)")]:
                db.execute("ALTER TABLE versions ADD COLUMN record TEXT")  # a database of the sample before records
            yield db
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.database}: {exc}; restore the file from a backup") from None
        finally:
            db.close()


def _flock(fd: int, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        if time.monotonic() >= deadline:
            raise StorageError(f"another run has held {path} for over {timeout:.0f} s; "
                               "wait for it or raise [sqlite_store] lock_timeout")
        time.sleep(0.02)


def _record_fields(text: str | None) -> dict:
    """The stored record's fields but its time (the version's own time is the one shown); {} for none."""
    if text is None:
        return {}
    try:
        fields = json.loads(text)
    except ValueError:
        return {"note": "the change record of this version is not valid JSON"}
    return {k: v for k, v in fields.items() if k != "time"} if isinstance(fields, dict) else {}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
