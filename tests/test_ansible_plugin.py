"""The Ansible inventory plugin osa.inventory.storage, run by real ansible-core.

The collection is installed from the checkout's collection/ with ansible-galaxy once per session; the
library reaches Ansible's Python through PYTHONPATH (docs/ansible.md). The lock files give ansible-core
2.17 on Python 3.10, 2.19 on 3.11 and 2.21 on 3.12 and 3.13, so the tests run on every version hold the
plugin to the lowest and the highest supported. Each ansible run costs a second or two of CPU: the tests
run on every version (equality with the script, constructed features, the broken config, ansible-doc)
combine their assertions; the cache, the matrix of backends and the rarer paths are marked once.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from ansible_cli import ANSIBLE, ANSIBLE_INVENTORY, BIN, our_stderr
from backend_inis import BACKENDS, craton, filesystem_ini  # noqa: F401 - craton: a fixture of the backend matrix
from etcd_server import etcd  # noqa: F401 - a fixture of the backend matrix
from helpers import ROOT, SCRIPT, history

pytestmark = pytest.mark.skipif(ANSIBLE_INVENTORY is None, reason="ansible-core is not installed")

COLLECTION = os.path.join(ROOT, "collection")
PLUGIN_FILE = os.path.join(COLLECTION, "plugins", "inventory", "storage.py")
GALAXY = shutil.which("ansible-galaxy", path=BIN)
ANSIBLE_DOC = shutil.which("ansible-doc", path=BIN)
AIO = os.path.join(ROOT, "etc", "openstack_deploy", "aio")
PLUGIN = "osa.inventory.storage"
COMMAND = f"ansible inventory plugin {PLUGIN}"
CACHE_USED = "the cached inventory is current"
#: The constructed features every per-version run uses; undo_constructed() takes their results out again.
KEYED = {"key": "component | default('none')", "prefix": "component"}
COMPOSE = {"osa_address": "ansible_host"}
GROUPS = {"osa_metal": "is_metal | default(false)"}
#: A value the deployer wrote as a template: Ansible renders it through the script and through the plugin.
TEMPLATE = "{{ 6 * 7 }}"
NO_LOCK = ("storage backend craton has no lock(): concurrent runs are not serialised, and a run that meets "
           "another run's write, or that would replace an inventory stored since it read, is refused and "
           "stores nothing: run it again (docs/craton.md, Writing)")


@pytest.fixture(scope="session")
def collections(tmp_path_factory) -> str:
    """A collections folder holding the checkout's collection, installed as a user installs it (offline)."""
    where = tmp_path_factory.mktemp("collections")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_"))}
    env.update(ANSIBLE_HOME=str(where / "home"), ANSIBLE_LOCAL_TEMP=str(where / "tmp"))
    result = subprocess.run([GALAXY, "collection", "install", COLLECTION, "-p", str(where)], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert os.path.isfile(where / "ansible_collections" / "osa" / "inventory" / "plugins" / "inventory" / "storage.py")
    return str(where)


def plugin_env(collections: str, tmp_path, library: bool = True) -> dict:
    """Ansible's environment: the collection installed, the library on PYTHONPATH, nothing of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_")) and k != "PYTHONPATH"}
    env.update(ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_HOME=str(tmp_path / "ansible-home"),
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="True",
               PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    if library:
        env["PYTHONPATH"] = os.path.join(ROOT, "lib")
    return env


def script_env(collections: str, tmp_path, config_dir: str, ini: str) -> dict:
    """The same, with the script's settings in the environment, as OSA's rc gives them."""
    return {**plugin_env(collections, tmp_path), "OSA_INI": ini, "OSA_CONFIG_DIR": config_dir}


def run(cmd: list[str], env: dict, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=cwd)


def packed(text: str) -> str:
    """``text`` without white space: 2.17 wraps warnings at 80 columns, breaking lines even inside paths."""
    return "".join(text.split())


def failure_of(result: subprocess.CompletedProcess) -> str:
    """The failed run's stderr, :func:`packed`; no traceback, nothing on stdout."""
    assert result.returncode != 0 and result.stdout == "" and "Traceback" not in result.stderr, result.stderr
    return packed(result.stderr)


def deployment(tmp_path, example: str = AIO) -> str:
    """A copy of an example config whose global_overrides hold a template (every host gets it)."""
    config_dir = tmp_path / "deploy"
    shutil.copytree(example, config_dir)
    path = config_dir / "openstack_user_config.yml"
    config = yaml.safe_load(path.read_text())
    config["global_overrides"]["osa_answer"] = TEMPLATE
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(config_dir)


def source(tmp_path, config_dir: str, ini: str, name: str = "inventory.osa.yml", **options) -> str:
    """A source file of the plugin: the five lines of docs/ansible.md plus ``options``."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"plugin": PLUGIN, "config_dir": config_dir, "osa_ini": ini, **options}))
    return str(path)


def constructed() -> dict:
    return {"compose": COMPOSE, "groups": GROUPS, "keyed_groups": [KEYED]}


def undo_constructed(listed: dict) -> dict:
    """``--list`` output without what the constructed options added, after checking each addition is right."""
    hostvars = listed["_meta"]["hostvars"]
    for host, variables in hostvars.items():
        assert variables.pop("osa_address") == variables["ansible_host"], host
    keyed = {name: listed.pop(name) for name in list(listed) if name.startswith(KEYED["prefix"] + "_")}
    assert keyed, "keyed_groups made no group"
    for name, group in keyed.items():
        assert group["hosts"] and all(f"component_{hostvars[h].get('component', 'none')}" == name
                                      for h in group["hosts"]), name
    metal = listed.pop("osa_metal")
    assert sorted(metal["hosts"]) == sorted(h for h, v in hostvars.items() if v.get("is_metal")) != []
    made = set(keyed) | {"osa_metal"}
    listed["all"]["children"] = [c for c in listed["all"]["children"] if c not in made]
    return listed


def list_through(inventory_source: str, env: dict, warning: str = "") -> dict:
    """``ansible-inventory --list`` of a source: no error, and no warning but ``warning``, once, if given."""
    result = run([ANSIBLE_INVENTORY, "-i", inventory_source, "--list"], env)
    assert result.returncode == 0, result.stderr
    ours = " ".join(our_stderr(result.stderr).split())  # 2.17 wraps warnings at the terminal's width
    assert ours == (f"[WARNING]: {warning}" if warning else ""), result.stderr
    return json.loads(result.stdout)


def test_the_plugin_gives_what_the_script_gives_and_records_itself(collections, tmp_path):
    """Every version: --list equals the script's (constructed results aside), the plugin stored it."""
    config_dir, ini = deployment(tmp_path), filesystem_ini(tmp_path)
    src = source(tmp_path, config_dir, ini, **constructed())
    through_plugin = list_through(src, plugin_env(collections, tmp_path))
    records = history(config_dir, ini)
    assert [r["command"] for r in records] == [f"{COMMAND} ({src})"]  # the first run stored it, as the plugin

    through_script = list_through(SCRIPT, script_env(collections, tmp_path, config_dir, ini))
    assert len(history(config_dir, ini)) == 1  # the script found nothing to store: the same generation
    assert undo_constructed(through_plugin) == through_script
    # No __ansible_unsafe wrapper (2.19+): the template is a plain string, as the script's output gives it.
    assert {v["osa_answer"] for v in through_script["_meta"]["hostvars"].values()} == {TEMPLATE}


def test_a_broken_config_fails_the_source_with_one_line_once(collections, tmp_path):
    """Every version: the project's line, from the one plugin that took the source, nothing stored or printed."""
    config_dir, ini = deployment(tmp_path), filesystem_ini(tmp_path)
    with open(os.path.join(config_dir, "openstack_user_config.yml"), "a", encoding="utf-8") as fh:
        fh.write("compute_hosts: [\n")
    src = source(tmp_path, config_dir, ini)
    result = run([ANSIBLE_INVENTORY, "-i", src, "--list"], plugin_env(collections, tmp_path))
    assert result.returncode != 0 and result.stdout == ""
    # One warning per plugin that took the source and failed.
    ours = re.compile(re.escape(f"{config_dir}/openstack_user_config.yml:") + r"\d+:\d+:YAMLsyntaxerror")
    failed_with = []
    for warning in result.stderr.split("[WARNING]:")[1:]:
        if ours.search(packed(warning)):
            failed_with += re.findall(r"^\*?Failedtoparse(?:\S+?with(\w+)|inventorywith'(\w+)')plugin:",
                                      packed(warning))
    assert [name or name_219 for name, name_219 in failed_with] == ["auto"], result.stderr
    assert "Traceback" not in result.stderr
    assert not os.path.exists(os.path.join(config_dir, "openstack_inventory.json"))


def test_ansible_doc_shows_every_option_with_its_variable(collections, tmp_path):
    """Every version: ansible-doc reads the plugin's documentation, the constructed and cache options included."""
    result = run([ANSIBLE_DOC, "-t", "inventory", PLUGIN, "--json"], plugin_env(collections, tmp_path))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)[PLUGIN]["doc"]
    with open(PLUGIN_FILE, encoding="utf-8") as fh:
        declared = yaml.safe_load(re.search(r'DOCUMENTATION = r"""(.*?)"""', fh.read(), re.S).group(1))["options"]
    for name, option in declared.items():
        assert doc["options"][name].get("env", []) == option.get("env", []), name
    assert {"compose", "groups", "keyed_groups", "strict", "cache", "cache_plugin", "cache_timeout",
            "cache_connection"} <= doc["options"].keys()
    assert doc["options"]["etcd_password"]["env"] == [{"name": "OSA_INVENTORY_ETCD_PASSWORD"}]


@pytest.mark.once
def test_the_cache_answers_only_while_inputs_and_store_are_unchanged(collections, tmp_path):
    """A hit on an unchanged config (with keyed groups in --graph), a config change shows at once."""
    config_dir, ini = deployment(tmp_path), filesystem_ini(tmp_path)
    cache = tmp_path / "cache"
    src = source(tmp_path, config_dir, ini, cache=True, cache_plugin="ansible.builtin.jsonfile",
                 cache_connection=str(cache), keyed_groups=[KEYED])
    env = plugin_env(collections, tmp_path)
    first = list_through(src, env)
    assert len(os.listdir(cache)) == 1 and len(history(config_dir, ini)) == 1

    graph = run([ANSIBLE_INVENTORY, "-i", src, "--graph", "-vvv"], env)
    assert graph.returncode == 0, graph.stderr
    assert CACHE_USED in graph.stdout + graph.stderr  # -vvv goes to stdout up to 2.18, to stderr since
    galera = sorted(h for h, v in first["_meta"]["hostvars"].items() if v.get("component") == "galera")
    assert galera and "@component_galera:\n" + "".join(f"  |  |--{h}\n" for h in galera) in graph.stdout

    os.makedirs(os.path.join(config_dir, "conf.d"), exist_ok=True)
    with open(os.path.join(config_dir, "conf.d", "extra.yml"), "w", encoding="utf-8") as fh:
        fh.write("compute_hosts:\n  compute9:\n    ip: 172.29.236.109\n")
    shown = run([ANSIBLE, "compute9", "-i", src, "-m", "debug", "-a", "var=osa_answer", "-vvv"], env)
    assert shown.returncode == 0, shown.stderr
    assert CACHE_USED not in shown.stdout + shown.stderr
    assert re.search(r'compute9 \| SUCCESS => \{\s*"osa_answer": "?42"?\s*\}', shown.stdout), shown.stdout
    records = history(config_dir, ini)
    assert len(records) == 2 and records[-1]["command"] == f"{COMMAND} ({src})"


@pytest.mark.once
@pytest.mark.parametrize("backend", sorted(set(BACKENDS) - {"filesystem"}))  # filesystem: on every version
def test_every_builtin_backend_gives_the_scripts_inventory(collections, tmp_path, request, backend):
    config_dir = deployment(tmp_path, os.path.join(ROOT, "etc", "openstack_deploy", "production"))
    ini = BACKENDS[backend](tmp_path, request)
    # The library's warnings are Ansible's warnings (the script logs them to inventory.log): Craton's is
    # that it has no lock (docs/craton.md), said once.
    warning = NO_LOCK if backend == "craton" else ""
    through_plugin = list_through(source(tmp_path, config_dir, ini), plugin_env(collections, tmp_path), warning)
    assert [r["command"] for r in history(config_dir, ini)] == [f"{COMMAND} ({tmp_path / 'inventory.osa.yml'})"]
    assert list_through(SCRIPT, script_env(collections, tmp_path, config_dir, ini)) == through_plugin
    assert len(history(config_dir, ini)) == 1


@pytest.mark.once
def test_options_in_the_source_file_override_osa_ini(collections, tmp_path, request):
    """backend and a section's option set in the source reach the library as OSA_INVENTORY_* overrides."""
    config_dir = deployment(tmp_path)
    ini = filesystem_ini(tmp_path)  # says filesystem: the source file's backend option wins
    cluster = request.getfixturevalue("etcd")
    src = source(tmp_path, config_dir, ini, backend="etcd", etcd_endpoints=cluster.endpoints_text,
                 etcd_prefix="/ansible-plugin/override")
    through_plugin = list_through(src, plugin_env(collections, tmp_path))
    assert not os.path.exists(os.path.join(config_dir, "openstack_inventory.json"))
    env = script_env(collections, tmp_path, config_dir, ini)
    env.update(OSA_INVENTORY_BACKEND="etcd", OSA_INVENTORY_ETCD_ENDPOINTS=cluster.endpoints_text,
               OSA_INVENTORY_ETCD_PREFIX="/ansible-plugin/override")
    assert list_through(SCRIPT, env) == through_plugin
    overridden = {**env, "OSA_INI": ini}
    assert len(history_of(config_dir, overridden)) == 1  # the plugin's run stored it in etcd; the script's did not


def history_of(config_dir: str, env: dict) -> list[dict]:
    result = subprocess.run([os.path.join(BIN, "python"), os.path.join(ROOT, "scripts", "inventory-manage.py"),
                             "--config", config_dir, "--history", "--format", "json"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.once
def test_a_cached_inventory_is_not_used_once_the_store_changed(collections, tmp_path):
    """inventory-manage removes a container between two cached runs: the second generates it again."""
    config_dir, ini = deployment(tmp_path), filesystem_ini(tmp_path)
    src = source(tmp_path, config_dir, ini, cache=True, cache_plugin="ansible.builtin.jsonfile",
                 cache_connection=str(tmp_path / "cache"))
    env = plugin_env(collections, tmp_path)
    first = list_through(src, env)
    gone = next(h for h in first["_meta"]["hostvars"] if "galera-container" in h)
    manage = {**env, "OSA_INI": ini}
    removed = run([os.path.join(BIN, "python"), os.path.join(ROOT, "scripts", "inventory-manage.py"),
                   "--config", config_dir, "-r", gone], manage)
    assert removed.returncode == 0, removed.stderr
    again = run([ANSIBLE_INVENTORY, "-i", src, "--list", "-vvv"], env)
    assert again.returncode == 0 and CACHE_USED not in again.stdout + again.stderr
    assert list_through(SCRIPT, script_env(collections, tmp_path, config_dir, ini)) == list_through(src, env)
    assert [r["command"].split()[0] for r in history(config_dir, ini)][-2:] == ["inventory-manage", "ansible"]


@pytest.mark.once
def test_templates_render_through_the_plugin_as_through_the_script(collections, tmp_path):
    config_dir, ini = deployment(tmp_path), filesystem_ini(tmp_path)
    src = source(tmp_path, config_dir, ini)
    outputs = []
    for inventory_source, env in ((src, plugin_env(collections, tmp_path)),
                                  (SCRIPT, script_env(collections, tmp_path, config_dir, ini))):
        shown = run([ANSIBLE, "aio1", "-i", inventory_source, "-m", "debug", "-a", "var=osa_answer"], env)
        assert shown.returncode == 0, shown.stderr
        outputs.append(shown.stdout)
    assert outputs[0] == outputs[1] and re.search(r'"osa_answer": "?42"?', outputs[0]), outputs


@pytest.mark.once
def test_without_the_library_the_source_fails_naming_the_fix(collections, tmp_path):
    config_dir, ini = deployment(tmp_path), filesystem_ini(tmp_path)
    src = source(tmp_path, config_dir, ini)
    text = failure_of(run([ANSIBLE_INVENTORY, "-i", src, "--list"], plugin_env(collections, tmp_path, library=False)))
    assert packed(f"{src}: the osa_inventory library is not importable by Ansible's Python") in text
    assert packed("put its lib/ folder on PYTHONPATH") in text
    # The advice, as printed: the checkout's lib/ on PYTHONPATH.
    assert list_through(src, plugin_env(collections, tmp_path))["_meta"]["hostvars"]


def _plugin_module():
    spec = importlib.util.spec_from_file_location("osa_inventory_storage_plugin", PLUGIN_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_osa_source_files_are_taken(tmp_path):
    """verify_file: *.osa.yml and *.osa.yaml that exist; every other YAML file is another plugin's."""
    plugin = _plugin_module().InventoryModule()
    for name in ("inventory.osa.yml", "x.osa.yaml", "inventory.yml", "osa.yml", "inventory.osa.yml.bak",
                 "inventory.osa.json"):
        (tmp_path / name).write_text(f"plugin: {PLUGIN}\n")
    taken = sorted(n for n in os.listdir(tmp_path) if plugin.verify_file(str(tmp_path / n)))
    assert taken == ["inventory.osa.yml", "x.osa.yaml"]
    assert not plugin.verify_file(str(tmp_path / "missing.osa.yml"))




@pytest.mark.once
def test_source_file_mistakes_are_named_as_written_and_the_advice_works(collections, tmp_path):
    """A misspelt option (Ansible itself ignores it) and a bad value, named by the source file's key."""
    config_dir, ini = deployment(tmp_path), filesystem_ini(tmp_path)
    env = plugin_env(collections, tmp_path)
    misspelt = source(tmp_path, config_dir, ini, backnd="etcd")
    text = failure_of(run([ANSIBLE_INVENTORY, "-i", misspelt, "--list"], env))
    assert packed(f"{misspelt}: unknown option backnd (did you mean backend?); the options are listed by "
                  f"ansible-doc -t inventory {PLUGIN}") in text
    wrong = source(tmp_path, config_dir, ini, backend="no such")  # the advice taken, with a bad value
    text = failure_of(run([ANSIBLE_INVENTORY, "-i", wrong, "--list"], env))
    assert packed(f"option backend of {wrong}: backend 'no such' is not a plain module name") in text
    assert "OSA_INVENTORY_BACKEND" not in text
    assert not os.path.exists(os.path.join(config_dir, "openstack_inventory.json"))
    fixed = source(tmp_path, config_dir, ini, backend="filesystem")
    assert list_through(fixed, env)["_meta"]["hostvars"]


@pytest.mark.once
def test_a_storage_plugin_printing_to_stdout_never_reaches_the_listing(collections, tmp_path):
    """print, os.write(1), a child process, an exit handler: all go to stderr, --list stays pure JSON."""
    from plugin_fixtures import ini_for, plugin_dir
    from test_plugin_isolation import NOISE, NOISY

    config_dir = deployment(tmp_path)
    target = str(tmp_path / "noisy-store.json")
    ini = ini_for(tmp_path, "noisy", plugin_dir(tmp_path, {"noisy.py": NOISY}), f"[noisy]\ntarget = {target}\n")
    result = run([ANSIBLE_INVENTORY, "-i", source(tmp_path, config_dir, ini), "--list"],
                 plugin_env(collections, tmp_path))
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)  # any stray byte would break this
    with open(target, encoding="utf-8") as fh:
        assert set(listed["_meta"]["hostvars"]) == set(json.load(fh)["_meta"]["hostvars"])
    for word in NOISE:
        assert word in result.stderr and word not in result.stdout, word
