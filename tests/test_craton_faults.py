"""Craton writes under faults, through the real scripts against the Craton look-alike (issue 16).

A change is cut at every request of its write (the server gone, the client
killed, the answer lost), with and without the local cache; then the next
run must exit 0 printing exactly what Craton holds, with no unfinished write
left. Also: a change interrupted and its config reverted, ``inventory-manage
-r`` killed after deleting the host, two deploy hosts writing at once, and a
mark of a writer on another machine.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time

import pytest

from craton_server import CratonServer
from helpers import SCRIPT, base_config, write_config, write_ini
from osa_inventory.storage.loader import load_plugin_module
from osa_inventory.storage.settings import Settings
from osa_inventory.testing import assert_same
from test_craton_plugin import marks

# Once per CI run: the Craton backend's fault loops against the test server.
# The same code on every Python; the other versions' suites keep their own tests of each backend.
pytestmark = pytest.mark.once

PLUGIN = load_plugin_module("craton", Settings(path=None))
MANAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "inventory-manage.py")


def changed_config() -> dict:
    """The next version of ``base_config()``: a new compute host, in several groups.

    Small on purpose: every request of this write is cut through the real
    script; test_craton_plugin cuts a write using every kind of request at
    every point, in one process.
    """
    config = base_config()
    config["compute_hosts"]["compute2"] = {"ip": "172.29.236.22"}
    return config


class Deployment:
    """One deploy host: a config folder (with the local cache), osa.ini for the look-alike, and runs."""

    def __init__(self, server: CratonServer, folder: str, region: str, config: dict, cache: bool = True):
        self.server, self.region, self.cache = server, region, cache
        self.config_dir = os.path.join(folder, "deploy")
        write_config(self.config_dir, config)
        self.ini = write_ini(folder, f"[inventory]\nbackend = craton\n[craton]\nurl = {server.url}\ncloud = faults\n"
                                     f"region = {region}\nproject_id = {server.project_id}\n"
                                     f"username = {server.username}\ntimeout = 5\nretries = 1\nbackoff = 0.01\n"
                                     f"cache = {str(cache).lower()}\n")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_"))}
        self.env.update(OSA_INI=self.ini, OSA_INVENTORY_CRATON_API_KEY=server.api_key)

    def start(self, *args: str, tool: str = SCRIPT) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, tool, "--config", self.config_dir, *(args or ["--list"])],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env)

    def run(self, *args: str, tool: str = SCRIPT) -> subprocess.CompletedProcess:
        proc = self.start(*args, tool=tool)
        out, err = proc.communicate(timeout=120)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def storage(self, folder: str | None = None, cache: bool | None = None):
        """The plugin in this process: this machine's cache, or another machine's (``folder``)."""
        storage = PLUGIN.Storage()
        storage.register({**self.server.options(), "cloud": "faults", "region": self.region,
                          "cache": str(self.cache if cache is None else cache).lower(),
                          "config_dir": folder or self.config_dir})
        return storage

    def craton_holds(self, folder: str) -> dict:
        """What another machine without a cache reads now."""
        return self.storage(folder, cache=False).load()


def ok(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return json.loads(result.stdout)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1 and result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: ") and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def server():
    srv = CratonServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def versions(server, tmp_path_factory):
    """Per cache mode: the inventories the script generates from the base config and the changed one,
    and which requests of the changing run are its write (measured on scratch regions)."""
    out = {}
    for cache in (True, False):
        folder = str(tmp_path_factory.mktemp("versions"))
        first = Deployment(server, folder, f"versions-{cache}", base_config(), cache)
        v1 = ok(first.run())
        write_config(first.config_dir, changed_config())
        server.app.reset_log()
        v2 = ok(first.run())
        modifying = [e.method != "GET" for e in server.app.log]
        server.app.reset_log()
        assert_same(ok(first.run()), v2)  # unchanged: only the load's requests
        out[cache] = (v1, v2, range(len(server.app.log), len(modifying)), modifying)
        assert v1 != v2
    return out


def prepared(server, tmp_path, name: str, v1: dict, cache: bool) -> Deployment:
    """A deploy host whose config is the changed one, with v1 stored in a region of its own (and cached)."""
    deployment = Deployment(server, str(tmp_path / name), name, changed_config(), cache)
    deployment.storage().write(copy.deepcopy(v1))
    return deployment


def check_recovered(deployment: Deployment, tmp_path, v2: dict) -> None:
    """The next run on the writing machine exits 0, prints v2 and leaves Craton holding exactly that."""
    printed = ok(deployment.run())
    assert_same(printed, v2, "the run after the fault")
    assert_same(deployment.craton_holds(str(tmp_path / f"{deployment.region}-reader")), printed,
                "what Craton holds after the run")
    assert marks(deployment.server, deployment.region) == []


@pytest.mark.once
@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
def test_change_cut_at_every_request_then_the_next_run_completes_it(server, versions, tmp_path, cache):
    v1, v2, write_requests, modifying = versions[cache]
    assert len(write_requests) >= 7  # read, mark, look, creation, check, commit, tidy-up
    for index in write_requests:
        # A client killed at a read leaves Craton as the server going away there does: kill at changes only.
        faults = ("server gone", "client killed") if modifying[index] else ("server gone",)
        for fault in faults:
            name = f"{'c' if cache else 'n'}-{index}-{fault.split()[1]}"
            deployment = prepared(server, tmp_path, name, v1, cache)
            if fault == "server gone":  # the request reaches the server, which dies having carried it out
                server.app.die_after(index, apply_last=True, every_request=True)
                result = deployment.run()
                if result.returncode == 0:  # only the tidy-up after the commit was lost
                    assert index == write_requests[-1] and result.stderr == ""
                    assert_same(json.loads(result.stdout), v2)
                else:
                    one_line_error(result)
            else:  # the client is killed while its request is carried out
                proc = deployment.start()
                server.app.kill_client_at(index, proc.pid, apply=True)
                proc.communicate(timeout=120)
                assert proc.returncode == -9, (index, proc.returncode)
            server.app.revive()
            check_recovered(deployment, tmp_path, v2)  # the next run on the writing machine finishes it


@pytest.mark.once
@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
def test_every_answer_of_a_change_lost_once_is_retried_to_the_end(server, versions, tmp_path, cache):
    v1, v2, _, _ = versions[cache]
    deployment = prepared(server, tmp_path, f"lost-{cache}", v1, cache)
    server.app.lose_every_answer_once()
    try:
        assert_same(ok(deployment.run()), v2)
    finally:
        server.app.clear_knobs()
    assert_same(deployment.craton_holds(str(tmp_path / "lost-reader")), v2)
    assert marks(server, deployment.region) == []


@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
def test_interrupted_change_with_its_config_reverted_is_rolled_back_by_an_unchanged_run(server, versions,
                                                                                       tmp_path, cache):
    v1, _, write_requests, _ = versions[cache]
    deployment = prepared(server, tmp_path, f"revert-{cache}", v1, cache)
    server.app.die_after(write_requests[-4], apply_last=True, every_request=True)  # hosts changed, not committed
    one_line_error(deployment.run())
    server.app.revive()
    write_config(deployment.config_dir, base_config())  # the operator reverts the change
    assert_same(ok(deployment.run()), v1)  # the inventory is unchanged, yet the unfinished write is finished
    assert marks(server, deployment.region) == []
    assert_same(deployment.craton_holds(str(tmp_path / "revert-reader")), v1)


def test_inventory_manage_remove_killed_after_the_delete_is_rolled_back_everywhere(server, versions, tmp_path):
    v1 = versions[True][0]
    deployment = prepared(server, tmp_path, "manage", v1, True)
    write_config(deployment.config_dir, base_config())
    proc = deployment.start("-r", "compute1", tool=MANAGE)
    server.app.kill_client_at(0, proc.pid, apply=True, method="DELETE", path=r"^/v1/hosts/\d+$")
    proc.communicate(timeout=120)
    assert proc.returncode == -9
    server.app.revive()
    assert "compute1" not in hosts_in(server, "manage")  # killed after Craton deleted it
    # Another machine, no cache: the whole previous version (never "incomplete"), and Craton is repaired.
    other = Deployment(server, str(tmp_path / "manage-other"), "manage", base_config(), cache=False)
    exported = json.loads(ok_text(other.run("--export", tool=MANAGE)))
    assert "compute1" in exported["hosts"]
    assert marks(server, "manage") == []
    # The operator repeats the removal.
    ok_text(deployment.run("-r", "compute1", tool=MANAGE))
    assert "compute1" not in deployment.craton_holds(str(tmp_path / "manage-reader"))["_meta"]["hostvars"]


def hosts_in(server: CratonServer, region: str) -> set:
    region_id = server.region(region)["id"]
    with server.app.lock:
        return {h["name"] for h in server.app.tables["hosts"].values() if h["region_id"] == region_id}


def ok_text(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def finish(procs: list) -> list:
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


@pytest.mark.once
def test_two_deploy_hosts_writing_at_once_never_mix(server, tmp_path):
    one_config, two_config = base_config(), base_config()
    one_config["compute_hosts"]["compute-a"] = {"ip": "172.29.236.61"}
    two_config["compute_hosts"]["compute-b"] = {"ip": "172.29.236.62"}
    two_config["compute_hosts"]["compute1"] = {"ip": "172.29.236.63"}
    one = Deployment(server, str(tmp_path / "one"), "shared", one_config)
    two = Deployment(server, str(tmp_path / "two"), "shared", two_config)
    refusals, before = 0, None
    # Requests take a while, and the mark and the commit longer, so the two runs overlap.
    server.app.slow(0.2, method="PUT", path=r"^/v1/regions/\d+/variables$")
    server.app.slow(0.003)
    try:
        for round_ in range(3):
            results = finish([d.start() for d in (one, two)])
            held = one.craton_holds(str(tmp_path / f"reader{round_}"))
            succeeded = [json.loads(r.stdout) for r in results if r.returncode == 0]
            # What Craton holds is exactly one writer's inventory, or, when both stood back, what it held.
            if succeeded:
                assert any(same_json(held, s) for s in succeeded), round_
            else:
                assert same_json(held, before), round_
            for deployment, result in zip((one, two), results):
                if result.returncode != 0:
                    refusals += 1
                    line = one_line_error(result)
                    assert "another run" in line and "run again" in line, line
                    assert_same(ok(deployment.run()), one.craton_holds(str(tmp_path / f"again{round_}")))
            assert marks(server, "shared") == []
            before = one.craton_holds(str(tmp_path / f"before{round_}"))
            for deployment, config in ((one, one_config), (two, two_config)):  # both change: both write
                config["global_overrides"]["round"] = round_
                write_config(deployment.config_dir, config)
    finally:
        server.app.clear_knobs()
    assert refusals >= 1  # the runs did overlap


def test_the_no_lock_warning_says_what_the_test_above_shows(server, tmp_path):
    """Craton has no lock(): the warning says overlapping runs are refused (as above), not that they overwrite."""
    deployment = Deployment(server, str(tmp_path / "warned"), "warned", base_config())
    checked = deployment.run("--check")
    assert checked.returncode == 0 and checked.stderr == "", checked.stderr
    lines = checked.stdout.splitlines()
    outcome = PLUGIN.Storage().concurrency()
    assert lines == ["Configuration ok!", "WARNING: storage backend craton has no lock(): concurrent runs are not "
                                          f"serialised, and {outcome}"]
    assert "overwrite" not in checked.stdout and "refused and stores nothing" in outcome
    # docs/craton.md says the same, in the same words.
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "craton.md")) as fh:
        assert " ".join(outcome.split()) in " ".join(fh.read().split())


def same_json(a, b) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_mark_of_a_writer_on_another_machine_blocks_until_it_expires(server, versions, tmp_path):
    v1, v2, _, _ = versions[True]
    deployment = prepared(server, tmp_path, "remote", v1, True)
    storage = deployment.storage()
    server.app.die_after(2)  # the mark and the created host: then the server goes, before the commit
    with pytest.raises(PLUGIN.StorageError):
        storage.write(copy.deepcopy(v2))
    server.app.revive()
    with server.app.lock:  # make it another machine's mark, still within its lease
        region = next(r for r in server.app.tables["regions"].values() if r["name"] == "remote")
        (key,) = [k for k in region["variables"] if k.startswith("osa-inventory:writer:")]
        region["variables"][key]["writer"].update(host="deploy-b", pid=4242)
        region["variables"][key]["expires"] = time.time() + 3600
    # Readers get the last committed version and leave the live-looking write alone.
    assert_same(deployment.craton_holds(str(tmp_path / "remote-reader")), v1)
    assert marks(server, "remote") == [key]
    line = one_line_error(deployment.run())
    assert "another run is writing" in line and "deploy-b" in line and "4242" in line and "run again" in line
    with server.app.lock:  # its lease runs out (the time the message names passes)
        region["variables"][key]["expires"] = time.time() - 1
    check_recovered(deployment, tmp_path, v2)


def test_hung_server_ends_the_run_at_the_inventory_timeout_and_the_next_run_finishes(server, versions, tmp_path):
    v1, v2, _, _ = versions[True]
    deployment = prepared(server, tmp_path, "hung", v1, True)
    normal = dict(deployment.env)
    # Craton's own limits allow minutes (30 s x 4 attempts); the run's deadline is 1.5 s a step.
    deployment.env.update(OSA_INVENTORY_TIMEOUT="1.5", OSA_INVENTORY_CRATON_TIMEOUT="30",
                          OSA_INVENTORY_CRATON_RETRIES="3")
    server.app.slow(60, method="POST", path=r"^/v1/hosts$")  # hangs in the middle of the write
    try:
        started = time.monotonic()
        line = one_line_error(deployment.run())
        elapsed = time.monotonic() - started
    finally:
        server.app.clear_knobs()
        server.app.woken.set()  # end the hung answer now
    assert "craton" in line and "within 1.5 s" in line and "timeout" in line, line
    assert elapsed < 30  # not 30 s x 4 attempts
    server.app.woken.clear()
    deployment.env = normal
    check_recovered(deployment, tmp_path, v2)


@pytest.mark.parametrize("debug", [False, True])
def test_a_cache_that_cannot_be_written_and_a_log_that_cannot_be_opened_never_fail_a_run(server, tmp_path, debug):
    """A read-only deploy folder as root sees it: the cache warning has nowhere to go, and the run still succeeds."""
    deployment = Deployment(server, str(tmp_path), f"readonly-{debug}", base_config())
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be\n")
    with open(deployment.ini, "a", encoding="utf-8") as fh:
        fh.write(f"cache_dir = {blocker}\n")
    os.mkdir(os.path.join(deployment.config_dir, "inventory.log"))  # the log cannot be opened either
    args = ("--list", "-d") if debug else ("--list",)
    first = ok(deployment.run(*args))
    assert first["_meta"]["hostvars"], first
    assert not any(p.name.startswith(".craton-inventory-cache") for p in tmp_path.rglob("*"))
    assert_same(ok(deployment.run(*args)), first)  # the next run: a full load, the same inventory
    assert_same(deployment.craton_holds(str(tmp_path / "elsewhere")), first)
