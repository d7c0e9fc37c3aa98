#!/usr/bin/env python3
"""Time the etcd storage backend against a real etcd it starts on 127.0.0.1.

For each inventory size: a first write, an unchanged run (lock, load, nothing to
write) and a one-host change (lock, load, write), each as a deploy host runs them,
with wall time, HTTP requests and revisions used. Then a contention run: several
writer processes each doing lock-load-modify-write, with the throughput and a check
that no update was lost.

    .venv/bin/python bench/etcd_bench.py [--sizes 200,3000] [--writers 4] [--updates 15] [--data-root DIR]

Needs /usr/bin/etcd (Debian package etcd-server).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "lib"), os.path.join(ROOT, "tests")]

from etcd_server import EtcdCluster, build_inventory, etcd_available, ETCD_BIN  # noqa: E402
from osa_inventory.storage.loader import Backend, open_backend  # noqa: E402
from osa_inventory.storage.settings import Settings  # noqa: E402


def open_etcd(endpoints: str, prefix: str, **options) -> Backend:
    section = {"endpoints": endpoints, "prefix": prefix, **{k: str(v) for k, v in options.items()}}
    return open_backend(Settings(path=None, backend="etcd", sections={"etcd": section}), tempfile.gettempdir())


def measure(cluster: EtcdCluster, backend: Backend, action) -> tuple[float, int, int]:
    """Seconds, HTTP requests and etcd revisions ``action`` took."""
    client = backend.storage.client
    requests_before, revision_before = client.request_count, cluster.revision()
    started = time.perf_counter()
    action()
    elapsed = time.perf_counter() - started
    return elapsed, client.request_count - requests_before, cluster.revision() - revision_before


def run_cycle(backend: Backend, change=None) -> None:
    """What one inventory run does: lock, load, generate (``change``), write if it differs."""
    with backend.lock():
        current = backend.load()
        new = change(copy.deepcopy(current)) if change else current
        if new != current:
            backend.write(new)


def bench_size(cluster: EtcdCluster, hosts: int, repeat: int) -> None:
    inventory = build_inventory(hosts)
    size = len(json.dumps(inventory))
    rows = []
    first = []
    for r in range(repeat):
        backend = open_etcd(cluster.endpoints_text, f"/bench/size{hosts}-{r}")
        first.append(measure(cluster, backend, lambda b=backend: run_cycle(b, lambda _: inventory)))
    rows.append(("first write", first))
    backend = open_etcd(cluster.endpoints_text, f"/bench/size{hosts}-0")
    rows.append(("unchanged run", [measure(cluster, backend, lambda: run_cycle(backend)) for _ in range(repeat)]))
    rows.append(("load only", [measure(cluster, backend, backend.load) for _ in range(repeat)]))
    counter = iter(range(10 ** 6))

    def one_host(inv: dict) -> dict:
        inv["_meta"]["hostvars"]["compute0001"]["bench_round"] = next(counter)
        return inv
    rows.append(("one-host change", [measure(cluster, backend, lambda: run_cycle(backend, one_host))
                                     for _ in range(repeat)]))
    keys = len(cluster.keys(f"/bench/size{hosts}-0/"))
    print(f"\n{hosts} compute hosts ({len(inventory['_meta']['hostvars'])} hostvars entries, "
          f"{len(inventory) - 2} groups, {size / 1e6:.2f} MB JSON, {keys} etcd keys); median of {repeat}:")
    print(f"  {'case':<18}{'time':>10}{'requests':>10}{'revisions':>11}")
    for name, samples in rows:
        t = statistics.median(s[0] for s in samples)
        reqs = statistics.median(s[1] for s in samples)
        revs = statistics.median(s[2] for s in samples)
        print(f"  {name:<18}{t * 1000:>8.1f}ms{reqs:>10.0f}{revs:>11.0f}")


def contention(cluster: EtcdCluster, writers: int, updates: int, hosts: int) -> bool:
    prefix = "/bench/contention"
    inventory = build_inventory(hosts)
    inventory["all"]["vars"].update({"counter": 0, "log": []})
    open_etcd(cluster.endpoints_text, prefix).write(inventory)
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", cluster.endpoints_text, prefix, str(w),
                               str(updates)], stdout=subprocess.PIPE, text=True) for w in range(writers)]
    results = [json.loads(p.communicate()[0] or "{}") for p in procs]
    elapsed = time.perf_counter() - started
    final = open_etcd(cluster.endpoints_text, prefix).load()
    expected = sorted(f"{w}-{i}" for w in range(writers) for i in range(updates))
    ok = (final["all"]["vars"]["counter"] == writers * updates and sorted(final["all"]["vars"]["log"]) == expected
          and all(p.returncode == 0 for p in procs))
    waits = [w for r in results for w in r.get("waits", [])]
    total = writers * updates
    print(f"\ncontention: {writers} writer processes x {updates} lock-load-modify-write cycles "
          f"on {hosts} compute hosts")
    print(f"  {total} updates in {elapsed:.2f} s (process start included): {total / elapsed:.1f} updates/s; "
          f"lock wait median {statistics.median(waits) * 1000:.0f} ms, max {max(waits) * 1000:.0f} ms")
    print(f"  counter {final['all']['vars']['counter']} of {total}, log entries "
          f"{len(final['all']['vars']['log'])}: {'no update lost' if ok else 'UPDATES LOST'}")
    return ok


def worker(endpoints: str, prefix: str, wid: int, updates: int) -> None:
    backend = open_etcd(endpoints, prefix, lock_timeout=120)
    waits = []
    for i in range(updates):
        started = time.perf_counter()
        with backend.lock():
            waits.append(time.perf_counter() - started)
            inventory = backend.load()
            inventory["all"]["vars"]["counter"] += 1
            inventory["all"]["vars"]["log"].append(f"{wid}-{i}")
            inventory["_meta"]["hostvars"][f"compute{wid + 1:04d}"]["bench_writer_round"] = i
            backend.write(inventory)
    backend.close()
    print(json.dumps({"waits": waits}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="200,3000", help="compute host counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--updates", type=int, default=15, help="updates per writer in the contention run")
    parser.add_argument("--contention-hosts", type=int, default=200)
    parser.add_argument("--data-root", default=None,
                        help="folder for etcd's data (default /dev/shm: no disk fsync cost; give a disk "
                             "folder such as /var/tmp to include it)")
    parser.add_argument("--worker", nargs=4, metavar=("ENDPOINTS", "PREFIX", "ID", "UPDATES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        endpoints, prefix, wid, updates = args.worker
        worker(endpoints, prefix, int(wid), int(updates))
        return 0
    if not etcd_available():
        print(f"{ETCD_BIN} is absent; install the etcd-server package", file=sys.stderr)
        return 2
    with EtcdCluster(1, root=args.data_root) as cluster:
        version = subprocess.run([ETCD_BIN, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
        print(f"{version}, single member on 127.0.0.1, data on {cluster.folder}, {os.cpu_count()} CPUs")
        for hosts in (int(s) for s in args.sizes.split(",") if s.strip()):
            bench_size(cluster, hosts, args.repeat)
        ok = contention(cluster, args.writers, args.updates, args.contention_hosts)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
