"""Reading the user config, conf.d and env.d: merge rules, order, errors."""

import os
import string

import pytest

from helpers import ENVIRONMENT, base_config, write_config
from osa_inventory.generate.config import (MAX_FILE_BYTES, MAX_VALUES, config_signature, load_skeleton,
                                           load_user_config, merge, read_yaml)
from osa_inventory.errors import ConfigError
from osa_inventory.generate import config


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


# -- bounds, YAML errors and the duplicate-key loader ----------------------------------------------

def refusal(path) -> str:
    with pytest.raises(ConfigError) as err:
        read_yaml(str(path))
    assert "\n" not in str(err.value)
    return str(err.value)


def test_a_file_of_exactly_the_size_limit_is_read_one_byte_more_is_refused(tmp_path):
    path = tmp_path / "big.yml"
    line = b"#" * 1023 + b"\n"
    assert MAX_FILE_BYTES % len(line) == 0
    path.write_bytes(line * (MAX_FILE_BYTES // len(line)))
    assert read_yaml(str(path)) is None
    with open(path, "ab") as fh:
        fh.write(b"\n")
    assert refusal(path) == f"{path}: is larger than 16 MiB; no such file is that large, check it"


def _aliased(extra: int) -> str:
    """YAML that expands to MAX_VALUES - 996 + extra values: a 999-item list and 1998 aliases of it."""
    # Values: the top mapping, its keys a and b, list a (1 + 999), list b (1 + 1998 * 1000 + extra).
    text = "a: &a [" + ", ".join(["x"] * 999) + "]\nb: [" + ", ".join(["*a"] * 1998 + ["0"] * extra) + "]\n"
    assert 1 + 2 + 1000 + 1 + 1998 * 1000 + extra == MAX_VALUES - 996 + extra
    return text


def test_aliases_may_expand_to_the_value_limit_not_beyond(tmp_path):
    path = tmp_path / "aliases.yml"
    path.write_text(_aliased(996))
    data = read_yaml(str(path))
    assert len(data["b"]) == 1998 + 996 and data["b"][0] is data["a"]
    path.write_text(_aliased(997))
    assert refusal(path) == (f"{path}: expands to more than {MAX_VALUES:,} values (YAML aliases?); "
                             "no deployment needs that many, check the file")


def test_mapping_values_count_too(tmp_path):
    # The same expansion through a mapping: each alias of the mapping counts its keys and values.
    path = tmp_path / "aliases.yml"
    items = ", ".join(f"k{i}: x" for i in range(499))
    path.write_text(f"a: &a {{{items}, last: [1]}}\nb: [" + ", ".join(["*a"] * 1998) + "]\n")
    # a: 1 + 499 * 2 + 1 (key last) + 2 (its list and item) = 1002 values; b: 1 + 1998 * 1002.
    assert 3 + 1002 + 1 + 1998 * 1002 > MAX_VALUES
    assert "expands to more than" in refusal(path)


@pytest.mark.parametrize("text", ["loop: &l [*l]\n", "loop: &l {a: [1, *l]}\n"])
def test_an_alias_inside_its_own_value_is_refused(tmp_path, text):
    path = tmp_path / "loop.yml"
    path.write_text(text)
    assert refusal(path) == f"{path}: a YAML alias refers to the value that contains it; remove the loop"


def test_nesting_deeper_than_python_can_measure_is_refused(tmp_path):
    path = tmp_path / "deep.yml"
    path.write_text("a: " + "[" * 990 + "]" * 990 + "\n")
    assert refusal(path) == f"{path}: is nested too deeply to be a deployment config; check the file"


def test_shared_values_are_read_as_written(tmp_path):
    path = tmp_path / "shared.yml"
    path.write_text("infra: &infra {infra1: {ip: 172.29.236.11}}\nshared_infra_hosts: *infra\n"
                    "identity_hosts: *infra\n")
    data = read_yaml(str(path))
    assert data["shared_infra_hosts"] == data["identity_hosts"] == {"infra1": {"ip": "172.29.236.11"}}


def duplicate(path, where: str, key: str, first: int) -> str:
    """The line a duplicate key gets: file:line:column, the key and the line of its first use."""
    return (f"{path}:{where}: YAML syntax error: duplicate key '{key}' (first at line {first}); "
            "merge the two entries into one; fix the file")


def test_duplicate_key_is_named_with_file_line_column_and_first_line(tmp_path):
    path = tmp_path / "dup.yml"
    path.write_text("a: 1\nhosts:\n  h1: {ip: 10.0.0.1}\n  h2: {ip: 10.0.0.2}\n  h1: {ip: 10.0.0.3}\n")
    assert refusal(path) == duplicate(path, "5:3", "h1", 3)


def test_merge_keys_are_allowed_and_duplicates_after_them_still_found(tmp_path):
    path = tmp_path / "merge.yml"
    path.write_text("base: &b {x: 1, y: 2}\nother: &o {z: 9}\nuse:\n  <<: [*b, *o]\n  y: 3\n")
    assert read_yaml(str(path))["use"] == {"x": 1, "y": 3, "z": 9}
    path.write_text("base: &b {x: 1}\nuse:\n  <<: *b\n  z: 1\n  z: 2\n")
    assert refusal(path) == duplicate(path, "5:3", "z", 4)


def _merge_chain(levels: int) -> str:
    """Mappings ``a`` to ``z`` (at most), each merging the one before twice: ``b: &b {<<: [*a, *a]}``."""
    names = string.ascii_lowercase[:levels + 1]
    lines = [f"{names[0]}: &{names[0]} {{k: v}}"] + [
        f"{name}: &{name} {{<<: [*{before}, *{before}]}}" for before, name in zip(names, names[1:])]
    return "\n".join(lines) + "\n"


def test_merge_keys_cost_what_is_written_not_two_to_the_depth(tmp_path):
    # PyYAML before 6.0.4 copied a merged mapping's pairs once per alias of it, at every level:
    # 2**levels pairs to build (a 538-byte file of 25 levels, minutes). requirements.txt's floor
    # is the release that merges each pair once; this pins it down without timing anything.
    loader = config._Loader(_merge_chain(12))
    try:
        deepest = loader.get_single_node().value[-1][1]
        loader.flatten_mapping(deepest)
        assert len(deepest.value) == 1, f"{len(deepest.value)} pairs merged from one written pair"
    finally:
        loader.dispose()
    path = tmp_path / "merges.yml"
    path.write_text(_merge_chain(25))
    assert path.stat().st_size < 591
    assert read_yaml(str(path)) == {name: {"k": "v"} for name in string.ascii_lowercase}


def test_duplicates_after_a_complex_key_are_still_found(tmp_path):
    path = tmp_path / "complex.yml"
    path.write_text("? [a]\n: 1\nb: 1\nb: 2\n")
    assert refusal(path) == duplicate(path, "4:1", "b", 3)
    path.write_text("? [a]\n: 1\nb: 1\n")
    assert refusal(path) == f"{path}:1:3: YAML syntax error: found unhashable key; fix the file"


def test_syntax_error_gives_the_problem_not_its_context(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("a: [1, 2\nb: 3\n")
    assert refusal(path) == f"{path}:2:2: YAML syntax error: did not find expected ',' or ']'; fix the file"


def test_a_character_yaml_does_not_allow_is_named(tmp_path):
    path = tmp_path / "ctrl.yml"
    path.write_bytes(b"a: \x07\n")
    assert refusal(path) == (f"{path}: cannot be parsed as YAML (unacceptable character #x0007: "
                             f"control characters are not allowed in \"{path}\", position 3)")


def test_utf16_files_are_read(tmp_path):
    # YAML allows UTF-16 with a byte-order mark (what some editors save); the loader detects it.
    path = tmp_path / "utf16.yml"
    path.write_bytes("name: café\nlist: [1, 2]\n".encode("utf-16"))
    assert read_yaml(str(path)) == {"name": "café", "list": [1, 2]}


@pytest.mark.parametrize("make, reason", [(lambda p: p.mkdir(), "is a folder, not a regular file"),
                                          (os.mkfifo, "is a FIFO (named pipe), not a regular file"),
                                          (lambda p: None, "cannot be read (No such file or directory)")])
def test_a_file_that_cannot_be_read_says_why(tmp_path, make, reason):
    path = tmp_path / "x.yml"
    make(path)
    assert refusal(path).startswith(f"{path}: {reason}")  # a FIFO at once: it is never opened for a writer


def test_missing_user_config_gives_the_way_out(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_user_config(str(tmp_path))
    assert str(err.value) == (
        f"{tmp_path / 'openstack_user_config.yml'} does not exist; create it (see etc/openstack_deploy/ for "
        "examples) or point --config at the folder that holds it")


@pytest.mark.parametrize("where", ["openstack_user_config.yml", "conf.d/extra.yml"])
def test_a_file_that_is_not_a_mapping_is_named_with_what_it_is(tmp_path, where):
    write_config(str(tmp_path), {"a": 1})
    (tmp_path / "conf.d").mkdir()
    (tmp_path / where).write_text("- a\n- b\n")
    with pytest.raises(ConfigError) as err:
        load_user_config(str(tmp_path))
    assert str(err.value) == f"{tmp_path / where}: expected a mapping at the top level, found a list"


def test_an_empty_conf_d_file_adds_nothing(tmp_path):
    write_config(str(tmp_path), {"a": 1})
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "empty.yml").write_text("# nothing yet\n")
    assert load_user_config(str(tmp_path)) == {"a": 1}


def test_env_d_file_that_is_not_a_mapping_is_named(tmp_path):
    (tmp_path / "env.d").mkdir()
    (tmp_path / "env.d" / "x.yml").write_text("just text\n")
    with pytest.raises(ConfigError) as err:
        load_skeleton(ENVIRONMENT, str(tmp_path))
    assert str(err.value) == f"{tmp_path / 'env.d' / 'x.yml'}: expected a mapping at the top level, found a str"
    (tmp_path / "env.d" / "x.yml").write_text("container_skel: [a]\n")
    with pytest.raises(ConfigError) as err:
        load_skeleton(ENVIRONMENT, str(tmp_path))
    assert str(err.value) == f"{tmp_path / 'env.d' / 'x.yml'}: container_skel must be a mapping, found a list"


def test_conf_d_may_hold_links_to_files_kept_elsewhere(tmp_path):
    write_config(str(tmp_path), {"a": 1})
    target = write_config(str(tmp_path / "site"), {"a": 2}, "site.yml")
    (tmp_path / "conf.d").mkdir()
    os.symlink(target, str(tmp_path / "conf.d" / "site.yml"))
    assert load_user_config(str(tmp_path))["a"] == 2


def test_the_dangling_link_error_gives_the_way_out(tmp_path):
    write_config(str(tmp_path), {"a": 1})
    (tmp_path / "conf.d").mkdir()
    os.symlink(str(tmp_path / "gone.yml"), str(tmp_path / "conf.d" / "hosts.yml"))
    with pytest.raises(ConfigError) as err:
        load_user_config(str(tmp_path))
    assert str(err.value) == (f"{tmp_path / 'conf.d' / 'hosts.yml'} is a link to {tmp_path / 'gone.yml'}, "
                              "which does not exist; fix or remove the link")


def test_container_entries_are_processed_in_the_base_folders_listing_order(tmp_path, monkeypatch):
    # OSA processes env.d in the order the filesystem lists it, sub-folders too; the config's own
    # env.d adds its new entries after the base ones, and its values still win.
    base = tmp_path / "env" / "env.d"
    for rel, key in (("a.yml", "a_container"), ("b.yml", "b_container"),
                     ("sub/c.yml", "c_container"), ("sub/d.yml", "d_container")):
        write_config(str(base / os.path.dirname(rel)),
                     {"container_skel": {key: {"belongs_to": ["x_containers"], "contains": [key[0]]}}},
                     os.path.basename(rel))
    write_config(str(tmp_path / "config" / "env.d"),
                 {"container_skel": {"z_container": {"contains": ["z"]}, "a_container": {"contains": ["A"]}}},
                 "local.yml")
    real = os.scandir

    def reversed_listing(path):
        return iter(sorted(real(path), key=lambda e: e.name, reverse=True))
    monkeypatch.setattr(os, "scandir", reversed_listing)
    skel = load_skeleton(str(tmp_path / "env"), str(tmp_path / "config"))
    assert skel.container_order == ["b_container", "a_container", "d_container", "c_container", "z_container"]
    assert skel.container_skel["a_container"]["contains"] == ["A"]


def test_config_signature_changes_with_every_file_the_config_is_read_from(tmp_path):
    env = tmp_path / "env"
    write_config(str(env / "env.d"), {"container_skel": {}}, "base.yml")
    write_config(str(env), {"not": "env.d"}, "other.yml")   # beside env.d: not part of the config
    config = tmp_path / "config"
    write_config(str(config), {"a": 1})
    signature = config_signature(str(config), str(env))
    assert [entry[0] for entry in signature] == [str(config / "openstack_user_config.yml"),
                                                 str(env / "env.d" / "base.yml")]
    assert all(len(entry) == 4 for entry in signature)
    assert config_signature(str(config), str(env)) == signature   # nothing changed
    steps = [
        lambda: write_config(str(config / "conf.d"), {"b": 1}, "extra.yml"),
        lambda: write_config(str(config / "env.d"), {"container_skel": {}}, "local.yml"),
        lambda: write_config(str(env / "env.d"), {"container_skel": {"x": {}}}, "base.yml"),
        lambda: write_config(str(config), {"a": 22}),
        lambda: os.remove(config / "conf.d" / "extra.yml"),
    ]
    for step in steps:
        before = config_signature(str(config), str(env))
        step()
        assert config_signature(str(config), str(env)) != before, step
    names = [entry[0] for entry in config_signature(str(config), str(env))]
    assert names == [str(config / "openstack_user_config.yml"), str(env / "env.d" / "base.yml"),
                     str(config / "env.d" / "local.yml")]


def test_config_signature_of_a_missing_user_config(tmp_path):
    base = write_config(str(tmp_path / "env" / "env.d"), {"container_skel": {}}, "base.yml")
    signature = config_signature(str(tmp_path / "config"), str(tmp_path / "env"))
    assert [entry[:2] for entry in signature] == [(str(tmp_path / "config" / "openstack_user_config.yml"), None),
                                                  (base, os.path.getsize(base))]


def test_only_env_d_of_the_config_folder_is_read_as_env_d(tmp_path):
    # The config folder holds other files (user_variables.yml, notes); only env.d/ is the skeleton's.
    write_config(str(tmp_path), base_config())
    (tmp_path / "user_notes.yml").write_text("- not a mapping\n")
    write_config(str(tmp_path / "conf.d"), {"container_skel": {"galera_container": {}}}, "odd.yml")
    skel = load_skeleton(ENVIRONMENT, str(tmp_path))
    assert skel.container_skel["galera_container"]["contains"] == ["galera"]


# Documents for the two loaders (libyaml's parser and PyYAML's own): accepted values of every
# implicit type, sets, ordered maps, merges, aliases, keys that are not strings, and what is refused
# (duplicates, unhashable keys, tags that build objects, bad merges, loops, syntax errors).
LOADER_CASES = {
    "scalars": "a: 1\nb: yes\nc: no\nd: on\ne: Off\nf: TRUE\ng: ~\nh: null\ni: 0x1F\nj: 0o17\nk: 1_000\n"
               "l: 1:30\nm: .inf\nn: -.Inf\no: .nan\np: 1e3\nq: 2001-12-14t21:59:43.10-05:00\nr: 2002-12-14\n"
               "s: !!binary aGVsbG8=\nt: '010'\nu: 010\nv: +12\nw: 0b101\nx: 'yes'\ny: !!str 1\nz: !!float 1\n",
    "collections": "s: !!set {a, b}\no: !!omap [a: 1, b: 2]\np: !!pairs [a: 1, a: 2]\nl: [1, [2, {c: d}]]\n"
                   "e: {}\nf: []\n1: int key\n2.5: float key\n~: null key\n",
    "true is 1": "1: int key\ntrue: bool key\n",
    "merges": "base: &b {x: 1, y: 2}\nother: &o {z: 9}\nuse:\n  <<: [*b, *o]\n  y: 3\none: {<<: *b, w: 0}\n"
              "list: [*b, *b]\n",
    "same line": "{a: 1, a: 2}\n",
    "empty": "",
    "document markers": "---\na: 1\n...\n",
    "unicode": "\ufeffclé: \"ü\\u00e9\"\nquoted: '='\n",
    "duplicate": "a: 1\nb: 2\na: 3\n",
    "nested duplicate": "x:\n  a: 1\n  a: 2\n",
    "duplicate after merge": "base: &b {x: 1}\nuse:\n  <<: *b\n  z: 1\n  z: 2\n",
    "duplicate after unhashable key": "? [a]\n: 1\nb: 1\nb: 2\n",
    "unhashable key": "? [a]\n: 1\nb: 1\n",
    "value key": "=: 1\n",
    "merge of a scalar": "a: {<<: 1}\n",
    "merge of a list of scalars": "a: {<<: [1]}\n",
    "python object": "a: !!python/object:os.system {}\n",
    "python name": "a: !!python/name:os.system\n",
    "local tag": "a: !custom 1\n",
    "loop": "loop: &l [*l]\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "set of a sequence": "a: !!set [x, y]\n",
    "unknown alias": "a: *nowhere\n",
    "unclosed list": "a: [1, 2\nb: 3\n",
    "mapping in a plain scalar": "a: b: c\n",
    "tab indent": "a:\n\tb: 1\n",
}


def _both_loaders(tmp_path, name: str, monkeypatch) -> list[str]:
    """``read_yaml`` of LOADER_CASES[name] with the project's loader, then with one over PyYAML's own parser."""
    import yaml

    path = tmp_path / "case.yml"
    path.write_text(LOADER_CASES[name], encoding="utf-8")
    answers = []
    for base in (config._Loader, type("PurePythonLoader", (config._NoDuplicateKeys, yaml.SafeLoader), {})):
        monkeypatch.setattr(config, "_Loader", base)
        try:
            answers.append(repr(read_yaml(str(path))))  # repr: types, NaN and key order compared too
        except ConfigError as exc:
            answers.append(f"refused: {exc}")
    return answers


@pytest.mark.parametrize("name", sorted(LOADER_CASES))
def test_libyaml_and_pure_python_loaders_give_the_same_answers(tmp_path, name, monkeypatch):
    import yaml

    if not getattr(yaml, "__with_libyaml__", False):
        pytest.skip("PyYAML without libyaml: the project's loader is the pure-Python one")
    ours, pure = _both_loaders(tmp_path, name, monkeypatch)
    assert config._Base is yaml.CSafeLoader
    if ours.startswith("refused: ") and "YAML syntax error" in ours and "duplicate key" not in ours:
        # The two parsers word a syntax error their own way; both refuse it, naming the file and line.
        assert pure.startswith(f"refused: {tmp_path / 'case.yml'}:"), pure
        assert ours.startswith(f"refused: {tmp_path / 'case.yml'}:"), ours
    else:
        assert ours == pure


def test_the_loaders_cases_cover_acceptance_and_every_kind_of_refusal(tmp_path, monkeypatch):
    answers = {name: _both_loaders(tmp_path, name, monkeypatch)[0] for name in LOADER_CASES}
    assert answers["scalars"].startswith("{'a': 1, 'b': True, 'c': False, 'd': True, 'e': False, 'f': True, "
                                         "'g': None, 'h': None, 'i': 31, 'j': '0o17', 'k': 1000, 'l': 90, 'm': inf, "
                                         "'n': -inf, 'o': nan, 'p': '1e3', 'q': datetime.datetime(2001, 12, 14, 21")
    assert answers["same line"] == "{'a': 2}"
    assert answers["merges"].endswith("'use': {'x': 1, 'y': 3, 'z': 9}, 'one': {'x': 1, 'y': 2, 'w': 0}, "
                                      "'list': [{'x': 1, 'y': 2}, {'x': 1, 'y': 2}]}")
    refused = {name for name, answer in answers.items() if answer.startswith("refused: ")}
    assert refused == set(LOADER_CASES) - {"scalars", "collections", "merges", "same line", "empty",
                                           "document markers", "unicode"}
    assert "duplicate key 'b' (first at line 3)" in answers["duplicate after unhashable key"]
    assert "expected a mapping node, but found sequence" in answers["set of a sequence"]
    assert "duplicate key True (first at line 1)" in answers["true is 1"]
    assert "could not determine a constructor for the tag 'tag:yaml.org,2002:python/object:os.system'" \
        in answers["python object"]


def test_without_libyaml_the_pure_python_loader_reads_the_same(tmp_path):
    import subprocess
    import sys

    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(config.__file__)))  # lib/, or a stage's src/
    path = tmp_path / "case.yml"
    path.write_text(LOADER_CASES["merges"] + "dup: 1\ndup: 2\n")
    code = ("import sys, yaml\n"
            "del yaml.CSafeLoader\n"  # as PyYAML built without libyaml has it
            f"sys.path.insert(0, {package_parent!r})\n"
            "from osa_inventory.generate import config\n"
            "from osa_inventory.errors import ConfigError\n"
            "assert config._Base is yaml.SafeLoader, config._Base\n"
            "try:\n    config.read_yaml(sys.argv[1])\nexcept ConfigError as exc:\n    print(exc)\n")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == duplicate(path, "9:1", "dup", 8) + "\n"


def test_a_mapping_without_merge_keys_is_built_in_one_pass(tmp_path, monkeypatch):
    # SafeConstructor's own construct_mapping (which looks for merge keys and builds every key again)
    # only for mappings that have merge keys: what makes reading a large config cheaper, same result.
    import yaml

    calls = []
    own = yaml.constructor.SafeConstructor.construct_mapping
    monkeypatch.setattr(yaml.constructor.SafeConstructor, "construct_mapping",
                        lambda self, node, deep=False: calls.append(node) or own(self, node, deep))
    path = tmp_path / "plain.yml"
    path.write_text("hosts:\n  h1: {ip: 10.0.0.1}\n  h2: {ip: 10.0.0.2}\n")
    assert read_yaml(str(path)) == {"hosts": {"h1": {"ip": "10.0.0.1"}, "h2": {"ip": "10.0.0.2"}}}
    assert calls == []
    path.write_text("base: &b {x: 1}\nuse: {<<: *b, y: 2}\n")
    assert read_yaml(str(path)) == {"base": {"x": 1}, "use": {"x": 1, "y": 2}}
    assert len(calls) == 1


def test_reading_records_every_file_parsed_with_its_bytes_and_the_base_listing(tmp_path):
    from osa_inventory.config_files import LISTING, _yaml_files, listing_bytes

    write_config(str(tmp_path), base_config())
    write_config(str(tmp_path / "conf.d"), {"extra_hosts": {}}, "10-extra.yml")
    write_config(str(tmp_path / "env.d"), {"container_skel": {}}, "mine.yml")
    inputs: list = []
    load_user_config(str(tmp_path), inputs)
    user = [str(tmp_path / "openstack_user_config.yml"), str(tmp_path / "conf.d" / "10-extra.yml")]
    assert inputs == [(path, open(path, "rb").read()) for path in user]
    load_skeleton(ENVIRONMENT, str(tmp_path), inputs)
    base_dir = os.path.join(ENVIRONMENT, "env.d")
    files = user + _yaml_files(base_dir) + [str(tmp_path / "env.d" / "mine.yml")]
    listing = (LISTING, listing_bytes(_yaml_files(base_dir, listing_order=True)))
    assert inputs == [(path, open(path, "rb").read()) for path in files] + [listing]
    # The reuse key reads without parsing (config_files.read_inputs): the two must agree, or a change the
    # generator sees could leave the key unchanged.
    from osa_inventory.config_files import read_inputs
    assert inputs == read_inputs(str(tmp_path), ENVIRONMENT)


def test_a_value_that_does_not_fit_its_tag_is_one_line(tmp_path):
    """!!int x: PyYAML's int() raises ValueError, which was an 'unexpected ValueError'."""
    path = tmp_path / "case.yml"
    path.write_text("a: !!int x\n")
    with pytest.raises(ConfigError) as err:
        read_yaml(str(path))
    assert str(err.value) == (f"{path}: a value does not fit its YAML tag (invalid literal for int() with base 10: "
                              "'x'); fix the file")


def test_what_json_cannot_print_is_read_as_yaml_builds_it(tmp_path):
    """Sets, dates and mixed keys are OSA-accepted config where the inventory never shows them: the reader
    keeps them (inventory/printed.py refuses them only when the inventory would print them)."""
    import datetime
    path = tmp_path / "case.yml"
    path.write_text("updated: 2024-01-01\nnotes: !!set {a}\n7: seven\n")
    assert read_yaml(str(path)) == {"updated": datetime.date(2024, 1, 1), "notes": {"a"}, 7: "seven"}


def test_keys_json_spells_as_text_are_kept_as_written(tmp_path):
    """Number, boolean and null keys alone in their mapping are what OSA accepts: kept, for JSON to spell."""
    path = tmp_path / "case.yml"
    path.write_text("a: {1: x, 2: y, 10: z}\nb: {1.5: x}\nc: {true: x}\nd: {~: x}\ne: [1, 2.5, true, ~, s]\n")
    assert read_yaml(str(path)) == {"a": {1: "x", 2: "y", 10: "z"}, "b": {1.5: "x"}, "c": {True: "x"},
                                    "d": {None: "x"}, "e": [1, 2.5, True, None, "s"]}
