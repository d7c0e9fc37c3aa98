"""Where the files shipped with the code are: the built-in plugins and the env.d skeleton.

In a checkout they sit in ``lib/plugins/`` and ``playbooks/inventory/env.d/``;
an installed package carries the same folders as package data
(``osa_inventory/plugins/`` and ``osa_inventory/environment/env.d/``, mapped
in pyproject.toml). Each function answers for whichever layout this code
runs from, so the checkout scripts and the console commands behave alike.
"""

from __future__ import annotations

import os
import shlex
import sys

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
CHECKOUT_ROOT = os.path.dirname(os.path.dirname(PACKAGE_DIR))


def _first_existing(*folders: str) -> str:
    for folder in folders:
        if os.path.isdir(folder):
            return folder
    return folders[-1]  # the checkout's path: an error naming it is clearer than a site-packages one


def plugins_dir() -> str:
    """The folder of the built-in storage plugins (filesystem.py, etcd.py, craton.py, netbox.py)."""
    return _first_existing(os.path.join(PACKAGE_DIR, "plugins"), os.path.join(CHECKOUT_ROOT, "lib", "plugins"))


def environment_dir() -> str:
    """The folder that contains the base ``env.d/`` skeleton (the default of ``--environment``)."""
    return _first_existing(os.path.join(PACKAGE_DIR, "environment"),
                           os.path.join(CHECKOUT_ROOT, "playbooks", "inventory"))


def running_from_checkout() -> bool:
    """Whether this code runs from a source checkout (lib/ on sys.path) rather than an installed package."""
    return not os.path.isdir(os.path.join(PACKAGE_DIR, "plugins"))


def manage_command(config_dir: str | None = None) -> str:
    """The operators' tool as this user can run it, for advice; with ``--config DIR`` when given."""
    return _command("openstack-ansible-inventory-manage", ("scripts", "inventory-manage.py"), config_dir)


def inventory_command(config_dir: str | None = None) -> str:
    """The inventory script as this user can run it, for advice; with ``--config DIR`` when given."""
    return _command("openstack-ansible-inventory", ("playbooks", "inventory", "dynamic_inventory.py"), config_dir)


def _command(console: str, checkout: tuple[str, ...], config_dir: str | None) -> str:
    """A shell-quoted command line: the checkout's script, or the installed console command.

    The console command is named by its full path when it sits beside this Python (a venv's
    ``bin/``): the README's install does not put the venv on PATH, and sudo may drop it.
    """
    if running_from_checkout():
        program = os.path.join(CHECKOUT_ROOT, *checkout)
    else:
        beside = os.path.join(os.path.dirname(sys.executable), console)
        program = beside if os.access(beside, os.X_OK) else console
    words = [program] + (["--config", config_dir] if config_dir else [])
    return shlex.join(words)
