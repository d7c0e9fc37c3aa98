"""Who changed the etcd inventory, and who may: change records in manifests, reader and writer roles.

Every test here shares one etcd with authentication on (a module fixture). Its root user,
and a writer and a reader user per deployment, are made by running the commands of
docs/etcd.md's "Access control" section as printed, so the documented set-up is what the
tests exercise.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from etcd_server import EtcdCluster, build_inventory, skip_without_etcd
from helpers import ROOT, SCRIPT, base_config, run_script, write_config
from os_users import as_user, users_fixture
from plugin_fixtures import assert_one_line_failure
from osa_inventory.accounting import MAX_FIELD, REASON_VARIABLE, ChangeRecord
from osa_inventory.errors import StorageError
from osa_inventory.manage import versions
from osa_inventory.storage.loader import Backend, open_backend
from osa_inventory.storage.settings import Settings

# Real etcd users, roles and several deployments per test: heavy, and about etcd, not the Python version.
pytestmark = pytest.mark.once
DOC = os.path.join(ROOT, "docs", "etcd.md")
MANAGE = os.path.join(ROOT, "scripts", "inventory-manage.py")
DOC_ENDPOINT = "https://10.0.0.11:2379"  # the endpoint the documented messages show
ROOT_PASSWORD = "root-Pw.1"
DEPLOYMENTS = ("prod", "staging", "audit")


def prefix_of(deployment: str) -> str:
    return f"/openstack-ansible/inventory/{deployment}"


def passwords(deployment: str) -> dict[str, str]:
    return {f"osa-{deployment}": f"{deployment}-Writer.1", f"osa-{deployment}-ro": f"{deployment}-Reader.1"}


def access_section() -> str:
    text = open(DOC, encoding="utf-8").read()
    return text.split("\n## Access control\n", 1)[1].split("\n## ", 1)[0]


def documented(kind: str) -> list[str]:
    """The section's fenced blocks of ``kind`` (``sh``, or ``""`` for plain ones), as printed."""
    blocks, current, language = [], None, ""
    for line in access_section().splitlines(keepends=True):
        if line.startswith("```") and current is None:
            current, language = [], line[3:].strip()
        elif line.startswith("```"):
            if language == kind:
                blocks.append("".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


class AuthEtcd:
    """The shared etcd, with a root token for looking at keys behind the plugin's back."""

    def __init__(self, cluster: EtcdCluster):
        self.cluster = cluster
        self.endpoints = cluster.endpoints_text

    def call(self, path: str, body: dict) -> dict:
        # A fresh token each time: a slow run must not outlive etcd's token TTL.
        token = self.cluster.post("/v3/auth/authenticate", {"name": "root", "password": ROOT_PASSWORD})["token"]
        return self.cluster.post(path, body, token)

    def state(self, prefix: str) -> tuple[int, dict[bytes, int]]:
        """etcd's revision and every key under ``prefix/`` with its mod revision."""
        start = (prefix + "/").encode()
        answer = self.call("/v3/kv/range", {"key": _b64(start), "range_end": _b64(start[:-1] + b"0")})
        kvs = {base64.b64decode(kv["key"]): int(kv["mod_revision"]) for kv in answer.get("kvs", [])}
        return int(answer["header"]["revision"]), kvs

    def manifest(self, prefix: str) -> dict:
        answer = self.call("/v3/kv/range", {"key": _b64((prefix + "/manifest").encode())})
        return json.loads(base64.b64decode(answer["kvs"][0]["value"]))

    def put_manifest(self, prefix: str, manifest: dict) -> None:
        self.call("/v3/kv/put", {"key": _b64((prefix + "/manifest").encode()),
                                 "value": _b64(json.dumps(manifest).encode())})

    def leases(self) -> list:
        return self.call("/v3/lease/leases", {}).get("leases") or []


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def auth_etcd():
    skip_without_etcd()
    if not shutil.which("etcdctl"):
        pytest.skip("etcdctl is absent (the documented set-up runs it); install it with 'apt-get install etcd-client'")
    once, per_deployment = documented("sh")
    assert "DEPLOYMENT=prod\n" in per_deployment
    with EtcdCluster(1) as cluster:
        script = ["set -euo pipefail", once]
        for name in DEPLOYMENTS:  # prod as printed; the others as the doc says, with their name set
            writer, reader = passwords(name).values()
            script += [f"WRITER_PASSWORD='{writer}' READER_PASSWORD='{reader}'",
                       per_deployment.replace("DEPLOYMENT=prod\n", f"DEPLOYMENT={name}\n")]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ETCDCTL_ENDPOINTS": cluster.endpoints_text,
               "ROOT_PASSWORD": ROOT_PASSWORD}
        done = subprocess.run(["bash", "-c", "\n".join(script)], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        yield AuthEtcd(cluster)


def write_ini(folder: str, endpoints: str, deployment: str, user: str, prefix: str | None = None) -> str:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "osa.ini")
    with open(path, "w") as fh:
        fh.write(f"[inventory]\nbackend = etcd\n[etcd]\nendpoints = {endpoints}\n"
                 f"prefix = {prefix or prefix_of(deployment)}\ndeployment = {deployment}\nusername = {user}\n"
                 "timeout = 5\n")
    os.chmod(path, 0o644)
    return path


def as_etcd_user(user: str, deployment: str) -> dict[str, str]:
    return {"OSA_INVENTORY_ETCD_PASSWORD": passwords(deployment)[user]}


def manage(config_dir: str, ini: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_"))}
    full.update(env, OSA_INI=ini)
    return subprocess.run([sys.executable, MANAGE, "--config", config_dir, *args], env=full,
                          capture_output=True, text=True, timeout=120)


def documented_message(start: str, endpoint: str) -> str:
    """The documented error line that starts with ``start``, shown for our endpoint."""
    found = [line for block in documented("") for line in block.splitlines() if line.startswith(start)]
    assert len(found) == 1, found
    return found[0].replace(DOC_ENDPOINT, endpoint)


# -- access control -----------------------------------------------------------------------

def test_a_reader_runs_the_unchanged_inventory_and_refuses_to_store(auth_etcd, tmp_path):
    prefix = prefix_of("prod")
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, base_config())
    writer = (write_ini(str(tmp_path / "w"), auth_etcd.endpoints, "prod", "osa-prod"), as_etcd_user("osa-prod", "prod"))
    reader = (write_ini(str(tmp_path / "r"), auth_etcd.endpoints, "prod", "osa-prod-ro"),
              as_etcd_user("osa-prod-ro", "prod"))
    refusal = documented_message("ERROR: storage backend etcd: the credentials are read-only", auth_etcd.endpoints)

    # Nothing stored yet: the reader's first run would have to store, so it stops.
    empty = auth_etcd.state(prefix)
    assert empty[1] == {}
    assert assert_one_line_failure(run_script(config_dir, ini=reader[0], env=reader[1])) == refusal
    assert auth_etcd.state(prefix) == empty

    stored = run_script(config_dir, ini=writer[0], env=writer[1])
    assert stored.returncode == 0 and stored.stderr == "", stored.stderr
    before = auth_etcd.state(prefix)

    # Unchanged: the reader prints the very same inventory, writes nothing, leaves no lease behind.
    same = run_script(config_dir, ini=reader[0], env=reader[1])
    assert same.returncode == 0 and same.stderr == "", same.stderr
    assert same.stdout == stored.stdout
    assert auth_etcd.state(prefix) == before
    assert auth_etcd.leases() == []
    for args in (["--plan"], ["-l"], ["-g"], ["--export"], ["--diff"], ["--history", "--format", "json"]):
        listed = manage(config_dir, reader[0], reader[1], *args)
        assert listed.returncode == 0 and listed.stderr == "", (args, listed.stderr)
    history = json.loads(listed.stdout)
    hosts = len(json.loads(stored.stdout)["_meta"]["hostvars"])
    assert [(v["command"], v["summary"].split(" (")[0]) for v in history] == \
        [("dynamic_inventory", f"{hosts} host(s) added")]
    assert json.loads(manage(config_dir, reader[0], reader[1], "--export").stdout)["hosts"].keys() >= {"compute1"}

    # A changed config needs a write: one line, the documented one, and nothing stored.
    config = base_config()
    config["compute_hosts"]["compute2"] = {"ip": "172.29.236.22"}
    write_config(config_dir, config)
    assert assert_one_line_failure(run_script(config_dir, ini=reader[0], env=reader[1])) == refusal
    assert assert_one_line_failure(manage(config_dir, reader[0], reader[1], "-r", "compute1")) == refusal
    adopted = manage(config_dir, reader[0], reader[1], "--adopt")  # already labelled prod: nothing to write
    assert adopted.returncode == 0 and "nothing to do" in adopted.stdout, adopted.stderr
    renamed = write_ini(str(tmp_path / "r2"), auth_etcd.endpoints, "production", "osa-prod-ro", prefix=prefix)
    assert assert_one_line_failure(manage(config_dir, renamed, reader[1], "--adopt")) == refusal
    plan = manage(config_dir, reader[0], reader[1], "--plan")  # a reader sees what a writer would store
    assert plan.returncode == 2 and "compute2" in plan.stdout and plan.stderr == "", plan.stderr
    assert auth_etcd.state(prefix) == before

    # The advice as printed: a user with the writer role on the prefix stores it; readers then see it.
    changed = run_script(config_dir, ini=writer[0], env=writer[1])
    assert changed.returncode == 0 and changed.stderr == ""
    assert "compute2" in json.loads(changed.stdout)["_meta"]["hostvars"]
    again = run_script(config_dir, ini=reader[0], env=reader[1])
    assert again.returncode == 0 and again.stderr == "" and again.stdout == changed.stdout
    assert auth_etcd.leases() == []


def test_a_writer_cannot_touch_another_deployments_prefix(auth_etcd, tmp_path):
    staging, prod = prefix_of("staging"), prefix_of("prod")
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, base_config())
    owner = write_ini(str(tmp_path / "s"), auth_etcd.endpoints, "staging", "osa-staging")
    assert run_script(config_dir, ini=owner, env=as_etcd_user("osa-staging", "staging")).returncode == 0
    before = auth_etcd.state(staging)
    assert before[1]

    # prod's writer with staging's prefix (an osa.ini copied from the wrong deploy host).
    wrong = write_ini(str(tmp_path / "p"), auth_etcd.endpoints, "staging", "osa-prod", prefix=staging)
    prod_env = as_etcd_user("osa-prod", "prod")
    denial = documented_message("ERROR: storage backend etcd: etcd at", auth_etcd.endpoints)
    assert assert_one_line_failure(run_script(config_dir, ini=wrong, env=prod_env)) == denial
    export = tmp_path / "export.json"
    export.write_text(manage(config_dir, owner, as_etcd_user("osa-staging", "staging"), "--export").stdout)
    # A refusal of the credentials is never answered with "repeat with --force": that cannot help.
    unforced = assert_one_line_failure(manage(config_dir, wrong, prod_env, "--import", str(export)),
                                       "denied user 'osa-prod'", "check the prefix option")
    assert "--force" not in unforced
    forced = manage(config_dir, wrong, prod_env, "--import", str(export), "--force")
    assert_one_line_failure(forced, "denied user 'osa-prod'", f"keys under {staging}/", "check the prefix option")
    # Through the plugin too, writing without reading first: refused, not called read-only.
    backend = _open(auth_etcd.endpoints, staging, "osa-prod", passwords("prod")["osa-prod"])
    with pytest.raises(StorageError, match="denied user 'osa-prod' access to keys under " + re.escape(staging)):
        backend.write(build_inventory(2))
    backend.close()
    assert auth_etcd.state(staging) == before

    # The advice: the prefix option of prod's own deployment works for prod's writer.
    right = write_ini(str(tmp_path / "p"), auth_etcd.endpoints, "prod", "osa-prod")
    mine = run_script(config_dir, ini=right, env=prod_env)
    assert mine.returncode == 0 and mine.stderr == "", mine.stderr
    assert auth_etcd.state(prod)[1] and auth_etcd.state(staging)[1] == before[1]


# -- change records -----------------------------------------------------------------------

def _open(endpoints: str, prefix: str, user: str, password: str) -> Backend:
    section = {"endpoints": endpoints, "prefix": prefix, "username": user, "password": password, "timeout": "5"}
    return open_backend(Settings(path=None, backend="etcd", sections={"etcd": section}, environ={}),
                        tempfile.gettempdir())


def test_records_live_in_manifests_and_hostile_ones_never_break_anything(auth_etcd):
    prefix = "/osa-test/records"
    backend = _open(auth_etcd.endpoints, prefix, "root", ROOT_PASSWORD)
    first, second = build_inventory(3), build_inventory(4)
    backend.write(first)  # a write without a record, as by an earlier release or a plugin caller
    assert "record" not in auth_etcd.manifest(prefix)
    record = ChangeRecord.now("inventory-manage --import new.json", "1 host(s) added (compute4)",
                              reason="rack 4 " + "r" * (2 * MAX_FIELD))
    backend.write(second, record=record)
    stored = auth_etcd.manifest(prefix)
    assert stored["record"] == record.to_dict() and len(stored["record"]["reason"]) == MAX_FIELD
    assert stored["format"] == 1  # an added field: readers of format 1 ignore it

    entries = backend.history()
    assert [e.get("user") for e in entries] == [None, record.user]
    assert {k: entries[1][k] for k in ("host", "command", "reason", "summary")} == \
        {k: getattr(record, k) for k in ("host", "command", "reason", "summary")}
    rows = versions.history(backend)
    assert (rows[0].user, rows[0].summary) == ("", "oldest version kept")
    assert (rows[1].command, rows[1].reason, rows[1].current) == (record.command, record.reason, True)

    # Records changed by hand: the inventory still loads and is written over; the history names them.
    hostile = [("r" * 1_000_000, "is a str"), ([1, 2], "is a list"), ({"user": 5}, "user is a int"),
               ({"user": "u" * 300_000, "reason": "two\nlines"}, None)]
    for value, complaint in hostile:
        auth_etcd.put_manifest(prefix, dict(stored, record=value))
        assert backend.load() == second
        last = backend.history()[-1]
        row = versions.history(backend)[-1]
        if complaint:
            assert last["summary"].startswith(f"unreadable: the change record in {prefix}/manifest at revision")
            assert complaint in last["summary"] and len(last["summary"]) < 300 and "user" not in last
            assert row.summary == last["summary"]
        else:
            assert len(last["user"]) == MAX_FIELD and last["reason"] == "two lines"
            assert row.user == last["user"]
    third = copy.deepcopy(second)
    third["all"]["vars"]["after_hostile"] = True
    # A record built by hand, past every bound: stored clipped, the manifest stays small.
    by_hand = ChangeRecord(time="2026-12-01T00:00:00Z", user="u" * 100_000, host="h", summary="all.vars changed",
                           command="inventory-manage --restore 1", reason="many\nlines " * 10_000)
    backend.write(third, record=by_hand)
    assert backend.load() == third and backend.history()[-1]["command"] == "inventory-manage --restore 1"
    kept = auth_etcd.manifest(prefix)["record"]
    assert len(kept["user"]) == len(kept["reason"]) == MAX_FIELD and "\n" not in kept["reason"]
    backend.close()


@pytest.fixture
def deploy_hosts_users():
    yield from users_fixture("osaaudita", "osaauditb")


def test_history_names_each_user_command_and_reason(auth_etcd, deploy_hosts_users):
    alice, bob = deploy_hosts_users
    # Folders the two users may read (pytest's tmp_path lies under root's private folder).
    base = tempfile.mkdtemp(prefix="osa-audit-")
    try:
        os.chmod(base, 0o755)
        config_dir = os.path.join(base, "deploy")
        write_config(config_dir, base_config())
        os.chmod(config_dir, 0o755)
        ini = write_ini(os.path.join(base, "etc"), auth_etcd.endpoints, "audit", "osa-audit")
        os.chmod(os.path.dirname(ini), 0o755)

        def run_as(user: str, reason: str, *cmd: str) -> subprocess.CompletedProcess:
            env = {"PATH": "/usr/bin:/bin", "OSA_INI": ini, REASON_VARIABLE: reason,
                   **as_etcd_user("osa-audit", "audit")}
            cmd = cmd or (SCRIPT, "--list")
            return subprocess.run(as_user(user, [sys.executable, cmd[0], "--config", config_dir, *cmd[1:]]),
                                  env=env, capture_output=True, text=True, timeout=120)

        runs = [(alice, "dynamic_inventory", "first build of audit")]
        assert run_as(alice, "first build of audit").returncode == 0
        config = base_config()
        config["compute_hosts"]["compute2"] = {"ip": "172.29.236.22"}
        write_config(config_dir, config)
        added = run_as(bob, "CHG-42: add compute2")
        assert added.returncode == 0 and added.stderr == "", added.stderr
        runs.append((bob, "dynamic_inventory", "CHG-42: add compute2"))
        unchanged = run_as(alice, "nothing to do")  # stores nothing, so it is no version
        assert unchanged.returncode == 0 and unchanged.stdout == added.stdout
        # --reason wins over the variable; the next script run brings compute2 back.
        removed = run_as(alice, "not this one", MANAGE, "-r", "compute2", "--reason", "CHG-43: rebuild compute2")
        assert removed.returncode == 0, removed.stderr
        assert run_as(bob, "CHG-43: compute2 rebuilt").returncode == 0
        runs += [(alice, "inventory-manage -r compute2", "CHG-43: rebuild compute2"),
                 (bob, "dynamic_inventory", "CHG-43: compute2 rebuilt")]

        history = manage(config_dir, ini, as_etcd_user("osa-audit", "audit"), "--history", "--format", "json")
        assert history.returncode == 0, history.stderr
        rows = json.loads(history.stdout)
        assert [(r["user"], r["command"], r["reason"]) for r in rows] == runs
        hosts = len(json.loads(added.stdout)["_meta"]["hostvars"]) - 1
        assert [r["summary"].split(" (")[0] for r in rows] == \
            [f"{hosts} host(s) added", "1 host(s) added", "1 host(s) removed", "1 host(s) added"]
        assert all("(compute2)" in r["summary"] for r in rows[1:])
        assert all(r["host"] and r["time"] for r in rows) and rows[-1]["current"] is True
    finally:
        shutil.rmtree(base, ignore_errors=True)
