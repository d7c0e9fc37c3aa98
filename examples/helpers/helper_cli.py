"""What the helper scripts here share: where the inventory is (the commands' options) and how they fail.

Each helper uses nothing of osa_inventory but its API (``osa_inventory.api``, docs/api.md).
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from osa_inventory import api


class _Parser(argparse.ArgumentParser):
    """argparse, except that a usage error exits 1, as every other error: 2 means "not stored" to a caller."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(1, f"ERROR: {message}; see {self.prog} --help\n")


def parser(description: str) -> argparse.ArgumentParser:
    """A parser with ``--config`` and ``--osa-ini``, which default as the inventory commands' do."""
    p = _Parser(description=description)
    p.add_argument("--config", metavar="DIR",
                   help="deployment config folder (default: $OSA_CONFIG_DIR, else /etc/openstack_deploy)")
    p.add_argument("--osa-ini", metavar="FILE", help="osa.ini (default: $OSA_INI, else /etc/ansible/osa.ini)")
    return p


def where(args: argparse.Namespace) -> dict:
    """``open_inventory``'s arguments for the parsed options."""
    return {"osa_ini": args.osa_ini, "config_dir": args.config}


def run(main: Callable[[], int]) -> None:
    """Exit with ``main()``'s status; an inventory error is one ``ERROR:`` line on stderr and status 1."""
    try:
        status = main()
    except api.InventoryError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        status = 1
    sys.exit(status)
