"""The run every front end makes: generate over the stored inventory, store it if it changed.

The inventory script, the Python API (:func:`osa_inventory.api.refresh`) and
the Ansible inventory plugin all call :func:`refresh`, so they agree on what
is generated, what is stored, under which lock and with which change record;
only the command named in that record differs. :func:`check` is ``--check``:
the same reading and generation, nothing written.

Nothing here prints or exits: failures are
:class:`~osa_inventory.errors.InventoryError` lines, warnings go to the
``osa_inventory`` logger, and each front end shows both its own way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Mapping

from .accounting import ChangeRecord
from .deployment_config import DeploymentConfig, read_config
from .errors import ConfigError, InventoryError
from .inventory.changes import compare
from .storage.loader import open_backend
from .storage.settings import Settings, read_settings
from .storage.watchdog import EXIT

LOG = logging.getLogger("osa_inventory")


@dataclass
class Refreshed:
    """What one run gives: the inventory as stored after it, and what the run did."""

    inventory: dict
    """The whole inventory (``_meta.hostvars`` included), as the inventory script prints it."""
    text: str
    """``inventory`` as compact JSON with sorted keys: exactly the script's ``--list`` output."""
    changed: bool
    """Whether this run stored a new version (the config gave something the store did not hold)."""


@dataclass
class Checked:
    """What ``--check`` reports of a config that passed: it generates, and with what warnings."""

    user_groups: dict[str, list[str]] = field(default_factory=dict)
    """The config's host groups env.d does not know, with their hosts (OSA makes each a group)."""
    warnings: list[str] = field(default_factory=list)
    """The config's warnings, then the backend's (a plugin without a lock)."""


#: How the commands' users name another config folder (the API and the Ansible plugin say it their way).
NAME_ANOTHER = "pass --config DIR or set OSA_CONFIG_DIR"


def config_folder(config_dir: str, name_another: str = NAME_ANOTHER) -> str:
    """``config_dir`` made absolute; one that is not a folder is one line ending with ``name_another``."""
    config_dir = os.path.abspath(config_dir)
    if not os.path.isdir(config_dir):
        raise ConfigError(f"config folder {config_dir} does not exist; {name_another}")
    return config_dir


def _read(config_dir: str, environment: str, settings: Settings, every_problem: bool = False) -> DeploymentConfig:
    deployment = read_config(config_dir, environment, str(settings.inventory["unknown_host_groups"]),
                             every_problem)
    for warning in deployment.warnings:
        LOG.warning("%s", warning)
    return deployment


def check(config_dir: str, environment: str, environ: Mapping[str, str] | None = None,
          on_timeout: str = EXIT) -> Checked:
    """Read and check the config of ``config_dir`` and generate over the stored inventory; write nothing.

    Every problem of the config is raised at once (:class:`~osa_inventory.errors.ConfigErrors`),
    before the backend is opened. ``on_timeout`` as in :func:`refresh`.
    """
    config_dir = config_folder(config_dir)
    settings = read_settings(environ)
    deployment = _read(config_dir, os.path.abspath(environment), settings, every_problem=True)
    backend = open_backend(settings, config_dir, on_timeout=on_timeout)
    try:
        deployment.generate(backend.load())
        warnings = deployment.warnings + [backend.no_lock_warning()]
        return Checked(deployment.user_defined_groups(), [w for w in warnings if w])
    finally:
        with contextlib.suppress(InventoryError):
            backend.close()


def refresh(config_dir: str, environment: str, command: str,
            environ: Mapping[str, str] | None = None, on_timeout: str = EXIT) -> Refreshed:
    """Generate the inventory of ``config_dir`` over the stored one and store it if it changed.

    The config is read and checked before the backend is opened; under the backend's lock
    the stored inventory is loaded (the config read again if it changed while the run
    waited), generated over, and written only if the result differs, with a change record
    naming ``command``. ``environ`` (default ``os.environ``) supplies ``$OSA_INI`` and the
    ``OSA_INVENTORY_*`` overrides. ``on_timeout``: what a plugin step past ``[inventory] timeout``
    does, ``"exit"`` (the script: end the process) or ``"raise"`` (a library: StorageTimeout).
    """
    config_dir = config_folder(config_dir)
    environment = os.path.abspath(environment)
    started = time.perf_counter()
    settings = read_settings(environ)
    deployment = _read(config_dir, environment, settings)  # a config error costs no storage access
    backend = open_backend(settings, config_dir, on_timeout=on_timeout)
    try:
        # Plugin calls that can fail come before anything is stored; describe() only when logged.
        where = backend.describe() if LOG.isEnabledFor(logging.DEBUG) else ""
        has_lock = backend.has_lock
        with backend.lock():
            locked = time.perf_counter()
            if deployment.changed_on_disk():
                # Changed while this run waited for the lock: store what the config says now.
                deployment = _read(config_dir, environment, settings)
            stored = backend.load()
            inventory = deployment.generate(stored)
            # Serialised once, before the plugin sees the inventory (write() gets a private copy).
            text = json.dumps(inventory, sort_keys=True)
            changed = inventory != stored
            if changed:
                record = ChangeRecord.now(command, compare(stored or {}, inventory).summary())
                backend.write(inventory, as_json=text, record=record)
            LOG.debug("%s: %d hosts, %s; %s %.3f s, run %.3f s", where,
                      len(inventory["_meta"]["hostvars"]), "stored" if changed else "unchanged",
                      "lock held" if has_lock else "unlocked work",
                      time.perf_counter() - locked, time.perf_counter() - started)
    finally:
        with contextlib.suppress(InventoryError):
            backend.close()
    return Refreshed(inventory, text, changed)
