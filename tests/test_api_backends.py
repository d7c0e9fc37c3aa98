"""osa_inventory.api and the helpers of examples/helpers/ on every built-in backend.

etcd runs with authentication on, set up by docs/etcd.md's commands (the module
fixture of test_etcd_accounting.py): a reader role reads and is refused every
write, a writer role removes and is recorded. Craton runs against the test
server. The helpers run as scripts, end to end, with the API as their only way
to the inventory, and change nothing unless asked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
from craton_server import CratonServer
from helpers import ROOT, base_config, run_script, write_config, write_ini
from test_etcd_accounting import as_etcd_user, auth_etcd, prefix_of  # noqa: F401  (auth_etcd: fixture)
from test_etcd_accounting import write_ini as write_etcd_ini

from osa_inventory import api
from osa_inventory.accounting import current_user

HELPERS = os.path.join(ROOT, "examples", "helpers")
MANAGE = os.path.join(ROOT, "scripts", "inventory-manage.py")
LIB = os.path.join(ROOT, "lib")


@dataclass
class Site:
    """A deployment stored on one backend: its config folder and the environments of a writer and a reader."""

    backend: str
    config_dir: str
    writer: dict[str, str]
    reader: dict[str, str]
    printed: dict = field(default_factory=dict)

    def env(self, who: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_", "PYTHON"))}
        env.update(who, PYTHONPATH=LIB)
        return env

    def store(self) -> dict:
        """The inventory script's run as the writer: it stores the inventory and prints it."""
        result = run_script(self.config_dir, env=self.writer)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        self.printed = json.loads(result.stdout)
        return self.printed

    def helper(self, script: str, *args: str, who: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, os.path.join(HELPERS, script), "--config", self.config_dir, *args],
                              env=self.env(self.reader if who is None else who), capture_output=True, text=True,
                              timeout=120)

    def history(self) -> list[dict]:
        result = subprocess.run([sys.executable, MANAGE, "--config", self.config_dir, "--history", "--format", "json"],
                                env=self.env(self.writer), capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def open(self, monkeypatch, who: dict[str, str], **kw):
        """``api.open_inventory`` in this process, with ``who``'s osa.ini and password."""
        for key, value in who.items():
            monkeypatch.setenv(key, value)
        return api.open_inventory(config_dir=self.config_dir, **kw)


def etcd_site(auth, tmp_path, deployment: str) -> Site:
    config_dir = str(tmp_path / "config")
    write_config(config_dir, base_config())
    writer_ini = write_etcd_ini(str(tmp_path / "w"), auth.endpoints, deployment, f"osa-{deployment}")
    reader_ini = write_etcd_ini(str(tmp_path / "r"), auth.endpoints, deployment, f"osa-{deployment}-ro")
    return Site("etcd", config_dir, {"OSA_INI": writer_ini, **as_etcd_user(f"osa-{deployment}", deployment)},
                {"OSA_INI": reader_ini, **as_etcd_user(f"osa-{deployment}-ro", deployment)})


def plain_site(backend: str, tmp_path, ini_text: str) -> Site:
    config_dir = str(tmp_path / "config")
    write_config(config_dir, base_config())
    who = {"OSA_INI": write_ini(str(tmp_path), ini_text)}
    return Site(backend, config_dir, who, who)


@pytest.fixture
def craton(tmp_path):
    server = CratonServer().start()
    try:
        yield server
    finally:
        server.stop()


def craton_ini(server: CratonServer) -> str:
    return "[inventory]\nbackend = craton\n[craton]\n" + "".join(f"{k} = {v}\n" for k, v in server.options().items())


# The helpers' end-to-end runs on etcd and Craton are the heaviest of the API's tests: once per CI run
# (the per-backend API tests above run everywhere).
@pytest.fixture(params=["filesystem", pytest.param("etcd", marks=pytest.mark.once),
                        pytest.param("craton", marks=pytest.mark.once)])
def site(request, tmp_path) -> Site:
    if request.param == "etcd":
        return etcd_site(request.getfixturevalue("auth_etcd"), tmp_path, "prod")
    if request.param == "craton":
        return plain_site("craton", tmp_path, craton_ini(request.getfixturevalue("craton")))
    return plain_site("filesystem", tmp_path, "[inventory]\nbackend = filesystem\n")


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0 and result.stderr == "", (result.returncode, result.stderr)
    return result.stdout


def one_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode == 1 and result.stdout == "", (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: ") and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


# -- the API on etcd (reader and writer roles) and Craton -------------------------------------------------

def test_etcd_reader_reads_what_the_script_prints_writes_nothing_and_may_not_remove(auth_etcd, tmp_path,  # noqa: F811
                                                                                    monkeypatch):
    site = etcd_site(auth_etcd, tmp_path, "staging")
    printed = site.store()
    prefix = prefix_of("staging")
    before = auth_etcd.state(prefix)
    with site.open(monkeypatch, site.reader) as inv:
        assert inv.to_ansible() == printed
        assert inv.hosts("all") and set(inv.hosts("all")) == set(printed["_meta"]["hostvars"])
        assert inv.hostvars("compute1") == printed["_meta"]["hostvars"]["compute1"]
    with pytest.raises(api.AccessDenied) as caught:
        with site.open(monkeypatch, site.reader, write=True) as inv:
            inv.remove("compute1", reason="by a reader")
    assert "read-only" in str(caught.value) and "\n" not in str(caught.value)
    assert auth_etcd.state(prefix) == before, "a reader's API use wrote to etcd"

    with site.open(monkeypatch, site.writer, write=True) as inv:
        inv.remove("compute1", reason="compute1 retired")
    last = site.history()[-1]
    assert (last["reason"], last["user"]) == ("compute1 retired", current_user())
    assert last["command"].startswith("osa_inventory.api remove compute1")
    with site.open(monkeypatch, site.reader) as inv:
        assert "compute1" not in inv.hosts("all")


def test_craton_reads_what_the_script_prints_and_records_removals(craton, tmp_path, monkeypatch):
    site = plain_site("craton", tmp_path, craton_ini(craton))
    printed = site.store()
    hosts_before = craton.hosts()
    with site.open(monkeypatch, site.reader) as inv:
        assert inv.to_ansible() == printed
        assert inv.where.startswith("craton ")
    assert craton.hosts() == hosts_before
    with site.open(monkeypatch, site.writer, write=True) as inv:
        inv.remove("compute1", reason="compute1 retired")
        assert "compute1" not in inv.hosts("all")
    assert "compute1" not in craton.hosts()
    last = site.history()[-1]
    assert last["reason"] == "compute1 retired" and last["command"].startswith("osa_inventory.api remove compute1")


# -- the helpers, end to end on each backend ---------------------------------------------------------------

def test_the_helpers_end_to_end(site):
    # Nothing stored yet: "no", in its own exit status, and nothing written by asking.
    empty = site.helper("inventory_stored.py")
    assert empty.returncode == 2 and empty.stderr == "" and "holds no inventory yet" in empty.stdout, empty
    printed = site.store()
    hostvars = printed["_meta"]["hostvars"]
    versions = len(site.history())

    stored = ok(site.helper("inventory_stored.py"))
    assert stored.startswith(f"an inventory of {len(hostvars)} hosts is stored in {site.backend} ")

    checks = json.loads(ok(site.helper("healthcheck.py", "galera_all", "hosts")))
    assert set(checks["galera_all"]) == set(printed["galera_container"]["hosts"]) and len(checks["galera_all"]) == 2
    assert set(checks["hosts"]) == {"infra1", "infra2", "compute1", "storage1"}
    for group in checks.values():
        for name, seen in group.items():
            assert seen == {"is_metal": bool(hostvars[name].get("properties", {}).get("is_metal")),
                            "container_tech": hostvars[name]["container_tech"],
                            "physical_host": hostvars[name]["physical_host"]}
    assert all(seen["is_metal"] for seen in checks["hosts"].values())
    assert not any(seen["is_metal"] for seen in checks["galera_all"].values())

    order = json.loads(ok(site.helper("rolling_restart.py", "galera_all", "--json")))
    assert [step["physical_host"] for step in order] == ["infra1", "infra2"]
    for step in order:
        assert step["members"] == sorted(n for n in checks["galera_all"]
                                         if hostvars[n]["physical_host"] == step["physical_host"])
    text = ok(site.helper("rolling_restart.py", "galera_all"))
    assert text == "".join(f"{s['physical_host']}: {' '.join(s['members'])}\n" for s in order)

    plan = ok(site.helper("retire_compute_host.py", "compute1"))
    assert plan.startswith(f"would remove from {site.backend} ") and plan.splitlines()[0].endswith(": compute1")
    one_error(site.helper("retire_compute_host.py", "infra1"), "infra1 is not in compute_hosts")
    one_error(site.helper("retire_compute_host.py", "compute1", "--yes"), "--yes needs --reason")
    one_error(site.helper("healthcheck.py", "galera_al"), "no group 'galera_al'")
    assert len(site.history()) == versions, "a query or a plan wrote something"

    if site.reader != site.writer:
        one_error(site.helper("retire_compute_host.py", "compute1", "--yes", "--reason", "by a reader"),
                  "read-only")
        assert len(site.history()) == versions
    done = ok(site.helper("retire_compute_host.py", "compute1", "--yes", "--reason", "RMA 4711", who=site.writer))
    assert done.startswith(f"removed from {site.backend} ") and done.rstrip().endswith(": compute1")
    last = site.history()[-1]
    assert len(site.history()) == versions + 1 and last["reason"] == "RMA 4711"
    assert last["command"] == "osa_inventory.api remove compute1 --with-containers (from retire_compute_host.py)"
    assert json.loads(ok(site.helper("healthcheck.py", "compute_hosts"))) == {"compute_hosts": {}}
