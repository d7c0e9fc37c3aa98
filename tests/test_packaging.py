"""The installable package: a wheel built from this checkout, installed into a fresh venv outside it.

The wheel (and the sample plugin's distribution) is built once per session
from a copy of the checkout, without build isolation; the requirements are
fetched once into a local wheelhouse, and every venv installs from there
with ``--no-index``. Marked slow: ``scripts/run-tests.sh -m "not slow"``
leaves this module out.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import zipfile

import pytest

from craton_server import CratonServer
from etcd_server import etcd  # noqa: F401  (fixture)
from helpers import ENVIRONMENT, ROOT, SCRIPT
from ansible_cli import ANSIBLE_INVENTORY

from test_osa_wiring import assert_failure_reported_once, assert_wired_like_osa

from osa_inventory import api

# The wheel is pure Python (py3-none-any): the same files, metadata and entry points whichever Python
# builds or installs it, and the code it installs is the checkout's, which every version's suite tests. The
# fresh virtualenvs and pip installs here are the suite's heaviest CPU: one version's suite runs them.
pytestmark = [pytest.mark.slow, pytest.mark.once]

EXAMPLE = os.path.join(ROOT, "etc", "openstack_deploy", "aio")
COPY_IGNORE = shutil.ignore_patterns(".venv", ".venv-py3.*", ".git", "__pycache__", "build", "*.egg-info",
                                     "inventory-out", ".tox", "dist")


def run(cmd: list[str], timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a deploy host: no OSA_*, no PYTHONPATH pointing into the checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "PYTHON", "ANSIBLE_", "VIRTUAL_ENV"))}
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> str:
    """Wheels of this project, of the sample plugin and of every requirement, in one folder."""
    base = tmp_path_factory.mktemp("wheelhouse")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=COPY_IGNORE)  # setuptools writes build/ and egg-info: not into ROOT
    house = base / "house"
    pip = [sys.executable, "-m", "pip"]
    for project in (source, source / "examples" / "plugins"):
        built = run(pip + ["wheel", "-q", "--no-build-isolation", "--no-deps", "-w", str(house), str(project)])
        assert built.returncode == 0, built.stderr
    # The one network step: the requirements from the package index (pip's cache makes repeats cheap),
    # as wheels, so that installing needs no build (pluginbase is published as source only).
    fetched = run(pip + ["wheel", "-q", "-w", str(house), "-r", os.path.join(ROOT, "requirements.txt"),
                         "setuptools>=70.1", "pytest"])
    if fetched.returncode != 0:
        pytest.skip(f"cannot fetch the requirements from the package index: {fetched.stderr.strip()[-300:]}")
    return str(house)


def pip_in(bin_dir: str, *args: str) -> subprocess.CompletedProcess:
    """pip (this Python's) acting on the venv of ``bin_dir``, offline."""
    return run([sys.executable, "-m", "pip", "--python", os.path.join(bin_dir, "python"), *args], env=clean_env())


@pytest.fixture(scope="session")
def venv(wheelhouse, tmp_path_factory) -> str:
    """The bin folder of a fresh venv holding the wheel (and pytest, for the contract suite)."""
    path = tmp_path_factory.mktemp("deploy") / "venv"
    # Without its own pip (ensurepip costs more than everything else here); pip_in() installs into it.
    made = run([sys.executable, "-m", "venv", "--without-pip", str(path)])
    assert made.returncode == 0, made.stderr
    bin_dir = os.path.join(str(path), "bin")
    installed = pip_in(bin_dir, "install", "-q", "--no-index", "--find-links", wheelhouse, "osa-inventory", "pytest")
    assert installed.returncode == 0, installed.stderr
    return bin_dir


def site_packages(bin_dir: str) -> str:
    found = run([os.path.join(bin_dir, "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    return found.stdout.strip()


def deploy_folder(tmp_path, ini_text: str) -> tuple[str, dict]:
    """A copy of the aio example config and an osa.ini; returns the folder and the environment."""
    config = tmp_path / "config"
    shutil.copytree(EXAMPLE, config)
    ini = tmp_path / "osa.ini"
    ini.write_text(ini_text)
    return str(config), clean_env(OSA_INI=str(ini))


def reference_inventory(tmp_path) -> dict:
    """What the checkout script generates for the aio example."""
    config, env = deploy_folder(tmp_path / "reference", "[inventory]\nbackend = filesystem\n")
    result = run([sys.executable, SCRIPT, "--config", config], env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# -- the wheel ------------------------------------------------------------------

def test_the_wheel_holds_every_module_the_plugins_and_env_d(wheelhouse):
    wheel = next(f for f in os.listdir(wheelhouse) if f.startswith("osa_inventory-") and f.endswith(".whl"))
    names = set(zipfile.ZipFile(os.path.join(wheelhouse, wheel)).namelist())
    lib = os.path.join(ROOT, "lib")
    expected = set()
    for folder, dirs, files in os.walk(os.path.join(lib, "osa_inventory")):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        expected |= {os.path.relpath(os.path.join(folder, f), lib) for f in files if f.endswith(".py")}
    expected |= {f"osa_inventory/plugins/{f}" for f in os.listdir(os.path.join(lib, "plugins")) if f.endswith(".py")}
    expected |= {f"osa_inventory/environment/env.d/{f}" for f in os.listdir(os.path.join(ENVIRONMENT, "env.d"))}
    assert expected - names == set(), "missing from the wheel (add the package to pyproject.toml)"
    assert any(n.endswith("entry_points.txt") for n in names)


def test_installed_metadata_lists_the_requirements_and_both_commands(venv):
    """pyproject.toml takes its dependencies from requirements.txt: the installed metadata says the same."""
    probe = run([os.path.join(venv, "python"), "-c",
                 "import json, importlib.metadata as m; d = m.distribution('osa-inventory'); "
                 "print(json.dumps([d.requires, "
                 "sorted(e.name for e in d.entry_points if e.group == 'console_scripts')]))"],
                cwd="/")
    requires, commands = json.loads(probe.stdout)
    wanted = [line.strip() for line in open(os.path.join(ROOT, "requirements.txt"))
              if line.strip() and not line.startswith("#")]
    assert sorted(requires) == sorted(wanted)
    assert commands == ["openstack-ansible-inventory", "openstack-ansible-inventory-manage"]


# -- the console commands ---------------------------------------------------------

def test_console_commands_run_the_example_from_the_installed_package(venv, tmp_path):
    config, env = deploy_folder(tmp_path, "[inventory]\nbackend = filesystem\n")
    inventory = os.path.join(venv, "openstack-ansible-inventory")
    manage = os.path.join(venv, "openstack-ansible-inventory-manage")
    for command, words in ((inventory, ("--config DIR", "--check")), (manage, ("--list-backends", "--migrate-to"))):
        helped = run([command, "--help"], env=env, cwd=str(tmp_path))
        assert helped.returncode == 0 and all(w in helped.stdout for w in words), helped.stderr
        assert os.path.basename(command) in helped.stdout.splitlines()[0]
    result = run([inventory, "--config", config, "--list"], env=env, cwd=str(tmp_path))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert json.loads(result.stdout) == reference_inventory(tmp_path)
    assert run([inventory, "--config", config, "--check"], env=env).stdout.strip() == "Configuration ok!"
    planned = run([manage, "--config", config, "--plan"], env=env, cwd=str(tmp_path))  # the packaged env.d too
    assert planned.returncode == 0 and planned.stdout.startswith("no changes: "), planned.stdout + planned.stderr
    listed = run([manage, "--config", config, "--list-host", "--format", "json"], env=env, cwd=str(tmp_path))
    assert listed.returncode == 0, listed.stderr
    assert "aio1" in {row["container_name"] for row in json.loads(listed.stdout)}
    # A change through the console command is recorded as inventory-manage, as the checkout script's are.
    group = sorted(g for g in json.loads(result.stdout) if g not in ("_meta", "all"))[0]
    removed = run([manage, "--config", config, "-d", group, "--reason", "packaged"], env=env, cwd=str(tmp_path))
    assert removed.returncode == 0, removed.stderr
    history = json.loads(run([manage, "--config", config, "--history", "--format", "json"], env=env).stdout)
    assert [(v["command"], v["reason"]) for v in history] == [("dynamic_inventory", ""),
                                                             (f"inventory-manage -d {group}", "packaged")]
    # The built-in plugins and env.d come from the venv, not from this checkout.
    backends = run([manage, "--list-backends", "--format", "json"], env=env, cwd=str(tmp_path))
    rows = {row["name"]: row for row in json.loads(backends.stdout)}
    assert set(rows) == {"filesystem", "etcd", "craton", "netbox"}
    where = site_packages(venv)
    assert all(row["source"] == "built-in" and row["where"].startswith(where) for row in rows.values()), rows
    assert (rows["filesystem"]["lock"], rows["filesystem"]["history"]) == (True, True)
    probe = run([os.path.join(venv, "python"), "-c", "import osa_inventory.resources as r; "
                 "print(r.environment_dir()); print(r.plugins_dir())"], env=env, cwd="/")
    assert probe.stdout.split() == [os.path.join(where, "osa_inventory", "environment"),
                                    os.path.join(where, "osa_inventory", "plugins")]


def test_console_commands_print_the_package_version(venv, tmp_path):
    version = run([os.path.join(venv, "python"), "-c", "import osa_inventory; print(osa_inventory.__version__)"],
                  cwd="/").stdout.strip()
    for command in ("openstack-ansible-inventory", "openstack-ansible-inventory-manage"):
        shown = run([os.path.join(venv, command), "--version"], env=clean_env(), cwd=str(tmp_path))
        assert (shown.returncode, shown.stdout, shown.stderr) == (0, f"{command} {version}\n", "")


def test_installed_advice_names_the_console_commands_and_runs_as_printed(venv, tmp_path):
    """No venv on PATH (README's install): advice names each console command by its full path."""
    config, env = deploy_folder(tmp_path, "[inventory]\nbackend = filesystem\n")
    inventory = os.path.join(venv, "openstack-ansible-inventory")
    manage = os.path.join(venv, "openstack-ansible-inventory-manage")
    env["PATH"] = "/usr/bin:/bin"
    # Nothing stored yet: inventory-manage says which command stores a first inventory.
    empty = run([manage, "--config", config, "-l"], env=env, cwd=str(tmp_path))
    advice = re.search(r"; run (.+) first or bring one in", empty.stderr)
    assert empty.returncode == 1 and advice, empty.stderr
    assert shlex.split(advice.group(1)) == [inventory, "--config", config]
    first = run(shlex.split(advice.group(1)), env=env, cwd=str(tmp_path))  # as printed
    assert first.returncode == 0 and first.stderr == "", first.stderr
    # A second version, then the current file damaged: the run names the restore command.
    user_config = os.path.join(config, "openstack_user_config.yml")
    with open(user_config) as fh:
        text = fh.read()
    with open(user_config, "w") as fh:
        fh.write(text.replace("compute_hosts: *aio\n", "compute_hosts:\n  aio1:\n    ip: 172.29.236.100\n"
                                                        "  compute9:\n    ip: 172.29.236.29\n"))
    second = run([inventory, "--config", config], env=env)
    assert second.returncode == 0 and "compute9" in json.loads(second.stdout)["_meta"]["hostvars"]
    with open(os.path.join(config, "openstack_inventory.json"), "w") as fh:
        fh.write("damaged")
    failed = run([inventory, "--config", config], env=env, cwd=str(tmp_path))
    restore = re.search(r"restore it with '([^']+)'", failed.stderr)
    assert failed.returncode == 1 and restore, failed.stderr
    words = shlex.split(restore.group(1))
    assert words[:4] == [manage, "--config", config, "--restore"], words
    restored = run(words, env=env, cwd=str(tmp_path))  # as printed
    assert restored.returncode == 0, restored.stderr
    with open(os.path.join(config, "openstack_inventory.json")) as fh:
        assert json.load(fh) == json.loads(first.stdout)  # the newest good backup: the first version


def test_console_commands_on_the_etcd_and_craton_backends(venv, etcd, tmp_path):  # noqa: F811
    reference = reference_inventory(tmp_path)
    craton = CratonServer().start()
    try:
        options = "".join(f"{k} = {v}\n" for k, v in craton.options().items())
        for backend, section in (("etcd", f"[etcd]\nendpoints = {etcd.endpoints_text}\nprefix = /package/aio\n"),
                                 ("craton", f"[craton]\n{options}")):
            config, env = deploy_folder(tmp_path / backend, f"[inventory]\nbackend = {backend}\n{section}")
            first = run([os.path.join(venv, "openstack-ansible-inventory"), "--config", config], env=env)
            assert first.returncode == 0 and first.stderr == "", (backend, first.stderr)
            assert json.loads(first.stdout) == reference
            assert not os.path.exists(os.path.join(config, "openstack_inventory.json"))
            exported = run([os.path.join(venv, "openstack-ansible-inventory-manage"), "--config", config,
                            "--export"], env=env)
            assert exported.returncode == 0, (backend, exported.stderr)
            assert set(json.loads(exported.stdout)["hosts"]) == set(reference["_meta"]["hostvars"])
    finally:
        craton.stop()


@pytest.mark.skipif(ANSIBLE_INVENTORY is None, reason="ansible-core is not installed")
def test_ansible_reads_the_console_command_with_the_shipped_wiring(venv, tmp_path):
    assert_wired_like_osa(os.path.join(venv, "openstack-ansible-inventory"), tmp_path)


@pytest.mark.skipif(ANSIBLE_INVENTORY is None, reason="ansible-core is not installed")
def test_a_failed_console_command_is_reported_once_through_the_shipped_wiring(venv, tmp_path):
    # The console command's file has no extension: the stock "yaml" plugin would take it too.
    assert_failure_reported_once(os.path.join(venv, "openstack-ansible-inventory"), tmp_path)


def contract(venv: str, tmp_path, plugin: str, options: list[str], bad: str) -> subprocess.CompletedProcess:
    """The contract suite's command line, as docs/writing-plugins.md gives it, from the installed package.

    Run by the venv's Python outside the checkout, so only the installed osa_inventory.testing is there.
    The 3000-host case is left out: it tests the same bytes in-tree, and the size, not the install.
    """
    os.makedirs(tmp_path, exist_ok=True)
    args = [a for option in options for a in ("--option", option)] + ["--bad-option", bad]
    return run([os.path.join(venv, "python"), "-m", "osa_inventory.testing", plugin, *args, "-q", "-rs",
                "-k", "not large_inventory"], env=clean_env(), cwd=str(tmp_path), timeout=900)


def assert_contract_passed(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"\d+ passed", result.stdout) and " failed" not in result.stdout, result.stdout[-2000:]
    assert "no bad options given" not in result.stdout


def test_installed_builtin_plugins_keep_the_contract(venv, etcd, tmp_path):  # noqa: F811
    plugins = os.path.join(site_packages(venv), "osa_inventory", "plugins")
    assert_contract_passed(contract(venv, tmp_path / "fs", os.path.join(plugins, "filesystem.py"), [],
                                    "backups=-1"))
    assert_contract_passed(contract(venv, tmp_path / "etcd", os.path.join(plugins, "etcd.py"),
                                    [f"endpoints={etcd.endpoints_text}", "prefix=/contract/{unique}"],
                                    "endpoints=ftp://127.0.0.1:1"))
    craton = CratonServer().start()
    try:
        # Each test gets its own region, so each starts from an empty store.
        opts = [f"{k}={v}" for k, v in craton.options().items() if k != "region"] + ["region=r{unique}"]
        assert_contract_passed(contract(venv, tmp_path / "craton", os.path.join(plugins, "craton.py"), opts,
                                        "url=ftp://example.org"))
    finally:
        craton.stop()


def test_the_api_and_a_ported_helper_run_from_the_installed_package(venv, tmp_path):
    config, env = deploy_folder(tmp_path, "[inventory]\nbackend = filesystem\n")
    printed = run([os.path.join(venv, "openstack-ansible-inventory"), "--config", config], env=env)
    assert printed.returncode == 0, printed.stderr
    inventory = json.loads(printed.stdout)
    # Outside the checkout, with no PYTHONPATH: only the installed osa_inventory can answer.
    read = run([os.path.join(venv, "python"), "-c", "import json; from osa_inventory import api\n"
                "with api.open_inventory() as inv: print(json.dumps([api.API_VERSION, inv.to_ansible()]))"],
               env={**env, "OSA_CONFIG_DIR": config}, cwd=str(tmp_path))
    assert read.returncode == 0 and read.stderr == "", read.stderr
    assert json.loads(read.stdout) == [list(api.API_VERSION), inventory]  # the checkout's API is the one installed
    helper = run([os.path.join(venv, "python"), os.path.join(ROOT, "examples", "helpers", "inventory_stored.py"),
                  "--config", config], env=env, cwd=str(tmp_path))
    assert helper.returncode == 0 and helper.stderr == "", helper.stderr
    assert helper.stdout == (f"an inventory of {len(inventory['_meta']['hostvars'])} hosts is stored in "
                             f"filesystem {config}/openstack_inventory.json\n")


# -- the sample plugin as a distribution --------------------------------------------------

@pytest.fixture
def sample_installed(venv, wheelhouse):
    """The sample plugin's distribution installed into the venv for one test, uninstalled after it."""
    installed = pip_in(venv, "install", "-q", "--no-index", "--find-links", wheelhouse, "osa-inventory-sqlite-store")
    assert installed.returncode == 0, installed.stderr
    yield venv
    pip_in(venv, "uninstall", "-y", "-q", "osa-inventory-sqlite-store")


def test_the_sample_plugin_distribution_is_selected_by_name(sample_installed, tmp_path):
    bin_dir = sample_installed
    config, env = deploy_folder(tmp_path, "[inventory]\nbackend = sqlite_store\n"
                                          "[sqlite_store]\ndatabase = inventory.sqlite3\n")
    result = run([os.path.join(bin_dir, "openstack-ansible-inventory"), "--config", config], env=env)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert json.loads(result.stdout) == reference_inventory(tmp_path)
    # A relative path written in osa.ini is relative to osa.ini's folder (tmp_path).
    assert os.path.getsize(tmp_path / "inventory.sqlite3") > 0
    assert not os.path.exists(os.path.join(config, "openstack_inventory.json"))
    manage = os.path.join(bin_dir, "openstack-ansible-inventory-manage")
    listed = run([manage, "--list-backends", "--format", "json"], env=env)
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["sqlite_store"]["source"] == "distribution"
    assert rows["sqlite_store"]["where"] == "osa-inventory-sqlite-store 1.0.0 (sqlite_store:Storage)"
    assert (rows["sqlite_store"]["lock"], rows["sqlite_store"]["history"]) == (True, True)
    history = run([manage, "--config", config, "--history", "--format", "json"], env=env)
    assert history.returncode == 0 and len(json.loads(history.stdout)) == 1, history.stderr

    # The same name also as a drop-in file: refused, naming both, on every command.
    folder = tmp_path / "plugins"
    folder.mkdir(mode=0o755)
    shutil.copy(os.path.join(ROOT, "examples", "plugins", "sqlite_store.py"), folder)
    env["OSA_INVENTORY_PLUGIN_PATHS"] = str(folder)
    clash = run([os.path.join(bin_dir, "openstack-ansible-inventory"), "--config", config], env=env)
    assert clash.returncode == 1 and clash.stdout == "" and clash.stderr.count("\n") == 1, clash.stderr
    assert "defined twice" in clash.stderr and str(folder / "sqlite_store.py") in clash.stderr
    assert "osa-inventory-sqlite-store 1.0.0" in clash.stderr
    listed = run([manage, "--list-backends"], env=env)
    assert listed.returncode == 0 and "defined twice" in listed.stdout
    # Its advice, followed (pip uninstall the distribution), resolves it: the drop-in file serves.
    uninstalled = pip_in(bin_dir, "uninstall", "-y", "-q", "osa-inventory-sqlite-store")
    assert uninstalled.returncode == 0, uninstalled.stderr
    again = run([os.path.join(bin_dir, "openstack-ansible-inventory"), "--config", config], env=env)
    assert again.returncode == 0 and again.stderr == "", again.stderr


def test_a_pip_installed_plugins_own_tests_import_the_contract_suite(sample_installed, tmp_path):
    """A plugin distribution's test suite, as docs/writing-plugins.md shows it, against the installed packages."""
    suite = tmp_path / "plugin-tests"
    suite.mkdir()
    (suite / "conftest.py").write_text('import pytest\n\npytest.register_assert_rewrite("osa_inventory.testing")\n')
    (suite / "test_sqlite_store.py").write_text(textwrap.dedent("""
        import pytest
        import sqlite_store
        from osa_inventory.testing import StorageContract


        class TestInstalledSqliteStore(StorageContract):
            large_hosts = 100

            @pytest.fixture
            def make_storage(self, tmp_path):
                def make():
                    storage = sqlite_store.Storage()
                    storage.register({"config_dir": str(tmp_path), "database": "inv.sqlite3"})
                    return storage
                return make

            @pytest.fixture
            def register_failures(self, tmp_path):
                return [lambda: sqlite_store.Storage().register({"config_dir": str(tmp_path), "keep": "all"})]
    """))
    result = run([os.path.join(sample_installed, "python"), "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                  str(suite)], env=clean_env(), cwd=str(suite), timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) >= 19 and "failed" not in result.stdout and "skipped" not in result.stdout
