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


def test_conf_d_sub_folders_are_read_own_files_first_then_sub_folders_by_name(tmp_path):
    # The documented order: a folder's own files by name, then each sub-folder by name, depth first.
    write_config(str(tmp_path), {"order": ["user"]})
    conf_d = tmp_path / "conf.d"
    for rel in ("b/deeper/x.yml", "b/a.yml", "z.yml", "a/z.yaml", "m.yml"):
        write_config(str(conf_d / os.path.dirname(rel)), {"last": rel}, os.path.basename(rel))
    from osa_inventory.generate.config import _yaml_files
    assert [os.path.relpath(p, conf_d) for p in _yaml_files(str(conf_d))] == [
        "m.yml", "z.yml", "a/z.yaml", "b/a.yml", "b/deeper/x.yml"]
    assert load_user_config(str(tmp_path))["last"] == "b/deeper/x.yml"


def test_conf_d_does_not_enter_linked_folders(tmp_path):
    # As os.walk (and so OSA): a link to a folder is not entered, so a link back up cannot loop.
    write_config(str(tmp_path), {"a": 1})
    write_config(str(tmp_path / "conf.d"), {"a": 2}, "x.yml")
    write_config(str(tmp_path / "elsewhere"), {"a": 3}, "y.yml")
    os.symlink(str(tmp_path / "conf.d"), str(tmp_path / "conf.d" / "loop"))
    os.symlink(str(tmp_path / "elsewhere"), str(tmp_path / "conf.d" / "site"))
    assert load_user_config(str(tmp_path))["a"] == 2


def test_conf_d_link_to_a_missing_file_is_an_error(tmp_path):
    write_config(str(tmp_path), {"a": 1})
    (tmp_path / "conf.d" / "site").mkdir(parents=True)
    os.symlink(str(tmp_path / "gone.yml"), str(tmp_path / "conf.d" / "site" / "hosts.yml"))
    with pytest.raises(ConfigError, match=r"conf.d/site/hosts.yml is a link to .*gone.yml, which does not exist"):
        load_user_config(str(tmp_path))
    os.remove(tmp_path / "conf.d" / "site" / "hosts.yml")  # the advice: fix or remove the link
    assert load_user_config(str(tmp_path)) == {"a": 1}


def test_unreadable_conf_d_sub_folder_is_an_error(tmp_path, monkeypatch):
    # Root reads any folder, so the refusal is simulated where the walk asks for the listing.
    write_config(str(tmp_path), {"a": 1})
    write_config(str(tmp_path / "conf.d" / "site"), {"a": 2}, "x.yml")
    real = os.scandir

    def scandir(path):
        if str(path).endswith("site"):
            raise PermissionError(13, "Permission denied")
        return real(path)
    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(ConfigError, match=r"conf.d/site: cannot be read \(Permission denied\); fix its permissions"):
        load_user_config(str(tmp_path))


def test_env_d_sub_folders_are_read_in_both_folders(tmp_path):
    env = tmp_path / "env"
    write_config(str(env / "env.d" / "extra"), {"component_skel": {"x": {"belongs_to": ["x_all"]}}}, "x.yml")
    write_config(str(tmp_path / "config" / "env.d" / "site"),
                 {"component_skel": {"x": {"belongs_to": ["y_all"]}}}, "y.yml")
    skel = load_skeleton(str(env), str(tmp_path / "config"))
    assert skel.component_skel["x"]["belongs_to"] == ["y_all"]
