"""No text an attacker can write reaches the operator's terminal raw (issue 22.4).

Each source the issue lists goes through the real commands: --reason and
OSA_INVENTORY_REASON, host and group names stored in the inventory, etcd
records (tests/test_etcd_terminal.py), backup archive member names, a
plugin's error message and osa.ini values. Every table and error line must
show control, bidirectional and invisible characters as escapes; JSON and
YAML output must stay exact.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import tarfile
import time

import pytest
import yaml
from helpers import base_config, run_script, write_config, write_ini
from etcd_server import etcd  # noqa: F401 (fixture)
from plugin_fixtures import assert_one_line_failure, config_dir, plugin_dir  # noqa: F401 (fixture)
from test_manage_support import Deployment

from osa_inventory.manage.formatting import Lines, render_table
from osa_inventory.terminal import escape, lines

#: Every character the output must never carry raw (line feeds separate lines and are allowed).
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
                 "\ud800-\udfff]")
# Clear the screen, set the clipboard (OSC 52), ring, back up over the line, a C1 CSI, reverse the text.
HOSTILE_HOST = "evil\x1b[2J\x1b]52;c;cm0gLXJmIC8=\x07\x08\x08\x9b31m\u202egnp.exe"
HOSTILE_GROUP = "grp\x1b[8m\u2066hidden\u2069\x7f"
NEWLINE_HOST = "two\nlines"


def assert_shown_safely(text: str) -> None:
    found = RAW.search(text)
    assert found is None, f"raw {found.group()!r} reaches the terminal: {text[max(0, found.start() - 60):][:160]!r}"


def shown(text: str) -> str:
    """How the commands show ``text`` (what the operator reads)."""
    return escape(text)


# -- the escaping itself ---------------------------------------------------------------------------

@pytest.mark.parametrize("text", [HOSTILE_HOST, HOSTILE_GROUP, "tab\there", "\ud800 lone surrogate",
                                  "\u200b\u200d\ufeff\u2028\u2029\u061c", "plain"])
def test_escape_is_visible_and_gives_back_the_exact_text(text):
    out = escape(text)
    assert_shown_safely(out)
    # Read as a Python string literal, the shown text is the exact text (for text without backslashes).
    assert ast.literal_eval('"' + out.replace('"', '\\"') + '"') == text
    out.encode("utf-8")  # printable as UTF-8, even a lone surrogate
    assert escape(out) == out, "escaping twice changed it"


def test_escape_keeps_ordinary_text_and_what_it_is_asked_to_keep():
    assert escape("compute1 über 東京 ✓") == "compute1 über 東京 ✓"
    assert escape("a\nb\x1b", keep="\n") == "a\nb\\x1b"
    assert escape("\x1b\x9b\u202e") == "\\x1b\\x9b\\u202e"
    # Backslashes stay: a value already quoted the Python way reads as it did.
    assert escape(repr("comp\tute")) == repr("comp\tute") == "'comp\\tute'"
    assert lines(["a\x07", "b\nc"]) == "a\\x07\nb\\nc"


def test_table_cells_are_escaped_and_the_borders_stay_aligned():
    text = render_table(("name", "groups"), [[HOSTILE_HOST, Lines([HOSTILE_GROUP, "b"])], [NEWLINE_HOST, "x"]])
    assert_shown_safely(text)
    rows = text.splitlines()
    assert len({len(row) for row in rows}) == 1, "the escaped width was not counted"
    assert f"| {shown(HOSTILE_HOST)} | {shown(HOSTILE_GROUP)} |" in rows
    assert any(f"| {shown(NEWLINE_HOST)} " in row for row in rows), "a line break inside a name split its row"
    # Printing it again for the terminal changes nothing: a table is escaped once.
    assert lines([text]) == text


# -- the real commands ------------------------------------------------------------------------------

@pytest.fixture
def hostile(tmp_path):
    """A stored inventory (filesystem backend) holding a hostile host in a hostile group."""
    dep = Deployment(str(tmp_path))
    inventory = dep.generate()
    inventory["_meta"]["hostvars"][HOSTILE_HOST] = {"ansible_host": "10.0.0.99", "component": "x\x1b[1m",
                                                    "physical_host": HOSTILE_HOST}
    inventory["_meta"]["hostvars"][NEWLINE_HOST] = {"ansible_host": "10.0.0.98"}
    inventory[HOSTILE_GROUP] = {"hosts": [HOSTILE_HOST, NEWLINE_HOST], "children": []}
    with open(dep.inventory_path, "w", encoding="utf-8") as fh:
        json.dump(inventory, fh)
    return dep


@pytest.mark.parametrize("args", [["-l"], ["-g"], ["-G"], ["-l", "--sort", "ansible_host"]])
def test_stored_host_and_group_names_are_escaped_in_tables(hostile, args):
    result = hostile.manage(*args)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert_shown_safely(result.stdout)
    assert shown(HOSTILE_HOST) in result.stdout and shown(NEWLINE_HOST) in result.stdout
    if args[0] != "-l":
        assert shown(HOSTILE_GROUP) in result.stdout


def test_data_output_stays_exact(hostile):
    exported = hostile.manage("--export")
    assert exported.returncode == 0, exported.stderr
    data = json.loads(exported.stdout)
    assert HOSTILE_GROUP in data["hosts"][HOSTILE_HOST]["groups"]
    for fmt, parse in (("json", json.loads), ("yaml", yaml.safe_load)):
        listed = hostile.manage("-g", "--format", fmt)
        assert listed.returncode == 0, listed.stderr
        assert_shown_safely(listed.stdout)  # both formats escape controls themselves
        assert parse(listed.stdout)[HOSTILE_HOST] == [HOSTILE_GROUP]
    printed = run_script(hostile.config_dir, ini=hostile.ini)
    assert printed.returncode == 0 and printed.stderr == "", printed.stderr
    assert json.loads(printed.stdout)[HOSTILE_GROUP]["hosts"] == [HOSTILE_HOST, NEWLINE_HOST]


def test_removing_a_hostile_host_and_the_diff_show_it_escaped(hostile):
    removed = hostile.manage("-r", HOSTILE_HOST, "--reason", "gone\x1b]0;owned\x07 \u202eekaf")
    assert removed.returncode == 0, removed.stderr
    assert_shown_safely(removed.stdout)
    assert HOSTILE_HOST not in hostile.stored()["_meta"]["hostvars"]
    for args in (["--diff"], ["--history"]):
        result = hostile.manage(*args)
        assert result.returncode == 0, result.stderr
        assert_shown_safely(result.stdout)
    assert f"- host {shown(HOSTILE_HOST)}" in hostile.manage("--diff").stdout
    history = hostile.manage("--history", "--format", "json")
    assert json.loads(history.stdout)[-1]["reason"] == "gone\x1b]0;owned\x07 \u202eekaf"
    table = hostile.manage("--history").stdout
    assert shown("gone\x1b]0;owned\x07 \u202eekaf") in table
    # An error naming the hostile name (it is gone now) escapes it too.
    missing = hostile.manage("-r", HOSTILE_HOST)
    assert_shown_safely(missing.stdout + missing.stderr)


def test_reason_from_the_environment_is_escaped_in_the_history(tmp_path):
    dep = Deployment(str(tmp_path))
    reason = "CHG-1\x1b[1A\x1b[2K\x9b1A\u2067rebuild"
    dep.generate(env={"OSA_INVENTORY_REASON": reason})
    history = dep.manage("--history")
    assert history.returncode == 0, history.stderr
    assert_shown_safely(history.stdout)
    assert shown(reason) in history.stdout
    assert json.loads(dep.manage("--history", "--format", "json").stdout)[-1]["reason"] == reason


def test_archive_member_names_are_escaped_in_the_history_and_in_errors(tmp_path):
    dep = Deployment(str(tmp_path))
    inventory = dep.generate()
    name = "openstack_inventory.json-\x1b]2;fake\x07\u202e.json"
    data = json.dumps(inventory).encode()
    with tarfile.open(os.path.join(dep.config_dir, "backup_openstack_inventory.tar"), "w") as tar:
        member = tarfile.TarInfo(name)
        member.size, member.mtime = len(data), int(time.time()) - 60
        tar.addfile(member, io.BytesIO(data))
    history = dep.manage("--history")
    assert history.returncode == 0, history.stderr
    assert_shown_safely(history.stdout)
    version = json.loads(dep.manage("--history", "--format", "json").stdout)[0]["version"]
    assert shown(version) in history.stdout
    unknown = dep.manage("--diff", version + "\x1b[2J")
    assert unknown.returncode == 1
    assert_shown_safely(unknown.stderr)


PLUGIN = '''
from osa_inventory.errors import StorageError

class Storage:
    def register(self, args):
        pass
    def load(self):
        raise StorageError("the store says \\x1b]52;c;cm0gLXJmIC8=\\x07\\x1b[2K\\u202eevil")
    def write(self, inventory):
        raise StorageError("never")
'''


def test_plugin_error_messages_are_escaped(tmp_path, config_dir):
    folder = plugin_dir(tmp_path, {"loud.py": PLUGIN})
    ini = write_ini(str(tmp_path), f"[inventory]\nbackend = loud\nplugin_paths = {folder}\n")
    line = assert_one_line_failure(run_script(config_dir, ini=ini), "storage backend loud")
    assert_shown_safely(line)
    assert shown("\x1b]52;c;cm0gLXJmIC8=\x07\x1b[2K\u202eevil") in line
    dep = Deployment(str(tmp_path / "manage"))
    dep.write_ini(f"[inventory]\nbackend = loud\nplugin_paths = {folder}\n")
    assert_shown_safely(assert_one_line_failure(dep.manage("-l"), "storage backend loud"))


@pytest.mark.parametrize("ini_text, fragment", [
    ("[inventory]\nbackend = filesystem\nevil\x1b[2Joption = 1\n", "unknown option [inventory] evil"),
    ("[inventory]\nbackend = filesystem\nplugin_paths = /nonexistent/\x1b]0;x\x07\u202e\n", "plugin folder"),
    ("[inventory]\nbackend = filesystem\ntimeout = 5\x1b[8m\n", "timeout"),
])
def test_osa_ini_values_in_error_lines_are_escaped(tmp_path, config_dir, ini_text, fragment):
    ini = write_ini(str(tmp_path), ini_text)
    line = assert_one_line_failure(run_script(config_dir, ini=ini), fragment)
    assert_shown_safely(line)
    dep = Deployment(str(tmp_path / "manage"), ini_text=ini_text)
    assert_shown_safely(assert_one_line_failure(dep.manage("-l"), fragment))


def test_typed_arguments_in_usage_errors_are_escaped(tmp_path):
    dep = Deployment(str(tmp_path))
    for args in (["-l", "--bogus\x1b[2J"], ["--plan", "--bogus\x1b[2J"]):
        result = dep.manage(*args)
        assert result.returncode in (1, 2) and "--bogus" in result.stderr
        assert_shown_safely(result.stderr)


# -- etcd records --------------------------------------------------------------------------------

def test_etcd_records_and_marker_names_are_escaped(etcd, tmp_path):
    """Anyone who may write the prefix can put text in a manifest's record or the deployment marker."""
    from etcd_server import build_inventory
    from test_etcd_integrity import ini_for, manage, put_raw
    from test_etcd_plugin import open_etcd

    from osa_inventory.accounting import ChangeRecord
    from osa_inventory.backends.etcd.layout import MARKER_KIND

    prefix = "/osa-test/terminal"
    backend = open_etcd(etcd.endpoints_text, prefix, deployment="old")
    user = "alice\x1b]0;root@prod\x07\x1b[1A"
    backend.write(build_inventory(2), record=ChangeRecord.now("inventory-manage -r x\x9b2J", "s", reason="r\u202eok"))
    put_raw(etcd, prefix + "/manifest", json.dumps(dict(json.loads(etcd_value(etcd, prefix + "/manifest")),
                                                        record={"user": user, "summary": "1 host(s) added"})).encode())
    ini = ini_for(tmp_path, etcd.endpoints_text, prefix, deployment="old")
    history = manage(ini, "--history")
    assert history.returncode == 0, history.stderr
    assert_shown_safely(history.stdout)
    assert shown(user) in history.stdout
    # A marker naming the deployment with control characters: in the refusal, and in --adopt's answer.
    name = "old\x1b[2J\u202eevil"
    put_raw(etcd, prefix + "/deployment", json.dumps({"kind": MARKER_KIND, "deployment": name}).encode())
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, base_config())
    refused = run_script(config_dir, ini=ini)
    assert refused.returncode == 1 and shown(name) in refused.stderr
    assert_shown_safely(refused.stderr)
    adopted = manage(ini, "--adopt")
    assert adopted.returncode == 0, adopted.stderr
    assert f"held deployment '{shown(name)}'" in adopted.stdout
    assert_shown_safely(adopted.stdout)


def etcd_value(cluster, key: str) -> bytes:
    import base64
    answer = cluster.post("/v3/kv/range", {"key": base64.b64encode(key.encode()).decode()})
    return base64.b64decode(answer["kvs"][0]["value"])
