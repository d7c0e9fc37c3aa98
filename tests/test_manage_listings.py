"""inventory-manage.py listings: -l/-s, -g, -G, -e and --format, on generated and hand-written inventories."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
import yaml
from test_manage_support import FIXTURES, INVENTORY_SCRIPT, Deployment, assert_one_line_error, clean_env

from osa_inventory.manage import views
from osa_inventory.manage.formatting import Lines, render_table

LEGACY = os.path.join(FIXTURES, "legacy", "openstack_inventory.json")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    dep = Deployment(str(tmp_path_factory.mktemp("small")))
    dep.generate()
    return dep


@pytest.fixture
def legacy():
    with open(LEGACY, encoding="utf-8") as fh:
        return json.load(fh)


def table_rows(text: str) -> list[list[str]]:
    """The cells of a rendered table, header first."""
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("|")]


def test_list_host_table_shows_every_entry_with_its_columns(small):
    proc = small.manage("-l")
    assert proc.returncode == 0, proc.stderr
    rows = table_rows(proc.stdout)
    assert rows[0] == list(views.HOST_COLUMNS)
    stored = small.stored()
    by_name = {r[0]: dict(zip(rows[0], r)) for r in rows[1:]}
    assert set(by_name) == set(stored["_meta"]["hostvars"])
    galera = next(n for n in by_name if "galera" in n)
    hv = stored["_meta"]["hostvars"][galera]
    assert by_name[galera]["tunnel_address"] == hv["container_networks"]["tunnel_address"]["address"]
    assert by_name[galera]["ansible_host"] == hv["ansible_host"]
    assert by_name[galera]["is_metal"] == "False"
    assert by_name["compute1"]["is_metal"] == "True"
    assert by_name["compute1"]["container_types"] == "compute1_host_containers"
    # OSA's default order: by component, a missing one shown and sorted as "-undefined-", then by name.
    no_component = [n for n, hv in stored["_meta"]["hostvars"].items() if hv.get("component") is None]
    assert no_component and all(by_name[n]["component"] == "-undefined-" for n in no_component)
    assert [r[0] for r in rows[1:]] == sorted(by_name, key=lambda n: (by_name[n]["component"], n))
    assert rows[1][2] == "-undefined-"


@pytest.mark.parametrize("column", ["tunnel_address", "container_types"])
def test_sort_puts_empty_values_last_and_orders_the_rest(small, column):
    proc = small.manage("-l", "-s", column, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    values = [r[column] for r in rows]
    filled = [v for v in values if v not in (None, "")]
    assert filled and len(filled) < len(values)  # the fixture has both kinds
    assert values[:len(filled)] == sorted(filled, key=str)
    assert all(v in (None, "") for v in values[len(filled):])


def test_sort_defaults_to_component_with_missing_ones_first_as_osa_shows_them(small):
    rows = json.loads(small.manage("-l", "--format", "json").stdout)
    assert rows == json.loads(small.manage("-l", "-s", "component", "--format", "json").stdout)
    keys = [("-undefined-" if r["component"] is None else r["component"], r["container_name"]) for r in rows]
    assert keys == sorted(keys) and keys[0][0] == "-undefined-" and keys[-1][0] != "-undefined-"
    assert [r for r in rows if r["component"] is None]  # data formats keep null; only the table says -undefined-


def test_sort_with_mixed_types_and_empty_values_in_process(legacy):
    legacy["_meta"]["hostvars"]["infra1"]["component"] = 7  # a stray non-string must not break sorting
    rows = views.host_rows(legacy, "component")
    assert [r["component"] for r in rows] == [7, "galera", "memcached", "nova_compute", "utility"]
    with pytest.raises(ValueError):
        views.host_rows(legacy, "nope")


def test_unknown_sort_column_is_a_usage_error(small):
    proc = small.manage("-l", "-s", "bogus")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr and "Traceback" not in proc.stderr


def test_list_groups_gives_each_host_its_direct_groups(small):
    proc = small.manage("-g", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    stored = small.stored()
    for host in stored["_meta"]["hostvars"]:
        expected = sorted(g for g, v in stored.items()
                          if g not in ("_meta", "all") and host in (v.get("hosts") or ()))
        assert data[host] == expected
    assert "nova_compute" in data["compute1"]
    table = table_rows(small.manage("-g").stdout)
    assert table[0] == ["container_name", "groups"]  # OSA's column titles
    assert dict((r[0], r[1]) for r in table[1:])["compute1"] == ", ".join(data["compute1"])


def test_list_containers_shows_every_group_with_hosts_including_one_member_groups(small):
    proc = small.manage("-G", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    stored = small.stored()
    expected = {g: v["hosts"] for g, v in stored.items() if g not in ("_meta", "all") and v.get("hosts")}
    assert data == expected
    assert data["compute_hosts"] == ["compute1"]  # a one-member group (OSA hid these)
    assert data["nova_compute"] == ["compute1"]
    assert "all_containers" not in data  # children only, no hosts of its own
    rows = table_rows(small.manage("-G").stdout)
    assert rows[0] == ["groups", "container_name"]  # OSA's column titles
    assert ["compute_hosts", "compute1"] in rows
    # One member per line, as OSA prints it: a group's first line names it, the lines below are blank there.
    members: dict[str, list[str]] = {}
    current = ""
    for group, host in rows[1:]:
        current = group or current
        members.setdefault(current, []).append(host)
    assert members == expected
    assert len(expected["galera_container"]) == 2


def test_help_texts_of_g_and_G_describe_what_they_do(small):
    text = " ".join(small.manage("--help").stdout.split())
    assert "-g, --list-groups each host and container with the groups it belongs to" in text
    assert "-G, --list-containers each group with the hosts and containers it holds" in text


def test_export_shape_and_content(small):
    proc = small.manage("-e")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    stored = small.stored()
    assert set(data) == {"hosts", "all", "groups"}
    assert data["groups"] == {g: v for g, v in stored.items() if g not in ("_meta", "all")}
    assert data["all"] == stored["all"]["vars"]
    assert set(data["hosts"]) == set(stored["_meta"]["hostvars"])
    for host, entry in data["hosts"].items():
        assert entry["hostvars"] == stored["_meta"]["hostvars"][host]
        assert entry["groups"] == sorted(g for g, v in stored.items()
                                         if g not in ("_meta", "all") and host in v.get("hosts", []))


def test_yaml_format_parses_to_the_same_data_as_json(small):
    as_json = json.loads(small.manage("-G", "--format", "json").stdout)
    as_yaml = yaml.safe_load(small.manage("-G", "--format", "yaml").stdout)
    assert as_yaml == as_json
    export_yaml = yaml.safe_load(small.manage("-e", "--format", "yaml").stdout)
    assert export_yaml == json.loads(small.manage("-e").stdout)


def test_listings_of_a_hand_written_underscore_inventory_through_file(tmp_path, legacy):
    path = tmp_path / "old-inventory.json"
    shutil.copy(LEGACY, path)
    dep = Deployment(str(tmp_path / "dep"))
    proc = dep.manage("-f", str(path), "-l", "-s", "tunnel_address", "--format", "json", config=False)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert rows[0]["container_name"] == "infra1_galera_container-1a2b3c4d"
    assert rows[0]["tunnel_address"] == "172.29.240.120"
    assert {r["container_name"] for r in rows} == set(legacy["_meta"]["hostvars"])
    metal = {r["container_name"] for r in rows if r["is_metal"]}
    assert metal == {"infra1", "compute1"}
    groups = json.loads(dep.manage("-f", str(path), "-G", "--format", "json", config=False).stdout)
    assert groups["infra1-host_containers"] == legacy["infra1-host_containers"]["hosts"]
    assert groups["lxc_hosts"] == ["infra1"]


def test_listing_an_empty_backend_says_what_to_do(tmp_path):
    dep = Deployment(str(tmp_path))
    refused = dep.manage("-l")
    assert_one_line_error(refused, "holds no inventory yet")
    # The advice, run as printed (a deployer's shell: osa.ini set, the venv's python3 first on PATH).
    advice = re.search(r"; run (.+) first or bring one in with (.+) --import FILE$", refused.stderr.strip())
    words = shlex.split(advice.group(1))
    assert words == [INVENTORY_SCRIPT, "--config", dep.config_dir], words
    assert shlex.split(advice.group(2))[-2:] == ["--config", dep.config_dir], advice.group(2)
    env = clean_env({"OSA_INI": dep.ini, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]})
    assert subprocess.run(words, capture_output=True, text=True, env=env, timeout=120).returncode == 0
    listed = dep.manage("-l")
    assert listed.returncode == 0 and "infra1" in listed.stdout, listed.stderr


def test_no_action_and_two_actions_are_usage_errors(small):
    none = small.manage()
    assert none.returncode == 2 and "nothing to do" in none.stderr
    two = small.manage("-l", "-G")
    assert two.returncode == 2 and "one thing to do at a time" in two.stderr


def test_render_table_aligns_cells_and_shows_empty_for_none():
    text = render_table(("a", "bb"), [["x", None], ["long value", ["p", "q"]]])
    lines = text.splitlines()
    assert len({len(line) for line in lines}) == 1
    assert lines[1] == "| a          | bb   |"
    assert lines[3] == "| x          |      |"
    assert lines[4] == "| long value | p, q |"


def test_render_table_spreads_a_multi_line_cell_over_lines():
    text = render_table(("groups", "container_name"), [["g1", Lines(["a", "bbbb"])], ["g2", "c"]])
    assert text.splitlines() == [
        "+--------+----------------+",
        "| groups | container_name |",
        "+--------+----------------+",
        "| g1     | a              |",
        "|        | bbbb           |",
        "| g2     | c              |",
        "+--------+----------------+",
    ]
