"""osa.ini is believed only when nobody but root or the running user could have written it.

osa.ini names the plugin folders code is run from and the endpoints that
receive the backends' passwords, so it meets the rules plugin folders meet
(owner root or the current user, not writable by group or others, the same
for every folder above it). Each case runs the real script (and
inventory-manage) on real files given to a second user made with
``useradd`` (root only, as in CI; skipped with the reason otherwise); every
refusal's advice is run as printed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest
from helpers import SCRIPT, run_script, write_ini
from os_users import as_user, need_python_for, other_user_fixture
from plugin_fixtures import RECORDER, assert_one_line_failure, config_dir, ini_for, plugin_dir  # noqa: F401
from test_plugin_trust import run_advice

INVENTORY = "openstack_inventory.json"


@pytest.fixture(scope="module")
def other_user():
    """A second, unprivileged user (name, uid), deleted afterwards."""
    yield from other_user_fixture("osainiown")


def _stored(config_dir: str) -> bool:
    return os.path.exists(os.path.join(config_dir, INVENTORY))


def test_an_osa_ini_owned_by_another_user_is_refused_until_adopted(tmp_path, config_dir, other_user):
    ini = write_ini(str(tmp_path))
    os.chown(ini, other_user[1], -1)
    line = assert_one_line_failure(
        run_script(config_dir, ini=ini),
        f"refusing to read osa.ini {ini}: it is owned by {other_user[0]} (uid {other_user[1]}), "
        "not by root or the current user", f"review it, then run chown root {ini} (or remove it)")
    assert not _stored(config_dir)
    run_advice(line)
    assert run_script(config_dir, ini=ini).returncode == 0 and _stored(config_dir)


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666])
def test_an_osa_ini_others_may_write_is_refused(tmp_path, config_dir, mode):
    ini = write_ini(str(tmp_path))
    os.chmod(ini, mode)
    line = assert_one_line_failure(
        run_script(config_dir, ini=ini),
        f"refusing to read osa.ini {ini}: it is writable by group or others (mode {mode:04o}); run chmod go-w {ini}")
    assert not _stored(config_dir)
    run_advice(line)
    assert os.stat(ini).st_mode & 0o777 == mode & 0o755
    assert run_script(config_dir, ini=ini).returncode == 0 and _stored(config_dir)


@pytest.mark.parametrize("mode, owner, refused", [
    (0o777, "root", "is writable by group or others (mode 0777) without the sticky bit and a root owner"),
    (0o770, "root", "is writable by group or others (mode 0770) without the sticky bit and a root owner"),
    (0o755, "other", "is owned by"),
    (0o1777, "other", "is owned by"),
    (0o1777, "root", None),   # like /tmp: nobody else may rename what is inside
])
def test_the_folders_above_osa_ini_are_checked(tmp_path, config_dir, other_user, mode, owner, refused):
    folder = tmp_path / "etc" / "ansible"
    folder.mkdir(parents=True)
    ini = write_ini(str(folder))
    if owner == "other":
        os.chown(folder.parent, other_user[1], -1)
    os.chmod(folder.parent, mode)
    result = run_script(config_dir, ini=ini)
    if refused:
        line = assert_one_line_failure(result, f"refusing to read osa.ini {ini}: its ancestor {folder.parent} "
                                       f"{refused}")
        assert not _stored(config_dir)
        run_advice(line)
        result = run_script(config_dir, ini=ini)
    assert result.returncode == 0, result.stderr
    assert _stored(config_dir)


def test_a_symlinked_osa_ini_is_checked_where_it_leads(tmp_path, config_dir, other_user):
    home = tmp_path / "home"
    home.mkdir()
    real = write_ini(str(home))  # root's file, but in a folder another user may fill
    os.chown(home, other_user[1], -1)
    link = tmp_path / "osa.ini"
    link.symlink_to(real)
    line = assert_one_line_failure(run_script(config_dir, ini=str(link)),
                                   f"refusing to read osa.ini {link}: its ancestor {home}", f"owned by {other_user[0]}")
    run_advice(line)
    assert run_script(config_dir, ini=str(link)).returncode == 0


def test_a_missing_osa_ini_is_refused_while_someone_else_could_create_it(tmp_path, config_dir):
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    os.chmod(open_folder, 0o777)
    missing = str(open_folder / "osa.ini")
    line = assert_one_line_failure(run_script(config_dir, ini=missing),
                                   f"refusing to read osa.ini {missing}: its ancestor {open_folder}")
    run_advice(line)
    assert_one_line_failure(run_script(config_dir, ini=missing), f"OSA_INI names {missing}, which does not exist")
    assert not _stored(config_dir)


def test_inventory_manage_refuses_the_same_osa_ini(tmp_path, config_dir):
    from test_manage_support import MANAGE
    ini = write_ini(str(tmp_path))
    os.chmod(ini, 0o666)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSA_")}
    result = subprocess.run([sys.executable, MANAGE, "--config", config_dir, "--list-backends"],
                            capture_output=True, text=True, timeout=120, env={**env, "OSA_INI": ini})
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"ERROR: refusing to read osa.ini {ini}: it is writable by group or others "
                             f"(mode 0666); run chmod go-w {ini}\n")


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644])
def test_what_a_deployer_has_is_accepted(tmp_path, config_dir, mode):
    ini = write_ini(str(tmp_path))
    os.chmod(ini, mode)
    result = run_script(config_dir, ini=ini)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert json.loads(result.stdout) == json.loads(open(os.path.join(config_dir, INVENTORY)).read())


def test_a_users_own_osa_ini_is_accepted_for_that_user_only(config_dir, other_user):
    need_python_for(other_user[0])
    base = tempfile.mkdtemp(prefix="osa-ini-own-")  # the user must reach it (tmp_path is root's own)
    try:
        os.chmod(base, 0o755)
        deploy = os.path.join(base, "deploy")
        shutil.copytree(config_dir, deploy)
        home = os.path.join(base, "home")
        os.mkdir(home)
        ini = write_ini(home)
        for path in (deploy, home, ini, *(os.path.join(deploy, n) for n in os.listdir(deploy))):
            os.chown(path, other_user[1], -1)
        env = {"PATH": "/usr/bin:/bin", "OSA_INI": ini}
        mine = subprocess.run(as_user(other_user[0], [sys.executable, SCRIPT, "--config", deploy]),
                              env=env, capture_output=True, text=True, timeout=120)
        assert mine.returncode == 0 and mine.stderr == "", mine.stderr
        assert json.loads(mine.stdout)["_meta"]["hostvars"]
        # The same file is not root's to believe: the user could point it at their own plugin folder.
        refused = run_script(deploy, ini=ini)
        assert_one_line_failure(refused, f"refusing to read osa.ini {ini}: its ancestor {home} is owned by "
                                         f"{other_user[0]}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
