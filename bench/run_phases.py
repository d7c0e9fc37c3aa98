#!/usr/bin/env python3
"""What one inventory run costs, phase by phase, in CPU time.

Each sample is a fresh interpreter that runs the real script (the run is
:func:`osa_inventory.refresh.refresh`, as for every front end) with the
functions it calls wrapped as their modules are imported, each wrapper charging
the CPU time spent inside it (``time.process_time()``, not counting the wrapped
calls it makes in turn) to its phase: imports (every module the run imports,
wherever the import happens, the storage plugin's too; the wrapper adds a few
microseconds to each import statement), settings (osa.ini and
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
SCRIPT = os.path.join(ROOT, "playbooks", "inventory", "dynamic_inventory.py")
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


def _print_phase(clock: Clock, runner) -> None:
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


#: Per module, once the run imports it: (where the run looks the function up, its name there, phase).
#: A name is wrapped where the caller looks it up: its module's global, or a class's attribute.
WRAPPED = {
    "osa_inventory.commands.script": [("", "_setup_logging", "settings")],
    "osa_inventory.refresh": [("", "read_settings", "settings"), ("", "open_backend", "storage open")],
    "osa_inventory.reuse": [("", "config_key", "reuse key"), ("", "read_record", "reuse key"),
                            ("", "record_place", "reuse key"), ("", "write_record", "reuse key")],
    "osa_inventory.deployment_config": [("", "config_signature", "signature"),
                                        ("DeploymentConfig", "changed_on_disk", "signature"),
                                        ("", "load_config", "config read"), ("", "config_problems", "validation"),
                                        ("", "generate_checked", "generation")],
    "osa_inventory.generate.config": [("", "read_file", "config read"), ("", "_expanded_size", "YAML parse")],
    "yaml": [("", "load", "YAML parse")],
    "osa_inventory.storage.backend": [("Backend", "load", "storage load"), ("Backend", "close", "storage load"),
                                      ("Backend", "write", "store")],
    "osa_inventory.accounting": [("ChangeRecord", "now", "change record")],
    "osa_inventory.inventory.changes": [("", "compare", "change record")],
    "osa_inventory.backends.filesystem.store": [("", "dumps", "indented dump")],
}
SPECIAL = {
    "osa_inventory.refresh": lambda clock, module: setattr(module, "json", _JsonIn(clock, dumps="serialise")),
    "osa_inventory.storage.backend":
        lambda clock, module: setattr(module, "json", _JsonIn(clock, loads="copy for write")),
    "osa_inventory.commands.runner": _print_phase,
}


def _wrap_imported(clock: Clock, pending: set[str]) -> None:
    """Wrap the functions of every module of WRAPPED or SPECIAL that is imported by now (each once)."""
    for name in [n for n in pending if n in sys.modules and getattr(sys.modules[n], "__spec__", None)]:
        module = sys.modules[name]
        if getattr(module.__spec__, "_initializing", False):
            continue  # still running its own body: wrapped when its import returns
        pending.discard(name)
        for owner, attr, phase in WRAPPED.get(name, ()):
            clock.wrap(getattr(module, owner) if owner else module, attr, phase)
        if name in SPECIAL:
            SPECIAL[name](clock, module)


def child(config_dir: str, environment: str) -> None:
    """One run of the real script, phase by phase; the times go to fd 2 as JSON (stdout gets the inventory).

    Only what the run itself imports is imported (a reused run imports neither YAML nor the
    generator), and each module's functions are wrapped as soon as its import returns.
    """
    import builtins
    import importlib
    import runpy

    clock = Clock()
    pending = set(WRAPPED) | set(SPECIAL)

    def importing(real):
        def timed(*args, **kwargs):
            clock.enter("imports")
            try:
                return real(*args, **kwargs)
            finally:
                clock.leave()
                if pending:
                    _wrap_imported(clock, pending)
        return timed

    builtins.__import__ = importing(builtins.__import__)
    importlib.import_module = importing(importlib.import_module)  # the entry point's; pluginbase's own
    sys.argv = [SCRIPT, "--config", config_dir, "--list", "--environment", environment]
    try:
        runpy.run_path(SCRIPT, run_name="__main__")
        status = 0
    except SystemExit as exc:
        status = exc.code
    sys.stdout.flush()
    clock.leave()  # "other": the start of the child to here, less what the phases took
    if status:
        sys.exit(status)
    os.write(2, json.dumps(clock.times).encode())


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    child(*sys.argv[2:4])
    sys.exit(0)

import argparse  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

sys.path.insert(0, HERE)
from generate_bench import (OSA_POOLS, bench_args, bench_env, child_cpu, floor_command,  # noqa: E402
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
