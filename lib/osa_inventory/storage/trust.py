"""Which files may be believed: plugin code, and the osa.ini that names it.

The rules sshd's StrictModes applies to key files:

* A plugin folder, and every file or package folder imported from it, is
  owned by root or by the user running the script and is not writable by
  group or others. So is osa.ini: it names the plugin folders to run code
  from and the endpoints that receive the backends' passwords.
* Every ancestor of a plugin folder or of osa.ini up to ``/`` (of the path
  as written and of the path with symlinks resolved) follows the same rules,
  except that a folder writable by others is accepted with the sticky bit and
  a root owner, as ``/tmp`` is: then nobody else can rename what is inside.
* A plugin file is checked and read through one open descriptor, so whatever
  runs is exactly what was checked, whatever is renamed meanwhile. (osa.ini is
  checked by path: once every folder above it passed, nobody else can swap it.)

Each refusal is one line (:class:`UntrustedPlugin`, :class:`UntrustedSettings`)
naming the path and the ``chmod``/``chown`` that fixes it.
"""

from __future__ import annotations

import os
import pwd
import shlex
import stat
from typing import NamedTuple

from ..bounded import describe_kind
from ..errors import InventoryError, PluginError, SettingsError

MAX_SOURCE_BYTES = 16 * 1024 * 1024  # far beyond any plugin; stops a trusted-but-wrong huge file early


class UntrustedPlugin(PluginError):
    """A plugin file or folder that someone other than root or the current user could have changed."""


class UntrustedSettings(SettingsError):
    """An osa.ini that someone other than root or the current user could have changed."""


class _Subject(NamedTuple):
    """How refusals about one kind of path read (``{path}``: the path at fault, ``{top}``: the one asked for)."""

    error: type[InventoryError]
    itself: str
    ancestor: str
    unreadable: str


PLUGIN = _Subject(UntrustedPlugin, "refusing to load storage plugin from {path}: it",
                  "refusing to load storage plugins from {top}: its ancestor {path}",
                  "plugin folder {top}: {path} cannot be checked ({reason})")
SETTINGS = _Subject(UntrustedSettings, "refusing to read osa.ini {path}: it",
                    "refusing to read osa.ini {top}: its ancestor {path}",
                    "osa.ini {top}: {path} cannot be checked ({reason}); run as a user who may read it, "
                    "or point OSA_INI at another file")


def _trusted_owners() -> tuple[int, ...]:
    return (0, os.geteuid())


def _owner_name(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _chown_target() -> str:
    return "root" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


def owner_problem(st: os.stat_result) -> str:
    """Why a file or folder of status ``st`` is not trusted for its owner (``""``: root or the current user)."""
    if st.st_uid in _trusted_owners():
        return ""
    return f"is owned by {_owner_name(st.st_uid)}, not by root or the current user"


def owner_fix(path: str) -> str:
    """The advice for :func:`owner_problem`."""
    return f"review it, then run chown {_chown_target()} {shlex.quote(path)} (or remove it)"


def writable_problem(st: os.stat_result) -> str:
    """Why a file or folder of status ``st`` is not trusted for its mode (``""``: not writable by group or others)."""
    if not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return ""
    return f"is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"


def writable_fix(path: str) -> str:
    """The advice for :func:`writable_problem`."""
    return f"run chmod go-w {shlex.quote(path)}"


def problem(st: os.stat_result, path: str, ancestor: bool = False) -> str | None:
    """What breaks the rules above in ``path`` (its ``stat`` in ``st``), with the command that fixes it; else None.

    ``ancestor``: ``path`` is a folder above the one asked for, which may be
    world-writable with the sticky bit and a root owner.
    """
    owner = owner_problem(st)
    if owner:
        return f"{owner}; {owner_fix(path)}"
    writable = writable_problem(st)
    shared_like_tmp = ancestor and st.st_mode & stat.S_ISVTX and st.st_uid == 0
    if writable and not shared_like_tmp:
        sticky = " without the sticky bit and a root owner" if ancestor else ""
        return f"{writable}{sticky}; {writable_fix(path)}"
    return None


def check_stat(st: os.stat_result, path: str, ancestor_of: str | None = None, subject: _Subject = PLUGIN) -> None:
    """Refuse ``path`` (its ``stat`` in ``st``) unless it meets the rules above.

    ``ancestor_of`` names the plugin folder (or osa.ini) when ``path`` is one
    of its ancestors, which may be world-writable with the sticky bit and a root owner.
    """
    found = problem(st, path, ancestor=bool(ancestor_of))
    if found:
        what = subject.ancestor if ancestor_of else subject.itself
        raise subject.error(f"{what.format(path=path, top=ancestor_of)} {found}")


def check_path(path: str) -> None:
    """Check one existing file or folder by path (the rules above, without ancestors)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise UntrustedPlugin(f"{path}: cannot be checked ({exc.strerror})") from None
    check_stat(st, path)


def check_folder(folder: str) -> bool:
    """Check a plugin folder and all its ancestors; False if it does not exist (nothing to load there).

    A missing folder's existing ancestors are still checked: otherwise
    someone could create it later and fill it.
    """
    folder = os.path.abspath(folder)
    exists = _check_chains(folder, PLUGIN)
    if exists:
        try:
            st = os.stat(folder)
        except FileNotFoundError:  # removed since: missing, as the caller reports
            return False
        if not stat.S_ISDIR(st.st_mode):
            raise PluginError(
                f"plugin folder {folder} is {describe_kind(st.st_mode)}, not a folder; list folders holding "
                "plugin files in [inventory] plugin_paths or OSA_INVENTORY_PLUGIN_PATHS")
    return exists


def check_settings_file(path: str) -> bool:
    """Check osa.ini at ``path`` and all its ancestors; False if it does not exist.

    A missing file's existing ancestors are still checked: otherwise someone
    could create it later, naming their own plugin folder or endpoint.
    """
    return _check_chains(os.path.abspath(path), SETTINGS)


def _check_chains(path: str, subject: _Subject) -> bool:
    """:func:`_check_chain` along ``path`` as written and with links resolved; False if it is missing."""
    exists = True
    for chain in dict.fromkeys((path, os.path.realpath(path))):
        exists = _check_chain(chain, path, subject) and exists
    return exists


def _check_chain(path: str, top: str, subject: _Subject = PLUGIN) -> bool:
    """``/``, each ancestor, then ``path`` itself; False as soon as a component is missing."""
    parts = [p for p in path.split(os.sep) if p]
    prefixes = ["/"] + ["/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for prefix in prefixes:
        try:
            st = os.stat(prefix)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise subject.error(subject.unreadable.format(top=top, path=prefix, reason=exc.strerror)) from None
        check_stat(st, prefix, None if prefix == path else top, subject)
    return True


def read_source(folder: str, filename: str) -> bytes:
    """The bytes of ``folder/filename``, checked (folder and file) through the descriptors read.

    Only a regular file is read (a FIFO or device named ``*.py`` is refused
    without blocking).
    """
    path = os.path.join(folder, filename)
    dir_fd = fd = -1
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        check_stat(os.fstat(dir_fd), folder)
        fd = os.open(filename, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UntrustedPlugin(
                f"refusing to load storage plugin from {path}: it is not a regular file; "
                f"replace it with the plugin's source file")
        check_stat(st, path)
        if st.st_size > MAX_SOURCE_BYTES:
            raise PluginError(f"storage plugin {path} is {st.st_size} bytes, more than any plugin source; "
                              "check that it is the right file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise PluginError(f"storage plugin {path} cannot be read ({exc.strerror})") from None
    finally:
        for descriptor in (fd, dir_fd):
            if descriptor >= 0:
                os.close(descriptor)
