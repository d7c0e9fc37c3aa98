#!/usr/bin/env python3
"""Refresh the lock files of what the tests install: constraints/py3.X.txt, one per supported Python.

    scripts/lock-test-requirements.py [--pythons 3.12,3.13] [--check]

For each version, pip (that version's own, in a throw-away venv) resolves
test-requirements.txt plus the development tools (tools-requirements.txt: the
linter and mutmut) from the package index as it is today, without installing
anything, and the exact versions it picked are written as ``name==version``.
Every installer of the project's tests reads them as constraints:
scripts/run-tests.sh (so scripts/run-tests-pythons.py and .ci/run too) and tox.
Run it, run the whole suite (scripts/run-tests-pythons.py), and commit the
lock files only if it passes: a release that breaks the tests then never
reaches CI by surprise.

--check resolves again and reports, without writing, which pins the index would
move (exit status 1 when any would); it needs the network, so CI does not run it.
Only the standard library is used here.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCK_DIR = os.path.join(ROOT, "constraints")
INPUTS = ("test-requirements.txt", "tools-requirements.txt")
_SPEC = importlib.util.spec_from_file_location("run_tests_pythons",
                                               os.path.join(ROOT, "scripts", "run-tests-pythons.py"))
pythons = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(pythons)


def lock_path(version: str) -> str:
    """The lock file of Python ``version`` ("3.X")."""
    return os.path.join(LOCK_DIR, f"py{version}.txt")


def resolve(python: str, requirements: Sequence[str] | None = None) -> dict[str, str]:
    """{distribution: version} that pip of ``python`` would install today, nothing installed.

    ``requirements`` are pip's requirement arguments (default: ``-r`` each of INPUTS)."""
    if requirements is None:
        requirements = [arg for name in INPUTS for arg in ("-r", os.path.join(ROOT, name))]
    with tempfile.TemporaryDirectory(prefix="osa-lock-") as scratch:
        venv = os.path.join(scratch, "venv")
        subprocess.run([python, "-m", "venv", venv], check=True)
        report = os.path.join(scratch, "report.json")
        # A lock made under the lock would only repeat it.
        env = {k: v for k, v in os.environ.items() if k != "PIP_CONSTRAINT"}
        subprocess.run([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q", "--dry-run",
                        "--ignore-installed", "--report", report, *requirements], check=True, env=env)
        with open(report, encoding="utf-8") as fh:
            resolved = json.load(fh)["install"]
    return {item["metadata"]["name"]: item["metadata"]["version"] for item in resolved}


def render(version: str, pins: dict[str, str]) -> str:
    header = [f"# Exact versions the tests run with on Python {version}, as pip resolved {' and '.join(INPUTS)}.",
              "# Made by scripts/lock-test-requirements.py; refresh with it, never by hand (README, Development)."]
    return render_pins(header, pins)


def render_pins(header: Sequence[str], pins: dict[str, str]) -> str:
    """A lock file's text: the ``header`` comment lines, a blank line, then ``name==version`` sorted by name."""
    lines = [*header, ""]
    lines += [f"{name}=={pins[name]}" for name in sorted(pins, key=canonical)]
    return "\n".join(lines) + "\n"


def moved_pins(path: str, pins: dict[str, str]) -> list[str]:
    """Each pin of the lock file ``path`` that ``pins`` would change, as "name old -> new" ("-": none)."""
    old = read_pins(path) if os.path.exists(path) else {}
    new = {canonical(k): v for k, v in pins.items()}
    return sorted(f"{name} {old.get(name, '-')} -> {new.get(name, '-')}"
                  for name in set(old) | set(new) if old.get(name) != new.get(name))


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: str) -> dict[str, str]:
    pins = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.split("#", 1)[0].strip()
            if line:
                name, _, version = line.partition("==")
                pins[canonical(name)] = version
    return pins


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--pythons", default=",".join(pythons.SUPPORTED),
                        help=f"comma-separated versions (default {','.join(pythons.SUPPORTED)})")
    parser.add_argument("--check", action="store_true", help="report pins the index would move; write nothing")
    opts = parser.parse_args(argv)
    versions = [v.strip() for v in opts.pythons.split(",") if v.strip()]
    if not versions or any(v not in pythons.SUPPORTED for v in versions):
        parser.error(f"--pythons takes some of {','.join(pythons.SUPPORTED)}")
    moved = 0
    for version in versions:
        python = pythons.find_python(version)
        if python is None:
            print(f"Python {version}: no interpreter found; install it (e.g. pyenv install {version})",
                  file=sys.stderr)
            return 1
        pins = resolve(python)
        path = lock_path(version)
        if opts.check:
            changes = moved_pins(path, pins)
            moved += len(changes)
            print(f"Python {version}: " + ("; ".join(changes) if changes else "up to date"))
            continue
        os.makedirs(LOCK_DIR, exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(render(version, pins))
        print(f"Python {version}: {len(pins)} pins written to {os.path.relpath(path, ROOT)}")
    return 1 if moved else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
