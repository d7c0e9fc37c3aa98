"""The trust rules in process: which plugin files, folders and osa.ini are believed, and how code is imported.

Fast, in-process tests of ``storage/trust.py`` and ``storage/plugin_import.py``
(``tox -e mutation-trust`` runs them against each mutant; the attacks
through the real script are in test_plugin_trust.py and
test_settings_trust.py). Owners other than the running user are given as
``stat`` results, or by pretending to be another user (``os.geteuid``), so
these run without root too.
"""

from __future__ import annotations

import fcntl
import os
import stat
import sys

import pytest
from plugin_fixtures import RECORDER, plugin_dir

from osa_inventory.errors import PluginError, SettingsError
from osa_inventory.storage import loader, plugin_import, trust
from osa_inventory.storage.settings import Settings
from osa_inventory.storage.trust import UntrustedPlugin, UntrustedSettings

NOBODY = 65534  # nobody, in every Debian and Ubuntu passwd
UNKNOWN_UID = 54321  # in no passwd


def fake_stat(mode: int, uid: int = 0) -> os.stat_result:
    """A ``stat`` result with this mode (file type included) and owner."""
    return os.stat_result((mode, 1, 1, 1, uid, 0, 0, 0, 0, 0))


@pytest.fixture
def as_nobody(monkeypatch):
    """Run the rules as user nobody: trusted owners are root and nobody."""
    monkeypatch.setattr(trust.os, "geteuid", lambda: NOBODY)


# -- the rule on one stat ------------------------------------------------------------------

@pytest.mark.parametrize("mode", [0o100644, 0o100600, 0o100755, 0o040755, 0o040700, 0o041755])
def test_owned_by_root_and_writable_by_nobody_else_passes(mode):
    assert trust.problem(fake_stat(mode), "/p") is None
    trust.check_stat(fake_stat(mode), "/p")


def test_an_owner_other_than_root_or_the_current_user_is_named_with_the_chown(as_nobody):
    assert trust.problem(fake_stat(0o100644, NOBODY), "/p") is None  # the current user's own file
    assert trust.problem(fake_stat(0o100644, UNKNOWN_UID), "/etc/x y") == (
        f"is owned by uid {UNKNOWN_UID}, not by root or the current user; "
        "review it, then run chown nobody '/etc/x y' (or remove it)")


def test_an_ordinary_user_is_told_to_take_the_file_themselves(monkeypatch):
    monkeypatch.setattr(trust.os, "geteuid", lambda: 1)  # daemon, in every Debian and Ubuntu passwd
    assert trust.problem(fake_stat(0o100600, UNKNOWN_UID), "/p").endswith("run chown daemon /p (or remove it)")


def test_as_root_the_chown_gives_the_file_to_root(monkeypatch):
    monkeypatch.setattr(trust.os, "geteuid", lambda: 0)
    assert trust.problem(fake_stat(0o100600, NOBODY), "/p") == (
        f"is owned by nobody (uid {NOBODY}), not by root or the current user; "
        "review it, then run chown root /p (or remove it)")


@pytest.mark.parametrize("mode, shown", [(0o100664, "0664"), (0o100646, "0646"), (0o100620, "0620"),
                                         (0o100602, "0602"), (0o101666, "1666"), (0o040777, "0777")])
def test_group_or_other_write_is_named_with_the_chmod(mode, shown):
    assert trust.problem(fake_stat(mode), "/a b") == (
        f"is writable by group or others (mode {shown}); run chmod go-w '/a b'")


@pytest.mark.parametrize("mode, uid, refused", [
    (0o041777, 0, None),  # like /tmp
    (0o040777, 0, "mode 0777"),
    (0o041775, 0, None),
    (0o041777, NOBODY, "mode 1777"),  # sticky, but the owner could rename what is inside
])
def test_an_ancestor_may_be_shared_like_tmp_only(as_nobody, mode, uid, refused):
    found = trust.problem(fake_stat(mode, uid), "/shared", ancestor=True)
    if refused is None:
        assert found is None
    else:
        assert found == (f"is writable by group or others ({refused}) without the sticky bit and a root owner; "
                         "run chmod go-w /shared")
    # The folder or file asked for itself never gets that allowance.
    assert trust.problem(fake_stat(mode, uid), "/shared") is not None


def test_refusals_name_what_was_asked_for(as_nobody):
    bad = fake_stat(0o100666)
    with pytest.raises(UntrustedPlugin) as exc:
        trust.check_stat(bad, "/plugins/p.py")
    assert str(exc.value) == ("refusing to load storage plugin from /plugins/p.py: it is writable by group or "
                              "others (mode 0666); run chmod go-w /plugins/p.py")
    with pytest.raises(UntrustedPlugin) as exc:
        trust.check_stat(fake_stat(0o040777), "/srv", ancestor_of="/srv/plugins")
    assert str(exc.value) == ("refusing to load storage plugins from /srv/plugins: its ancestor /srv is writable "
                              "by group or others (mode 0777) without the sticky bit and a root owner; "
                              "run chmod go-w /srv")
    with pytest.raises(UntrustedSettings) as exc:
        trust.check_stat(bad, "/etc/osa.ini", subject=trust.SETTINGS)
    assert isinstance(exc.value, SettingsError)
    assert str(exc.value) == ("refusing to read osa.ini /etc/osa.ini: it is writable by group or others "
                              "(mode 0666); run chmod go-w /etc/osa.ini")
    with pytest.raises(UntrustedSettings) as exc:
        trust.check_stat(fake_stat(0o040755, UNKNOWN_UID), "/etc", ancestor_of="/etc/osa.ini",
                         subject=trust.SETTINGS)
    assert str(exc.value).startswith(f"refusing to read osa.ini /etc/osa.ini: its ancestor /etc is owned by "
                                     f"uid {UNKNOWN_UID}, not by root")


# -- paths, folders and their ancestors ----------------------------------------------------

def _safe(tmp_path) -> str:
    """A folder below tmp_path that passes the rules (pytest's folders are the running user's, 0700)."""
    base = tmp_path / "safe"
    base.mkdir()
    os.chmod(base, 0o755)
    return str(base)


def test_check_path_reads_the_mode_of_the_path_given(tmp_path):
    base = _safe(tmp_path)
    path = os.path.join(base, "p.py")
    open(path, "w").close()
    os.chmod(path, 0o644)
    trust.check_path(path)
    os.chmod(path, 0o664)
    with pytest.raises(UntrustedPlugin) as exc:
        trust.check_path(path)
    assert str(exc.value) == (f"refusing to load storage plugin from {path}: it is writable by group or others "
                              f"(mode 0664); run chmod go-w {path}")
    with pytest.raises(UntrustedPlugin) as exc:
        trust.check_path(os.path.join(base, "gone.py"))
    assert str(exc.value) == f"{base}/gone.py: cannot be checked (No such file or directory)"


def test_a_folder_and_every_ancestor_are_checked(tmp_path):
    base = _safe(tmp_path)
    deep = os.path.join(base, "a", "b", "plugins")
    os.makedirs(deep)
    for folder in (os.path.join(base, "a"), os.path.join(base, "a", "b"), deep):
        os.chmod(folder, 0o755)
    assert trust.check_folder(deep) is True
    for bad in (os.path.join(base, "a"), os.path.join(base, "a", "b")):
        os.chmod(bad, 0o775)
        with pytest.raises(UntrustedPlugin) as exc:
            trust.check_folder(deep)
        assert str(exc.value) == (f"refusing to load storage plugins from {deep}: its ancestor {bad} is writable "
                                  f"by group or others (mode 0775) without the sticky bit and a root owner; "
                                  f"run chmod go-w {bad}")
        os.chmod(bad, 0o755)
    os.chmod(deep, 0o1777)  # the folder asked for gets no sticky allowance
    with pytest.raises(UntrustedPlugin, match=f"from {deep}: it is writable .* \\(mode 1777\\); run"):
        trust.check_folder(deep)


def test_a_relative_folder_is_checked_from_the_working_directory(tmp_path, monkeypatch):
    base = _safe(tmp_path)
    os.mkdir(os.path.join(base, "plugins"), 0o775)
    os.chmod(os.path.join(base, "plugins"), 0o775)
    monkeypatch.chdir(base)
    with pytest.raises(UntrustedPlugin, match=f"from {base}/plugins: it is writable"):
        trust.check_folder("plugins")


def test_the_first_folder_below_the_root_is_checked_too(tmp_path, monkeypatch):
    base = _safe(tmp_path)
    top = "/" + base.split("/")[1]  # /tmp, say: pretend it lost its sticky bit
    real_stat = os.stat
    monkeypatch.setattr(trust.os, "stat", lambda p, *a, **k: fake_stat(0o040777) if p == top else real_stat(p, *a, **k))
    with pytest.raises(UntrustedPlugin, match=f"its ancestor {top} is writable by group or others \\(mode 0777\\)"):
        trust.check_folder(base)


def test_a_folder_removed_between_the_checks_is_missing(tmp_path, monkeypatch):
    folder = os.path.join(_safe(tmp_path), "plugins")
    os.mkdir(folder, 0o755)
    real_stat = os.stat
    seen = []

    def vanishing(path, *args, **kwargs):
        seen.append(path)
        if path == folder and seen.count(folder) > 1:  # the chain saw it; the kind check finds it gone
            raise FileNotFoundError(2, "No such file or directory")
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(trust.os, "stat", vanishing)
    assert trust.check_folder(folder) is False


def test_a_missing_folder_is_false_after_its_ancestors_passed(tmp_path):
    base = _safe(tmp_path)
    assert trust.check_folder(os.path.join(base, "not", "there")) is False
    os.chmod(base, 0o777)
    with pytest.raises(UntrustedPlugin, match=f"its ancestor {base} is writable"):
        trust.check_folder(os.path.join(base, "not", "there"))


def test_a_symlinked_folder_is_checked_along_both_paths(tmp_path):
    base = _safe(tmp_path)
    real_parent = os.path.join(base, "real")
    os.mkdir(real_parent, 0o755)
    real = os.path.join(real_parent, "plugins")
    os.mkdir(real, 0o755)
    link = os.path.join(base, "link")
    os.symlink(real, link)
    assert trust.check_folder(link) is True
    os.chmod(real_parent, 0o777)
    with pytest.raises(UntrustedPlugin) as exc:
        trust.check_folder(link)
    assert f"from {link}: its ancestor {real_parent} is writable" in str(exc.value)
    os.chmod(real_parent, 0o755)
    os.rename(real, real + ".gone")  # a dangling link: missing, as far as the search goes
    assert trust.check_folder(link) is False


@pytest.mark.parametrize("make, kind", [(lambda p: open(p, "w").close(), "a regular file"),
                                        (lambda p: os.mkfifo(p, 0o644), "a FIFO (named pipe)")])
def test_a_plugin_folder_that_is_no_folder_is_named_as_what_it_is(tmp_path, make, kind):
    path = os.path.join(_safe(tmp_path), "plugins")
    make(path)
    os.chmod(path, 0o644)
    with pytest.raises(PluginError) as exc:
        trust.check_folder(path)
    assert str(exc.value) == (f"plugin folder {path} is {kind}, not a folder; list folders holding plugin files in "
                              "[inventory] plugin_paths or OSA_INVENTORY_PLUGIN_PATHS")


def test_a_component_that_cannot_be_checked_is_one_line(tmp_path, monkeypatch):
    base = _safe(tmp_path)
    real_stat = os.stat

    def denied(path, *args, **kwargs):
        if path == base:
            raise PermissionError(13, "Permission denied")
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(trust.os, "stat", denied)
    with pytest.raises(UntrustedPlugin) as exc:
        trust.check_folder(os.path.join(base, "plugins"))
    assert str(exc.value) == f"plugin folder {base}/plugins: {base} cannot be checked (Permission denied)"
    with pytest.raises(UntrustedSettings) as exc:
        trust.check_settings_file(os.path.join(base, "osa.ini"))
    assert str(exc.value) == (f"osa.ini {base}/osa.ini: {base} cannot be checked (Permission denied); run as a "
                              "user who may read it, or point OSA_INI at another file")


def test_osa_ini_and_its_folders_are_checked(tmp_path):
    base = _safe(tmp_path)
    ini = os.path.join(base, "osa.ini")
    assert trust.check_settings_file(ini) is False  # missing, in a safe place
    open(ini, "w").close()
    os.chmod(ini, 0o600)
    assert trust.check_settings_file(ini) is True
    os.chmod(ini, 0o620)
    with pytest.raises(UntrustedSettings) as exc:
        trust.check_settings_file(ini)
    assert str(exc.value) == (f"refusing to read osa.ini {ini}: it is writable by group or others (mode 0620); "
                              f"run chmod go-w {ini}")
    os.chmod(ini, 0o644)
    os.chmod(base, 0o757)
    with pytest.raises(UntrustedSettings, match=f"osa.ini {ini}: its ancestor {base} is writable"):
        trust.check_settings_file(ini)


def test_a_symlinked_osa_ini_is_checked_where_it_leads(tmp_path):
    base = _safe(tmp_path)
    elsewhere = os.path.join(base, "elsewhere")
    os.mkdir(elsewhere, 0o755)
    target = os.path.join(elsewhere, "osa.ini")
    open(target, "w").close()
    os.chmod(target, 0o644)
    link = os.path.join(base, "osa.ini")
    os.symlink(target, link)
    assert trust.check_settings_file(link) is True
    os.chmod(elsewhere, 0o775)
    with pytest.raises(UntrustedSettings, match=f"osa.ini {link}: its ancestor {elsewhere} is writable"):
        trust.check_settings_file(link)


# -- reading a plugin source ---------------------------------------------------------------

def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_source_is_read_whole_through_its_checked_descriptor(tmp_path):
    folder = plugin_dir(tmp_path, {})
    source = b"# " + b"x" * (3 << 20) + b"\n"  # several reads' worth
    with open(os.path.join(folder, "big.py"), "wb") as fh:
        fh.write(source)
    before = _open_fds()
    assert trust.read_source(folder, "big.py") == source
    assert _open_fds() == before, "a descriptor was left open"


def test_a_source_up_to_the_size_limit_is_read_one_byte_more_is_refused(tmp_path, monkeypatch):
    folder = plugin_dir(tmp_path, {"p.py": "x = 1\n"})
    monkeypatch.setattr(trust, "MAX_SOURCE_BYTES", 6)
    assert trust.read_source(folder, "p.py") == b"x = 1\n"
    monkeypatch.setattr(trust, "MAX_SOURCE_BYTES", 5)
    before = _open_fds()
    with pytest.raises(PluginError) as exc:
        trust.read_source(folder, "p.py")
    assert str(exc.value) == (f"storage plugin {folder}/p.py is 6 bytes, more than any plugin source; "
                              "check that it is the right file")
    assert _open_fds() == before


@pytest.mark.parametrize("what", ["file", "folder"])
def test_reading_a_source_checks_both_file_and_folder(tmp_path, what):
    folder = plugin_dir(tmp_path, {"p.py": "x = 1\n"})
    path = os.path.join(folder, "p.py")
    os.chmod(path if what == "file" else folder, 0o757 if what == "folder" else 0o646)
    before = _open_fds()
    with pytest.raises(UntrustedPlugin) as exc:
        trust.read_source(folder, "p.py")
    shown = path if what == "file" else folder
    assert str(exc.value).startswith(f"refusing to load storage plugin from {shown}: it is writable")
    assert _open_fds() == before


def test_a_folder_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = os.path.join(plugin_dir(tmp_path, {}), "not-a-folder")
    os.mkfifo(fifo, 0o644)
    with pytest.raises(PluginError) as exc:
        trust.read_source(fifo, "p.py")
    assert str(exc.value) == f"storage plugin {fifo}/p.py cannot be read (Not a directory)"


def test_the_source_descriptor_is_never_inherited(tmp_path, monkeypatch):
    folder = plugin_dir(tmp_path, {"p.py": "x = 1\n"})
    real_read = os.read
    inherited = []

    def read(fd, n):  # while the file is open, a child started by another thread must not get it
        inherited.append(not fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
        return real_read(fd, n)

    monkeypatch.setattr(trust.os, "read", read)
    assert trust.read_source(folder, "p.py") == b"x = 1\n"
    assert inherited and not any(inherited)


def test_descriptors_are_closed_even_when_they_are_number_0(tmp_path):
    folder = plugin_dir(tmp_path, {"p.py": "x = 1\n"})
    saved = os.dup(0)
    os.close(0)  # the folder gets descriptor 0, as in a process started with stdin closed
    try:
        assert trust.read_source(folder, "p.py") == b"x = 1\n"
        with pytest.raises(OSError):
            os.fstat(0)
    finally:
        os.dup2(saved, 0)
        os.close(saved)


def test_reading_a_missing_or_odd_source_is_one_line(tmp_path):
    folder = plugin_dir(tmp_path, {})
    with pytest.raises(PluginError) as exc:
        trust.read_source(folder, "gone.py")
    assert str(exc.value) == f"storage plugin {folder}/gone.py cannot be read (No such file or directory)"
    os.mkfifo(os.path.join(folder, "pipe.py"), 0o644)
    with pytest.raises(UntrustedPlugin) as exc:
        trust.read_source(folder, "pipe.py")
    assert str(exc.value) == (f"refusing to load storage plugin from {folder}/pipe.py: it is not a regular file; "
                              "replace it with the plugin's source file")


# -- importing from plugin folders ----------------------------------------------------------

def _load(folders: list[str], name: str):
    return loader.load_plugin_module(name, Settings(path=None, plugin_paths=folders))


def test_a_deployer_plugin_is_compiled_from_its_checked_source(tmp_path):
    folder = plugin_dir(tmp_path, {"mod_plugin.py": RECORDER + "WHERE = __file__\n"})
    module = _load([folder], "mod_plugin")
    path = os.path.join(folder, "mod_plugin.py")
    assert module.WHERE == module.__file__ == path
    assert isinstance(module.__spec__.loader, plugin_import._CheckedSourceLoader)
    assert module.__spec__.submodule_search_locations is None  # a module, not a package
    assert not os.path.exists(os.path.join(folder, "__pycache__"))


def test_a_plugin_is_compiled_without_this_programs_future_flags(tmp_path):
    # plugin_import.py itself uses "from __future__ import annotations"; a plugin must not inherit it.
    folder = plugin_dir(tmp_path, {"annotated_plugin.py": RECORDER + "def typed(x: int) -> None:\n    pass\n"})
    assert _load([folder], "annotated_plugin").typed.__annotations__ == {"x": int, "return": None}


def test_a_package_plugin_and_its_submodules_come_from_checked_source(tmp_path):
    folder = plugin_dir(tmp_path, {"pkg_plugin/__init__.py": "from .impl import Storage\nfrom . import deeper\n",
                                   "pkg_plugin/impl.py": RECORDER,
                                   "pkg_plugin/deeper/__init__.py": "from .leaf import LEAF\n",
                                   "pkg_plugin/deeper/leaf.py": "LEAF = __name__\n"})
    module = _load([folder], "pkg_plugin")
    package = os.path.join(folder, "pkg_plugin")
    assert module.__file__ == os.path.join(package, "__init__.py")
    assert module.__path__ == [package]
    assert module.deeper.LEAF.endswith(".pkg_plugin.deeper.leaf")
    assert isinstance(module.deeper.__spec__.loader, plugin_import._CheckedSourceLoader)
    assert isinstance(sys.modules[module.deeper.LEAF].__spec__.loader, plugin_import._CheckedSourceLoader)


def test_a_package_wins_over_a_module_of_the_same_name(tmp_path):
    folder = plugin_dir(tmp_path, {"both_plugin.py": "WHICH = 'module'\n" + RECORDER,
                                   "both_plugin/__init__.py": "WHICH = 'package'\n" + RECORDER})
    assert _load([folder], "both_plugin").WHICH == "package"


def test_an_untrusted_helper_is_refused_when_imported(tmp_path):
    folder = plugin_dir(tmp_path, {"helped_plugin.py": "from . import helper_mod\n" + RECORDER,
                                   "helper_mod.py": "X = 1\n"})
    os.chmod(os.path.join(folder, "helper_mod.py"), 0o666)
    with pytest.raises(UntrustedPlugin, match="helper_mod.py: it is writable by group or others"):
        _load([folder], "helped_plugin")


def test_a_symlinked_plugin_file_is_checked_where_it_leads(tmp_path):
    elsewhere = plugin_dir(tmp_path, {"linked_plugin.py": RECORDER}, "elsewhere")
    folder = plugin_dir(tmp_path, {})
    os.symlink(os.path.join(elsewhere, "linked_plugin.py"), os.path.join(folder, "linked_plugin.py"))
    assert _load([folder], "linked_plugin").Storage
    os.chmod(elsewhere, 0o777)
    fresh = plugin_dir(tmp_path, {}, "fresh")  # a new search path: a new import, not the module imported above
    with pytest.raises(UntrustedPlugin, match=f"from {elsewhere}: it is writable"):
        _load([folder, fresh], "linked_plugin")


def test_only_sources_are_found_and_the_search_stops_at_ours(tmp_path):
    finder = plugin_import.PluginFinder()
    finder.register("ns_test")
    folder = plugin_dir(tmp_path, {"src_mod.py": "", "pkg/__init__.py": ""})
    with open(os.path.join(folder, "compiled.pyc"), "wb") as fh:
        fh.write(b"\0" * 16)
    assert finder.find_spec("json", None) is None  # not below a registered namespace
    assert finder.find_spec("ns_testx.src_mod", [folder]) is None
    spec = finder.find_spec("ns_test.src_mod", [folder])
    assert spec.origin == os.path.join(folder, "src_mod.py") and spec.has_location
    assert finder.find_spec("ns_test.sub.src_mod", [folder]).name == "ns_test.sub.src_mod"
    package = finder.find_spec("ns_test.pkg", [str(tmp_path / "none"), folder])
    assert package.submodule_search_locations == [os.path.join(folder, "pkg")]
    with pytest.raises(ImportError) as exc:
        finder.find_spec("ns_test.compiled", [folder, str(tmp_path)])
    assert not isinstance(exc.value, ModuleNotFoundError)
    assert exc.value.name == "ns_test.compiled"
    assert str(exc.value) == (f"no compiled.py or compiled/__init__.py in {folder}, {tmp_path} "
                              "(only .py sources are imported from plugin folders)")


def test_program_folders_are_imported_the_ordinary_way(tmp_path):
    program = plugin_dir(tmp_path, {"own.py": "", "ownpkg/__init__.py": ""}, "program")
    beside = plugin_dir(tmp_path, {"own.py": ""}, "program2")  # a name that merely starts like it
    finder = plugin_import.PluginFinder()
    finder.register("ns_prog", program_dirs=[program])
    finder.register("ns_other", program_dirs=[str(tmp_path / "other")])
    ordinary = finder.find_spec("ns_prog.own", [program])
    assert not isinstance(ordinary.loader, plugin_import._CheckedSourceLoader)
    assert ordinary.origin == os.path.join(program, "own.py")
    package = finder.find_spec("ns_prog.ownpkg", [program])
    assert package.name == "ns_prog.ownpkg" and package.origin == os.path.join(program, "ownpkg", "__init__.py")
    assert package.submodule_search_locations == [os.path.join(program, "ownpkg")]
    nested = finder.find_spec("ns_prog.own", [os.path.join(program, "ownpkg")] + [program])
    assert nested.origin == os.path.join(program, "own.py")  # the sub-folder of a program folder is ours too
    assert isinstance(finder.find_spec("ns_prog.own", [beside]).loader, plugin_import._CheckedSourceLoader)
    with pytest.raises(ImportError):
        finder.find_spec("ns_prog.absent", [program])


def test_the_finder_is_installed_once_and_first(monkeypatch):
    monkeypatch.setattr(sys, "meta_path", [object()] + [f for f in sys.meta_path if f is not plugin_import.FINDER])
    assert plugin_import.install() is plugin_import.FINDER
    assert plugin_import.install() is plugin_import.FINDER
    assert sys.meta_path[0] is plugin_import.FINDER
    assert sys.meta_path.count(plugin_import.FINDER) == 1


def test_the_built_in_folder_is_imported_with_its_bytecode_cache():
    module = loader.load_plugin_module("filesystem", Settings(path=None))
    assert module.__file__ == os.path.join(loader.BUILTIN_DIR, "filesystem.py")
    assert not isinstance(module.__spec__.loader, plugin_import._CheckedSourceLoader)
    assert stat.S_ISREG(os.stat(module.__file__).st_mode)
