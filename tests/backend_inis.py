"""osa.ini files for each built-in backend, as the Ansible end-to-end tests use them.

Each builder takes ``tmp_path`` and the test's ``request`` (for the etcd and Craton servers, started by
the ``etcd`` and ``craton`` fixtures the test module imports) and returns the path of an osa.ini
selecting that backend, with a store of the test's own (a prefix or region named after the test).
"""

from __future__ import annotations

import pytest


def _test_name(request) -> str:
    return request.node.name.replace("[", "_").replace("]", "")


def filesystem_ini(tmp_path, request=None) -> str:
    path = tmp_path / "osa.ini"
    path.write_text("[inventory]\nbackend = filesystem\n")
    return str(path)


def etcd_ini(tmp_path, request) -> str:
    cluster = request.getfixturevalue("etcd")
    path = tmp_path / "osa.ini"
    path.write_text(f"[inventory]\nbackend = etcd\n[etcd]\nendpoints = {cluster.endpoints_text}\n"
                    f"prefix = /ansible-e2e/{_test_name(request)}\n")
    return str(path)


@pytest.fixture(scope="module")
def craton():
    """A Craton test server for the module's tests."""
    from craton_server import CratonServer
    server = CratonServer().start()
    yield server
    server.stop()


def craton_ini(tmp_path, request) -> str:
    server = request.getfixturevalue("craton")
    path = tmp_path / "osa.ini"
    path.write_text(f"[inventory]\nbackend = craton\n[craton]\nurl = {server.url}\n"
                    f"project_id = {server.project_id}\nusername = {server.username}\n"
                    f"api_key = {server.api_key}\ncloud = ansible-e2e\nregion = {_test_name(request)}\n")
    path.chmod(0o600)
    return str(path)


BACKENDS = {"filesystem": filesystem_ini, "etcd": etcd_ini, "craton": craton_ini}
