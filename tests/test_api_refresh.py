"""api.refresh() and api.check_config(): the inventory script's run through the Python API.

The script, the API and the Ansible plugin make one run (osa_inventory.refresh): these tests hold the
API's run to the script's, byte for byte, with the same store, lock and change records.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from helpers import ROOT, history, run_script, write_ini

from osa_inventory import api
from osa_inventory.errors import ConfigErrors

AIO = os.path.join(ROOT, "etc", "openstack_deploy", "aio")
ENVIRONMENT = os.path.join(ROOT, "playbooks", "inventory")


@pytest.fixture
def deployment(tmp_path):
    config_dir = str(tmp_path / "config")
    shutil.copytree(AIO, config_dir)
    return config_dir, write_ini(str(tmp_path))


def stored_file(config_dir: str) -> bytes:
    with open(os.path.join(config_dir, "openstack_inventory.json"), "rb") as fh:
        return fh.read()


def test_the_first_refresh_stores_what_the_script_then_prints_unchanged(deployment):
    config_dir, ini = deployment
    first = api.refresh(osa_ini=ini, config_dir=config_dir, environment=ENVIRONMENT)
    assert first.changed and json.loads(first.text) == first.inventory
    stored = stored_file(config_dir)
    printed = run_script(config_dir, ini=ini)
    assert printed.returncode == 0 and printed.stderr == ""
    assert printed.stdout == first.text + "\n"  # the script's --list, byte for byte
    assert stored_file(config_dir) == stored  # and the script found nothing to store
    again = api.refresh(osa_ini=ini, config_dir=config_dir, environment=ENVIRONMENT)
    assert not again.changed and again.text == first.text


def test_a_config_change_is_stored_with_the_command_recorded(deployment):
    config_dir, ini = deployment
    run_script(config_dir, ini=ini)
    before = len(history(config_dir, ini))
    with open(os.path.join(config_dir, "openstack_user_config.yml"), "a", encoding="utf-8") as fh:
        fh.write("\nextra_hosts:\n  aio1:\n    ip: 172.29.236.100\n")
    done = api.refresh(osa_ini=ini, config_dir=config_dir, environment=ENVIRONMENT, command="my-helper sync")
    assert done.changed and "extra_hosts" in done.inventory
    entries = history(config_dir, ini)
    assert len(entries) == before + 1 and entries[-1]["command"] == "my-helper sync"
    printed = run_script(config_dir, ini=ini)
    assert printed.stdout == done.text + "\n"


def test_the_default_command_names_the_api_and_the_helper(deployment, monkeypatch):
    config_dir, ini = deployment
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/retire-hosts.py"])
    api.refresh(osa_ini=ini, config_dir=config_dir, environment=ENVIRONMENT)
    assert history(config_dir, ini)[-1]["command"] == "osa_inventory.api refresh (from retire-hosts.py)"


def test_a_broken_config_raises_every_problem_and_stores_nothing(deployment):
    config_dir, ini = deployment
    with open(os.path.join(config_dir, "openstack_user_config.yml"), "a", encoding="utf-8") as fh:
        fh.write("\nshared-infra_hosts: [not, a, mapping]\n")
    with pytest.raises(ConfigErrors) as err:
        api.check_config(osa_ini=ini, config_dir=config_dir, environment=ENVIRONMENT)
    assert err.value.lines and all("\n" not in line for line in err.value.lines)
    with pytest.raises(api.ConfigError):
        api.refresh(osa_ini=ini, config_dir=config_dir, environment=ENVIRONMENT)
    assert not os.path.exists(os.path.join(config_dir, "openstack_inventory.json"))
    script = run_script(config_dir, "--check", ini=ini)
    assert script.returncode == 1
    assert script.stderr.splitlines() == [f"ERROR: {line}" for line in err.value.lines]


def test_check_config_reports_what_the_script_checks_and_writes_nothing(deployment):
    config_dir, ini = deployment
    checked = api.check_config(osa_ini=ini, config_dir=config_dir, environment=ENVIRONMENT)
    assert checked.user_groups == {} and isinstance(checked.warnings, list)
    assert not os.path.exists(os.path.join(config_dir, "openstack_inventory.json"))


def test_a_missing_config_folder_names_the_apis_way_to_fix_it(tmp_path):
    with pytest.raises(api.ConfigError) as err:
        api.refresh(config_dir=str(tmp_path / "nowhere"))
    assert str(err.value) == f"config folder {tmp_path / 'nowhere'} does not exist; " \
                             "pass config_dir= or set OSA_CONFIG_DIR"


def test_the_documented_example_runs_as_printed(deployment):
    config_dir, ini = deployment
    with open(os.path.join(ROOT, "docs", "api.md"), encoding="utf-8") as fh:
        (block,) = re.findall(r"<!-- api-refresh-example -->\s*```python\n(.*?)```", fh.read(), re.S)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSA_")}
    env.update(OSA_INI=ini, OSA_CONFIG_DIR=config_dir, PYTHONPATH=os.path.join(ROOT, "lib"))
    outputs = []
    for _ in range(2):
        result = subprocess.run([sys.executable, "-c", block], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        outputs.append(result.stdout)
    hosts = len(json.loads(run_script(config_dir, ini=ini).stdout)["_meta"]["hostvars"])
    assert outputs == [f"stored a new version {hosts}\n", f"unchanged {hosts}\n"]
    assert history(config_dir, ini)[-1]["command"] == "nightly-sync"


def test_environ_replaces_the_process_environment_for_the_settings(deployment, tmp_path, monkeypatch):
    config_dir, ini = deployment
    monkeypatch.setenv("OSA_INVENTORY_BACKEND", "no_such_backend")  # the process's, which environ replaces
    monkeypatch.setenv("OSA_CONFIG_DIR", str(tmp_path / "missing"))
    environ = {"OSA_INI": ini, "OSA_CONFIG_DIR": config_dir, "OSA_INVENTORY_FILESYSTEM_BACKUPS": "2"}
    done = api.refresh(environment=ENVIRONMENT, command="with environ", environ=environ)
    assert done.changed and history(config_dir, ini)[-1]["command"] == "with environ"
    with api.open_inventory(environ=environ) as inv:
        assert inv.to_ansible() == done.inventory
    assert api.check_config(environment=ENVIRONMENT, environ=environ).warnings == []
    environ["OSA_INVENTORY_FILESYSTEM_BACKUPS"] = "many"  # an override read from environ, not from os.environ
    with pytest.raises(api.SettingsError, match="OSA_INVENTORY_FILESYSTEM_BACKUPS"):
        api.refresh(environment=ENVIRONMENT, environ=environ)


def test_the_inputs_digest_changes_with_every_input_and_only_then(deployment, tmp_path):
    config_dir, ini = deployment
    env_d = tmp_path / "environment"
    shutil.copytree(ENVIRONMENT, env_d, ignore=shutil.ignore_patterns("*.py"))
    environ = {"OSA_INI": ini, "PATH": "/usr/bin"}

    def digest(**changes) -> str:
        return api.inputs_digest(config_dir=config_dir, environment=str(env_d), environ={**environ, **changes})

    first = digest()
    user_config = os.path.join(config_dir, "openstack_user_config.yml")
    os.utime(user_config, (1, 1))  # touched, not changed: the digest is of content
    assert digest() == first and digest(PATH="/bin", HOME="/root") == first  # not settings variables
    seen = {first}

    def changed(**changes) -> None:
        now = digest(**changes)
        assert now not in seen, changes
        seen.add(now)

    changed(OSA_INVENTORY_TIMEOUT="30")
    changed(OSA_INVENTORY_FILESYSTEM_BACKUPS="4")
    # The settings as the run takes them: another backend's options cannot change this one's result.
    assert digest(OSA_INVENTORY_ETCD_PREFIX="/other") == first
    for path, text in ((ini, "\n[filesystem]\nbackups = 3\n"), (user_config, "\n# a comment is a change\n")):
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)
        changed()
    os.makedirs(os.path.join(config_dir, "conf.d"), exist_ok=True)
    for folder in (os.path.join(config_dir, "conf.d"), os.path.join(config_dir, "env.d"), str(env_d / "env.d")):
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "zz_added.yml"), "w", encoding="utf-8") as fh:
            fh.write("{}\n")
        changed()
    os.remove(os.path.join(config_dir, "conf.d", "zz_added.yml"))
    changed()
    assert api.inputs_digest(config_dir=config_dir, environment=ENVIRONMENT, environ=environ) not in seen


def test_the_inputs_digest_of_an_unreadable_config_is_the_config_error(deployment):
    config_dir, ini = deployment
    os.remove(os.path.join(config_dir, "openstack_user_config.yml"))
    os.mkdir(os.path.join(config_dir, "openstack_user_config.yml"))
    with pytest.raises(api.ConfigError, match="openstack_user_config.yml: is a folder, not a regular file"):
        api.inputs_digest(config_dir=config_dir, environment=ENVIRONMENT, environ={"OSA_INI": ini})
