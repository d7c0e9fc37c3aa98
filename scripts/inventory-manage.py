#!/usr/bin/env python3
"""Operators' tool for the stored OpenStack-Ansible inventory; see docs/operations.md."""

import os
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "lib"))

from osa_inventory.commands.bootstrap import entry_point  # noqa: E402

if __name__ == "__main__":
    main = entry_point("osa_inventory.commands.manage", __file__)
    sys.exit(main(default_environment=os.path.join(ROOT, "playbooks", "inventory")))
