#!/usr/bin/env python3
"""Ansible dynamic inventory for OpenStack-Ansible, with pluggable storage.

Point Ansible at this file (``-i`` or ``ANSIBLE_INVENTORY``). Storage is chosen
in osa.ini (``$OSA_INI`` or /etc/ansible/osa.ini); see README.md.
"""

import os
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "lib"))

from osa_inventory.commands.bootstrap import entry_point  # noqa: E402

if __name__ == "__main__":
    sys.exit(entry_point("osa_inventory.commands.script", __file__)(default_environment=HERE))
