"""The etcd backend's lock object (backends/etcd/lock.py) against a real etcd, used directly.

It is shaped like etcd3gw's Lock: constructor with name, ttl and client,
acquire(), release(), refresh(), is_acquired(), a context manager. The
plugin's own lock tests (test_etcd_plugin.py) hold it through the contract.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
from etcd_server import etcd  # noqa: F401

from osa_inventory.backends.etcd.client import EtcdClient
from osa_inventory.backends.etcd.lock import EtcdLock
from osa_inventory.errors import StorageError


@pytest.fixture
def key(request) -> bytes:
    return f"/lock-test/{request.node.name}/lock".encode()


def make_lock(cluster, key: bytes, ttl: int = 5, timeout: float = 5.0) -> EtcdLock:
    return EtcdLock(key, ttl, client=EtcdClient(cluster.endpoints, 5.0), timeout=timeout)


def stored(cluster, key: bytes) -> dict | None:
    kvs = EtcdClient(cluster.endpoints, 5.0).range(key)["kvs"]
    return kvs[0] if kvs else None


def test_acquire_holds_the_key_until_release(etcd, key):  # noqa: F811
    lock = make_lock(etcd, key)
    assert not lock.is_acquired()
    assert lock.acquire() is True
    held = stored(etcd, key)
    assert held is not None and held["lease"] == lock.lease and held["create_revision"] == lock.revision
    assert json.loads(held["value"])["holder"].startswith(socket.gethostname() + " pid ")
    assert lock.is_acquired()
    assert lock.release() is True
    assert stored(etcd, key) is None and not lock.is_acquired()
    assert lock.release() is False, "a second release said it had released something"


def test_a_second_lock_waits_then_names_the_holder(etcd, key):  # noqa: F811
    first, second = make_lock(etcd, key), make_lock(etcd, key, timeout=0.5)
    with first:
        started = time.monotonic()
        with pytest.raises(StorageError) as refused:
            second.acquire()
        assert time.monotonic() - started >= 0.5
        message = str(refused.value)
        assert "\n" not in message and key.decode() in message and "(lock_timeout)" in message
        assert f"held by {socket.gethostname()} pid " in message and "expires within 5 s" in message
        assert stored(etcd, key)["lease"] == first.lease, "the waiting lock touched the holder's key"
        assert not second.is_acquired() and second.lease == 0
    assert second.acquire() is True, "the lock was not free once its holder left"
    second.release()


def test_context_manager_releases_when_the_body_fails(etcd, key):  # noqa: F811
    lock = make_lock(etcd, key)
    with pytest.raises(LookupError):
        with lock as held:
            assert held is lock and lock.is_acquired()
            raise LookupError("the body failed")
    assert stored(etcd, key) is None and lock.lease == 0


def test_refresh_renews_the_lease_only_while_held(etcd, key):  # noqa: F811
    lock = make_lock(etcd, key, ttl=3)
    with pytest.raises(StorageError, match="is not held; acquire it first"):
        lock.refresh()
    with lock:
        assert 0 < lock.refresh() <= 3


def test_a_revoked_lease_is_noticed_and_the_lock_no_longer_acquired(etcd, key):  # noqa: F811
    lock = make_lock(etcd, key, ttl=2)
    with lock:
        etcd.post("/v3/lease/revoke", {"ID": str(lock.lease)})
        assert not lock.is_acquired(), "is_acquired() trusted its own state over etcd's"
        deadline = time.monotonic() + 5
        while lock.lost is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lock.lost == "expired or was revoked"
        other = make_lock(etcd, key)
        assert other.acquire() is True
        assert not lock.is_acquired(), "the old holder believes it holds another's key"
        other.release()
