"""Files of a store folder, named relative to the open folder and never reached through a planted link.

The inventory script runs as root on every Ansible run, in folders that an
operators' group may be able to write. Everything the file-based stores
create, replace, append to, set aside or read there goes through a
:class:`Folder`: the folder is opened once, every file is named relative to
that descriptor and opened without following a symbolic link, and every
check is made on the descriptor that is then read or changed, so nothing
swapped in between two steps is written through or read as ours.

* **Which files are used** (:func:`problem`): the rules plugin files meet
  (:mod:`.trust`): a regular file, owned by root or the current user, not
  writable by group or others; and with one name only, since a second hard
  link would carry a change to a file elsewhere.
* **Replacing** (:meth:`Folder.replace`) writes a new, private temp file
  (``O_CREAT|O_EXCL``), fsyncs it and renames it over the name, both
  relative to the folder, then fsyncs the folder: a crash leaves the old or
  the new file, and a link in the file's place is replaced, never written
  through.
* **Setting aside** (:meth:`Folder.set_aside`) moves a name, never what a
  link points to; only a checked file of our own is then given a group and
  mode, through its descriptor (:meth:`Folder.give`).
* **Appending** (:meth:`Folder.open_append`) creates or opens without
  following a link and checks the file it got.
* **A symbolic link is followed** only by :func:`locate`, for a store's main
  file (the inventory on a shared disk, as the docs promise), and only when
  the link, its target and the target's folder pass the rules.
* **A failed write** names the real file, its folder and what to do (a full
  disk, a read-only file system, a folder this user may not write), never a
  temp file (:meth:`Folder.failure`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import secrets
import shlex
import stat
from dataclasses import dataclass
from typing import Iterator

from .. import bounded
from ..errors import StorageError
from . import trust
from .file_access import FileAccess
from .safe_files import TEMP_SUFFIX, hold_flock

_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
#: What a failed write leaves: every write of a store ends in the rename of its main file.
UNCHANGED = "the stored inventory was not changed"
#: How many names set_aside tries for one label and stamp: the bare one, then -2 up to this.
_ASIDE_NAMES = 9999


class UntrustedFile(StorageError):
    """A file (or link) that someone other than root or the current user could have put or changed.

    ``problem`` says why, when the refusal is about one file's own status.
    """

    def __init__(self, message: str, problem: Problem | None = None):
        super().__init__(message)
        self.problem = problem


class DamagedFile(StorageError):
    """A trusted file whose content cannot be used: too large, not UTF-8, not JSON, too deep, wrong shape."""


@dataclass(frozen=True)
class Problem:
    """Why ``path`` may not be used (``what``, starting with "is" or "has") and how to fix it."""

    path: str
    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.path} {self.what}; {self.fix}"


def problem(st: os.stat_result, path: str, link_text: str = "") -> Problem | None:
    """Why the file ``path``, of status ``st`` (not following links), may not be used; None when it may.

    ``link_text``: where a symbolic link at ``path`` points, for the message.
    """
    quoted = shlex.quote(path)
    if stat.S_ISLNK(st.st_mode):
        to = f" to {link_text}" if link_text else ""
        return Problem(path, f"is a symbolic link{to}, which is not followed here",
                       f"remove it (rm {quoted}), or put the file itself there")
    if not stat.S_ISREG(st.st_mode):
        return Problem(path, f"is {bounded.describe_kind(st.st_mode)}, not a regular file",
                       "remove it, or put the file itself there")
    owner = trust.owner_problem(st)
    if owner:
        return Problem(path, owner, trust.owner_fix(path))
    writable = trust.writable_problem(st)
    if writable:
        return Problem(path, writable, trust.writable_fix(path))
    if st.st_nlink > 1:
        return Problem(path, f"has {st.st_nlink} hard links, so a change to it would reach a file under another name",
                       f"give it a name of its own (cp -p {quoted} {quoted}.own && mv {quoted}.own {quoted})")
    return None


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _give_owner(fd: int, owner: tuple[int, int], mode: int) -> int:
    """chown ``fd`` to ``owner`` as far as allowed; the mode to use given what was kept.

    When the group cannot be kept, the group bits are dropped, so that a new
    file never opens to a group the old one did not.
    """
    uid, gid = owner
    st = os.fstat(fd)
    if (st.st_uid, st.st_gid) == (uid, gid):
        return mode
    for want in ((uid, gid), (-1, gid)):
        try:
            os.fchown(fd, *want)
            return mode
        except PermissionError:
            continue
    return mode & ~0o070


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Folder:
    """An open folder; see the module docstring. ``path`` is how messages name it."""

    def __init__(self, fd: int, path: str):
        self.fd = fd
        self.path = path

    @classmethod
    def open(cls, path: str) -> Folder:
        """Open the folder ``path`` (links on the way to it are followed: the operator named it).

        The real path is opened with ``O_NOFOLLOW``, so a folder swapped for
        a link after the path was resolved is refused, not entered.
        """
        try:
            return cls(open_folder_fd(path), path)
        except FileNotFoundError:
            raise StorageError(f"folder {path} does not exist; create it or name an existing one") from None
        except NotADirectoryError:
            raise StorageError(f"{path} is not a folder; name a folder") from None
        except OSError as exc:
            raise StorageError(f"folder {path} cannot be opened ({exc.strerror})") from None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def join(self, name: str) -> str:
        """The path of ``name`` in this folder, for messages."""
        return os.path.join(self.path, name)

    def identity(self) -> tuple[int, int]:
        st = os.fstat(self.fd)
        return st.st_dev, st.st_ino

    # -- looking and reading -------------------------------------------------------------------

    def lstat(self, name: str) -> os.stat_result | None:
        """The status of the entry ``name`` itself (a link is not followed), or None when there is none."""
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"{self.join(name)}: cannot be examined ({exc.strerror})") from None

    def link_text(self, name: str) -> str:
        """Where the symbolic link ``name`` points ("" if it is none any more)."""
        try:
            return os.readlink(name, dir_fd=self.fd)
        except OSError:
            return ""

    def check(self, name: str) -> Problem | None:
        """Why the existing entry ``name`` may not be used (None: it may, or there is none)."""
        st = self.lstat(name)
        if st is None:
            return None
        return problem(st, self.join(name), self.link_text(name) if stat.S_ISLNK(st.st_mode) else "")

    def read(self, name: str, limit: int) -> tuple[bytes, os.stat_result] | None:
        """The bytes of ``name`` and the status of the file read, or None when there is none.

        Raises :class:`UntrustedFile` for a file :func:`problem` refuses (a
        link is never followed), :class:`DamagedFile` for one larger than
        ``limit``, and StorageError, naming it, when it cannot be read.
        """
        found = self.check(name)
        if found:
            raise UntrustedFile(str(found), found)
        seen: list[os.stat_result] = []

        def inspect(st: os.stat_result) -> None:
            # The file actually opened is judged, whatever was swapped in since the check above.
            why = problem(st, self.join(name))
            if why:
                raise UntrustedFile(str(why), why)
            if st.st_size > limit:
                raise DamagedFile(f"{self.join(name)}: is larger than {_size(limit)}, more than any such file "
                                  "holds; it is damaged")
            seen.append(st)

        try:
            data = bounded.read_file(name, limit=limit, error=StorageError, follow_links=False, dir_fd=self.fd,
                                     shown=self.join(name), inspect=inspect)
        except FileNotFoundError:
            return None
        return data, seen[0]

    def names(self) -> list[str]:
        """The names of the entries in this folder."""
        try:
            return os.listdir(self.fd)
        except OSError as exc:
            raise StorageError(f"folder {self.path} cannot be listed ({exc.strerror})") from None

    # -- writing --------------------------------------------------------------------------------

    def failure(self, exc: OSError, name: str, doing: str = "written") -> StorageError:
        """One line for a failed change of ``name``: the real file, its folder and what to do."""
        path = self.join(name)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return StorageError(f"{path} cannot be {doing}: no space is left for it on the file system of {self.path} "
                                f"({exc.strerror}); free some space there and run again; {UNCHANGED}")
        if exc.errno == errno.EROFS:
            return StorageError(f"{path} cannot be {doing}: {self.path} is on a read-only file system; remount it "
                                f"read-write (or run where the store is writable) and run again; {UNCHANGED}")
        if exc.errno in (errno.EACCES, errno.EPERM):
            try:
                st = os.fstat(self.fd)
                owner = f" (owner {_owner(st.st_uid)}, mode {stat.S_IMODE(st.st_mode):04o})"
            except OSError:
                owner = ""
            return StorageError(f"{path} cannot be {doing}: user {_user()} may not change the folder {self.path}"
                                f"{owner}; run this as root (or as the folder's owner); {UNCHANGED}")
        return StorageError(f"{path} cannot be {doing} ({exc.strerror}); {UNCHANGED}")

    def sync(self) -> None:
        """fsync the folder, so that renames in it survive a crash."""
        os.fsync(self.fd)

    def replace(self, name: str, data: bytes, mode: int, owner: tuple[int, int] | None = None,
                mtime: float | None = None) -> None:
        """Put ``data`` at ``name`` atomically: a private temp file, fsync, rename over ``name``, fsync of the folder.

        ``owner`` (uid, gid) is given to the new file as far as this user
        may; ``mtime``, when given, is the file's modification time from the
        moment it appears. Whatever is at ``name`` (a link too) is replaced,
        never written through.
        """
        temp = f".{name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=self.fd)
        except OSError as exc:
            raise self.failure(exc, name) from None
        try:
            try:
                _write_all(fd, data)
                if owner is not None:
                    mode = _give_owner(fd, owner, mode)
                os.fchmod(fd, mode)
                if mtime is not None:
                    os.utime(fd, (mtime, mtime))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            self.sync()
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=self.fd)
            if isinstance(exc, OSError):
                raise self.failure(exc, name) from None
            raise

    def remove(self, name: str) -> None:
        """Delete the entry ``name`` (a link itself, never what it points to); one already gone is fine."""
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise self.failure(exc, name, "removed") from None

    def remove_temp_files(self, name: str) -> None:
        """Delete the temp files of ``name`` that killed writers left (only the lock holder writes them)."""
        for entry in self.names():
            if entry.startswith(f".{name}.") and entry.endswith(TEMP_SUFFIX):
                with contextlib.suppress(OSError):
                    os.unlink(entry, dir_fd=self.fd)

    def set_aside(self, name: str, label: str, stamp: str) -> str:
        """Move the entry ``name`` to ``<name>.<label>-<stamp>`` (``-2``, ``-3``... if taken); the new name.

        The entry itself moves (a link stays a link, pointing where it did).
        A hard link claims the new name only if nobody has it, so two files
        set aside in the same second never overwrite one another.
        """
        base = f"{name}.{label}-{stamp}"
        for n in range(1, _ASIDE_NAMES + 1):
            candidate = base if n == 1 else f"{base}-{n}"
            try:
                os.link(name, candidate, src_dir_fd=self.fd, dst_dir_fd=self.fd, follow_symlinks=False)
            except FileExistsError:
                continue
            except OSError:
                # No hard link here (a folder, a file system without them, another owner's file under
                # protected_hardlinks): claim the name by looking; the caller holds the store's lock.
                if self.lstat(candidate) is not None:
                    continue
                try:
                    os.rename(name, candidate, src_dir_fd=self.fd, dst_dir_fd=self.fd)
                except OSError as exc:
                    raise self.failure(exc, name, "moved aside") from None
                return candidate
            try:
                os.unlink(name, dir_fd=self.fd)
            except OSError as exc:
                raise self.failure(exc, name, "moved aside") from None
            return candidate
        raise StorageError(f"cannot move {self.join(name)} aside: {base} and {base}-2 to {base}-{_ASIDE_NAMES} all "
                           f"exist in {self.path}; remove old ones")

    def give(self, name: str, access: FileAccess, within: int | None = None) -> None:
        """Give the file ``name`` (just set aside) the configured group and mode, its mode first cut to ``within``.

        Only a file that passes :func:`problem` and that this user owns (or
        root) is changed, through its own descriptor; anything else is left
        as found.
        """
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=self.fd)
        except OSError:
            return
        try:
            st = os.fstat(fd)
            if problem(st, self.join(name)) or os.geteuid() not in (0, st.st_uid):
                return
            if within is not None:
                os.fchmod(fd, stat.S_IMODE(st.st_mode) & within)
            access.apply(fd)
        finally:
            os.close(fd)

    def open_append(self, name: str, mode: int = 0o600) -> int:
        """A descriptor appending to ``name`` (made with ``mode`` if missing).

        UntrustedFile for a file :func:`problem` refuses: a link is never followed, nor a second name appended to.
        """
        fd = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     mode, dir_fd=self.fd)
        why = problem(os.fstat(fd), self.join(name))
        if why:
            os.close(fd)
            raise UntrustedFile(str(why), why)
        return fd

    @contextlib.contextmanager
    def locked(self, timeout: float, hint: str) -> Iterator[None]:
        """An exclusive ``flock`` on this folder (waiting up to ``timeout`` s, then one line ending in ``hint``)."""
        with hold_flock(self.fd, timeout, hint, self.path):
            yield


def open_folder_fd(path: str) -> int:
    """A descriptor of the folder ``path``: its real path opened with ``O_NOFOLLOW``; OSError as the system says."""
    return os.open(os.path.realpath(path), _FOLDER_FLAGS | os.O_NOFOLLOW)


def _size(limit: int) -> str:
    return f"{limit // bounded.MiB} MiB" if limit >= bounded.MiB else f"{limit} bytes"


# -- the one link that may be followed --------------------------------------------------------------

@dataclass
class Place:
    """Where a store's main file lives: ``name`` in ``folder``, reached directly or through a checked link.

    ``link`` is the path of the link and ``target`` where it points, when
    there is one. A place made by :func:`locate` closes the link target's
    folder it opened (never the store's) when it is closed.
    """

    folder: Folder
    name: str
    link: str = ""
    target: str = ""
    _owned: bool = False

    @property
    def path(self) -> str:
        return self.folder.join(self.name)

    def shown(self) -> str:
        """The file as messages name it: the link with its target, or the file."""
        return f"{self.link} (a symbolic link to {self.target})" if self.link else self.path

    def close(self) -> None:
        if self._owned:
            self.folder.close()

    def __enter__(self) -> Place:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _link_refused(link: str, text: str, why: str, fix: str) -> UntrustedFile:
    return UntrustedFile(f"{link} is a symbolic link to {text}, {why}; {fix}")


def locate(store: Folder, name: str) -> Place:
    """``name`` in ``store``, or, when it is a symbolic link, its target once every check passed.

    The link must be owned by root or the current user; its target's folder
    must pass the rules plugin folders meet (owned by root or the current
    user, not writable by group or others); the target must be a regular
    file that passes :func:`problem`. The folder is then opened, and the
    target is named relative to it from here on: a path is never used again.
    Anything else is one line naming the link and what to do.
    """
    link = store.join(name)
    try:
        handle = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=store.fd)
    except FileNotFoundError:
        return Place(store, name)
    except OSError as exc:
        raise StorageError(f"{link}: cannot be examined ({exc.strerror})") from None
    try:
        st = os.fstat(handle)
        if not stat.S_ISLNK(st.st_mode):
            return Place(store, name)
        text = os.readlink("", dir_fd=handle)  # the link just judged, not whatever has its name now
    finally:
        os.close(handle)
    owner = trust.owner_problem(st)
    if owner:
        # No chown advice: whoever planted it chose where it leads. Removing it is always safe.
        raise _link_refused(link, text, f"and the link itself {owner}; a link is followed only when root or "
                                        "the current user made it",
                            f"remove it (rm {shlex.quote(link)}); to keep the inventory elsewhere, make the link as "
                            "root")
    # A relative link is relative to the folder holding it; the kernel resolves ".." after links, as realpath does.
    target = os.path.join(os.path.realpath(store.path), text)
    folder_path, base = os.path.split(target)
    if base in ("", ".", ".."):
        raise _link_refused(link, text, "which is not a regular file", "point the link at a file, or remove it")
    try:
        fd = open_folder_fd(folder_path)
    except OSError as exc:
        raise _link_refused(link, text, f"which cannot be followed ({exc.strerror})",
                            "restore that file, or remove the link to start anew") from None
    folder = Folder(fd, folder_path)
    try:
        found = os.fstat(fd)
        for why, fix in ((trust.owner_problem(found), trust.owner_fix(folder_path)),
                         (trust.writable_problem(found), trust.writable_fix(folder_path))):
            if why:
                raise _link_refused(link, text, f"in the folder {folder_path}, which {why}; a link is followed only "
                                                "into a folder nobody else can change", fix)
        if folder.identity() == store.identity():
            folder.close()
            folder = store
        at = folder.lstat(base)
        if at is None:
            raise _link_refused(link, text, "which cannot be followed (No such file or directory)",
                                "restore that file, or remove the link to start anew")
        if stat.S_ISLNK(at.st_mode):
            raise _link_refused(link, text, "which is itself a symbolic link", "point the link at the file itself")
        if not stat.S_ISREG(at.st_mode):
            raise _link_refused(link, text, "which is not a regular file", "point the link at a file, or remove it")
        why = problem(at, folder.join(base))
        if why:
            raise _link_refused(link, text, f"and {why.path} {why.what}", why.fix)
    except BaseException:
        if folder is not store:
            folder.close()
        raise
    return Place(folder, base, link, text, _owned=folder is not store)
