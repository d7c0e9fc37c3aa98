#!/usr/bin/env python3
"""An unchanged inventory run with and without its reuse record, on each built-in backend, in CPU time.

For the filesystem, etcd (a real etcd started on 127.0.0.1) and Craton (the
test server, in this process) backends, a config of N compute hosts is stored
once; then, interleaved for ``--repeat`` rounds, the real script runs

* unchanged: with an empty cache folder, so the run reads, checks and generates (and leaves a record);
* reused: with the cache folder of the previous runs, whose record matches;
* floor: the same Python reading the inventory from a local file and printing it.

Each figure is the median CPU time (user + system) of the child process; for
Craton the server's own work happens in this process and is not counted, for
etcd the etcd server's is not counted either: what is measured is what the
deploy host's run costs.

    .venv/bin/python bench/reuse_bench.py [--hosts 3000] [--repeat 9] [--backends filesystem,etcd,craton]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(ROOT, "tests"), os.path.join(ROOT, "lib")]

from generate_bench import SCRIPT, bench_args, bench_env, child_cpu, floor_command, write_config  # noqa: E402


def ini_text(backend: str, work: str, servers: dict) -> str:
    if backend == "filesystem":
        return "[inventory]\nbackend = filesystem\n"
    if backend == "etcd":
        return (f"[inventory]\nbackend = etcd\n[etcd]\nendpoints = {servers['etcd'].endpoints_text}\n"
                "prefix = /bench/reuse\n")
    options = dict(servers["craton"].options(), cache_dir=os.path.join(work, "craton-cache"), timeout="30")
    os.makedirs(options["cache_dir"], mode=0o700, exist_ok=True)
    return "[inventory]\nbackend = craton\n[craton]\n" + "".join(f"{k} = {v}\n" for k, v in options.items())


def bench_backend(backend: str, n: int, repeat: int, servers: dict) -> dict[str, float]:
    work = tempfile.mkdtemp(prefix=f"osa-reuse-{backend}-")
    try:
        ini = os.path.join(work, "osa.ini")
        with open(os.path.join(work, "osa.ini"), "w") as fh:
            fh.write(ini_text(backend, work, servers))
        os.chmod(ini, 0o600)
        env = bench_env(ini)
        cfg = write_config(os.path.join(work, "cfg"), n)
        script = [sys.executable, SCRIPT, "--config", cfg, "--list"]
        child_cpu(script, env)  # stored
        # The floor reads a local file: write what is stored, as the filesystem backend keeps it.
        copy = os.path.join(work, "floor")
        os.mkdir(copy)
        printed = subprocess.run(script, env=env, capture_output=True, text=True, check=True).stdout
        with open(os.path.join(copy, "openstack_inventory.json"), "w") as fh:
            fh.write(printed)
        samples: dict[str, list[float]] = {"unchanged": [], "reused": [], "floor": []}
        for r in range(repeat):
            samples["unchanged"].append(child_cpu(script, dict(env, XDG_CACHE_HOME=os.path.join(work, f"empty{r}"))))
            samples["reused"].append(child_cpu(script, env))
            samples["floor"].append(child_cpu(floor_command(copy), env))
        return {k: statistics.median(v) for k, v in samples.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    def extra(parser):
        parser.add_argument("--backends", default="filesystem,etcd,craton")

    args = bench_args(__doc__, hosts="3000", repeat=9, extra=extra)
    backends = args.backends.split(",")
    servers: dict = {}
    if "etcd" in backends:
        from etcd_server import EtcdCluster
        servers["etcd"] = EtcdCluster(1).start()
    if "craton" in backends:
        from craton_server import CratonServer
        servers["craton"] = CratonServer().start()
    try:
        print(f"CPU seconds of the script's child process, median of {args.repeat} interleaved rounds")
        print(f"{'backend':>10} {'computes':>8} {'unchanged':>9} {'reused':>7} {'floor':>7} {'reused/floor':>12} "
              f"{'unchanged/reused':>16}")
        for n in [int(x) for x in args.hosts.split(",")]:
            for backend in backends:
                m = bench_backend(backend, n, args.repeat, servers)
                print(f"{backend:>10} {n:>8} {m['unchanged']:>9.3f} {m['reused']:>7.3f} {m['floor']:>7.3f} "
                      f"{m['reused'] / m['floor']:>12.2f} {m['unchanged'] / m['reused']:>16.2f}")
    finally:
        for server in servers.values():
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
