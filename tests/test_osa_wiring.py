"""The deploy-host wiring shipped in etc/ansible/ gives every host what OSA's own wiring gives it.

``etc/ansible/osa-inventory.rc`` is sourced by a real bash, as a deployer's is,
and ansible-core runs with what it sets, against a deploy host written here with
the structure of OpenStack-Ansible's (its inventory folder with ``inventory.ini``,
``group_vars/`` as files and as folders, ``all/``, vars of generated groups,
``host_vars/``; the deployment config folder with its own ``group_vars/``,
``host_vars/`` and ``inventory.ini``), with names and values of our own. Each
host's variables and each group through our wiring must equal what OSA's wiring
gives for the same generated inventory (:func:`osa_deploy_host.osa_wiring_list`).
test_osa_wiring_real.py does the same against OSA's real tree, test_packaging.py
with the installed console command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap

import pytest

from ansible_cli import ANSIBLE_INVENTORY, BIN, our_stderr
from helpers import ROOT, SCRIPT
from osa_deploy_host import (RC, DeployHost, clean_env, collapsed, differences, osa_wiring_list, our_list,
                             playbook, printed_inventory, wired)

EXAMPLE = os.path.join(ROOT, "etc", "openstack_deploy", "aio")
ANSIBLE_PLAYBOOK = shutil.which("ansible-playbook", path=BIN) or shutil.which("ansible-playbook")
OSA_SCRIPT_RAN = "OSA-SCRIPT-RAN"

pytestmark = pytest.mark.skipif(ANSIBLE_INVENTORY is None, reason="ansible-core is not installed")

# The deploy host of these tests: every file has OSA's place and kind, the names and values are ours.
OSA_FOLDER = {
    "inventory.ini": """\
        # The static part, laid out as OpenStack-Ansible's inventory/inventory.ini is.
        [all]
        localhost ansible_connection=local

        [physical_hosts:children]
        hosts
        [hosts]

        [galera_all]
        [keystone_all]
        [utility_all]

        [wiring_static_parent:children]
        wiring_static_child
        [wiring_static_child]
        """,
    "group_vars/all/first.yml": "wiring_all_first: from the all folder\nwiring_overridden: OSA default\n",
    "group_vars/all/second.yml": "wiring_all_second: [1, 2]\n",
    "group_vars/all_containers.yml": "wiring_containers_only: true\n",
    "group_vars/hosts.yml": "wiring_hosts_only: true\n",
    "group_vars/physical_hosts.yml": "wiring_physical: true\n",
    "group_vars/keystone_all/defaults.yml": "wiring_keystone_port: 5000\n",
    "group_vars/keystone_all/service.yml": "wiring_keystone_service: {name: keystone, backends: [a, b]}\n",
    "group_vars/galera_all.yml": "wiring_galera: '{{ wiring_all_first }} and galera'\n",
    "group_vars/wiring_static_parent.yml": "wiring_static_parent: 1\n",
    "host_vars/localhost/main.yml": "wiring_localhost: true\n",
    "host_vars/aio1.yml": "wiring_aio1: OSA default\n",
}
CONFIG_FOLDER = {
    "inventory.ini": """\
        [all]

        [wiring_deployer_group]
        aio1
        """,
    "group_vars/all.yml": "wiring_overridden: deployer\nwiring_deployer: true\n",
    "group_vars/keystone_all.yml": "wiring_keystone_port: 5001\n",
    "group_vars/wiring_deployer_group.yml": "wiring_deployer_group: true\n",
    "host_vars/aio1.yml": "wiring_aio1: deployer\n",
}
# OSA's generator sits in its inventory folder; our wiring must never run it.
OSA_SCRIPT = f"""\
    #!/bin/sh
    touch "$(dirname "$0")/{OSA_SCRIPT_RAN}"
    echo '{{}}'
    """


def write_tree(root: str, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(textwrap.dedent(text))


def deploy_host(tmp_path) -> DeployHost:
    """OSA's inventory folder and a config folder (the aio example) laid out as on a deploy host."""
    osa = tmp_path / "openstack-ansible" / "inventory"
    write_tree(str(osa), OSA_FOLDER)
    write_tree(str(osa), {"dynamic_inventory.py": OSA_SCRIPT})
    os.chmod(osa / "dynamic_inventory.py", 0o755)
    config = tmp_path / "openstack_deploy"
    shutil.copytree(EXAMPLE, config)
    write_tree(str(config), CONFIG_FOLDER)
    ini = tmp_path / "osa.ini"
    ini.write_text("[inventory]\nbackend = filesystem\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return DeployHost(str(osa), str(config), str(ini), str(scratch))


def assert_wired_like_osa(command: str, tmp_path) -> None:
    """Through the rc with ``command``: every host and group as through OSA's wiring, silently."""
    host = deploy_host(tmp_path)
    printed = printed_inventory(host, [command])
    ours, result = our_list(host, command)
    assert our_stderr(result.stderr) == "", result.stderr
    assert differences(ours, osa_wiring_list(host, printed)) == []

    hostvars = ours["_meta"]["hostvars"]
    keystone = next(h for h in hostvars if "keystone" in h and hostvars[h].get("physical_host") == "aio1")
    assert hostvars[keystone]["wiring_keystone_port"] == 5001  # the config folder's group_vars win
    assert hostvars[keystone]["wiring_keystone_service"] == {"name": "keystone", "backends": ["a", "b"]}
    assert hostvars[keystone]["wiring_overridden"] == "deployer"
    assert hostvars[keystone]["wiring_all_second"] == [1, 2] and hostvars[keystone]["wiring_containers_only"]
    assert "wiring_physical" not in hostvars[keystone] and "wiring_hosts_only" not in hostvars[keystone]
    assert hostvars["aio1"]["wiring_physical"] and hostvars["aio1"]["wiring_hosts_only"]
    assert hostvars["aio1"]["wiring_aio1"] == "deployer" and hostvars["aio1"]["wiring_deployer_group"]
    assert hostvars["localhost"]["ansible_connection"] == "local" and hostvars["localhost"]["wiring_localhost"]
    assert "wiring_physical" not in hostvars["localhost"]
    assert ours["wiring_static_parent"]["children"] == ["wiring_static_child"]
    assert ours["physical_hosts"]["children"] == ["hosts"]  # OSA's static part: aio1 is physical through it
    assert not os.path.exists(os.path.join(host.osa_inventory, OSA_SCRIPT_RAN)), "OSA's own script was run"


def assert_failure_reported_once(command: str, tmp_path) -> None:
    """A broken config: every Ansible command through the rc stops with our one line, shown once."""
    host = deploy_host(tmp_path)
    with open(os.path.join(host.config_dir, "openstack_user_config.yml"), "a") as fh:
        fh.write("broken: [\n")
    for tool, args in ((ANSIBLE_INVENTORY, ["--graph"]), (ANSIBLE_PLAYBOOK, ["--list-hosts", playbook(host)])):
        result = wired(host, command, tool, *args)
        shown = collapsed(result.stderr)
        assert result.returncode != 0 and "aio1" not in result.stdout, (tool, result.stdout, result.stderr)
        assert shown.count("openstack_user_config.yml") == 1 and shown.count("syntax error") == 1, result.stderr
        assert "Completely failed to parse inventory source" in shown and os.path.basename(command) in shown
        for plugin in ("ini", "osa_ini", "yaml", "auto", "toml"):
            assert f"'{plugin}' plugin" not in shown and f"with {plugin} plugin" not in shown, result.stderr
    assert not os.path.exists(os.path.join(host.osa_inventory, OSA_SCRIPT_RAN)), "OSA's own script was run"


def test_every_host_gets_what_osa_wiring_gives_it(tmp_path):
    assert_wired_like_osa(SCRIPT, tmp_path)


def test_a_failed_inventory_run_is_reported_once_and_stops_ansible(tmp_path):
    assert_failure_reported_once(SCRIPT, tmp_path)


def test_the_playbook_command_sees_every_host(tmp_path):
    host = deploy_host(tmp_path)
    result = wired(host, SCRIPT, ANSIBLE_PLAYBOOK, "--list-hosts", playbook(host))
    assert result.returncode == 0 and our_stderr(result.stderr, ANSIBLE_PLAYBOOK) == "", result.stderr
    listed = {line.strip() for line in result.stdout.splitlines()}
    generated = set(json.loads(printed_inventory(host, [SCRIPT]))["_meta"]["hostvars"])
    assert generated | {"localhost"} <= listed


def test_a_config_folder_without_inventory_ini_still_gives_its_vars(tmp_path):
    # OSA's openstack-ansible command creates it only when group_vars/ or host_vars/ exist.
    host = deploy_host(tmp_path)
    os.remove(os.path.join(host.config_dir, "inventory.ini"))
    ours, result = our_list(host, SCRIPT)
    assert our_stderr(result.stderr) == "", result.stderr
    assert ours["_meta"]["hostvars"]["aio1"]["wiring_aio1"] == "deployer"
    assert ours["_meta"]["hostvars"]["aio1"]["wiring_deployer"] is True
    assert "wiring_deployer_group" not in ours


def test_a_wrong_osa_inventory_path_stops_ansible_naming_it(tmp_path):
    """Without OSA's inventory folder every role would run without its defaults: never silently."""
    host = deploy_host(tmp_path)
    host.osa_inventory = str(tmp_path / "not-there" / "inventory")
    result = wired(host, SCRIPT, ANSIBLE_INVENTORY, "--graph")
    assert result.returncode != 0 and "aio1" not in result.stdout
    assert f"{host.osa_inventory}/inventory.ini" in collapsed(result.stderr)


def test_another_static_inventory_ini_must_exist(tmp_path):
    host = deploy_host(tmp_path)
    os.remove(os.path.join(host.osa_inventory, "inventory.ini"))
    result = wired(host, SCRIPT, ANSIBLE_INVENTORY, "--graph")
    assert result.returncode != 0 and f"{host.osa_inventory}/inventory.ini" in collapsed(result.stderr)


def test_the_rc_keeps_other_inventory_plugins_and_can_be_sourced_twice(tmp_path):
    env = clean_env(str(tmp_path))
    env["ANSIBLE_INVENTORY_PLUGINS"] = "/srv/my-plugins"
    shown = subprocess.run(["bash", "-c", '. "$1"; . "$1"; echo "$ANSIBLE_INVENTORY_PLUGINS"', "bash", RC],
                           capture_output=True, text=True, env=env, check=True).stdout.strip()
    assert shown == os.path.join(ROOT, "etc", "ansible", "inventory_plugins") + ":/srv/my-plugins"
    # The documented defaults, and the names of OSA's rc (OSA_INVENTORY_PATH) and of our own.
    script = '. "$1"; echo "$ANSIBLE_INVENTORY"; echo "$ANSIBLE_INVENTORY_ENABLED"'
    default = subprocess.run(["bash", "-c", script, "bash", RC], capture_output=True, text=True,
                             env=clean_env(str(tmp_path)), check=True).stdout.split()
    assert default == ["/opt/osa-inventory/bin/openstack-ansible-inventory,/opt/openstack-ansible/inventory/"
                       "inventory.ini,/etc/openstack_deploy/inventory.ini", "script,osa_ini"]
    env = clean_env(str(tmp_path))
    env.update(OSA_INVENTORY_PATH="/a", OSA_INVENTORY_COMMAND="/b/cmd", OSA_CONFIG_DIR="/c")
    chosen = subprocess.run(["bash", "-c", script, "bash", RC], capture_output=True, text=True, env=env,
                            check=True).stdout.split()
    assert chosen[0] == "/b/cmd,/a/inventory.ini,/c/inventory.ini"
    env["OSA_INVENTORY_STATIC"] = "/d/static.ini"
    chosen = subprocess.run(["bash", "-c", script, "bash", RC], capture_output=True, text=True, env=env,
                            check=True).stdout.split()
    assert chosen[0] == "/b/cmd,/d/static.ini,/c/inventory.ini"

