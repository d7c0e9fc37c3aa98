"""--check-stale: entries the config no longer produces, with --strict's exit status."""

from __future__ import annotations

import json
import os

import pytest
from helpers import DASHED_ENV_D, write_config
from test_manage_support import ENVIRONMENT, Deployment, assert_one_line_error

from osa_inventory.manage import stale


@pytest.fixture
def dep(tmp_path):
    d = Deployment(str(tmp_path))
    config = d.config()
    config["shared_infra_hosts"]["infra1"]["affinity"] = {"rabbit_mq_container": 2}
    d.save_config(config)
    d.generate()
    return d


def containers_of(inventory: dict, host: str) -> set[str]:
    return {n for n, hv in inventory["_meta"]["hostvars"].items() if hv.get("physical_host") == host and n != host}


def check(d: Deployment, *extra: str) -> dict:
    proc = d.manage("--check-stale", "--format", "json", *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_nothing_stale_right_after_a_run(dep):
    proc = dep.manage("--check-stale", "--strict")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("nothing stale")
    assert check(dep) == {"stale": [], "missing": []}


def test_lowered_affinity_reports_the_extra_container(dep):
    rabbits = dep.stored()["rabbit_mq_container"]["hosts"]
    infra1_rabbits = [n for n in rabbits if n.startswith("infra1-")]
    assert len(infra1_rabbits) == 2
    config = dep.config()
    config["shared_infra_hosts"]["infra1"]["affinity"] = {"rabbit_mq_container": 1}
    dep.save_config(config)
    assert check(dep)["stale"] == [{"name": infra1_rabbits[1], "physical_host": "infra1",
                                    "reason": "beyond affinity rabbit_mq_container: 1 on infra1"}]
    strict = dep.manage("--check-stale", "--strict")
    assert strict.returncode == 3
    assert infra1_rabbits[1] in strict.stdout and "remove them deliberately with -r NAME" in strict.stdout
    # Removing it clears the report, and the next run does not bring it back.
    assert dep.manage("-r", infra1_rabbits[1]).returncode == 0
    assert check(dep) == {"stale": [], "missing": []}
    assert infra1_rabbits[1] not in dep.generate()["_meta"]["hostvars"]


def test_removed_host_and_its_containers_are_stale(dep):
    stored = dep.stored()
    config = dep.config()
    del config["shared_infra_hosts"]["infra2"]
    config["compute_hosts"]["compute2"] = {"ip": "172.29.236.22"}
    dep.save_config(config)
    report = check(dep)
    infra2 = [n for n, hv in stored["_meta"]["hostvars"].items() if hv.get("physical_host") == "infra2"]
    assert [s["name"] for s in report["stale"]] == [n for n in stored["_meta"]["hostvars"] if n in infra2]
    reasons = {s["name"]: s["reason"] for s in report["stale"]}
    assert reasons["infra2"] == "host is no longer in the config"
    assert all(reasons[n] == "its host infra2 is no longer in the config" for n in infra2 if n != "infra2")
    assert report["missing"] == ["compute2"]
    table = dep.manage("--check-stale").stdout
    assert "the next inventory run will add 1 entry: compute2" in table


def test_service_moved_to_bare_metal_and_type_removed(dep):
    stored = dep.stored()
    config = dep.config()
    config["shared_infra_hosts"]["infra2"]["no_containers"] = True
    dep.save_config(config)
    env_d = os.path.join(dep.config_dir, "env.d")
    os.makedirs(env_d)
    with open(os.path.join(env_d, "drop.yml"), "w") as fh:
        fh.write("container_skel:\n  memcached_container: {}\n")
    reasons = {s["name"]: s["reason"] for s in check(dep)["stale"]}
    infra2 = containers_of(stored, "infra2")
    memcached = set(stored["memcached_container"]["hosts"])
    assert set(reasons) == infra2 | memcached
    infra2_galera = next(n for n in infra2 if "galera" in n)
    assert reasons[infra2_galera] == "galera_container now runs on infra2 itself (no_containers or is_metal)"
    infra1_memcached = next(n for n in memcached if n.startswith("infra1"))
    assert reasons[infra1_memcached] == "the skeleton no longer defines memcached_container"


def test_stale_check_needs_a_valid_config(dep):
    with open(os.path.join(dep.config_dir, "openstack_user_config.yml"), "a") as fh:
        fh.write("lxc_hosts: {}\n")
    assert_one_line_error(dep.manage("--check-stale"), "lxc_hosts is defined in the user config")
    assert_one_line_error(dep.manage("--check-stale", "--environment", str(dep.root)), "env.d does not exist")


def test_expected_counts_in_process(dep):
    config, skeleton = stale.load_config(dep.config_dir, ENVIRONMENT)
    counts = stale.expected_counts(config, skeleton)
    assert counts[("infra1", "rabbit_mq_container")] == (2, False)
    assert counts[("infra2", "rabbit_mq_container")] == (1, False)
    assert ("compute1", "rabbit_mq_container") not in counts


def test_containers_of_a_dashed_env_d_group_are_expected_not_stale(dep):
    # An env.d spelt with dashes places legacy_container in shared-infra_containers, fed by shared_infra_hosts.
    write_config(os.path.join(dep.config_dir, "env.d"), DASHED_ENV_D, "legacy.yml")
    legacy = dep.generate()["legacy_container"]["hosts"]
    assert [n.split("-legacy-container-")[0] for n in legacy] == ["infra1", "infra2"]
    assert check(dep) == {"stale": [], "missing": []}
    config, skeleton = stale.load_config(dep.config_dir, ENVIRONMENT)
    counts = stale.expected_counts(config, skeleton)
    assert counts[("infra1", "legacy_container")] == counts[("infra2", "legacy_container")] == (1, False)


def test_host_that_stays_in_another_group_loses_only_its_containers(dep):
    stored = dep.stored()
    config = dep.config()
    config["compute_hosts"]["infra2"] = config["shared_infra_hosts"].pop("infra2")
    dep.save_config(config)
    reasons = {s["name"]: s["reason"] for s in check(dep)["stale"]}
    infra2 = containers_of(stored, "infra2")
    assert set(reasons) == infra2
    galera = next(n for n in infra2 if "galera" in n)
    assert reasons[galera] == "the config no longer places galera_container on infra2"


def test_container_in_no_type_group_is_stale_in_process(dep):
    stored = dep.stored()
    utility = stored.pop("utility_container")["hosts"]
    config, skeleton = stale.load_config(dep.config_dir, ENVIRONMENT)
    found = stale.find_stale(stored, config, skeleton)
    assert [(s.name, s.reason) for s in found] == [
        (n, "it is in no container group of the skeleton") for n in stored["_meta"]["hostvars"] if n in utility]
