"""Reuse of an unchanged run (issue 28): never stale, whatever input changes, and a record cannot be forged.

Each test drives the real script in subprocesses. A deployment is first
*settled*: run 1 stores, run 2 generates the same and leaves a reuse record,
run 3 reuses it (the debug log says which). Then one input changes and the
next run must print exactly what a run without any record prints on a copy of
the same deployment (``full_run``).
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from helpers import ENVIRONMENT, INVENTORY, ROOT, base_config, load_json, run_script, write_config, write_ini

MANAGE = os.path.join(ROOT, "scripts", "inventory-manage.py")
LOG = "inventory.log"


class Deployment:
    """A config folder, its own copy of the base env.d, an osa.ini and a reuse cache folder."""

    def __init__(self, root):
        self.root = str(root)
        self.config_dir = os.path.join(self.root, "deploy")
        self.environment = os.path.join(self.root, "environment")
        self.cache = os.path.join(self.root, "cache")
        write_config(self.config_dir, base_config())
        shutil.copytree(os.path.join(ENVIRONMENT, "env.d"), os.path.join(self.environment, "env.d"))
        self.ini = write_ini(self.root)

    def run(self, *args, script=None, cache=None, expect_ok=True):
        env = {"XDG_CACHE_HOME": cache or self.cache}
        cmd_args = ["-e", self.environment, "--debug", *(args or ["--list"])]
        if script is None:
            result = run_script(self.config_dir, *cmd_args, ini=self.ini, env=env)
        else:
            full = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_"))}
            full.update(env, OSA_INI=self.ini)
            result = subprocess.run([sys.executable, script, "--config", self.config_dir, *cmd_args],
                                    capture_output=True, text=True, env=full, timeout=120)
        if expect_ok:
            assert result.returncode == 0 and result.stderr == "", result.stderr
        return result

    def last_run(self) -> str:
        """What the last run did, as its debug line says: stored, unchanged or reused."""
        with open(os.path.join(self.config_dir, LOG)) as fh:
            line = [x for x in fh if " hosts, " in x][-1]
        return line.split(" hosts, ")[1].split(";")[0]

    def settle(self) -> str:
        """Run until a run is reused (at most: stored, unchanged, reused); the output of that run."""
        done = []
        for _ in range(3):
            out = self.run().stdout
            done.append(self.last_run())
            if done[-1] == "reused":
                return out
        raise AssertionError(f"no run was reused: {done}")

    def edit_config(self, change):
        path = os.path.join(self.config_dir, "openstack_user_config.yml")
        with open(path) as fh:
            config = yaml.safe_load(fh)
        change(config)
        write_config(self.config_dir, config)

    def stored(self) -> str:
        with open(os.path.join(self.config_dir, INVENTORY)) as fh:
            return fh.read()

    def records(self) -> list[str]:
        folder = os.path.join(self.cache, "osa-inventory")
        return [os.path.join(folder, n) for n in sorted(os.listdir(folder))] if os.path.isdir(folder) else []


def full_run(dep: Deployment, tmp_path) -> tuple[str, str]:
    """What a run with no reuse record prints and stores, on a copy of ``dep`` as it is now."""
    twin = tmp_path / "twin"
    shutil.rmtree(twin, ignore_errors=True)
    twin.mkdir()
    copy = Deployment.__new__(Deployment)
    copy.root, copy.ini = str(twin), dep.ini
    copy.config_dir, copy.environment = str(twin / "deploy"), str(twin / "environment")
    copy.cache = str(twin / "cache")
    shutil.copytree(dep.config_dir, copy.config_dir, symlinks=True)
    shutil.copytree(dep.environment, copy.environment, symlinks=True)
    out = copy.run().stdout
    assert copy.last_run() != "reused"
    return out, copy.stored()


@pytest.fixture
def dep(tmp_path):
    return Deployment(tmp_path / "d")


def add_compute2(config):
    config["compute_hosts"]["compute2"] = {"ip": "172.29.236.22"}


def test_an_unchanged_run_is_reused_prints_the_same_and_writes_nothing(dep):
    first = dep.run().stdout
    assert dep.last_run() == "stored"
    stored, mtime = dep.stored(), os.stat(os.path.join(dep.config_dir, INVENTORY)).st_mtime_ns
    assert dep.settle() == first
    assert dep.stored() == stored and os.stat(os.path.join(dep.config_dir, INVENTORY)).st_mtime_ns == mtime
    host = dep.run("--host", "compute1").stdout
    assert dep.last_run() == "reused"
    assert json.loads(host) == json.loads(first)["_meta"]["hostvars"]["compute1"]
    # One private record, in the user's cache folder, none in the (shared) config folder.
    [record] = dep.records()
    assert os.stat(record).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(record)).st_mode & 0o777 == 0o700
    assert "reuse" not in " ".join(os.listdir(dep.config_dir))


def write_text(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)


EXTRA_ENV = yaml.safe_dump({"physical_skel": {"extra_containers": {"belongs_to": ["all_containers"]},
                                              "extra_hosts": {"belongs_to": ["hosts"]}}})


def change_user_config(dep):
    dep.edit_config(add_compute2)
    return "compute2"


def change_conf_d(dep):
    write_text(os.path.join(dep.config_dir, "conf.d", "more.yml"),
               yaml.safe_dump({"compute_hosts": {"compute3": {"ip": "172.29.236.23"}}}))
    return "compute3"


def change_base_env_d(dep):
    write_text(os.path.join(dep.environment, "env.d", "extra.yml"), EXTRA_ENV)
    return "extra_hosts"


def change_config_env_d(dep):
    write_text(os.path.join(dep.config_dir, "env.d", "extra.yml"), EXTRA_ENV)
    return "extra_hosts"


def change_an_existing_file_in_place_keeping_size_and_mtime(dep):
    """Same size, same mtime, other bytes: only a digest of the bytes sees it."""
    path = os.path.join(dep.config_dir, "openstack_user_config.yml")
    st = os.stat(path)
    with open(path) as fh:
        text = fh.read()
    assert "172.29.236.21" in text
    with open(path, "w") as fh:
        fh.write(text.replace("172.29.236.21", "172.29.236.29"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return "172.29.236.29"


@pytest.mark.parametrize("change", [change_user_config, change_conf_d, change_base_env_d, change_config_env_d,
                                    change_an_existing_file_in_place_keeping_size_and_mtime],
                         ids=lambda f: f.__name__)
def test_each_config_input_changed_shows_in_the_next_run(dep, tmp_path, change):
    before = dep.settle()
    shown = change(dep)
    assert shown not in before
    expected = full_run(dep, tmp_path)
    after = dep.run().stdout
    assert dep.last_run() == "stored"
    assert shown in after
    assert (after, dep.stored()) == expected


def test_an_osa_ini_option_changed_shows_in_the_next_run(dep):
    """unknown_host_groups: a typo group warned about (the warning logged by reused runs too), then refused."""
    dep.edit_config(lambda c: c.update(compte_hosts={"compute9": {"ip": "172.29.236.29"}}))
    write_ini(dep.root, "[inventory]\nbackend = filesystem\nunknown_host_groups = warn\n")
    dep.settle()
    with open(os.path.join(dep.config_dir, LOG)) as fh:
        lines = fh.read().splitlines()
    assert "compte_hosts" in lines[-2] and "WARNING" in lines[-2]  # logged by the reused run
    write_ini(dep.root, "[inventory]\nbackend = filesystem\nunknown_host_groups = error\n")
    refused = dep.run(expect_ok=False)
    assert refused.returncode == 1 and refused.stdout == "" and "compte_hosts" in refused.stderr


def test_the_backend_chosen_is_part_of_the_key(dep):
    """The same inventory in another backend section (another folder) is another store: not reused."""
    out = dep.settle()
    other = os.path.join(dep.root, "elsewhere")
    os.mkdir(other)
    shutil.copy(os.path.join(dep.config_dir, INVENTORY), other)
    write_ini(dep.root, f"[inventory]\nbackend = files\n[files]\nplugin = filesystem\nconfig_dir = {other}\n")
    assert dep.run().stdout == out
    assert dep.last_run() == "unchanged"
    assert dep.run().stdout == out and dep.last_run() == "reused"


def test_a_stored_inventory_changed_by_inventory_manage_shows_in_the_next_run(dep, tmp_path):
    before = dep.settle()
    removed = subprocess.run([sys.executable, MANAGE, "--config", dep.config_dir, "-r", "compute1"],
                             capture_output=True, text=True, timeout=120,
                             env={**{k: v for k, v in os.environ.items() if not k.startswith("OSA_")},
                                  "OSA_INI": dep.ini, "XDG_CACHE_HOME": dep.cache})
    assert removed.returncode == 0, removed.stderr
    assert "compute1" not in load_json(os.path.join(dep.config_dir, INVENTORY))["_meta"]["hostvars"]
    expected = full_run(dep, tmp_path)
    after = dep.run().stdout
    assert dep.last_run() == "stored"
    assert (after, dep.stored()) == expected
    assert json.loads(after)["_meta"]["hostvars"]["compute1"] == json.loads(before)["_meta"]["hostvars"]["compute1"]


def test_a_stored_inventory_restored_by_hand_shows_in_the_next_run(dep, tmp_path):
    dep.run()
    old = dep.stored()
    dep.edit_config(add_compute2)
    with_compute2 = dep.settle()
    with open(os.path.join(dep.config_dir, INVENTORY), "w") as fh:  # an older version put back by hand
        fh.write(old)
    expected = full_run(dep, tmp_path)
    after = dep.run().stdout
    assert dep.last_run() == "stored"
    assert (after, dep.stored()) == expected
    assert json.loads(after) == json.loads(with_compute2)


def test_a_stored_inventory_edited_by_hand_keeping_its_mtime_shows_in_the_next_run(dep, tmp_path):
    before = dep.settle()
    path = os.path.join(dep.config_dir, INVENTORY)
    st = os.stat(path)
    stored = json.loads(dep.stored())
    stored["_meta"]["hostvars"]["compute1"]["ansible_host"] = "172.29.236.99"
    with open(path, "w") as fh:
        json.dump(stored, fh, indent=4, sort_keys=True)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    expected = full_run(dep, tmp_path)
    after = dep.run().stdout
    assert dep.last_run() != "reused"
    assert (after, dep.stored()) == expected and after == before


def project_copy(tmp_path, version=None, patch=None) -> str:
    """A copy of the project's lib/ and inventory script, with another version or a changed generator."""
    tree = tmp_path / "project"
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(os.path.join(ROOT, "lib"), tree / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(os.path.join(ROOT, "playbooks", "inventory"), tree / "playbooks" / "inventory",
                    ignore=shutil.ignore_patterns("__pycache__"))
    if version:
        init = tree / "lib" / "osa_inventory" / "__init__.py"
        init.write_text(init.read_text().replace('__version__ = "', f'__version__ = "{version}'))
    if patch:
        path, old, new = patch
        target = tree / "lib" / "osa_inventory" / path
        assert old in target.read_text()
        target.write_text(target.read_text().replace(old, new))
    return str(tree / "playbooks" / "inventory" / "dynamic_inventory.py")


def test_another_version_of_the_project_does_not_reuse_a_record(dep, tmp_path):
    out = dep.settle()
    script = project_copy(tmp_path, version="9.")
    assert dep.run(script=script).stdout == out
    assert dep.last_run() == "unchanged"


def test_a_changed_generator_at_the_same_version_does_not_reuse_a_record(dep, tmp_path):
    """The key holds the generator's own code: a fix shipped without a version bump shows at once."""
    out = dep.settle()
    old = 'hv["physical_host_addr"] = hostvars[parent].get("ansible_host")'
    script = project_copy(tmp_path, patch=("generate/finalize.py", old, old + ' + "-patched"'))
    after = dep.run(script=script).stdout
    assert dep.last_run() == "stored"
    assert after != out and json.loads(after)["_meta"]["hostvars"]["compute1"]["physical_host_addr"].endswith(
        "-patched")


def test_a_reused_run_stores_exactly_what_full_runs_store(dep, tmp_path):
    """The same history with reuse and without it (an empty cache every run) prints and stores the same."""
    plain = Deployment(tmp_path / "plain")
    steps = [lambda d: None, lambda d: None, lambda d: None, lambda d: d.edit_config(add_compute2),
             lambda d: None, lambda d: None, change_conf_d, lambda d: None, lambda d: None,
             lambda d: d.edit_config(lambda c: c["compute_hosts"].pop("compute2")), lambda d: None, lambda d: None]
    seen = set()
    for i, step in enumerate(steps):
        step(dep)
        step(plain)
        reused = dep.run().stdout
        seen.add(dep.last_run())
        full = plain.run(cache=str(tmp_path / f"empty{i}")).stdout
        assert plain.last_run() != "reused"
        assert (reused, dep.stored()) == (full, plain.stored()), i
    assert seen == {"stored", "unchanged", "reused"}


# -- the record attacked --------------------------------------------------------------------------------

def forge_matching_record(dep) -> bytes:
    """A record that says the config as it is now leaves the stored inventory as it is now unchanged.

    Written by the user himself it would be believed: that is the control showing each hostile case
    below would have mattered.
    """
    sys.path.insert(0, os.path.join(ROOT, "lib"))
    from osa_inventory import reuse
    from osa_inventory.storage.settings import read_settings

    settings = read_settings({"OSA_INI": dep.ini})
    key = reuse.config_key(dep.config_dir, dep.environment, settings)
    stored = reuse.stored_key(json.dumps(load_json(os.path.join(dep.config_dir, INVENTORY)), sort_keys=True))
    return reuse.Record(key, stored).to_bytes()


def test_control_a_record_of_the_user_is_believed(dep):
    dep.settle()
    [record] = dep.records()
    dep.edit_config(add_compute2)
    with open(record, "wb") as fh:
        fh.write(forge_matching_record(dep))
    out = dep.run().stdout
    assert dep.last_run() == "reused" and "compute2" not in out


def plant_link(record, forged):
    target = record + ".target"
    with open(target, "wb") as fh:
        fh.write(forged)
    os.chmod(target, 0o600)
    os.remove(record)
    os.symlink(target, record)


def plant_other_owner(record, forged):
    with open(record, "wb") as fh:
        fh.write(forged)
    os.chown(record, 54321, 54321)


def plant_writable_by_others(record, forged):
    with open(record, "wb") as fh:
        fh.write(forged)
    os.chmod(record, 0o666)


def plant_second_hard_link(record, forged):
    with open(record, "wb") as fh:
        fh.write(forged)
    os.link(record, record + ".other")


def plant_truncated(record, forged):
    with open(record, "wb") as fh:
        fh.write(forged[: len(forged) // 2])


def plant_huge(record, forged):
    with open(record, "wb") as fh:
        fh.write(forged[:-1] + b" " * (300 * 1024) + b"}")


def plant_garbage(record, forged):
    with open(record, "wb") as fh:
        fh.write(b"\xff\x00not json" * 100)


def plant_older_version(record, forged):
    value = json.loads(forged)
    value["version"] = "0.0.1"
    with open(record, "w") as fh:
        json.dump(value, fh)


def plant_deeply_nested(record, forged):
    with open(record, "wb") as fh:
        fh.write(b"[" * 50000 + b"]" * 50000)


def plant_fifo(record, forged):
    os.remove(record)
    os.mkfifo(record, 0o600)


@pytest.mark.parametrize("plant", [plant_link, plant_other_owner, plant_writable_by_others, plant_second_hard_link,
                                   plant_truncated, plant_huge, plant_garbage, plant_older_version,
                                   plant_deeply_nested, plant_fifo], ids=lambda f: f.__name__)
def test_a_hostile_or_damaged_record_is_not_used_and_a_full_run_replaces_it(dep, tmp_path, plant):
    if plant is plant_other_owner and os.geteuid() != 0:
        pytest.skip("needs root to give the record another owner")
    dep.settle()
    [record] = dep.records()
    dep.edit_config(add_compute2)
    plant(record, forge_matching_record(dep))
    out = dep.run().stdout
    assert dep.last_run() == "stored" and "compute2" in out
    assert (out, dep.stored()) == full_run(dep, tmp_path)
    dep.run()  # unchanged: the record is replaced by a good one of this user's
    assert os.path.isfile(record) and not os.path.islink(record) and os.stat(record).st_uid == os.geteuid()
    assert dep.run().stdout == out and dep.last_run() == "reused"


def test_a_cache_folder_that_cannot_be_used_costs_only_the_reuse(dep, tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    outs = {dep.run(cache=str(blocked)).stdout for _ in range(3)}
    assert len(outs) == 1 and dep.last_run() == "unchanged"


# -- what a reused run imports ---------------------------------------------------------------------------

def imported(dep, *args) -> set[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_"))}
    full.update(OSA_INI=dep.ini, XDG_CACHE_HOME=dep.cache)
    result = subprocess.run([sys.executable, "-X", "importtime", os.path.join(ROOT, "playbooks", "inventory",
                                                                               "dynamic_inventory.py"),
                             "--config", dep.config_dir, "-e", dep.environment, "--debug", *args],
                            capture_output=True, text=True, env=full, timeout=120)
    assert result.returncode == 0
    return {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}


NOT_FOR_REUSE = ("yaml", "tarfile", "osa_inventory.deployment_config", "osa_inventory.generate")


def test_a_reused_run_imports_no_yaml_no_generator_and_no_tarfile(dep):
    assert {"yaml", "osa_inventory.generate.pipeline"} <= imported(dep)  # the method sees them when made
    dep.edit_config(add_compute2)
    assert "tarfile" in imported(dep)  # a second version stored: the first one is archived
    dep.settle()
    modules = imported(dep)
    assert dep.last_run() == "reused"
    assert "osa_inventory.reuse" in modules
    assert not [m for m in modules if m.startswith(NOT_FOR_REUSE)]
    assert not [m for m in imported(dep, "--host", "compute1") if m.startswith(NOT_FOR_REUSE)]


def test_a_stored_inventory_nested_too_deeply_is_refused_when_a_record_exists(dep):
    """A run that may be reused skips the depth walk only for the stored inventory its record names."""
    dep.settle()
    stored = json.loads(dep.stored())
    deep = inner = {}
    for _ in range(150):
        inner["x"] = {}
        inner = inner["x"]
    stored["all"]["vars"]["deep"] = deep
    with open(os.path.join(dep.config_dir, INVENTORY), "w") as fh:
        json.dump(stored, fh, indent=4, sort_keys=True)
    refused = dep.run(expect_ok=False)
    assert refused.returncode == 1 and refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1 and "levels deep" in refused.stderr
