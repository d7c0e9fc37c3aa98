#!/usr/bin/env python3
"""The storage options as declared, and where the sample and the docs disagree with the declarations.

The declarations are the single source of every option's name, order and
default: ``[inventory]``'s ``INVENTORY_OPTIONS`` and each built-in plugin's
``OPTIONS``. osa.ini.sample and the docs' option tables add the prose; this
script prints what the declarations say, for writing that prose, and checks
what was written against them.

  scripts/render-options.py            # each section's options as osa.ini lines and as doc table rows
  scripts/render-options.py --check    # exit 1, one line per disagreement (run by tests/test_declarations.py)

``--check`` holds osa.ini.sample to exactly the declared options of each
section, in declaration order, each non-text option shown with its default;
each doc's ``| option | default | meaning |`` table to exactly the declared
options, numbers and flags with their defaults; and each plugin's docstring
to naming every option. ``--root DIR`` checks the sample and docs of another
copy of the tree (the declarations are always this checkout's).
"""

from __future__ import annotations

import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "lib"))

from osa_inventory.storage.loader import load_plugin_module  # noqa: E402
from osa_inventory.storage.options import Declaration, Option, module_declaration  # noqa: E402
from osa_inventory.storage.settings import INVENTORY_OPTIONS, Settings  # noqa: E402

SAMPLE = "osa.ini.sample"
BUILTIN = ("filesystem", "etcd", "craton", "netbox")
#: The doc page holding each plugin's option table.
DOC_TABLES = {"filesystem": "docs/operations.md", "etcd": "docs/etcd.md", "craton": "docs/craton.md",
              "netbox": "docs/netbox.md"}
TABLE_HEADER = "| option | default | meaning |"
#: Kinds whose sample line shows the default itself (a text option's shows an example).
SHOWN_DEFAULT = ("number", "whole", "flag", "flag_or_path", "choice")


def declarations() -> dict[str, Declaration]:
    """Every section's declared options: ``inventory`` first, then the built-in plugins."""
    found: dict[str, Declaration] = {"inventory": INVENTORY_OPTIONS}
    for plugin in BUILTIN:
        found[plugin] = module_declaration(load_plugin_module(plugin, Settings(path=None))) or {}
    return found


def shown_default(option: Option) -> str:
    """The default as osa.ini spells it: ``15``, ``0.5``, ``true``; empty when there is none."""
    value = option.default
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return f"{value:g}"
    return "" if value is None else str(value)


def sample_sections(text: str) -> dict[str, list[tuple[str, str]]]:
    """Per real section of the sample, its option lines (commented ones too) as (name, value), in order."""
    found: dict[str, list[tuple[str, str]]] = {}
    section = None
    for line in text.splitlines():
        header = re.match(r"^(#?)\s*\[(\w+)\]\s*$", line)
        if header:
            # A commented header is an example section (e.g. [filesystem_copy]), not a real one.
            section = None if header.group(1) else header.group(2)
            if section:
                found.setdefault(section, [])
            continue
        option = re.match(r"^#?\s?(\w+)\s*=\s*(.*?)\s*$", line)
        if section and option:
            found[section].append((option.group(1), option.group(2)))
    return found


def sample_problems(text: str, declared: dict[str, Declaration]) -> list[str]:
    """Where osa.ini.sample's text disagrees with the declarations."""
    problems = []
    sections = sample_sections(text)
    for section in sections.keys() - declared.keys():
        problems.append(f"{SAMPLE}: section [{section}] is not a built-in section; remove it or comment it out")
    for section, options in declared.items():
        lines = sections.get(section)
        if lines is None:
            problems.append(f"{SAMPLE}: section [{section}] is missing; add it with its options {', '.join(options)}")
            continue
        names = [name for name, _ in lines]
        for name in options.keys() - set(names):
            problems.append(f"{SAMPLE}: [{section}] lacks option {name}; add it, as '# {name} = ...'")
        for name in set(names) - options.keys():
            problems.append(f"{SAMPLE}: [{section}] has option {name}, which nothing declares; remove it")
        if set(names) == options.keys() and names != list(options):
            problems.append(f"{SAMPLE}: [{section}] lists its options as {', '.join(names)}; "
                            f"put them in declaration order: {', '.join(options)}")
        for name, value in lines:
            option = options.get(name)
            if option and option.kind in SHOWN_DEFAULT and value != shown_default(option):
                problems.append(f"{SAMPLE}: [{section}] shows {name} = {value}; its default is "
                                f"{shown_default(option)}")
    return problems


def doc_table(text: str) -> dict[str, str] | None:
    """The option table's default cell per option name (a row may name several), or None without a table."""
    lines = text.splitlines()
    if TABLE_HEADER not in lines:
        return None
    documented: dict[str, str] = {}
    for line in lines[lines.index(TABLE_HEADER) + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        for name in re.findall(r"`(\w+)`", cells[0]):
            documented[name] = cells[1] if len(cells) > 1 else ""
    return documented


def doc_problems(path: str, text: str, options: Declaration) -> list[str]:
    """Where a doc's option table disagrees with a plugin's declaration."""
    documented = doc_table(text)
    if documented is None:
        return [f"{path}: no option table (a '{TABLE_HEADER}' header); add one with {', '.join(options)}"]
    problems = [f"{path}: the option table lacks {name}; add a row for it"
                for name in options if name not in documented]
    problems += [f"{path}: the option table has {name}, which nothing declares; remove its row"
                 for name in documented if name not in options]
    for name, option in options.items():
        if isinstance(option.default, (bool, int, float)) and name in documented:
            expected = f"`{shown_default(option)}`"
            if documented[name] != expected:
                problems.append(f"{path}: the option table gives {name} the default {documented[name]}; "
                                f"it is {expected}")
    return problems


def docstring_problems(plugin: str, options: Declaration) -> list[str]:
    """The options a built-in plugin's docstring does not name."""
    doc = load_plugin_module(plugin, Settings(path=None)).__doc__ or ""
    return [f"lib/plugins/{plugin}.py: the docstring does not name option ``{name}``; describe it there"
            for name in options if f"``{name}``" not in doc]


def problems(root: str) -> list[str]:
    """Every disagreement of the sample, the doc tables and the docstrings under ``root`` with the declarations."""
    declared = declarations()
    with open(os.path.join(root, SAMPLE), encoding="utf-8") as fh:
        found = sample_problems(fh.read(), declared)
    for plugin, path in DOC_TABLES.items():
        with open(os.path.join(root, path), encoding="utf-8") as fh:
            found += doc_problems(path, fh.read(), declared[plugin])
    for plugin in BUILTIN:
        found += docstring_problems(plugin, declared[plugin])
    return found


def render(declared: dict[str, Declaration]) -> str:
    """Each section's options as osa.ini lines (defaults shown) and as rows of a doc's option table."""
    out = []
    for section, options in declared.items():
        out.append(f"[{section}]")
        out += [f"# {option.help}\n# {name} = {shown_default(option)}".rstrip() for name, option in options.items()]
        out += ["", TABLE_HEADER, "|---|---|---|"]
        out += [f"| `{name}` | {'`' + shown_default(option) + '`' if shown_default(option) else ''} | {option.help} |"
                for name, option in options.items()]
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="check osa.ini.sample, the docs' option tables and the plugins' docstrings")
    parser.add_argument("--root", default=ROOT,
                        help="the tree whose sample and docs are checked (default: %(default)s)")
    args = parser.parse_args(argv)
    if not args.check:
        print(render(declarations()), end="")
        return 0
    found = problems(args.root)
    for line in found:
        print(f"ERROR: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
