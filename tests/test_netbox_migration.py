"""Migration to and from NetBox (issue 27 item 6), against the real test NetBox: --migrate-to netbox
from the filesystem backend and back, verified by read-back, switching rewrites nothing, and a
progress line only on a terminal.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
import time

import json

from test_manage_support import INVENTORY_SCRIPT, MANAGE, Deployment, clean_env
from netbox_heavy import heavy

from osa_inventory.progress import on_terminal, report
from osa_inventory.testing import assert_same
from test_netbox_plugin import deployment  # noqa: F401 (a fixture)

SECTION = """[inventory]
backend = {backend}
[filesystem]
[netbox]
{options}
"""


def manage(dep: Deployment, *args: str, env: dict) -> subprocess.CompletedProcess:
    """inventory-manage with time for NetBox's writes (about 45 objects a second)."""
    return subprocess.run([sys.executable, MANAGE, "--config", dep.config_dir, *args], capture_output=True,
                          text=True, timeout=900, env=clean_env({"OSA_INI": dep.ini, **env}))


def generate(dep: Deployment, env: dict) -> dict:
    proc = subprocess.run([sys.executable, INVENTORY_SCRIPT, "--config", dep.config_dir, "--list"],
                          capture_output=True, text=True, timeout=900, env=clean_env({"OSA_INI": dep.ini, **env}))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr  # the inventory script says nothing
    return json.loads(proc.stdout)


def only_the_lock_warning(stderr: str) -> bool:
    """inventory-manage's stderr holds nothing but the warning every plugin without lock() gets."""
    return all("has no lock()" in line for line in stderr.splitlines())


def ini_for(backend: str, options: dict) -> str:
    lines = "\n".join(f"{k} = {v}" for k, v in options.items() if k not in ("token", "config_dir"))
    return SECTION.format(backend=backend, options=lines)


@heavy
def test_migrate_to_netbox_and_back(netbox, deployment, tmp_path):  # noqa: F811
    dep = Deployment(str(tmp_path / "host"))
    env = {"OSA_INVENTORY_NETBOX_TOKEN": netbox.write_token}
    dep.write_ini(ini_for("filesystem", deployment))
    original = dep.generate()
    proc = manage(dep, "--migrate-to", "netbox", "--reason", "to NetBox (OPS-9)", env=env)
    assert proc.returncode == 0 and only_the_lock_warning(proc.stderr), proc.stderr
    assert "read back: identical" in proc.stdout and netbox.write_token not in proc.stdout
    dep.write_ini(ini_for("netbox", deployment))
    assert generate(dep, env) == original
    listed = manage(dep, "--history", "--format", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "to NetBox (OPS-9)" in listed.stdout
    os.unlink(dep.inventory_path)
    back = manage(dep, "--migrate-to", "filesystem", env=env)
    assert back.returncode == 0 and only_the_lock_warning(back.stderr), back.stderr
    assert_same(dep.stored(), original)


def test_the_progress_line_shows_only_on_a_terminal():
    lines = []

    class Terminal:
        def isatty(self):
            return True

        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    with on_terminal(Terminal()):
        report("NetBox: creating dcim/devices: 0 of 3000")
    assert any("creating dcim/devices: 0 of 3000" in line for line in lines)
    assert lines[-1] == "\r\x1b[K"  # the line is cleared at the end, so the result prints on its own
    quiet = []

    class Pipe(Terminal):
        def isatty(self):
            return False

        def write(self, text):
            quiet.append(text)

    with on_terminal(Pipe()):
        report("not shown")
    assert quiet == []


def test_a_new_step_is_drawn_at_once_and_counts_of_one_step_are_thinned(monkeypatch):
    """A quick step's line must not stay up over the slow request of the next step (the terminal
    would name the wrong work for as long as that request takes)."""
    from osa_inventory import progress

    lines = []

    class Terminal:
        def isatty(self):
            return True

        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    monkeypatch.setattr(progress.time, "monotonic", lambda: 1000.0)  # every report within MIN_INTERVAL
    with on_terminal(Terminal()):
        report("NetBox: creating dcim/sites: 0 of 1")
        report("NetBox: creating dcim/devices: 0 of 3000")
        report("NetBox: creating dcim/devices: 250 of 3000")
    drawn = [line for line in lines if line != "\r\x1b[K"]
    assert [line.split("creating ")[1] for line in drawn] == \
        ["dcim/sites: 0 of 1", "dcim/devices: 0 of 3000"]


@heavy
def test_a_migration_on_a_terminal_shows_progress(netbox, deployment, tmp_path):  # noqa: F811
    dep = Deployment(str(tmp_path / "host"))
    dep.write_ini(ini_for("filesystem", deployment))
    dep.generate()
    env = clean_env({"OSA_INI": dep.ini, "OSA_INVENTORY_NETBOX_TOKEN": netbox.write_token})
    leader, follower = pty.openpty()
    arrived: list[tuple[float, bytes]] = []

    def read_terminal() -> None:
        # Read while the migration runs: the terminal is seen as a person sees it, and never fills up.
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                return
            if not chunk:
                return
            arrived.append((time.monotonic(), chunk))

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        proc = subprocess.Popen([sys.executable, MANAGE, "--config", dep.config_dir, "--migrate-to", "netbox"],
                                stdout=subprocess.PIPE, stderr=follower, env=env)
        os.close(follower)
        follower = None
        out, _ = proc.communicate(timeout=900)
        ended = time.monotonic()
        reader.join(timeout=30)
    finally:
        if follower is not None:
            os.close(follower)
        os.close(leader)
    shown = b"".join(chunk for _, chunk in arrived)
    assert proc.returncode == 0, shown
    assert b"read back: identical" in out
    # Seen while the migration wrote, not only in what was left behind, and cleared at the end.
    while_writing = b"".join(chunk for at, chunk in arrived if at < ended)
    assert b"creating dcim/devices" in while_writing, shown[-300:]
    assert shown.endswith(b"\r\x1b[K"), shown[-300:]
