"""Reading the user config, conf.d and env.d: merge rules, order, errors."""

import os

import pytest

from helpers import ENVIRONMENT, base_config, write_config
from osa_inventory.generate.config import load_skeleton, load_user_config, merge, read_yaml
from osa_inventory.errors import ConfigError


def test_merge_recurses_into_dicts_and_replaces_the_rest():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": {"e": 1}, "f": 1}
    merge(base, {"a": {"c": [3]}, "d": {}, "f": {"g": 2}})
    assert base == {"a": {"b": 1, "c": [3]}, "d": {}, "f": {"g": 2}}


def test_merge_does_not_alias_the_source():
    extra = {"a": {"b": [1]}}
    base = merge({}, extra)
    base["a"]["b"].append(2)
    assert extra == {"a": {"b": [1]}}


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(ConfigError) as err:
        read_yaml(str(path))
    assert f"{path}:" in str(err.value)
    assert ":3:" in str(err.value) or ":4:" in str(err.value)


def test_missing_user_config_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="openstack_user_config.yml does not exist"):
        load_user_config(str(tmp_path))


def test_conf_d_files_merge_in_name_order(tmp_path):
    write_config(str(tmp_path), {"a": 1, "x_hosts": {"h1": {"ip": "10.0.0.1"}}})
    write_config(str(tmp_path / "conf.d"), {"a": 2, "x_hosts": {"h2": {"ip": "10.0.0.2"}}}, "20-b.yml")
    write_config(str(tmp_path / "conf.d"), {"a": 3}, "10-a.yaml")
    (tmp_path / "conf.d" / "ignored.txt").write_text("a: 99\n")
    config = load_user_config(str(tmp_path))
    assert config["a"] == 2
    assert list(config["x_hosts"]) == ["h1", "h2"]


def test_top_level_must_be_a_mapping(tmp_path):
    (tmp_path / "openstack_user_config.yml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_user_config(str(tmp_path))


def test_config_env_d_overrides_the_base_skeleton(tmp_path):
    write_config(str(tmp_path), base_config())
    write_config(str(tmp_path / "env.d"), {"container_skel": {"galera_container": {"properties": {"is_metal": True}}}},
                 "galera.yml")
    skel = load_skeleton(ENVIRONMENT, str(tmp_path))
    galera = skel.container_skel["galera_container"]
    assert galera["properties"] == {"is_metal": True}
    assert galera["contains"] == ["galera"]  # the rest of the entry survives the merge


def test_skeleton_value_conflicts_resolve_in_sorted_name_order(tmp_path):
    env = tmp_path / "env"
    for name, value in (("b.yml", "from-b"), ("a.yml", "from-a"), ("c.yml", "from-c")):
        write_config(str(env / "env.d"), {"component_skel": {"x": {"belongs_to": [value]}}}, name)
    skel = load_skeleton(str(env), str(tmp_path))
    assert skel.component_skel["x"]["belongs_to"] == ["from-c"]


def test_empty_entry_in_override_deletes_the_entry_contents(tmp_path):
    write_config(str(tmp_path / "env.d"), {"container_skel": {"galera_container": {}}}, "drop.yml")
    skel = load_skeleton(ENVIRONMENT, str(tmp_path))
    assert skel.container_skel["galera_container"] == {}


def test_environment_without_env_d_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="env.d"):
        load_skeleton(str(tmp_path), str(tmp_path))


def test_shipped_skeleton_processes_every_container_type():
    skel = load_skeleton(ENVIRONMENT, os.path.join(ENVIRONMENT, "no-such-config"))
    assert sorted(skel.container_order) == sorted(skel.container_skel)
