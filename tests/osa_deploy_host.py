"""A deploy host's wiring, as the wiring tests drive it: our rc sourced by a real shell, or OSA's own.

OpenStack-Ansible's rc gives Ansible three inventory sources: ``dynamic_inventory.py``
and ``inventory.ini`` of its inventory folder, and ``inventory.ini`` of the deployment
config folder; Ansible adds the ``group_vars/`` and ``host_vars/`` beside each source.
``etc/ansible/osa-inventory.rc`` keeps that list with our command in place of OSA's script.

:func:`osa_wiring_list` is the fair comparison: the inventory our command printed,
served by a stand-in for OSA's script inside a copy of OSA's inventory folder, with
OSA's source list and Ansible's default plugins, as OSA's own rc leaves them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass

from ansible_cli import ANSIBLE_INVENTORY, BIN
from helpers import ROOT

RC = os.path.join(ROOT, "etc", "ansible", "osa-inventory.rc")
PLAYBOOK_TEXT = "- hosts: all\n  gather_facts: false\n  tasks: []\n"


@dataclass
class DeployHost:
    """The folders of a deploy host: OSA's inventory folder, the deployment config folder, osa.ini."""

    osa_inventory: str
    config_dir: str
    ini: str
    scratch: str

    def settings(self, command: str) -> dict[str, str]:
        """What a deployer sets before sourcing the rc (the paths of this host)."""
        return {"OSA_INVENTORY_PATH": self.osa_inventory, "OSA_INVENTORY_COMMAND": command,
                "OSA_CONFIG_DIR": self.config_dir, "OSA_INI": self.ini}


def clean_env(scratch: str) -> dict[str, str]:
    """This environment without OSA_*/ANSIBLE_* settings, Ansible's state kept in ``scratch``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_", "VIRTUAL_ENV"))}
    env.update(ANSIBLE_HOME=os.path.join(scratch, "ansible-home"),
               ANSIBLE_LOCAL_TEMP=os.path.join(scratch, "ansible-tmp"),
               PATH=BIN + os.pathsep + env.get("PATH", ""))
    return env


def wired(host: DeployHost, command: str, tool: str, *args: str,
          extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``TOOL ARGS`` (an Ansible command) in a bash that sourced the shipped rc, as a deployer's would."""
    env = clean_env(host.scratch)
    env.update(host.settings(command), **(extra or {}))
    return subprocess.run(["bash", "-c", '. "$1" && shift && exec "$@"', "bash", RC, tool, *args],
                          capture_output=True, text=True, env=env, timeout=600)


def playbook(host: DeployHost) -> str:
    """A playbook that does nothing, for ``ansible-playbook --list-hosts``."""
    path = os.path.join(host.scratch, "noop.yml")
    with open(path, "w") as fh:
        fh.write(PLAYBOOK_TEXT)
    return path


def osa_wiring_list(host: DeployHost, printed: str) -> dict:
    """``ansible-inventory --list`` through OSA's own wiring, its script serving ``printed``."""
    copy = os.path.join(host.scratch, "osa-wiring", "inventory")
    if not os.path.isdir(copy):
        shutil.copytree(host.osa_inventory, copy, symlinks=True)
    served = os.path.join(host.scratch, "osa-wiring", "served.json")
    with open(served, "w") as fh:
        fh.write(printed)
    script = os.path.join(copy, "dynamic_inventory.py")
    if os.path.lexists(script):
        os.remove(script)
    with open(script, "w") as fh:
        fh.write(f"#!/bin/sh\nexec cat '{served}'\n")
    os.chmod(script, 0o755)
    env = clean_env(host.scratch)
    env["ANSIBLE_INVENTORY"] = ",".join([script, os.path.join(copy, "inventory.ini"),
                                         os.path.join(host.config_dir, "inventory.ini")])
    result = subprocess.run([ANSIBLE_INVENTORY, "--list"], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def our_list(host: DeployHost, command: str) -> tuple[dict, subprocess.CompletedProcess]:
    """``ansible-inventory --list`` through our rc: the parsed output and the finished process."""
    result = wired(host, command, ANSIBLE_INVENTORY, "--list")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result


def printed_inventory(host: DeployHost, command: list[str], *args: str) -> str:
    """What the inventory command prints for this host (it stores it too, so later runs print the same)."""
    env = clean_env(host.scratch)
    env.update(OSA_INI=host.ini, OSA_CONFIG_DIR=host.config_dir)
    result = subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return result.stdout


def differences(ours: dict, theirs: dict) -> list[str]:
    """Where two ``--list`` outputs differ, host by host and group by group (empty: identical)."""
    found = []
    ours_hv, theirs_hv = ours["_meta"]["hostvars"], theirs["_meta"]["hostvars"]
    for name in sorted(set(ours_hv) | set(theirs_hv)):
        a, b = ours_hv.get(name), theirs_hv.get(name)
        if a is None or b is None:
            found.append(f"host {name}: only in {'ours' if b is None else 'OSA wiring'}")
            continue
        for key in sorted(set(a) | set(b)):
            if a.get(key, KeyError) != b.get(key, KeyError):
                found.append(f"host {name}: variable {key}: ours {a.get(key, '<missing>')!r}, "
                             f"OSA wiring {b.get(key, '<missing>')!r}")
    for group in sorted((set(ours) | set(theirs)) - {"_meta"}):
        if ours.get(group) != theirs.get(group):
            found.append(f"group {group}: ours {ours.get(group)!r}, OSA wiring {theirs.get(group)!r}")
    return found


def collapsed(text: str) -> str:
    """``text`` with every run of whitespace one space (ansible-core 2.17 wraps long warnings)."""
    return " ".join(text.split())
