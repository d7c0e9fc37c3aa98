"""What the file-based stores share, in process: access options, crash-safe writes, locks, the stored shape.

Fast tests of ``storage/file_access.py``, ``storage/safe_files.py`` and
``inventory/shape.py`` (``tox -e mutation-trust`` runs them against each
mutant; the same rules through the real scripts are in
test_filesystem_access.py, test_filesystem_integrity.py and
test_stored_shape.py). Other users and groups are pretended (``os.geteuid``,
``os.fchown`` refusing) so these run without root too.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading

import pytest

from osa_inventory.errors import InventoryError, StorageError
from osa_inventory.storage import file_access, safe_files
from osa_inventory.storage.file_access import FileAccess, group_id, parse_mode
from osa_inventory.storage.safe_files import Reentrant, flock_wait
from osa_inventory.inventory.shape import check_inventory, hostvar_problem, string_list

NOGROUP = 65534  # nogroup, in every Debian and Ubuntu group file
UNKNOWN_ID = 54321


# -- [filesystem] mode and group ------------------------------------------------------------

@pytest.mark.parametrize("text, mode", [("0640", 0o640), ("640", 0o640), (" 0600\n", 0o600), ("0400", 0o400),
                                        ("0444", 0o444), ("0644", 0o644), ("", None), ("  ", None)])
def test_modes_a_store_may_use(text, mode):
    assert parse_mode(text, "[filesystem] mode") == mode


@pytest.mark.parametrize("text, refusal", [
    ("0o640", "is not an octal permission mode of three digits (setuid, setgid and sticky bits are not allowed); "
              "set it to e.g. 0640 (owner read-write, group read)"),
    ("4640", "is not an octal permission mode"), ("00640", "is not an octal permission mode"),
    ("64", "is not an octal permission mode"), ("0680", "is not an octal permission mode"),
    ("0740", "makes the inventory executable, and it is data; set it to e.g. 0640"),
    ("0650", "makes the inventory executable"), ("0641", "makes the inventory executable"),
    ("0642", "lets every user rewrite the inventory, which root's Ansible runs obey, so runs would refuse it; "
             "set it to e.g. 0640 (the group reads, only the owner writes)"),
    ("0660", "lets the group rewrite the inventory"), ("0664", "lets the group rewrite the inventory"),
    ("0620", "lets the group rewrite the inventory"),
    ("0240", "keeps the owner from reading the inventory; set it to e.g. 0640"),
])
def test_modes_that_could_not_do_what_they_say_are_refused(text, refusal):
    with pytest.raises(StorageError) as exc:
        parse_mode(text, "[x] mode")
    assert str(exc.value).startswith(f"[x] mode = {text.strip()!r} {refusal}"), str(exc.value)


def test_groups_by_name_or_number():
    assert group_id("", "g") is None and group_id(" ", "g") is None
    assert group_id("root", "g") == 0 and group_id(" root ", "g") == 0
    assert group_id("0", "g") == 0 and group_id(str(NOGROUP), "g") == NOGROUP
    for unknown in (str(UNKNOWN_ID), "no such group"):
        with pytest.raises(StorageError) as exc:
            group_id(unknown, "[fs] group")
        quoted = "'no such group'" if " " in unknown else unknown
        assert str(exc.value) == (f"[fs] group = {unknown!r} names no group on this machine; create it "
                                  f"(groupadd {quoted}) or set [fs] group to an existing group")


def test_access_from_options_and_what_it_gives():
    unset = FileAccess.from_options("", "")
    assert unset == FileAccess() and not unset.configured
    assert unset.mode_for(0o600) == 0o600 and unset.owner_for((5, 6)) == (5, 6) and unset.owner_for(None) is None
    grouped = FileAccess.from_options(" root ", "")
    assert grouped.configured and grouped.group == "root" and grouped.gid == 0 and grouped.mode is None
    assert grouped.owner_for((5, 6)) == (5, 0) and grouped.owner_for(None) == (os.geteuid(), 0)
    moded = FileAccess.from_options("", "0640")
    assert moded.configured and moded.mode_for(0o600) == 0o640 and moded.owner_for((5, 6)) == (5, 6)
    with pytest.raises(StorageError, match=r"^\[filesystem\] group = 'nosuchgroup' names no group"):
        FileAccess.from_options("nosuchgroup", "")
    with pytest.raises(StorageError, match=r"^\[filesystem\] mode = '0777' makes"):
        FileAccess.from_options("", "0777")


def test_apply_gives_an_existing_file_the_group_and_mode(tmp_path):
    path = tmp_path / "f"
    path.write_text("")
    os.chmod(path, 0o600)
    fd = os.open(path, os.O_RDONLY)
    try:
        FileAccess().apply(fd)
        assert os.stat(path).st_mode & 0o777 == 0o600
        FileAccess(mode=0o640).apply(fd)
        assert os.stat(path).st_mode & 0o777 == 0o640
        gid = os.getegid()
        FileAccess(gid=gid, group=str(gid)).apply(fd)
    finally:
        os.close(fd)
    st = os.stat(path)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (os.geteuid(), gid, 0o640), "the owner must stay"


@pytest.fixture
def as_nobody(monkeypatch):
    monkeypatch.setattr(file_access.os, "geteuid", lambda: 65534)
    monkeypatch.setattr(file_access.os, "getegid", lambda: 65534)
    monkeypatch.setattr(file_access.os, "getgroups", lambda: [100])


def test_a_writer_outside_the_group_is_refused_before_writing(as_nobody):
    FileAccess().check_can_give_group()
    FileAccess(gid=65534, group="nogroup").check_can_give_group()   # its own group
    FileAccess(gid=100, group="users").check_can_give_group()       # a supplementary group
    with pytest.raises(StorageError) as exc:
        FileAccess(gid=0, group="root").check_can_give_group()
    assert str(exc.value) == ("[filesystem] group = 'root': user nobody is not in group root, so the files this run "
                              "writes could not be given to it; add the user to it (usermod -a -G root nobody, "
                              "then log in again) or run as root")


def test_root_may_give_any_group_and_an_unknown_user_is_named_by_number(monkeypatch):
    monkeypatch.setattr(file_access.os, "geteuid", lambda: 0)
    monkeypatch.setattr(file_access.os, "getegid", lambda: 0)
    monkeypatch.setattr(file_access.os, "getgroups", lambda: [])
    FileAccess(gid=100, group="users").check_can_give_group()
    monkeypatch.setattr(file_access.os, "geteuid", lambda: UNKNOWN_ID)
    with pytest.raises(StorageError, match=f"user {UNKNOWN_ID} is not in group users"):
        FileAccess(gid=100, group="users").check_can_give_group()


# -- crash-safe writes ----------------------------------------------------------------------

def test_flock_wait_holds_an_exclusive_lock_and_releases_it(tmp_path):
    lock = str(tmp_path / "lock")
    os.close(os.open(lock, os.O_WRONLY | os.O_CREAT, 0o644))
    with flock_wait(lock, 1, "hint"):
        fd = os.open(lock, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
    finally:
        os.close(fd)


def test_flock_wait_gives_up_after_its_timeout_with_the_hint(tmp_path):
    folder = str(tmp_path)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(StorageError) as exc:
            with flock_wait(folder, 0.05, "wait, or stop the other run"):
                pass
        assert str(exc.value) == f"another run has held the lock on {folder} for over 0 s; wait, or stop the other run"
    finally:
        os.close(fd)


def test_flock_wait_waits_for_the_holder(tmp_path):
    lock = str(tmp_path / "lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    threading.Timer(0.1, lambda: os.close(fd)).start()
    with flock_wait(lock, 30, "hint"):
        pass


def test_flock_wait_never_creates_what_it_locks(tmp_path):
    with pytest.raises(FileNotFoundError):
        with flock_wait(str(tmp_path / "absent"), 1, "hint"):
            pass


def test_reentrant_takes_the_lock_once_per_owner():
    taken = []

    class Lock:
        def __enter__(self):
            taken.append("take")

        def __exit__(self, *exc):
            taken.append("release")

    lock = Reentrant(Lock)
    assert lock.depth == 0
    with lock():
        assert lock.depth == 1
        with lock():
            assert lock.depth == 2
        assert lock.depth == 1
    assert lock.depth == 0 and taken == ["take", "release"]
    with pytest.raises(KeyError):
        with lock():
            with lock():
                raise KeyError("x")
    assert lock.depth == 0 and taken == ["take", "release"] * 2


# -- the stored shape -----------------------------------------------------------------------

GOOD = {"_meta": {"hostvars": {"h1": {"container_networks": {"m": {"address": "1"}}, "properties": {}}, "h2": {}}},
        "all": {"vars": {}}, "g": {"hosts": ["h1"], "children": ["k"], "vars": {"a": 1}}, "k": {}}


def test_a_well_formed_inventory_passes():
    check_inventory(GOOD, "here")
    assert string_list([]) and string_list(["a"]) and not string_list(["a", 1]) and not string_list("ab")


WRONG = [([], "list"), (3, "int"), (1.5, "float"), (True, "bool"), ({"a": "b"}, "dict")]


# Every variable the generator or inventory-manage reads back as a name or an address: a wrong type
# there made runs crash (physical_host as a list) or carried nonsense into the next inventory.
@pytest.mark.parametrize("key, kind", [
    ("physical_host", "a name"), ("container_name", "a name"), ("component", "a name"),
    ("physical_host_group", "a name"), ("container_types", "a name"), ("container_tech", "a name"),
    ("ansible_host", "an address"), ("management_address", "an address")])
def test_variables_read_back_must_be_strings_or_null(key, kind):
    assert hostvar_problem({key: "x"}) is None and hostvar_problem({key: None}) is None and hostvar_problem({}) is None
    for value, type_name in WRONG:
        assert hostvar_problem({"other": value, key: value}) == f"{key} is a {type_name}, not {kind} (a string)"
        with pytest.raises(InventoryError) as exc:
            check_inventory({"_meta": {"hostvars": {"h1": {}, "h2": {key: value}}}}, "here")
        assert str(exc.value) == f"here: _meta.hostvars.h2.{key} is a {type_name}, not {kind} (a string)"


@pytest.mark.parametrize("hv, problem", [
    ({"container_networks": None, "properties": None}, None),
    ({"container_networks": {}, "properties": {}}, None),
    ({"container_networks": {"m": {}, "s": {"address": None}}}, None),
    ({"container_networks": {"m": {"address": "10.0.0.1"}, "s": {"address": 7}}},
     "container_networks.s.address is a int, not an address (a string)"),
    ({"container_networks": {"m": {"address": ["10.0.0.1"]}}},
     "container_networks.m.address is a list, not an address (a string)"),
    ({"container_networks": {"m": {}, "s": "10.0.0.1"}}, "container_networks must map network names to mappings"),
    ({"container_networks": "m"}, "container_networks must map network names to mappings"),
    ({"properties": []}, "properties is a list, not a mapping"),
    ({"properties": "is_metal"}, "properties is a str, not a mapping"),
    # The first problem found is named, in the order networks, properties, names, addresses.
    ({"ansible_host": 1, "component": 1, "properties": 1, "container_networks": 1},
     "container_networks must map network names to mappings"),
    ({"ansible_host": 1, "component": 1, "properties": 1}, "properties is a int, not a mapping"),
    ({"ansible_host": 1, "component": 1}, "component is a int, not a name (a string)"),
])
def test_networks_and_properties_of_an_entry(hv, problem):
    assert hostvar_problem(hv) == problem



@pytest.mark.parametrize("data, message", [
    ([], "here holds a JSON list, not an object; it is not an inventory written by OpenStack-Ansible, "
         "by this project or by --export"),
    (None, "here holds a JSON null, not an object"),
    ({"all": {}}, "here has no _meta.hostvars mapping; it is not an inventory"),
    ({"_meta": []}, "here has no _meta.hostvars mapping"),
    ({"_meta": {"hostvars": []}}, "here has no _meta.hostvars mapping"),
    ({"_meta": {"hostvars": {"h": []}}}, "here: _meta.hostvars.h is a list, not a mapping of variables"),
    ({"_meta": {"hostvars": {"h": {"container_networks": []}}}},
     "here: _meta.hostvars.h.container_networks must map network names to mappings"),
    ({"_meta": {"hostvars": {"h": {"container_networks": {"m": "x"}}}}},
     "here: _meta.hostvars.h.container_networks must map network names to mappings"),
    ({"_meta": {"hostvars": {"h": {"properties": "x"}}}}, "here: _meta.hostvars.h.properties is a str, not a mapping"),
    ({"_meta": {"hostvars": {}}, "g": ["h"]},
     "here: group g is a list, not a mapping with 'hosts' (and 'children'); it is not an inventory"),
    ({"_meta": {"hostvars": {}}, "g": {"hosts": "h"}}, "here: g.hosts must be a list of names"),
    ({"_meta": {"hostvars": {}}, "g": {"children": [1]}}, "here: g.children must be a list of names"),
    ({"_meta": {"hostvars": {}}, "g": {"vars": []}}, "here: g.vars is a list, not a mapping of variables"),
    ({"_meta": {"hostvars": {}}, "g": {"vars": None}}, "here: g.vars is a null, not a mapping of variables"),
])
def test_each_defect_is_one_line_naming_where_and_what(data, message):
    with pytest.raises(InventoryError) as exc:
        check_inventory(data, "here")
    assert str(exc.value).startswith(message), str(exc.value)
    if message.endswith("mappings"):
        assert str(exc.value) == message
