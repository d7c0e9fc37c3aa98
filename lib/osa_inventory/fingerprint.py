"""One digest of everything an inventory run's result depends on, except the stored inventory.

A cache (the Ansible inventory plugin's) may reuse a result only when a run now
would give the same one. A run's result is a function of the config files it
reads, the settings osa.ini and the ``OSA_INVENTORY_*`` variables give, the
folders it is pointed at, the generator's code and the stored inventory.
:func:`run_inputs` covers all but the last, by content (not by timestamps,
which a quick edit of equal size can leave unchanged), with the very key the
script's own reuse of unchanged runs is kept under (:func:`osa_inventory.reuse.config_key`);
the caller compares the stored inventory itself (see docs/ansible.md, "Caching").
"""

from __future__ import annotations

import os
from typing import Mapping

from .config_files import read_inputs
from .errors import ConfigError
from .reuse import config_key
from .storage.settings import read_settings


def run_inputs(config_dir: str, environment: str, environ: Mapping[str, str]) -> str:
    """The digest of a run's inputs but the stored inventory; equal digests mean equal inputs.

    ``config_dir`` and ``environment`` as :func:`osa_inventory.refresh.refresh` takes them,
    ``environ`` the variables the settings are read from. Raises the
    :class:`~osa_inventory.errors.InventoryError` that a file which cannot be read, or osa.ini, gives.
    """
    config_dir, environment = os.path.abspath(config_dir), os.path.abspath(environment)
    settings = read_settings(environ)
    # Read here, not inside config_key, so that a file that cannot be read is its error, not "no key".
    key = config_key(config_dir, environment, settings, read_inputs(config_dir, environment))
    if key is None:  # the library's own code could not be read: nothing can be vouched for
        raise ConfigError(f"the inputs of {config_dir} cannot be digested; run without the cache")
    return key
