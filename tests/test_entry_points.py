"""Storage plugins of installed distributions (entry point group osa_inventory.storage).

Each test lays out real distribution metadata (``NAME.dist-info`` with
``METADATA`` and ``entry_points.txt``) and the plugin module in a folder put
on PYTHONPATH, which is what pip leaves in site-packages, and runs the real
scripts. The wheel-installed case is in test_packaging.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest
from helpers import ROOT, base_config, run_script, write_config, write_ini

MANAGE = os.path.join(ROOT, "scripts", "inventory-manage.py")
SAMPLE = os.path.join(ROOT, "examples", "plugins", "sqlite_store.py")


def add_distribution(site, dist: str, version: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """What pip installs for a distribution: its modules and a dist-info folder naming its entry points."""
    site.mkdir(exist_ok=True)
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[osa_inventory.storage]\n{lines}")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source)


@pytest.fixture
def deploy(tmp_path):
    config = tmp_path / "config"
    write_config(str(config), base_config())
    return str(config), tmp_path / "site"


def ini_for(tmp_path, backend: str, extra: str = "") -> str:
    return write_ini(str(tmp_path), f"[inventory]\nbackend = {backend}\n{extra}")


def manage(*args: str, ini: str, site) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSA_")}
    env.update(OSA_INI=ini, PYTHONPATH=str(site))
    return subprocess.run([sys.executable, MANAGE, *args], capture_output=True, text=True, env=env, timeout=120)


def assert_one_line(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 1 and result.stdout == "", result.stdout
    assert result.stderr.startswith("ERROR: ") and result.stderr.count("\n") == 1, result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)


def test_a_distributions_plugin_is_selected_by_its_entry_point_name(deploy, tmp_path):
    config, site = deploy
    add_distribution(site, "osa-sqlite", "2.3", {"sqlite_store": "osa_sqlite:Storage"},
                     {"osa_sqlite": open(SAMPLE).read()})
    ini = ini_for(tmp_path, "sqlite_store", "[sqlite_store]\ndatabase = inv.sqlite3\n")
    result = run_script(config, ini=ini, env={"PYTHONPATH": str(site)})
    assert result.returncode == 0 and result.stderr == "", result.stderr
    # A relative path written in osa.ini is relative to osa.ini's folder.
    assert os.path.getsize(os.path.join(os.path.dirname(ini), "inv.sqlite3")) > 0
    assert not os.path.exists(os.path.join(config, "openstack_inventory.json"))
    listed = manage("--list-backends", "--format", "json", ini=ini, site=site)
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["sqlite_store"] == {"name": "sqlite_store", "source": "distribution",
                                    "where": "osa-sqlite 2.3 (osa_sqlite:Storage)", "lock": True, "history": True,
                                    "note": ""}
    assert [rows[n]["source"] for n in ("craton", "etcd", "filesystem")] == ["built-in"] * 3
    table = manage("--list-backends", ini=ini, site=site)
    assert table.returncode == 0 and table.stdout.rstrip().endswith(f"selected: backend sqlite_store (from {ini})")


@pytest.mark.parametrize("clash", ["folder", "builtin", "two_distributions"])
def test_a_name_defined_twice_is_refused_naming_both(deploy, tmp_path, clash):
    config, site = deploy
    name = "filesystem" if clash == "builtin" else "sqlite_store"
    add_distribution(site, "osa-sqlite", "2.3", {name: "osa_sqlite:Storage"}, {"osa_sqlite": open(SAMPLE).read()})
    extra, env, other = "", {"PYTHONPATH": str(site)}, ""
    if clash == "folder":
        folder = tmp_path / "plugins"
        folder.mkdir(mode=0o755)
        (folder / "sqlite_store.py").write_text(open(SAMPLE).read())
        extra, other = f"plugin_paths = {folder}\n", str(folder / "sqlite_store.py")
    elif clash == "builtin":
        other = os.path.join(ROOT, "lib", "plugins", "filesystem.py")
    else:
        add_distribution(site, "other-sqlite", "0.9", {name: "other_sqlite:Storage"},
                         {"other_sqlite": open(SAMPLE).read()})
        other = "other-sqlite 0.9"
    ini = ini_for(tmp_path, name, extra)
    result = run_script(config, ini=ini, env=env)
    assert_one_line(result, "defined twice", "osa-sqlite 2.3", other, "pip uninstall")
    assert os.listdir(config) == ["openstack_user_config.yml"]
    listed = manage("--list-backends", "--format", "json", ini=ini, site=site)
    assert listed.returncode == 0, listed.stderr
    note = {row["name"]: row for row in json.loads(listed.stdout)}[name]["note"]
    assert "defined twice" in note, note


def test_the_advice_for_a_clash_with_a_builtin_works(deploy, tmp_path):
    config, site = deploy
    add_distribution(site, "hijack", "1.0", {"filesystem": "hijack:Storage"}, {"hijack": open(SAMPLE).read()})
    ini = ini_for(tmp_path, "filesystem")
    assert_one_line(run_script(config, ini=ini, env={"PYTHONPATH": str(site)}), "pip uninstall hijack")
    # What pip uninstall removes: the distribution's files.
    for entry in site.iterdir():
        if entry.is_dir():
            for f in entry.iterdir():
                f.unlink()
            entry.rmdir()
        else:
            entry.unlink()
    result = run_script(config, ini=ini, env={"PYTHONPATH": str(site)})
    assert result.returncode == 0 and result.stderr == ""
    assert os.path.exists(os.path.join(config, "openstack_inventory.json"))


@pytest.mark.parametrize("source, words", [
    ("raise ImportError('needs the frobnicate module')\n", ("failed to import", "ImportError", "frobnicate")),
    ("import sys\nsys.exit(3)\n", ("failed to import", "SystemExit")),
    ("Storage = 42\n", ("defines no class Storage",)),
    ("class Storage:\n    def load(self):\n        return None\n", ("lacks register, write()",)),
])
def test_a_broken_distribution_plugin_is_one_line(deploy, tmp_path, source, words):
    config, site = deploy
    add_distribution(site, "broken-store", "0.1", {"broken": "broken_store:Storage"}, {"broken_store": source})
    ini = ini_for(tmp_path, "broken")
    assert_one_line(run_script(config, ini=ini, env={"PYTHONPATH": str(site)}), "broken-store 0.1", *words)
    assert os.listdir(config) == ["openstack_user_config.yml"]
    listed = manage("--list-backends", "--format", "json", ini=ini, site=site)
    row = {row["name"]: row for row in json.loads(listed.stdout)}["broken"]
    assert (row["lock"], row["history"]) == (None, None) and row["note"].startswith("ERROR: ")


def test_an_unknown_name_mentions_installed_distributions(deploy, tmp_path):
    config, _site = deploy
    result = run_script(config, ini=ini_for(tmp_path, "nosuch"))
    assert_one_line(result, "'nosuch'", "osa_inventory.storage", "pip install")


def test_a_deployer_folder_replacing_a_builtin_is_shown(deploy, tmp_path):
    config, site = deploy
    folder = tmp_path / "plugins"
    folder.mkdir(mode=0o755)
    (folder / "filesystem.py").write_text(open(os.path.join(ROOT, "lib", "plugins", "filesystem.py")).read())
    ini = ini_for(tmp_path, "filesystem", f"plugin_paths = {folder}\n")
    listed = manage("--list-backends", "--format", "json", ini=ini, site=site)
    row = {row["name"]: row for row in json.loads(listed.stdout)}["filesystem"]
    assert row["source"] == "folder" and row["where"] == str(folder / "filesystem.py")
    assert row["note"] == "used instead of the built-in one" and row["lock"] is True


def test_the_quick_scan_never_hides_a_distribution(tmp_path, monkeypatch):
    """installed() skips importlib.metadata only when no distribution can declare the group."""
    from osa_inventory.storage import discovery

    site = tmp_path / "site"
    add_distribution(site, "osa-egg-store", "1.0", {"egg_store": "egg_store:Storage"}, {})
    info = next(site.glob("*.dist-info"))
    info.rename(site / "osa_egg_store-1.0.egg-info")  # setuptools' older layout reads the same
    monkeypatch.setattr(sys, "path", [str(site)] + sys.path)
    assert [(e.name, e.distribution) for e in discovery.installed()] == [("egg_store", "osa-egg-store")]

    # Without it, and with a zip file on sys.path the scan cannot look into, metadata decides.
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(site)])
    assert discovery.installed() == []
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zipped_store-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: zipped-store\nVersion: 1.0\n")
        zf.writestr("zipped_store-1.0.dist-info/entry_points.txt", "[osa_inventory.storage]\nzipped = zs:Storage\n")
    monkeypatch.setattr(sys, "path", [str(archive)] + sys.path)
    assert [(e.name, e.distribution) for e in discovery.installed()] == [("zipped", "zipped-store")]
