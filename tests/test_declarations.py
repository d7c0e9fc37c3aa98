"""osa.ini.sample and the docs describe exactly the options the plugins declare.

The declarations are the single source; scripts/render-options.py renders
them and, with --check, names every place the sample, the docs' option
tables or the plugins' docstrings stray from them. Adding an option to a
declaration without documenting it (or documenting one that no plugin
reads) fails here.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys

import pytest

from osa_inventory.storage.loader import load_plugin_module
from osa_inventory.storage.options import module_declaration
from osa_inventory.storage.settings import INVENTORY_OPTIONS, Settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "osa.ini.sample")
RENDER = os.path.join(ROOT, "scripts", "render-options.py")
BUILTIN = ("filesystem", "etcd", "craton", "netbox")
PLUGIN = "collection/plugins/inventory/storage.py"


def declared(plugin: str) -> dict:
    return module_declaration(load_plugin_module(plugin, Settings(path=None)))


def test_sample_is_valid_ini_with_the_builtin_sections():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(SAMPLE)
    assert set(parser.sections()) == {"inventory", *BUILTIN}


def render_options(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, RENDER, *args], capture_output=True, text=True, timeout=120)


def test_sample_docs_and_docstrings_agree_with_the_declarations():
    result = render_options("--check")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_what_is_rendered_is_each_declared_option_with_its_default():
    result = render_options()
    assert result.returncode == 0, result.stderr
    for section, plugin in (("inventory", None), *((p, p) for p in BUILTIN)):
        options = declared(plugin) if plugin else INVENTORY_OPTIONS
        block = result.stdout.split(f"[{section}]\n", 1)[1].split("\n[", 1)[0]
        assert re.findall(r"^# (\w+) =", block, re.M) == list(options)
        assert re.findall(r"^\| `(\w+)` \|", block, re.M) == list(options)
    assert "# backups = 15\n" in result.stdout and "| `verify` | `true` |" in result.stdout


def _copy_tree(tmp_path) -> str:
    """The sample and docs, copied to be spoiled."""
    root = tmp_path / "tree"
    shutil.copytree(os.path.join(ROOT, "docs"), root / "docs")
    shutil.copytree(os.path.join(ROOT, "collection"), root / "collection")
    shutil.copy(SAMPLE, root / "osa.ini.sample")
    return str(root)


def _edit(path: str, old: str, new: str) -> None:
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    assert old in text, old
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text.replace(old, new, 1))


@pytest.mark.parametrize("file, old, new, named", [
    ("osa.ini.sample", "# backups = 15\n", "", "[filesystem] lacks option backups"),
    ("osa.ini.sample", "# max_txn_ops = 128\n", "# max_txn_ops = 128\n# retry = 3\n",
     "[etcd] has option retry, which nothing declares"),
    ("osa.ini.sample", "# timeout = 30\n", "# timeout = 60\n", "[craton] shows timeout = 60; its default is 30"),
    ("osa.ini.sample", "# timeout = 10\n# lock_ttl = 60\n", "# lock_ttl = 60\n# timeout = 10\n",
     "put them in declaration order"),
    ("osa.ini.sample", "\n[craton]\n", "\n# [craton]\n", "section [craton] is missing"),
    ("docs/etcd.md", "| `max_txn_ops` |", "| `max_txn_opz` |", "docs/etcd.md: the option table lacks max_txn_ops"),
    ("docs/etcd.md", "| `max_txn_ops` |", "| `max_txn_opz` |", "has max_txn_opz, which nothing declares"),
    ("docs/craton.md", "| `retries` | `3` |", "| `retries` | `5` |",
     "docs/craton.md: the option table gives retries the default `5`; it is `3`"),
    ("docs/operations.md", "| option | default | meaning |", "| option | default |", "no option table"),
    # The Ansible plugin offers every osa.ini option, each passed on as its OSA_INVENTORY_* variable.
    (PLUGIN, "\n  etcd_endpoints:\n", "\n  etcd_endpointz:\n", f"{PLUGIN}: DOCUMENTATION lacks option etcd_endpoints"),
    (PLUGIN, "\n  etcd_endpoints:\n", "\n  etcd_endpointz:\n", "has option etcd_endpointz, which nothing declares"),
    (PLUGIN, "name: OSA_INVENTORY_CRATON_API_KEY", "name: CRATON_API_KEY",
     f"{PLUGIN}: DOCUMENTATION's option craton_api_key is not as declared"),
    (PLUGIN, "key: filesystem_backups", "key: backups", "option filesystem_backups is not as declared"),
])
def test_a_sample_or_doc_that_strays_from_the_declarations_is_named(tmp_path, file, old, new, named):
    root = _copy_tree(tmp_path)
    _edit(os.path.join(root, file), old, new)
    result = render_options("--check", "--root", root)
    assert result.returncode == 1 and result.stdout == ""
    assert any(line.startswith("ERROR: ") and named in line for line in result.stderr.splitlines()), result.stderr


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


def test_the_ansible_block_offers_every_declared_option_as_its_environment_variable():
    import yaml

    result = render_options("--ansible")
    assert result.returncode == 0, result.stderr
    offered = yaml.safe_load(result.stdout)
    expected = {name: f"OSA_INVENTORY_{name.upper()}" for name in INVENTORY_OPTIONS}
    for plugin in BUILTIN:
        expected.update({f"{plugin}_{name}": f"OSA_INVENTORY_{plugin.upper()}_{name.upper()}"
                         for name in declared(plugin)})
    assert {name: entry["env"] for name, entry in offered.items()} == {
        name: [{"name": variable}] for name, variable in expected.items()}
    assert all("default" not in entry for entry in offered.values())  # unset leaves osa.ini's value in force
    assert [offered[name]["type"] for name in ("craton_verify", "craton_create", "filesystem_backups", "timeout")] \
        == ["str", "bool", "int", "float"]
