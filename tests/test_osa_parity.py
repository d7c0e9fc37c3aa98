"""Configs OpenStack-Ansible accepts give OSA's inventory, through the real script.

Each fixture config here is written for this project; each test asserts the
groups, memberships and hostvars OSA produces for that layout.
"""

import json
import os

from helpers import base_config, load_json, run_script, write_config, write_ini

INVENTORY = "openstack_inventory.json"


def run_ok(config_dir, ini):
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return json.loads(result.stdout)


# -- conf.d and env.d sub-folders -------------------------------------------------------------------


def test_hosts_in_a_conf_d_sub_folder_are_in_the_inventory(tmp_path):
    config_dir = str(tmp_path / "deploy")
    config = base_config()
    del config["compute_hosts"]
    write_config(config_dir, config)
    write_config(os.path.join(config_dir, "conf.d", "site"),
                 {"compute_hosts": {"compute7": {"ip": "172.29.236.27"}}}, "hosts.yml")
    write_config(os.path.join(config_dir, "conf.d", "site", "rack2"),
                 {"compute_hosts": {"compute8": {"ip": "172.29.236.28"}}}, "hosts.yaml")
    inv = run_ok(config_dir, write_ini(str(tmp_path)))
    assert set(inv["compute_hosts"]["hosts"]) == {"compute7", "compute8"}
    assert {"compute7", "compute8"} <= set(inv["nova_compute"]["hosts"])
    assert inv["_meta"]["hostvars"]["compute8"]["ansible_host"] == "172.29.236.28"


def test_a_sub_folder_file_wins_over_the_folders_own_files(tmp_path):
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, base_config())
    write_config(os.path.join(config_dir, "conf.d"), {"global_overrides": {"site_name": "top-z"}}, "z.yml")
    write_config(os.path.join(config_dir, "conf.d", "a-site"), {"global_overrides": {"site_name": "a-site"}},
                 "vars.yml")
    inv = run_ok(config_dir, write_ini(str(tmp_path)))
    assert inv["all"]["vars"]["site_name"] == "a-site"
    assert inv["all"]["vars"]["management_bridge"] == "br-mgmt"  # merged, not replaced


def test_env_d_sub_folder_of_the_config_overrides_the_skeleton(tmp_path):
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, base_config())
    write_config(os.path.join(config_dir, "env.d", "site"),
                 {"container_skel": {"galera_container": {"properties": {"is_metal": True}}}}, "galera.yml")
    inv = run_ok(config_dir, write_ini(str(tmp_path)))
    assert {"infra1", "infra2"} <= set(inv["galera"]["hosts"])
    assert not inv["galera_container"]["hosts"]


def test_a_broken_link_in_conf_d_is_one_line_and_nothing_is_written(tmp_path):
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, base_config())
    os.makedirs(os.path.join(config_dir, "conf.d", "site"))
    link = os.path.join(config_dir, "conf.d", "site", "hosts.yml")
    os.symlink(os.path.join(config_dir, "moved.yml"), link)
    ini = write_ini(str(tmp_path))
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 1 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"ERROR: {link} is a link to {config_dir}/moved.yml, which does not exist; fix or remove the link"]
    assert not os.path.exists(os.path.join(config_dir, INVENTORY))
    os.remove(link)
    assert run_ok(config_dir, ini)["compute_hosts"]["hosts"] == ["compute1"]
    assert load_json(os.path.join(config_dir, INVENTORY))["compute_hosts"]["hosts"] == ["compute1"]
