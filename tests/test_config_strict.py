"""Config mistakes that OSA ignores or only warns about are refused, through the real script.

Each case: exit status 1, one ``ERROR:`` line naming the file and key or
value and what to do, nothing on stdout, no inventory written. The fix the
line suggests is then applied and the run succeeds.
"""

from __future__ import annotations

import copy
import json
import os
import time

import pytest
from helpers import base_config, run_script, write_config, write_ini

INVENTORY = "openstack_inventory.json"
USER_CONFIG = "openstack_user_config.yml"


def refused(result, *words: str) -> str:
    assert result.returncode == 1, (result.stdout[:200], result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def run(tmp_path, config: dict | None = None, *args: str, text: str | None = None, ini_text: str | None = None):
    folder = tmp_path / "config"
    folder.mkdir(exist_ok=True)
    if text is not None:
        (folder / USER_CONFIG).write_text(text)
    elif config is not None:
        write_config(str(folder), config)
    ini = write_ini(str(tmp_path), ini_text or "[inventory]\nbackend = filesystem\n")
    return run_script(str(folder), *args, ini=ini)


def nothing_written(tmp_path) -> bool:
    return not os.path.exists(tmp_path / "config" / INVENTORY)


def test_misspelt_host_group_is_refused_with_the_closest_name(tmp_path):
    config = base_config()
    config["shared_infra_host"] = config.pop("shared_infra_hosts")
    refused(run(tmp_path, config), USER_CONFIG, "shared_infra_host holds hosts but is no host group",
            "did you mean shared_infra_hosts?")
    assert nothing_written(tmp_path)
    config["shared_infra_hosts"] = config.pop("shared_infra_host")
    assert run(tmp_path, config).returncode == 0


def test_check_refuses_it_too_and_the_key_in_conf_d_is_named(tmp_path):
    config = base_config()
    folder = tmp_path / "config"
    write_config(str(folder / "conf.d"), {"shared_infra_host": config.pop("shared_infra_hosts")}, "infra.yml")
    refused(run(tmp_path, config, "--check"), "conf.d/infra.yml: shared_infra_host")


def test_warn_mode_keeps_osa_leniency_and_says_so(tmp_path):
    # The refusal's other advice, followed: the near miss is kept, with a warning in --check and the log.
    config = base_config()
    config["comptue_hosts"] = {"extra1": {"ip": "172.29.236.40"}}
    line = refused(run(tmp_path, config), "comptue_hosts is a near miss of env.d's group compute_hosts")
    assert line.endswith("(if comptue_hosts is meant, declare it as a group in env.d or set "
                         "[inventory] unknown_host_groups = warn)")
    ini = "[inventory]\nbackend = filesystem\nunknown_host_groups = warn\n"
    checked = run(tmp_path, config, "--check", ini_text=ini)
    assert checked.returncode == 0 and checked.stderr == "", checked.stderr
    assert checked.stdout.splitlines()[:3] == [
        "Configuration ok!",
        "User-defined host groups (env.d does not know them; as in OSA, each is a group of its hosts and gives "
        "them no containers):",
        "  comptue_hosts: extra1"]
    assert "WARNING: " in checked.stdout and "comptue_hosts is a near miss" in checked.stdout
    listed = run(tmp_path, config, "-d", ini_text=ini)
    assert listed.returncode == 0 and listed.stderr == ""
    assert json.loads(listed.stdout)["comptue_hosts"] == {"hosts": ["extra1"]}
    with open(tmp_path / "config" / "inventory.log") as fh:
        assert "comptue_hosts is a near miss" in fh.read()


def test_unknown_group_binds_entry(tmp_path):
    config = base_config()
    config["global_overrides"]["provider_networks"][2]["network"]["group_binds"].append("nova_compte")
    refused(run(tmp_path, config), "group_binds entry 'nova_compte' names no group", "did you mean nova_compute?")
    # Dashes are read as underscores, as OSA does: glance-api is glance_api.
    config["global_overrides"]["provider_networks"][2]["network"]["group_binds"][-1] = "glance-api"
    ok = run(tmp_path, config)
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize("ip", ["10.20.0.1311", "not-an-ip", [1, 2], "172.29.236.0/24", "1.2.3.4; rm -rf /"])
def test_host_ip_must_be_an_address(tmp_path, ip):
    config = base_config()
    config["compute_hosts"]["compute1"]["ip"] = ip
    refused(run(tmp_path, config), "compute_hosts: host compute1: ip", "is not an IP address")
    assert nothing_written(tmp_path)


def test_management_ip_must_be_an_address(tmp_path):
    config = base_config()
    config["compute_hosts"]["compute1"]["management_ip"] = "10.0.0.300"
    refused(run(tmp_path, config), "management_ip '10.0.0.300' is not an IP address")


@pytest.mark.parametrize("text, shown", [
    ('"": {ip: 172.29.236.21}', "''"),
    ('"compute 1": {ip: 172.29.236.21}', "'compute 1'"),
    ('"comp\\tute": {ip: 172.29.236.21}', "'comp\\tute'"),
    ('"a/b": {ip: 172.29.236.21}', "'a/b'"),
    ('"-compute": {ip: 172.29.236.21}', "'-compute'"),
    ("true: {ip: 172.29.236.21}", "True"),
    ("~: {ip: 172.29.236.21}", "None"),
])
def test_host_names_must_be_inventory_names(tmp_path, text, shown):
    config = base_config()
    del config["compute_hosts"]
    import yaml
    body = yaml.safe_dump(config, sort_keys=False) + "compute_hosts:\n  " + text + "\n"
    refused(run(tmp_path, text=body), f"host name {shown}")
    assert nothing_written(tmp_path)


def test_duplicate_yaml_key_names_key_and_line(tmp_path):
    import yaml
    body = yaml.safe_dump(base_config(), sort_keys=False)
    body += "compute_hosts:\n  compute2:\n    ip: 172.29.236.22\n"
    line = refused(run(tmp_path, text=body), "duplicate key 'compute_hosts'", "merge the two")
    first = body.splitlines().index("compute_hosts:") + 1
    last = len(body.splitlines()) - 2
    assert f"{USER_CONFIG}:{last}:" in line and f"first at line {first}" in line


def test_overlapping_networks_are_refused_naming_both(tmp_path):
    config = base_config()
    config["cidr_networks"]["storage"] = "172.29.238.0/24"   # inside management 172.29.236.0/22
    refused(run(tmp_path, config), "cidr_networks.management (172.29.236.0/22)",
            "cidr_networks.storage (172.29.238.0/24) overlap")


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0", "127.0.0.0/8"])
def test_whole_space_pools_are_refused(tmp_path, cidr):
    config = base_config()
    config["cidr_networks"]["tunnel"] = cidr
    refused(run(tmp_path, config), f"cidr_networks.tunnel = {cidr}")


def test_ipv6_pool_hands_out_ipv6_addresses(tmp_path):
    config = base_config()
    config["cidr_networks"]["storage"] = "fd00::/120"
    config["used_ips"] = config["used_ips"][:2]
    result = run(tmp_path, config)
    assert result.returncode == 0, result.stderr
    inv = json.loads(result.stdout)
    found = [net["address"] for hv in inv["_meta"]["hostvars"].values()
             for net in (hv.get("container_networks") or {}).values()
             if net.get("bridge") == "br-storage" and net.get("address")]
    assert found and all(a.startswith("fd00::") for a in found), found


@pytest.mark.parametrize("route, words", [
    ({"cidr": "10.0.0.0/33", "gateway": "172.29.236.1"}, "cidr '10.0.0.0/33' is not a network"),
    ({"cidr": "10.0.0.0/8", "gateway": "gw"}, "gateway 'gw' is not an IPv4 address"),
    ({"cidr": "10.0.0.0/8", "gateway": "fd00::1"}, "gateway 'fd00::1' is not an IPv4 address"),
])
def test_static_routes_are_validated(tmp_path, route, words):
    config = base_config()
    config["global_overrides"]["provider_networks"][0]["network"]["static_routes"] = [route]
    refused(run(tmp_path, config), "static_routes[0]", words)


def test_used_ips_as_one_string_is_one_entry(tmp_path):
    config = base_config()
    config["used_ips"] = "172.29.236.1,172.29.236.200"
    result = run(tmp_path, config)
    assert result.returncode == 0, result.stderr
    inv = json.loads(result.stdout)
    mgmt = [hv["management_address"] for hv in inv["_meta"]["hostvars"].values()
            if not hv.get("is_metal") and hv.get("management_address")]
    assert mgmt and all(int(a.rsplit(".", 1)[1]) > 200 for a in mgmt), mgmt


def test_huge_affinity_is_refused_at_once(tmp_path):
    config = base_config()
    config["shared_infra_hosts"]["infra1"]["affinity"] = {"galera_container": 100000000}
    started = time.monotonic()
    refused(run(tmp_path, config), "affinity galera_container: 100000000", "from 0 to 100")
    assert time.monotonic() - started < 60  # a guard against hanging, not a performance assertion


def test_alias_bomb_is_refused(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    refused(run(tmp_path, text="\n".join(lines) + "\n"), USER_CONFIG, "more than 2,000,000 values")


def test_recursive_alias_is_refused(tmp_path):
    refused(run(tmp_path, text="loop: &l [*l]\n"), USER_CONFIG, "refers to the value that contains it")


def test_huge_file_is_refused_before_parsing(tmp_path):
    folder = tmp_path / "config"
    folder.mkdir()
    with open(folder / USER_CONFIG, "w") as fh:
        fh.write("# padding\n" * (5 * 1024 * 1024))   # 50 MB
    refused(run(tmp_path), "larger than 16 MiB")


def test_check_reports_every_problem(tmp_path):
    config = base_config()
    config["shared_infra_host"] = config.pop("shared_infra_hosts")
    config["compute_hosts"]["compute1"]["ip"] = "not-an-ip"
    config["cidr_networks"]["storage"] = "172.29.238.0/24"
    result = run(tmp_path, config, "--check")
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 3 and all(line.startswith("ERROR: ") for line in lines), lines
    assert any("shared_infra_host" in x for x in lines) and any("not-an-ip" in x for x in lines)
    assert any("overlap" in x for x in lines)
    # A normal run reports the first only.
    refused(run(tmp_path, config))


def test_config_is_reread_after_waiting_for_the_lock(tmp_path):
    import fcntl
    import subprocess
    import sys

    from helpers import ROOT, SCRIPT

    config = base_config()
    folder = tmp_path / "config"
    write_config(str(folder), config)
    ini = write_ini(str(tmp_path))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_"))}
    env["OSA_INI"] = ini
    fd = os.open(folder, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # the filesystem backend's lock: another run holds it
    try:
        proc = subprocess.Popen([sys.executable, SCRIPT, "--config", str(folder), "--list"], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)   # the run has read the config and waits for the lock
        changed = copy.deepcopy(config)
        changed["compute_hosts"]["compute2"] = {"ip": "172.29.236.22"}
        write_config(str(folder), changed)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "compute2" in json.loads(out)["_meta"]["hostvars"]
    with open(folder / INVENTORY) as fh:
        assert "compute2" in json.load(fh)["_meta"]["hostvars"]


@pytest.mark.parametrize("value, fixed, words", [
    ("!!set {a, b}", "'{a, b}'", ("all.vars.extra is a set", "quote it")),
    ("2024-01-01", "'2024-01-01'", ("all.vars.extra is a date (2024-01-01)", "quote it")),
    ("{1: a, b: c}", "{'1': a, b: c}", ("all.vars.extra mixes keys that do not sort together (1, 'b')", "quote it")),
    ("{2024-01-01: a}", "{'2024-01-01': a}", ("all.vars.extra has a key that is a date (2024-01-01)", "quote it")),
])
def test_values_json_cannot_hold_are_refused_and_the_advice_works(tmp_path, value, fixed, words):
    """A YAML value the inventory (JSON) cannot hold or sort was an 'unexpected TypeError' when printing; where
    the inventory never shows it (an unknown top-level key, OSA ignores it) it is accepted."""
    import yaml
    body = yaml.safe_dump(base_config(), sort_keys=False)
    assert "global_overrides:\n" in body
    broken = body.replace("global_overrides:\n", f"global_overrides:\n  extra: {value}\n", 1)
    refused(run(tmp_path, text=broken), "the inventory cannot be printed as JSON", *words)
    assert nothing_written(tmp_path)
    refused(run(tmp_path, None, "--check", text=broken), *words)  # --check says it too
    done = run(tmp_path, text=broken.replace(f"extra: {value}", f"extra: {fixed}"))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert json.loads(done.stdout)["all"]["vars"]["extra"] == yaml.safe_load(fixed)


def test_values_json_cannot_print_are_accepted_where_the_inventory_never_shows_them(tmp_path):
    import yaml
    body = yaml.safe_dump(base_config(), sort_keys=False) + "updated: 2024-01-01\nnotes: !!set {a}\n"
    done = run(tmp_path, text=body)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "updated" not in json.loads(done.stdout)["all"].get("vars", {})
