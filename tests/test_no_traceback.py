"""The log and stdout can fail without ending the run in a traceback.

Through the real script: ``-d`` with a log that cannot be written, a
warning that cannot be logged, and a reader that closes stdout early.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

from helpers import ROOT, SCRIPT, base_config, write_config, write_ini, run_script

LOG_NAME = "inventory.log"


def deployment(tmp_path, computes: int = 1) -> tuple[str, str]:
    config = base_config()
    config["compute_hosts"] = {f"compute{i}": {"ip": f"172.29.237.{i + 1}"} for i in range(computes)}
    folder = str(tmp_path / "config")
    write_config(folder, config)
    return folder, write_ini(str(tmp_path))


def test_debug_log_is_created_private(tmp_path):
    folder, ini = deployment(tmp_path)
    result = run_script(folder, "-d", ini=ini)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    log = os.path.join(folder, LOG_NAME)
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    with open(log) as fh:
        assert "hosts, stored" in fh.read()


def test_debug_with_a_log_that_cannot_be_opened_still_runs(tmp_path):
    folder, ini = deployment(tmp_path)
    os.mkdir(os.path.join(folder, LOG_NAME))  # inventory.log is a folder: open() fails even for root
    result = run_script(folder, "-d", ini=ini)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert json.loads(result.stdout)["_meta"]["hostvars"]["compute0"]


def test_a_warning_that_cannot_be_logged_fails_nothing(tmp_path):
    config = base_config()
    config["comptue_hosts"] = {"extra1": {"ip": "172.29.236.40"}}   # a near miss: a warning under warn
    folder = str(tmp_path / "config")
    write_config(folder, config)
    ini = write_ini(str(tmp_path), "[inventory]\nunknown_host_groups = warn\n")
    os.mkdir(os.path.join(folder, LOG_NAME))
    result = run_script(folder, ini=ini)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert os.path.exists(os.path.join(folder, "openstack_inventory.json"))


def test_closed_stdout_exits_quietly(tmp_path):
    folder, ini = deployment(tmp_path, computes=200)   # output far larger than a pipe's buffer
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_"))}
    env["OSA_INI"] = ini
    # As `dynamic_inventory.py | head -c 50`: the reader takes 50 bytes and goes away.
    proc = subprocess.Popen([sys.executable, SCRIPT, "--config", folder, "--list"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.read(50).startswith(b"{")
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert err == "", err
    assert proc.returncode in (0, 1)
