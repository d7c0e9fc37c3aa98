#!/usr/bin/env python3
"""What one inventory run costs, phase by phase, in CPU time.

Each sample is a fresh interpreter that does what ``commands.script.run`` does for
``--list`` on the filesystem backend, one phase after the other, timing each
with ``time.process_time()``: imports (every module the script imports before
it works; the plugin's own import falls in storage load), settings (osa.ini
and the log set-up), signature (the stat calls that tell a run whether the
config changed while it waited for the lock), config read (the bytes of every
YAML file), YAML parse, validation, generation, storage load (plugin import
and instantiation, lock, load, unlock), compare (generated == stored),
serialise (``json.dumps``), store (a fresh run's write) and print.
Interpreter start is ``python -c pass``, measured from outside. In the same
rounds (interleaved, median of ``--repeat``) the real script runs on the same
config, and so does the floor (the same Python reading the stored JSON and
printing it), so the sum of the phases can be checked against the real run.

    .venv/bin/python bench/run_phases.py [--hosts 3000] [--repeat 9] [--fresh]

``--fresh`` measures a first run (nothing stored) instead of an unchanged one.
bench/README.md has the figures and what they mean for reusing earlier work.
"""

from __future__ import annotations

# Only what the script imports anyway before the child's clock starts: the rest is the parent's.
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PHASES = ("imports", "settings", "signature", "config read", "YAML parse", "validation", "generation",
          "storage load", "compare", "serialise", "store", "print")


def child(config_dir: str, environment: str) -> None:
    """One run, phase by phase; the times go to stderr as JSON (stdout gets the inventory)."""
    clock = time.process_time
    times: dict[str, float] = {}
    start = clock()
    sys.path.insert(0, os.path.join(ROOT, "lib"))
    from osa_inventory import bounded
    from osa_inventory.commands import script as cli
    from osa_inventory.accounting import ChangeRecord
    from osa_inventory.inventory.changes import compare
    from osa_inventory.deployment_config import DeploymentConfig
    from osa_inventory.generate import config as config_files
    from osa_inventory.generate.validate import config_problems
    from osa_inventory.storage.loader import open_backend
    from osa_inventory.storage.settings import read_settings

    def phase(name: str) -> None:
        nonlocal start
        now = clock()
        times[name] = times.get(name, 0.0) + now - start
        start = now

    phase("imports")
    cli._setup_logging(config_dir, False)
    settings = read_settings()
    mode = str(settings.inventory["unknown_host_groups"])
    phase("settings")
    signature = config_files.config_signature(config_dir, environment)
    phase("signature")
    for entry in signature:
        bounded.read_file(entry[0], limit=config_files.MAX_FILE_BYTES)
    phase("config read")
    config = config_files.load_user_config(config_dir)
    skeleton = config_files.load_skeleton(environment, config_dir)
    phase("YAML parse")
    times["YAML parse"] -= times["config read"]  # load_* read the files again: counted once, as read
    errors, warnings = config_problems(config, skeleton, mode)
    if errors:
        sys.exit(errors[0])
    deployment = DeploymentConfig(config_dir, environment, mode, config, skeleton, warnings, signature)
    phase("validation")
    backend = open_backend(settings, config_dir)
    with backend.lock():
        phase("storage load")
        deployment.changed_on_disk()
        phase("signature")
        stored = backend.load()
        phase("storage load")
        inventory = deployment.generate(stored)
        phase("generation")
        changed = inventory != stored
        phase("compare")
        output = json.dumps(inventory, sort_keys=True)
        phase("serialise")
        if changed:
            record = ChangeRecord.now(cli.SCRIPT_COMMAND, compare(stored or {}, inventory).summary())
            backend.write(inventory, as_json=output, record=record)
        phase("store")
    backend.close()
    phase("storage load")
    sys.stdout.write(output + "\n")
    sys.stdout.flush()
    phase("print")
    sys.stderr.write(json.dumps(times))


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    child(*sys.argv[2:4])
    sys.exit(0)

import argparse  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

sys.path.insert(0, HERE)
from generate_bench import (SCRIPT, bench_args, bench_env, child_cpu, floor_command, write_config,  # noqa: E402
                            write_ini)


def sample(work: str, n: int, r: int, fresh: bool, env: dict, environment: str) -> dict[str, float]:
    """One round: the phases of a run in a child, then the floor and the real script on the same config."""
    cfg = os.path.join(work, f"c{n}-{r}" if fresh else f"c{n}")
    if not os.path.isdir(cfg):
        write_config(cfg, n)
        if not fresh:
            child_cpu([sys.executable, SCRIPT, "--config", cfg], env)  # the stored inventory
    proc = subprocess.Popen([sys.executable, __file__, "--child", cfg, environment], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.communicate()[1]
    if proc.returncode:
        sys.exit(err.decode()[-500:])
    times = json.loads(err)
    times["interpreter start"] = child_cpu([sys.executable, "-c", "pass"], env)
    times["floor"] = child_cpu(floor_command(cfg), env)
    if fresh:
        shutil.rmtree(cfg)
        write_config(cfg, n)
    times["script"] = child_cpu([sys.executable, SCRIPT, "--config", cfg], env)
    if fresh:
        shutil.rmtree(cfg)
    return times


def _fresh_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fresh", action="store_true",
                        help="measure a first run (no stored inventory) instead of an unchanged one")


def main() -> int:
    args = bench_args(__doc__, hosts="3000", repeat=9, extra=_fresh_option)
    work = tempfile.mkdtemp(prefix="osa-phases-")
    environment = os.path.join(ROOT, "playbooks", "inventory")
    env = bench_env(write_ini(work))
    try:
        for n in [int(x) for x in args.hosts.split(",")]:
            rounds = [sample(work, n, r, args.fresh, env, environment) for r in range(args.repeat)]
            medians = {name: statistics.median(r.get(name, 0.0) for r in rounds) for name in rounds[0]}
            total = sum(medians[p] for p in PHASES) + medians["interpreter start"]
            print(f"{n} compute hosts, {'fresh' if args.fresh else 'unchanged'} run, "
                  f"CPU ms (median of {args.repeat}):")
            for name in ("interpreter start",) + PHASES:
                print(f"  {name:<18} {medians[name] * 1000:7.1f}  {medians[name] / total:6.1%}")
            print(f"  {'sum of phases':<18} {total * 1000:7.1f}")
            print(f"  {'script run':<18} {medians['script'] * 1000:7.1f}   floor {medians['floor'] * 1000:.1f}, "
                  f"script/floor {medians['script'] / medians['floor']:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
