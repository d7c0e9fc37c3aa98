"""``inventory-manage``: the operators' tool's entry point (its actions are in :mod:`osa_inventory.manage`)."""

from __future__ import annotations

import os
import sys
from typing import Sequence

from ..manage import cli
from ..resources import environment_dir
from ..terminal import error_line, lines
from .runner import run_command


def main(argv: Sequence[str] | None = None, default_environment: str | None = None) -> int:
    """Entry point of scripts/inventory-manage.py; returns the exit status."""
    parser = cli.build_parser(default_environment or os.getcwd())
    parser.plan = cli.asks_for_plan(argv)
    args = parser.parse_args(argv)
    action = cli.check_usage(parser, args)
    refusal = cli.reason_refusal(args, action)
    if refusal:
        print(error_line(refusal), file=sys.stderr)
        return 1

    def work() -> tuple[str, int]:
        output, status = cli.run(args, action)
        return (output if isinstance(output, str) else lines(output)), status

    return run_command(work, interrupted="a change in progress was either stored whole or not at all")


def console_main() -> int:
    """The ``openstack-ansible-inventory-manage`` console command: the script's flags, the packaged env.d."""
    return main(default_environment=environment_dir())
