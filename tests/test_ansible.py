"""Ansible itself (ansible-core) reads the inventory, on every storage backend.

``ansible-inventory`` and ``ansible`` run the real script with the shipped
skeleton and example config; what Ansible sees must be what the script
prints, and Ansible must print no warning or error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from ansible_cli import ANSIBLE, ANSIBLE_INVENTORY, BIN, our_stderr
from backend_inis import BACKENDS, craton  # noqa: F401 - craton: a fixture the craton backend's tests use
from etcd_server import etcd
from helpers import ROOT, SCRIPT, run_script

pytestmark = pytest.mark.skipif(ANSIBLE_INVENTORY is None, reason="ansible-core is not installed")


def ansible_env(config_dir: str, ini: str, tmp: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_"))}
    env.update({
        "OSA_INI": ini,
        "OSA_CONFIG_DIR": config_dir,
        "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
        "ANSIBLE_LOCAL_TEMP": os.path.join(tmp, "ansible-tmp"),
        "ANSIBLE_HOME": os.path.join(tmp, "ansible-home"),
        "PATH": BIN + os.pathsep + os.environ.get("PATH", ""),
    })
    return env


def ansible(cmd: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


# Ansible's side of the contract depends on ansible-core (a different release per Python here), so every
# version runs it on the filesystem backend; the other backends only change where the same JSON comes
# from, and run once per CI run.
@pytest.fixture(params=[pytest.param(name, marks=[pytest.mark.once] if name != "filesystem" else [])
                        for name in sorted(BACKENDS)])
def backend_ini(request, tmp_path):
    return BACKENDS[request.param](tmp_path, request)


@pytest.mark.parametrize("example", ["aio", "production"])
def test_ansible_sees_what_the_script_prints(backend_ini, example, tmp_path):
    config_dir = tmp_path / "deploy"
    shutil.copytree(os.path.join(ROOT, "etc", "openstack_deploy", example), config_dir)
    env = ansible_env(str(config_dir), backend_ini, str(tmp_path))

    exported = ansible([ANSIBLE_INVENTORY, "-i", SCRIPT, "--list", "--export"], env)
    assert exported.returncode == 0, exported.stderr
    assert our_stderr(exported.stderr) == "", exported.stderr  # no warning, no error
    seen = json.loads(exported.stdout)

    printed = run_script(str(config_dir), "--list", ini=backend_ini)
    assert printed.returncode == 0 and printed.stderr == ""
    ours = json.loads(printed.stdout)

    assert seen["_meta"]["hostvars"] == ours["_meta"]["hostvars"]
    assert seen["all"]["vars"] == ours["all"]["vars"]
    for name, group in ours.items():
        if name in ("_meta", "all"):
            continue
        theirs = seen.get(name, {})
        assert sorted(theirs.get("hosts", [])) == sorted(group.get("hosts", [])), name
        assert sorted(theirs.get("children", [])) == sorted(group.get("children", [])), name

    graph = ansible([ANSIBLE_INVENTORY, "-i", SCRIPT, "--graph"], env)
    assert graph.returncode == 0 and our_stderr(graph.stderr) == "", graph.stderr
    for host in ours["_meta"]["hostvars"]:
        assert f"--{host}" in graph.stdout

    listed = ansible([ANSIBLE, "all", "-i", SCRIPT, "-m", "ping", "--list-hosts"], env)
    assert listed.returncode == 0 and our_stderr(listed.stderr, ANSIBLE) == "", listed.stderr
    names = {line.strip() for line in listed.stdout.splitlines()[1:] if line.strip()}
    assert names == set(ours["_meta"]["hostvars"])
    assert f"hosts ({len(names)})" in listed.stdout


def test_a_storage_failure_stops_ansible(tmp_path):
    config_dir = tmp_path / "deploy"
    shutil.copytree(os.path.join(ROOT, "etc", "openstack_deploy", "aio"), config_dir)
    ini = tmp_path / "osa.ini"
    ini.write_text("[inventory]\nbackend = no_such_backend\n")
    env = ansible_env(str(config_dir), str(ini), str(tmp_path))
    result = ansible([ANSIBLE_INVENTORY, "-i", SCRIPT, "--list"], env)
    assert result.returncode != 0
    assert "no_such_backend" in result.stderr
