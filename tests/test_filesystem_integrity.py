"""The filesystem backend keeps every byte it is given: set-aside files, damaged archives,
symbolic links, and backups that never open what the inventory keeps closed.

Real files, real modes and owners, and the real scripts as subprocesses.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import stat
import subprocess
import sys
import tarfile

import pytest
from helpers import run_script
from test_manage_support import snapshot
from test_filesystem_backend import (BACKUPS, INVENTORY, MANAGE, clean_env, ini, make_config, marker,  # noqa: F401
                                     members, ok, read_bytes, set_marker)

from osa_inventory.backends.filesystem import store
from osa_inventory.storage.loader import open_backend
from osa_inventory.storage.store_files import Folder
from osa_inventory.storage.settings import Settings

# Once per CI run: damaged inventories and archives and their repairs.
# The same code on every Python; the other versions' suites keep their own tests of each backend.
pytestmark = pytest.mark.once


def manage(config_dir: str, ini_path: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, MANAGE, "--config", config_dir, *args],
                          capture_output=True, text=True, env=clean_env(ini_path), timeout=120)


def versions(config_dir: str, count: int, ini_path: str) -> str:
    """``count`` changed runs: ``count - 1`` versions in the archive plus the current file."""
    for i in range(count):
        set_marker(config_dir, i)
        ok(run_script(config_dir, ini=ini_path))
    return config_dir


def one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.splitlines()
    assert result.returncode == 1 and result.stdout == "" and len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


# -- set-aside names -------------------------------------------------------------------

def test_set_aside_names_never_collide(tmp_path):
    stamp = "20260101_000000"
    made = []
    with Folder.open(str(tmp_path)) as folder:
        for i in range(3):
            (tmp_path / "archive.tar").write_bytes(b"damaged %d" % i)
            made.append(folder.set_aside("archive.tar", "corrupt", stamp))
    assert made == [f"archive.tar.corrupt-{stamp}", f"archive.tar.corrupt-{stamp}-2", f"archive.tar.corrupt-{stamp}-3"]
    assert [(tmp_path / p).read_bytes() for p in made] == [b"damaged 0", b"damaged 1", b"damaged 2"]
    assert not (tmp_path / "archive.tar").exists()


def test_two_damaged_archives_in_one_second_are_both_kept(tmp_path, ini, monkeypatch):
    config_dir = versions(make_config(tmp_path / "config"), 2, ini)
    backend = open_backend(Settings(path=None, backend="filesystem"), config_dir)
    monkeypatch.setattr(store, "stamp", lambda: "20260101_000000")
    archive = os.path.join(config_dir, BACKUPS)
    damaged = []
    for i in range(2):
        blob = b"not a tar file %d " % i * 4000   # 70 kB of something an operator may still want
        with open(archive, "wb") as fh:
            fh.write(blob)
        damaged.append(blob)
        inventory = backend.load()
        inventory["all"]["vars"]["round"] = i
        backend.write(inventory)
    aside = sorted(n for n in os.listdir(config_dir) if n.startswith(BACKUPS + ".corrupt-"))
    assert len(aside) == 2
    assert sorted(read_bytes(os.path.join(config_dir, n)) for n in aside) == sorted(damaged)
    # The rewritten archive holds the version each write replaced.
    assert len(members(config_dir)) == 1


# -- a truncated archive ---------------------------------------------------------------

def test_truncated_archive_lists_and_restores_what_is_intact(tmp_path, ini):
    config_dir = versions(make_config(tmp_path / "config"), 5, ini)
    archive = os.path.join(config_dir, BACKUPS)
    kept = members(config_dir)
    assert len(kept) == 4
    with tarfile.open(archive) as tar:
        third = tar.getmembers()[2]
    cut = third.offset_data + third.size // 2     # half-way through the third version's content
    with open(archive, "r+b") as fh:
        fh.truncate(cut)
    os.chmod(archive, 0o644)
    os.chmod(os.path.join(config_dir, INVENTORY), 0o600)

    listing = manage(config_dir, ini, "--history", "--format", "json")
    assert listing.returncode == 0, listing.stderr
    listed = [entry["version"] for entry in json.loads(listing.stdout)]
    intact = [re.match(r"openstack_inventory\.json-(.+)\.json$", name).group(1) for name, _ in kept[:2]]
    assert listed == intact + ["current"]

    restored = manage(config_dir, ini, "--restore", intact[0])
    assert restored.returncode == 0, restored.stderr
    with open(os.path.join(config_dir, INVENTORY)) as fh:
        assert marker(json.load(fh)) == 0
    # That write kept the two intact versions, added the one it replaced, and set the
    # damaged archive aside whole (its tail may still be recovered by hand).
    now = members(config_dir)
    assert [name for name, _ in now[:2]] == [name for name, _ in kept[:2]]
    assert json.loads(now[-1][1])["all"]["vars"]["run_marker"] == 4
    aside = [n for n in os.listdir(config_dir) if n.startswith(BACKUPS + ".corrupt-")]
    assert len(aside) == 1 and os.path.getsize(os.path.join(config_dir, aside[0])) == cut
    # Set aside, it is no looser than the inventory either.
    assert stat.S_IMODE(os.stat(os.path.join(config_dir, aside[0])).st_mode) == 0o600

    missing = manage(config_dir, ini, "--restore", "20000101_000000")
    assert missing.returncode == 1 and "list them with --history" in missing.stderr


def test_corrupt_inventory_with_a_truncated_archive_names_a_restore_that_works(tmp_path, ini):
    config_dir = versions(make_config(tmp_path / "config"), 5, ini)
    archive = os.path.join(config_dir, BACKUPS)
    with tarfile.open(archive) as tar:
        third = tar.getmembers()[2]
    with open(archive, "r+b") as fh:
        fh.truncate(third.offset_data + 100)
    with open(os.path.join(config_dir, INVENTORY), "w") as fh:
        fh.write("{")
    line = one_error_line(run_script(config_dir, ini=ini))
    assert "tar -xOf" not in line
    command = re.search(r"'(\S*scripts/inventory-manage\.py [^']*--restore \S+)'", line)
    assert command, line
    words = shlex.split(command.group(1))
    assert words[:3] == [MANAGE, "--config", config_dir], words
    env = clean_env(ini)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")  # a deployer's python3
    result = subprocess.run(words, capture_output=True, text=True, env=env, timeout=120)  # as printed
    assert result.returncode == 0, result.stderr
    with open(os.path.join(config_dir, INVENTORY)) as fh:
        assert marker(json.load(fh)) == 1      # the second version, the newest intact one


def test_restore_of_a_version_past_the_damage_names_it(tmp_path, ini):
    config_dir = versions(make_config(tmp_path / "config"), 4, ini)
    archive = os.path.join(config_dir, BACKUPS)
    lost = members(config_dir)[-1][0]
    with open(archive, "r+b") as fh:
        fh.truncate(os.path.getsize(archive) - 12_000)
    result = manage(config_dir, ini, "--restore", lost[len(INVENTORY) + 1:-len(".json")])
    assert result.returncode == 1
    assert "the archive is damaged" in result.stderr and "after 2 readable version(s)" in result.stderr


# -- a symbolic link in place of the inventory --------------------------------------

def _linked(tmp_path, ini, mode: int = 0o600) -> tuple[str, str]:
    config_dir = versions(make_config(tmp_path / "config"), 1, ini)
    shared = tmp_path / "shared"
    shared.mkdir()
    target = str(shared / "prod-inventory.json")
    os.replace(os.path.join(config_dir, INVENTORY), target)
    os.chmod(target, mode)
    os.symlink(target, os.path.join(config_dir, INVENTORY))
    return config_dir, target


def test_symlinked_inventory_stays_a_link_and_its_target_is_replaced(tmp_path, ini):
    config_dir, target = _linked(tmp_path, ini)
    link = os.path.join(config_dir, INVENTORY)
    before = read_bytes(target)
    set_marker(config_dir, "through the link")
    out = ok(run_script(config_dir, ini=ini))
    assert os.path.islink(link) and os.readlink(link) == target
    with open(target) as fh:
        assert marker(json.load(fh)) == marker(out) == "through the link"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    # The version it replaced went to the archive, which is no looser than the target.
    assert members(config_dir)[-1][1] == before
    assert stat.S_IMODE(os.stat(os.path.join(config_dir, BACKUPS)).st_mode) == 0o600
    assert not [n for n in os.listdir(os.path.dirname(target)) if n.endswith(".tmp")]
    assert not [n for n in os.listdir(config_dir) if n.endswith(".tmp")]


def test_a_symlinked_archive_is_not_followed_but_set_aside(tmp_path, ini):
    config_dir, target = _linked(tmp_path, ini)
    versions(config_dir, 2, ini)
    archive_target = os.path.join(os.path.dirname(target), "prod-backups.tar")
    os.replace(os.path.join(config_dir, BACKUPS), archive_target)
    os.symlink(archive_target, os.path.join(config_dir, BACKUPS))
    before = snapshot(archive_target)
    listing = manage(config_dir, ini, "--history")
    assert listing.returncode == 0, listing.stderr
    assert f"note: earlier versions not shown: {os.path.join(config_dir, BACKUPS)} is a symbolic link to " \
           f"{archive_target}, which is not followed here" in listing.stdout
    set_marker(config_dir, "archived beside the inventory")
    ok(run_script(config_dir, ini=ini))
    # Only the inventory itself may be a link: the archive link is moved aside as found, never written through.
    assert snapshot(archive_target) == before
    aside = [n for n in os.listdir(config_dir) if n.startswith(BACKUPS + ".untrusted-")]
    assert len(aside) == 1 and os.readlink(os.path.join(config_dir, aside[0])) == archive_target
    assert not os.path.islink(os.path.join(config_dir, BACKUPS))
    assert [marker(json.loads(data)) for _, data in members(config_dir)] == [1]


@pytest.mark.parametrize("advice", ["--restore", "tar"])
def test_a_corrupt_target_behind_a_link_names_both_and_the_advice_keeps_the_link(tmp_path, ini, advice):
    config_dir, target = _linked(tmp_path, ini)
    versions(config_dir, 3, ini)
    link = os.path.join(config_dir, INVENTORY)
    good = members(config_dir)[-1][1]
    with open(target, "w") as fh:
        fh.write("{damaged")
    line = one_error_line(run_script(config_dir, ini=ini))
    assert f"{link} (a symbolic link to {target}) is not valid JSON" in line
    if advice == "--restore":
        command = re.search(r"'(\S*inventory-manage\.py --config \S+ --restore \S+)'", line).group(1)
        done = subprocess.run([sys.executable, *shlex.split(command)], capture_output=True, text=True,
                              env=clean_env(ini), timeout=120)
        assert done.returncode == 0, done.stderr
    else:
        command = re.search(r"'(tar -xOf [^']+)'", line).group(1)
        assert command.endswith(f"> {target}")  # the file itself, named: what the link leads to
        subprocess.run(["/bin/sh", "-c", command], check=True, timeout=60)
    assert os.path.islink(link) and os.readlink(link) == target and read_bytes(target) == good


def test_symlink_target_folder_is_locked_too(tmp_path, ini):
    from osa_inventory.storage.safe_files import flock_wait
    config_dir, target = _linked(tmp_path, ini)
    ini_path = os.path.join(str(tmp_path), "short-lock.ini")
    with open(ini_path, "w") as fh:
        fh.write("[inventory]\nbackend = filesystem\n[filesystem]\nlock_timeout = 0.3\n")
    set_marker(config_dir, "blocked")
    # Another configuration linking to the same file holds the target's folder.
    with flock_wait(os.path.dirname(target), 1, ""):
        line = one_error_line(run_script(config_dir, ini=ini_path))
    assert f"held the lock on {os.path.dirname(target)}" in line
    with open(target) as fh:
        assert marker(json.load(fh)) == 0


@pytest.mark.parametrize("advice", ["restore that file", "remove the link"])
def test_dangling_symlink_is_refused_and_the_advice_works(tmp_path, ini, advice):
    config_dir, target = _linked(tmp_path, ini)
    saved = read_bytes(target)
    os.rename(target, target + ".moved")        # an unmounted share, a renamed file
    set_marker(config_dir, "after")
    line = one_error_line(run_script(config_dir, ini=ini))
    link = os.path.join(config_dir, INVENTORY)
    assert f"{link} is a symbolic link to {target}, which cannot be followed" in line
    assert "restore that file, or remove the link to start anew" in line
    assert os.path.islink(link) and not os.path.exists(target)
    if advice == "restore that file":
        os.rename(target + ".moved", target)
        out = ok(run_script(config_dir, ini=ini))
        assert os.path.islink(link) and marker(out) == "after"
        assert members(config_dir)[-1][1] == saved
    else:
        os.unlink(link)
        out = ok(run_script(config_dir, ini=ini))
        assert not os.path.islink(link) and marker(out) == "after"


def test_symlink_to_a_folder_is_refused(tmp_path, ini):
    config_dir = make_config(tmp_path / "config")
    os.symlink(str(tmp_path), os.path.join(config_dir, INVENTORY))
    line = one_error_line(run_script(config_dir, ini=ini))
    assert "which is not a regular file" in line and str(tmp_path) in line
    assert "point the link at a file, or remove it" in line
    assert os.path.islink(os.path.join(config_dir, INVENTORY))
    os.unlink(os.path.join(config_dir, INVENTORY))      # the advice
    ok(run_script(config_dir, ini=ini))
    assert os.path.isfile(os.path.join(config_dir, INVENTORY))


# -- backups never looser than the inventory -----------------------------------------

def test_backup_archive_is_never_looser_than_the_inventory(tmp_path, ini):
    config_dir = versions(make_config(tmp_path / "config"), 2, ini)
    inventory, archive = os.path.join(config_dir, INVENTORY), os.path.join(config_dir, BACKUPS)
    os.chmod(archive, 0o644)
    os.chmod(inventory, 0o640)
    set_marker(config_dir, "tightened")
    ok(run_script(config_dir, ini=ini))
    assert stat.S_IMODE(os.stat(archive).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(inventory).st_mode) == 0o640
    with tarfile.open(archive) as tar:
        assert {m.mode for m in tar.getmembers()[-1:]} == {0o640}


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_group_of_inventory_is_kept_and_given_to_the_archive(tmp_path, ini):
    config_dir = versions(make_config(tmp_path / "config"), 2, ini)
    inventory, archive = os.path.join(config_dir, INVENTORY), os.path.join(config_dir, BACKUPS)
    os.chown(inventory, 0, 4322)
    os.chmod(inventory, 0o640)
    set_marker(config_dir, "owned")
    ok(run_script(config_dir, ini=ini))
    for path in (inventory, archive):
        st = os.stat(path)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 4322, 0o640), path


def test_restore_over_a_corrupt_file_keeps_its_mode(tmp_path, ini):
    config_dir = versions(make_config(tmp_path / "config"), 3, ini)
    path = os.path.join(config_dir, INVENTORY)
    with open(path, "w") as fh:
        fh.write("{corrupt")
    os.chmod(path, 0o600)
    newest = members(config_dir)[-1][0][len(INVENTORY) + 1:-len(".json")]
    result = manage(config_dir, ini, "--restore", newest)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    aside = [n for n in os.listdir(config_dir) if n.startswith(INVENTORY + ".corrupt-")]
    assert len(aside) == 1 and stat.S_IMODE(os.stat(os.path.join(config_dir, aside[0])).st_mode) == 0o600


def test_new_archive_takes_the_inventory_mode(tmp_path, ini):
    config_dir = versions(make_config(tmp_path / "config"), 1, ini)
    os.chmod(os.path.join(config_dir, INVENTORY), 0o600)
    set_marker(config_dir, "first backup")
    ok(run_script(config_dir, ini=ini))
    assert stat.S_IMODE(os.stat(os.path.join(config_dir, BACKUPS)).st_mode) == 0o600




def test_adopt_is_refused_by_a_backend_without_deployment_names(tmp_path, ini):
    config_dir = versions(make_config(tmp_path / "config"), 1, ini)
    before = read_bytes(os.path.join(config_dir, INVENTORY))
    result = manage(config_dir, ini, "--adopt")
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1
    assert "does not name deployments" in result.stderr
    assert read_bytes(os.path.join(config_dir, INVENTORY)) == before
