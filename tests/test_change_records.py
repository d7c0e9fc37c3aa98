"""Change records on the filesystem backend: who changed the inventory, when, from where, with what and why.

Records live in openstack_inventory.changes.json beside the inventory; OSA's
files are unchanged. The tests run real scripts as real users where it
matters, and the sidecar's hostile cases in process.
"""

from __future__ import annotations

import grp
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time

import pytest
import yaml
from os_users import (as_user, make_group, make_user, need_python_for, need_root, remove_group, remove_user,
                      unique)
from test_manage_support import (BACKUPS, FIXTURES, INVENTORY, INVENTORY_SCRIPT, MANAGE, Deployment,
                                 assert_one_line_error, clean_env, snapshot)

from osa_inventory.accounting import FIELDS, current_host
from osa_inventory.backends.filesystem import records
from osa_inventory.manage import history_view, versions
from osa_inventory.manage.formatting import render_data
from osa_inventory.storage.change import Account
from osa_inventory.storage.loader import open_backend
from osa_inventory.storage.settings import Settings

SIDECAR = "openstack_inventory.changes.json"
JSON_KEYS = ["version", *FIELDS, "current"]


def json_history(dep: Deployment) -> list[dict]:
    proc = dep.manage("--history", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert all(list(v) == JSON_KEYS for v in data), data
    return data


# -- several users, the real scripts -------------------------------------------------------------


@pytest.fixture
def operators():
    """A group and two users in it (alice, bob), removed afterwards."""
    need_root()
    if not shutil.which("setpriv"):
        pytest.skip("setpriv is not installed")
    group = unique("osarecg")
    make_group(group)
    made = []
    try:
        for stem in ("osareca", "osarecb"):
            made.append(make_user(unique(stem), [group])[0])
        yield group, made[0], made[1]
    finally:
        for name in made:
            remove_user(name)
        remove_group(group)


def _run_as(user: str, script: str, dep: Deployment, *args: str, env: dict | None = None):
    cmd = as_user(user, [sys.executable, script, "--config", dep.config_dir, *args])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env=clean_env({"OSA_INI": dep.ini, **(env or {})}))


def test_records_say_who_changed_what_when_from_where_and_why(operators):
    group, alice, bob = operators
    base = tempfile.mkdtemp(prefix="osa-records-", dir="/tmp")  # the users must reach it
    try:
        os.chmod(base, 0o755)
        # The safe way to share: the operators' group reads; changes are made as root, through sudo.
        dep = Deployment(base, ini_text=f"[inventory]\nbackend = filesystem\n[filesystem]\ngroup = {group}\n"
                                        "mode = 0640\n")
        os.chmod(dep.ini, 0o644)
        os.chown(dep.config_dir, 0, grp.getgrnam(group).gr_gid)
        os.chmod(dep.config_dir, 0o2750)
        need_python_for(alice)

        dep.generate(env={"OSA_INVENTORY_REASON": "first deploy"})
        removed = dep.manage("-r", "compute1", "--reason", "decommission compute1 (OPS-1)",
                             env={"OSA_INVENTORY_REASON": "--reason wins over this", "SUDO_USER": alice})
        assert removed.returncode == 0, removed.stderr
        dep.generate(env={"OSA_INVENTORY_REASON": "rack 2 is back", "SUDO_USER": bob})
        listed = json_history(dep)
        restored = dep.manage("--restore", listed[1]["version"], env={"SUDO_USER": alice})
        assert restored.returncode == 0, restored.stderr

        table = _run_as(bob, MANAGE, dep, "--history")  # a member reads the history as himself
        assert table.returncode == 0, table.stderr
        after = json_history(dep)
    finally:
        shutil.rmtree(base)

    assert [v["user"] for v in after] == ["root", f"root (sudo: {alice})", f"root (sudo: {bob})",
                                          f"root (sudo: {alice})"]
    assert [v["command"] for v in after] == ["dynamic_inventory", "inventory-manage -r compute1",
                                             "dynamic_inventory", f"inventory-manage --restore {listed[1]['version']}"]
    assert [v["reason"] for v in after] == ["first deploy", "decommission compute1 (OPS-1)", "rack 2 is back", ""]
    assert after[0]["summary"].startswith("11 host(s) added (compute1, ")
    assert after[1]["summary"].startswith("1 host(s) removed (compute1); ")
    assert after[2]["summary"].startswith("1 host(s) added (compute1); ")
    assert after[3]["summary"] == after[1]["summary"]  # the restore repeats v1's change, under its own record
    assert {v["host"] for v in after} == {current_host()}
    assert [v["time"] for v in after] == sorted(v["time"] for v in after)
    assert len({v["version"] for v in after}) == 4 and [v["current"] for v in after] == [False] * 3 + [True]
    rows = [r for r in table.stdout.splitlines() if r.startswith("| ")]
    assert [c.strip() for c in rows[0].split("|")[1:-1]] == list(history_view.COLUMNS)
    user_cell = history_view._cell(f"root (sudo: {alice})", history_view.WIDTHS["user"])[0]  # cut short, as shown
    assert [c.strip() for c in rows[-1].split("|")[1:-1]][3:7] == [
        user_cell, current_host(), f"inventory-manage --restore {listed[1]['version']}", "-"]


def test_the_sidecar_is_never_looser_than_the_inventory_and_the_archive_keeps_its_shape(tmp_path):
    dep = Deployment(str(tmp_path))
    dep.generate()
    os.chmod(dep.inventory_path, 0o640)
    assert dep.manage("-r", "compute1").returncode == 0
    assert dep.manage("-d", "utility_all").returncode == 0
    inventory, side = os.stat(dep.inventory_path), os.stat(os.path.join(dep.config_dir, SIDECAR))
    assert stat.S_IMODE(side.st_mode) == stat.S_IMODE(inventory.st_mode) == 0o640
    assert (side.st_uid, side.st_gid) == (inventory.st_uid, inventory.st_gid)
    # OSA's tools see what they always saw: only inventory versions in the archive.
    with tarfile.open(os.path.join(dep.config_dir, BACKUPS)) as tar:
        names = tar.getnames()
    assert len(names) == 2 and all(n.startswith(INVENTORY + "-") and n.endswith(".json") for n in names)


# -- in process: rotation, restore, versions without records, hostile sidecars ------------------


def _backend(folder: str, backups: int = 15):
    settings = Settings(path=None, backend="filesystem",
                        sections={"filesystem": {"path": folder, "backups": str(backups)}}, environ={})
    return open_backend(settings, folder)


def _inventory(n: int) -> dict:
    with open(os.path.join(FIXTURES, "legacy", INVENTORY)) as fh:
        data = json.load(fh)
    data["all"]["vars"]["generation"] = n
    return data


@pytest.fixture
def clock(monkeypatch):
    """Each write in its own second, so that pruning by write time can be seen without waiting."""
    now = [1_800_000_000.0]

    def tick() -> float:
        now[0] += 7
        return now[0]
    monkeypatch.setattr(time, "time", tick)


def _sidecar(folder) -> list[dict]:
    with open(os.path.join(folder, SIDECAR)) as fh:
        return json.load(fh)["records"]


def test_records_follow_archive_rotation_restores_and_files_written_by_other_tools(tmp_path, clock):
    backend = _backend(str(tmp_path), backups=2)
    previous = None
    for n in range(1, 6):
        backend.write(_inventory(n), record=Account(f"step {n}", f"reason {n}").record(previous, _inventory(n)))
        previous = _inventory(n)
    rows = versions.history(backend)
    assert [(r.command, r.reason) for r in rows] == [(f"step {n}", f"reason {n}") for n in (3, 4, 5)]
    assert [r.summary for r in rows] == ["all.vars changed"] * 3
    assert len(_sidecar(tmp_path)) == 3  # the records of the two versions the archive dropped are gone

    undo = Account("inventory-manage --restore X", "undo step 5")
    assert versions.restore(backend, rows[1].version, undo) == (True, "")
    rows = versions.history(backend)
    assert [(r.command, r.reason) for r in rows] == [("step 4", "reason 4"), ("step 5", "reason 5"),
                                                      ("inventory-manage --restore X", "undo step 5")]

    # Written as OSA's tools write it: a version without a record, empty in data, "-" in the table.
    with open(os.path.join(tmp_path, INVENTORY), "w") as fh:
        fh.write(json.dumps(_inventory(9), indent=4, sort_keys=True))
    rows = versions.history(backend)
    assert rows[-1].current and rows[-1].command == ""
    assert rows[-1].summary == "all.vars changed"  # computed against the version before, as without records
    data = history_view.as_data(rows)
    assert [data[-1][k] for k in ("user", "host", "command", "reason")] == [""] * 4
    as_yaml = yaml.safe_load(render_data(data, "yaml"))
    assert as_yaml == data and list(as_yaml[0]) == JSON_KEYS
    last = history_view.as_table(rows).splitlines()[-2]
    assert [c.strip() for c in last.split("|")[1:-1]][3:7] == ["-"] * 4
    # The file was replaced without a backup, as a hand edit does: the restore's version is gone.
    assert [r.command for r in rows] == ["step 4", "step 5", ""]


def test_long_fields_are_cut_in_the_table_only(tmp_path):
    backend = _backend(str(tmp_path))
    why = "because " + "very " * 200 + "long"
    backend.write(_inventory(1), record=Account("inventory-manage --import x", why).record(None, _inventory(1)))
    rows = versions.history(backend)
    assert history_view.as_data(rows)[0]["reason"] == why
    table = history_view.as_table(rows)
    assert why not in table and "because very very" in table
    assert max(len(line) for line in table.splitlines()) < 260
    assert table.splitlines()[-1] == "long fields end in '...' here; --format json shows them whole"


def _forged(folder: str) -> str:
    """A sidecar claiming the current version was written by mallory."""
    with open(os.path.join(folder, INVENTORY), "rb") as fh:
        data = fh.read()
    digest, written = records.key_of(data, os.stat(os.path.join(folder, INVENTORY)).st_mtime)
    record = dict.fromkeys(FIELDS, "x") | {"user": "mallory"}
    return json.dumps({"format": records.FORMAT, "records": [{"sha256": digest, "written": written, "record": record}]})


def _make_hostile(kind: str, folder: str, elsewhere: str) -> str:
    """Put ``kind`` of sidecar in place; returns the fragment of the note that names the problem."""
    path = os.path.join(folder, SIDECAR)
    os.unlink(path)
    if kind == "not JSON":
        with open(path, "w") as fh:
            fh.write('{"format": "osa-inventory change records", "records": [')
        return "is not valid JSON"
    if kind == "wrong shape":
        with open(path, "w") as fh:
            fh.write(json.dumps({"format": records.FORMAT, "records": [{"sha256": "ab", "written": 1, "record": {}}]}))
        return "has no SHA-256 hex digest as records[0].sha256"
    if kind == "wrong field type":
        forged = json.loads(_forged(folder))
        forged["records"][0]["record"]["reason"] = ["a", "list"]
        with open(path, "w") as fh:
            fh.write(json.dumps(forged))
        return "records[0].record: reason is a list, not text"
    if kind == "huge":
        with open(path, "wb") as fh:
            fh.truncate(records.size_limit(15) + 1)  # sparse: costs nothing
        return "is larger than"
    if kind == "symbolic link elsewhere":
        target = os.path.join(elsewhere, "forged.json")
        with open(target, "w") as fh:
            fh.write(_forged(folder))
        os.symlink(target, path)
        return "is a symbolic link"
    if kind == "FIFO":
        os.mkfifo(path, 0o644)
        return "is a FIFO (named pipe), not a regular file"
    if kind == "writable by others":
        with open(path, "w") as fh:
            fh.write(_forged(folder))
        os.chmod(path, 0o666)
        return "is writable by group or others (mode 0666)"
    if kind == "another owner":
        if os.geteuid() != 0:
            pytest.skip("needs root to give the file to another owner")
        with open(path, "w") as fh:
            fh.write(_forged(folder))
        os.chown(path, 54321, 54321)
        return "is owned by uid 54321"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["not JSON", "wrong shape", "wrong field type", "huge", "symbolic link elsewhere",
                                  "FIFO", "writable by others", "another owner"])
def test_a_hostile_sidecar_never_breaks_the_inventory_and_is_set_aside(tmp_path, kind):
    folder, elsewhere = tmp_path / "store", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    backend = _backend(str(folder))
    backend.write(_inventory(1), record=Account("first", "").record(None, _inventory(1)))
    problem = _make_hostile(kind, str(folder), str(elsewhere))
    forged_before = snapshot(str(elsewhere / "forged.json")) if kind.startswith("symbolic") else None

    rows = versions.history(backend)
    assert [r.user for r in rows] == [""] and "mallory" not in repr(rows)
    [note] = history_view.notes(rows)
    assert note.startswith(f"change records not shown: {folder / SIDECAR} ") and problem in note, note
    assert backend.load() == _inventory(1)

    backend.write(_inventory(2), record=Account("second", "after the damage").record(_inventory(1), _inventory(2)))
    assert backend.load() == _inventory(2)
    rows = versions.history(backend)
    assert [(r.command, r.reason) for r in rows] == [("", ""), ("second", "after the damage")]
    assert history_view.notes(rows) == []
    label = "corrupt" if kind in ("not JSON", "wrong shape", "wrong field type", "huge") else "untrusted"
    aside = [n for n in os.listdir(folder) if n.startswith(f"{SIDECAR}.{label}-")]
    assert len(aside) == 1, os.listdir(folder)  # kept for whoever investigates, never overwritten
    assert stat.S_ISREG(os.lstat(folder / SIDECAR).st_mode)
    if forged_before is not None:
        assert os.path.islink(folder / aside[0]) and snapshot(str(elsewhere / "forged.json")) == forged_before


def test_script_and_tool_with_a_corrupt_sidecar_and_a_misplaced_reason(tmp_path):
    dep = Deployment(str(tmp_path))
    dep.generate()
    assert dep.manage("-r", "compute1").returncode == 0
    sidecar = os.path.join(dep.config_dir, SIDECAR)
    with open(sidecar, "w") as fh:
        fh.write("garbage")

    # --reason with a command that stores nothing is refused, and nothing is written.
    before = {n: snapshot(os.path.join(dep.config_dir, n)) for n in (INVENTORY, BACKUPS, SIDECAR)}
    assert_one_line_error(dep.manage("--history", "--reason", "audit"), "--reason", "--history stores none",
                          "give it with -r, -d, --clear-ips, --set-address, --rename, --move, --migrate-to, --import "
                          "or --restore")
    assert {n: snapshot(os.path.join(dep.config_dir, n)) for n in before} == before

    table = dep.manage("--history")
    assert table.returncode == 0 and table.stderr == ""
    assert table.stdout.splitlines()[-1].startswith(f"note: change records not shown: {sidecar} is not valid JSON")
    data = dep.manage("--history", "--format", "json")
    assert [v["command"] for v in json.loads(data.stdout)] == ["", ""]
    assert data.stderr.startswith("note: change records not shown:") and len(data.stderr.splitlines()) == 1

    # The inventory script still stores (compute1 comes back), quietly; the damaged file is set aside.
    dep.generate(env={"OSA_INVENTORY_REASON": "compute1 is back"})
    aside = [n for n in os.listdir(dep.config_dir) if n.startswith(SIDECAR + ".corrupt-")]
    assert len(aside) == 1
    with open(os.path.join(dep.config_dir, aside[0])) as fh:
        assert fh.read() == "garbage"
    # As the refusal said: the reason goes with a change.
    assert dep.manage("-d", "utility_all", "--reason", "audit").returncode == 0
    listed = json_history(dep)
    assert [(v["command"], v["reason"]) for v in listed] == [
        ("", ""), ("", ""), ("dynamic_inventory", "compute1 is back"), ("inventory-manage -d utility_all", "audit")]


@pytest.mark.parametrize("action", [["--history"], ["--list-host"], ["--export"], ["--list-backends"], ["--adopt"],
                                    ["--diff"], ["--check-stale"], ["--plan"]])
def test_reason_with_any_command_that_stores_no_version_is_refused_in_one_line(action, capsys, tmp_path):
    from osa_inventory.commands import manage as cli

    assert cli.main(["--config", str(tmp_path), *action, "--reason", "why"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and err.startswith("ERROR: --reason is kept with the inventory")
    assert f"and {action[0]}" in err
    assert ("give it with -r, -d, --clear-ips, --set-address, --rename, --move, --migrate-to, --import "
            "or --restore") in err
    assert os.listdir(tmp_path) == []  # refused before anything is opened
