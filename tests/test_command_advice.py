"""Our two commands as advice spells them, and ``--version`` on both.

Every message that tells the operator to run the inventory script or inventory-manage
spells it with :func:`osa_inventory.resources.manage_command` /
:func:`~osa_inventory.resources.inventory_command`: from a checkout, the script by its full
path; installed, the console command beside the venv's Python (test_packaging.py runs that
advice as printed). The messages themselves are run as printed in the tests of each backend.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest
from helpers import ROOT, SCRIPT

import osa_inventory
from osa_inventory.resources import inventory_command, manage_command

MANAGE = os.path.join(ROOT, "scripts", "inventory-manage.py")


@pytest.mark.parametrize("command", [SCRIPT, MANAGE], ids=["inventory", "inventory-manage"])
def test_version_prints_the_package_version(command, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSA_")}
    env["OSA_INI"] = str(tmp_path / "missing.ini")  # --version reads no configuration at all
    shown = subprocess.run([sys.executable, command, "--version"], capture_output=True, text=True, env=env,
                           cwd=str(tmp_path), timeout=60)
    assert (shown.returncode, shown.stderr) == (0, "")
    assert shown.stdout == f"{os.path.basename(command)} {osa_inventory.__version__}\n"


def test_from_a_checkout_advice_names_the_scripts_by_their_full_paths():
    assert shlex.split(manage_command()) == [MANAGE]
    assert shlex.split(inventory_command()) == [SCRIPT]


def test_advice_names_the_config_folder_quoted_for_the_shell():
    folder = "/srv/deploy it's/openstack deploy"
    assert shlex.split(manage_command(folder)) == [MANAGE, "--config", folder]
    assert shlex.split(inventory_command(folder)) == [SCRIPT, "--config", folder]
