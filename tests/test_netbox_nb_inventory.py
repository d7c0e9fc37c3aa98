"""netbox.netbox's nb_inventory reading the NetBox our plugin wrote sees the same hosts with the same
``ansible_host`` (the mapping's promise to NetBox users), with ansible-inventory as the real client.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess

import pytest

from ansible_cli import ANSIBLE_INVENTORY
from nb_inventory import Unavailable, prepared
from netbox_heavy import heavy
from osa_inventory.testing import make_inventory
from test_netbox_plugin import deployment, make  # noqa: F401 (deployment is a fixture)


def plain(value):
    """A value as --list prints it, without Ansible's marking of untrusted text."""
    return value.get("__ansible_unsafe") if isinstance(value, dict) else value


@heavy
def test_nb_inventory_sees_the_same_hosts_and_ansible_host(netbox, deployment, tmp_path):  # noqa: F811
    try:
        collections, python = prepared()
    except Unavailable as exc:
        pytest.skip(str(exc))
    inventory = make_inventory(2, n_infra=1)
    make(deployment).write(copy.deepcopy(inventory))
    source = tmp_path / "osa.netbox.yml"
    source.write_text(f"plugin: netbox.netbox.nb_inventory\napi_endpoint: {netbox.url}\nvalidate_certs: false\n"
                      "timeout: 600\n"  # a loaded NetBox answers its schema request slowly
                      f"config_context: false\ninterfaces: false\ndevice_query_filters:\n  - tag: {deployment['tag']}\n"
                      f"vm_query_filters:\n  - tag: {deployment['tag']}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=collections, NETBOX_TOKEN=netbox.read_token,
               PYTHONPATH=os.pathsep.join(filter(None, [python, env.get("PYTHONPATH")])),
               ANSIBLE_INVENTORY_UNPARSED_FAILED="true", ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
    result = subprocess.run([ANSIBLE_INVENTORY, "-i", str(source), "--list"], capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout)["_meta"]["hostvars"]
    ours = inventory["_meta"]["hostvars"]
    assert set(seen) == set(ours)
    assert {name: plain(hv.get("ansible_host")) for name, hv in seen.items()} == \
        {name: hv["ansible_host"] for name, hv in ours.items()}
