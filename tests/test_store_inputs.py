"""Damaged and hostile files never hang a run, exhaust memory or block the repair they call for.

The real scripts on real files: FIFOs, folders, /dev/zero, a sparse 8 GB
file and 200 KB of brackets, in the inventory's place, in the change records,
in the backup archive, as -f FILE, --import FILE, the YAML config and
osa.ini. Each is one line naming the file (a FIFO at once, never after a
timeout), and every repair it advises works as printed over it.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
import tarfile

import pytest
from test_manage_support import (BACKUPS, INVENTORY, INVENTORY_SCRIPT, MANAGE, Deployment, assert_one_line_error,
                                 clean_env, snapshot)

from osa_inventory.backends.filesystem import archive as archives
from osa_inventory.bounded import MAX_INVENTORY_BYTES, MAX_JSON_DEPTH
from osa_inventory.storage.store_files import Folder

# Once per CI run: hostile files in the store (links, FIFOs, devices, damaged and huge files).
# The same code on every Python; the other versions' suites keep their own tests of each backend.
pytestmark = pytest.mark.once

SIDECAR = "openstack_inventory.changes.json"
#: About 200 KB of brackets: past Python's recursion limit in json.loads.
BRACKETS = b"[" * 100_000 + b"]" * 100_000
HANG_GUARD = 60  # seconds: a run that waits on a FIFO would never end, these end at once


def run(dep: Deployment, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, INVENTORY_SCRIPT, "--config", dep.config_dir, *args],
                          capture_output=True, text=True, timeout=HANG_GUARD,
                          env=clean_env({"OSA_INI": dep.ini, **(env or {})}))


def manage(*args: str, ini: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, MANAGE, *args], capture_output=True, text=True, timeout=HANG_GUARD,
                          env=clean_env({"OSA_INI": ini}))


@pytest.fixture
def dep(tmp_path) -> Deployment:
    """A deployment with three stored versions (two in the archive)."""
    d = Deployment(str(tmp_path))
    d.generate()
    assert d.manage("-d", "utility_all").returncode == 0
    assert d.manage("-d", "utility").returncode == 0
    return d


def newest_archived(dep: Deployment) -> dict:
    with tarfile.open(os.path.join(dep.config_dir, BACKUPS)) as tar:
        return json.load(tar.extractfile(tar.getmembers()[-1]))


def restore_advice(line: str) -> list[str]:
    """The inventory-manage command the line advises, as printed, as arguments."""
    match = re.search(r"'(\S*inventory-manage\.py [^']*--restore \S+)'", line)
    assert match, line
    return shlex.split(match.group(1))


# -- the inventory itself ------------------------------------------------------------------------------

def _sparse_giant(path: str) -> None:
    os.unlink(path)
    with open(path, "wb") as fh:
        fh.truncate(8 * 1024 ** 3)


def _brackets(path: str) -> None:
    with open(path, "wb") as fh:
        fh.write(BRACKETS)


@pytest.mark.parametrize("damage, words", [
    (_sparse_giant, f"is larger than {MAX_INVENTORY_BYTES // 1024 ** 2} MiB, more than any such file holds"),
    (_brackets, f"nests lists or objects more than {MAX_JSON_DEPTH} levels deep"),
], ids=["8 GB sparse", "200 KB of brackets"])
def test_a_damaged_inventory_is_one_line_and_the_advised_restore_works(dep, damage, words):
    good = newest_archived(dep)
    damage(dep.inventory_path)
    before = snapshot(dep.inventory_path) if os.path.getsize(dep.inventory_path) < 1024 ** 2 else None
    result = run(dep)
    assert_one_line_error(result, f"{dep.inventory_path} {words}", "it was left untouched",
                          f"--config {dep.config_dir} --restore ")
    if before:
        assert snapshot(dep.inventory_path) == before
    command = restore_advice(result.stderr)
    restored = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=HANG_GUARD,
                              env=clean_env({"OSA_INI": dep.ini}), cwd="/")  # as printed, from anywhere
    assert restored.returncode == 0, restored.stderr
    assert dep.stored() == good
    aside = [n for n in os.listdir(dep.config_dir) if n.startswith(INVENTORY + ".corrupt-")]
    assert len(aside) == 1 and os.path.getsize(os.path.join(dep.config_dir, aside[0])) in (8 * 1024 ** 3, len(BRACKETS))
    assert run(dep).returncode == 0


def test_import_force_works_over_a_deeply_nested_inventory(dep, tmp_path):
    export = tmp_path / "export.json"
    export.write_text(dep.manage("--export").stdout)
    good = dep.stored()
    _brackets(dep.inventory_path)
    assert_one_line_error(dep.manage("--import", str(export)), "cannot be read", "repeat with --force")
    result = dep.manage("--import", str(export), "--force")
    assert result.returncode == 0, result.stderr
    assert dep.stored() == good


@pytest.mark.parametrize("make, words", [
    (os.mkfifo, "is a FIFO (named pipe), not a regular file"),
    (os.mkdir, "is a folder, not a regular file"),
    (lambda p: os.symlink("/dev/zero", p), "is a symbolic link to /dev/zero, which is not a regular file"),
], ids=["FIFO", "folder", "link to /dev/zero"])
def test_something_else_in_the_inventorys_place_is_refused_at_once(dep, make, words):
    os.unlink(dep.inventory_path)
    make(dep.inventory_path)
    result = run(dep)  # a FIFO would wait for a writer for ever, /dev/zero would never end
    assert_one_line_error(result, dep.inventory_path, words)
    assert_one_line_error(dep.manage("--list-host"), dep.inventory_path, words)


# -- the change records and the archive -------------------------------------------------------------

def test_deeply_nested_records_never_break_a_run_or_the_history(dep):
    sidecar = os.path.join(dep.config_dir, SIDECAR)
    with open(sidecar, "wb") as fh:
        fh.write(BRACKETS)
    listing = dep.manage("--history")
    assert listing.returncode == 0 and listing.stderr == "", listing.stderr
    assert f"note: change records not shown: {sidecar} nests lists or objects more than" in listing.stdout
    assert dep.manage("-r", "compute1", "--reason", "after the damage").returncode == 0, "compute1 is there"
    rows = json.loads(dep.manage("--history", "--format", "json").stdout)
    assert rows[-1]["reason"] == "after the damage"
    assert [n for n in os.listdir(dep.config_dir) if n.startswith(SIDECAR + ".corrupt-")]


def test_a_deeply_nested_archived_version_is_one_row_and_the_others_restore(dep):
    archive = os.path.join(dep.config_dir, BACKUPS)
    with tarfile.open(archive) as tar:
        kept = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(archive, "w", format=tarfile.GNU_FORMAT) as tar:
        info, _ = kept[0]
        info.size = len(BRACKETS)
        tar.addfile(info, io.BytesIO(BRACKETS))
        tar.addfile(kept[1][0], io.BytesIO(kept[1][1]))
    rows = json.loads(dep.manage("--history", "--format", "json").stdout)
    assert rows[0]["summary"].startswith("cannot be read: ") and "levels deep" in rows[0]["summary"]
    assert_one_line_error(dep.manage("--restore", rows[0]["version"]), "levels deep", "choose another one")
    assert dep.manage("--restore", rows[1]["version"]).returncode == 0
    assert dep.stored() == json.loads(kept[1][1])


def test_archive_reading_is_bounded_in_members_and_member_size(tmp_path):
    folder = tmp_path / "store"
    folder.mkdir()
    blob = io.BytesIO()
    with tarfile.open(fileobj=blob, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for n in range(3):
            info = tarfile.TarInfo(f"{INVENTORY}-2026010{n}_000000.json")
            info.size = 2
            tar.addfile(info, io.BytesIO(b"{}"))
        giant = tarfile.TarInfo(f"{INVENTORY}-20260109_000000.json")
        giant.size = MAX_INVENTORY_BYTES + 1  # a header that claims more than any inventory; no data follows
        blob.write(giant.tobuf(tarfile.GNU_FORMAT))
    (folder / BACKUPS).write_bytes(blob.getvalue())
    with Folder.open(str(folder)) as opened:
        archive = archives.read(opened, 15)
    assert [m.name for m, _ in archive.members] == [f"{INVENTORY}-2026010{n}_000000.json" for n in range(3)]
    assert archive.damage == f"member {giant.name} is larger than any inventory after 3 readable version(s)"

    many = io.BytesIO()
    with tarfile.open(fileobj=many, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for n in range(archives.MAX_MEMBERS + 1):
            tar.addfile(_dir(n))
    (folder / BACKUPS).write_bytes(many.getvalue())
    with Folder.open(str(folder)) as opened:
        archive = archives.read(opened, 15)
    assert archive.members == [] and archive.damage.startswith(f"it holds more than {archives.MAX_MEMBERS} entries")


def _dir(n: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(f"d{n}")
    info.type = tarfile.DIRTYPE
    return info


# -- files named on the command line and the configuration ---------------------------------------------

@pytest.mark.parametrize("make, kind", [(None, "a character device"), (os.mkfifo, "a FIFO (named pipe)")],
                         ids=["/dev/zero", "FIFO"])
def test_file_and_import_of_a_device_or_fifo_are_refused_at_once(dep, tmp_path, make, kind):
    path = "/dev/zero"
    if make is not None:
        path = str(tmp_path / "pipe.json")
        make(path)
    assert_one_line_error(manage("-f", path, "-l", ini=dep.ini), f"-f {path} is {kind}, not a regular file; "
                                                                  "name an inventory file")
    before = snapshot(dep.inventory_path)
    assert_one_line_error(dep.manage("--import", path, "--force"), f"{path}: is {kind}, not a regular file")
    assert snapshot(dep.inventory_path) == before


def test_osa_ini_and_the_user_config_as_fifos_are_refused_at_once(dep, tmp_path):
    fifo = str(tmp_path / "osa-fifo.ini")
    os.mkfifo(fifo)
    result = subprocess.run([sys.executable, INVENTORY_SCRIPT, "--config", dep.config_dir], capture_output=True,
                            text=True, timeout=HANG_GUARD, env=clean_env({"OSA_INI": fifo}))
    assert_one_line_error(result, f"{fifo}: is a FIFO (named pipe), not a regular file")
    user_config = os.path.join(dep.config_dir, "openstack_user_config.yml")
    os.unlink(user_config)
    os.mkfifo(user_config)
    assert_one_line_error(run(dep), f"{user_config}: is a FIFO (named pipe), not a regular file")


def test_a_file_of_another_name_that_is_a_link_is_refused(dep, tmp_path):
    real = tmp_path / "real.json"
    real.write_text(json.dumps(dep.stored()))
    link = tmp_path / "inv.json"
    link.symlink_to(real)
    before = snapshot(str(real))
    result = manage("-f", str(link), "-r", "infra1", ini=dep.ini)
    assert_one_line_error(result, f"-f {link} is a symbolic link to {real}; -f works on the file itself")
    assert snapshot(str(real)) == before
    advised = re.search(r"\(-f (\S+)\)", result.stderr).group(1)  # as printed
    assert manage("-f", advised, "-r", "infra1", ini=dep.ini).returncode == 0
    assert "infra1" not in json.loads(real.read_text())["_meta"]["hostvars"]


def test_the_restore_advice_of_f_names_the_file(dep):
    good = newest_archived(dep)
    with open(dep.inventory_path, "w") as fh:
        fh.write("{damaged")
    result = manage("-f", dep.inventory_path, "-l", ini=dep.ini)
    assert_one_line_error(result, f"-f {dep.inventory_path} --restore ")
    restored = subprocess.run([sys.executable, *restore_advice(result.stderr)], capture_output=True, text=True,
                              timeout=HANG_GUARD, env=clean_env({"OSA_INI": dep.ini}))
    assert restored.returncode == 0, restored.stderr
    assert dep.stored() == good
