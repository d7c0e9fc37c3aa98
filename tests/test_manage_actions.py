"""inventory-manage's actions come from one table (issue 23.4): an action added there is whole.

The table (osa_inventory.manage.cli.ACTIONS) drives the parser, the help,
the usage checks, whether --reason is kept and the dispatch; these tests add
an action to it, as issue 26's --set-address will be added, and check that
each of those knows it without another change.
"""

from __future__ import annotations

import re

import pytest

from osa_inventory.commands import manage
from osa_inventory.manage import cli


@pytest.fixture
def noted(monkeypatch) -> list:
    """An extra action, --set-note TEXT, that stores a version; what it was run with is kept in the list."""
    calls: list = []

    def set_note(ctx):
        calls.append((ctx.args.set_note, ctx.args.reason))
        return [f"noted {ctx.args.set_note}"], 0

    extra = cli.Action("set-note", "changes", (cli.Option(("--set-note",), dict(metavar="TEXT", help="note TEXT")),),
                       set_note, stores=True)
    monkeypatch.setattr(cli, "ACTIONS", cli.ACTIONS + (extra,))
    return calls


def test_an_added_action_is_parsed_and_run_and_keeps_its_reason(noted, capfd, tmp_path):
    assert manage.main(["--config", str(tmp_path), "--set-note", "x", "--reason", "why"]) == 0
    assert capfd.readouterr() == ("noted x\n", "")
    assert noted == [("x", "why")]


def test_an_added_action_is_in_the_help_and_the_usage_checks(noted, capsys, tmp_path):
    with pytest.raises(SystemExit) as shown:
        manage.main(["--help"])
    assert shown.value.code == 0 and re.search(r"\n  --set-note TEXT +note TEXT\n", capsys.readouterr().out)
    for args, fragment in ((["--set-note", "x", "-l"], "choose one thing to do at a time"),
                           (["--set-note", "x", "--force"], "--force goes with --migrate-to or --import"),
                           ([], "--plan, --set-note")):
        with pytest.raises(SystemExit) as refused:
            manage.main(["--config", str(tmp_path), *args])
        assert refused.value.code == 2 and fragment in capsys.readouterr().err
    assert manage.main(["--config", str(tmp_path), "--history", "--reason", "why"]) == 1
    refusal = capsys.readouterr().err
    assert ("give it with -r, -d, --clear-ips, --set-address, --rename, --move, --migrate-to, --import, "
            "--restore or --set-note") in refusal
    assert noted == []


@pytest.mark.parametrize("action", cli.ACTIONS, ids=lambda a: a.name)
def test_each_option_of_the_table_chooses_its_action(action):
    parser = cli.build_parser("/nonexistent")
    for option in action.options:
        nargs = option.settings.get("nargs")
        value = [] if option.settings.get("action") in ("store_true",) else ["v", "w"] if nargs in (2, "+") else ["v"]
        companion = ["--to", "h"] if action.name == "move" else []  # --move NAME needs --to HOST
        args = parser.parse_args([option.names[0], *value, *companion])
        assert cli.check_usage(parser, args) is action
