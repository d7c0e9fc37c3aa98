"""[filesystem] group and mode: an operators' group reads the inventory, other users do not.

Real files, real groups and users (root only; skipped otherwise), the real
scripts: the group and mode after an inventory run, an inventory-manage edit,
on the backup archive, after --restore and on a file set aside; reading as a
member and as an outsider; refusals (unknown group, bad modes, a writer
outside the group) in one line with advice that works as printed.
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import tempfile

import pytest
from os_users import as_user, make_group, make_user, need_root, remove_group, remove_user, unique
from plugin_fixtures import assert_one_line_failure
from helpers import run_script
from test_manage_support import BACKUPS, ROOT, Deployment

from osa_inventory.errors import StorageError
from osa_inventory.storage.file_access import FileAccess, group_id, parse_mode

SYSTEM_PYTHON = "/usr/bin/python3"
# The built-in plugin driven directly (it needs only the standard library), as another user: our
# own Python lives below root's private home, where other users cannot run it.
PLUGIN_WRITE = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from filesystem import Storage
from osa_inventory.errors import InventoryError
storage = Storage()
try:
    storage.register({"config_dir": sys.argv[3], "group": sys.argv[4], "mode": "0640"})
    storage.write({"all": {"vars": {}}, "_meta": {"hostvars": {}}})
except InventoryError as exc:
    sys.exit("ERROR: " + str(exc))
"""


def access(path: str) -> tuple[int, int]:
    """(permission bits, gid) of ``path``."""
    st = os.stat(path)
    return stat.S_IMODE(st.st_mode), st.st_gid


@pytest.fixture(scope="module")
def people():
    """A group, a user in it and a user outside it: (group, gid, member, outsider)."""
    need_root()
    group = unique("osaops")
    gid = make_group(group)
    member = make_user(unique("osamem"), groups=[group])[0]
    outsider = make_user(unique("osaout"))[0]
    try:
        yield group, gid, member, outsider
    finally:
        remove_user(member)
        remove_user(outsider)
        remove_group(group)


@pytest.fixture
def shared_tmp():
    """A folder other users can reach (pytest's own tmp folders are root's alone)."""
    base = tempfile.mkdtemp(prefix="osa-access-", dir="/tmp")
    os.chmod(base, 0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base)


def can_read(user: str, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(as_user(user, cmd), capture_output=True, text=True, timeout=60)


def test_group_and_mode_on_every_file_written(people, shared_tmp):
    group, gid, member, outsider = people
    d = Deployment(shared_tmp, ini_text=f"[inventory]\nbackend = filesystem\n[filesystem]\n"
                                        f"group = {group}\nmode = 0640\n")
    os.chmod(d.config_dir, 0o755)
    d.generate()
    assert access(d.inventory_path) == (0o640, gid)
    assert os.stat(d.inventory_path).st_uid == 0  # the owner is the writer's: only the group is given
    first = d.stored()
    assert can_read(member, "cat", d.inventory_path).stdout == open(d.inventory_path).read()
    refused = can_read(outsider, "cat", d.inventory_path)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    # The change records beside it (who wrote it, and why) are kept alike.
    records = os.path.join(d.config_dir, "openstack_inventory.changes.json")
    assert access(records) == (0o640, gid)
    assert can_read(outsider, "cat", records).returncode != 0

    # Tightened or loosened by hand, an edit puts the configured access back, on the archive too.
    os.chown(d.inventory_path, 0, 0)
    os.chmod(d.inventory_path, 0o600)
    assert d.manage("-r", "compute1").returncode == 0
    archive = os.path.join(d.config_dir, BACKUPS)
    assert access(d.inventory_path) == access(archive) == access(records) == (0o640, gid)
    assert can_read(member, "tar", "-tf", archive).returncode == 0
    assert can_read(outsider, "tar", "-tf", archive).returncode != 0

    # --restore over a damaged file: the file set aside and its replacement get them as well.
    versions = json.loads(d.manage("--history", "--format", "json").stdout)
    for damaged in (d.inventory_path, records):
        with open(damaged, "w") as fh:
            fh.write("{damaged")
        os.chmod(damaged, 0o604)
    restored = d.manage("--restore", versions[0]["version"])
    assert restored.returncode == 0, restored.stderr
    assert d.stored() == first
    aside = sorted(n for n in os.listdir(d.config_dir) if ".corrupt-" in n)
    assert [n.split(".corrupt-")[0] for n in aside] == ["openstack_inventory.changes.json", "openstack_inventory.json"]
    assert [access(os.path.join(d.config_dir, n)) for n in aside] == [(0o640, gid)] * 2
    assert access(d.inventory_path) == access(archive) == access(records) == (0o640, gid)

    # Unset again: today's rules (the mode is kept, the archive never looser than the inventory).
    d.write_ini("[inventory]\nbackend = filesystem\n")
    os.chmod(d.inventory_path, 0o600)
    assert d.manage("-r", "compute1").returncode == 0
    assert access(d.inventory_path) == access(archive) == access(records) == (0o600, gid)


def test_a_writer_must_be_able_to_give_the_group(people, shared_tmp):
    group, gid, _member, _outsider = people
    late = make_user(unique("osalate"))[0]  # added to the group below: not shared with other tests
    try:
        _write_as_outsider_then_member(group, gid, late, shared_tmp)
    finally:
        remove_user(late)


def _write_as_outsider_then_member(group: str, gid: int, outsider: str, shared_tmp: str) -> None:
    plugins, lib = os.path.join(ROOT, "lib", "plugins"), os.path.join(ROOT, "lib")
    if subprocess.run(as_user(outsider, [SYSTEM_PYTHON, "-c", ""]), capture_output=True).returncode != 0:
        pytest.skip(f"{SYSTEM_PYTHON} cannot be run by another user here")
    folder = os.path.join(shared_tmp, "open")
    os.mkdir(folder)
    os.chmod(folder, 0o777)
    write = [SYSTEM_PYTHON, "-c", PLUGIN_WRITE, lib, plugins, folder, group]
    refused = can_read(outsider, *write)
    assert refused.returncode == 1 and os.listdir(folder) == [], refused.stderr
    line = refused.stderr.strip()
    assert line.count("\n") == 0 and f"user {outsider} is not in group {group}" in line
    advice = line[line.index("(usermod"):].split(", then")[0].lstrip("(")
    assert shlex.split(advice) == ["usermod", "-a", "-G", group, outsider]
    subprocess.run(shlex.split(advice), check=True)  # as printed
    written = can_read(outsider, *write)
    assert written.returncode == 0, written.stderr
    inventory = os.path.join(folder, "openstack_inventory.json")
    assert access(inventory) == (0o640, gid)
    assert os.stat(inventory).st_uid == pwd.getpwnam(outsider).pw_uid  # written by that user, given to the group


def test_unknown_group_and_bad_modes_are_refused_before_anything_is_written(tmp_path):
    d = Deployment(str(tmp_path))
    before = sorted(os.listdir(d.config_dir))
    missing = unique("osanogrp")
    d.write_ini(f"[inventory]\nbackend = filesystem\n[filesystem]\ngroup = {missing}\nmode = 0640\n")
    result = run_script(d.config_dir, ini=d.ini)
    line = assert_one_line_failure(result, f"[filesystem] group = '{missing}' names no group on this machine",
                                   f"groupadd {missing}")
    assert sorted(os.listdir(d.config_dir)) == before
    d.write_ini("[inventory]\nbackend = filesystem\n")
    for bad, words in (("0666", "lets every user rewrite"), ("0750", "executable"), ("rw-r-----", "not an octal")):
        refused = run_script(d.config_dir, ini=d.ini, env={"OSA_INVENTORY_FILESYSTEM_MODE": bad})
        assert_one_line_failure(refused, f"[filesystem] mode = '{bad}'", words)
    d.write_ini(f"[inventory]\nbackend = filesystem\n[filesystem]\ngroup = {missing}\nmode = 0640\n")
    assert sorted(os.listdir(d.config_dir)) == before
    if os.geteuid() != 0:
        return
    advice = line[line.index("(groupadd"):].split(")")[0].lstrip("(")
    subprocess.run(shlex.split(advice), check=True)  # as printed
    try:
        assert run_script(d.config_dir, ini=d.ini).returncode == 0
        assert access(d.inventory_path) == (0o640, group_id(missing, "group"))
    finally:
        remove_group(missing)


def test_mode_and_group_values_in_process():
    assert [parse_mode(t, "m") for t in ("0640", "640", " 0600 ", "0644", "0400", "")] == [
        0o640, 0o640, 0o600, 0o644, 0o400, None]
    for bad, words in (("0750", "executable"), ("0646", "every user rewrite"), ("4640", "setuid"),
                       ("0660", "the group rewrite"), ("0620", "the group rewrite"),
                       ("0o640", "not an octal"), ("06400", "not an octal"), ("0040", "owner from reading"),
                       ("0641", "executable")):
        with pytest.raises(StorageError) as exc:
            parse_mode(bad, "[filesystem] mode")
        assert f"[filesystem] mode = '{bad}'" in str(exc.value) and words in str(exc.value), str(exc.value)
    assert group_id("", "g") is None and group_id("0", "g") == 0 and group_id("root", "g") == 0
    unset = FileAccess()
    assert not unset.configured and unset.mode_for(0o600) == 0o600 and unset.owner_for((5, 6)) == (5, 6)
    set_ = FileAccess.from_options("root", "0640")
    assert set_.mode_for(0o600) == 0o640 and set_.owner_for((5, 6)) == (5, 0)
    assert set_.owner_for(None) == (os.geteuid(), 0)


def test_symbolic_link_target_gets_them(tmp_path):
    d = Deployment(str(tmp_path))
    elsewhere = tmp_path / "share"
    elsewhere.mkdir()
    d.generate()
    target = elsewhere / "inventory.json"
    shutil.move(d.inventory_path, target)
    os.symlink(target, d.inventory_path)
    d.write_ini(f"[inventory]\nbackend = filesystem\n[filesystem]\ngroup = {os.getegid()}\nmode = 0604\n")
    assert d.manage("-r", "compute1").returncode == 0
    assert os.path.islink(d.inventory_path) and "compute1" not in d.stored()["_meta"]["hostvars"]
    assert access(str(target)) == (0o604, os.getegid())
    assert access(os.path.join(d.config_dir, BACKUPS)) == (0o604, os.getegid())
