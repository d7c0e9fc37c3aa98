"""Shared helpers for the inventory-manage tests (this module holds no tests).

A ``Deployment`` is a config folder copied from tests/fixtures/manage/ into a
tmp folder, with an osa.ini selecting the filesystem backend; the real
scripts run against it as subprocesses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "manage")
MANAGE = os.path.join(ROOT, "scripts", "inventory-manage.py")
INVENTORY_SCRIPT = os.path.join(ROOT, "playbooks", "inventory", "dynamic_inventory.py")
ENVIRONMENT = os.path.join(ROOT, "playbooks", "inventory")
INVENTORY = "openstack_inventory.json"
BACKUPS = "backup_openstack_inventory.tar"


def clean_env(extra: dict | None = None) -> dict:
    """The test's environment without any OSA_* / ANSIBLE_* setting of the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_"))}
    env.update(extra or {})
    return env


class Deployment:
    """A config folder and the osa.ini that goes with it."""

    def __init__(self, root: str, fixture: str = "small", ini_text: str | None = None):
        self.root = root
        self.config_dir = os.path.join(root, "config")
        shutil.copytree(os.path.join(FIXTURES, fixture), self.config_dir)
        self.ini = os.path.join(root, "osa.ini")
        self.write_ini(ini_text or "[inventory]\nbackend = filesystem\n")

    def write_ini(self, text: str) -> None:
        with open(self.ini, "w", encoding="utf-8") as fh:
            fh.write(text)

    @property
    def inventory_path(self) -> str:
        return os.path.join(self.config_dir, INVENTORY)

    def stored(self, folder: str | None = None) -> dict:
        with open(os.path.join(folder or self.config_dir, INVENTORY), encoding="utf-8") as fh:
            return json.load(fh)

    def config(self) -> dict:
        with open(os.path.join(self.config_dir, "openstack_user_config.yml"), encoding="utf-8") as fh:
            return yaml.safe_load(fh)

    def save_config(self, config: dict) -> None:
        with open(os.path.join(self.config_dir, "openstack_user_config.yml"), "w", encoding="utf-8") as fh:
            yaml.safe_dump(config, fh, sort_keys=False)

    def manage(self, *args: str, env: dict | None = None, config: bool = True) -> subprocess.CompletedProcess:
        """Run scripts/inventory-manage.py (with --config unless ``config`` is false)."""
        cmd = [sys.executable, MANAGE] + (["--config", self.config_dir] if config else []) + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                              env=clean_env({"OSA_INI": self.ini, **(env or {})}))

    def generate(self, env: dict | None = None) -> dict:
        """Run the real dynamic_inventory.py --list; it must succeed."""
        proc = subprocess.run([sys.executable, INVENTORY_SCRIPT, "--config", self.config_dir, "--list"],
                              capture_output=True, text=True, timeout=120,
                              env=clean_env({"OSA_INI": self.ini, **(env or {})}))
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""
        return json.loads(proc.stdout)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 1, nothing on stdout, one ERROR line on stderr containing every fragment."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ERROR: ")
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def in_cidr(address: str, cidr: str) -> bool:
    import ipaddress
    return ipaddress.ip_address(address) in ipaddress.ip_network(cidr)


def snapshot(path: str) -> tuple:
    """Content, inode and mtime of a file: equal snapshots mean it was not rewritten."""
    st = os.stat(path)
    with open(path, "rb") as fh:
        return fh.read(), st.st_ino, st.st_mtime_ns
