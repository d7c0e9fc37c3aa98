"""Who may read the files a file-based store writes: a configured group and mode, checked.

``[filesystem] group`` and ``mode`` let an operators' group read the
inventory without it being readable by every user. The values are refused,
before anything is written, when they could not do what they say: a mode
that is not octal, gives execute or special bits, lets the group or every
user write (root's runs refuse such files: see :mod:`.store_files`) or keeps
the owner from reading; a group this machine does not know; and, at write
time, a group the writing user cannot give files to.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shlex
from dataclasses import dataclass

from ..errors import StorageError

EXAMPLE = "0640"
SECTION = "[filesystem]"
_OCTAL = re.compile(r"0?[0-7]{3}")


def parse_mode(text: str, option: str) -> int | None:
    """``text`` (e.g. ``0640``) as permission bits, None when blank; ``option`` names it in refusals."""
    text = text.strip()
    if not text:
        return None
    shown = f"{option} = {text!r}"
    if not _OCTAL.fullmatch(text):
        raise StorageError(f"{shown} is not an octal permission mode of three digits (setuid, setgid and sticky "
                           f"bits are not allowed); set it to e.g. {EXAMPLE} (owner read-write, group read)")
    mode = int(text, 8)
    if mode & 0o111:
        raise StorageError(f"{shown} makes the inventory executable, and it is data; set it to e.g. {EXAMPLE}")
    if mode & 0o022:
        who = "every user" if mode & 0o002 else "the group"
        raise StorageError(f"{shown} lets {who} rewrite the inventory, which root's Ansible runs obey, so runs "
                           f"would refuse it; set it to e.g. {EXAMPLE} (the group reads, only the owner writes)")
    if not mode & 0o400:
        raise StorageError(f"{shown} keeps the owner from reading the inventory; set it to e.g. {EXAMPLE}")
    return mode


def group_id(name: str, option: str) -> int | None:
    """The id of group ``name`` (a name, or a number with a group entry), None when blank."""
    name = name.strip()
    if not name:
        return None
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        pass
    if name.isdigit():
        try:
            return grp.getgrgid(int(name)).gr_gid
        except KeyError:
            pass
    raise StorageError(f"{option} = {name!r} names no group on this machine; create it "
                       f"(groupadd {shlex.quote(name)}) or set {option} to an existing group")


def _user_name() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


@dataclass(frozen=True)
class FileAccess:
    """The configured group and mode of a store's files; None means "as found" (the default)."""

    gid: int | None = None
    group: str = ""
    mode: int | None = None

    @classmethod
    def from_options(cls, group: str, mode: str) -> FileAccess:
        """Checked ``group`` and ``mode`` option texts (the loader renames ``[filesystem]`` to the section)."""
        return cls(group_id(group, f"{SECTION} group"), group.strip(), parse_mode(mode, f"{SECTION} mode"))

    @property
    def configured(self) -> bool:
        return self.gid is not None or self.mode is not None

    def check_can_give_group(self) -> None:
        """Refuse, before writing, when files written now could not be given the configured group."""
        if self.gid is None or os.geteuid() == 0 or self.gid == os.getegid() or self.gid in os.getgroups():
            return
        user = _user_name()
        raise StorageError(
            f"{SECTION} group = {self.group!r}: user {user} is not in group {self.group}, so the "
            f"files this run writes could not be given to it; add the user to it (usermod -a -G "
            f"{shlex.quote(self.group)} {shlex.quote(user)}, then log in again) or run as root")

    def mode_for(self, found: int) -> int:
        """The mode to give a file whose mode would otherwise be ``found``."""
        return found if self.mode is None else self.mode

    def owner_for(self, found: tuple[int, int] | None) -> tuple[int, int] | None:
        """The (uid, gid) to give a file whose owner would otherwise be ``found`` (None: the writer's)."""
        if self.gid is None:
            return found
        return (found[0] if found else os.geteuid()), self.gid

    def apply(self, fd: int) -> None:
        """Give the open file ``fd`` the configured group and mode (files set aside)."""
        if self.gid is not None:
            os.fchown(fd, -1, self.gid)
        if self.mode is not None:
            os.fchmod(fd, self.mode)
