"""osa.ini.sample and the docs describe exactly the options the plugins declare.

Adding an option to a declaration without documenting it (or documenting
one that no plugin reads) fails here.
"""

from __future__ import annotations

import configparser
import os
import re

import pytest

from osa_inventory.storage.loader import load_plugin_module
from osa_inventory.storage.options import module_declaration
from osa_inventory.storage.settings import INVENTORY_OPTIONS, Settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "osa.ini.sample")
BUILTIN = ("filesystem", "etcd", "craton", "netbox")
# Plugins whose doc page has an option table: `name` | default | meaning.
DOC_TABLES = {"etcd": "docs/etcd.md", "craton": "docs/craton.md", "filesystem": "docs/operations.md",
              "netbox": "docs/netbox.md"}


def declared(plugin: str) -> dict:
    return module_declaration(load_plugin_module(plugin, Settings(path=None)))


def sample_options() -> dict[str, set[str]]:
    """Option names per section of osa.ini.sample, commented-out ones included."""
    found: dict[str, set[str]] = {}
    section = None
    with open(SAMPLE) as fh:
        for line in fh:
            header = re.match(r"^#?\s*\[(\w+)\]\s*$", line)
            if header:
                section = header.group(1)
                # A commented header is an example section (e.g. [filesystem_copy]), not a real one.
                section = None if line.startswith("#") else section
                continue
            option = re.match(r"^#?\s?(\w+)\s*=", line)
            if section and option:
                found.setdefault(section, set()).add(option.group(1))
    return found


def test_sample_is_valid_ini_with_the_builtin_sections():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(SAMPLE)
    assert set(parser.sections()) == {"inventory", *BUILTIN}


@pytest.mark.parametrize("plugin", BUILTIN)
def test_sample_lists_exactly_the_declared_options(plugin):
    assert sample_options()[plugin] == set(declared(plugin))


def test_sample_lists_exactly_the_inventory_options():
    assert sample_options()["inventory"] == set(INVENTORY_OPTIONS)


@pytest.mark.parametrize("plugin", sorted(DOC_TABLES))
def test_doc_table_lists_the_declared_options_and_defaults(plugin):
    with open(os.path.join(ROOT, DOC_TABLES[plugin])) as fh:
        rows = [line for line in fh if re.match(r"^\| `\w+`", line)]
    documented: dict[str, str] = {}
    for row in rows:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        for name in re.findall(r"`(\w+)`", cells[0]):
            documented[name] = cells[1]
    options = declared(plugin)
    assert set(documented) >= set(options)
    for name, option in options.items():
        if isinstance(option.default, (int, float)) and not isinstance(option.default, bool):
            assert documented[name] == f"`{option.default:g}`", name
        elif isinstance(option.default, bool):
            assert documented[name] == f"`{str(option.default).lower()}`", name


@pytest.mark.parametrize("plugin", BUILTIN)
def test_plugin_docstring_names_every_option(plugin):
    module = load_plugin_module(plugin, Settings(path=None))
    for name in declared(plugin):
        assert f"``{name}``" in module.__doc__, name


def test_sample_plugin_declares_and_documents_its_options():
    import importlib.util

    path = os.path.join(ROOT, "examples", "plugins", "sqlite_store.py")
    spec = importlib.util.spec_from_file_location("sqlite_store_doc", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    options = module_declaration(module)
    assert set(options) == {"database", "keep", "lock_timeout"}
    for name, option in options.items():
        assert f"``{name}``" in module.__doc__
        assert f"(default {option.default:g})" in module.__doc__ if name != "database" else \
            f"``{option.default}``" in module.__doc__


def test_sample_documents_every_inventory_option_and_choice():
    with open(SAMPLE) as fh:
        sample = fh.read()
    for name, option in INVENTORY_OPTIONS.items():
        assert re.search(rf"^#? ?{name} =", sample, re.M), name
        if option.kind == "choice":
            for choice in option.choices:
                assert choice in sample, (name, choice)
