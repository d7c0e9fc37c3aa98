"""Nested deployments with etcd authentication on (issue 22.7), and the printed etcdctl advice run with it (22.6).

One etcd with authentication, set up by running docs/etcd.md's "Access control" commands
as printed (tests/test_etcd_accounting.py does the same for its own cluster), plus writers
made the way that section made them before: readwrite on their own prefix and nothing else.
Every run is the real inventory script or inventory-manage as a subprocess.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from etcd_server import EtcdCluster, skip_without_etcd
from helpers import base_config, run_script, write_config
from plugin_fixtures import assert_one_line_failure
from test_etcd_accounting import ROOT_PASSWORD, AuthEtcd, documented, manage, write_ini
from test_etcd_integrity import quoted_commands

OUTER = "/openstack-ansible/inventory/prod"
#: user -> (password, prefix its writer role was made for, made as documented now)
WRITERS = {
    "osa-prod": ("prod-Writer.1", OUTER, True),
    "osa-child": ("child-Writer.1", OUTER + "/child", True),
    "osa-wide": ("wide-Writer.1", OUTER, False),        # readwrite on the outer prefix only
    "osa-old": ("old-Writer.1", OUTER + "/old", False),  # readwrite on its own prefix only
}


def _documented_writer(block: str, user: str, password: str, prefix: str) -> str:
    """The documented per-deployment commands for one writer at ``prefix``."""
    deployment = user[len("osa-"):]
    text = block.replace("DEPLOYMENT=prod\n", f"DEPLOYMENT={deployment}\n")
    text = text.replace("PREFIX=/openstack-ansible/inventory/$DEPLOYMENT", f"PREFIX={prefix}")
    assert f"PREFIX={prefix}" in text, "the documented block no longer sets PREFIX as expected"
    return f"WRITER_PASSWORD='{password}' READER_PASSWORD='{password}-ro'\n{text}"


def _old_style_writer(user: str, password: str, prefix: str) -> str:
    return "\n".join([f"etcdctl role add {user}-writer",
                      f"etcdctl role grant-permission {user}-writer --prefix=true readwrite {prefix}/",
                      f"etcdctl user add {user} --interactive=false <<<'{password}'",
                      f"etcdctl user grant-role {user} {user}-writer"])


@pytest.fixture(scope="module")
def auth(tmp_path_factory):
    skip_without_etcd()
    if not shutil.which("etcdctl"):
        pytest.skip("etcdctl is absent (the documented set-up runs it); install it with 'apt-get install etcd-client'")
    once, per_deployment = documented("sh")
    with EtcdCluster(1) as cluster:
        script = ["set -euo pipefail", once]
        for user, (password, prefix, as_documented) in WRITERS.items():
            script.append(_documented_writer(per_deployment, user, password, prefix) if as_documented
                          else _old_style_writer(user, password, prefix))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ETCDCTL_ENDPOINTS": cluster.endpoints_text,
               "ROOT_PASSWORD": ROOT_PASSWORD}
        done = subprocess.run(["bash", "-c", "\n".join(script)], env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        yield AuthEtcd(cluster)


class Deploy:
    """A config folder and one osa.ini per (user, prefix)."""

    def __init__(self, root, endpoints: str):
        self.root, self.endpoints = root, endpoints
        self.config_dir = str(root / "deploy")
        write_config(self.config_dir, base_config())

    def ini(self, user: str, prefix: str) -> tuple[str, dict]:
        folder = str(self.root / f"{user}{prefix.replace('/', '_')}")
        deployment = "prod" if prefix == OUTER else prefix.rsplit("/", 1)[1]
        return write_ini(folder, self.endpoints, deployment, user, prefix=prefix), \
            {"OSA_INVENTORY_ETCD_PASSWORD": WRITERS[user][0]}

    def run(self, user: str, prefix: str) -> subprocess.CompletedProcess:
        ini, env = self.ini(user, prefix)
        return run_script(self.config_dir, ini=ini, env=env)

    def change_config(self, host: str, ip: str) -> None:
        config = base_config()
        config["compute_hosts"][host] = {"ip": ip}
        write_config(self.config_dir, config)


def run_etcdctl(command: list[str], password: str) -> subprocess.CompletedProcess:
    """A printed etcdctl command, as an operator runs it: it asks for the user's password."""
    env = {"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"}
    return subprocess.run(command, input=password + "\n", capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def deploy(auth, tmp_path):
    dep = Deploy(tmp_path, auth.endpoints)
    outer = dep.run("osa-prod", OUTER)  # the outer deployment exists (stored, or already there)
    assert outer.returncode == 0 and outer.stderr == "", outer.stderr
    return dep


@pytest.mark.parametrize("user, inner, n", [("osa-wide", OUTER + "/nest", 1), ("osa-prod", OUTER + "/nest", 2),
                                            ("osa-child", OUTER + "/child", 3)])
def test_a_deployment_inside_another_is_refused_before_it_is_written(auth, deploy, user, inner, n):
    """osa-wide is the issue's case: one request for every parent was denied (it may not read the parents
    of OUTER), the check was skipped, the nested deployment stored, and OUTER blocked from then on."""
    before = auth.state(OUTER)
    line = assert_one_line_failure(deploy.run(user, inner), f"etcd prefix {inner} ",
                                   f"lies inside the prefix {OUTER} of another deployment", "nothing was written")
    assert auth.state(inner)[1] == {} and auth.state(OUTER)[1] == before[1]
    # The advice as printed, with authentication on: it names the user, and deletes (here: nothing) under inner.
    (command,) = quoted_commands(line)
    assert command[:5] == ["etcdctl", "--endpoints", auth.endpoints, "--user", user]
    assert command[5:] == ["del", "--prefix", inner + "/"]
    done = run_etcdctl(command, WRITERS[user][0])
    assert done.returncode == 0, done.stderr
    # The outer deployment goes on storing changes.
    deploy.change_config(f"compute{70 + n}", f"172.29.236.{70 + n}")
    stored = deploy.run("osa-prod", OUTER)
    assert stored.returncode == 0 and stored.stderr == "", stored.stderr
    assert auth.state(OUTER)[1] != before[1]


@pytest.mark.once
def test_a_nested_deployment_the_writer_could_not_see_is_deleted_as_printed_with_authentication(auth, deploy):
    """A writer that may not read OUTER's keys at all (a role made before the documented grants) can still
    store a nested deployment; OUTER then refuses to write, and its printed etcdctl command removes it."""
    inner = OUTER + "/old"
    nested = deploy.run("osa-old", inner)
    assert nested.returncode == 0 and nested.stderr == "", nested.stderr
    inner_keys = auth.state(inner)[1]
    assert inner_keys
    deploy.change_config("compute80", "172.29.236.80")
    before = auth.state(OUTER)
    line = assert_one_line_failure(deploy.run("osa-prod", OUTER), f"contains the prefix {inner} of another deployment")
    assert auth.state(OUTER)[1] == before[1]
    (command,) = quoted_commands(line)
    assert command == ["etcdctl", "--endpoints", auth.endpoints, "--user", "osa-prod", "del", "--prefix", inner + "/"]
    # Without the password etcdctl refuses; with it (as an operator types it) the keys go.
    assert run_etcdctl(command, "wrong-password").returncode != 0
    assert auth.state(inner)[1] == inner_keys
    done = run_etcdctl(command, WRITERS["osa-prod"][0])
    assert done.returncode == 0 and done.stdout.strip().endswith(str(len(inner_keys))), done.stdout + done.stderr
    assert auth.state(inner)[1] == {}
    stored = deploy.run("osa-prod", OUTER)
    assert stored.returncode == 0 and stored.stderr == "", stored.stderr
    listing = manage(deploy.config_dir, *deploy.ini("osa-prod", OUTER), "-l")
    assert listing.returncode == 0 and "compute80" in listing.stdout, listing.stderr
