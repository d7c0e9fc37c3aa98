"""--history, --diff and --restore: round trips on the filesystem backend, a --file, and errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import textwrap

import pytest
from etcd_server import etcd  # noqa: F401  (fixture)
from test_manage_support import FIXTURES, INVENTORY, ROOT, Deployment, assert_one_line_error

from osa_inventory.manage import versions


@pytest.fixture
def dep(tmp_path):
    """Three versions: generated, then compute1 removed, then container addresses cleared."""
    d = Deployment(str(tmp_path))
    d.v0 = d.generate()
    assert d.manage("-r", "compute1").returncode == 0
    d.v1 = d.stored()
    assert d.manage("--clear-ips").returncode == 0
    d.v2 = d.stored()
    return d


def history(d: Deployment, *extra: str) -> list[dict]:
    proc = d.manage("--history", "--format", "json", *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_history_lists_versions_with_what_changed(dep):
    listed = history(dep)
    assert len(listed) == 3
    assert [v["current"] for v in listed] == [False, False, True]
    assert all(re.fullmatch(r"\d{8}_\d{6}(_\d\d)?", v["version"]) for v in listed), listed
    assert all(len(v["time"]) == 20 and v["time"].endswith("Z") for v in listed)
    # Recorded with each write: the first run added everything.
    assert listed[0]["summary"].startswith("11 host(s) added (compute1, ")
    assert [v["command"] for v in listed] == ["dynamic_inventory", "inventory-manage -r compute1",
                                              "inventory-manage --clear-ips"]
    assert listed[1]["summary"].startswith("1 host(s) removed (compute1); ")
    assert "group(s) with changed members" in listed[1]["summary"]
    assert listed[2]["summary"].startswith("8 host(s) with changed addresses")
    table = dep.manage("--history").stdout
    assert "changes since the version before" in table and listed[0]["version"] in table


def test_diff_default_previous_and_current(dep):
    proc = dep.manage("--diff")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    first, current = (v["version"] for v in history(dep)[1:])
    assert lines[:2] == [f"--- version {first}", f"+++ version {current}"]
    galera = next(n for n in dep.v1["_meta"]["hostvars"] if "infra1-galera" in n)
    old = dep.v1["_meta"]["hostvars"][galera]
    assert f"~ host {galera}" in lines
    assert f'    - ansible_host: "{old["ansible_host"]}"' in lines
    tunnel = old["container_networks"]["tunnel_address"]["address"]
    assert f'    - container_networks.tunnel_address.address: "{tunnel}"' in lines
    assert not any(line.startswith(("+ host", "- host", "~ group")) for line in lines)


def test_diff_between_two_named_versions_and_against_current(dep):
    a, b = (v["version"] for v in history(dep)[:2])
    lines = dep.manage("--diff", a, b).stdout.splitlines()
    assert lines[:2] == [f"--- version {a}", f"+++ version {b}"]
    assert "- host compute1" in lines
    assert "~ group nova_compute" in lines and "    - host compute1" in lines
    assert not any(line.startswith("~ host") for line in lines)
    data = json.loads(dep.manage("--diff", a, "--format", "json").stdout)
    assert data["from"] == a and data["to"] == history(dep)[-1]["version"]
    assert data["changes"]["hosts_removed"] == ["compute1"]
    assert len(data["changes"]["readdressed"]) == 8
    same = dep.manage("--diff", "current", "current")
    assert same.stdout.splitlines()[-1] == "no differences"
    assert_one_line_error(dep.manage("--diff", "20000101_000000"), "no version '20000101_000000'", "--history")


def test_restore_round_trip_and_undo(dep):
    oldest = history(dep)[0]["version"]
    proc = dep.manage("--restore", oldest)
    assert proc.returncode == 0, proc.stderr
    assert f"restored version {oldest} as the current inventory" in proc.stdout
    assert dep.stored() == dep.v0
    after = history(dep)
    assert len(after) == 4  # the restore is itself a new version
    assert after[-1]["summary"].startswith("1 host(s) added (compute1); 8 host(s) with new addresses")
    # Undo: the version the restore replaced is the newest backup.
    undo = dep.manage("--restore", after[-2]["version"])
    assert undo.returncode == 0, undo.stderr
    assert dep.stored() == dep.v2
    same = dep.manage("--restore", "current")
    assert same.returncode == 0 and "nothing was written" in same.stdout
    assert len(history(dep)) == 5


def test_restore_works_when_the_current_file_is_corrupt(dep):
    newest = history(dep)[-2]["version"]
    with open(dep.inventory_path, "w") as fh:
        fh.write('{"_meta": {"hostvars": ')
    listing = dep.manage("-l")
    assert_one_line_error(listing, "is not valid JSON", f"--restore {newest}")
    listed = history(dep)
    assert not listed[-1]["current"] and listed[-1]["summary"].startswith("cannot be read")
    proc = dep.manage("--restore", newest)
    assert proc.returncode == 0, proc.stderr
    assert "could not be read" in proc.stdout
    assert dep.stored() == dep.v1
    aside = [n for n in os.listdir(dep.config_dir) if n.startswith(INVENTORY + ".corrupt-")]
    assert len(aside) == 1
    with open(os.path.join(dep.config_dir, aside[0])) as fh:
        assert fh.read() == '{"_meta": {"hostvars": '
    assert dep.manage("-l").returncode == 0


def test_file_with_another_name_keeps_its_backups_as_history(tmp_path):
    path = tmp_path / "inv.json"
    shutil.copy(os.path.join(FIXTURES, "legacy", INVENTORY), path)
    original = json.loads(path.read_text())
    dep = Deployment(str(tmp_path / "dep"))
    assert dep.manage("-f", str(path), "-r", "compute1", config=False).returncode == 0
    assert dep.manage("-f", str(path), "-d", "utility_all", "--reason", "unused", config=False).returncode == 0
    listed = json.loads(dep.manage("-f", str(path), "--history", "--format", "json", config=False).stdout)
    assert len(listed) == 3 and [v["current"] for v in listed] == [False, False, True]
    assert listed[2]["summary"] == "1 group(s) removed (utility_all)"
    # Records sit beside the file (inv.changes.json); the copied-in first version has none.
    assert [(v["command"], v["reason"]) for v in listed] == [
        ("", ""), ("inventory-manage -r compute1", ""), ("inventory-manage -d utility_all", "unused")]
    assert (tmp_path / "inv.changes.json").exists()
    proc = dep.manage("-f", str(path), "--restore", listed[0]["version"], config=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(path.read_text()) == original
    restored = json.loads(dep.manage("-f", str(path), "--history", "--format", "json", config=False).stdout)
    assert [v["command"] for v in restored][1:] == ["inventory-manage -r compute1", "inventory-manage -d utility_all",
                                                   f"inventory-manage --restore {listed[0]['version']}"]


PLAIN_PLUGIN = '''
import json, os
from osa_inventory.errors import StorageError

class Storage:
    """Stores the inventory in one file and keeps no history."""
    def register(self, args):
        self.path = os.path.join(args["folder"], "plain.json")
    def load(self):
        if not os.path.exists(self.path):
            return None
        with open(self.path) as fh:
            return json.load(fh)
    def write(self, inventory):
        with open(self.path, "w") as fh:
            json.dump(inventory, fh)
'''


def test_backend_without_history_gives_a_clear_error(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o755)
    (plugins / "plain.py").write_text(textwrap.dedent(PLAIN_PLUGIN))
    os.chmod(plugins / "plain.py", 0o644)
    dep = Deployment(str(tmp_path / "dep"))
    dep.write_ini(f"[inventory]\nbackend = plain\nplugin_paths = {plugins}\n[plain]\nfolder = {tmp_path}\n")
    dep.generate()
    assert (tmp_path / "plain.json").exists()
    for args in (["--history"], ["--diff"], ["--restore", "1"]):
        assert_one_line_error(dep.manage(*args), "storage backend plain keeps no history of earlier versions")
    # Everything else works on it, and changes are stored through it.
    assert dep.manage("-r", "compute1").returncode == 0
    assert "compute1" not in json.loads((tmp_path / "plain.json").read_text())["_meta"]["hostvars"]


def test_summaries_and_diff_lines_in_process():
    old = {"_meta": {"hostvars": {"a": {"ansible_host": "10.0.0.1", "x": 1}, "b": {"y": [1]},
                                  "c": {"container_networks": {}}}},
           "all": {"vars": {"k": 1}}, "g": {"children": ["c"], "hosts": ["a", "b"]}, "gone": {"hosts": []}}
    new = {"_meta": {"hostvars": {"a": {"ansible_host": "10.0.0.2", "x": 1}, "b": {"y": [2]}, "n": {},
                                  "c": {"container_networks": {"m_address": {"address": "10.0.0.3"}}}}},
           "all": {"vars": {"k": 2}}, "g": {"children": [], "hosts": ["a", "n"]}, "fresh": {"hosts": ["n"]}}
    ch = versions.compare(old, new)
    assert (ch.hosts_added, ch.hosts_removed, ch.readdressed, ch.addressed, ch.vars_changed) == (
        ["n"], [], ["a"], ["c"], ["b"])
    assert (ch.groups_added, ch.groups_removed, ch.groups_changed) == (["fresh"], ["gone"], ["g"])
    assert ch.all_vars_changed
    assert versions.compare(old, old).summary() == "no change"
    lines = versions.diff_lines(old, new)
    assert lines == ["+ host n", "~ host a", '    ~ ansible_host: "10.0.0.1" -> "10.0.0.2"', "~ host c",
                     '    + container_networks.m_address.address: "10.0.0.3"', "~ host b",
                     "    ~ y: [1] -> [2]", "+ group fresh: n", "- group gone", "~ group g",
                     "    + host n", "    - host b", "    - child c", "~ all", "    ~ vars.k: 1 -> 2"]


SQLITE_SAMPLE = os.path.join(ROOT, "examples", "plugins", "sqlite_store.py")


def deployment_on(kind: str, tmp_path, request) -> tuple[Deployment, tuple[str, ...]]:
    """A deployment whose inventory lives on backend ``kind``, and the arguments that select it."""
    dep = Deployment(str(tmp_path / "dep"))
    if kind == "sqlite":
        plugins = tmp_path / "plugins"
        plugins.mkdir(mode=0o755)
        shutil.copy(SQLITE_SAMPLE, plugins)
        os.chmod(plugins / "sqlite_store.py", 0o644)
        dep.write_ini(f"[inventory]\nbackend = sqlite_store\nplugin_paths = {plugins}\n")
    elif kind == "etcd":
        cluster = request.getfixturevalue("etcd")
        dep.write_ini(f"[inventory]\nbackend = etcd\n[etcd]\nendpoints = {cluster.endpoints_text}\n"
                      f"prefix = /versions/{request.node.name.replace('[', '_').replace(']', '')}\n")
    dep.generate()
    if kind == "file":
        return dep, ("-f", dep.inventory_path.replace(INVENTORY, "inventory-copy.json"))
    return dep, ()


@pytest.mark.parametrize("kind", ["filesystem", pytest.param("file", marks=pytest.mark.once),
                                  pytest.param("sqlite", marks=pytest.mark.once),
                                  pytest.param("etcd", marks=pytest.mark.once)])
def test_history_means_the_same_on_every_backend(kind, tmp_path, request):
    """Each version is named by its own id and dated when it was written; the newest one is current."""
    dep, where = deployment_on(kind, tmp_path, request)
    if kind == "file":
        shutil.copy(dep.inventory_path, where[1])
    for change in (("-r", "compute1"), ("--clear-ips",)):
        assert dep.manage(*where, *change).returncode == 0
    before = history(dep, *where)
    assert len(before) == 3 and [v["current"] for v in before] == [False, False, True], before
    assert len({v["version"] for v in before}) == len(before)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", v["time"]) for v in before)
    assert [v["time"] for v in before] == sorted(v["time"] for v in before)
    # One more change: every version keeps its name and time, and only the new one is current.
    assert dep.manage(*where, "-d", "utility_all").returncode == 0
    after = history(dep, *where)
    assert [(v["version"], v["time"]) for v in after[:3]] == [(v["version"], v["time"]) for v in before]
    assert [v["current"] for v in after] == [False, False, False, True]
    assert after[-1]["summary"] == "1 group(s) removed (utility_all)"
    # The name --history gave the current version reads that version, before and after it is archived.
    current = before[-1]["version"]
    lines = dep.manage(*where, "--diff", current, after[-1]["version"]).stdout.splitlines()
    assert lines[:3] == [f"--- version {current}", f"+++ version {after[-1]['version']}", "- group utility_all"]
    table = dep.manage(*where, "--history").stdout
    rows = [r for r in table.splitlines()[3:] if r.startswith("|")]  # below the header
    assert "written (UTC)" in table and [r for r in rows if "| current |" in r] == [rows[-1]]


def test_diff_with_one_version_explains_itself(tmp_path):
    dep = Deployment(str(tmp_path))
    none_yet = dep.manage("--diff")
    assert none_yet.returncode == 0 and none_yet.stderr == ""
    assert "holds no inventory yet" in none_yet.stdout and "first inventory run" in none_yet.stdout
    dep.generate()
    only = history(dep)
    assert len(only) == 1 and only[0]["current"]
    proc = dep.manage("--diff")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert f"holds one version so far ({only[0]['version']}, the current inventory)" in proc.stdout
    data = json.loads(dep.manage("--diff", "--format", "json").stdout)
    assert data["changes"] is None and "nothing to compare" in data["note"]
    # As it says: a change adds a version, and --diff then shows it.
    assert dep.manage("-r", "compute1").returncode == 0
    assert "- host compute1" in dep.manage("--diff").stdout.splitlines()

