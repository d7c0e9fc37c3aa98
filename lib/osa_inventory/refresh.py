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
from typing import TYPE_CHECKING, Mapping

from . import reuse
from .accounting import ChangeRecord
from .errors import ConfigError, InventoryError
from .inventory.printed import printed_text
from .storage.loader import open_backend
from .storage.settings import Settings, read_settings
from .storage.watchdog import EXIT

if TYPE_CHECKING:  # imported when a run reads the config: a reused run needs neither YAML nor the generator
    from .deployment_config import DeploymentConfig

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
    from .deployment_config import read_config

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
        printed_text(deployment.generate(backend.load()))  # what the run could not print is refused here too
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

    A run whose inputs (every config byte, the settings, the project's code and the stored
    inventory) are those of an earlier run that generated the stored inventory unchanged
    skips reading the config, checking and generating (:mod:`osa_inventory.reuse`): it
    prints the stored inventory it loaded, which is what the full run would print.
    """
    config_dir = config_folder(config_dir)
    environment = os.path.abspath(environment)
    started = time.perf_counter()
    settings = read_settings(environ)
    key = reuse.config_key(config_dir, environment, settings)
    place = reuse.record_place(config_dir, environment, os.environ if environ is None else environ)
    remembered = reuse.read_record(place) if key else None
    # A config seen in a record passed its checks then: it is read only if what is stored changed.
    seen = remembered if remembered is not None and remembered.config == key else None
    deployment = None if seen else _read(config_dir, environment, settings)  # a config error costs no storage access
    backend = open_backend(settings, config_dir, on_timeout=on_timeout)
    try:
        # Plugin calls that can fail come before anything is stored; describe() only when logged.
        where = backend.describe() if LOG.isEnabledFor(logging.DEBUG) else ""
        has_lock = backend.has_lock
        with backend.lock():
            locked = time.perf_counter()
            # Changed while this run waited for the lock: store what the config says now.
            if deployment is None:
                if reuse.config_key(config_dir, environment, settings) != key:
                    seen, deployment = None, _read(config_dir, environment, settings)
            elif deployment.changed_on_disk():
                deployment = _read(config_dir, environment, settings)
            printed = reuse.Printed(seen.stored if seen else None)
            stored = backend.load(known=printed.matches if seen else None)
            if printed.matched:
                inventory, text, changed, how = stored, printed.text, False, "reused"
                for warning in seen.warnings:
                    LOG.warning("%s", warning)
            else:
                deployment = deployment or _read(config_dir, environment, settings)
                # A backend's reserved addresses are asked only when this run hands out new ones.
                inventory, _ = deployment.generate_reserving(stored, backend.reserved_addresses)
                # Serialised once, before the plugin sees the inventory (write() gets a private copy).
                text = printed_text(inventory)
                changed = inventory != stored
                how = "stored" if changed else "unchanged"
                if changed:
                    from .inventory.changes import compare  # only a run that stores says what changed

                    record = ChangeRecord.now(command, compare(stored or {}, inventory).summary())
                    backend.write(inventory, as_json=text, record=record)
                else:
                    _remember(place, deployment, settings, stored, text)
            LOG.debug("%s: %d hosts, %s; %s %.3f s, run %.3f s", where,
                      len(inventory["_meta"]["hostvars"]), how,
                      "lock held" if has_lock else "unlocked work",
                      time.perf_counter() - locked, time.perf_counter() - started)
    finally:
        with contextlib.suppress(InventoryError):
            backend.close()
    return Refreshed(inventory, text, changed)


def _remember(place: tuple[str, str], deployment: DeploymentConfig, settings: Settings, stored: dict | None,
              text: str) -> None:
    """Record that ``deployment`` over ``stored`` generated it again, so the next such run may skip the work.

    Only when the stored inventory prints exactly as the generated one (equal dicts can differ
    in print: 1 and 1.0), since a reused run prints the stored one.
    """
    if stored is None or json.dumps(stored, sort_keys=True) != text:
        return
    key = reuse.config_key(deployment.config_dir, deployment.environment, settings, deployment.inputs)
    if key is not None:
        reuse.write_record(place, reuse.Record(key, reuse.stored_key(text), deployment.warnings))
