"""``dynamic_inventory.py``: the executable Ansible runs.

The run itself (read the config, load the stored inventory under the
backend's lock, generate, store only if it changed) is
:func:`osa_inventory.refresh.refresh`, the one every front end makes; this
module adds the command line, the log and the printing. Stdout carries nothing but the JSON; stderr stays silent on
success and holds one line on failure, with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import stat
from typing import Sequence

from .. import __version__
from ..errors import InventoryError
from ..refresh import check, config_folder, refresh
from ..resources import environment_dir
from ..storage.store_files import Folder, open_folder_fd
from .runner import DEFAULT_CONFIG_DIR, Parser, chosen_config_dir, run_command
from ..terminal import lines

LOG = logging.getLogger("osa_inventory")
LOG_NAME = "inventory.log"
#: The command a script run records with the versions it stores (see osa_inventory.accounting).
SCRIPT_COMMAND = "dynamic_inventory"


def build_parser(default_environment: str) -> argparse.ArgumentParser:
    p = Parser(
        description="OpenStack-Ansible dynamic inventory with pluggable storage (see osa.ini).")
    p.add_argument("--config", default=None, metavar="DIR",
                   help="folder holding openstack_user_config.yml, conf.d/ and env.d/ "
                        f"(default: $OSA_CONFIG_DIR, else {DEFAULT_CONFIG_DIR})")
    p.add_argument("-e", "--environment", default=default_environment, metavar="DIR",
                   help="folder that contains the base env.d/ skeleton (default: %(default)s)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--list", action="store_true", help="print the whole inventory (the default)")
    mode.add_argument("--host", metavar="NAME", help="print the variables of one host ({} if unknown)")
    mode.add_argument("--check", action="store_true",
                      help="validate the configuration, print 'Configuration ok!' and write nothing")
    p.add_argument("-d", "--debug", action="store_true",
                   help=f"log what happens to {LOG_NAME} in the config folder")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


class _PrivateLog(logging.FileHandler):
    """inventory.log, created 0600 (it names hosts and paths); a log that cannot be opened is skipped.

    It is opened relative to the config folder without following a link, and
    appended to only when it is a file of root's or the current user's that
    nobody else may write, with one name (:mod:`.storage.store_files`): a link
    or a file planted there never takes root's lines elsewhere.
    FileHandler opens its file outside its own error handling, so without this a
    warning logged on a read-only config folder would fail whatever logged it.
    """

    def _open(self):
        folder, name = os.path.split(self.baseFilename)
        with Folder(open_folder_fd(folder), folder) as opened:
            try:
                fd = opened.open_append(name)
            except InventoryError as exc:
                raise OSError(str(exc)) from None  # skipped, like any log that cannot be opened
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            super().emit(record)
        except OSError:
            self.handleError(record)  # silent: logging.raiseExceptions is off


class _OneLineFormatter(logging.Formatter):
    """Each message on one line: text from a config (a key holding a newline) cannot forge log lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record).replace("\r", "\\r").replace("\n", "\\n")


def _setup_logging(config_dir: str, debug: bool) -> None:
    logging.raiseExceptions = False  # a read-only config folder must not print logging errors on stderr
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    with Folder.open(config_dir) as folder:
        found = folder.lstat(LOG_NAME)
        # A link, or a file someone else may change, would take root's lines elsewhere: refused, not
        # skipped, so the operator hears of it. Anything else (a folder, a FIFO) is a log that cannot be opened.
        planted = folder.check(LOG_NAME) if found and (stat.S_ISLNK(found.st_mode) or stat.S_ISREG(found.st_mode)) \
            else None
    if planted:
        raise InventoryError(str(planted))
    handler = _PrivateLog(os.path.join(config_dir, LOG_NAME), delay=True)
    handler.setFormatter(_OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)


def _user_group_lines(groups: dict[str, list[str]]) -> list[str]:
    """What ``--check`` says of user-defined host groups: OSA makes them silently."""
    if not groups:
        return []
    return (["User-defined host groups (env.d does not know them; as in OSA, each is a group of its hosts "
             "and gives them no containers):"]
            + [f"  {name}: {', '.join(hosts)}" for name, hosts in groups.items()])


def run(args: argparse.Namespace) -> str:
    """Do the work for parsed ``args`` and return what to print."""
    config_dir = config_folder(chosen_config_dir(args.config))
    _setup_logging(config_dir, args.debug)
    if args.check:
        checked = check(config_dir, args.environment)
        return lines(["Configuration ok!"] + _user_group_lines(checked.user_groups)
                     + [f"WARNING: {w}" for w in checked.warnings])
    refreshed = refresh(config_dir, args.environment, SCRIPT_COMMAND)
    if args.host is None:
        return refreshed.text
    return json.dumps(refreshed.inventory["_meta"]["hostvars"].get(args.host, {}), sort_keys=True)


def main(argv: Sequence[str] | None = None, default_environment: str | None = None) -> int:
    """Entry point of playbooks/inventory/dynamic_inventory.py; returns the exit status."""
    default_environment = default_environment or os.getcwd()
    args = build_parser(default_environment).parse_args(argv)
    return run_command(lambda: (run(args), 0), interrupted="the stored inventory was not changed by this run",
                       log_hint=f"{LOG_NAME} in the config folder")


def console_main() -> int:
    """The ``openstack-ansible-inventory`` console command: the script's flags, the packaged env.d."""
    return main(default_environment=environment_dir())
