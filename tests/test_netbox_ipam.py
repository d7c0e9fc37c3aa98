"""NetBox as the IPAM of record, against the real test NetBox: addresses NetBox holds inside the pools
(another device's, a reserved range) are never handed to a container, --plan names them, and a
conflict found at write time is refused in one line naming the NetBox object.
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
from osa_inventory.backends.netbox import scaffold
from osa_inventory.deployment_config import read_config
from osa_inventory.errors import StorageError
from osa_inventory.testing import make_inventory
from test_netbox_plugin import deployment, make  # noqa: F401 (deployment is a fixture)

MANAGE = os.path.join(ROOT, "scripts", "inventory-manage.py")
ENVIRONMENT = os.path.join(ROOT, "playbooks", "inventory")


def ini_text(options: dict) -> str:
    lines = ["[inventory]", "backend = netbox", "[netbox]"]
    lines += [f"{k} = {v}" for k, v in options.items() if k not in ("token", "config_dir")]
    return "\n".join(lines) + "\n"


def new_addresses(config_dir: str) -> dict[str, str]:
    """Container -> management address a first run of ``config_dir`` hands out (no NetBox involved)."""
    deployment_config = read_config(config_dir, ENVIRONMENT, "error")
    inventory = deployment_config.generate(None)
    return {name: hv["container_networks"]["management_address"]["address"]
            for name, hv in inventory["_meta"]["hostvars"].items()
            if "management_address" in (hv.get("container_networks") or {}) and hv.get("physical_host") != name
            and not (hv.get("properties") or {}).get("is_metal")}


@pytest.fixture
def scene(netbox, deployment, netbox_objects, tmp_path):  # noqa: F811
    """A config folder, an osa.ini for the deployment, and NetBox holding one address the first run
    would hand out (another device's) and a reserved range over two more."""
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, base_config())
    handed = sorted(new_addresses(config_dir).values(), key=lambda a: tuple(map(int, a.split("."))))
    storage = make(deployment)
    scaffold.ids(storage._store.client, storage.opts)  # the deployment's VRF, tag and site, no inventory yet
    client = netbox.client()
    vrf = client.get("ipam/vrfs/", params={"name": deployment["vrf"]}).json()["results"][0]
    held = netbox_objects.create("ipam/ip-addresses/", {"address": f"{handed[0]}/22", "vrf": vrf["id"],
                                                        "description": "the storage array"})
    first, last = handed[1], handed[2]
    rng = netbox_objects.create("ipam/ip-ranges/", {"start_address": f"{first}/22", "end_address": f"{last}/22",
                                                    "vrf": vrf["id"], "description": "dhcp"})
    ini = write_ini(str(tmp_path), ini_text(deployment))
    env = {"OSA_INVENTORY_NETBOX_TOKEN": netbox.write_token}
    return {"config": config_dir, "ini": ini, "env": env, "held": handed[0], "range": (first, last),
            "held_obj": held, "range_obj": rng, "client": client}


def test_the_plugin_lists_what_netbox_holds_and_refuses_a_conflict_naming_it(scene, deployment):  # noqa: F811
    """Both on every Python version, in one deployment (each costs NetBox seconds of CPU to set up)."""
    storage = make(deployment)
    found = storage.reserved_addresses(["172.29.236.0/22", "10.99.0.0/16"])
    first, last = scene["range"]
    assert sorted(e["address"] for e in found) == sorted([scene["held"], f"{first},{last}"])
    held = next(e for e in found if e["address"] == scene["held"])
    assert f"#{scene['held_obj']['id']}" in held["held_by"] and "the storage array" in held["held_by"]
    # Outside the pools: nothing; the deployment's own addresses are never listed.
    assert storage.reserved_addresses(["10.99.0.0/16"]) == []

    # A conflict found at write time: one line naming the NetBox object, nothing committed.
    inventory = make_inventory(1, n_infra=0)
    inventory["_meta"]["hostvars"]["compute1"]["ansible_host"] = scene["held"]
    storage = make(deployment)
    storage.load()
    with pytest.raises(StorageError) as caught:
        storage.write(copy.deepcopy(inventory))
    message = str(caught.value)
    assert "\n" not in message and scene["held"] in message and "compute1" in message
    assert f"#{scene['held_obj']['id']}" in message and "nothing was committed" in message
    assert make(deployment, cache="false").load() is None


@heavy
def test_held_addresses_are_never_handed_out_and_plan_names_them(scene):
    plan = subprocess.run([sys.executable, MANAGE, "--config", scene["config"], "--plan", "--format", "json"],
                          capture_output=True, text=True, env={**os.environ, "OSA_INI": scene["ini"], **scene["env"]},
                          timeout=600)
    assert plan.returncode in (0, 2) and plan.stderr == "", plan.stderr
    reserved = json.loads(plan.stdout)["reserved_addresses"]
    first, last = scene["range"]
    assert {e["address"] for e in reserved} == {scene["held"], f"{first},{last}"}
    result = run_script(scene["config"], ini=scene["ini"], env=scene["env"], timeout=900)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    inventory = json.loads(result.stdout)
    given = {hv["container_networks"]["management_address"]["address"]
             for hv in inventory["_meta"]["hostvars"].values()
             if "management_address" in (hv.get("container_networks") or {})}
    low, high = (tuple(map(int, a.split("."))) for a in scene["range"])
    assert scene["held"] not in given
    assert not any(low <= tuple(map(int, a.split("."))) <= high for a in given)
