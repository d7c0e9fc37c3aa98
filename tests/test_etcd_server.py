"""The etcd test helper: real causes at once, retries only for a port someone else took."""

from __future__ import annotations

import socket

import pytest

from etcd_server import EtcdCluster, skip_without_etcd
from tls_certs import make_pki


def test_a_tls_failure_is_reported_at_once_with_its_cause(tmp_path):
    skip_without_etcd()
    certs = make_pki(str(tmp_path / "right"))
    stranger = make_pki(str(tmp_path / "wrong"))
    cluster = EtcdCluster(1, tls={"ca": certs["ca.pem"], "server_cert": certs["server.pem"],
                                  "server_key": certs["server.key"], "client_cert": certs["client.pem"],
                                  "client_key": certs["client.key"], "verify": stranger["ca.pem"]})
    with pytest.raises(RuntimeError) as err:
        cluster.start(timeout=600)
    message = str(err.value)
    # The real cause, not "not healthy after 600 s" (which would also mean 600 s of waiting).
    assert message.startswith(f"etcd m0 at {cluster.members[0].endpoint}: TLS failure:"), message
    assert "certificate verify failed" in message and "not healthy" not in message
    assert not cluster.members[0].running()  # nothing left behind
    cluster.stop()


@pytest.fixture
def squatted():
    """A one-member cluster whose client port someone else already listens on: (cluster, member, port)."""
    skip_without_etcd()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        taken = squatter.getsockname()[1]
        cluster = EtcdCluster(1)
        member = cluster.members[0]
        member.client_port = taken
        yield cluster, member, taken


def test_a_port_taken_before_etcd_binds_it_moves_the_member_to_new_ports(squatted):
    cluster, member, taken = squatted
    with cluster:
        assert member.client_port != taken
        assert member.healthy() and cluster.revision() >= 1
    assert not member.running()


def test_a_member_that_exited_before_the_first_probe_is_not_taken_for_healthy(squatted, monkeypatch):
    # The CI failure of 2026-12-07: on a loaded machine etcd had already exited (port
    # taken) when the health wait began, was skipped as "not running", and start()
    # returned a cluster with no etcd.  Make that ordering certain.
    cluster, member, taken = squatted
    original_start = type(member).start

    def start_and_wait_for_exit(self):
        original_start(self)
        if self.client_port == taken:
            self.proc.wait(timeout=30)

    monkeypatch.setattr(type(member), "start", start_and_wait_for_exit)
    with cluster:
        assert member.client_port != taken
        assert member.healthy()
