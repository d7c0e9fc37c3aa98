"""The optional plugin method reserved_addresses(networks) (docs/writing-plugins.md): what a backend
says is held inside the pools is never handed out, --plan lists it, and a malformed answer is one
line. Run with a small plugin of its own through the real script and inventory-manage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import ROOT, base_config, run_script, write_config, write_ini
from osa_inventory.deployment_config import read_config

MANAGE = os.path.join(ROOT, "scripts", "inventory-manage.py")
ENVIRONMENT = os.path.join(ROOT, "playbooks", "inventory")

PLUGIN = '''
import json, os

OPTIONS = {"answer": {"default": "[]"}}


class Storage:
    def register(self, args):
        self.path = os.path.join(args["config_dir"], "held-store.json")
        self.answer = json.loads(args.get("answer") or "[]")
        self.asked = os.path.join(args["config_dir"], "held-asked.json")

    def load(self):
        if not os.path.exists(self.path):
            return None
        with open(self.path) as fh:
            return json.load(fh)

    def write(self, inventory):
        with open(self.path, "w") as fh:
            json.dump(inventory, fh)

    def reserved_addresses(self, networks):
        with open(self.asked, "w") as fh:
            json.dump(networks, fh)
        return self.answer
'''


def management_addresses(inventory: dict) -> list[str]:
    return sorted((hv["container_networks"]["management_address"]["address"]
                   for hv in inventory["_meta"]["hostvars"].values()
                   if "management_address" in (hv.get("container_networks") or {})),
                  key=lambda a: tuple(map(int, a.split("."))))


def setup(tmp_path, answer: list) -> tuple[str, str]:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "held.py").write_text(PLUGIN)
    config_dir = str(tmp_path / "deploy")
    write_config(config_dir, base_config())
    ini = write_ini(str(tmp_path), f"[inventory]\nbackend = held\nplugin_paths = {plugins}\n[held]\n"
                                   f"answer = {json.dumps(answer)}\n")
    return config_dir, ini


def test_held_addresses_are_kept_out_and_plan_lists_them(tmp_path):
    plain = management_addresses(read_config(str(_config(tmp_path)), ENVIRONMENT, "error").generate(None))
    taken = [a for a in plain if not a.endswith((".11", ".12", ".21", ".31"))][:3]  # containers' addresses
    answer = [{"address": taken[0], "held_by": "ip-address #7 (the SAN)"},
              {"address": f"{taken[1]},{taken[2]}", "held_by": "ip-range (dhcp)"}]
    config_dir, ini = setup(tmp_path, answer)
    plan = subprocess.run([sys.executable, MANAGE, "--config", config_dir, "--plan"], capture_output=True,
                          text=True, env={**os.environ, "OSA_INI": ini}, timeout=300)
    assert plan.returncode == 2 and plan.stderr == "", plan.stderr
    note = [line for line in plan.stdout.splitlines() if line.startswith("note: 2 addresses held")]
    assert note and "the SAN" in note[0] and f"{taken[1]},{taken[2]}" in note[0], plan.stdout
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    given = management_addresses(json.loads(result.stdout))
    low, high = (tuple(map(int, a.split("."))) for a in (taken[1], taken[2]))
    assert taken[0] not in given and not any(low <= tuple(map(int, a.split("."))) <= high for a in given)
    assert len(given) == len(plain)
    with open(os.path.join(config_dir, "held-asked.json")) as fh:
        assert sorted(json.load(fh)) == sorted(base_config()["cidr_networks"].values())


def test_the_python_api_keeps_them_out_too(tmp_path, monkeypatch):
    """api.refresh() (and so the Ansible plugin) makes the script's run (osa_inventory.refresh): the same
    addresses are kept out."""
    from osa_inventory import api

    plain = management_addresses(read_config(str(_config(tmp_path)), ENVIRONMENT, "error").generate(None))
    taken = [a for a in plain if not a.endswith((".11", ".12", ".21", ".31"))][:1]
    config_dir, ini = setup(tmp_path, [{"address": taken[0], "held_by": "ip-address #7 (the SAN)"}])
    refreshed = api.refresh(ini, config_dir, ENVIRONMENT, environ={})
    given = management_addresses(refreshed.inventory)
    assert refreshed.changed and taken[0] not in given and len(given) == len(plain)
    assert os.path.exists(os.path.join(config_dir, "held-asked.json"))


def test_an_unchanged_run_does_not_ask(tmp_path):
    config_dir, ini = setup(tmp_path, [])
    assert run_script(config_dir, ini=ini).returncode == 0
    os.unlink(os.path.join(config_dir, "held-asked.json"))
    again = run_script(config_dir, ini=ini)
    assert again.returncode == 0 and again.stderr == ""
    assert not os.path.exists(os.path.join(config_dir, "held-asked.json"))


def test_a_malformed_answer_is_one_line_and_nothing_is_stored(tmp_path):
    for answer in ([{"address": "not an address", "held_by": "x"}], [{"held_by": "x"}], {"a": 1}):
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        config_dir, ini = setup(folder, answer)
        result = run_script(config_dir, ini=ini)
        assert result.returncode == 1 and result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1 and "reserved_addresses()" in result.stderr
        assert "fix the plugin" in result.stderr
        assert not os.path.exists(os.path.join(config_dir, "held-store.json"))


def _config(tmp_path):
    folder = tmp_path / "plain"
    write_config(str(folder), base_config())
    return folder
