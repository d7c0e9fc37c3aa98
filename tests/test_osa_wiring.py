"""The deploy-host wiring shipped in etc/ansible/: Ansible reads our inventory and the static part.

``etc/ansible/osa-inventory.rc`` is sourced by a real shell, as a deployer
does, and ``ansible-inventory`` (ansible-core) runs with the source list it
sets: the inventory script plus ``inventory/inventory.yml`` (localhost and
``physical_hosts``) with ``group_vars/`` and ``host_vars/`` beside it. The same
wiring with the installed console command is in test_packaging.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ansible_cli import ANSIBLE_INVENTORY, BIN, our_stderr
from helpers import ROOT, SCRIPT

RC = os.path.join(ROOT, "etc", "ansible", "osa-inventory.rc")
STATIC = os.path.join(ROOT, "etc", "ansible", "inventory")
EXAMPLE = os.path.join(ROOT, "etc", "openstack_deploy", "aio")

pytestmark = pytest.mark.skipif(ANSIBLE_INVENTORY is None, reason="ansible-core is not installed")


def deploy_host(tmp_path) -> dict[str, str]:
    """A deploy host's files: the aio config, osa.ini, and a copy of the shipped static inventory."""
    shutil.copytree(EXAMPLE, tmp_path / "openstack_deploy")
    shutil.copytree(STATIC, tmp_path / "ansible" / "inventory")
    (tmp_path / "ansible" / "osa.ini").write_text("[inventory]\nbackend = filesystem\n")
    host_vars = tmp_path / "ansible" / "inventory" / "host_vars"
    host_vars.mkdir()
    (host_vars / "aio1.yml").write_text("---\nfrom_host_vars: aio1 only\n")
    return {"OSA_CONFIG_DIR": str(tmp_path / "openstack_deploy"), "OSA_INI": str(tmp_path / "ansible" / "osa.ini"),
            "OSA_INVENTORY_STATIC": str(tmp_path / "ansible" / "inventory" / "inventory.yml")}


def wired(command: str, settings: dict[str, str], tmp_path, *args: str) -> subprocess.CompletedProcess:
    """``ansible-inventory ARGS`` in a shell that sourced the shipped rc file, as a deployer's would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_", "VIRTUAL_ENV"))}
    env.update(settings, OSA_INVENTORY_COMMAND=command, ANSIBLE_HOME=str(tmp_path / "ansible-home"),
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), PATH=BIN + os.pathsep + env.get("PATH", ""))
    return subprocess.run(["bash", "-c", '. "$1" && shift && exec ansible-inventory "$@"', "bash", RC, *args],
                          capture_output=True, text=True, env=env, timeout=300)


def assert_wired_graph(command: str, tmp_path) -> None:
    """The shared check: physical_hosts and localhost next to our groups, silent stderr, vars applied."""
    settings = deploy_host(tmp_path)
    graph = wired(command, settings, tmp_path, "--graph")
    assert graph.returncode == 0 and our_stderr(graph.stderr) == "", graph.stderr
    lines = [line.strip(" |-") for line in graph.stdout.splitlines()]
    assert "localhost" in lines and "@physical_hosts:" in lines and "@galera_all:" in lines
    physical = wired(command, settings, tmp_path, "--graph", "physical_hosts")
    assert physical.returncode == 0 and our_stderr(physical.stderr) == ""
    members = {line.strip(" |-") for line in physical.stdout.splitlines()}
    assert {"@hosts:", "aio1"} <= members and "localhost" not in members
    assert not any("container" in m for m in members), "containers are not physical hosts"
    host = wired(command, settings, tmp_path, "--host", "aio1")
    assert host.returncode == 0 and our_stderr(host.stderr) == ""
    assert '"osa_inventory_example_physical": true' in host.stdout  # group_vars/physical_hosts.yml
    assert '"from_host_vars": "aio1 only"' in host.stdout          # host_vars/aio1.yml
    local = wired(command, settings, tmp_path, "--host", "localhost")
    assert '"ansible_connection": "local"' in local.stdout and "osa_inventory_example_physical" not in local.stdout


def test_ansible_reads_the_script_and_the_static_part_without_a_warning(tmp_path):
    assert_wired_graph(SCRIPT, tmp_path)


def test_a_failed_inventory_run_stops_ansible_with_our_line_and_is_not_reparsed(tmp_path):
    settings = deploy_host(tmp_path)
    with open(os.path.join(settings["OSA_CONFIG_DIR"], "openstack_user_config.yml"), "a") as fh:
        fh.write("broken: [\n")
    result = wired(SCRIPT, settings, tmp_path, "--graph")
    assert result.returncode != 0 and result.stdout == ""
    assert "ERROR: " in result.stderr and "openstack_user_config.yml" in result.stderr
    assert "'ini' plugin" not in result.stderr and "'yaml' plugin" not in result.stderr, result.stderr
    assert "Completely failed to parse inventory source" in result.stderr
