"""osa_inventory.storage.store_files: every store file named relative to its folder, never through a planted link.

In process, with real files, links, FIFOs and hard links: each operation
leaves a link's target untouched (content, inode, modification time), refuses
what the trust rules refuse in one line naming the file and the fix, and
follows the one link it may (locate) only when the link, its target and the
target's folder pass the rules.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess

import pytest
from test_manage_support import snapshot

from osa_inventory.errors import StorageError
from osa_inventory.storage.file_access import FileAccess
from osa_inventory.storage.store_files import DamagedFile, Folder, UntrustedFile, locate, problem

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving files to other owners needs root")


def identity(path) -> tuple:
    """What would show any change of a file: its bytes, inode, mtime and mode."""
    return (*snapshot(path), stat.S_IMODE(os.stat(path).st_mode))


@pytest.fixture
def victim(tmp_path):
    """A file nobody may change through the store: root's, in a folder of its own."""
    folder = tmp_path / "etc"
    folder.mkdir()
    path = folder / "shadow"
    path.write_bytes(b"root:$6$secret-hash:19000::::::\n")
    os.chmod(path, 0o600)
    return str(path)


@pytest.fixture
def store(tmp_path):
    folder = tmp_path / "store"
    folder.mkdir()
    with Folder.open(str(folder)) as opened:
        yield opened


def test_replace_puts_a_file_in_place_of_a_link_and_never_writes_through_it(store, victim):
    os.symlink(victim, store.join("backup_openstack_inventory.tar"))
    before = identity(victim)
    store.replace("backup_openstack_inventory.tar", b"new archive", 0o640, mtime=1_700_000_000)
    assert identity(victim) == before
    placed = os.lstat(store.join("backup_openstack_inventory.tar"))
    assert stat.S_ISREG(placed.st_mode) and stat.S_IMODE(placed.st_mode) == 0o640
    assert placed.st_mtime == 1_700_000_000
    assert sorted(os.listdir(store.path)) == ["backup_openstack_inventory.tar"]  # no temp file left


def test_read_refuses_a_link_a_fifo_and_a_giant_without_blocking(store, victim):
    os.symlink(victim, store.join("link"))
    os.mkfifo(store.join("pipe"))
    with open(store.join("giant"), "wb") as fh:
        fh.truncate(8 * 1024 ** 3)  # sparse
    with pytest.raises(UntrustedFile) as link:
        store.read("link", 1024)
    assert str(link.value) == (f"{store.join('link')} is a symbolic link to {victim}, which is not followed here; "
                               f"remove it (rm {store.join('link')}), or put the file itself there")
    with pytest.raises(UntrustedFile, match="is a FIFO \\(named pipe\\), not a regular file"):
        store.read("pipe", 1024)
    with pytest.raises(DamagedFile, match="giant: is larger than 1 MiB"):
        store.read("giant", 1024 ** 2)
    assert store.read("missing", 10) is None
    (open(store.join("ok"), "wb")).write(b"{}")
    data, st = store.read("ok", 10)
    assert data == b"{}" and stat.S_ISREG(st.st_mode)


def test_a_second_hard_link_is_refused_for_reading_appending_and_giving(store, victim):
    os.link(victim, store.join("inventory.log"))  # what protected_hardlinks=0 lets anyone do
    before = identity(victim)
    found = problem(os.lstat(store.join("inventory.log")), store.join("inventory.log"))
    assert found and found.what == "has 2 hard links, so a change to it would reach a file under another name"
    with pytest.raises(UntrustedFile, match="has 2 hard links"):
        store.open_append("inventory.log")
    with pytest.raises(UntrustedFile, match="has 2 hard links"):
        store.read("inventory.log", 1024)
    store.give("inventory.log", FileAccess.from_options(str(os.getegid()), "0644"))
    assert identity(victim) == before
    # The advice, as printed, gives the file a name of its own; then it may be used.
    subprocess.run(["/bin/sh", "-c", found.fix[found.fix.index("(") + 1:-1]], check=True)
    assert problem(os.lstat(store.join("inventory.log")), store.join("inventory.log")) is None
    assert identity(victim) == before


def test_append_never_follows_a_link(store, victim):
    os.symlink(victim, store.join("inventory.log"))
    with pytest.raises(OSError) as refused:
        store.open_append("inventory.log")
    assert refused.value.errno == errno.ELOOP
    assert os.readlink(store.join("inventory.log")) == victim and identity(victim)[0].startswith(b"root:")


def test_set_aside_moves_a_link_itself_and_give_leaves_it(store, victim):
    os.symlink(victim, store.join("backup_openstack_inventory.tar"))
    before = identity(victim)
    aside = store.set_aside("backup_openstack_inventory.tar", "untrusted", "20260101_000000")
    assert aside == "backup_openstack_inventory.tar.untrusted-20260101_000000"
    assert os.readlink(store.join(aside)) == victim
    store.give(aside, FileAccess.from_options(str(os.getegid()), "0644"), within=0o644)
    assert identity(victim) == before


def test_give_changes_a_checked_file_through_its_descriptor(store):
    path = store.join("openstack_inventory.json.corrupt-x")
    with open(path, "wb") as fh:
        fh.write(b"{damaged")
    os.chmod(path, 0o644)
    store.give("openstack_inventory.json.corrupt-x", FileAccess.from_options(str(os.getegid()), ""), within=0o600)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("errno_, words", [
    (errno.ENOSPC, "no space is left for it on the file system of"),
    (errno.EROFS, "is on a read-only file system; remount it read-write"),
    (errno.EACCES, "may not change the folder"),
])
def test_a_failed_write_names_the_real_file_and_its_folder(store, errno_, words):
    line = str(store.failure(OSError(errno_, os.strerror(errno_), store.join(".x.1234.tmp")), "inventory.json"))
    assert line.startswith(f"{store.join('inventory.json')} cannot be written: ") and words in line
    assert ".tmp" not in line and store.path in line and line.endswith("the stored inventory was not changed")


# -- the one link that may be followed ------------------------------------------------------------

def test_a_trusted_link_into_a_trusted_folder_is_followed(store, tmp_path):
    share = tmp_path / "share"
    share.mkdir(mode=0o755)
    (share / "prod.json").write_text("{}")
    os.symlink(str(share / "prod.json"), store.join("openstack_inventory.json"))
    with locate(store, "openstack_inventory.json") as place:
        assert place.folder is not store and place.name == "prod.json"
        assert place.shown() == f"{store.join('openstack_inventory.json')} (a symbolic link to {share / 'prod.json'})"
        assert place.folder.read(place.name, 10)[0] == b"{}"
    # A relative link, into the store's own folder: the same folder, opened once.
    os.unlink(store.join("openstack_inventory.json"))
    (open(store.join("prod.json"), "w")).write("[]")
    os.symlink("prod.json", store.join("openstack_inventory.json"))
    with locate(store, "openstack_inventory.json") as place:
        assert place.folder is store and place.name == "prod.json"


@pytest.mark.parametrize("bad, words", [
    ("writable folder", "which is writable by group or others (mode 0777)"),
    ("link to a link", "which is itself a symbolic link; point the link at the file itself"),
    ("link to a folder", "which is not a regular file; point the link at a file, or remove it"),
    ("dangling", "which cannot be followed (No such file or directory); restore that file"),
    ("writable target", "is writable by group or others (mode 0666); run chmod go-w"),
])
def test_a_link_is_refused_unless_its_target_and_the_folder_pass(store, tmp_path, bad, words):
    share = tmp_path / "share"
    share.mkdir(mode=0o755)
    target = share / "prod.json"
    target.write_text("{}")
    if bad == "writable folder":
        os.chmod(share, 0o777)
    elif bad == "link to a link":
        os.symlink(str(target), share / "again.json")
        target = share / "again.json"
    elif bad == "link to a folder":
        target = share
    elif bad == "dangling":
        target = share / "gone.json"
    else:
        os.chmod(target, 0o666)
    os.symlink(str(target), store.join("openstack_inventory.json"))
    with pytest.raises(StorageError) as refused:
        locate(store, "openstack_inventory.json")
    line = str(refused.value)
    assert line.startswith(f"{store.join('openstack_inventory.json')} is a symbolic link to {target}") and words in line
    assert "\n" not in line


@as_root
def test_a_link_someone_else_made_is_never_followed(store, victim):
    link = store.join("openstack_inventory.json")
    os.symlink(victim, link)
    os.lchown(link, 4321, 4321)
    with pytest.raises(UntrustedFile) as refused:
        locate(store, "openstack_inventory.json")
    assert "the link itself is owned by uid 4321, not by root or the current user" in str(refused.value)
    assert str(refused.value).endswith(f"remove it (rm {link}); to keep the inventory elsewhere, make the link as root")
