#!/usr/bin/env python3
"""What one inventory run costs, phase by phase, in CPU time.

Each sample is a fresh interpreter that runs the real script's ``main`` (the run
is :func:`osa_inventory.refresh.refresh`, as for every front end) with the
functions it calls wrapped, each wrapper charging the CPU time spent inside it
(``time.process_time()``, not counting the wrapped calls it makes in turn) to
its phase: imports (every module imported, wherever the import happens, the
storage plugin's too), settings (osa.ini and
the log set-up), reuse key (the digest of the inputs and the reuse record),
signature (the stat calls that tell a run whether the config changed while it
waited for the lock), config read (the bytes of every YAML file, and the
merging of conf.d and env.d), YAML parse, validation, storage open (the plugin
found, checked, instantiated and given its options), storage load (lock and load),
generation, serialise (the compact JSON printed), change record (what changed,
for a run that stores), copy for write (the private copy ``write()`` gets),
indented dump (the filesystem plugin's indent=4 text), store (the rest of the
plugin's write: files, fsync, backup archive, change records) and print; what
no wrapper covers is "other". Interpreter start is ``python -c pass``, measured
from outside. In the same rounds (interleaved, median of ``--repeat``) the real
script runs on the same config, and so does the floor (the same Python reading
the stored JSON and printing it), so the sum of the phases can be checked
against the real run.

    .venv/bin/python bench/run_phases.py [--hosts 3000] [--repeat 9] [--run fresh|unchanged|reused]
        [--environment DIR]

``--run fresh``: a first run (nothing stored); ``unchanged``: a full run over a
stored inventory it generates again (no reuse record yet); ``reused`` (the
default): the next such run, which finds its reuse record. ``--environment``
names the folder holding the base env.d (default: the project's; OSA's tree's
``inventory`` folder for the configuration OSA's generator is compared on).
bench/README.md has the figures.
"""

from __future__ import annotations

# Only what the script imports anyway before the child's clock starts: the rest is the parent's.
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PHASES = ("imports", "settings", "reuse key", "signature", "config read", "YAML parse", "validation",
          "storage open", "storage load", "generation", "serialise", "change record", "copy for write",
          "indented dump", "store", "print", "other")


class Clock:
    """CPU time charged to the innermost phase running (a stack: a wrapped call inside another is its own)."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.stack = ["other"]
        self.mark = time.process_time()

    def _charge(self) -> None:
        now = time.process_time()
        name = self.stack[-1]
        self.times[name] = self.times.get(name, 0.0) + now - self.mark
        self.mark = now

    def enter(self, name: str) -> None:
        self._charge()
        self.stack.append(name)

    def leave(self) -> None:
        self._charge()
        self.stack.pop()

    def wrap(self, owner: object, attr: str, name: str) -> None:
        """Charge the calls of ``owner.attr`` (where the run looks it up) to phase ``name``."""
        func = getattr(owner, attr)
        clock = self

        def timed(*args, **kwargs):
            clock.enter(name)
            try:
                return func(*args, **kwargs)
            finally:
                clock.leave()

        setattr(owner, attr, timed)


class _JsonIn:
    """A module's ``json`` whose ``dumps`` or ``loads`` is charged to a phase (the json module is shared)."""

    def __init__(self, clock: Clock, **phases: str) -> None:
        for attr in ("dumps", "loads", "dump", "load"):
            setattr(self, attr, getattr(json, attr))
        for attr, name in phases.items():
            clock.wrap(self, attr, name)


def child(config_dir: str, environment: str) -> None:
    """One run of the script's main, phase by phase; the times go to fd 2 as JSON (stdout gets the inventory)."""
    import builtins

    clock = Clock()
    clock.wrap(builtins, "__import__", "imports")
    clock.enter("imports")
    sys.path.insert(0, os.path.join(ROOT, "lib"))
    import importlib

    from osa_inventory import deployment_config, refresh
    from osa_inventory.backends.filesystem import store
    from osa_inventory.commands import runner, script
    from osa_inventory.generate import config as config_files
    from osa_inventory.storage import backend
    clock.leave()
    # importlib.import_module (pluginbase, the entry point) does not go through __import__.
    clock.wrap(importlib, "import_module", "imports")
    for owner, attr, name in (
            (script, "_setup_logging", "settings"), (refresh, "read_settings", "settings"),
            (refresh.reuse, "config_key", "reuse key"), (refresh.reuse, "read_record", "reuse key"),
            (refresh.reuse, "record_place", "reuse key"),
            (deployment_config, "config_signature", "signature"),
            (deployment_config.DeploymentConfig, "changed_on_disk", "signature"),
            (deployment_config, "load_config", "config read"), (config_files.yaml, "load", "YAML parse"),
            (config_files, "_expanded_size", "YAML parse"), (config_files, "read_file", "config read"),
            (deployment_config, "config_problems", "validation"),
            (refresh, "open_backend", "storage open"),
            (backend.Backend, "load", "storage load"),
            (backend.Backend, "close", "storage load"),
            (deployment_config, "generate_checked", "generation"),
            (refresh.ChangeRecord, "now", "change record"), (backend.Backend, "write", "store"),
            (store, "dumps", "indented dump")):
        if hasattr(owner, attr):  # a phase the code no longer has is simply not measured
            clock.wrap(owner, attr, name)
    refresh.json = _JsonIn(clock, dumps="serialise")  # type: ignore[attr-defined]
    backend.json = _JsonIn(clock, loads="copy for write")  # type: ignore[attr-defined]
    _wrap_compare(clock)
    _wrap_print(clock, runner)
    status = script.main(["--config", config_dir, "--list", "--environment", environment])
    sys.stdout.flush()
    clock.leave()  # "other": the start of the child to here, less what the phases took
    if status:
        sys.exit(status)
    os.write(2, json.dumps(clock.times).encode())


def _wrap_compare(clock: Clock) -> None:
    """The comparison a storing run makes for its change record (imported when such a run needs it)."""
    from osa_inventory.inventory import changes

    clock.wrap(changes, "compare", "change record")


def _wrap_print(clock: Clock, runner) -> None:
    """The printing: the ``emit`` the command runner writes its result with."""
    import contextlib

    guard = runner.stdout_for_result_only

    @contextlib.contextmanager
    def timed_guard():
        with guard() as emit:
            def timed_emit(text: str) -> None:
                clock.enter("print")
                try:
                    emit(text)
                    sys.stdout.flush()
                finally:
                    clock.leave()
            yield timed_emit

    runner.stdout_for_result_only = timed_guard


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    child(*sys.argv[2:4])
    sys.exit(0)

import argparse  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

sys.path.insert(0, HERE)
from generate_bench import (OSA_POOLS, SCRIPT, bench_args, bench_env, child_cpu, floor_command,  # noqa: E402
                            write_config, write_ini)

RUNS = ("fresh", "unchanged", "reused")


def _prepare(cfg: str, n: int, run: str, pools: dict | None, env: dict, script: list[str]) -> None:
    """``cfg`` as the measured kind of run finds it: nothing stored, stored without a record, or with one."""
    shutil.rmtree(cfg, ignore_errors=True)
    shutil.rmtree(env["XDG_CACHE_HOME"], ignore_errors=True)  # the reuse records
    write_config(cfg, n, pools)
    if run != "fresh":
        child_cpu(script, env)  # the stored inventory (a storing run leaves no reuse record)
    if run == "reused":
        child_cpu(script, env)  # the unchanged run that writes the record


def sample(work: str, n: int, r: int, run: str, env: dict, environment: str, pools: dict | None) -> dict[str, float]:
    """One round: the phases of a run in a child, then the floor and the real script on the same config."""
    cfg = os.path.join(work, f"c{n}-{r}")
    script = [sys.executable, SCRIPT, "--config", cfg, "--list", "--environment", environment]
    _prepare(cfg, n, run, pools, env, script)
    proc = subprocess.Popen([sys.executable, __file__, "--child", cfg, environment], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.communicate()[1]
    if proc.returncode:
        sys.exit(err.decode()[-500:])
    times = json.loads(err)
    times["interpreter start"] = child_cpu([sys.executable, "-c", "pass"], env)
    times["floor"] = child_cpu(floor_command(cfg), env)
    _prepare(cfg, n, run, pools, env, script)
    times["script"] = child_cpu(script, env)
    shutil.rmtree(cfg)
    return times


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", choices=RUNS, default="reused",
                        help="the run measured: first (nothing stored), unchanged without a reuse record, reused")
    parser.add_argument("--environment", default=os.path.join(ROOT, "playbooks", "inventory"), metavar="DIR",
                        help="folder holding the base env.d (OSA's inventory/ folder: its pools are used too)")


def main() -> int:
    args = bench_args(__doc__, hosts="3000", repeat=9, extra=_options)
    work = tempfile.mkdtemp(prefix="osa-phases-")
    environment = os.path.abspath(args.environment)
    # OSA's env.d is measured with the pools OSA's generator can run, as generate_bench.py compares them.
    pools = None if environment == os.path.join(ROOT, "playbooks", "inventory") else OSA_POOLS
    env = bench_env(write_ini(work))
    try:
        for n in [int(x) for x in args.hosts.split(",")]:
            rounds = [sample(work, n, r, args.run, env, environment, pools) for r in range(args.repeat)]
            medians = {name: statistics.median(r.get(name, 0.0) for r in rounds)
                       for name in set().union(*rounds)}
            shown = ("interpreter start",) + PHASES
            total = sum(medians.get(p, 0.0) for p in shown)
            print(f"{n} compute hosts, {args.run} run, CPU ms (median of {args.repeat}):")
            for name in shown:
                print(f"  {name:<18} {medians.get(name, 0.0) * 1000:7.1f}  {medians.get(name, 0.0) / total:6.1%}")
            print(f"  {'sum of phases':<18} {total * 1000:7.1f}")
            print(f"  {'script run':<18} {medians['script'] * 1000:7.1f}   floor {medians['floor'] * 1000:.1f}, "
                  f"script/floor {medians['script'] / medians['floor']:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
