#!/usr/bin/env python3
"""Mutation testing with mutmut: the generator (``tox -e mutation``) or the trust boundary (``-e mutation-trust``).

mutmut names mutants after the module path of the file it mutates and only
understands sources at the top level or under ``src/``; ours live under
``lib/``. So this script builds a stage folder (``.mutation/`` for the
generator, ``.mutation-trust/`` for the trust boundary) holding
``src/osa_inventory`` (a copy of ``lib/osa_inventory``), ``tests/``, the
skeleton, the built-in plugins, and the scope's ``setup.cfg`` and ``conftest.py`` (the order the
tests run in), and runs ``mutmut run`` there. mutmut's own results stay in
``STAGE/mutants/``: ``cd .mutation && mutmut results`` (or ``mutmut show
NAME``, ``mutmut export-cicd-stats``) work afterwards.

Each scope is a folder of settings (:data:`SCOPES`): ``mutation/`` for the
generator, ``mutation/trust/`` for the trust boundary; its ``setup.cfg``
names the modules mutated and the tests run against each mutant.

Then it prints per-module figures and checks the result: at least
``--min-score`` percent of the mutants detected (killed or timed out), and
every survivor listed in the scope's ``equivalent-mutants.txt`` with its
reason. Exit status 1 if either fails, or if a listed mutant no longer
survives (the list must stay true).

    scripts/run-mutation.py [--scope trust] [--modules finalize validate] [--max-children N] [--resume]
    scripts/run-mutation.py --only 'osa_inventory.generate.validate.x_check_config__mutmut_*'
    scripts/run-mutation.py --stage /tmp/elsewhere ...   # a second stage, beside a running one
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "osa_inventory"


@dataclass(frozen=True)
class Scope:
    """What one mutation run covers: the packages its modules are in and the folder of its settings."""

    packages: tuple[str, ...]   # mutants are named PACKAGE.MODULE.x_function__mutmut_N
    settings: Path  # setup.cfg (modules and tests), conftest.py (optional), equivalent-mutants.txt
    stage: Path     # the default stage folder

    @property
    def equivalents(self) -> Path:
        return self.settings / "equivalent-mutants.txt"


SCOPES = {
    "generator": Scope((f"{PACKAGE}.generate",), ROOT / "mutation", ROOT / ".mutation"),
    "trust": Scope((f"{PACKAGE}.storage", f"{PACKAGE}.inventory"), ROOT / "mutation" / "trust",
                   ROOT / ".mutation-trust"),
}
# mutmut's exit codes of a mutant run, as its results command names them
DETECTED = {1: "killed", 3: "killed", 36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout",
            255: "timeout"}


def stage(where: Path, scope: Scope) -> None:
    """A fresh stage folder with the sources under src/ and everything the tests read."""
    if where.exists():
        shutil.rmtree(where)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "lib" / PACKAGE, where / "src" / PACKAGE, ignore=ignore)
    shutil.copytree(ROOT / "tests", where / "tests", ignore=ignore)
    shutil.copytree(ROOT / "playbooks" / "inventory" / "env.d", where / "playbooks" / "inventory" / "env.d")
    shutil.copytree(ROOT / "lib" / "plugins", where / "lib" / "plugins", ignore=ignore)  # the built-in plugins
    # tests/conftest.py registers the NetBox fixtures, whose module loads the script that runs NetBox (and
    # the lock-file script that one loads).
    shutil.copytree(ROOT / "scripts", where / "scripts", ignore=ignore)
    shutil.copy2(scope.settings / "setup.cfg", where / "setup.cfg")
    if (scope.settings / "conftest.py").exists():
        shutil.copy2(scope.settings / "conftest.py", where / "conftest.py")


def mutmut(where: Path, *args: str) -> int:
    """Run mutmut from this interpreter's environment inside the stage."""
    exe = Path(sys.executable).with_name("mutmut")
    cmd = [str(exe) if exe.exists() else "mutmut", *args]
    return subprocess.call(cmd, cwd=where)


def results(where: Path, scope: Scope, modules: list[str]) -> tuple[dict[str, Counter], list[str]]:
    """``{module: Counter(status)}`` and the undetected mutants' names, for the checked mutants of ``modules``."""
    out: dict[str, Counter] = {}
    undetected: list[str] = []
    # mutmut writes a .meta file beside each module it mutated: the scope's modules, per its setup.cfg.
    metas = [meta for package in scope.packages
             for meta in sorted((where / "mutants" / "src" / Path(*package.split("."))).glob("*.py.meta"))]
    for meta in metas:
        module = meta.name[: -len(".py.meta")]
        if modules and module not in modules:
            continue
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue  # a module without code to mutate (__init__)
        counts = out.setdefault(module, Counter())
        for name, code in codes.items():
            if code is None:
                continue
            status = DETECTED.get(code) or {0: "survived", 33: "no tests", 5: "no tests"}.get(code, "other")
            counts[status] += 1
            if status not in DETECTED.values():
                undetected.append(name)
    return out, undetected


def listed_equivalents(scope: Scope) -> dict[str, str]:
    """``{mutant name: reason}`` from the scope's equivalents file (``name: reason`` lines, ``#`` comments)."""
    out = {}
    if scope.equivalents.exists():
        for line in scope.equivalents.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, reason = line.partition(":")
                out[name.strip()] = reason.strip()
    return out


def module_of(name: str, scope: Scope) -> str:
    """The module a mutant of ``scope`` belongs to (``osa_inventory.storage.trust.x_...`` -> ``trust``)."""
    package = next((p for p in scope.packages if name.startswith(p + ".")), "")
    return name[len(package) + 1:].split(".")[0]


def report(per_module: dict[str, Counter], undetected: list[str], min_score: float, modules: list[str],
           scope: Scope, verdict: bool = True) -> int:
    """Print the table and the verdict; 0 if the run meets the bar."""
    equivalents = listed_equivalents(scope)
    total: Counter = Counter()
    print(f"{'module':<14}{'mutants':>9}{'killed':>8}{'timeout':>9}{'survived':>10}{'other':>7}{'score':>8}")
    for module, counts in per_module.items():
        n = sum(counts.values())
        detected = counts["killed"] + counts["timeout"]
        total.update(counts)
        other = n - detected - counts["survived"]
        score = 100.0 * detected / n if n else 100.0
        print(f"{module:<14}{n:>9}{counts['killed']:>8}{counts['timeout']:>9}{counts['survived']:>10}{other:>7}"
              f"{score:>7.1f}%")
    n = sum(total.values())
    detected = total["killed"] + total["timeout"]
    score = 100.0 * detected / n if n else 0.0
    print(f"{'all':<14}{n:>9}{total['killed']:>8}{total['timeout']:>9}{total['survived']:>10}"
          f"{n - detected - total['survived']:>7}{score:>7.1f}%")
    if not verdict:
        for name in undetected:
            print("undetected: " + name)
        return 0
    failed = False
    unlisted = [name for name in undetected if name not in equivalents]
    if unlisted:
        failed = True
        print(f"\n{len(unlisted)} undetected mutants are not listed as equivalent "
              f"(see them with: cd {scope.stage.relative_to(ROOT)} && mutmut show NAME):")
        for name in unlisted:
            print("  " + name)
    in_scope = [name for name in equivalents if not modules or module_of(name, scope) in modules]
    stale = [name for name in in_scope if name not in undetected]
    if stale:
        failed = True
        print(f"\n{len(stale)} mutants listed in {scope.equivalents.relative_to(ROOT)} are detected now or no longer "
              "exist; remove them from the list:")
        for name in stale:
            print("  " + name)
    if score < min_score:
        failed = True
        print(f"\nmutation score {score:.1f}% is below {min_score:.0f}%")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scope", choices=sorted(SCOPES), default="generator",
                        help="what to mutate: the generator (default) or the trust boundary (storage/trust.py, "
                             "plugin_import.py, ... as mutation/trust/setup.cfg lists)")
    parser.add_argument("--modules", nargs="*", default=[],
                        help="only these modules of the scope (e.g. finalize validate); default: all")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--min-score", type=float, default=90.0)
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME",
                        help="only these mutants (names or globs, as mutmut prints them); figures, no verdict")
    parser.add_argument("--stage", type=Path, default=None,
                        help="the stage folder (default: .mutation/ in the project, .mutation-trust/ for trust)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the stage and mutmut's cached results from the previous run")
    args = parser.parse_args(argv)
    scope = SCOPES[args.scope]
    where = (args.stage or scope.stage).resolve()
    if not (args.resume and where.exists()):
        stage(where, scope)
    names = args.only or [f"{package}.{m}.*" for m in args.modules for package in scope.packages]
    status = mutmut(where, "run", "--max-children", str(args.max_children), *names)
    if status != 0:
        print(f"mutmut run failed with exit status {status}", file=sys.stderr)
        return 1
    mutmut(where, "export-cicd-stats")
    return report(*results(where, scope, args.modules), args.min_score, args.modules, scope, verdict=not args.only)


if __name__ == "__main__":
    sys.exit(main())
