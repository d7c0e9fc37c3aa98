"""inventory-manage --plan: what the next inventory run would store, through the real scripts.

Each test walks a deployment on the filesystem backend through several config
changes, checking the exit status (0 no change, 2 changes, 1 error), the lines
and the JSON, and that a plan writes nothing.
"""

from __future__ import annotations

import json
import os
import shlex

import pytest

from test_manage_support import BACKUPS, Deployment, assert_one_line_error, in_cidr, snapshot

from osa_inventory.inventory.changes import assigned_addresses
from osa_inventory.manage import versions
from osa_inventory.storage.safe_files import flock_wait

JSON_KEYS = {"changed", "first_inventory", "backend", "config", "summary", "changes", "assigned_addresses",
             "lines", "stale", "warnings", "hosts", "groups", "reserved_addresses"}


def folder_state(d: Deployment) -> dict:
    """Every file of the config folder with its content, inode and mtime."""
    return {name: snapshot(os.path.join(d.config_dir, name)) for name in sorted(os.listdir(d.config_dir))
            if os.path.isfile(os.path.join(d.config_dir, name))}


def plan(d: Deployment, *extra: str) -> tuple[int, list[str], dict]:
    """--plan as a table and as JSON (which must agree); neither may write anything."""
    before = folder_state(d)
    table = d.manage("--plan", *extra)
    data = d.manage("--plan", "--format", "json", *extra)
    assert table.stderr == data.stderr == "", (table.stderr, data.stderr)
    assert table.returncode == data.returncode
    assert folder_state(d) == before, "--plan changed a file of the config folder"
    parsed = json.loads(data.stdout)
    assert set(parsed) == JSON_KEYS
    assert parsed["changed"] is (table.returncode == 2)
    body = [line for line in table.stdout.splitlines()[1:] if not line.startswith(("note: ", "warning: "))]
    assert body == parsed["lines"]
    return table.returncode, table.stdout.splitlines(), parsed


def test_first_unchanged_added_host_then_the_run_stores_exactly_the_plan(tmp_path):
    d = Deployment(str(tmp_path))
    status, lines, data = plan(d)
    assert status == 2 and data["first_inventory"] is True
    assert lines[0].endswith(f"holds no inventory yet; the next inventory run stores a first one of "
                             f"{data['hosts']} hosts and {data['groups']} groups:")
    assert not os.path.exists(d.inventory_path)
    first = d.generate()
    assert data["hosts"] == len(first["_meta"]["hostvars"])
    assert sorted(data["changes"]["hosts_added"]) == sorted(first["_meta"]["hostvars"])

    status, lines, data = plan(d)
    assert status == 0 and not data["changed"] and data["lines"] == [] and data["summary"] == "no change"
    assert lines == [f"no changes: the config in {d.config_dir} gives exactly the inventory stored in "
                     f"filesystem {d.inventory_path}; the next inventory run stores nothing"]

    d.manage("-r", "compute1")  # makes the backup archive, which a plan must not touch either
    assert os.path.exists(os.path.join(d.config_dir, BACKUPS))
    config = d.config()
    config["shared_infra_hosts"]["infra3"] = {"ip": "172.29.236.13"}
    config["shared_infra_hosts"]["infra2"]["container_vars"] = {"rack": "r2"}
    d.save_config(config)
    status, lines, data = plan(d)
    assert status == 2
    assert lines[0].startswith(f"the next inventory run would change filesystem {d.inventory_path}: ")
    assert "+ host infra3" in lines and "+ host compute1" in lines  # removed by -r, still in the config
    galera = next(n for n in data["changes"]["hosts_added"] if n.startswith("infra3-galera-container-"))
    assert f"+ host {galera} (on infra3)" in lines
    addresses = data["assigned_addresses"][galera]
    assert set(addresses) == {"ansible_host", "management_address",
                              "container_networks.management_address.address",
                              "container_networks.tunnel_address.address"}
    assert in_cidr(addresses["ansible_host"], "172.29.236.0/22")
    assert in_cidr(addresses["container_networks.tunnel_address.address"], "172.29.240.0/22")
    at = lines.index(f"+ host {galera} (on infra3)")
    tunnel = addresses["container_networks.tunnel_address.address"]
    assert f'    + container_networks.tunnel_address.address: "{tunnel}"' in lines[at:at + 5]
    assert "infra2" in data["changes"]["vars_changed"] and '    + container_vars.rack: "r2"' not in lines
    assert lines[lines.index("~ host infra2") + 1] == '    + rack: "r2"'
    assert "~ group galera" in lines and f"    + host {galera}" in lines
    assert data["stale"] == [] and lines[-1].startswith("note: a plan is advice")

    # The run stores exactly what was planned: --diff of that write shows the plan's lines.
    stored = d.generate()
    assert set(stored["_meta"]["hostvars"]) >= set(data["changes"]["hosts_added"])
    assert stored["_meta"]["hostvars"][galera]["ansible_host"] == addresses["ansible_host"]
    diff = d.manage("--diff")
    assert diff.returncode == 0, diff.stderr
    assert diff.stdout.splitlines()[2:] == data["lines"]
    assert plan(d)[0] == 0


@pytest.mark.once
def test_removed_host_readdressing_and_the_printed_advice(tmp_path):
    d = Deployment(str(tmp_path))
    d.generate()
    config = d.config()
    config["compute_hosts"] = {"compute2": {"ip": "172.29.236.22"}}
    d.save_config({k: v for k, v in config.items() if k != "compute_hosts"})
    # A host taken out of the config is no change (runs keep it): exit 0, and a note says so.
    status, lines, data = plan(d)
    assert status == 0 and data["lines"] == [] and [s["name"] for s in data["stale"]] == ["compute1"]
    assert lines[0].startswith("no changes: ") and "compute1 (host is no longer in the config)" in lines[1]
    # New tunnel range; stored addresses stay until --clear-ips lets the next run assign new ones.
    config["cidr_networks"]["tunnel"] = "172.30.240.0/22"
    config["used_ips"] = ["172.29.236.1,172.29.236.50", "172.30.240.1,172.30.240.20"]
    d.save_config(config)
    status, lines, data = plan(d)
    assert status == 2 and data["changes"]["hosts_added"] == ["compute2"]
    assert data["changes"]["addressed"] == data["changes"]["readdressed"] == []
    assert data["stale"] == [{"name": "compute1", "physical_host": "compute1",
                              "reason": "host is no longer in the config"}]
    note = next(line for line in lines if "no longer produced" in line)
    assert "1 stored entry is no longer produced by the config and stays" in note and "compute1" in note
    advice = note.split("'")[1]
    command = shlex.split(advice.replace("NAME", "compute1"))
    assert command[1:] == ["--config", d.config_dir, "-r", "compute1"]
    assert d.manage(*command[1:], config=False).returncode == 0
    status, lines, data = plan(d)
    assert status == 2 and data["stale"] == [] and not any("no longer produced" in line for line in lines)

    assert d.manage("--clear-ips").returncode == 0
    status, lines, data = plan(d)
    assert status == 2 and data["changes"]["hosts_added"] == ["compute2"]
    galera = next(n for n in data["changes"]["addressed"] if "-galera-container-" in n)
    tunnel = data["assigned_addresses"][galera]["container_networks.tunnel_address.address"]
    assert in_cidr(tunnel, "172.30.240.0/22")
    assert f"~ host {galera}" in lines
    assert f'    + container_networks.tunnel_address.address: "{tunnel}"' in lines
    stored = d.generate()
    assert stored["_meta"]["hostvars"][galera]["container_networks"]["tunnel_address"]["address"] == tunnel


def test_errors_are_one_line_exit_1_and_write_nothing(tmp_path):
    d = Deployment(str(tmp_path))
    d.generate()
    config = d.config()
    config["comptue_hosts"] = {"compute9": {"ip": "172.29.236.29"}}
    d.save_config(config)
    before = folder_state(d)
    assert_one_line_error(d.manage("--plan"), "comptue_hosts", "compute_hosts")
    assert folder_state(d) == before
    # [inventory] unknown_host_groups = warn is honoured as by the run: the group is taken, with a warning.
    d.write_ini("[inventory]\nbackend = filesystem\nunknown_host_groups = warn\n")
    status, lines, data = plan(d)
    assert status == 2 and "+ group comptue_hosts: compute9" in lines
    assert [w for w in data["warnings"] if "comptue_hosts" in w and "did you mean compute_hosts?" in w]
    assert [line for line in lines if line.startswith("warning: ") and "comptue_hosts" in line]
    with open(d.inventory_path, "w") as fh:
        fh.write("{not json")
    before = folder_state(d)
    assert_one_line_error(d.manage("--plan"), d.inventory_path, "not valid JSON")
    # --plan never combines with a change, and its usage errors exit 1 (2 means "changes pending").
    assert_one_line_error(d.manage("--plan", "-r", "compute1"), "--plan", "-r/-d/--clear-ips")
    assert_one_line_error(d.manage("--pla", "--format", "xml"), "invalid choice: 'xml'")
    assert_one_line_error(d.manage("--plan=yes"), "--plan: ignored explicit argument 'yes'")
    assert d.manage("--bogus").returncode == 2  # other usage errors keep argparse's status
    assert folder_state(d) == before


def test_added_host_lines_and_assigned_addresses_in_process():
    old = {"_meta": {"hostvars": {"h": {"ansible_host": "10.0.0.1"},
                                  "c": {"physical_host": "h", "container_networks": {"m": {"address": None}}}}}}
    new = {"_meta": {"hostvars": {"h": {"ansible_host": "10.0.0.1"},
                                  "c": {"physical_host": "h", "container_networks": {"m": {"address": "10.0.0.3"}}},
                                  "c2": {"physical_host": "h", "ansible_host": "10.0.0.4",
                                         "container_networks": {"m": {"address": "10.0.0.4"}}}}}}
    assert assigned_addresses(old, new) == {
        "c": {"container_networks.m.address": "10.0.0.3"},
        "c2": {"ansible_host": "10.0.0.4", "container_networks.m.address": "10.0.0.4"}}
    assert versions.diff_lines(old, new)[:3] == ["+ host c2 (on h)", '    + ansible_host: "10.0.0.4"',
                                                 '    + container_networks.m.address: "10.0.0.4"']


def test_a_plan_takes_no_lock(tmp_path):
    # A run holding the lock (a playbook's inventory run, an edit) does not hold up a plan.
    d = Deployment(str(tmp_path))
    d.generate()
    d.write_ini("[inventory]\nbackend = filesystem\n[filesystem]\nlock_timeout = 0\n")
    with flock_wait(d.config_dir, 1, "test"):
        assert d.manage("-r", "compute1").returncode == 1  # a change waits for the lock: here, not at all
        planned = d.manage("--plan")
    assert planned.returncode == 0 and planned.stdout.startswith("no changes: "), planned.stderr
