"""The filesystem backend under real use: concurrent runs, backups, modes, crashes, corruption.

Every test runs the real inventory script as a subprocess on its own copy of
``tests/fixtures/small_config`` (or a larger config generated from it).
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import time
from datetime import datetime, timezone

import pytest
import yaml
from helpers import SCRIPT, run_script, write_ini

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE_CONFIG = os.path.join(ROOT, "tests", "fixtures", "small_config")
MANAGE = os.path.join(ROOT, "scripts", "inventory-manage.py")
USER_CONFIG = "openstack_user_config.yml"
INVENTORY = "openstack_inventory.json"
BACKUPS = "backup_openstack_inventory.tar"
MEMBER = re.compile(r"^openstack_inventory\.json-(\d{8}_\d{6})(_\d{2,})?\.json$")


# -- helpers ----------------------------------------------------------------------

def make_config(folder, n_compute: int = 0) -> str:
    """A copy of the small fixture, plus ``n_compute`` extra compute hosts in a bigger network."""
    shutil.copytree(FIXTURE_CONFIG, folder)
    if n_compute:
        config = read_config(str(folder))
        config["cidr_networks"]["management"] = "10.20.0.0/16"
        for i in range(n_compute):
            config["compute_hosts"][f"extra{i}"] = {"ip": f"10.20.{4 + i // 250}.{i % 250 + 1}"}
        write_config(str(folder), config)
    return str(folder)


def read_config(config_dir: str) -> dict:
    with open(os.path.join(config_dir, USER_CONFIG)) as fh:
        return yaml.safe_load(fh)


def write_config(config_dir: str, config: dict) -> None:
    with open(os.path.join(config_dir, USER_CONFIG), "w") as fh:
        yaml.safe_dump(config, fh)


def set_marker(config_dir: str, value) -> None:
    """Change the config the way an operator would: a new global override."""
    config = read_config(config_dir)
    config["global_overrides"]["run_marker"] = value
    write_config(config_dir, config)


def marker(inventory: dict):
    return inventory["all"]["vars"].get("run_marker")


def read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def members(config_dir: str) -> list[tuple[str, bytes]]:
    with tarfile.open(os.path.join(config_dir, BACKUPS)) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()]


def temp_files(config_dir: str) -> list[str]:
    return sorted(n for n in os.listdir(config_dir) if n.endswith(".tmp"))


def ok(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def ini(tmp_path) -> str:
    return write_ini(str(tmp_path), "[inventory]\nbackend = filesystem\n")


def clean_env(ini_path: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSA_", "ANSIBLE_"))}
    env["OSA_INI"] = ini_path
    return env


# -- concurrency -------------------------------------------------------------------

def test_six_concurrent_runs_agree_and_store_once(tmp_path, ini):
    config_dir = make_config(tmp_path / "config", n_compute=200)
    cmd = [sys.executable, SCRIPT, "--config", config_dir, "--list", "--debug"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=clean_env(ini)) for _ in range(6)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err for _, err in outputs]
    assert all(err == "" for _, err in outputs)
    assert len({out for out, _ in outputs}) == 1, "concurrent runs printed different inventories"
    with open(os.path.join(config_dir, INVENTORY)) as fh:
        assert json.load(fh) == json.loads(outputs[0][0])
    # Serialised by the lock: one run generated and stored, the five others found it stored.
    with open(os.path.join(config_dir, "inventory.log")) as fh:
        log = fh.read()
    assert log.count(", stored;") == 1 and log.count(", unchanged;") == 5, log
    assert sorted(os.listdir(config_dir)) == sorted(
        [USER_CONFIG, INVENTORY, "inventory.log", "openstack_inventory.changes.json"]), \
        "stray files, a lock file or a backup (the change records are expected)"


# -- backups -------------------------------------------------------------------------

@pytest.mark.once
def test_twenty_changed_runs_keep_the_fifteen_newest_versions_in_order(tmp_path, ini):
    config_dir = make_config(tmp_path / "config")
    printed = []
    started = datetime.now(timezone.utc).replace(microsecond=0)
    for i in range(20):
        set_marker(config_dir, i)
        printed.append(ok(run_script(config_dir, ini=ini)))
    finished = datetime.now(timezone.utc)
    kept = members(config_dir)
    names = [name for name, _ in kept]
    assert len(kept) == 15
    assert len(set(names)) == 15, f"duplicate member names: {names}"
    assert names == sorted(names), f"names do not sort in archive order: {names}"
    for name in names:
        match = MEMBER.match(name)
        assert match, f"bad member name {name}"
        stamp = datetime.strptime(match.group(1), "%Y%m%d_%H%M%S").replace(tzinfo=timezone.utc)
        assert started <= stamp <= finished, f"{name} is not a UTC time of this test"
    # Version k was replaced by run k+1: the archive holds versions 4..18, each exactly as printed then.
    assert [json.loads(data) for _, data in kept] == printed[4:19]
    with open(os.path.join(config_dir, INVENTORY)) as fh:
        assert marker(json.load(fh)) == 19


def test_backups_option_is_honoured(tmp_path):
    ini = write_ini(str(tmp_path), "[inventory]\nbackend = filesystem\n[filesystem]\nbackups = 3\n")
    config_dir = make_config(tmp_path / "config")
    for i in range(6):
        set_marker(config_dir, i)
        ok(run_script(config_dir, ini=ini))
    assert [marker(json.loads(data)) for _, data in members(config_dir)] == [2, 3, 4]


def test_backups_zero_keeps_no_archive(tmp_path):
    ini = write_ini(str(tmp_path), "[inventory]\nbackend = filesystem\n")
    config_dir = make_config(tmp_path / "config")
    for i in range(3):
        set_marker(config_dir, i)
        ok(run_script(config_dir, ini=ini, env={"OSA_INVENTORY_FILESYSTEM_BACKUPS": "0"}))
    assert not os.path.exists(os.path.join(config_dir, BACKUPS))
    with open(os.path.join(config_dir, INVENTORY)) as fh:
        assert marker(json.load(fh)) == 2


def test_backup_only_when_a_changed_inventory_replaces_an_older_one(tmp_path, ini):
    config_dir = make_config(tmp_path / "config")
    inventory_path, tar_path = os.path.join(config_dir, INVENTORY), os.path.join(config_dir, BACKUPS)
    ok(run_script(config_dir, ini=ini))
    assert not os.path.exists(tar_path), "the first write made a backup of nothing"
    first_bytes = read_bytes(inventory_path)

    ok(run_script(config_dir, ini=ini))
    assert not os.path.exists(tar_path), "an unchanged run made a backup"

    set_marker(config_dir, "changed")
    ok(run_script(config_dir, ini=ini))
    assert [data for _, data in members(config_dir)] == [first_bytes], "the backup is not the replaced file"

    before_inv, before_tar = os.stat(inventory_path), os.stat(tar_path)
    tar_bytes, inv_bytes = read_bytes(tar_path), read_bytes(inventory_path)
    time.sleep(0.05)  # so a rewrite would show in the nanosecond mtimes
    ok(run_script(config_dir, ini=ini))
    after_inv, after_tar = os.stat(inventory_path), os.stat(tar_path)
    assert (after_inv.st_mtime_ns, after_inv.st_ino) == (before_inv.st_mtime_ns, before_inv.st_ino)
    assert (after_tar.st_mtime_ns, after_tar.st_ino) == (before_tar.st_mtime_ns, before_tar.st_ino)
    assert read_bytes(tar_path) == tar_bytes and read_bytes(inventory_path) == inv_bytes


# -- file modes --------------------------------------------------------------------------

@pytest.mark.parametrize("mode", [0o640, 0o600, 0o644, 0o400])
def test_mode_of_an_existing_file_is_kept(tmp_path, ini, mode):
    config_dir = make_config(tmp_path / "config")
    path = os.path.join(config_dir, INVENTORY)
    ok(run_script(config_dir, ini=ini))
    os.chmod(path, mode)
    set_marker(config_dir, "new")
    ok(run_script(config_dir, ini=ini))
    with open(path) as fh:
        assert marker(json.load(fh)) == "new"
    assert stat.S_IMODE(os.stat(path).st_mode) == mode


def test_new_files_are_not_group_or_other_writable(tmp_path, ini):
    config_dir = make_config(tmp_path / "config")
    old_umask = os.umask(0)  # the script inherits it: the most permissive case
    try:
        ok(run_script(config_dir, ini=ini))
        set_marker(config_dir, "second")
        ok(run_script(config_dir, ini=ini))
    finally:
        os.umask(old_umask)
    assert not os.path.exists(os.path.join(config_dir, INVENTORY + ".lock"))  # the lock is on the folder
    for name in (INVENTORY, BACKUPS):
        mode = stat.S_IMODE(os.stat(os.path.join(config_dir, name)).st_mode)
        assert not mode & (stat.S_IWGRP | stat.S_IWOTH), f"{name} has mode {mode:04o}"


# -- crashes ------------------------------------------------------------------------------

# Each kill costs about one full run, four times over in CI (one per Python version): 15 random moments
# per run, a different seed each time; OSA_TEST_KILLS=200 when hunting a race by hand.
KILLS = int(os.environ.get("OSA_TEST_KILLS", "15"))


@pytest.mark.once
def test_sigkill_at_random_moments_never_leaves_a_broken_file(tmp_path, ini):
    config_dir = make_config(tmp_path / "config", n_compute=1000)
    inventory_path = os.path.join(config_dir, INVENTORY)
    ok(run_script(config_dir, ini=ini))
    # Aim the kills at the end of a run, where the lock is held and the file written.
    set_marker(config_dir, "timing")
    t0 = time.perf_counter()
    ok(run_script(config_dir, ini=ini))
    full = time.perf_counter() - t0
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    outcomes = {"old": 0, "new": 0, "temp left": 0, "archived, not replaced": 0}
    for i in range(KILLS):
        set_marker(config_dir, i)
        old = read_bytes(inventory_path)
        proc = subprocess.Popen([sys.executable, SCRIPT, "--config", config_dir, "--list"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env(ini))
        time.sleep(rng.uniform(0.5, 1.05) * full)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = read_bytes(inventory_path)
        json.loads(now)  # never torn, whatever the moment
        if now == old:
            outcomes["old"] += 1
        else:
            outcomes["new"] += 1
            # The new file must be exactly what a complete run makes from the old file and this config.
            ref = tmp_path / f"ref{i}"
            shutil.copytree(config_dir, ref, ignore=shutil.ignore_patterns("*.tmp", "*.tar", "*.lock"))
            (ref / INVENTORY).write_bytes(old)
            ok(run_script(str(ref), ini=ini))
            assert (ref / INVENTORY).read_bytes() == now, f"seed {seed}, kill {i}: not the new inventory"
            shutil.rmtree(ref)
        if os.path.exists(os.path.join(config_dir, BACKUPS)):
            kept = [data for _name, data in members(config_dir)]
            for data in kept:  # the archive is never torn either
                json.loads(data)
            # Nor does a kill between the archive's rewrite and the inventory's rename keep a version twice.
            assert all(a != b for a, b in zip(kept, kept[1:])), f"seed {seed}, kill {i}: a version archived twice"
            outcomes["archived, not replaced"] += kept[-1] == now
        leftovers = temp_files(config_dir)
        outcomes["temp left"] += bool(leftovers)
        # A killed writer leaves at most its one temp file; the next writer removes it.
        assert len(leftovers) <= 1, f"seed {seed}: temp files accumulate: {leftovers}"
    set_marker(config_dir, "final")
    assert marker(ok(run_script(config_dir, ini=ini))) == "final"
    assert temp_files(config_dir) == []
    listed = subprocess.run([sys.executable, MANAGE, "--config", config_dir, "--history", "--format", "json"],
                            capture_output=True, text=True, env=clean_env(ini), timeout=120)
    history = json.loads(listed.stdout)
    assert len({v["version"] for v in history}) == len(history), f"seed {seed}: a version listed twice"
    assert "no change" not in [v["summary"] for v in history[1:]], f"seed {seed}: {history}"
    print(f"\nSIGKILL x{KILLS} (seed {seed}, full run {full:.3f} s): {outcomes}")


# -- corruption ----------------------------------------------------------------------------

def _three_versions(tmp_path, ini) -> str:
    config_dir = make_config(tmp_path / "config")
    for i in range(3):
        set_marker(config_dir, i)
        ok(run_script(config_dir, ini=ini))
    return config_dir


def _snapshot(config_dir: str) -> dict:
    return {name: (read_bytes(os.path.join(config_dir, name)), os.stat(os.path.join(config_dir, name)).st_mtime_ns)
            for name in (INVENTORY, BACKUPS)}


@pytest.mark.parametrize("damage", [
    lambda text: text[: len(text) // 2],
    lambda text: b"",
    lambda text: b"[1, 2, 3]",
    lambda text: b"\xff\xfe\x00garbage",
], ids=["truncated", "empty", "not-an-object", "not-utf8"])
def test_corrupt_file_is_reported_and_never_overwritten(tmp_path, ini, damage):
    config_dir = _three_versions(tmp_path, ini)
    path = os.path.join(config_dir, INVENTORY)
    with open(path, "rb") as fh:
        corrupt = damage(fh.read())
    with open(path, "wb") as fh:
        fh.write(corrupt)
    set_marker(config_dir, "tempting a write")
    before = _snapshot(config_dir)
    newest = members(config_dir)[-1][0]
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], result.stderr
    for fragment in (path, "left untouched", f"newest good backup is {newest}", os.path.join(config_dir, BACKUPS)):
        assert fragment in lines[0]
    assert _snapshot(config_dir) == before, "the corrupt file or the archive was changed"
    assert read_bytes(path) == corrupt


def test_newest_good_backup_skips_damaged_members(tmp_path, ini):
    config_dir = _three_versions(tmp_path, ini)
    tar_path = os.path.join(config_dir, BACKUPS)
    kept = members(config_dir)
    with tarfile.open(tar_path, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in kept + [("openstack_inventory.json-29991231_235959.json", b"{not json")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with open(os.path.join(config_dir, INVENTORY), "w") as fh:
        fh.write("{")
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 1
    assert f"newest good backup is {kept[-1][0]}" in result.stderr


def test_documented_restore_path_works(tmp_path, ini):
    config_dir = _three_versions(tmp_path, ini)
    path = os.path.join(config_dir, INVENTORY)
    good = members(config_dir)[-1][1]
    with open(path, "w") as fh:
        fh.write('{"_meta": {"hostvars": {')
    message = run_script(config_dir, ini=ini).stderr
    # The error line itself carries the command to run.
    command = re.search(r"'(tar -xOf [^']+)'", message)
    assert command, message
    subprocess.run(["/bin/sh", "-c", command.group(1)], check=True, timeout=60)
    assert read_bytes(path) == good
    restored = json.loads(good)
    rerun = ok(run_script(config_dir, ini=ini))
    # Names and addresses come from the restored inventory; the config's overrides are re-applied.
    assert {h: v["ansible_host"] for h, v in rerun["_meta"]["hostvars"].items()} == \
        {h: v["ansible_host"] for h, v in restored["_meta"]["hostvars"].items()}
    assert marker(restored) == 1 and marker(rerun) == 2


@pytest.mark.skipif(not os.path.exists(MANAGE), reason="scripts/inventory-manage.py not present")
def test_restore_command_named_in_the_error_works(tmp_path, ini):
    config_dir = _three_versions(tmp_path, ini)
    path = os.path.join(config_dir, INVENTORY)
    good = json.loads(members(config_dir)[-1][1])
    with open(path, "w") as fh:
        fh.write("corrupt")
    message = run_script(config_dir, ini=ini).stderr
    command = re.search(r"'(\S+inventory-manage\.py [^']*--restore \S+)'", message)
    assert command, message
    words = shlex.split(command.group(1))
    # From a checkout, the script by its full path, with the config folder this run was given.
    assert words[:3] == [MANAGE, "--config", config_dir], words
    env = clean_env(ini)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")  # a deployer's python3
    result = subprocess.run(words, capture_output=True, text=True, env=env, timeout=120,
                            cwd="/")  # as printed, from another folder
    assert result.returncode == 0, result.stderr
    with open(path) as fh:
        assert json.load(fh) == good
