"""One digest of everything an inventory run's result depends on, except the stored inventory.

A cache (the Ansible inventory plugin's) may reuse a result only when a run now
would give the same one. A run's result is a function of the config files it
reads, osa.ini and the settings overrides in the environment, the folders it
is pointed at, the generator's code and the stored inventory. :func:`run_inputs`
covers all but the last, by content (not by timestamps, which a quick edit of
equal size can leave unchanged); the caller compares the stored inventory
itself (see docs/ansible.md, "Caching").
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from typing import Mapping

from .bounded import read_file
from .errors import ConfigError, SettingsError
from .generate.config import MAX_FILE_BYTES, config_files
from .storage.settings import DEFAULT_INI, ENV_PREFIX, MAX_INI_BYTES

#: Environment variables that change what a run reads or how (the rest cannot change its result).
SETTINGS_VARIABLES = ("OSA_INI",)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """The digest of this library's Python files: a changed generator is a changed result."""
    package = os.path.dirname(os.path.abspath(__file__))
    parts = []
    for folder, subfolders, files in os.walk(package):
        subfolders.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, "rb") as fh:  # the library's own files, not input
                    parts.append((os.path.relpath(path, package), _sha256(fh.read())))
    return _sha256(json.dumps(parts).encode())


def run_inputs(config_dir: str, environment: str, environ: Mapping[str, str]) -> str:
    """The digest of a run's inputs but the stored inventory; equal digests mean equal inputs.

    ``config_dir`` and ``environment`` as :func:`osa_inventory.refresh.refresh` takes them,
    ``environ`` the variables the settings are read from. Raises the
    :class:`~osa_inventory.errors.InventoryError` a file that cannot be read gives.
    """
    config_dir, environment = os.path.abspath(config_dir), os.path.abspath(environment)
    ini = environ.get("OSA_INI") or DEFAULT_INI
    parts: list[object] = [
        ["code", code_digest()],
        ["folders", config_dir, environment],
        ["environ", sorted((k, v) for k, v in environ.items() if k in SETTINGS_VARIABLES or k.startswith(ENV_PREFIX))],
        ["osa.ini", ini, _sha256(read_file(ini, limit=MAX_INI_BYTES, error=SettingsError))
         if os.path.lexists(ini) else None],
    ]
    for path in config_files(config_dir, environment):
        parts.append([path, _sha256(read_file(path, limit=MAX_FILE_BYTES, error=ConfigError))
                      if os.path.lexists(path) else None])
    return _sha256(json.dumps(parts).encode())
