"""The real inventory script as Ansible runs it: a subprocess on real config folders."""

import json
import os
import shutil
import sys

import pytest

from helpers import ENVIRONMENT, ROOT, SCRIPT, base_config, load_json, run_script, write_config, write_ini

INVENTORY = "openstack_inventory.json"


@pytest.fixture
def deploy(tmp_path):
    """A config folder with the base config and an osa.ini selecting the filesystem backend."""
    config_dir = tmp_path / "deploy"
    write_config(str(config_dir), base_config())
    ini = write_ini(str(tmp_path))
    return str(config_dir), ini


def files_in(folder):
    return sorted(os.listdir(folder))


def assert_one_line_error(result, *words):
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_list_prints_pure_json_stores_it_and_is_silent(deploy):
    config_dir, ini = deploy
    result = run_script(config_dir, "--list", ini=ini)
    assert result.returncode == 0 and result.stderr == ""
    printed = json.loads(result.stdout)
    assert printed == load_json(os.path.join(config_dir, INVENTORY))
    assert "galera" in printed and "_meta" in printed


def test_stored_file_is_what_osa_writes(deploy):
    config_dir, ini = deploy
    run_script(config_dir, ini=ini)
    with open(os.path.join(config_dir, INVENTORY)) as fh:
        text = fh.read()
    assert text == json.dumps(json.loads(text), indent=4, sort_keys=True)


def test_unchanged_second_run_rewrites_nothing_and_makes_no_backup(deploy):
    config_dir, ini = deploy
    first = run_script(config_dir, ini=ini)
    path = os.path.join(config_dir, INVENTORY)
    before = os.stat(path).st_mtime_ns
    listing = files_in(config_dir)
    second = run_script(config_dir, ini=ini)
    assert second.stdout == first.stdout and second.stderr == ""
    assert os.stat(path).st_mtime_ns == before
    assert files_in(config_dir) == listing
    assert not [f for f in listing if "backup" in f]


def test_changed_config_keeps_names_and_backs_up(deploy):
    config_dir, ini = deploy
    first = json.loads(run_script(config_dir, ini=ini).stdout)
    config = base_config()
    config["compute_hosts"]["compute2"] = {"ip": "172.29.236.22"}
    write_config(config_dir, config)
    second = json.loads(run_script(config_dir, ini=ini).stdout)
    for name, hv in first["_meta"]["hostvars"].items():
        assert second["_meta"]["hostvars"][name] == hv
    assert "compute2" in second["compute_hosts"]["hosts"]
    assert os.path.exists(os.path.join(config_dir, "backup_openstack_inventory.tar"))


def test_lost_inventory_is_regenerated_identically(deploy):
    config_dir, ini = deploy
    first = run_script(config_dir, ini=ini).stdout
    os.unlink(os.path.join(config_dir, INVENTORY))
    assert run_script(config_dir, ini=ini).stdout == first


def test_host_mode_prints_one_hosts_vars(deploy):
    config_dir, ini = deploy
    inv = json.loads(run_script(config_dir, ini=ini).stdout)
    result = run_script(config_dir, "--host", "compute1", ini=ini)
    assert result.returncode == 0 and result.stderr == ""
    assert json.loads(result.stdout) == inv["_meta"]["hostvars"]["compute1"]
    unknown = run_script(config_dir, "--host", "nope", ini=ini)
    assert json.loads(unknown.stdout) == {}


def test_check_validates_and_writes_nothing(deploy):
    config_dir, ini = deploy
    result = run_script(config_dir, "--check", ini=ini)
    assert result.returncode == 0 and result.stdout.strip() == "Configuration ok!"
    assert not os.path.exists(os.path.join(config_dir, INVENTORY))
    config = base_config()
    del config["cidr_networks"]
    write_config(config_dir, config)
    assert_one_line_error(run_script(config_dir, "--check", ini=ini), "cidr_networks")


def test_config_dir_defaults_to_the_environment_variable(deploy):
    config_dir, ini = deploy
    result = run_script(None, "--list", ini=ini, env={"OSA_CONFIG_DIR": config_dir})
    assert result.returncode == 0
    assert os.path.exists(os.path.join(config_dir, INVENTORY))


def test_environment_defaults_to_the_scripts_folder(deploy, tmp_path):
    config_dir, ini = deploy
    with_default = run_script(config_dir, ini=ini).stdout
    other = tmp_path / "other"
    shutil.copytree(config_dir, other, ignore=shutil.ignore_patterns(INVENTORY + "*"))
    explicit = run_script(str(other), "--list", "--environment", ENVIRONMENT, ini=ini).stdout
    assert explicit == with_default


def test_conf_d_and_env_d_overrides_end_to_end(deploy):
    config_dir, ini = deploy
    write_config(os.path.join(config_dir, "conf.d"), {"compute_hosts": {"compute9": {"ip": "172.29.236.29"}}},
                 "extra.yml")
    write_config(os.path.join(config_dir, "env.d"),
                 {"container_skel": {"galera_container": {"properties": {"is_metal": True}}}}, "galera.yml")
    inv = json.loads(run_script(config_dir, ini=ini).stdout)
    assert {"compute1", "compute9"} <= set(inv["compute_hosts"]["hosts"])
    assert inv["galera_container"]["hosts"] == []
    assert {"infra1", "infra2"} <= set(inv["galera"]["hosts"])


def test_debug_logs_to_the_config_folder_only(deploy):
    config_dir, ini = deploy
    result = run_script(config_dir, "--list", "--debug", ini=ini)
    assert result.returncode == 0 and result.stderr == ""
    with open(os.path.join(config_dir, "inventory.log")) as fh:
        log = fh.read()
    assert "hosts" in log and "lock held" in log


def test_the_script_is_executable_with_a_shebang():
    assert os.access(SCRIPT, os.X_OK)
    with open(SCRIPT) as fh:
        assert fh.readline().startswith("#!")


@pytest.mark.parametrize("mutate, words", [
    (lambda c: c.pop("cidr_networks"), ["cidr_networks"]),
    (lambda c: c["compute_hosts"].update(compute2={"ip": "172.29.236.21"}), ["compute1", "compute2", "172.29.236.21"]),
    (lambda c: c["global_overrides"]["provider_networks"][2]["network"].update(ip_from_q="nowhere"), ["nowhere"]),
    (lambda c: c.update(lxc_hosts={"x": {"ip": "10.9.9.9"}}), ["lxc_hosts"]),
    (lambda c: c["cidr_networks"].update(storage="172.29.244.0/30"), ["cidr_networks.storage", "no free address"]),
])
def test_bad_config_is_one_line_exit_1_and_nothing_written(deploy, mutate, words):
    config_dir, ini = deploy
    config = base_config()
    mutate(config)
    write_config(config_dir, config)
    before = files_in(config_dir)
    assert_one_line_error(run_script(config_dir, ini=ini), *words)
    assert files_in(config_dir) == before


def test_yaml_syntax_error_names_file_and_line(deploy):
    config_dir, ini = deploy
    path = os.path.join(config_dir, "conf.d", "broken.yml")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as fh:
        fh.write("compute_hosts:\n  compute2: {ip: 10.0.0.2\n")
    result = run_script(config_dir, ini=ini)
    assert_one_line_error(result, path + ":")
    assert not os.path.exists(os.path.join(config_dir, INVENTORY))


def test_missing_user_config_is_a_clear_error(tmp_path):
    ini = write_ini(str(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(run_script(str(empty), ini=ini), "openstack_user_config.yml does not exist")
    assert os.listdir(empty) == []


def test_missing_config_folder_is_a_clear_error(tmp_path):
    ini = write_ini(str(tmp_path))
    assert_one_line_error(run_script(str(tmp_path / "nope"), ini=ini), "does not exist")


def test_corrupt_inventory_is_reported_and_never_overwritten(deploy):
    config_dir, ini = deploy
    run_script(config_dir, ini=ini)
    config = base_config()
    config["compute_hosts"]["compute2"] = {"ip": "172.29.236.22"}
    write_config(config_dir, config)
    run_script(config_dir, ini=ini)  # makes a backup of the first version
    path = os.path.join(config_dir, INVENTORY)
    with open(path, "w") as fh:
        fh.write('{"_meta": {"hostvars": {')
    result = run_script(config_dir, ini=ini)
    assert_one_line_error(result, path, "not valid JSON", "openstack_inventory.json-")
    with open(path) as fh:
        assert fh.read() == '{"_meta": {"hostvars": {'


def test_an_osa_ini_naming_a_missing_file_is_an_error(deploy):
    config_dir, _ = deploy
    assert_one_line_error(run_script(config_dir, ini="/nonexistent/osa.ini"), "/nonexistent/osa.ini")
    assert not os.path.exists(os.path.join(config_dir, INVENTORY))


def test_nothing_is_read_or_written_outside_the_config_folder(deploy, tmp_path):
    config_dir, ini = deploy
    outside = set(os.listdir(tmp_path))
    run_script(config_dir, ini=ini, env={"HOME": str(tmp_path)})
    assert set(os.listdir(tmp_path)) == outside
    assert set(files_in(config_dir)) <= {"openstack_user_config.yml", INVENTORY, "openstack_inventory.changes.json"}


def test_readme_example_command_generates_into_a_local_folder(tmp_path):
    import subprocess
    out = tmp_path / "out"
    result = subprocess.run(["bash", os.path.join(ROOT, "scripts", "generate-example.sh"), "aio", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    inv = json.loads(result.stdout)
    assert inv == load_json(str(out / INVENTORY))
    assert "aio1" in inv["_meta"]["hostvars"] and inv["lxc_hosts"]["hosts"] == ["aio1"]


def test_generate_example_keeps_a_config_the_user_edited(tmp_path):
    import subprocess
    out = tmp_path / "out"
    cmd = ["bash", os.path.join(ROOT, "scripts", "generate-example.sh"), "aio", str(out)]
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=300).returncode == 0
    config = out / "openstack_user_config.yml"
    hosts = "compute_hosts:\n  aio1:\n    ip: 172.29.236.100\n  compute9:\n    ip: 172.29.236.29\n"
    edited = config.read_text().replace("compute_hosts: *aio\n", hosts)
    assert edited != config.read_text()
    config.write_text(edited)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert config.read_text() == edited
    assert "compute9" in json.loads(result.stdout)["_meta"]["hostvars"]
    assert result.stderr.count("\n") == 1 and f"keeping your edited {out}/openstack_user_config.yml" in result.stderr
    # The advice, followed: delete it and the example's version comes back.
    config.unlink()
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stderr == ""
    assert config.read_text() == open(os.path.join(ROOT, "etc", "openstack_deploy", "aio",
                                                   "openstack_user_config.yml")).read()


GENERATE = os.path.join(ROOT, "scripts", "generate-example.sh")


def generate_example(cwd, *args: str):
    import subprocess
    return subprocess.run(["bash", GENERATE, *args], capture_output=True, text=True, timeout=300, cwd=str(cwd))


def snapshot(folder) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (what a refused run must leave as it was)."""
    found = {}
    for parent, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(parent, name)
            with open(path, "rb") as fh:
                found[os.path.relpath(path, folder)] = fh.read()
    return found


def refusal(result) -> str:
    assert result.returncode == 1 and result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), result.stderr
    return lines[0]


def test_generate_example_keeps_two_examples_apart(tmp_path):
    import shlex
    import subprocess
    assert generate_example(tmp_path, "aio", "out").returncode == 0
    before = snapshot(tmp_path / "out")
    line = refusal(generate_example(tmp_path, "production", "out"))
    assert "out holds the 'aio' example" in line
    assert snapshot(tmp_path / "out") == before, "a refused run changed the folder"
    # The advice, run as printed: the other example in a folder of its own.
    advice = shlex.split(line.split("a folder of its own: ", 1)[1])
    done = subprocess.run(advice, capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    production = load_json(str(tmp_path / "out-production" / INVENTORY))
    assert json.loads(done.stdout) == production and "galera_all" in production
    aio = load_json(str(tmp_path / "out" / INVENTORY))
    assert set(production["_meta"]["hostvars"]) != set(aio["_meta"]["hostvars"])
    assert snapshot(tmp_path / "out") == before
    assert not os.path.exists(tmp_path / "out" / "conf.d"), "production's conf.d reached the aio folder"


def test_generate_example_refuses_a_folder_it_did_not_fill_and_the_advice_works(tmp_path):
    import subprocess
    # A folder from before the script marked its folders: the aio config, edited, and its inventory.
    out = tmp_path / "inventory-out"
    shutil.copytree(os.path.join(ROOT, "etc", "openstack_deploy", "aio"), out)
    config = out / "openstack_user_config.yml"
    config.write_text(config.read_text() + "\n# edited\n")
    before = snapshot(out)
    line = refusal(generate_example(tmp_path, "aio", "inventory-out"))
    assert "no inventory-out/.osa-example" in line and snapshot(out) == before
    marking = line.split("mark it: ", 1)[1]
    assert subprocess.run(["bash", "-c", marking], cwd=str(tmp_path), timeout=60).returncode == 0  # as printed
    again = generate_example(tmp_path, "aio", "inventory-out")
    assert again.returncode == 0 and "keeping your edited" in again.stderr, again.stderr
    assert config.read_text().endswith("# edited\n") and "aio1" in json.loads(again.stdout)["_meta"]["hostvars"]


@pytest.mark.parametrize("what", ["a file", "another folder", "a path as the name"])
def test_generate_example_refuses_what_is_no_place_for_an_example(tmp_path, what):
    (tmp_path / "a file").write_text("mine\n")
    (tmp_path / "another folder").mkdir()
    (tmp_path / "another folder" / "notes.txt").write_text("mine\n")
    args = {"a file": ["aio", "a file"], "another folder": ["aio", "another folder"],
            "a path as the name": ["../../etc/openstack_deploy/aio", "fresh"]}[what]
    before = snapshot(tmp_path)
    line = refusal(generate_example(tmp_path, *args))
    assert snapshot(tmp_path) == before and not os.path.exists(tmp_path / "fresh")
    assert ("choose one of: aio production" in line) is (what == "a path as the name"), line


def _python_without_requirements() -> str | None:
    """A Python on this machine that cannot import pluginbase (Ansible may run the script with it)."""
    import subprocess
    for candidate in ("/usr/bin/python3", shutil.which("python3") or ""):
        if candidate and os.path.exists(candidate) and subprocess.run(
                [candidate, "-c", "import pluginbase"], capture_output=True).returncode != 0:
            return candidate
    return None


def _bare_copy(deploy, tmp_path) -> tuple[list[str], dict, object]:
    """The script copied without a .venv, run by a Python that lacks the requirements (or skip)."""
    python = _python_without_requirements()
    if python is None:
        pytest.skip("every Python here has the requirements installed")
    config_dir, ini = deploy
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "PYTHON"))}
    env["OSA_INI"] = ini
    copy = tmp_path / "copy"
    for folder in ("lib", "playbooks"):
        shutil.copytree(os.path.join(ROOT, folder), copy / folder)
    shutil.copy(os.path.join(ROOT, "requirements.txt"), copy / "requirements.txt")
    script = [python, str(copy / "playbooks" / "inventory" / "dynamic_inventory.py"), "--config", config_dir, "--list"]
    return script, env, copy


def test_a_python_without_the_requirements_uses_the_project_venv_or_says_what_is_missing(deploy, tmp_path):
    import subprocess
    script, env, copy = _bare_copy(deploy, tmp_path)
    # A copy of the code whose .venv is the environment running these tests (whichever
    # Python version that is): the script re-executes itself there.
    if sys.prefix != sys.base_prefix:
        os.symlink(sys.prefix, copy / ".venv")
        result = subprocess.run(script, capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        assert "galera" in json.loads(result.stdout)
        os.unlink(copy / ".venv")
    # Without a .venv next to it: one line naming what is missing.
    result = subprocess.run(script, capture_output=True, text=True, env=env, timeout=120)
    assert_one_line_error(result, "is not installed for", "python3 -m venv", "requirements.txt")


@pytest.mark.slow
@pytest.mark.once  # a fresh virtualenv and a pip install of the requirements: the same on every version
def test_the_missing_requirements_advice_works_as_printed(deploy, tmp_path):
    import re
    import subprocess
    script, env, _ = _bare_copy(deploy, tmp_path)
    result = subprocess.run(script, capture_output=True, text=True, env=env, timeout=120)
    advice = re.search(r"virtualenv, which the scripts then use by themselves: (.*) \(or install", result.stderr)
    assert advice, result.stderr
    done = subprocess.run(["sh", "-c", advice.group(1)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = subprocess.run(script, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "galera" in json.loads(result.stdout)
