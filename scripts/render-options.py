#!/usr/bin/env python3
"""The storage options as declared, and where the sample and the docs disagree with the declarations.

The declarations are the single source of every option's name, order and
default: ``[inventory]``'s ``INVENTORY_OPTIONS`` and each built-in plugin's
``OPTIONS``. osa.ini.sample and the docs' option tables add the prose; this
script prints what the declarations say, for writing that prose, and checks
what was written against them.

  scripts/render-options.py            # each section's options as osa.ini lines and as doc table rows
  scripts/render-options.py --check    # exit 1, one line per disagreement (run by tests/test_declarations.py)
  scripts/render-options.py --ansible  # the options block of the Ansible plugin's DOCUMENTATION

``--check`` holds osa.ini.sample to exactly the declared options of each
section, in declaration order, each non-text option shown with its default;
each doc's ``| option | default | meaning |`` table to exactly the declared
options, numbers and flags with their defaults; and each plugin's docstring
to naming every option; and the Ansible inventory plugin's DOCUMENTATION
(collection/plugins/inventory/storage.py) to offering exactly these options,
each as ``ansible_options()`` renders it (``--ansible`` prints that block).
``--root DIR`` checks the sample, docs and plugin of another copy of the tree
(the declarations are always this checkout's).
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "lib"))

from osa_inventory.storage.loader import load_plugin_module  # noqa: E402
from osa_inventory.storage.options import Declaration, Option, module_declaration  # noqa: E402
from osa_inventory.storage.settings import INVENTORY_OPTIONS, Settings, env_key  # noqa: E402

import yaml  # noqa: E402

SAMPLE = "osa.ini.sample"
BUILTIN = ("filesystem", "etcd", "craton", "netbox")
#: The doc page holding each plugin's option table.
DOC_TABLES = {"filesystem": "docs/operations.md", "etcd": "docs/etcd.md", "craton": "docs/craton.md",
              "netbox": "docs/netbox.md"}
TABLE_HEADER = "| option | default | meaning |"
#: Kinds whose sample line shows the default itself (a text option's shows an example).
SHOWN_DEFAULT = ("number", "whole", "flag", "flag_or_path", "choice")
#: The Ansible inventory plugin whose DOCUMENTATION offers every option, and its ansible.cfg section.
ANSIBLE_PLUGIN = "collection/plugins/inventory/storage.py"
ANSIBLE_INI_SECTION = "osa_inventory"
#: The plugin's own options (not osa.ini's); the options of Ansible's doc fragments are not listed here.
ANSIBLE_OWN = ("plugin", "osa_ini", "config_dir", "environment")
ANSIBLE_TYPES = {"flag": "bool", "whole": "int", "number": "float", "path": "path"}


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
    with open(os.path.join(root, ANSIBLE_PLUGIN), encoding="utf-8") as fh:
        found += ansible_problems(fh.read(), declared)
    return found


def ansible_name(section: str, option: str) -> str:
    """The plugin option that sets ``[section] option``: ``[inventory]``'s by name, others' as ``section_option``."""
    return option if section == "inventory" else f"{section}_{option}"


def ansible_options(declared: dict[str, Declaration]) -> dict[str, dict]:
    """Every declared osa.ini option as an Ansible plugin option, passed on as its ``OSA_INVENTORY_*`` variable.

    No defaults: an option left unset leaves osa.ini's value (or the declared default) in force.
    """
    found: dict[str, dict] = {}
    for section, options in declared.items():
        for name, option in options.items():
            variable = env_key(name) if section == "inventory" else env_key(section, name)
            key = ansible_name(section, name)
            description = [f"[{section}] {name} of osa.ini: {option.help}."]
            if shown_default(option):
                description.append(f"osa.ini's default: {shown_default(option)}.")
            if option.secret:
                description.append(f"A secret: set {variable} or osa.ini (mode 0600) rather than a source file "
                                   "others may read.")
            entry: dict = {"description": description, "type": ANSIBLE_TYPES.get(option.kind, "str")}
            if option.choices:
                entry["choices"] = list(option.choices)
            entry["env"] = [{"name": variable}]
            entry["ini"] = [{"section": ANSIBLE_INI_SECTION, "key": key}]
            found[key] = entry
    return found


def render_ansible(declared: dict[str, Declaration]) -> str:
    """The osa.ini options as the YAML of the plugin's ``options:`` (indented for DOCUMENTATION)."""
    text = yaml.safe_dump(ansible_options(declared), sort_keys=False, width=110)
    return "".join(f"  {line}\n" for line in text.splitlines())


def plugin_documentation(text: str) -> dict:
    """The DOCUMENTATION of an Ansible plugin's source, parsed (as ansible-doc reads it: no import)."""
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "DOCUMENTATION" for t in node.targets):
            return yaml.safe_load(ast.literal_eval(node.value)) or {}
    return {}


def ansible_problems(text: str, declared: dict[str, Declaration]) -> list[str]:
    """Where the Ansible plugin's DOCUMENTATION disagrees with the declared osa.ini options."""
    offered = plugin_documentation(text).get("options") or {}
    expected = ansible_options(declared)
    problems = []
    for name, entry in expected.items():
        if name not in offered:
            problems.append(f"{ANSIBLE_PLUGIN}: DOCUMENTATION lacks option {name}; "
                            "paste the block scripts/render-options.py --ansible prints")
        elif offered[name] != entry:
            problems.append(f"{ANSIBLE_PLUGIN}: DOCUMENTATION's option {name} is not as declared; "
                            "paste the block scripts/render-options.py --ansible prints")
    for name in offered.keys() - expected.keys() - set(ANSIBLE_OWN):
        problems.append(f"{ANSIBLE_PLUGIN}: DOCUMENTATION has option {name}, which nothing declares; remove it")
    return problems


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
    parser.add_argument("--ansible", action="store_true",
                        help="print the options block of the Ansible inventory plugin's DOCUMENTATION")
    args = parser.parse_args(argv)
    if args.ansible:
        print(render_ansible(declarations()), end="")
        return 0
    if not args.check:
        print(render(declarations()), end="")
        return 0
    found = problems(args.root)
    for line in found:
        print(f"ERROR: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
