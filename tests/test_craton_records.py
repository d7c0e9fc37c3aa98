"""Craton change records and access (issue 14): who changed the inventory, when, from where, how and why.

Against the Craton look-alike over real HTTP: the newest ``change_records``
records kept in the region (at no extra request), hostile records never
breaking a run, a non-admin project user running the real inventory script and
inventory-manage, and records of runs by two operating-system users, one of
them killed at its commit (root only: users are made with useradd and run
with setpriv).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

import pytest
import requests

from craton_server import CratonServer, craton_server  # noqa: F401 (the fixture)
from helpers import ROOT, SCRIPT, base_config, write_config, write_ini
from os_users import as_user, users_fixture
from osa_inventory.accounting import MAX_FIELD, ChangeRecord, current_host, current_user
from osa_inventory.backends import change_records as records
from osa_inventory.manage import versions
from osa_inventory.commands.manage import main as manage_main
from osa_inventory.storage import catalog
from osa_inventory.storage.loader import Backend, open_backend
from osa_inventory.storage.settings import Settings
from osa_inventory.testing import assert_same

MANAGE = os.path.join(ROOT, "scripts", "inventory-manage.py")


def backend_for(server: CratonServer, folder: str, **extra: str) -> Backend:
    section = dict(server.options(**extra), cache_dir=folder)
    return open_backend(Settings(path=None, backend="craton", sections={"craton": section}), folder)


def region_vars(server: CratonServer, region: str = "osa-region") -> dict:
    """The region's variables as Craton holds them (a reference: edits change what Craton holds)."""
    with server.app.lock:
        return next(r for r in server.app.tables["regions"].values() if r["name"] == region)["variables"]


def record_keys(server: CratonServer) -> list[int]:
    return sorted(records.sequence_of(k) for k in region_vars(server) if k.startswith(records.RECORD_PREFIX))


def build_inventory(hosts: int) -> dict:
    """A small inventory: ``hosts`` computes in one group, and all.vars."""
    names = [f"compute{n}" for n in range(1, hosts + 1)]
    return {"all": {"vars": {"generation": 0}}, "compute_hosts": {"hosts": names},
            "_meta": {"hostvars": {name: {"ansible_host": f"10.0.0.{n}"} for n, name in enumerate(names, 1)}}}


def next_version(inventory: dict, n: int) -> dict:
    changed = json.loads(json.dumps(inventory))
    changed["all"]["vars"]["generation"] = n
    return changed


def test_the_newest_records_are_kept_in_order_and_cost_no_request(craton_server, tmp_path):
    backend = backend_for(craton_server, str(tmp_path), change_records="3")
    inventory = build_inventory(5)
    backend.write(inventory, record=ChangeRecord.now("cmd0", "first", reason="reason 0"))
    for n in range(1, 5):
        inventory = next_version(inventory, n)
        craton_server.app.reset_log()
        backend.load()
        backend.write(inventory, record=ChangeRecord.now(f"cmd{n}", f"summary {n}", reason=f"reason {n}"))
        # As without records (docs/craton.md): the record travels in the commit's PUT.
        assert craton_server.app.counts() == {"GET": 3, "PUT": 2, "DELETE": 1}
    rows = versions.history(backend)
    assert [(v.version, v.command, v.reason, v.summary) for v in rows] == [
        (str(n + 1), f"cmd{n}", f"reason {n}", f"summary {n}") for n in (2, 3, 4)]
    assert {(v.user, v.host) for v in rows} == {(current_user(), current_host())}
    assert [v.current for v in rows] == [False, False, True]  # the record of what Craton holds now
    assert record_keys(craton_server) == [3, 4, 5]  # the oldest two were removed by the commits' DELETE
    # A smaller bound: history cuts to it saying so, and the next write removes the extra record.
    smaller = backend_for(craton_server, str(tmp_path), change_records="2")
    listed = smaller.history()
    assert listed[0] == {"version": "-", "time": "",
                         "summary": "1 older change record beyond change_records = 2 not shown; "
                                    "the next write removes it"}
    assert [row["version"] for row in listed[1:]] == ["4", "5"]
    smaller.write(next_version(inventory, 9), record=ChangeRecord.now("cmd9", "s", reason=""))
    assert record_keys(craton_server) == [5, 6]
    assert [row["command"] for row in smaller.history()] == ["cmd4", "cmd9"]


def test_a_direct_write_and_an_older_plugins_write_are_accounted_for(craton_server, tmp_path):
    storage = backend_for(craton_server, str(tmp_path)).storage
    storage.write(build_inventory(3))  # outside Backend.write: no record handed over
    (row,) = storage.history()
    assert (row["version"], row["command"], row["user"]) == ("1", records.UNRECORDED_COMMAND, current_user())
    # A state written by a version of the plugin that kept no records: shown from the state record.
    variables = region_vars(craton_server)
    with craton_server.app.lock:
        for key in [k for k in variables if k.startswith(records.RECORD_PREFIX)]:
            del variables[key]
        variables["osa-inventory:state"].pop("sequence")
    (row,) = storage.history()
    state = variables["osa-inventory:state"]
    assert row["version"] == "-" and (row["time"], row["host"]) == (state["written"], state["writer"])
    storage.write(next_version(build_inventory(3), 1))
    assert [row["version"] for row in storage.history()] == ["1"]


def test_hostile_records_never_break_load_or_write_and_history_shows_them(craton_server, tmp_path):
    backend = backend_for(craton_server, str(tmp_path))
    inventory = build_inventory(4)
    backend.write(inventory, record=ChangeRecord.now("first", "stored", reason=""))
    huge = "x" * 200_000
    variables = region_vars(craton_server)
    with craton_server.app.lock:
        variables.update({
            records.key_of(2): ["not", "a", "record"],
            records.key_of(3): {"user": 123, "command": "wrong types"},
            records.key_of(4): {"user": huge, "summary": "line\n" * 50_000, "command": "huge", "time": huge,
                                "extra": [huge] * 10},
            records.RECORD_PREFIX + "abc": {"user": "misnamed"},
            records.RECORD_PREFIX + "0042": {"user": "leading zero"},
        })
    craton_server.app.reset_log()
    fresh = backend_for(craton_server, str(tmp_path / "elsewhere"), cache="false")
    assert_same(fresh.load(), inventory)
    rows = {v.version: v for v in versions.history(fresh)}
    assert "damaged" in rows["2"].summary and "list" in rows["2"].summary
    assert "user is a int, not text" in rows["3"].summary
    assert rows["4"].command == "huge" and len(rows["4"].user) == MAX_FIELD and len(rows["4"].time) <= MAX_FIELD
    assert "\n" not in rows["4"].summary and len(rows["4"].summary) <= MAX_FIELD
    assert [number for number, row in rows.items() if row.current] == ["1"]
    notes = [v.summary for v in versions.history(fresh) if v.version == "-"]
    assert len(notes) == 1 and notes[0].startswith("2 region variables named like change records without a sequence")
    assert not any("stored without a change record" in n for n in notes)  # record 1 claims it
    changed = next_version(inventory, 1)
    fresh.write(changed, record=ChangeRecord.now("second", "changed", reason="after the damage"))
    assert_same(backend_for(craton_server, str(tmp_path / "third"), cache="false").load(), changed)
    assert record_keys(craton_server) == [1, 2, 3, 4, 5]  # the misnamed ones are gone, the damaged ones kept
    assert [v.command for v in versions.history(fresh)][-1] == "second"
    # Too many: 300 more (and one numbered far out) are cut to the newest 20, then removed by the next write.
    with craton_server.app.lock:
        for n in range(100, 400):
            variables[records.key_of(n)] = ChangeRecord.now(f"flood {n}", "", reason="").to_dict()
        variables[records.key_of(records.MAX_SEQUENCE - 1)] = {"command": "far out"}
    listed = fresh.history()
    assert listed[0]["summary"].startswith("286 older change records beyond change_records = 20 not shown")
    assert len(listed) == 21 and listed[-1]["command"] == "far out"
    fresh.write(next_version(inventory, 2), record=ChangeRecord.now("third", "again", reason=""))
    assert record_keys(craton_server) == list(range(381, 401))
    assert [row["command"] for row in fresh.history()][-2:] == ["flood 399", "third"]


def test_list_backends_says_craton_keeps_records_only(tmp_path, capfd, monkeypatch):
    rows = {row.name: row for row in catalog.available(Settings(path=None))}
    assert (rows["craton"].history, rows["filesystem"].history) == (catalog.RECORDS_ONLY, True)
    monkeypatch.setenv("OSA_INI", write_ini(str(tmp_path)))
    assert manage_main(["--list-backends"]) == 0
    craton_row = next(line for line in capfd.readouterr().out.splitlines() if line.startswith("| craton "))
    assert "| records only |" in craton_row


# -- through the real scripts -----------------------------------------------------------------


class Deploy:
    """A deploy host's config folder and osa.ini for the look-alike; runs the real scripts."""

    def __init__(self, server: CratonServer, folder: str, username: str, api_key: str):
        self.server, self.folder = server, folder
        self.config_dir = os.path.join(folder, "deploy")
        write_config(self.config_dir, base_config())
        self.ini = write_ini(folder, f"[inventory]\nbackend = craton\n[craton]\nurl = {server.url}\ncloud = acl\n"
                                     f"region = acl\nproject_id = {server.project_id}\nusername = {username}\n"
                                     "timeout = 5\nretries = 1\nbackoff = 0.01\n")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_"))}
        self.env.update(OSA_INI=self.ini, OSA_INVENTORY_CRATON_API_KEY=api_key)
        self.added: dict[str, str] = {}

    def command(self, tool: str, *args: str) -> list[str]:
        return [sys.executable, tool, "--config", self.config_dir, *args]

    def run(self, *args: str, tool: str = SCRIPT, prefix: tuple = (), **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *self.command(tool, *args)], capture_output=True, text=True,
                              env={**self.env, **env}, timeout=120)

    def add_host(self, name: str, ip: str) -> None:
        config = base_config()
        for number, address in self.added.items():
            config["compute_hosts"][number] = {"ip": address}
        config["compute_hosts"][name] = {"ip": ip}
        self.added[name] = ip
        write_config(self.config_dir, config)

    def history(self) -> list[dict]:
        done = self.run("--history", "--format", "json", tool=MANAGE)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        return json.loads(done.stdout)


def ok(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return json.loads(done.stdout)


@pytest.mark.once
def test_a_non_admin_project_user_runs_everything_and_diff_says_craton_keeps_records(craton_server, tmp_path):
    # What an admin sets up first: a plain user of the deployment's project (its API key is made here).
    answer = requests.post(f"{craton_server.url}/v1/users", json={"name": "osa-deploy"}, timeout=5,
                           headers=craton_server.headers(admin=True))
    assert answer.status_code == 201 and answer.json()["is_admin"] is False
    deploy = Deploy(craton_server, str(tmp_path), "osa-deploy", answer.json()["api_key"])
    craton_server.app.reset_log()
    first = ok(deploy.run(OSA_INVENTORY_REASON="first deployment"))  # creates the cloud and region too
    assert ok(deploy.run()) == first
    deploy.add_host("compute2", "172.29.236.22")
    second = ok(deploy.run(OSA_INVENTORY_REASON="add compute2"))
    assert "compute2" in second["_meta"]["hostvars"] and "compute2" not in first["_meta"]["hostvars"]
    assert [e.status for e in craton_server.app.log if e.status == 401] == []
    rows = deploy.history()
    assert [(r["version"], r["user"], r["command"], r["reason"]) for r in rows] == [
        ("1", current_user(), "dynamic_inventory", "first deployment"),
        ("2", current_user(), "dynamic_inventory", "add compute2")]
    assert rows[1]["summary"].startswith("1 host(s) added (compute2);") and rows[0]["host"] == current_host()
    # --diff and --restore: one line saying Craton keeps records, not versions; the advice works as printed.
    for args in (("--diff",), ("--restore", "1")):
        refused = deploy.run(*args, tool=MANAGE)
        assert refused.returncode == 1 and refused.stdout == "", refused.stdout
        (line,) = refused.stderr.strip().splitlines()
        assert "keeps change records" in line and "not earlier inventories" in line
    save, store = line.split("save it with ", 1)[1].split(" before a change, and store it again with ")
    saved = tmp_path / "saved.json"
    # As a deployer runs it: the checkout script's "env python3" is the Python of the active venv.
    printed_env = {**deploy.env, "PATH": os.path.dirname(sys.executable) + os.pathsep + deploy.env.get("PATH", "")}
    shell = subprocess.run(save.replace("FILE", shlex.quote(str(saved))), shell=True, env=printed_env,
                           capture_output=True, text=True, timeout=120)
    assert shell.returncode == 0 and "compute2" in json.loads(saved.read_text())["hosts"], shell.stderr
    back = subprocess.run(shlex.split(store.replace("FILE", str(saved))), env=printed_env, capture_output=True,
                          text=True, timeout=120)
    assert back.returncode == 0, back.stderr
    assert ok(deploy.run()) == second


@pytest.fixture
def two_users():
    yield from users_fixture("osaalice", "osabob")


def test_records_of_two_os_users_their_runs_an_edit_and_a_run_killed_at_its_commit(craton_server, two_users):
    alice, bob = two_users
    folder = tempfile.mkdtemp(prefix="craton-records-")  # under /tmp: the users must reach it
    try:
        os.chmod(folder, 0o755)
        deploy = Deploy(craton_server, folder, craton_server.username, craton_server.api_key)
        caches = {}
        for user in (alice, bob):  # each user's own cache: the records live in Craton, not in a cache
            caches[user] = os.path.join(folder, f"cache-{user}")
            os.mkdir(caches[user])
            shutil.chown(caches[user], user, user)

        def run(user: str, reason: str) -> subprocess.Popen:
            return subprocess.Popen(as_user(user, deploy.command(SCRIPT)), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env={
                                        **deploy.env, "OSA_INVENTORY_REASON": reason,
                                        "OSA_INVENTORY_CRATON_CACHE_DIR": caches[user]})

        def finished(proc: subprocess.Popen) -> dict:
            out, err = proc.communicate(timeout=120)
            return ok(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))

        finished(run(alice, "initial deployment"))
        deploy.add_host("compute2", "172.29.236.22")
        finished(run(bob, "add compute2"))
        deploy.add_host("compute3", "172.29.236.23")
        killed = run(alice, "add compute3")
        # Killed when its commit (the second PUT of region variables, after the mark) arrives: not carried out.
        craton_server.app.kill_client_at(1, killed.pid, method="PUT", path=r"^/v1/regions/\d+/variables$")
        killed.communicate(timeout=120)
        assert killed.returncode == -9
        craton_server.app.revive()
        assert [r["reason"] for r in deploy.history()] == ["initial deployment", "add compute2"]  # no claim
        third = finished(run(bob, "retry compute3"))  # rolls alice's write back, then makes the change itself
        assert "compute3" in third["_meta"]["hostvars"]
        removed = subprocess.run(as_user(alice, deploy.command(MANAGE, "-r", "compute2", "--reason", "retire it")),
                                 capture_output=True, text=True, timeout=120,
                                 env={**deploy.env, "OSA_INVENTORY_CRATON_CACHE_DIR": caches[alice]})
        assert removed.returncode == 0, removed.stderr
        rows = deploy.history()
        assert [(r["version"], r["user"], r["command"], r["current"]) for r in rows] == [
            ("1", alice, "dynamic_inventory", False), ("2", bob, "dynamic_inventory", False),
            ("3", bob, "roll-back", False), ("4", bob, "dynamic_inventory", False),
            ("5", alice, "inventory-manage -r compute2", True)]
        assert rows[4]["reason"] == "retire it" and rows[4]["summary"].startswith("1 host(s) removed (compute2)")
        assert [r["reason"] for r in rows[:2]] + [rows[3]["reason"]] == [
            "initial deployment", "add compute2", "retry compute3"]
        assert rows[1]["summary"].startswith("1 host(s) added (compute2);")
        assert rows[3]["summary"].startswith("1 host(s) added (compute3);")
        assert f"dynamic_inventory by {alice}" in rows[2]["reason"] and "add compute3" in rows[2]["reason"]
        assert {r["host"] for r in rows} == {current_host()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
