"""Accounting and access on the NetBox plugin, against the real test NetBox: each write's who and why
goes into NetBox's changelog and --history; a read-only token runs unchanged inventories and --plan,
and a change it cannot write is refused in one line naming the token's user.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest

from netbox_heavy import heavy
from helpers import ROOT, base_config, run_script, write_config, write_ini
from osa_inventory.accounting import ChangeRecord
from osa_inventory.errors import AccessDenied
from osa_inventory.testing import assert_same, make_inventory
from test_netbox_ipam import ini_text
from test_netbox_plugin import deployment, make  # noqa: F401 (deployment is a fixture)

MANAGE = os.path.join(ROOT, "scripts", "inventory-manage.py")


@heavy
def test_who_and_why_go_into_netboxs_changelog_and_history(netbox, deployment):  # noqa: F811
    record = ChangeRecord(time="2026-12-07T20:00:00Z", user="alice", host="deploy1", command="inventory-manage -r x",
                          reason="ticket OPS-42", summary="1 host removed")
    make(deployment).write(make_inventory(1, n_infra=0), record=record)
    client = netbox.client()
    device = client.get("dcim/devices/", params={"tag": deployment["tag"], "name": "compute1"}).json()["results"][0]
    changes = client.get("core/object-changes/", params={"changed_object_type": "dcim.device",
                                                          "changed_object_id": device["id"]}).json()["results"]
    assert changes and all("alice" in c["message"] and "ticket OPS-42" in c["message"] and "deploy1" in c["message"]
                           for c in changes), [c["message"] for c in changes]
    assert all(len(c["message"]) <= 200 for c in changes)
    history = make(deployment).history()
    assert [(h["user"], h["reason"], h["command"]) for h in history] == [("alice", "ticket OPS-42",
                                                                         "inventory-manage -r x")]
    assert history[-1].get("current") is True


@heavy
def test_a_long_reason_is_cut_to_netboxs_200_characters(netbox, deployment):  # noqa: F811
    record = ChangeRecord.now("dynamic_inventory", "", reason="why " * 200)
    make(deployment).write(make_inventory(1, n_infra=0), record=record)
    assert_same(make(deployment, cache="false").load(), make_inventory(1, n_infra=0))
    assert make(deployment).history()[-1]["reason"] == record.reason  # --history keeps it whole


@pytest.fixture
def deploy(netbox, deployment, tmp_path):  # noqa: F811
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, base_config())
    ini = write_ini(str(tmp_path), ini_text(deployment))
    first = run_script(config_dir, ini=ini, env={"OSA_INVENTORY_NETBOX_TOKEN": netbox.write_token}, timeout=900)
    assert first.returncode == 0 and first.stderr == "", first.stderr
    return config_dir, ini, json.loads(first.stdout)


@heavy
def test_a_read_only_token_runs_unchanged_inventories_and_plan(netbox, deploy, tmp_path):
    config_dir, ini, printed = deploy
    reader = {"OSA_INVENTORY_NETBOX_TOKEN": netbox.read_token}
    for fresh_cache in (False, True):
        env = dict(reader, OSA_INVENTORY_NETBOX_CACHE_DIR=str(tmp_path / "reader-cache")) if fresh_cache else reader
        result = run_script(config_dir, ini=ini, env=env, timeout=900)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        assert json.loads(result.stdout) == printed
    plan = subprocess.run([sys.executable, MANAGE, "--config", config_dir, "--plan"], capture_output=True, text=True,
                          env={**os.environ, "OSA_INI": ini, **reader}, timeout=600)
    assert plan.returncode == 0 and plan.stderr == "" and plan.stdout.startswith("no changes"), plan.stdout


@heavy
def test_a_change_a_read_only_token_cannot_write_is_refused_naming_its_user(netbox, deploy):
    config_dir, ini, printed = deploy
    config = base_config()
    config["compute_hosts"]["compute2"] = {"ip": "172.29.236.22"}
    write_config(config_dir, config)
    result = run_script(config_dir, ini=ini, env={"OSA_INVENTORY_NETBOX_TOKEN": netbox.read_token}, timeout=900)
    assert result.returncode == 1 and result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line and f"user {netbox.reader_user}" in line and "nothing was written" in line, line
    assert netbox.read_token.split(".")[1] not in line


@heavy
def test_the_plugin_refusal_is_an_access_refusal(netbox, deployment):  # noqa: F811
    make(deployment).write(make_inventory(1, n_infra=0))
    reader = make(deployment, token=netbox.read_token)
    reader.load()
    with pytest.raises(AccessDenied) as caught:
        reader.write(copy.deepcopy(make_inventory(2, n_infra=0)))
    assert f"user {netbox.reader_user}" in str(caught.value)
    assert_same(make(deployment, cache="false").load(), make_inventory(1, n_infra=0))
