"""A write that cannot finish: a full disk, a read-only file system, a folder the user may not write, a kill.

Each is one line naming the real file and its folder (never a temp file) and
what to do; the stored inventory is unchanged, no temp file stays, and an
archive rewritten before the inventory could be replaced never makes the
same version count twice. Full and read-only disks are real tmpfs mounts
(root only; skipped with the reason where mounting is not allowed).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

import pytest
from os_users import as_user, users_fixture
from test_manage_support import (BACKUPS, INVENTORY, INVENTORY_SCRIPT, MANAGE, Deployment, assert_one_line_error,
                                 clean_env, snapshot)

from osa_inventory.manage import versions
from osa_inventory.storage import store_files
from osa_inventory.storage.loader import open_backend
from osa_inventory.storage.settings import Settings


def run(dep: Deployment, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, INVENTORY_SCRIPT, "--config", dep.config_dir, *args],
                          capture_output=True, text=True, timeout=120, env=clean_env({"OSA_INI": dep.ini}))


def change_config(dep: Deployment, value) -> None:
    config = dep.config()
    config["global_overrides"]["failure_marker"] = value
    dep.save_config(config)


def members(folder: str) -> list[tuple[str, bytes]]:
    if not os.path.exists(os.path.join(folder, BACKUPS)):
        return []
    with tarfile.open(os.path.join(folder, BACKUPS)) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]


def assert_no_version_twice(folder: str, history: list[dict]) -> None:
    """Two versions in a row never hold the same text, in the archive or in --history."""
    kept = [data for _, data in members(folder)]
    assert all(a != b for a, b in zip(kept, kept[1:])), "the archive keeps one version twice"
    assert len({v["version"] for v in history}) == len(history)
    assert all(v["summary"] != "no change" for v in history[1:]), history


@contextlib.contextmanager
def tmpfs(size: str):
    """A fresh tmpfs of ``size``, unmounted afterwards; skipped where mounting is not allowed."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    point = tempfile.mkdtemp(prefix="osa-tmpfs-", dir="/tmp")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", point],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        os.rmdir(point)
        pytest.skip(f"mount is not allowed here: {mounted.stderr.strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", point], check=True)
        os.rmdir(point)


def on_tmpfs(tmp_path, point: str) -> Deployment:
    """A deployment whose inventory folder ([filesystem] path) is ``point``, with one stored version."""
    dep = Deployment(str(tmp_path), ini_text=f"[inventory]\nbackend = filesystem\n[filesystem]\npath = {point}\n")
    dep.generate()
    return dep


def free_bytes(point: str) -> int:
    st = os.statvfs(point)
    return st.f_bavail * st.f_frsize


@pytest.mark.once
def test_a_full_disk_is_one_line_and_leaves_no_version_twice(tmp_path):
    with tmpfs("2m") as point:
        dep = on_tmpfs(tmp_path, point)
        inventory = os.path.join(point, INVENTORY)
        size = os.path.getsize(inventory)
        filler = os.path.join(point, "filler")
        failed = []
        # Less and less room: for the new archive, then for it and the record but not the new inventory too...
        for n, room in enumerate([size // 2, size * 2 - 4096, size * 2, size * 2 + 4096, size * 2 + 8192]):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(filler)
            with open(filler, "wb") as fh:
                fh.write(b"\0" * max(free_bytes(point) - room, 0))
            before = snapshot(inventory)
            change_config(dep, f"on a full disk {n}")
            result = run(dep)
            if result.returncode:
                assert_one_line_error(result, "cannot be written: no space is left for it on the file system of "
                                              f"{point}", "free some space there and run again",
                                      "the stored inventory was not changed")
                assert ".tmp" not in result.stderr and snapshot(inventory) == before
                failed.append(re.search(r" (\S+) cannot be written", result.stderr).group(1))
            assert not [n for n in os.listdir(point) if n.endswith(".tmp")]
            # Whatever a failed run wrote (the archive, the record), no version counts twice.
            assert_no_version_twice(point, json.loads(dep.manage("--history", "--format", "json").stdout))
        assert failed, "the disk never filled"
        os.unlink(filler)  # the advice: free some space
        change_config(dep, "space again")
        result = run(dep)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        assert dep.stored(point)["all"]["vars"]["failure_marker"] == "space again"
        history = json.loads(dep.manage("--history", "--format", "json").stdout)
        assert_no_version_twice(point, history)
        assert len(history) == 2 + 5 - len(failed) and history[-1]["current"]
        print(f"\nfull disk: the write of {', '.join(os.path.basename(f) for f in failed)} failed")


def test_a_read_only_file_system_is_one_line_and_remounting_helps(tmp_path):
    with tmpfs("4m") as point:
        dep = on_tmpfs(tmp_path, point)
        before = snapshot(os.path.join(point, INVENTORY))
        subprocess.run(["mount", "-o", "remount,ro", point], check=True)
        change_config(dep, "read-only")
        result = run(dep)
        assert_one_line_error(result, f"{os.path.join(point, BACKUPS)} cannot be written: {point} is on a "
                                      "read-only file system; remount it read-write")
        assert snapshot(os.path.join(point, INVENTORY)) == before
        subprocess.run(["mount", "-o", "remount,rw", point], check=True)  # the advice
        assert run(dep).returncode == 0
        assert dep.stored(point)["all"]["vars"]["failure_marker"] == "read-only"


@pytest.fixture
def operator():
    yield from users_fixture("osaro")


def test_a_folder_the_user_may_not_write_names_it_and_root_can(tmp_path, operator):
    user = operator[0]
    base = tempfile.mkdtemp(prefix="osa-readonly-", dir="/tmp")  # the user must reach it
    try:
        os.chmod(base, 0o755)
        dep = Deployment(base)
        os.chmod(dep.ini, 0o644)
        dep.generate()
        os.chmod(dep.config_dir, 0o555)  # a read-only inventory folder
        change_config(dep, "needs a write")
        before = snapshot(dep.inventory_path)
        as_them = subprocess.run(as_user(user, [sys.executable, INVENTORY_SCRIPT, "--config", dep.config_dir]),
                                 capture_output=True, text=True, timeout=120, env=clean_env({"OSA_INI": dep.ini}))
        assert_one_line_error(as_them, f"{os.path.join(dep.config_dir, BACKUPS)} cannot be written: user {user} may "
                                       f"not change the folder {dep.config_dir} (owner root, mode 0555); run this "
                                       "as root (or as the folder's owner)")
        assert ".tmp" not in as_them.stderr and snapshot(dep.inventory_path) == before
        assert run(dep).returncode == 0  # as root, as advised
        assert dep.stored()["all"]["vars"]["failure_marker"] == "needs a write"
    finally:
        os.chmod(os.path.join(base, "config"), 0o755)
        shutil.rmtree(base)


# -- an archive rewritten, then the inventory not replaced ---------------------------------------------

def _interrupted(monkeypatch) -> list[str]:
    """Make every replacement of the inventory itself fail as a full disk does, after all else was written."""
    failed: list[str] = []
    real = store_files.Folder.replace

    def replace(self, name, data, *args, **kwargs):
        if name in (INVENTORY, "inv.json"):
            failed.append(name)
            raise self.failure(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), name)
        return real(self, name, data, *args, **kwargs)
    monkeypatch.setattr(store_files.Folder, "replace", replace)
    return failed


def test_an_interrupted_write_never_archives_the_current_version_twice(tmp_path, monkeypatch):
    settings = Settings(path=None, backend="filesystem", sections={"filesystem": {"path": str(tmp_path)}},
                        environ={})
    backend = open_backend(settings, str(tmp_path))
    inventory = {"_meta": {"hostvars": {}}, "all": {"vars": {"n": 0}}}
    backend.write(inventory)
    for n in (1, 2):
        inventory["all"]["vars"]["n"] = n
        backend.write(inventory)
    current = open(os.path.join(tmp_path, INVENTORY), "rb").read()
    with monkeypatch.context() as patched:
        failed = _interrupted(patched)
        for n in (3, 4, 5):  # three writes in a row fail after rewriting the archive
            inventory["all"]["vars"]["n"] = n
            with pytest.raises(Exception, match="no space is left"):
                backend.write(inventory)
        assert failed == [INVENTORY] * 3
    kept = [data for _, data in members(str(tmp_path))]
    assert kept[-1] == current and kept.count(current) == 1
    rows = versions.history(backend)
    assert [r.summary for r in rows][1:] == ["all.vars changed"] * 2 and rows[-1].current
    assert len({r.version for r in rows}) == 3
    inventory["all"]["vars"]["n"] = 6
    backend.write(inventory)
    kept = [json.loads(data)["all"]["vars"]["n"] for _, data in members(str(tmp_path))]
    assert kept == [0, 1, 2]
    assert [r.summary for r in versions.history(backend)][1:] == ["all.vars changed"] * 3


def test_an_interrupted_save_of_a_file_of_another_name_keeps_one_backup(tmp_path, monkeypatch):
    path = str(tmp_path / "inv.json")
    inventory = {"_meta": {"hostvars": {}}, "all": {"vars": {"n": 0}}}
    with open(path, "w") as fh:
        json.dump(inventory, fh)
    run_manage = [sys.executable, MANAGE, "-f", path]
    from osa_inventory.manage.stores import open_file_backend
    backend = open_file_backend(path)
    with monkeypatch.context() as patched:
        _interrupted(patched)
        for n in (1, 2):
            inventory["all"]["vars"]["n"] = n
            with pytest.raises(Exception, match="no space is left"):
                backend.write(inventory)
    backups = [n for n in os.listdir(tmp_path) if n.endswith(".bak")]
    assert len(backups) == 1
    listed = subprocess.run(run_manage + ["--history", "--format", "json"], capture_output=True, text=True,
                            timeout=120, env=clean_env())
    rows = json.loads(listed.stdout)
    assert len(rows) == 1 and rows[0]["current"], rows
