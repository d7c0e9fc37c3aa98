#!/usr/bin/env python3
"""What access control and change records cost on the etcd backend, against a real etcd with auth on.

For each inventory size: an unchanged run (lock, load, nothing to write) by a writer
and by a reader (read-only role: the lock is refused, the run goes on without it),
with wall time and HTTP requests; a reader's run while a writer holds the lock (it
does not wait); and the manifest's size with and without a change record.

    .venv/bin/python bench/etcd_access_bench.py [--sizes 200,3000] [--repeat 3]

Needs /usr/bin/etcd (Debian package etcd-server).
"""

from __future__ import annotations

import argparse
import base64
import copy
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "lib"), os.path.join(ROOT, "tests")]

from etcd_server import EtcdCluster, build_inventory, etcd_available, ETCD_BIN  # noqa: E402
from osa_inventory.accounting import ChangeRecord  # noqa: E402
from osa_inventory.storage.loader import Backend, open_backend  # noqa: E402
from osa_inventory.storage.settings import Settings  # noqa: E402

PREFIX = "/bench/access"
USERS = {"writer": ("writer-pw", "READWRITE"), "reader": ("reader-pw", "READ")}


def open_as(endpoints: str, user: str, password: str) -> Backend:
    section = {"endpoints": endpoints, "prefix": PREFIX, "username": user, "password": password}
    return open_backend(Settings(path=None, backend="etcd", sections={"etcd": section}), tempfile.gettempdir())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def set_up_auth(cluster: EtcdCluster) -> None:
    """root, and a writer and a reader role on PREFIX/ with one user each, then auth on."""
    cluster.post("/v3/auth/user/add", {"name": "root", "password": "root-pw"})
    cluster.post("/v3/auth/user/grant", {"user": "root", "role": "root"})
    key = (PREFIX + "/").encode()
    for name, (password, perm) in USERS.items():
        cluster.post("/v3/auth/role/add", {"name": name})
        cluster.post("/v3/auth/role/grant", {"name": name, "perm": {
            "permType": perm, "key": _b64(key), "range_end": _b64(key[:-1] + b"0")}})
        cluster.post("/v3/auth/user/add", {"name": name, "password": password})
        cluster.post("/v3/auth/user/grant", {"user": name, "role": name})
    cluster.post("/v3/auth/enable", {})


def unchanged_run(backend: Backend) -> tuple[float, int]:
    """Seconds and HTTP requests of lock + load with nothing to write."""
    client = backend.storage.client
    before = client.request_count
    started = time.perf_counter()
    with backend.lock():
        backend.load()
    return time.perf_counter() - started, client.request_count - before


def bench_size(cluster: EtcdCluster, hosts: int, repeat: int) -> None:
    writer = open_as(cluster.endpoints_text, "writer", USERS["writer"][0])
    reader = open_as(cluster.endpoints_text, "reader", USERS["reader"][0])
    inventory = build_inventory(hosts)
    writer.write(copy.deepcopy(inventory))
    plain = len(writer.storage.client.range(writer.storage.keys.manifest)["kvs"][0]["value"])
    inventory["all"]["vars"]["bench_change"] = hosts
    record = ChangeRecord.now("inventory-manage -r compute1", "1 host(s) removed (compute1)",
                              reason="decommissioned after the disk failure of ticket 4711")
    writer.write(copy.deepcopy(inventory), record=record)
    recorded = len(writer.storage.client.range(writer.storage.keys.manifest)["kvs"][0]["value"])
    print(f"{hosts} hosts: manifest {plain} bytes without a record, {recorded} with one")
    for who, backend in (("writer", writer), ("reader", reader)):
        runs = [unchanged_run(backend) for _ in range(repeat)]
        print(f"  unchanged run as {who}: {statistics.median(t for t, _ in runs) * 1000:.0f} ms median, "
              f"{runs[-1][1]} requests")
    with writer.lock():
        seconds, requests = unchanged_run(reader)
    print(f"  reader while the writer holds the lock: {seconds * 1000:.0f} ms, {requests} requests (no wait)")
    writer.close()
    reader.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="200,3000", help="compute host counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not etcd_available():
        print(f"{ETCD_BIN} is absent; install it with 'apt-get install etcd-server'", file=sys.stderr)
        return 1
    with EtcdCluster(1) as cluster:
        set_up_auth(cluster)
        for size in (int(s) for s in args.sizes.split(",")):
            bench_size(cluster, size, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
