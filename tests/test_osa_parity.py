"""Configs OpenStack-Ansible accepts give OSA's inventory, through the real script.

Each fixture config here is written for this project; each test asserts the
groups, memberships and hostvars OSA produces for that layout.
"""

import ipaddress
import json
import os
import random

from helpers import base_config, containers_of, load_json, run_script, write_config, write_ini

INVENTORY = "openstack_inventory.json"


def run_ok(config_dir, ini):
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return json.loads(result.stdout)


def as_osa_stored(inv, cidrs, seed=9):
    """``inv`` as OSA would have stored it: random name suffixes, container addresses drawn elsewhere.

    OSA picks both at random; we hand them out from the bottom of each pool, so the OSA-style copy
    takes its addresses from the top of each pool instead, and nothing in it matches what a fresh
    run of ours would choose.
    """
    rng = random.Random(seed)
    hostvars = inv["_meta"]["hostvars"]
    renames = {}
    for name, hv in hostvars.items():
        if hv.get("physical_host") not in (None, name):
            renames[name] = f"{name.rsplit('-', 1)[0]}-{rng.getrandbits(32):08x}"
    networks = [ipaddress.ip_network(c) for c in cidrs.values()]
    next_top = {net: int(net.broadcast_address) - 1 for net in networks}
    readdress = {}
    for name in sorted(renames):
        for entry in hostvars[name]["container_networks"].values():
            if "address" not in entry:
                continue
            net = next(n for n in networks if ipaddress.ip_address(entry["address"]) in n)
            readdress[entry["address"]] = str(ipaddress.ip_address(next_top[net]))
            next_top[net] -= 1
    text = json.dumps(inv)
    for old, new in list(renames.items()) + list(readdress.items()):
        text = text.replace(f'"{old}"', f'"{new}"')
    return json.loads(text)


def adopts_unchanged(config_dir, ini, stored):
    """Store ``stored`` as OSA would, run the script: same inventory printed, file not rewritten."""
    path = os.path.join(config_dir, INVENTORY)
    with open(path, "w") as fh:
        json.dump(stored, fh, indent=4, sort_keys=True)
    before = os.stat(path).st_mtime_ns
    assert run_ok(config_dir, ini) == stored
    assert os.stat(path).st_mtime_ns == before
    assert not os.path.exists(os.path.join(config_dir, "backup_openstack_inventory.tar"))


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


# -- dashed group_binds ---------------------------------------------------------------------------


def test_dashed_group_binds_bind_the_underscored_group(tmp_path):
    config_dir = str(tmp_path / "deploy")
    config = base_config()
    storage = config["global_overrides"]["provider_networks"][2]["network"]
    storage["group_binds"] = ["glance-api", "cinder-api", "cinder_volume", "nova-compute"]
    write_config(config_dir, config)
    ini = write_ini(str(tmp_path))
    inv = run_ok(config_dir, ini)
    hostvars = inv["_meta"]["hostvars"]
    for name in inv["glance_api"]["hosts"] + inv["cinder_api"]["hosts"]:
        entry = hostvars[name]["container_networks"]["storage_address"]
        assert entry["interface"] == "eth2" and entry["bridge"] == "br-storage"
        assert ipaddress.ip_address(entry["address"]) in ipaddress.ip_network("172.29.244.0/22")
    assert hostvars["compute1"]["container_networks"]["storage_address"] == {
        "bridge": "br-storage", "type": "veth", "netmask": "255.255.252.0"}
    # Keystone is bound by none of them.
    keystone = [n for n in containers_of(inv, "infra1") if "keystone" in n]
    assert keystone and "storage_address" not in hostvars[keystone[0]]["container_networks"]
    adopts_unchanged(config_dir, ini, as_osa_stored(inv, config["cidr_networks"]))
