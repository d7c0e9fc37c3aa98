"""Reusing an unchanged run: skip reading, checking and generating when none of their inputs changed.

Most inventory runs change nothing: the config is what it was and so is the
stored inventory. Such a run may skip the YAML parse, the validation, the
generation and the comparison when a *reuse record* says that exactly these
inputs were seen before and gave back the stored inventory unchanged.

The record is one fact, true for ever once observed: "the inputs with digest
``config`` over the stored inventory with digest ``stored`` generate that
same inventory (with these warnings)". It never holds output. A run that
reuses it still loads the stored inventory under the lock and prints *that*,
serialised by this run, so a record that is stale, forged or damaged can at
worst make a run skip applying a config change; it can never make a run
print or store anything but the stored inventory it just loaded.

It lives in the running user's own cache folder (``$XDG_CACHE_HOME``, else
``~/.cache``, then ``osa-inventory/``, one file per config folder), never in
the config folder, which an operators' group may be able to write: nobody but
this user (and root) can plant or change it. It is still read like any file of
a shared folder (:mod:`osa_inventory.storage.store_files`): only a regular
file of root's or this user's that nobody else may write, without following a
link, bounded in size; anything wrong with it (a link, someone else's file,
damaged, too large, another version's) means a full run, which replaces it.

The ``config`` digest (:func:`config_key`) is SHA-256 over: the record
format, ``osa_inventory.__version__`` and the bytes of the project's own
modules that generation runs (so a changed generator never meets a record of
the old one, even at the same version), the config and environment folders,
the ``[inventory]`` settings, the backend's section, plugin and options, and
the name, size and bytes of every file the config is read from (user config,
``conf.d``, base and config ``env.d``; :func:`~osa_inventory.config_files.config_paths`).
The ``stored`` digest is SHA-256 of the stored inventory as this run prints
it (compact JSON, sorted keys): any change of what is stored, by any writer,
through any backend, changes it. No time stamp or mtime takes part.

docs/operations.md ("Reusing unchanged runs") is the operator's view.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Mapping

from . import __version__
from .bounded import parse_json, read_file
from .config_files import MAX_FILE_BYTES, Inputs, read_inputs
from .errors import InventoryError
from .storage.settings import Settings
from .storage.store_files import Folder

LOG = logging.getLogger("osa_inventory")

#: The records' folder in the user's cache folder; deleting it only costs each config folder one full run.
CACHE_FOLDER = "osa-inventory"
#: What a record may weigh: two digests and the config's warnings.
RECORD_LIMIT = 256 * 1024
FORMAT = 1
_HERE = os.path.dirname(os.path.abspath(__file__))
#: The project's modules whose code decides what a run generates (their bytes are part of the key).
_GENERATING_CODE = ("config_files.py", "deployment_config.py", "generate", "inventory")


def _feed(digest, *parts: bytes | str) -> None:
    """Each part with its length first, so that no two different inputs give the same stream."""
    for part in parts:
        data = part.encode("utf-8", "surrogateescape") if isinstance(part, str) else part
        digest.update(b"%d:" % len(data))
        digest.update(data)


def _code_files() -> list[str]:
    paths = []
    for name in _GENERATING_CODE:
        path = os.path.join(_HERE, name)
        if os.path.isdir(path):
            paths += sorted(os.path.join(path, n) for n in os.listdir(path) if n.endswith(".py"))
        else:
            paths.append(path)
    return paths


def config_key(config_dir: str, environment: str, settings: Settings, inputs: Inputs | None = None) -> str | None:
    """The digest of every input of a run but the stored inventory, or None when one cannot be read.

    ``inputs`` is what a run parsed (:attr:`DeploymentConfig.inputs`): the key of a record is
    taken from the very bytes that were generated from. Without it the files are read now.
    None means "no reuse": the full run that follows reads the same files and reports properly
    whatever made them unreadable.
    """
    digest = hashlib.sha256()
    _feed(digest, str(FORMAT), __version__, config_dir, environment)
    try:
        for path in _code_files():
            _feed(digest, path, read_file(path, limit=MAX_FILE_BYTES))
        section = settings.backend
        _feed(digest, json.dumps({k: str(v) for k, v in settings.inventory.items()}, sort_keys=True),
              section, settings.plugin_for(section), json.dumps(settings.options(section), sort_keys=True))
        for name, data in read_inputs(config_dir, environment) if inputs is None else inputs:
            _feed(digest, name, data)
    except (InventoryError, OSError, ValueError):
        return None
    return digest.hexdigest()


def stored_key(text: str) -> str:
    """The digest of a stored inventory, given as this run prints it (compact JSON, sorted keys)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class Printed:
    """A loaded inventory printed as a run prints it, and whether that is the stored inventory of a record."""

    def __init__(self, expected: str | None):
        self.expected = expected
        self.text: str = ""
        self.matched = False
        self._seen: object = None

    def matches(self, data: object) -> bool:
        """Whether ``data``, printed, has the digest expected (the text is kept: it is the run's output).

        Asked about the same object twice (by the JSON reader, then by the checks of what was
        loaded), it prints it once.
        """
        if data is self._seen:
            return self.matched
        self._seen, self.matched = data, False
        try:
            self.text = json.dumps(data, sort_keys=True)
        except (TypeError, ValueError, RecursionError):  # not JSON at all: the checks that follow say why
            return False
        self.matched = self.expected is not None and stored_key(self.text) == self.expected
        return self.matched


@dataclass
class Record:
    """What a reuse record says: ``config`` over ``stored`` generated ``stored`` again, with ``warnings``."""

    config: str
    stored: str
    warnings: list[str] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        return json.dumps({"format": FORMAT, "version": __version__, "config": self.config,
                           "stored": self.stored, "warnings": self.warnings}, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes, shown: str) -> Record | None:
        """The record in ``data``, or None for anything but a well-formed record of this format and version."""
        try:
            value = parse_json(data, shown=shown)
        except InventoryError:
            return None
        if not isinstance(value, dict) or value.get("format") != FORMAT or value.get("version") != __version__:
            return None
        config, stored, warnings = value.get("config"), value.get("stored"), value.get("warnings")
        if not (isinstance(config, str) and isinstance(stored, str) and isinstance(warnings, list)
                and all(isinstance(w, str) for w in warnings)):
            return None
        return cls(config, stored, warnings)


def record_place(config_dir: str, environment: str, environ: Mapping[str, str]) -> tuple[str, str]:
    """The folder of the reuse records and the name of the one for this config and environment folder."""
    cache = environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(cache):  # the XDG rule: a relative value is ignored
        cache = os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".cache")
    name = hashlib.sha256(f"{config_dir}\0{environment}".encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return os.path.join(cache, CACHE_FOLDER), f"{name}.json"


def read_record(place: tuple[str, str]) -> Record | None:
    """The reuse record at ``place`` (:func:`record_place`), or None when there is none or it may not be used.

    A record that is a link, another user's file, writable by others, too large, damaged or of
    another format or version is not used: the run is a full one, which replaces it.
    """
    folder_path, name = place
    if not os.path.isdir(folder_path):
        return None
    try:
        with Folder.open(folder_path) as folder:
            found = folder.read(name, RECORD_LIMIT)
    except InventoryError as exc:
        LOG.debug("reuse record not used: %s", exc)
        return None
    if found is None:
        return None
    return Record.from_bytes(found[0], os.path.join(folder_path, name))


def write_record(place: tuple[str, str], record: Record) -> None:
    """Replace the reuse record at ``place`` (atomically, never through a link); a failure only costs reuse."""
    folder_path, name = place
    try:
        os.makedirs(folder_path, mode=0o700, exist_ok=True)
        with Folder.open(folder_path) as folder:
            folder.replace(name, record.to_bytes(), 0o600)
    except (InventoryError, OSError) as exc:
        LOG.debug("reuse record not written: %s", exc)
