"""Real operating-system users and groups for tests of who may do what (root only).

Tests that need a second user or group create one with ``useradd``/``groupadd``
and run commands as it with ``setpriv``; without root these tests are skipped
with that reason.
"""

from __future__ import annotations

import os
import pwd
import grp
import shutil
import subprocess
import sys
import time
from typing import Iterator, Sequence

import pytest


def _retry(cmd: list[str], ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
    for _ in range(40):  # /etc/passwd and /etc/group may be locked by another test's useradd for a moment
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode in ok:
            return done
        time.sleep(0.25)
    pytest.fail(f"{' '.join(cmd)} failed: {done.stderr.strip()}")


def need_root(tool: str = "useradd") -> None:
    """Skip (with the reason) unless this is root with ``tool`` installed."""
    if os.geteuid() != 0:
        pytest.skip(f"needs root to create users and groups with {tool}")
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed")


def make_user(name: str, groups: Sequence[str] = ()) -> tuple[str, int, int]:
    """Create user ``name`` (no home, no shell), in ``groups``; returns (name, uid, gid)."""
    need_root("useradd")
    cmd = ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group"]
    if groups:
        cmd += ["--groups", ",".join(groups)]
    _retry(cmd + [name])
    entry = pwd.getpwnam(name)
    return name, entry.pw_uid, entry.pw_gid


def remove_user(name: str) -> None:
    _retry(["userdel", name], ok=(0, 6))  # 6: already gone
    subprocess.run(["groupdel", name], capture_output=True)  # its own group, if left


def make_group(name: str) -> int:
    """Create group ``name``; returns its gid."""
    need_root("groupadd")
    _retry(["groupadd", name])
    return grp.getgrnam(name).gr_gid


def remove_group(name: str) -> None:
    _retry(["groupdel", name], ok=(0, 6))


def unique(stem: str) -> str:
    """A user or group name no other test process uses (names are at most 32 characters)."""
    return f"{stem}{os.getpid()}"[:30]


def need_python_for(user: str, python: str = sys.executable) -> None:
    """Skip (with the reason) unless ``user`` can run ``python`` with the project's requirements.

    A Python built with a shared libpython below root's private home (pyenv's, as on CI machines)
    cannot be started by any other user; the system's Python lacks the requirements.
    """
    probe = subprocess.run(as_user(user, [python, "-c", "import yaml, pluginbase"]), capture_output=True,
                           text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"this test's Python ({python}) cannot be run by another user here: "
                    f"{' '.join(probe.stderr.split())[-200:]}")


def as_user(user: str, cmd: Sequence[str]) -> list[str]:
    """``cmd`` run as ``user`` with that user's groups (setpriv keeps the environment as given)."""
    return ["setpriv", "--reuid", user, "--regid", user, "--init-groups", *cmd]


def other_user_fixture(stem: str) -> Iterator[tuple[str, int]]:
    """Body of a fixture giving a second, unprivileged user (name, uid), deleted afterwards."""
    name, uid, _gid = make_user(unique(stem))
    try:
        yield name, uid
    finally:
        remove_user(name)


def users_fixture(*stems: str) -> Iterator[list[str]]:
    """Body of a fixture giving one unprivileged user per stem (names) to run commands as with
    :func:`as_user`, deleted afterwards; skipped with the reason without root or setpriv."""
    need_root("useradd")
    if not shutil.which("setpriv"):
        pytest.skip("setpriv is not installed (util-linux); it runs commands as other users")
    names: list[str] = []
    try:
        for stem in stems:
            names.append(make_user(unique(stem))[0])
        need_python_for(names[0])
        yield names
    finally:
        for name in names:
            remove_user(name)
