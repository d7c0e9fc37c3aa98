"""A member of the store folder's group cannot make root's runs write, read or expose someone else's file.

The set-up the old sharing advice gave (the folder owned by root, writable
by an operators' group) with a real second user in that group, who plants
links, hard links and files of her own with ordinary shell commands; root
then runs the real inventory script and inventory-manage. Each attack ends
with the target untouched (content, inode, modification time), at most one
line printed, and that line's advice run as printed. Root only (users,
groups and setpriv); skipped otherwise with the reason.
"""

from __future__ import annotations

import grp
import io
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile

import pytest
from os_users import as_user, make_group, make_user, need_root, remove_group, remove_user, unique
from test_manage_support import (BACKUPS, INVENTORY, INVENTORY_SCRIPT, Deployment, assert_one_line_error,
                                 clean_env, snapshot)

LOG_NAME = "inventory.log"
SECRET = b"root:$6$rounds=5000$every-hash-of-the-machine:19000:0:99999:7:::\n"


@pytest.fixture(scope="module")
def member():
    """(group, user): an operators' group and one member of it, removed afterwards."""
    need_root()
    if not shutil.which("setpriv"):
        pytest.skip("setpriv is not installed (util-linux); it runs commands as other users")
    group = unique("osalnkg")
    make_group(group)
    user = make_user(unique("osalnku"), [group])[0]
    try:
        yield group, user
    finally:
        remove_user(user)
        remove_group(group)


@pytest.fixture
def site(member):
    """A deployment whose config folder the group may write, and root's secrets beside it."""
    group, _user = member
    base = tempfile.mkdtemp(prefix="osa-attack-", dir="/tmp")  # other users must reach it
    try:
        os.chmod(base, 0o755)
        dep = Deployment(base)
        os.chown(dep.config_dir, 0, grp.getgrnam(group).gr_gid)
        os.chmod(dep.config_dir, 0o2770)
        etc = os.path.join(base, "etc")
        os.mkdir(etc, 0o755)
        shadow = os.path.join(etc, "shadow")   # stands for /etc/shadow: root's, nobody else reads it
        with open(shadow, "wb") as fh:
            fh.write(SECRET)
        os.chmod(shadow, 0o600)
        profile = os.path.join(etc, "profile.sh")  # stands for /etc/profile.d/*.sh: every login runs it
        with open(profile, "wb") as fh:
            fh.write(b"umask 022\n")
        dep.generate()
        yield dep, shadow, profile
    finally:
        shutil.rmtree(base)


def as_member(member, command: str) -> None:
    """Run a shell command as the group member; it must succeed (she may write the folder)."""
    done = subprocess.run(as_user(member[1], ["/bin/sh", "-c", command]), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


def plant_link(member, dep: Deployment, name: str, target: str) -> str:
    path = os.path.join(dep.config_dir, name)
    as_member(member, f"rm -f {shlex.quote(path)} && ln -s {shlex.quote(target)} {shlex.quote(path)}")
    return path


def run(dep: Deployment, *args: str) -> subprocess.CompletedProcess:
    """The inventory script as root, whatever its result."""
    return subprocess.run([sys.executable, INVENTORY_SCRIPT, "--config", dep.config_dir, *args],
                          capture_output=True, text=True, timeout=120, env=clean_env({"OSA_INI": dep.ini}))


def change_config(dep: Deployment, value: str) -> None:
    config = dep.config()
    config["global_overrides"]["attack_marker"] = value
    dep.save_config(config)


def holding(folder: str, content: bytes) -> list[str]:
    """Every file in ``folder`` (links not followed) that holds ``content``."""
    found = []
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, "rb") as fh:
                if content in fh.read():
                    found.append(name)
    return found


def advised(line: str, command: str) -> str:
    """The shell command starting with ``command`` that the error line advises, as printed."""
    match = re.search(rf"\b({command} [^();]+?)(?: \(or remove it\))?(?:\)|;|$)", line.strip())
    assert match, f"no {command} advice in {line!r}"
    return match.group(1)


def test_an_archive_link_to_a_root_file_is_set_aside_never_written_or_exposed(member, site):
    dep, shadow, _profile = site
    before = snapshot(shadow)
    link = plant_link(member, dep, BACKUPS, shadow)

    listing = dep.manage("--history")
    assert listing.returncode == 0 and listing.stderr == "", listing.stderr
    notes = [line for line in listing.stdout.splitlines() if line.startswith("note: ")]
    assert notes == [f"note: earlier versions not shown: {link} is a symbolic link to {shadow}, which is not "
                     f"followed here; the next change moves it aside as {BACKUPS}.untrusted-<UTC time> and "
                     "starts a new archive"]

    # Root's next changing run and root's next edit: the link is moved aside as it is, and a new archive started.
    stored = dep.stored()
    change_config(dep, "after the link")
    result = run(dep)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert dep.manage("-r", "compute1").returncode == 0
    assert snapshot(shadow) == before and oct(os.stat(shadow).st_mode)[-3:] == "600"
    aside = [n for n in os.listdir(dep.config_dir) if n.startswith(BACKUPS + ".untrusted-")]
    assert len(aside) == 1 and os.readlink(os.path.join(dep.config_dir, aside[0])) == shadow
    assert not os.path.islink(link) and holding(dep.config_dir, SECRET) == []
    with tarfile.open(link) as tar:
        kept = [json.load(tar.extractfile(m)) for m in tar.getmembers()]
    assert kept[0] == stored and len(kept) == 2  # root's own versions only
    with open(os.path.join(dep.config_dir, LOG_NAME)) as fh:
        logged = [line for line in fh if "moved aside" in line]
    assert len(logged) == 1 and f"{link} is a symbolic link to {shadow}" in logged[0]


def test_an_inventory_link_someone_else_made_is_refused_by_every_command(member, site):
    dep, shadow, _profile = site
    before, stored = snapshot(shadow), dep.stored()
    versions = json.loads(dep.manage("--history", "--format", "json").stdout)
    export = os.path.join(dep.root, "export.json")
    with open(export, "w") as fh:
        fh.write(dep.manage("--export").stdout)
    link = plant_link(member, dep, INVENTORY, shadow)
    refusal = (f"{link} is a symbolic link to {shadow}, and the link itself is owned by {member[1]} (uid "
               f"{os.lstat(link).st_uid}), not by root or the current user; a link is followed only when root or "
               f"the current user made it; remove it (rm {link}); to keep the inventory elsewhere, make the link "
               "as root")
    change_config(dep, "through the link")
    result = run(dep)
    assert_one_line_error(result, refusal)
    for args in (["--restore", versions[-1]["version"]], ["-r", "compute1"], ["--list-host"],
                 ["--import", export, "--force"], ["--history", "--format", "json"]):
        proc = dep.manage(*args)
        if args[0] == "--history":  # the current version cannot be read, and says why
            assert proc.returncode == 0, proc.stderr
            assert [(v["version"], refusal in v["summary"]) for v in json.loads(proc.stdout)] == [("current", True)]
        else:
            assert_one_line_error(proc, refusal)
    assert snapshot(shadow) == before and holding(dep.config_dir, SECRET) == []

    subprocess.run(advised(result.stderr, "rm"), shell=True, check=True)  # as printed
    result = run(dep)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    # Names and addresses are derived, so the inventory made anew after removing the link is the one stored.
    assert json.loads(result.stdout)["_meta"]["hostvars"] == stored["_meta"]["hostvars"]
    assert not os.path.islink(link) and snapshot(shadow) == before


def test_a_log_link_is_refused_and_a_hard_link_too(member, site):
    dep, _shadow, profile = site
    before = snapshot(profile)
    link = plant_link(member, dep, LOG_NAME, profile)
    result = run(dep, "-d")
    assert_one_line_error(result, f"{link} is a symbolic link to {profile}, which is not followed here")
    subprocess.run(advised(result.stderr, "rm"), shell=True, check=True)  # as printed
    assert run(dep, "-d").returncode == 0
    assert snapshot(profile) == before
    assert os.stat(link).st_uid == 0 and oct(os.stat(link).st_mode)[-3:] == "600"

    # A second name of root's file (what fs.protected_hardlinks=0 lets anyone make) is refused the same way.
    os.unlink(link)
    os.link(profile, link)
    result = run(dep, "-d")
    assert_one_line_error(result, f"{link} has 2 hard links, so a change to it would reach a file under another name")
    assert snapshot(profile) == before
    subprocess.run(advised(result.stderr, "cp"), shell=True, check=True)  # as printed: a file of its own
    assert run(dep, "-d").returncode == 0
    assert snapshot(profile) == before and os.stat(link).st_nlink == 1


def test_each_log_message_stays_one_line(tmp_path):
    from osa_inventory.commands import script as cli
    root = logging.getLogger()
    saved = root.level, list(root.handlers), logging.raiseExceptions
    cli._setup_logging(str(tmp_path), debug=False)
    try:
        logging.getLogger("osa_inventory").warning("unknown host group %s", "x\nroot ALL=(ALL) NOPASSWD: ALL\ny")
    finally:
        for handler in list(root.handlers):
            handler.close()
            root.removeHandler(handler)
        root.setLevel(saved[0])
        for handler in saved[1]:
            root.addHandler(handler)
        logging.raiseExceptions = saved[2]
    with open(tmp_path / LOG_NAME) as fh:
        lines = fh.read().splitlines()
    assert len(lines) == 1 and lines[0].endswith("unknown host group x\\nroot ALL=(ALL) NOPASSWD: ALL\\ny")


def test_an_archive_a_member_wrote_is_never_listed_restored_or_carried(member, site):
    dep, _shadow, _profile = site
    dep.manage("-r", "compute1")
    forged = json.loads(json.dumps(dep.stored()))
    forged["all"]["vars"]["ansible_ssh_common_args"] = "-o ProxyCommand='sh -c \"id > /tmp/pwned\"'"
    blob = io.BytesIO()
    with tarfile.open(fileobj=blob, mode="w", format=tarfile.GNU_FORMAT) as tar:
        data = json.dumps(forged).encode()
        info = tarfile.TarInfo(f"{INVENTORY}-20991231_235959.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    staged = os.path.join(dep.root, "forged.tar")
    with open(staged, "wb") as fh:
        fh.write(blob.getvalue())
    os.chmod(staged, 0o644)
    archive = os.path.join(dep.config_dir, BACKUPS)
    as_member(member, f"rm -f {archive} && cp {staged} {archive} && chmod 666 {archive}")

    listed = json.loads(dep.manage("--history", "--format", "json").stdout)
    assert [v["version"] for v in listed] == [listed[-1]["version"]] and "20991231_235959" not in repr(listed)
    assert_one_line_error(dep.manage("--restore", "20991231_235959"), f"no version '20991231_235959' can be read: "
                          f"{archive} is owned by {member[1]}")
    change_config(dep, "after the forged archive")
    assert run(dep).returncode == 0
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert len(names) == 1 and "20991231_235959" not in names[0]
    assert os.stat(archive).st_uid == 0
    assert len([n for n in os.listdir(dep.config_dir) if n.startswith(BACKUPS + ".untrusted-")]) == 1


@pytest.mark.parametrize("how", ["owned by the member", "group-writable"])
def test_an_inventory_root_did_not_write_alone_is_refused_until_reviewed(member, site, how):
    dep, _shadow, _profile = site
    path = dep.inventory_path
    if how == "owned by the member":
        # She rewrites it as herself (the folder lets her): the content is hers, and root's Ansible would obey it.
        as_member(member, f"sed 's/\"ansible_host\"/\"ansible_host\"/' {path} > {path}.new && mv {path}.new {path}")
        words = f"is owned by {member[1]} (uid {os.stat(path).st_uid}), not by root or the current user; " \
                f"review it, then run chown root {path} (or remove it)"
        command = "chown"
    else:
        os.chmod(path, 0o664)
        words = f"is writable by group or others (mode 0664); run chmod go-w {path}"
        command = "chmod"
    before = snapshot(path)
    change_config(dep, "refused")
    result = run(dep)
    assert_one_line_error(result, f"{path} {words}")
    assert snapshot(path) == before
    subprocess.run(advised(result.stderr, command), shell=True, check=True)  # as printed, once reviewed
    result = run(dep)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert dep.stored()["all"]["vars"]["attack_marker"] == "refused"


def test_a_root_link_into_a_folder_the_group_writes_is_refused(member, site):
    dep, _shadow, _profile = site
    group = member[0]
    share = os.path.join(dep.root, "share")
    os.mkdir(share)
    os.chown(share, 0, grp.getgrnam(group).gr_gid)
    os.chmod(share, 0o2770)
    target = os.path.join(share, "prod.json")
    shutil.move(dep.inventory_path, target)
    os.symlink(target, dep.inventory_path)  # root's own link: the folder it leads into is the problem
    before = snapshot(target)
    change_config(dep, "shared")
    result = run(dep)
    assert_one_line_error(result, f"{dep.inventory_path} is a symbolic link to {target}, in the folder {share}, "
                                  "which is writable by group or others (mode 2770)")
    assert snapshot(target) == before
    subprocess.run(advised(result.stderr, "chmod"), shell=True, check=True)  # as printed
    result = run(dep)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    with open(target) as fh:
        assert json.load(fh)["all"]["vars"]["attack_marker"] == "shared"
    assert os.path.islink(dep.inventory_path)
