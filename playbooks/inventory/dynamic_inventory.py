#!/usr/bin/env python3
"""Ansible dynamic inventory for OpenStack-Ansible, with pluggable storage.

Point Ansible at this file (``-i`` or ``ANSIBLE_INVENTORY``). Storage is chosen
in osa.ini (``$OSA_INI`` or /etc/ansible/osa.ini); see README.md.
"""

import os
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "lib"))

try:
    from osa_inventory.cli import main
except ImportError as exc:
    # Run by a Python without the requirements (e.g. "python3" on PATH): use the
    # project's own virtualenv when there is one, else say what is missing.
    venv_python = os.path.join(ROOT, ".venv", "bin", "python")
    if os.path.exists(venv_python) and os.path.realpath(sys.prefix) != os.path.realpath(os.path.join(ROOT, ".venv")):
        os.execv(venv_python, [venv_python, os.path.realpath(__file__)] + sys.argv[1:])
    sys.stderr.write(f"ERROR: {exc.name or exc} is not installed for {sys.executable}; "
                     f"install {os.path.join(ROOT, 'requirements.txt')} into it\n")
    sys.exit(1)

if __name__ == "__main__":
    sys.exit(main(default_environment=HERE))
