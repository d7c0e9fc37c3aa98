"""The change record of each write inventory-manage makes: which command, and why.

The command is named ``inventory-manage`` whether the checkout script or the
installed ``openstack-ansible-inventory-manage`` ran, followed by the flags
that made the change with their values (shell-quoted): ``inventory-manage -r
compute1 --with-containers``. ``--config`` and ``-f`` are left out (the record
is kept with the inventory they name), ``--force`` is kept, and a migration
names its source, since the record lives on the target.
"""

from __future__ import annotations

import argparse
import shlex

from ..storage.change import Account

COMMAND = "inventory-manage"


def words(*parts: str) -> str:
    """``inventory-manage`` and ``parts``, shell-quoted: the command a record names."""
    return " ".join(shlex.quote(p) if i else p for i, p in enumerate((COMMAND,) + parts))


def edit_command(args: argparse.Namespace) -> str:
    """``inventory-manage -r A -r B --with-containers -d G --clear-ips``: the edits asked for, in that order."""
    parts: list[str] = []
    for name in args.remove_item or ():
        parts += ["-r", name]
    if args.with_containers:
        parts.append("--with-containers")
    for name in args.remove_group or ():
        parts += ["-d", name]
    if args.clear_ips:
        parts.append("--clear-ips")
    return words(*parts)


def restore_command(version: str) -> str:
    return words("--restore", version)


def migrate_command(section: str, force: bool, source: str) -> str:
    """``inventory-manage --migrate-to SECTION [--force] (from SOURCE)``: the record is kept on the target."""
    return words("--migrate-to", section, *(["--force"] if force else [])) + f" (from {source})"


def import_command(path: str, force: bool) -> str:
    return words("--import", path, *(["--force"] if force else []))


def account(args: argparse.Namespace, command: str) -> Account:
    """The account of this invocation's writes, with its ``--reason``."""
    return Account(command, args.reason)
