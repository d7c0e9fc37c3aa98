"""The etcd storage plugin against real etcd processes started by these tests."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from etcd_server import EtcdCluster, build_inventory, etcd, free_port, skip_without_etcd
from osa_inventory.testing import StorageContract
from tls_certs import legacy_ca, make_pki, reissue_ca_as_advised
from osa_inventory.backends.tls import CA_EXTENSIONS
from osa_inventory.errors import SettingsError, StorageError
from osa_inventory.commands.advice import error_lines
from osa_inventory.storage.loader import Backend, open_backend
from osa_inventory.storage.settings import Settings

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.path.join(os.path.dirname(HERE), "lib")


def open_etcd(endpoints: str, prefix: str, environ: dict | None = None, **options) -> Backend:
    """The etcd backend as the program opens it: osa.ini section + environment, via the loader."""
    section = {"endpoints": endpoints, "prefix": prefix, "timeout": "5"}
    section.update({k: str(v) for k, v in options.items()})
    settings = Settings(path=None, backend="etcd", sections={"etcd": section}, environ=environ or {})
    return open_backend(settings, tempfile.gettempdir())


class TxnRecorder:
    """Wraps a storage's client to record every transaction's put and delete keys."""

    def __init__(self, backend: Backend):
        self.client = backend.storage.client
        self.puts: list[bytes] = []
        self.deletes: list[bytes] = []
        self._txn = self.client.txn
        self.client.txn = self._record

    def _record(self, compare, success, failure=None):
        import base64
        for op in success:
            if "request_put" in op:
                self.puts.append(base64.b64decode(op["request_put"]["key"]))
            if "request_delete_range" in op:
                self.deletes.append(base64.b64decode(op["request_delete_range"]["key"]))
        return self._txn(compare, success, failure)

    def data_puts(self, prefix: str) -> list[str]:
        return sorted(k.decode()[len(prefix):] for k in self.puts if k.startswith((prefix + "/data/").encode()))

    def data_deletes(self, prefix: str) -> list[str]:
        return sorted(k.decode()[len(prefix):] for k in self.deletes if k.startswith((prefix + "/data/").encode()))


@pytest.fixture
def prefix(request) -> str:
    return "/osa-test/" + re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)


def data_keys(cluster: EtcdCluster, prefix: str) -> dict[bytes, dict]:
    return cluster.keys(prefix + "/data/")


def expected_key_count(inventory: dict) -> int:
    """Parts the layout should keep for ``inventory`` (no chunking): one per host, one per
    other top-level entry, one for the rest of _meta if any, one index."""
    meta = inventory.get("_meta", {})
    rest = 1 if any(k != "hostvars" for k in meta) else 0
    return len(meta.get("hostvars", {})) + len([k for k in inventory if k != "_meta"]) + rest + 1


# -- the shared storage contract ---------------------------------------------------

class TestEtcdContract(StorageContract):
    """docs/writing-plugins.md's contract, kept by the etcd plugin on a real etcd."""

    secrets = ("contract-secret-pw",)

    @pytest.fixture
    def make_storage(self, etcd, prefix):
        def make():
            storage = open_etcd(etcd.endpoints_text, "/contract" + prefix).storage
            assert storage.describe() == f"etcd {etcd.endpoints_text} prefix /contract{prefix}"
            return storage
        return make

    @pytest.fixture
    def register_failures(self, tmp_path):
        def attempt(**args):
            from osa_inventory.storage.loader import load_plugin_module
            module = load_plugin_module("etcd", Settings(path=None))
            return lambda: module.Storage().register({"config_dir": str(tmp_path), **args})
        return [attempt(endpoints="etcd1:2379"), attempt(password="contract-secret-pw"),
                attempt(username="osa"), attempt(timeout="-1"), attempt(lock_ttl="x"),
                attempt(ca_cert="missing.pem")]


# -- round trips -----------------------------------------------------------------

def _varied_inventories() -> dict[str, dict]:
    osa = build_inventory(5, infra=2)
    meta_extra = build_inventory(2, infra=1)
    meta_extra["_meta"] = {"first": [1, 2], "hostvars": meta_extra["_meta"]["hostvars"], "zlast": {"x": None}}
    odd = {"_meta": {"hostvars": []}, "weird": "a string", "list": [3, 2, 1], "n": 1.5}
    unicode = {"_meta": {"hostvars": {"hôst-ü/1": {"ключ": "значение", "emoji": "🚀", "nested": {"ä": ["ö", {"ß": 1}]}},
                                      "second host": {}}},
               "grüppe": {"hosts": ["second host", "hôst-ü/1"], "children": []},
               "all": {"vars": {"unicode": "日本語", "deep": {"a": {"b": {"c": {"d": [[], {}, ""]}}}}}}}
    big_vars = build_inventory(3, infra=1, extra_vars={"blob": "x" * 1_300_000, "tail": "ü" * 300_000})
    big_host = build_inventory(2, infra=1)
    big_host["_meta"]["hostvars"]["compute0001"]["huge"] = ["é" * 1000] * 700
    return {"osa": osa, "empty": {}, "all_only": {"all": {"vars": {}}}, "meta_extra": meta_extra,
            "odd_shapes": odd, "unicode": unicode, "big_all_vars": big_vars, "big_hostvars": big_host}


VARIED = _varied_inventories()


@pytest.mark.parametrize("name", list(VARIED))
def test_round_trip_keeps_inventory_exactly(etcd, prefix, name):
    inventory = VARIED[name]
    writer = open_etcd(etcd.endpoints_text, prefix)
    assert writer.load() is None
    writer.write(copy.deepcopy(inventory))
    # The plugin itself keeps any JSON exactly; Backend.load would refuse the odd shapes.
    got = open_etcd(etcd.endpoints_text, prefix).storage.load()
    assert got == inventory
    # Same key order everywhere, not just equal content.
    assert json.dumps(got, ensure_ascii=False) == json.dumps(inventory, ensure_ascii=False)
    sizes = [info["size"] for info in etcd.keys(prefix + "/").values()]
    assert max(sizes) <= 512 * 1024, "every value stays well under etcd's 1.5 MiB request limit"


def test_round_trip_3000_hosts_in_one_atomic_switch(etcd, prefix):
    inventory = build_inventory(3000)
    assert len(inventory["_meta"]["hostvars"]) > 3000
    backend = open_etcd(etcd.endpoints_text, prefix)
    recorder = TxnRecorder(backend)
    backend.write(inventory)
    got = open_etcd(etcd.endpoints_text, prefix).load()
    assert got == inventory
    assert list(got["compute_hosts"]["hosts"]) == inventory["compute_hosts"]["hosts"]
    keys = data_keys(etcd, prefix)
    assert len(keys) == expected_key_count(inventory)
    # More parts than etcd allows in one transaction (128), yet the manifest was put once.
    assert len(keys) > 128
    manifest_puts = [k for k in recorder.puts if k == (prefix + "/manifest").encode()]
    assert len(manifest_puts) == 1
    assert etcd.keys(prefix + "/manifest")[(prefix + "/manifest").encode()]["mod_revision"] > max(
        info["mod_revision"] for info in keys.values())


# -- only changed keys -------------------------------------------------------------

def test_unchanged_inventory_writes_nothing(etcd, prefix):
    inventory = build_inventory(50)
    open_etcd(etcd.endpoints_text, prefix).write(inventory)
    before = etcd.keys(prefix + "/")
    backend = open_etcd(etcd.endpoints_text, prefix)
    recorder = TxnRecorder(backend)
    with backend.lock():
        loaded = backend.load()
        backend.write(loaded)
    fresh = open_etcd(etcd.endpoints_text, prefix)
    fresh_recorder = TxnRecorder(fresh)
    fresh.write(copy.deepcopy(inventory))  # without a load first: read, compare, nothing to do
    for rec in (recorder, fresh_recorder):
        assert rec.data_puts(prefix) == [] and rec.data_deletes(prefix) == []
        assert rec.puts == [(prefix + "/lock").encode()]  # only the lock was taken
    assert etcd.keys(prefix + "/") == before
    assert len(backend.history()) == 1


def test_one_host_change_rewrites_only_that_host(etcd, prefix):
    inventory = build_inventory(200)
    open_etcd(etcd.endpoints_text, prefix).write(inventory)
    before = data_keys(etcd, prefix)
    backend = open_etcd(etcd.endpoints_text, prefix)
    recorder = TxnRecorder(backend)
    with backend.lock():
        current = backend.load()
        current["_meta"]["hostvars"]["compute0042"]["ansible_host"] = "10.9.9.9"
        backend.write(current)
    puts = recorder.data_puts(prefix)
    assert len(puts) == 2, puts
    assert re.fullmatch(r"/data/2-[0-9a-f]{8}/host/compute0042", puts[0]) or re.fullmatch(
        r"/data/2-[0-9a-f]{8}/host/compute0042", puts[1])
    assert any(p.endswith("/index/parts") for p in puts)
    deletes = recorder.data_deletes(prefix)
    assert len(deletes) == 2 and any(d.endswith("/host/compute0042") for d in deletes)
    after = data_keys(etcd, prefix)
    unchanged = set(before) & set(after)
    assert len(unchanged) == len(before) - 2
    assert all(before[k]["mod_revision"] == after[k]["mod_revision"] for k in unchanged)
    assert open_etcd(etcd.endpoints_text, prefix).load() == current


def test_group_membership_change_rewrites_only_that_group(etcd, prefix):
    inventory = build_inventory(20)
    backend = open_etcd(etcd.endpoints_text, prefix)
    backend.write(inventory)
    recorder = TxnRecorder(backend)
    changed = copy.deepcopy(inventory)
    changed["nova_compute"]["hosts"].reverse()  # order inside a group matters
    backend.write(changed)
    puts = recorder.data_puts(prefix)
    assert sorted(p.rsplit("/", 2)[-2:] for p in puts) == [["group", "nova_compute"], ["index", "parts"]]
    assert open_etcd(etcd.endpoints_text, prefix).load()["nova_compute"]["hosts"] == changed["nova_compute"]["hosts"]


def test_large_change_is_staged_then_switched_and_old_parts_removed(etcd, prefix):
    first = build_inventory(300, seed=1)
    second = build_inventory(400, seed=2)  # every host differs: far more than 128 operations
    backend = open_etcd(etcd.endpoints_text, prefix)
    backend.write(first)
    backend.write(second)
    assert open_etcd(etcd.endpoints_text, prefix).load() == second
    assert len(data_keys(etcd, prefix)) == expected_key_count(second)
    history = backend.history()
    assert [h["generation"] for h in history] == [1, 2]
    assert backend.read_version(history[0]["version"]) == first


# -- concurrency ---------------------------------------------------------------------

def _worker_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([LIB, HERE])
    return env


def _spawn(func: str, *args) -> subprocess.Popen:
    """A real child process running ``func(*args)`` from this module."""
    code = f"import sys, json, test_etcd_plugin as t; t.{func}(*json.loads(sys.argv[1]))"
    return subprocess.Popen([sys.executable, "-c", code, json.dumps(list(args))], env=_worker_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def worker_increment(endpoints: str, prefix: str, worker: int, rounds: int) -> None:
    """Lock, load, add one to the counter and log this round, write; ``rounds`` times."""
    backend = open_etcd(endpoints, prefix, lock_timeout=60)
    for i in range(rounds):
        with backend.lock():
            inventory = backend.load()
            vars_ = inventory["all"]["vars"]
            vars_["counter"] += 1
            vars_["log"].append(f"{worker}-{i}")
            inventory["_meta"]["hostvars"][f"worker{worker}"] = {"round": i}
            inventory.setdefault(f"worker{worker}_group", {"hosts": []})["hosts"].append(f"r{i}")
            backend.write(inventory)
    backend.close()
    print("done", flush=True)


def worker_stall_mid_write(endpoints: str, prefix: str, computes: int, seed: int) -> None:
    """Start a large write, say so once the first new parts are in etcd, then hang."""
    backend = open_etcd(endpoints, prefix, lock_ttl=2)
    client = backend.storage.client
    real_txn = client.txn

    def txn(compare, success, failure=None):
        answer = real_txn(compare, success, failure)
        if sum("request_put" in op for op in success) > 20:
            print("staged", flush=True)
            time.sleep(120)
        return answer

    client.txn = txn
    with backend.lock():
        backend.load()
        backend.write(build_inventory(computes, seed=seed))


@pytest.mark.once
def test_four_processes_lose_no_update(etcd, prefix):
    inventory = build_inventory(30)
    inventory["all"]["vars"].update({"counter": 0, "log": []})
    open_etcd(etcd.endpoints_text, prefix).write(inventory)
    rounds = 6
    procs = [_spawn("worker_increment", etcd.endpoints_text, prefix, w, rounds) for w in range(4)]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and out.strip() == "done", err
    final = open_etcd(etcd.endpoints_text, prefix).load()
    assert final["all"]["vars"]["counter"] == 4 * rounds
    assert sorted(final["all"]["vars"]["log"]) == sorted(f"{w}-{i}" for w in range(4) for i in range(rounds))
    for w in range(4):
        assert final["_meta"]["hostvars"][f"worker{w}"] == {"round": rounds - 1}
        assert final[f"worker{w}_group"]["hosts"] == [f"r{i}" for i in range(rounds)]
    # Every write was its own version.
    assert len(open_etcd(etcd.endpoints_text, prefix).history()) == 1 + 4 * rounds


def test_write_without_lock_refuses_to_overwrite_a_newer_version(etcd, prefix):
    inventory = build_inventory(10)
    open_etcd(etcd.endpoints_text, prefix).write(inventory)
    first, second = open_etcd(etcd.endpoints_text, prefix), open_etcd(etcd.endpoints_text, prefix)
    a, b = first.load(), second.load()
    a["all"]["vars"]["from"] = "a"
    b["all"]["vars"]["from"] = "b"
    first.write(a)
    with pytest.raises(StorageError) as err:
        second.write(b)
    message = str(err.value)
    assert "was changed by" in message and "nothing was written" in message and prefix in message
    assert open_etcd(etcd.endpoints_text, prefix).load()["all"]["vars"]["from"] == "a"
    # After reading again the same run can write.
    fresh = second.load()
    fresh["all"]["vars"]["from"] = "b"
    second.write(fresh)
    assert open_etcd(etcd.endpoints_text, prefix).load()["all"]["vars"]["from"] == "b"


def test_writer_killed_mid_write_leaves_previous_version(etcd, prefix):
    before = build_inventory(100, seed=1)
    open_etcd(etcd.endpoints_text, prefix).write(before)
    keys_before = data_keys(etcd, prefix)
    proc = _spawn("worker_stall_mid_write", etcd.endpoints_text, prefix, 400, 7)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "staged", proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert open_etcd(etcd.endpoints_text, prefix).load() == before
    assert len(data_keys(etcd, prefix)) > len(keys_before), "the dead writer left staged parts"
    # Its lock dies with its lease (lock_ttl 2 s); then another run takes over.
    backend = open_etcd(etcd.endpoints_text, prefix, lock_ttl=5, lock_timeout=20)
    started = time.monotonic()
    with backend.lock():
        waited = time.monotonic() - started
        current = backend.load()
        current["all"]["vars"]["after_crash"] = 1
        backend.write(current)
    assert 0.5 < waited < 10
    # The next write removes what the dead writer staged.
    current["all"]["vars"]["after_crash"] = 2
    with backend.lock():
        backend.load()
        backend.write(current)
    assert open_etcd(etcd.endpoints_text, prefix).load() == current
    assert len(data_keys(etcd, prefix)) == expected_key_count(current)


@pytest.mark.parametrize("fault", ["answer_lost", "sent_twice", "not_applied"])
def test_unanswered_switch_is_resolved_by_reading_the_manifest(etcd, prefix, fault):
    """The switch transaction may be applied while its answer is lost, or reach etcd twice
    (the client retries on another endpoint); the writer must tell what happened."""
    from osa_inventory.backends.etcd.client import EtcdUnavailable
    before, after = build_inventory(150, seed=1), build_inventory(150, seed=2)
    open_etcd(etcd.endpoints_text, prefix).write(before)
    backend = open_etcd(etcd.endpoints_text, prefix)
    client = backend.storage.client
    real_txn = client.txn
    manifest_key = (prefix + "/manifest").encode()

    def txn(compare, success, failure=None):
        import base64
        switching = any("request_put" in op and base64.b64decode(op["request_put"]["key"]) == manifest_key
                        for op in success)
        if not switching:
            return real_txn(compare, success, failure)
        if fault == "not_applied":
            raise EtcdUnavailable("no etcd endpoint answered (simulated)")
        first = real_txn(compare, success, failure)
        if fault == "answer_lost":
            raise EtcdUnavailable("no etcd endpoint answered (simulated)")
        assert first["succeeded"]
        return real_txn(compare, success, failure)  # the retry: its compare now fails

    client.txn = txn
    if fault == "not_applied":
        with pytest.raises(StorageError, match="unchanged so far"):
            backend.write(after)
        assert open_etcd(etcd.endpoints_text, prefix).load() == before
        client.txn = real_txn
        # The parts staged for the lost switch are cleaned up by later writes.
        backend.load()
        backend.write(after)
        final = copy.deepcopy(after)
        final["all"]["vars"]["again"] = 1
        backend.load()
        backend.write(final)
        assert len(data_keys(etcd, prefix)) == expected_key_count(final)
    else:
        backend.write(after)
        assert open_etcd(etcd.endpoints_text, prefix).load() == after
        assert len(data_keys(etcd, prefix)) == expected_key_count(after)
        assert [h["generation"] for h in backend.history()] == [1, 2]


# -- the lock ------------------------------------------------------------------------

def test_lock_wait_gives_up_naming_the_holder(etcd, prefix):
    holder = open_etcd(etcd.endpoints_text, prefix)
    waiter = open_etcd(etcd.endpoints_text, prefix, lock_timeout=0.5)
    with holder.lock():
        started = time.monotonic()
        with pytest.raises(StorageError) as err:
            with waiter.lock():
                pass
        elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 3
    message = str(err.value)
    assert f"pid {os.getpid()}" in message and prefix + "/lock" in message and etcd.endpoints[0] in message
    # Released on exit: now the waiter gets it at once.
    with waiter.lock():
        pass


def test_lock_is_reentrant_and_released(etcd, prefix):
    backend = open_etcd(etcd.endpoints_text, prefix)
    with backend.lock():
        with backend.lock():
            backend.write({"all": {"vars": {"x": 1}}})  # write takes the lock too
        assert (prefix + "/lock").encode() in etcd.keys(prefix + "/")
    assert (prefix + "/lock").encode() not in etcd.keys(prefix + "/")


def test_write_refuses_after_lease_lost(etcd, prefix):
    before = build_inventory(10)
    open_etcd(etcd.endpoints_text, prefix).write(before)
    backend = open_etcd(etcd.endpoints_text, prefix)
    with backend.lock():
        current = backend.load()
        current["all"]["vars"]["lost"] = True
        # The lease ends behind our back (as when keepalives fail past the TTL) and another
        # run takes the lock.
        etcd.post("/v3/lease/revoke", {"ID": str(backend.storage.etcd_lock.lease)})
        other = open_etcd(etcd.endpoints_text, prefix, lock_timeout=2)
        with other.lock():
            with pytest.raises(StorageError) as err:
                backend.write(current)
    message = str(err.value)
    assert "lock" in message and "nothing was written" in message and etcd.endpoints[0] in message
    assert open_etcd(etcd.endpoints_text, prefix).load() == before


def test_lease_keeper_notices_a_revoked_lease(etcd, prefix):
    backend = open_etcd(etcd.endpoints_text, prefix, lock_ttl=2)
    with pytest.raises(StorageError) as err:
        with backend.lock():
            etcd.post("/v3/lease/revoke", {"ID": str(backend.storage.etcd_lock.lease)})
            deadline = time.monotonic() + 5
            while backend.storage.etcd_lock.lost is None and time.monotonic() < deadline:
                time.sleep(0.05)
            backend.write({"all": {}})
    assert "expired or was revoked" in str(err.value)
    assert open_etcd(etcd.endpoints_text, prefix).load() is None


# -- history ---------------------------------------------------------------------------

def test_history_lists_versions_and_reads_older_ones(etcd, prefix):
    backend = open_etcd(etcd.endpoints_text, prefix)
    versions = []
    for n in (3, 4, 5):
        inventory = build_inventory(n)
        backend.write(inventory)
        versions.append(inventory)
    backend.write(copy.deepcopy(versions[-1]))  # unchanged: no new version
    history = backend.history()
    assert [h["generation"] for h in history] == [1, 2, 3]
    assert [h["hosts"] for h in history] == [len(v["_meta"]["hostvars"]) for v in versions]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", h["time"]) for h in history)
    revisions = [int(h["version"]) for h in history]
    assert revisions == sorted(revisions)
    for entry, inventory in zip(history, versions):
        assert backend.read_version(entry["version"]) == inventory
    with pytest.raises(StorageError, match="not an etcd revision"):
        backend.read_version("latest")
    with pytest.raises(StorageError, match="does not exist yet"):
        backend.read_version(str(etcd.revision() + 1000))
    with pytest.raises(StorageError, match="no inventory was stored"):
        backend.read_version("1")


def test_history_after_compaction(prefix):
    skip_without_etcd()
    with EtcdCluster(1) as cluster:
        backend = open_etcd(cluster.endpoints_text, prefix)
        inventories = [build_inventory(n) for n in (1, 2, 3)]
        for inventory in inventories:
            backend.write(inventory)
        history = backend.history()
        backend.storage.client.compact(cluster.revision())
        with pytest.raises(StorageError) as err:
            backend.read_version(history[0]["version"])
        assert "compacted" in str(err.value) and cluster.endpoints[0] in str(err.value)
        after = backend.history()
        # Only the current version is still readable, under a revision that can be read back.
        assert [h["generation"] for h in after] == [3]
        assert backend.read_version(after[0]["version"]) == inventories[-1]
        assert backend.load() == inventories[-1]


# -- failures and failover -----------------------------------------------------------

def test_etcd_down_fails_fast_and_clearly_then_recovers(prefix):
    skip_without_etcd()
    with EtcdCluster(1) as cluster:
        inventory = build_inventory(20)
        open_etcd(cluster.endpoints_text, prefix).write(inventory)
        cluster.members[0].stop()
        backend = open_etcd(cluster.endpoints_text, prefix, timeout=4)
        for action in (backend.load, lambda: backend.write(inventory), backend.history):
            started = time.monotonic()
            with pytest.raises(StorageError) as err:
                action()
            assert time.monotonic() - started < 4
            message = str(err.value)
            assert cluster.endpoints[0] in message and "connection refused" in message
            assert "\n" not in message and "Traceback" not in message
        cluster.members[0].start()
        cluster.wait_healthy()
        assert backend.load() == inventory
        changed = copy.deepcopy(inventory)
        changed["all"]["vars"]["back"] = True
        backend.write(changed)
        assert open_etcd(cluster.endpoints_text, prefix).load() == changed


def test_dead_first_endpoint_fails_over(etcd, prefix):
    dead = f"http://127.0.0.1:{free_port()}"
    backend = open_etcd(f"{dead},{etcd.endpoints[0]}", prefix)
    inventory = build_inventory(5)
    with backend.lock():
        assert backend.load() is None
        backend.write(inventory)
    assert backend.load() == inventory


def test_three_member_cluster_survives_losing_a_member(prefix):
    skip_without_etcd()
    with EtcdCluster(3) as cluster:
        status = cluster.post("/v3/maintenance/status", {})
        leader = next(m for m in cluster.members
                      if cluster.post("/v3/maintenance/status", {}, member=m)["header"]["member_id"]
                      == status["leader"])
        # The leader first in the list: the client talks to it until it is gone.
        order = [leader] + [m for m in cluster.members if m is not leader]
        endpoints = ",".join(m.endpoint for m in order)
        backend = open_etcd(endpoints, prefix)
        inventory = build_inventory(150)
        backend.write(inventory)
        leader.stop()
        with backend.lock():
            current = backend.load()
            assert current == inventory
            current["all"]["vars"]["after_failover"] = True
            backend.write(current)
        assert backend.storage.client.endpoints[backend.storage.client._current] != leader.endpoint
        assert open_etcd(endpoints, prefix).load() == current
        assert backend.history()[-1]["generation"] == 2


def test_damaged_store_is_reported_not_guessed(etcd, prefix):
    inventory = build_inventory(3)
    open_etcd(etcd.endpoints_text, prefix).write(inventory)
    victim = next(k for k in data_keys(etcd, prefix) if b"/host/compute0002" in k)
    import base64
    etcd.post("/v3/kv/deleterange", {"key": base64.b64encode(victim).decode()})
    with pytest.raises(StorageError) as err:
        open_etcd(etcd.endpoints_text, prefix).load()
    assert victim.decode() in str(err.value) and "--history" in str(err.value)


# -- authentication and TLS ------------------------------------------------------------

def test_auth_users_passwords_and_permissions(prefix):
    skip_without_etcd()
    password = "s3cret-Pw!"
    with EtcdCluster(1, ["--auth-token-ttl", "1"]) as cluster:
        cluster.enable_auth("root-pw", {"osa": (password, prefix + "/"), "other": ("other-pw", "/elsewhere/")})
        endpoints = cluster.endpoints_text
        # The password comes from the environment, as the docs recommend.
        backend = open_etcd(endpoints, prefix, environ={"OSA_INVENTORY_ETCD_PASSWORD": password},
                            username="osa", lock_ttl=2)
        inventory = build_inventory(10)
        with backend.lock():
            assert backend.load() is None
            backend.write(inventory)
            # Held past its 2 s TTL and past the 1 s token TTL: the lease keeper must renew
            # it, logging in again by itself, or the next write is refused.
            time.sleep(3.5)
            assert backend.storage.etcd_lock.lost is None
            inventory["all"]["vars"]["still_locked"] = True
            backend.write(inventory)
        assert backend.load() == inventory

        wrong = open_etcd(endpoints, prefix, username="osa", password="not-the-password")
        with pytest.raises(StorageError) as err:
            wrong.load()
        message = str(err.value)
        assert "'osa'" in message and "password" in message and cluster.endpoints[0] in message
        assert "not-the-password" not in message and password not in message

        anonymous = open_etcd(endpoints, prefix)
        with pytest.raises(StorageError, match="requires authentication"):
            anonymous.load()

        outsider = open_etcd(endpoints, prefix, username="other", password="other-pw")
        with pytest.raises(StorageError) as err:
            outsider.load()
        assert "denied user 'other'" in str(err.value) and prefix in str(err.value)
        assert "other-pw" not in str(err.value)


def _tls_cluster(certs: dict[str, str]) -> EtcdCluster:
    return EtcdCluster(1, tls={"ca": certs["ca.pem"], "server_cert": certs["server.pem"],
                               "server_key": certs["server.key"], "client_cert": certs["client.pem"],
                               "client_key": certs["client.key"]})


def test_tls_with_client_certificates(prefix, tmp_path):
    skip_without_etcd()
    certs = make_pki(str(tmp_path))
    with _tls_cluster(certs) as cluster:
        https = cluster.endpoints_text
        assert https.startswith("https://")
        backend = open_etcd(https, prefix, ca_cert=certs["ca.pem"], cert=certs["client.pem"], key=certs["client.key"])
        assert backend.load() is None
        inventory = build_inventory(5)
        backend.write(inventory)
        assert backend.load() == inventory

        untrusted = open_etcd(https, prefix, timeout=3)
        with pytest.raises(StorageError) as err:
            untrusted.load()
        assert str(err.value) == (
            f"storage backend etcd: no etcd endpoint completed TLS: {https}: TLS failure (certificate verify "
            "failed: unable to get local issuer certificate); check the ca_cert, cert and key options")

        no_client_cert = open_etcd(https, prefix, timeout=3, ca_cert=certs["ca.pem"])
        with pytest.raises(StorageError) as err:
            no_client_cert.load()
        assert "TLS failure" in str(err.value) and "cert" in str(err.value)


def test_a_ca_without_key_usage_is_one_line_naming_the_fix(prefix, tmp_path):
    """Python 3.13 refuses a CA without keyUsage (VERIFY_X509_STRICT); older versions accept it."""
    skip_without_etcd()
    certs = make_pki(str(tmp_path))
    legacy = legacy_ca(certs, str(tmp_path / "legacy-ca.pem"))
    with _tls_cluster(certs) as cluster:
        https = cluster.endpoints_text
        backend = open_etcd(https, prefix, timeout=3, ca_cert=legacy, cert=certs["client.pem"],
                            key=certs["client.key"])
        if sys.version_info < (3, 13):
            assert backend.load() is None
            return
        with pytest.raises(StorageError) as err:
            backend.load()
        message = str(err.value)
        assert "\n" not in message and https in message
        assert "TLS failure (certificate verify failed: CA cert does not include key usage extension)" in message
        assert (f"the CA in ca_cert = {legacy} lacks required extensions: re-issue the CA with {CA_EXTENSIONS}"
                in message)
        # The advice, done as printed: the same key and name, the two extensions, ca_cert pointing at it.
        fixed = reissue_ca_as_advised(certs, message, str(tmp_path / "fixed-ca.pem"))
        repaired = open_etcd(https, prefix, ca_cert=fixed, cert=certs["client.pem"], key=certs["client.key"])
        inventory = build_inventory(3)
        repaired.write(inventory)
        assert repaired.load() == inventory


# -- options ---------------------------------------------------------------------------

def test_options_are_checked_and_described(tmp_path):
    backend = open_etcd("http://127.0.0.1:2379, http://127.0.0.2:2379/", "/osa/prod/",
                        environ={"OSA_INVENTORY_ETCD_PREFIX": "/osa/env"})
    assert backend.describe() == "etcd http://127.0.0.1:2379,http://127.0.0.2:2379 prefix /osa/env"
    defaults = open_backend(Settings(path=None, backend="etcd"), str(tmp_path))
    assert defaults.describe() == "etcd http://127.0.0.1:2379 prefix /openstack-ansible/inventory/default"
    assert defaults.storage.timeout == 10 and defaults.storage.lock_ttl == 60
    (tmp_path / "ca.pem").write_text("x")
    rel = open_backend(Settings(path=None, backend="etcd", sections={"etcd": {"ca_cert": "ca.pem"}}), str(tmp_path))
    assert rel.storage.client.ca_cert == str(tmp_path / "ca.pem")
    bad = [
        ({"endpoints": "127.0.0.1:2379"}, "not an http:// or https:// URL"),
        ({"endpoints": "http://127.0.0.1:2379/v3"}, "without a path"),
        ({"endpoints": "http://user:pw@127.0.0.1:2379"}, "must not carry credentials"),
        ({"endpoints": " , "}, "endpoints is empty"),
        ({"prefix": "/"}, "prefix is empty"),
        ({"username": "osa"}, "password is not"),
        ({"password": "pw"}, "username is not"),
        ({"timeout": "soon"}, "timeout = 'soon' is not a number"),
        ({"lock_ttl": "1"}, "lock_ttl = '1' is not a whole number >= 2"),
        ({"ca_cert": "/nonexistent/ca.pem"}, "file /nonexistent/ca.pem does not exist"),
        ({"key": str(tmp_path / "ca.pem")}, "key is set but cert is not"),
    ]
    for options, expected in bad:
        settings = Settings(path=None, backend="etcd", sections={"etcd": options})
        with pytest.raises((StorageError, SettingsError)) as err:
            open_backend(settings, str(tmp_path))
        assert expected in str(err.value), (options, str(err.value))
        # Malformed values are refused by the loader from the declaration, the rest by the plugin.
        declared = "is not a" in expected
        assert str(err.value).startswith("osa.ini defaults: [etcd]" if declared else "storage backend etcd:")
        assert "pw@" not in str(err.value)


class _SilentServer:
    """A TCP listener on 127.0.0.1 that completes connections (backlog) but never answers."""

    def __init__(self):
        import socket
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.endpoint = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self):
        self.sock.close()


def test_member_that_never_answers_costs_a_share_of_the_timeout(etcd, prefix):
    silent = _SilentServer()
    try:
        backend = open_etcd(f"{silent.endpoint},{etcd.endpoints[0]}", prefix, timeout=2)
        started = time.monotonic()
        backend.write({"all": {"vars": {"ok": 1}}})
        assert time.monotonic() - started < 2.5  # the silent member got ~1 s, etcd answered the rest
        only_silent = open_etcd(silent.endpoint, prefix, timeout=1.5)
        started = time.monotonic()
        with pytest.raises(StorageError) as err:
            only_silent.load()
        elapsed = time.monotonic() - started
        assert 1.4 < elapsed < 2.5
        assert f"{silent.endpoint}: no answer in time" in str(err.value) and "within 1.5 s" in str(err.value)
    finally:
        silent.close()


def test_a_stored_inventory_of_the_wrong_shape_is_one_line_and_never_rewritten(etcd, prefix):
    """Hand-edited data in etcd that is not an inventory: refused on load, the keys left as they are."""
    backend = open_etcd(etcd.endpoints_text, prefix)
    damaged = {"all": {"vars": {}}, "_meta": {"hostvars": {"h1": {"container_networks": {"mgmt": "10.0.0.1"}}}}}
    backend.write(damaged)  # the plugin stores what it is given; the shape is checked where it is read
    before = etcd.keys(prefix + "/")
    with pytest.raises(StorageError) as caught:
        open_etcd(etcd.endpoints_text, prefix).load()
    text = str(caught.value)
    assert "\n" not in text and "container_networks" in text and "h1" in text
    assert "nothing was written" in text and caught.value.versions  # etcd keeps versions: restore one
    assert "--history, then --restore VERSION" in error_lines(caught.value)[0]
    assert etcd.keys(prefix + "/") == before
