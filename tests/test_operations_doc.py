"""docs/operations.md and inventory-manage's option table (manage/cli.py ACTIONS) say the same thing.

The parser, the help and the usage checks come from ACTIONS; the operators' guide is written by hand, so
this holds it to the table: every option the tool has is documented, and every option the guide shows
exists (a renamed or removed flag in the guide is advice that no longer runs).
"""

from __future__ import annotations

import os
import re

from helpers import ROOT

from osa_inventory.commands.script import build_parser as build_script_parser
from osa_inventory.manage.cli import ACTIONS, build_parser

DOC = os.path.join(ROOT, "docs", "operations.md")


def parser_options() -> list[tuple[str, ...]]:
    """Each option of inventory-manage with all its names (``("-r", "--remove-item")``)."""
    return [tuple(action.option_strings) for action in build_parser(ROOT)._actions if action.option_strings]


def documented_options(text: str) -> set[str]:
    # Options as the guide shows them: inside `code`, after a space, a backtick or a "/" of `-r/--remove-item`.
    spans = re.findall(r"`([^`\n]+)`", text) + re.findall(r"```(?:sh|console)?\n(.*?)```", text, re.S)
    return {m for span in spans for m in re.findall(r"(?:^|[\s/\[(])(--?[a-zA-Z][a-z0-9-]*)", span)}


def test_every_option_of_the_tool_is_in_the_operators_guide():
    with open(DOC, encoding="utf-8") as fh:
        shown = documented_options(fh.read())
    missing = sorted(names[-1] for names in parser_options() if not set(names) & shown and "--help" not in names)
    assert not missing, f"docs/operations.md does not show {missing}"
    assert all(set(o.names) & shown for a in ACTIONS for o in a.options)


def test_every_option_the_guide_shows_exists():
    with open(DOC, encoding="utf-8") as fh:
        text = fh.read()
    # Options of other commands the guide shows: openstack-ansible's and tar's.
    others = {"--limit", "--delete"}
    known = {name for names in parser_options() for name in names}
    # The guide shows the inventory script's options too (its --debug log, --check), by the same rule.
    known |= {name for action in build_script_parser(ROOT)._actions for name in action.option_strings}
    unknown = sorted(o for o in documented_options(text) - known - others if o.startswith("--"))
    assert not unknown, f"docs/operations.md shows options inventory-manage does not have: {unknown}"


def test_the_reader_of_the_guide_finds_options_where_they_are_written():
    sample = "Run `-r/--remove-item NAME` or `$MANAGE --plan --format json`; not --bare.\n```sh\n$MANAGE --history\n```"
    assert documented_options(sample) == {"-r", "--remove-item", "--plan", "--format", "--history"}
