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
import re
import stat
import subprocess

import pytest
from test_manage_support import snapshot

from osa_inventory.errors import StorageError
from osa_inventory.storage import store_files, trust
from osa_inventory.storage.file_access import FileAccess
from osa_inventory.storage.store_files import DamagedFile, Folder, Problem, UntrustedFile, locate, problem

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving files to other owners needs root")
NOGROUP = 65534  # nogroup, in every Debian and Ubuntu group file
STRANGER = 4321  # a uid and gid no account has
UNCHANGED = "the stored inventory was not changed"


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


def test_give_leaves_a_file_it_may_not_change_as_found(store, monkeypatch):
    # Only root or the file's owner may change it: anyone else would fail half way, so nothing is tried.
    path = store.join("openstack_inventory.json.corrupt-x")
    open(path, "wb").close()
    os.chmod(path, 0o644)
    owner = os.stat(path).st_uid
    monkeypatch.setattr(store_files.os, "geteuid", lambda: 1 if owner == 0 else owner + 1)
    store.give("openstack_inventory.json.corrupt-x", FileAccess.from_options("", "0600"), within=0o600)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


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
    assert str(refused.value) == (f"{link} is a symbolic link to {victim}, and the link itself is owned by uid 4321, "
                                  "not by root or the current user; a link is followed only when root or the current "
                                  f"user made it; remove it (rm {link}); to keep the inventory elsewhere, make the "
                                  "link as root")


# -- which files are used (the rules, on a file's status alone) -----------------------------------

def status(mode: int, uid: int | None = None, nlink: int = 1) -> os.stat_result:
    """A file status as os.lstat gives it, for the rules alone (no such file needs to exist)."""
    return os.stat_result((mode, 1, 1, nlink, os.geteuid() if uid is None else uid, 0, 0, 0, 0, 0))


def test_the_rules_name_the_file_what_is_wrong_and_the_fix():
    path = "/srv/store/openstack_inventory.json"
    assert problem(status(stat.S_IFREG | 0o640), path) is None
    assert problem(status(stat.S_IFREG | 0o600, uid=0), path) is None
    assert problem(status(stat.S_IFLNK | 0o777), path) == Problem(
        path, "is a symbolic link, which is not followed here", f"remove it (rm {path}), or put the file itself there")
    assert problem(status(stat.S_IFLNK | 0o777), path, "/etc/shadow").what == (
        "is a symbolic link to /etc/shadow, which is not followed here")
    assert problem(status(stat.S_IFIFO | 0o600), path) == Problem(
        path, "is a FIFO (named pipe), not a regular file", "remove it, or put the file itself there")
    assert problem(status(stat.S_IFREG | 0o600, uid=STRANGER), path) == Problem(
        path, f"is owned by uid {STRANGER}, not by root or the current user", trust.owner_fix(path))
    assert problem(status(stat.S_IFREG | 0o620), path) == Problem(
        path, "is writable by group or others (mode 0620)", trust.writable_fix(path))
    assert problem(status(stat.S_IFREG | 0o600, nlink=3), path) == Problem(
        path, "has 3 hard links, so a change to it would reach a file under another name",
        f"give it a name of its own (cp -p {path} {path}.own && mv {path}.own {path})")


def test_a_refusal_carries_its_problem(store, victim):
    os.symlink(victim, store.join("link"))
    with pytest.raises(UntrustedFile) as refused:
        store.read("link", 1024)
    assert refused.value.problem == problem(os.lstat(store.join("link")), store.join("link"), victim)
    os.link(victim, store.join("twice"))
    with pytest.raises(UntrustedFile) as appending:
        store.open_append("twice")
    assert appending.value.problem == problem(os.lstat(store.join("twice")), store.join("twice"))
    assert str(appending.value) == str(appending.value.problem)


# -- opening, looking, listing ---------------------------------------------------------------------

def test_a_folder_that_cannot_be_opened_is_one_line(tmp_path):
    with pytest.raises(StorageError) as missing:
        Folder.open(str(tmp_path / "gone"))
    assert str(missing.value) == f"folder {tmp_path / 'gone'} does not exist; create it or name an existing one"
    (tmp_path / "file").write_text("")
    with pytest.raises(StorageError) as file:
        Folder.open(str(tmp_path / "file"))
    assert str(file.value) == f"{tmp_path / 'file'} is not a folder; name a folder"
    os.symlink("loop", tmp_path / "loop")  # a link left in the folder's place: O_NOFOLLOW|O_DIRECTORY refuses it
    with pytest.raises(StorageError) as loop:
        Folder.open(str(tmp_path / "loop"))
    assert str(loop.value) == f"{tmp_path / 'loop'} is not a folder; name a folder"
    long_name = str(tmp_path / ("n" * 300))
    with pytest.raises(StorageError) as unopened:
        Folder.open(long_name)
    assert str(unopened.value) == f"folder {long_name} cannot be opened (File name too long)"


def test_closing_twice_closes_once_and_descriptor_0_is_closed_too(tmp_path):
    folder = Folder.open(str(tmp_path))
    folder.close()
    assert folder.fd < 0
    folder.close()  # nothing left to close: no other descriptor is touched
    assert folder.fd < 0
    # A run started with stdin closed gets descriptor 0 for its first open: it is closed like any other.
    saved = os.dup(0)
    try:
        os.dup2(os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY), 0)
        Folder(0, str(tmp_path)).close()
        with pytest.raises(OSError) as closed:
            os.fstat(0)
        assert closed.value.errno == errno.EBADF
    finally:
        os.dup2(saved, 0)
        os.close(saved)


def test_looking_and_listing_use_the_folder(store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # names are never looked up in the working directory
    (tmp_path / "elsewhere").write_text("")
    open(store.join("a"), "w").close()
    os.symlink("a", store.join("b"))
    assert sorted(store.names()) == ["a", "b"]
    assert stat.S_ISLNK(store.lstat("b").st_mode) and store.lstat("elsewhere") is None
    assert store.link_text("b") == "a" and store.link_text("a") == "" and store.link_text("none") == ""
    with pytest.raises(StorageError) as long_name:
        store.lstat("n" * 300)
    assert str(long_name.value) == f"{store.join('n' * 300)}: cannot be examined (File name too long)"

    def unlistable(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(store_files.os, "listdir", unlistable)
    with pytest.raises(StorageError) as listing:
        store.names()
    assert str(listing.value) == f"folder {store.path} cannot be listed (Input/output error)"


# -- reading ---------------------------------------------------------------------------------------

def test_read_takes_a_file_of_exactly_the_limit_and_names_small_limits_in_bytes(store):
    with open(store.join("f"), "wb") as fh:
        fh.write(b"x" * 10)
    assert store.read("f", 10)[0] == b"x" * 10
    with pytest.raises(DamagedFile) as big:
        store.read("f", 9)
    assert str(big.value) == f"{store.join('f')}: is larger than 9 bytes, more than any such file holds; it is damaged"


def test_what_is_planted_after_the_check_is_judged_by_the_open(store, victim, monkeypatch):
    # The race: the name passes the check, then is swapped before the open. The open never follows a
    # link, and the file it got is judged again.
    monkeypatch.setattr(store, "check", lambda name: None)
    os.symlink(victim, store.join("linked"))
    with pytest.raises(StorageError) as linked:
        store.read("linked", 1024)
    assert str(linked.value) == (f"{store.join('linked')}: is a symbolic link, which is not followed here; "
                                 "replace it with the file itself")
    os.link(victim, store.join("twice"))
    with pytest.raises(UntrustedFile) as twice:
        store.read("twice", 1024)
    assert twice.value.problem == problem(os.lstat(victim), store.join("twice"))
    assert str(twice.value) == str(twice.value.problem)


# -- replacing -------------------------------------------------------------------------------------

TEMP = re.compile(r"\.inv\.json\.[0-9a-f]+\.tmp")


def test_replace_writes_a_private_temp_file_beside_the_name(store, monkeypatch):
    seen = []
    real = store_files._write_all

    def watched(fd, data):
        seen.append((stat.S_IMODE(os.fstat(fd).st_mode), sorted(os.listdir(store.path))))
        real(fd, data)

    monkeypatch.setattr(store_files, "_write_all", watched)
    store.replace("inv.json", b"old", 0o640)
    (mode, names), = seen
    assert mode == 0o600, "the data is written before anyone else may read it"
    assert len(names) == 1 and TEMP.fullmatch(names[0]), "a rename is atomic only within one folder"
    assert os.listdir(store.path) == ["inv.json"]


def test_replace_takes_every_name_that_leaves_room_for_its_temp_name(store):
    # The temp name adds 14 characters (".", ".", 8 hex digits, ".tmp") to the file's, within NAME_MAX (255).
    longest = "n" * (255 - 14)
    store.replace(longest, b"x", 0o600)
    assert os.listdir(store.path) == [longest]
    with pytest.raises(StorageError) as too_long:
        store.replace(longest + "n", b"x", 0o600)
    assert str(too_long.value) == f"{store.join(longest + 'n')} cannot be written (File name too long); {UNCHANGED}"
    assert os.listdir(store.path) == [longest]


def test_replace_writes_everything_through_short_writes(store, monkeypatch):
    real = os.write
    monkeypatch.setattr(store_files.os, "write", lambda fd, data: real(fd, bytes(data[:3])))
    store.replace("inv.json", b"0123456789", 0o600)
    monkeypatch.undo()
    with open(store.join("inv.json"), "rb") as fh:
        assert fh.read() == b"0123456789"


@pytest.mark.parametrize("step", ["write", "fchmod", "fsync", "replace"])
def test_a_failed_replace_leaves_the_old_file_and_no_temp_file(store, monkeypatch, step):
    store.replace("inv.json", b"old", 0o600)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_files.os, step, full)
    with pytest.raises(StorageError) as failed:
        store.replace("inv.json", b"new", 0o600)
    monkeypatch.undo()
    assert str(failed.value) == (f"{store.join('inv.json')} cannot be written: no space is left for it on the file "
                                 f"system of {store.path} (No space left on device); free some space there and run "
                                 f"again; {UNCHANGED}")
    assert os.listdir(store.path) == ["inv.json"]
    with open(store.join("inv.json"), "rb") as fh:
        assert fh.read() == b"old"


def test_an_interrupted_replace_leaves_no_temp_file_and_stays_interrupted(store, monkeypatch):
    def interrupted(fd, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(store_files, "_write_all", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.replace("inv.json", b"new", 0o600)
    assert os.listdir(store.path) == []


def test_a_failed_rename_reports_itself_when_the_temp_file_is_gone(store, monkeypatch):
    def lost(src, dst, **fds):  # someone removed the temp file, then the rename failed
        os.unlink(src, dir_fd=fds["src_dir_fd"])
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(store_files.os, "replace", lost)
    with pytest.raises(StorageError) as failed:
        store.replace("inv.json", b"x", 0o600)
    assert str(failed.value) == f"{store.join('inv.json')} cannot be written (Input/output error); {UNCHANGED}"
    assert os.listdir(store.path) == []


def test_a_planted_temp_name_is_never_written_through(store, victim, monkeypatch):
    monkeypatch.setattr(store_files.secrets, "token_hex", lambda n: "cafe0123")
    os.symlink(victim, store.join(".inv.json.cafe0123.tmp"))
    before = identity(victim)
    with pytest.raises(StorageError) as refused:
        store.replace("inv.json", b"x", 0o600)
    assert str(refused.value) == f"{store.join('inv.json')} cannot be written (File exists); {UNCHANGED}"
    assert identity(victim) == before and store.lstat("inv.json") is None


def test_replace_keeps_the_owner_it_may_and_drops_group_bits_it_cannot_keep(store, monkeypatch):
    me = (os.geteuid(), os.getegid())
    calls = []
    real = os.fchown

    def recorded(fd, uid, gid):
        calls.append((uid, gid))
        real(fd, uid, gid)

    monkeypatch.setattr(store_files.os, "fchown", recorded)
    store.replace("inv.json", b"1", 0o640, owner=me)
    assert calls == [] and stat.S_IMODE(os.stat(store.join("inv.json")).st_mode) == 0o640, "already its owner"

    def refuse(fd, uid, gid):
        calls.append((uid, gid))
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(store_files.os, "fchown", refuse)
    store.replace("inv.json", b"2", 0o640, owner=(STRANGER, STRANGER))
    assert calls == [(STRANGER, STRANGER), (-1, STRANGER)]
    assert stat.S_IMODE(os.stat(store.join("inv.json")).st_mode) == 0o600, "the group bits go with the group"
    store.replace("inv.json", b"3", 0o755, owner=(STRANGER, STRANGER))
    assert stat.S_IMODE(os.stat(store.join("inv.json")).st_mode) == 0o705, "only the group bits go"
    calls.clear()
    monkeypatch.setattr(store_files.os, "fchown",
                        lambda fd, uid, gid: calls.append((uid, gid)) if uid == -1 else refuse(fd, uid, gid))
    store.replace("inv.json", b"4", 0o640, owner=(STRANGER, me[1] + 1))
    assert calls == [(STRANGER, me[1] + 1), (-1, me[1] + 1)], "the group is kept when the owner cannot be"
    assert stat.S_IMODE(os.stat(store.join("inv.json")).st_mode) == 0o640
    with open(store.join("inv.json"), "rb") as fh:
        assert fh.read() == b"4"


@as_root
def test_root_gives_a_written_file_its_owner(store):
    store.replace("inv.json", b"1", 0o640, owner=(NOGROUP, NOGROUP))
    st = os.stat(store.join("inv.json"))
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (NOGROUP, NOGROUP, 0o640)


# -- removing --------------------------------------------------------------------------------------

def test_remove_deletes_the_entry_itself_and_says_why_it_cannot(store, victim, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.symlink(victim, store.join("link"))
    (tmp_path / "link").write_text("not the store's")
    store.remove("link")
    store.remove("link")  # already gone: fine
    assert os.listdir(store.path) == [] and (tmp_path / "link").read_text() == "not the store's"
    assert identity(victim)[0].startswith(b"root:")
    os.mkdir(store.join("folder"))
    with pytest.raises(StorageError) as refused:
        store.remove("folder")
    assert str(refused.value) == f"{store.join('folder')} cannot be removed (Is a directory); {UNCHANGED}"


def test_remove_temp_files_removes_only_that_files_temp_files(store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in (".inv.json.cafe0123.tmp", ".inv.json..tmp", "inv.json", ".other.json.cafe0123.tmp",
                 ".inv.json.cafe0123.keep", "inv.json.tmp"):
        open(store.join(name), "w").close()
    os.mkdir(store.join(".inv.json.folder.tmp"))  # cannot be unlinked: left, and the rest still go
    open(tmp_path / ".inv.json.cafe0123.tmp", "w").close()
    store.remove_temp_files("inv.json")
    assert sorted(os.listdir(store.path)) == [".inv.json.cafe0123.keep", ".inv.json.folder.tmp",
                                              ".other.json.cafe0123.tmp", "inv.json", "inv.json.tmp"]
    assert os.path.exists(tmp_path / ".inv.json.cafe0123.tmp")


# -- setting aside ---------------------------------------------------------------------------------

def test_set_aside_moves_the_folders_entry_never_one_in_the_working_directory(store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inv.json").write_bytes(b"not the store's")
    (tmp_path / "inv.json.corrupt-T").write_bytes(b"not the store's either")
    with open(store.join("inv.json"), "wb") as fh:
        fh.write(b"damaged")
    assert store.set_aside("inv.json", "corrupt", "T") == "inv.json.corrupt-T"
    assert os.listdir(store.path) == ["inv.json.corrupt-T"]
    with open(store.join("inv.json.corrupt-T"), "rb") as fh:
        assert fh.read() == b"damaged"
    assert os.stat(store.join("inv.json.corrupt-T")).st_nlink == 1
    assert (tmp_path / "inv.json").read_bytes() == b"not the store's"
    assert (tmp_path / "inv.json.corrupt-T").read_bytes() == b"not the store's either"
    assert os.stat(tmp_path / "inv.json").st_nlink == 1


def no_links(*args, **kwargs):
    raise OSError(errno.EPERM, "Operation not permitted")


def test_set_aside_without_hard_links_claims_a_free_name(store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inv.json").write_bytes(b"not the store's")
    with open(store.join("inv.json.corrupt-T"), "wb") as fh:
        fh.write(b"first")
    with open(store.join("inv.json"), "wb") as fh:
        fh.write(b"second")
    monkeypatch.setattr(store_files.os, "link", no_links)
    assert store.set_aside("inv.json", "corrupt", "T") == "inv.json.corrupt-T-2"
    monkeypatch.undo()
    assert sorted(os.listdir(store.path)) == ["inv.json.corrupt-T", "inv.json.corrupt-T-2"]
    for name, content in (("inv.json.corrupt-T", b"first"), ("inv.json.corrupt-T-2", b"second")):
        with open(store.join(name), "rb") as fh:
            assert fh.read() == content
    assert (tmp_path / "inv.json").read_bytes() == b"not the store's"
    assert sorted(os.listdir(tmp_path)) == ["inv.json", "store"]


@pytest.mark.parametrize("step", ["rename", "unlink"])
def test_a_set_aside_that_fails_is_one_line(store, monkeypatch, step):
    open(store.join("inv.json"), "w").close()
    if step == "rename":
        monkeypatch.setattr(store_files.os, "link", no_links)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(store_files.os, step, read_only)
    with pytest.raises(StorageError) as failed:
        store.set_aside("inv.json", "corrupt", "T")
    assert str(failed.value) == (f"{store.join('inv.json')} cannot be moved aside: {store.path} is on a read-only file "
                                 "system; remount it read-write (or run where the store is writable) and run again; "
                                 f"{UNCHANGED}")


def test_set_aside_gives_up_in_one_line_when_every_name_is_taken(store, monkeypatch):
    open(store.join("inv.json"), "w").close()
    tried = []

    def taken(src, dst, **kwargs):
        tried.append(dst)
        raise FileExistsError(errno.EEXIST, "File exists")

    monkeypatch.setattr(store_files.os, "link", taken)
    with pytest.raises(StorageError) as failed:
        store.set_aside("inv.json", "corrupt", "T")
    assert str(failed.value) == (f"cannot move {store.join('inv.json')} aside: inv.json.corrupt-T and "
                                 "inv.json.corrupt-T-2 to inv.json.corrupt-T-9999 all exist in "
                                 f"{store.path}; remove old ones")
    assert len(tried) == 9999 and tried[-1] == "inv.json.corrupt-T-9999"
    assert os.listdir(store.path) == ["inv.json"]


# -- giving, appending -----------------------------------------------------------------------------

def test_give_and_append_never_wait_on_a_fifo(store):
    os.mkfifo(store.join("inventory.log"), 0o600)
    store.give("inventory.log", FileAccess.from_options("", "0640"))  # returns at once: nobody writes it
    assert stat.S_IMODE(os.stat(store.join("inventory.log")).st_mode) == 0o600
    with pytest.raises(OSError) as refused:  # no reader: refused at once instead of waiting for one
        store.open_append("inventory.log")
    assert refused.value.errno == errno.ENXIO


def test_open_append_creates_a_private_file_and_appends_to_it(store):
    fd = store.open_append("inventory.log")
    try:
        os.write(fd, b"one\n")
    finally:
        os.close(fd)
    assert stat.S_IMODE(os.stat(store.join("inventory.log")).st_mode) == 0o600
    fd = store.open_append("inventory.log")
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, b"two\n")
    finally:
        os.close(fd)
    with open(store.join("inventory.log"), "rb") as fh:
        assert fh.read() == b"one\ntwo\n"


# -- failures --------------------------------------------------------------------------------------

def test_a_refused_change_names_the_folders_owner_and_mode_when_it_can(store):
    os.chmod(store.path, 0o750)
    denied = OSError(errno.EACCES, "Permission denied")
    assert str(store.failure(denied, "inv.json", "removed")) == (
        f"{store.join('inv.json')} cannot be removed: user {store_files._user()} may not change the folder "
        f"{store.path} (owner {store_files._owner(os.geteuid())}, mode 0750); run this as root (or as the folder's "
        f"owner); {UNCHANGED}")
    assert str(store.failure(OSError(errno.EIO, "Input/output error"), "inv.json")) == (
        f"{store.join('inv.json')} cannot be written (Input/output error); {UNCHANGED}")
    gone = Folder(-1, store.path)  # its folder cannot be examined any more: the line says what it can
    assert str(gone.failure(denied, "inv.json")) == (
        f"{store.join('inv.json')} cannot be written: user {store_files._user()} may not change the folder "
        f"{store.path}; run this as root (or as the folder's owner); {UNCHANGED}")


# -- locating --------------------------------------------------------------------------------------

def open_descriptors() -> set:
    return set(os.listdir("/proc/self/fd"))


def test_a_plain_file_or_no_file_is_its_own_place(store):
    for present in (False, True):
        if present:
            open(store.join("openstack_inventory.json"), "w").close()
        with locate(store, "openstack_inventory.json") as place:
            assert (place.folder, place.name, place.link, place.target) == (store, "openstack_inventory.json", "", "")
            assert place.shown() == place.path == store.join("openstack_inventory.json")
        assert store.names() == (["openstack_inventory.json"] if present else []), "the store stays open"
    with pytest.raises(StorageError) as long_name:
        locate(store, "n" * 300)
    assert str(long_name.value) == f"{store.join('n' * 300)}: cannot be examined (File name too long)"


def test_a_followed_link_closes_its_folder_and_never_the_store(store, tmp_path):
    share = tmp_path / "share"
    share.mkdir(mode=0o755)
    (share / "prod.json").write_text("{}")
    os.symlink(str(share / "prod.json"), store.join("openstack_inventory.json"))
    before = open_descriptors()
    with locate(store, "openstack_inventory.json") as place:
        assert place.folder is not store and len(open_descriptors() - before) == 1
    assert open_descriptors() == before
    (open(store.join("own.json"), "w")).write("{}")
    os.unlink(store.join("openstack_inventory.json"))
    os.symlink("own.json", store.join("openstack_inventory.json"))
    with locate(store, "openstack_inventory.json") as place:
        assert place.folder is store and open_descriptors() == before
    assert open_descriptors() == before and "own.json" in store.names()


@pytest.mark.parametrize("where", ["elsewhere", "in the store"])
def test_a_refused_link_leaves_no_descriptor_and_the_store_open(store, tmp_path, where):
    folder = tmp_path / "share" if where == "elsewhere" else tmp_path / "store"
    folder.mkdir(mode=0o755, exist_ok=True)
    (folder / "prod.json").write_text("{}")
    os.chmod(folder / "prod.json", 0o666)
    os.symlink(str(folder / "prod.json"), store.join("openstack_inventory.json"))
    before = open_descriptors()
    with pytest.raises(UntrustedFile) as refused:
        locate(store, "openstack_inventory.json")
    target = str(folder / "prod.json")
    assert str(refused.value) == (f"{store.join('openstack_inventory.json')} is a symbolic link to {target}, and "
                                  f"{target} is writable by group or others (mode 0666); run chmod go-w {target}")
    assert open_descriptors() == before and "openstack_inventory.json" in store.names()


@pytest.mark.parametrize("text", ["share/", "share/.", "share/..", ".."])
def test_a_link_to_a_folders_name_is_not_a_file(store, tmp_path, text):
    share = tmp_path / "store" / "share"
    share.mkdir()
    os.chmod(share, 0o777)  # refused for what the link names, before any folder is opened or judged
    os.symlink(text, store.join("openstack_inventory.json"))
    with pytest.raises(UntrustedFile) as refused:
        locate(store, "openstack_inventory.json")
    assert str(refused.value) == (f"{store.join('openstack_inventory.json')} is a symbolic link to {text}, which is "
                                  "not a regular file; point the link at a file, or remove it")


def test_a_link_into_a_missing_folder_cannot_be_followed(store, tmp_path):
    os.symlink(str(tmp_path / "gone" / "prod.json"), store.join("openstack_inventory.json"))
    with pytest.raises(UntrustedFile) as refused:
        locate(store, "openstack_inventory.json")
    assert str(refused.value) == (f"{store.join('openstack_inventory.json')} is a symbolic link to "
                                  f"{tmp_path / 'gone' / 'prod.json'}, which cannot be followed (No such file or "
                                  "directory); restore that file, or remove the link to start anew")


def test_a_link_into_a_writable_folder_names_the_folders_fix(store, tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    (share / "prod.json").write_text("{}")
    os.chmod(share, 0o777)
    os.symlink(str(share / "prod.json"), store.join("openstack_inventory.json"))
    with pytest.raises(UntrustedFile) as refused:
        locate(store, "openstack_inventory.json")
    assert str(refused.value) == (f"{store.join('openstack_inventory.json')} is a symbolic link to "
                                  f"{share / 'prod.json'}, in the folder {share}, which is writable by group or "
                                  "others (mode 0777); a link is followed only into a folder nobody else can change; "
                                  f"run chmod go-w {share}")


@as_root
def test_a_link_into_someone_elses_folder_names_the_folders_fix(store, tmp_path):
    share = tmp_path / "share"
    share.mkdir(mode=0o755)
    (share / "prod.json").write_text("{}")
    os.chown(share, STRANGER, STRANGER)
    os.symlink(str(share / "prod.json"), store.join("openstack_inventory.json"))
    with pytest.raises(UntrustedFile) as refused:
        locate(store, "openstack_inventory.json")
    assert str(refused.value) == (f"{store.join('openstack_inventory.json')} is a symbolic link to "
                                  f"{share / 'prod.json'}, in the folder {share}, which is owned by uid {STRANGER}, "
                                  "not by root or the current user; a link is followed only into a folder nobody "
                                  f"else can change; {trust.owner_fix(str(share))}")
