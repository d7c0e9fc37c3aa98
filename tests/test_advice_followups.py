"""Advice that works as printed, in the places the strict-validation work left open.

* a stored inventory of the wrong shape: the printed --history / --restore commands repair it;
* a plugin's message about its options names the osa.ini section the deployer wrote ([fs_copy]);
* --check-stale accepts what an inventory run accepts under [inventory] unknown_host_groups = warn.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import subprocess
import sys

from test_manage_support import INVENTORY_SCRIPT, Deployment, assert_one_line_error, clean_env


def run_script(d: Deployment) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, INVENTORY_SCRIPT, "--config", d.config_dir, "--list"],
                          capture_output=True, text=True, timeout=120, env=clean_env({"OSA_INI": d.ini}))


def run_printed(command: str, d: Deployment) -> subprocess.CompletedProcess:
    """Run a command exactly as an error line printed it (the checkout script is executable)."""
    argv = shlex.split(command)
    if argv[0].endswith(".py"):
        argv = [sys.executable] + argv
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=clean_env({"OSA_INI": d.ini}))


def test_wrong_shape_advice_repairs_as_printed(tmp_path):
    d = Deployment(str(tmp_path))
    first = d.generate()
    config = d.config()
    config["compute_hosts"]["compute9"] = {"ip": "172.29.236.99"}
    d.save_config(config)
    second = d.generate()
    assert "compute9" in second["_meta"]["hostvars"] and "compute9" not in first["_meta"]["hostvars"]

    broken = dict(second)
    broken["_meta"] = {"hostvars": ["not", "a", "mapping"]}
    with open(d.inventory_path, "w", encoding="utf-8") as fh:
        json.dump(broken, fh)
    before = open(d.inventory_path, encoding="utf-8").read()

    proc = run_script(d)
    assert_one_line_error(proc, "nothing was written")
    assert open(d.inventory_path, encoding="utf-8").read() == before  # never rewritten
    match = re.search(r"\((\S+ --config \S+) --history, then --restore VERSION\)", proc.stderr)
    assert match, proc.stderr
    tool = match.group(1)

    history = run_printed(f"{tool} --history --format json", d)
    assert history.returncode == 0, history.stderr
    versions = json.loads(history.stdout)
    assert len(versions) >= 2
    # The newest archived version is the one the second run stored.
    older = [v for v in versions if not v.get("current")]
    assert older, versions
    restored = None
    for version in older:
        label = str(version.get("version") or version.get("name") or version.get("id"))
        show = run_printed(f"{tool} --restore {shlex.quote(label)}", d)
        if show.returncode == 0:
            restored = label
            break
    assert restored is not None, [v for v in older]
    again = run_script(d)
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""
    assert json.loads(again.stdout)["_meta"]["hostvars"].keys() >= first["_meta"]["hostvars"].keys()


def test_plugin_messages_name_the_deployers_section(tmp_path):
    d = Deployment(str(tmp_path), ini_text=(
        "[inventory]\nbackend = fs_copy\n\n[fs_copy]\nplugin = filesystem\nlock_timeout = 0.2\n"))
    d.generate()
    # Hold the folder lock the way a concurrent run would.
    fd = os.open(d.config_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        proc = run_script(d)
    finally:
        os.close(fd)
    assert_one_line_error(proc, "[fs_copy] lock_timeout")
    assert "[filesystem]" not in proc.stderr


def test_check_stale_follows_unknown_host_groups_warn(tmp_path):
    d = Deployment(str(tmp_path), ini_text="[inventory]\nbackend = filesystem\nunknown_host_groups = warn\n")
    config = d.config()
    config["comptue_hosts"] = {"rack9": {"ip": "172.29.236.199"}}
    d.save_config(config)
    d.generate()
    proc = d.manage("--check-stale", "--strict")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("nothing stale")
    # With the strict default the same config is refused, naming the key.
    d.write_ini("[inventory]\nbackend = filesystem\n")
    strict = d.manage("--check-stale")
    assert_one_line_error(strict, "comptue_hosts", "did you mean compute_hosts?")
