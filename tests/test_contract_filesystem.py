"""The storage contract applied to the built-in filesystem plugin, inventory-manage's ``-f FILE`` and the SQLite sample.

Also checks that the contract suite itself can fail: its command line is run
against deliberately broken plugins and must report the matching tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
from helpers import run_script, write_ini
from osa_inventory.testing import StorageContract, make_inventory

from osa_inventory.backends.filesystem import single_file
from osa_inventory.errors import StorageError
from osa_inventory.manage.stores import open_file_backend
from osa_inventory.storage.loader import load_plugin_module
from osa_inventory.storage.settings import Settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "lib")
#: The contract suite's command line (osa_inventory.testing), as a checkout runs it.
CONTRACT = ["-m", "osa_inventory.testing"]
SAMPLE = os.path.join(ROOT, "examples", "plugins", "sqlite_store.py")
DOC = os.path.join(ROOT, "docs", "writing-plugins.md")
FIXTURE_CONFIG = os.path.join(ROOT, "tests", "fixtures", "small_config")


def import_file(path: str, name: str):
    """Import a plugin file directly (no ownership checks: the repo checkout may be group-writable)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


filesystem = load_plugin_module("filesystem", Settings(path=None))
sqlite_store = import_file(SAMPLE, "contract_sqlite_store")


class TestFilesystemContract(StorageContract):

    @pytest.fixture
    def make_storage(self, tmp_path):
        def make():
            storage = filesystem.Storage()
            storage.register({"config_dir": str(tmp_path)})
            return storage
        return make

    @pytest.fixture
    def register_failures(self, tmp_path):
        def attempt(**args):
            return lambda: filesystem.Storage().register({"config_dir": str(tmp_path), **args})
        return [attempt(backups="many"), attempt(backups="-1"), attempt(lock_timeout="soon"),
                attempt(path=str(tmp_path / "missing"))]


class TestFilesystemContractWithPathOption(TestFilesystemContract):
    """``path`` wins over the config folder."""

    @pytest.fixture
    def make_storage(self, tmp_path):
        store = tmp_path / "store"
        store.mkdir()

        def make():
            storage = filesystem.Storage()
            storage.register({"config_dir": str(tmp_path / "unused"), "path": str(store), "backups": "4"})
            return storage
        return make


class TestFileContract(StorageContract):
    """``inventory-manage -f FILE`` for a file of another name than openstack_inventory.json: FILE.<time>.bak copies."""

    @pytest.fixture
    def make_storage(self, tmp_path):
        path = str(tmp_path / "inventory-copy.json")

        def make():
            storage = open_file_backend(path).storage
            assert isinstance(storage, single_file.Storage)
            return storage
        return make

    @pytest.fixture
    def register_failures(self, tmp_path):
        (tmp_path / "folder.json").mkdir()
        os.mkfifo(tmp_path / "pipe.json")
        (tmp_path / "real.json").write_text("{}")
        os.symlink(tmp_path / "real.json", tmp_path / "link.json")

        def attempt(**args):
            return lambda: single_file.Storage().register(args)
        return [attempt(), attempt(file=""), attempt(file=str(tmp_path / "missing" / "inv.json")),
                attempt(file=str(tmp_path / "folder.json")), attempt(file=str(tmp_path / "pipe.json")),
                attempt(file=str(tmp_path / "link.json"))]


class TestFileContractOfTheInventoryName(TestFilesystemContract):
    """``-f .../openstack_inventory.json``: the filesystem plugin on the file's folder, as inventory-manage opens it."""

    @pytest.fixture
    def make_storage(self, tmp_path):
        path = str(tmp_path / "openstack_inventory.json")

        def make():
            storage = open_file_backend(path).storage
            assert storage.manage_target == f"-f {path}"
            return storage
        return make


class TestSqliteSampleContract(StorageContract):

    @pytest.fixture
    def make_storage(self, tmp_path):
        def make():
            storage = sqlite_store.Storage()
            storage.register({"config_dir": str(tmp_path), "database": "inv.sqlite3"})
            return storage
        return make

    @pytest.fixture
    def register_failures(self, tmp_path):
        def attempt(**args):
            return lambda: sqlite_store.Storage().register({"config_dir": str(tmp_path), **args})
        return [attempt(keep="all"), attempt(lock_timeout="-3"),
                attempt(database=str(tmp_path / "no" / "such" / "x.db"))]


def test_filesystem_relative_path_is_relative_to_the_config_folder(tmp_path, monkeypatch):
    (tmp_path / "config" / "store").mkdir(parents=True)
    monkeypatch.chdir("/")
    storage = filesystem.Storage()
    storage.register({"config_dir": str(tmp_path / "config"), "path": "store"})
    storage.write(make_inventory(1, n_infra=1))
    assert os.path.exists(tmp_path / "config" / "store" / "openstack_inventory.json")
    assert storage.describe() == f"filesystem {tmp_path / 'config' / 'store' / 'openstack_inventory.json'}"


def test_sqlite_keep_prunes_old_versions(tmp_path):
    storage = sqlite_store.Storage()
    storage.register({"config_dir": str(tmp_path), "database": "k.db", "keep": "2"})
    for revision in range(5):
        storage.write(make_inventory(1, n_infra=1, revision=revision))
    versions = storage.history()
    assert [storage.read_version(v["version"])["all"]["vars"]["inventory_revision"] for v in versions] == [3, 4]


def test_sqlite_corrupt_database_is_one_clear_error(tmp_path):
    (tmp_path / "bad.db").write_bytes(b"this is not an sqlite database at all" * 100)
    storage = sqlite_store.Storage()
    storage.register({"config_dir": str(tmp_path), "database": "bad.db"})
    with pytest.raises(StorageError, match=r"bad\.db.*restore"):
        storage.load()


def test_sqlite_sample_serves_the_real_script(tmp_path):
    folder = os.path.dirname(plugin_folder(tmp_path, open(SAMPLE).read(), "sqlite_store"))
    config_dir = tmp_path / "config"
    shutil.copytree(FIXTURE_CONFIG, config_dir)
    ini = write_ini(str(tmp_path), f"[inventory]\nbackend = sqlite_store\nplugin_paths = {folder}\n"
                                   "[sqlite_store]\ndatabase = inv.sqlite3\n")
    first = run_script(str(config_dir), ini=ini)
    assert first.returncode == 0 and first.stderr == "", first.stderr
    second = run_script(str(config_dir), ini=ini)
    assert second.stdout == first.stdout
    storage = sqlite_store.Storage()
    # A relative path written in osa.ini is relative to osa.ini's folder, not the config folder.
    storage.register({"config_dir": str(tmp_path), "database": "inv.sqlite3"})
    assert not os.path.exists(config_dir / "inv.sqlite3")
    assert [v["version"] for v in storage.history()] == ["1"], "the unchanged run added a version"
    assert storage.load() == json.loads(first.stdout)
    assert not os.path.exists(config_dir / "openstack_inventory.json")
    assert sorted(os.listdir(folder)) == ["sqlite_store.py"], "the plugin folder got __pycache__ or more"


# -- the command line of the contract suite -----------------------------------

def run_contract(plugin: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "PYTHON"))}
    env["PYTHONPATH"] = LIB
    return subprocess.run([sys.executable, *CONTRACT, plugin, *args, "-q", "-rfE", "-p", "no:randomly"],
                          capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)


def summary(result: subprocess.CompletedProcess) -> dict[str, int]:
    counts = dict.fromkeys(("passed", "failed", "skipped", "error"), 0)
    for number, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)", result.stdout):
        counts[word.rstrip("s") if word.startswith("error") else word] = int(number)
    return counts


def failed_tests(result: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"^FAILED \S+::TestCommandLinePlugin::(\w+)", result.stdout, re.M))


def plugin_folder(tmp_path, source: str, name: str = "store") -> str:
    folder = tmp_path / "plugins"
    folder.mkdir(mode=0o755, exist_ok=True)
    os.chmod(folder, 0o755)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    os.chmod(path, 0o644)
    return str(path)


def test_command_line_passes_the_sample_plugin(tmp_path):
    plugin = plugin_folder(tmp_path, open(SAMPLE).read(), "sqlite_store")
    result = run_contract(plugin, "--option", "database={tmp}/inv.sqlite3",
                          "--bad-option", "lock_timeout=soon", "--bad-option", "database={tmp}/missing/inv.db")
    counts = summary(result)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert counts["failed"] == 0 and counts["error"] == 0
    # Every test applies to this plugin: it has lock, history and describe, and bad options were given.
    assert counts["passed"] >= 19 and counts["skipped"] == 0, counts


def test_command_line_bad_option_that_is_accepted_fails_the_contract(tmp_path):
    plugin = plugin_folder(tmp_path, open(SAMPLE).read(), "sqlite_store")
    result = run_contract(plugin, "--option", "database={tmp}/inv.sqlite3", "--bad-option", "keep=3",
                          "-k", "bad_options")
    assert result.returncode == 1 and failed_tests(result) == {"test_bad_options_are_refused_with_one_clear_line"}


# A plugin that keeps the contract except where the class attribute says otherwise.
BROKEN_TEMPLATE = '''
import contextlib, json, os

from osa_inventory.errors import StorageError

FLAW = {flaw!r}


class Storage:
    def register(self, args):
        self.path = os.path.join(args["config_dir"], "inv.json")
        self.versions_path = self.path + ".versions"

    def load(self):
        if not os.path.exists(self.path):
            return None
        with open(self.path) as fh:
            data = json.load(fh)
        if FLAW == "drops_empty_groups":
            data = {{k: v for k, v in data.items() if v not in ({{"hosts": []}},)}}
        if FLAW == "bools_as_ints":
            data = json.loads(json.dumps(data).replace("true", "1"))
        if FLAW == "sorts_lists":
            data = {{k: ({{**v, "hosts": sorted(v["hosts"])}} if isinstance(v, dict) and "hosts" in v else v)
                    for k, v in data.items()}}
        return data

    def write(self, inventory):
        if FLAW == "ignores_overwrite" and os.path.exists(self.path):
            return
        text = json.dumps(inventory, sort_keys=True)
        old = open(self.path).read() if os.path.exists(self.path) else None
        if FLAW != "versions_on_identical" and old == text:
            return
        with open(self.path, "w") as fh:
            fh.write(text)
        with open(self.versions_path, "a") as fh:
            fh.write(text + "\\n")

    @contextlib.contextmanager
    def lock(self):
        yield  # takes nothing: not exclusive (only the lock tests notice)

    def history(self):
        if not os.path.exists(self.versions_path):
            return []
        with open(self.versions_path) as fh:
            n = len(fh.read().splitlines())
        return [{{"version": str(i), "time": "2026-01-01T00:00:00Z"}} for i in range(n)]

    def read_version(self, version):
        with open(self.versions_path) as fh:
            lines = fh.read().splitlines()
        if not version.isdigit() or int(version) >= len(lines):
            raise StorageError("no such version")
        return json.loads(lines[int(version)])

    def describe(self):
        return "broken store with password " + {secret!r}
'''


@pytest.mark.parametrize("flaw, must_fail", [
    ("drops_empty_groups", {"test_round_trip_is_exact", "test_round_trip_of_osa_shaped_inventory"}),
    ("bools_as_ints", {"test_round_trip_is_exact"}),
    ("sorts_lists", {"test_round_trip_is_exact"}),
    ("ignores_overwrite", {"test_overwrite_with_smaller_inventory_removes_the_rest",
                           "test_load_sees_writes_of_another_instance"}),
    ("versions_on_identical", {"test_identical_rewrite_adds_no_version"}),
    ("lock_not_exclusive", {"test_lock_is_exclusive_across_instances"}),
])
def test_command_line_catches_a_broken_plugin(tmp_path, flaw, must_fail):
    plugin = plugin_folder(tmp_path, BROKEN_TEMPLATE.format(flaw=flaw, secret="s3cr3t"))
    result = run_contract(plugin, "--option", "password=s3cr3t", "-k", " or ".join(sorted(must_fail)))
    assert result.returncode == 1, result.stdout[-3000:]
    assert failed_tests(result) == must_fail, result.stdout[-3000:]


def test_command_line_flags_a_secret_in_describe(tmp_path):
    plugin = plugin_folder(tmp_path, BROKEN_TEMPLATE.format(flaw="lock_not_exclusive", secret="s3cr3t"))
    leaked = run_contract(plugin, "--option", "password=s3cr3t", "-k", "describe")
    assert failed_tests(leaked) == {"test_describe_is_one_line_without_secrets"}, leaked.stdout[-3000:]
    other = run_contract(plugin, "--option", "password=different", "-k", "describe")
    assert other.returncode == 0 and summary(other)["passed"] == 1, other.stdout[-3000:]


def test_command_line_refuses_a_group_writable_plugin(tmp_path):
    plugin = plugin_folder(tmp_path, open(SAMPLE).read(), "sqlite_store")
    os.chmod(plugin, 0o664)
    result = run_contract(plugin, "-k", "load_is_none")
    assert result.returncode == 1
    assert "writable by group or others" in result.stdout


def test_command_line_rejects_bad_arguments(tmp_path):
    result = run_contract(str(tmp_path / "nothing.py"))
    assert result.returncode == 2 and "neither a .py file nor a package folder" in result.stderr
    plugin = plugin_folder(tmp_path, open(SAMPLE).read(), "sqlite_store")
    result = run_contract(plugin, "--option", "novalue")
    assert result.returncode == 2 and "is not KEY=VALUE" in result.stderr


# -- the example plugin printed in docs/writing-plugins.md ---------------------

def doc_example() -> str:
    """The code block that follows the ``<!-- example-plugin -->`` marker in the doc."""
    text = open(DOC, encoding="utf-8").read()
    match = re.search(r"<!-- example-plugin -->\s*```python\n(.*?)```", text, re.S)
    assert match, "docs/writing-plugins.md lost its marked example plugin"
    return match.group(1)


def test_the_documented_example_plugin_passes_the_contract(tmp_path):
    plugin = plugin_folder(tmp_path, doc_example(), "json_folder")
    result = run_contract(plugin, "--option", "folder={tmp}")
    counts = summary(result)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert counts["passed"] >= 12 and counts["failed"] == 0, counts


def test_the_documented_contract_commands_work_as_written(tmp_path):
    """docs/writing-plugins.md's two command lines, run from the checkout as printed.

    They name the checkout's .venv; scripts/run-tests-pythons.py runs each Python version
    in a .venv-py3.X of its own instead, and then that one stands in for it."""
    venv_python = ".venv/bin/python"
    prefix = f"PYTHONPATH=lib {venv_python} -m osa_inventory.testing "
    if not os.path.exists(os.path.join(ROOT, venv_python)):
        if sys.prefix == sys.base_prefix:
            pytest.skip("the commands use the checkout's .venv, which scripts/run-tests.sh creates")
        venv_python = sys.executable
    text = open(DOC, encoding="utf-8").read()
    block = re.search(r"<!-- contract-commands -->\s*```sh\n(.*?)```", text, re.S)
    assert block, "docs/writing-plugins.md lost its marked contract commands"
    commands = [c for c in block.group(1).replace("\\\n", " ").splitlines() if c.strip()]
    assert len(commands) == 2 and all(c.startswith(prefix) for c in commands), commands
    commands = [f"PYTHONPATH=lib {venv_python}" + c[len("PYTHONPATH=lib .venv/bin/python"):] for c in commands]
    # The first names where a deployer keeps the doc's example plugin; keep it in a folder of our own.
    plugin = plugin_folder(tmp_path, doc_example(), "json_folder")
    commands[0] = commands[0].replace("/etc/openstack_deploy/inventory_plugins/json_folder.py", plugin)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "PYTHON"))}
    for command in commands:
        result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, cwd=ROOT,
                                timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        assert summary(result)["passed"] >= 12 and summary(result)["failed"] == 0
    assert "test_bad_options_are_refused_with_one_clear_line PASSED" in result.stdout  # the -v run
