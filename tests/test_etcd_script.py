"""The inventory script on the etcd backend: several deploy hosts, one inventory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from etcd_server import EtcdCluster, etcd, skip_without_etcd
from helpers import ROOT, SCRIPT, base_config, run_script, write_config, write_ini

MANAGE = os.path.join(ROOT, "scripts", "inventory-manage.py")


def etcd_ini(folder: str, endpoints: str, prefix: str, timeout: int = 5) -> str:
    return write_ini(folder, f"[inventory]\nbackend = etcd\n[etcd]\nendpoints = {endpoints}\n"
                             f"prefix = {prefix}\ntimeout = {timeout}\n")


def manifest_revision(cluster: EtcdCluster, prefix: str) -> int:
    return cluster.keys(prefix + "/manifest")[(prefix + "/manifest").encode()]["mod_revision"]


def test_script_stores_in_etcd_and_an_unchanged_run_writes_nothing(etcd, tmp_path):
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, base_config())
    ini = etcd_ini(str(tmp_path), etcd.endpoints_text, "/script/unchanged")
    first = run_script(config_dir, ini=ini)
    assert first.returncode == 0 and first.stderr == "", first.stderr
    assert "openstack_inventory.json" not in " ".join(p.name for p in (tmp_path / "deploy").iterdir())
    revision = manifest_revision(etcd, "/script/unchanged")
    second = run_script(config_dir, ini=ini)
    assert second.returncode == 0 and second.stdout == first.stdout
    assert manifest_revision(etcd, "/script/unchanged") == revision


@pytest.mark.once
def test_four_deploy_hosts_generating_at_once_agree_on_one_inventory(etcd, tmp_path):
    # Four config folders with the same config: four deploy hosts sharing one prefix.
    procs = []
    for i in range(4):
        config_dir = str(tmp_path / f"deploy{i}")
        write_config(config_dir, base_config())
        ini = etcd_ini(str(tmp_path / f"deploy{i}"), etcd.endpoints_text, "/script/race")
        env = {"OSA_INI": ini, "PATH": "/usr/bin:/bin"}
        procs.append(subprocess.Popen([sys.executable, SCRIPT, "--config", config_dir, "--list"], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in results]
    assert len({out for out, _ in results}) == 1, "deploy hosts printed different inventories"
    # The lock serialised them: one stored the inventory, three found it stored.
    ini = etcd_ini(str(tmp_path), etcd.endpoints_text, "/script/race")
    history = subprocess.run([sys.executable, MANAGE, "--config", str(tmp_path / "deploy0"), "--history",
                              "--format", "json"],
                             env={"OSA_INI": ini, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert history.returncode == 0, history.stderr
    assert len(json.loads(history.stdout)) == 1


def test_etcd_down_is_one_quick_line_then_back_with_the_same_inventory(tmp_path):
    skip_without_etcd()
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, base_config())
    with EtcdCluster(1) as cluster:
        ini = etcd_ini(str(tmp_path), cluster.endpoints_text, "/script/down", timeout=3)
        first = run_script(config_dir, ini=ini)
        assert first.returncode == 0
        cluster.members[0].stop()
        started = time.monotonic()
        down = run_script(config_dir, ini=ini)
        assert time.monotonic() - started < 15
        assert down.returncode == 1 and down.stdout == ""
        lines = down.stderr.strip().splitlines()
        assert len(lines) == 1 and cluster.endpoints[0] in lines[0] and "Traceback" not in down.stderr
        cluster.members[0].start()
        cluster.wait_healthy()
        again = run_script(config_dir, ini=ini)
        assert again.returncode == 0 and again.stdout == first.stdout
